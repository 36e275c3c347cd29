# Les SMS : courts, et dans les caractères que tout téléphone affiche quand la langue le permet.

sms-date-time = { $date } à { $time }
sms-availability-new = { $count ->
    [one] { $practitioner } : un créneau est libre le { $when }. Répondez OUI pour le réserver, ou voir { $link }
   *[other] { $practitioner } : { $count } créneaux libres : { $list }. Répondez par un numéro pour réserver, ou voir { $link }
}
sms-availability-move-up = { $count ->
    [one] { $practitioner } : un créneau plus tôt est libre le { $when }. Répondez OUI pour avancer, ou voir { $link }
   *[other] { $practitioner } : { $count } créneaux plus tôt libres : { $list }. Répondez par un numéro pour avancer, ou voir { $link }
}

# Without the list, when the list would not fit one SMS.
sms-availability-new-short = { $practitioner } : { $count } créneaux libres, le premier le { $when }. Répondez 1 pour le réserver, ou voir { $link }
sms-availability-move-up-short = { $practitioner } : { $count } créneaux plus tôt libres, le premier le { $when }. Répondez 1 pour avancer, ou voir { $link }

# Les réponses au SMS d'un patient.
sms-booked = Réservé : { $practitioner }, { $when }. Une confirmation suit.
sms-taken = Désolé, ce créneau vient d'être pris. Encore libres : { $list }. Répondez par son numéro pour réserver.
sms-taken-none = Désolé, ce créneau vient d'être pris, et aucun autre de cette offre n'est libre.
sms-expired = Désolé, cette offre a expiré.
sms-pick = Répondez par un numéro de 1 à { $last }, ou OUI pour le premier créneau.
sms-no-offer = Aucune offre en cours pour ce numéro. Répondez AIDE pour l'aide, STOP pour ne plus recevoir de SMS.
sms-help = SMS sur les créneaux libres. Répondez OUI ou le numéro d'un créneau pour le réserver, STOP pour ne plus recevoir de SMS, START pour les recevoir à nouveau.
sms-stopped = Vous ne recevrez plus de SMS de notre part. Répondez START pour les recevoir à nouveau.
sms-started = Vous recevrez à nouveau les SMS sur les créneaux libres. Répondez STOP pour les arrêter.
