# La page derrière le lien d’une confirmation : le rendez-vous, et un bouton pour l’annuler.

appointment-page-title = Votre rendez-vous avec { $practitioner }
appointment-page-title-unknown = Votre rendez-vous
appointment-confirm-cancel = Votre rendez-vous est réservé. Vous ne pouvez plus venir ? Annulez-le : le créneau sera proposé aux patients de la liste d’attente.
appointment-cancel-button = Annuler ce rendez-vous
appointment-cancelled-now = Votre rendez-vous est annulé. Le créneau sera proposé aux patients de la liste d’attente.
appointment-already-cancelled = Ce rendez-vous a été annulé.
appointment-started = Ce rendez-vous a déjà commencé : il ne peut plus être annulé ici. Merci d’appeler le cabinet.
appointment-calendar = Ajouter à mon agenda
appointment-footer = Les horaires sont indiqués dans le fuseau { $zone }.
appointment-status-booked = Réservé
appointment-status-cancelled = Annulé

appointment-error-expired = Ce lien a expiré.
appointment-error-invalid = Ce lien n’est pas valide.
appointment-error-not-found = Nous n’avons pas trouvé ce rendez-vous.
