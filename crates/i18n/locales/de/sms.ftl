# SMS: kurz, und in Zeichen, die jedes Telefon zeigt, wo die Sprache es erlaubt.

sms-date-time = { $date }, { $time } Uhr
sms-availability-new = { $count ->
    [one] { $practitioner }: Termin frei am { $when }. Buchen: { $link }
   *[other] { $practitioner }: { $count } Termine frei, der erste am { $when }. Buchen: { $link }
}
sms-availability-move-up = { $count ->
    [one] { $practitioner }: früherer Termin frei am { $when }. Vorverlegen: { $link }
   *[other] { $practitioner }: { $count } frühere Termine frei, der erste am { $when }. Vorverlegen: { $link }
}
