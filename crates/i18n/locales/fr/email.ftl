# L’e-mail qui annonce des créneaux disponibles.

email-subject-new = Nouveaux créneaux de rendez-vous avec { $practitioner }
email-subject-move-up = Des créneaux plus tôt sont disponibles avec { $practitioner }
email-intro-new = { $practitioner } ({ $specialty }) propose de nouveaux créneaux de rendez-vous :
email-intro-move-up = { $practitioner } ({ $specialty }) peut vous recevoir plus tôt que votre rendez-vous actuel. Si l’un de ces créneaux vous convient, réservez-le et votre rendez-vous sera avancé :
email-book = Réserver ce créneau
email-book-link = Réserver ce créneau : { $url }
email-fee = Tarif de la consultation : { $amount }
email-held = Ces créneaux vous sont réservés, ainsi qu’à quelques autres patients, jusqu’au { $until } : le premier à réserver un créneau l’obtient. Passé ce délai, ils seront proposés aux patients suivants de la liste.
email-shared = Ces créneaux sont également proposés à d’autres patients : le premier à réserver un créneau l’obtient.
email-gone = Si un créneau n’est plus disponible lorsque vous ouvrez son lien, la page vous l’indiquera.
email-signature = slotcast, pour le compte de { $practitioner }
email-preferences = Préférences de notification
email-unsubscribe = Ne plus recevoir les e-mails de disponibilité
email-preferences-link = Choisissez les notifications que vous recevez : { $url }
email-unsubscribe-link = Ne plus recevoir ces e-mails de disponibilité : { $url }
