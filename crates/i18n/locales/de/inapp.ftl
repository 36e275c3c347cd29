# Die Benachrichtigung in der App, die freie Termine ankündigt.

inapp-title-new = Neue freie Termine bei { $practitioner }
inapp-title-move-up = Frühere Termine bei { $practitioner } frei
inapp-body = { $count ->
    [one] { $count } Termin ist frei. Buchen Sie ihn mit einem Klick.
   *[other] { $count } Termine sind frei. Buchen Sie einen davon mit einem Klick.
}
