# Les SMS : courts, et dans les caractères que tout téléphone affiche quand la langue le permet.

sms-date-time = { $date } à { $time }
sms-availability-new = { $count ->
    [one] { $practitioner } : un créneau est libre le { $when }. Réserver : { $link }
   *[other] { $practitioner } : { $count } créneaux sont libres, le premier le { $when }. Réserver : { $link }
}
sms-availability-move-up = { $count ->
    [one] { $practitioner } : un créneau plus tôt est libre le { $when }. Avancer : { $link }
   *[other] { $practitioner } : { $count } créneaux plus tôt sont libres, le premier le { $when }. Avancer : { $link }
}
