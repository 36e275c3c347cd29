# La notification dans l’application qui annonce des créneaux disponibles.

inapp-title-new = Nouveaux créneaux avec { $practitioner }
inapp-title-move-up = Des créneaux plus tôt avec { $practitioner }
inapp-body = { $count ->
    [one] { $count } créneau est disponible. Réservez-le en un clic.
   *[other] { $count } créneaux sont disponibles. Réservez-en un en un clic.
}
