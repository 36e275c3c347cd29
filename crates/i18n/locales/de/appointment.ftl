# Die Seite hinter dem Link einer Bestätigung: der Termin und eine Schaltfläche, die ihn absagt.

appointment-page-title = Ihr Termin bei { $practitioner }
appointment-page-title-unknown = Ihr Termin
appointment-confirm-cancel = Ihr Termin ist gebucht. Sie können nicht kommen? Sagen Sie ihn ab, dann wird er den Patientinnen und Patienten auf der Warteliste angeboten.
appointment-cancel-button = Termin absagen
appointment-cancelled-now = Ihr Termin ist abgesagt. Er wird den Patientinnen und Patienten auf der Warteliste angeboten.
appointment-already-cancelled = Dieser Termin wurde abgesagt.
appointment-started = Dieser Termin hat bereits begonnen und kann hier nicht mehr abgesagt werden. Bitte rufen Sie in der Praxis an.
appointment-calendar = In meinen Kalender eintragen
appointment-footer = Die Uhrzeiten gelten für die Zeitzone { $zone }.
appointment-status-booked = Gebucht
appointment-status-cancelled = Abgesagt

appointment-error-expired = Dieser Link ist abgelaufen.
appointment-error-invalid = Dieser Link ist ungültig.
appointment-error-not-found = Wir konnten diesen Termin nicht finden.
