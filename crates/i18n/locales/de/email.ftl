# Die E-Mail, die freie Termine ankündigt.

email-subject-new = Neue freie Termine bei { $practitioner }
email-subject-move-up = Frühere Termine bei { $practitioner } frei
email-intro-new = { $practitioner } ({ $specialty }) hat neue freie Termine:
email-intro-move-up = { $practitioner } ({ $specialty }) kann Sie früher als zu Ihrem bisherigen Termin empfangen. Wenn Ihnen einer dieser Termine passt, buchen Sie ihn, und Ihr Termin wird vorverlegt:
email-book = Diesen Termin buchen
email-book-link = Diesen Termin buchen: { $url }
email-fee = Kosten der Konsultation: { $amount }
email-held = Diese Termine sind bis { $until } für Sie und einige andere Patientinnen und Patienten reserviert: Wer zuerst bucht, erhält den Termin. Danach werden sie den Nächsten auf der Warteliste angeboten.
email-shared = Diese Termine werden auch anderen Patientinnen und Patienten angeboten: Wer zuerst bucht, erhält den Termin.
email-gone = Ist ein Termin bereits vergeben, wenn Sie den Link öffnen, sehen Sie das auf der Seite.
email-signature = slotcast, im Auftrag von { $practitioner }
email-preferences = Benachrichtigungseinstellungen
email-unsubscribe = E-Mails zu freien Terminen abbestellen
email-preferences-link = Wählen Sie, welche Benachrichtigungen Sie erhalten: { $url }
email-unsubscribe-link = Diese E-Mails zu freien Terminen abbestellen: { $url }
