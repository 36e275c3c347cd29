# La page de réservation derrière le lien d’un e-mail ou d’une notification.

offer-page-title = Rendez-vous avec { $practitioner }
offer-page-title-unknown = Lien de réservation
offer-choose = Choisissez un créneau pour le réserver.
offer-used = Vous avez déjà réservé avec ce lien.
offer-none-left = Ces créneaux ne sont plus disponibles.
offer-booked = C’est réservé. À bientôt !
offer-moved = Votre rendez-vous a été avancé à ce créneau.
offer-book = Réserver
offer-footer = Les horaires sont indiqués dans le fuseau { $zone }. Le premier patient à réserver un créneau l’obtient.

slot-booked-for-you = Réservé pour vous
slot-available = Disponible
slot-open-to-others = Proposé à d’autres patients
slot-yours = Votre rendez-vous
slot-held = Réservé pour le moment
slot-withdrawn = N’est plus proposé
slot-started = Déjà commencé
slot-taken = Déjà pris

offer-error-expired = Ce lien de réservation a expiré.
offer-error-invalid = Ce lien de réservation n’est pas valide.
offer-error-used = Ce lien a déjà servi à réserver un rendez-vous.
offer-error-closed = Cette proposition est close : vous n’êtes plus sur la liste d’attente correspondante.
offer-error-not-earlier = Votre rendez-vous est déjà à cette heure-ci ou plus tôt.
offer-error-not-offered = Ce lien ne propose pas ce créneau.
offer-error-gone = Les créneaux de ce lien n’existent plus.
offer-error-started = Ce créneau a déjà commencé.
offer-error-taken = Désolés, quelqu’un vient de réserver ce créneau.
offer-error-withdrawn = Ce créneau a été retiré par le cabinet.
offer-error-held = Ce créneau est réservé à d’autres patients pour le moment.
