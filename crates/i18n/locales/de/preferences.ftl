# Die Seiten der Benachrichtigungseinstellungen und der Abbestellung.

prefs-page-title = Einstellungen für Benachrichtigungen
prefs-choose = Wählen Sie, welche Nachrichten zu freien Terminen Sie erhalten möchten.
prefs-saved = Ihre Einstellungen wurden gespeichert.
prefs-confirm-unsubscribe = Möchten Sie keine E-Mails zu freien Terminen mehr erhalten?
prefs-already-unsubscribed = Sie erhalten keine E-Mails zu freien Terminen.
prefs-unsubscribed = Abbestellt: Sie erhalten keine E-Mails zu freien Terminen mehr.
prefs-unsubscribe-button = E-Mails zu freien Terminen abbestellen
prefs-email-legend = E-Mails zu freien Terminen
prefs-inapp-legend = Benachrichtigungen in der App zu freien Terminen
prefs-sms-legend = SMS zu freien Terminen
prefs-sms-on = An: Ich bin mit SMS einverstanden
prefs-sms-off = Aus
prefs-on = An
prefs-off = Aus
prefs-save = Speichern
prefs-footer = Diese Einstellungen gelten für Nachrichten über frei werdende Termine.

prefs-error-expired = Dieser Link ist abgelaufen.
prefs-error-invalid = Dieser Link ist ungültig.
prefs-error-not-found = Ihre Einstellungen wurden nicht gefunden.
prefs-error-invalid-form = Bitte wählen Sie für jede Einstellung „An“ oder „Aus“.
