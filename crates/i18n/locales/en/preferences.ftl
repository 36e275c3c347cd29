# The notification preferences and unsubscribe pages.

prefs-page-title = Notification preferences
prefs-choose = Choose which messages about available appointments you receive.
prefs-saved = Saved.
prefs-confirm-unsubscribe = Stop emails about available appointments?
prefs-already-unsubscribed = You receive no emails about available appointments.
prefs-unsubscribed = Unsubscribed: you will receive no more emails about available appointments.
prefs-unsubscribe-button = Stop availability emails
prefs-email-legend = Emails about available appointments
prefs-inapp-legend = In-app notifications about available appointments
prefs-sms-legend = Text messages about available appointments
prefs-sms-on = On: I agree to receive text messages
prefs-sms-off = Off
prefs-on = On
prefs-off = Off
prefs-save = Save
prefs-footer = These settings apply to messages about appointments that become available.

prefs-error-expired = This link has expired.
prefs-error-invalid = This link is not valid.
prefs-error-not-found = We could not find your preferences.
prefs-error-invalid-form = Please choose On or Off for each setting.
