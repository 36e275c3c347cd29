# Die Bestätigung einer Buchung, einer Vorverlegung oder einer Absage: E-Mail,
# Benachrichtigung in der App und Kalendereintrag.

confirm-subject-booked = Termin bei { $practitioner } bestätigt
confirm-subject-moved = Ihr Termin bei { $practitioner } wurde vorverlegt
confirm-subject-cancelled = Termin bei { $practitioner } abgesagt
confirm-intro-booked = Ihr Termin bei { $practitioner } ({ $specialty }) ist gebucht:
confirm-intro-moved = Ihr Termin bei { $practitioner } ({ $specialty }) wurde vorverlegt:
confirm-intro-cancelled = Ihr Termin bei { $practitioner } ({ $specialty }) wurde abgesagt:
confirm-replaces = Er ersetzt Ihren Termin am { $when }, der jetzt anderen Patientinnen und Patienten angeboten wird.
confirm-freed = Der Termin wird jetzt den Patientinnen und Patienten auf der Warteliste angeboten.
confirm-calendar = Mit dem Kalendereintrag im Anhang tragen Sie den Termin in Ihren Kalender ein.
confirm-calendar-moved = Der Kalendereintrag im Anhang verschiebt den Termin in Ihrem Kalender.
confirm-calendar-cancelled = Der Kalendereintrag im Anhang entfernt den Termin aus Ihrem Kalender.
confirm-cant-come = Wenn Sie nicht kommen können, sagen Sie bitte ab: Dann erhält jemand von der Warteliste den Termin.
confirm-manage = Termin ansehen oder absagen
confirm-manage-link = Termin ansehen oder absagen: { $url }
confirm-view = Termin ansehen
confirm-view-link = Termin ansehen: { $url }

inapp-confirm-title-booked = Termin bei { $practitioner } bestätigt
inapp-confirm-title-moved = Termin bei { $practitioner } vorverlegt
inapp-confirm-title-cancelled = Termin bei { $practitioner } abgesagt
inapp-confirm-body-booked = { $when }.
inapp-confirm-body-moved = Jetzt { $when }, statt { $replaced }.
inapp-confirm-body-cancelled = Der Termin am { $when } ist abgesagt.

calendar-summary = Termin bei { $practitioner }
calendar-description = { $specialty }. Termin ansehen oder absagen: { $url }
