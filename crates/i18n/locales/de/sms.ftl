# SMS: kurz, und in Zeichen, die jedes Telefon zeigt, wo die Sprache es erlaubt.

sms-date-time = { $date }, { $time } Uhr
sms-availability-new = { $count ->
    [one] { $practitioner }: Termin frei am { $when }. Antworten Sie JA zum Buchen, oder: { $link }
   *[other] { $practitioner }: { $count } Termine frei: { $list }. Antworten Sie mit der Nummer zum Buchen, oder: { $link }
}
sms-availability-move-up = { $count ->
    [one] { $practitioner }: früherer Termin frei am { $when }. Antworten Sie JA zum Vorverlegen, oder: { $link }
   *[other] { $practitioner }: { $count } frühere Termine frei: { $list }. Antworten Sie mit der Nummer zum Vorverlegen, oder: { $link }
}

# Without the list, when the list would not fit one SMS.
sms-availability-new-short = { $practitioner }: { $count } Termine frei, der erste am { $when }. Antworten Sie 1 zum Buchen, oder: { $link }
sms-availability-move-up-short = { $practitioner }: { $count } frühere Termine frei, der erste am { $when }. Antworten Sie 1 zum Vorverlegen, oder: { $link }

# Antworten auf die SMS eines Patienten.
sms-booked = Gebucht: { $practitioner }, { $when }. Eine Bestätigung folgt.
sms-taken = Leider wurde dieser Termin gerade vergeben. Noch frei: { $list }. Antworten Sie mit der Nummer zum Buchen.
sms-taken-none = Leider wurde dieser Termin gerade vergeben, und kein anderer Termin dieses Angebots ist frei.
sms-expired = Leider ist dieses Angebot abgelaufen.
sms-pick = Bitte antworten Sie mit einer Nummer von 1 bis { $last }, oder JA für den ersten Termin.
sms-no-offer = Für diese Nummer gibt es kein offenes Angebot. Antworten Sie HILFE für Hilfe, STOP für keine SMS mehr.
sms-help = SMS zu freien Terminen. Antworten Sie JA oder die Nummer eines Termins zum Buchen, STOP für keine SMS mehr, START für SMS wieder.
sms-stopped = Sie erhalten keine SMS mehr von uns. Antworten Sie START, um sie wieder zu erhalten.
sms-started = Sie erhalten wieder SMS zu freien Terminen. Antworten Sie STOP, um sie zu beenden.
