# Die Buchungsseite hinter dem Link einer E-Mail oder Benachrichtigung.

offer-page-title = Termin bei { $practitioner }
offer-page-title-unknown = Buchungslink
offer-choose = Wählen Sie einen Termin, um ihn zu buchen.
offer-used = Sie haben mit diesem Link bereits gebucht.
offer-none-left = Diese Termine sind nicht mehr frei.
offer-booked = Gebucht. Bis bald!
offer-moved = Ihr Termin wurde auf diese Zeit vorverlegt.
offer-book = Buchen
offer-footer = Alle Zeiten in der Zeitzone { $zone }. Wer zuerst bucht, erhält den Termin.

slot-booked-for-you = Für Sie gebucht
slot-available = Frei
slot-open-to-others = Für andere Patientinnen und Patienten frei
slot-yours = Ihr Termin
slot-held = Vorübergehend reserviert
slot-withdrawn = Nicht mehr angeboten
slot-started = Bereits begonnen
slot-taken = Vergeben

offer-error-expired = Dieser Buchungslink ist abgelaufen.
offer-error-invalid = Dieser Buchungslink ist ungültig.
offer-error-used = Mit diesem Link wurde bereits ein Termin gebucht.
offer-error-closed = Dieses Angebot ist nicht mehr gültig: Sie stehen nicht mehr auf der zugehörigen Warteliste.
offer-error-not-earlier = Ihr Termin liegt bereits zu dieser Zeit oder früher.
offer-error-not-offered = Dieser Link bietet diesen Termin nicht an.
offer-error-gone = Die Termine dieses Links gibt es nicht mehr.
offer-error-started = Dieser Termin hat bereits begonnen.
offer-error-taken = Dieser Termin wurde leider gerade von jemand anderem gebucht.
offer-error-withdrawn = Die Praxis hat diesen Termin zurückgezogen.
offer-error-held = Dieser Termin ist vorübergehend für andere Patientinnen und Patienten reserviert.
