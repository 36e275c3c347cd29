# La confirmation d’une réservation, d’un rendez-vous avancé ou d’une annulation : e-mail,
# notification dans l’application et entrée d’agenda.

confirm-subject-booked = Rendez-vous confirmé avec { $practitioner }
confirm-subject-moved = Votre rendez-vous avec { $practitioner } a été avancé
confirm-subject-cancelled = Rendez-vous annulé avec { $practitioner }
confirm-intro-booked = Votre rendez-vous avec { $practitioner } ({ $specialty }) est réservé :
confirm-intro-moved = Votre rendez-vous avec { $practitioner } ({ $specialty }) a été avancé :
confirm-intro-cancelled = Votre rendez-vous avec { $practitioner } ({ $specialty }) a été annulé :
confirm-replaces = Il remplace votre rendez-vous du { $when }, désormais proposé à d’autres patients.
confirm-freed = Ce créneau est désormais proposé aux patients de la liste d’attente.
confirm-calendar = L’invitation jointe à cet e-mail ajoute le rendez-vous à votre agenda.
confirm-calendar-moved = L’invitation jointe à cet e-mail déplace le rendez-vous dans votre agenda.
confirm-calendar-cancelled = L’invitation jointe à cet e-mail retire le rendez-vous de votre agenda.
confirm-cant-come = Si vous ne pouvez plus venir, merci d’annuler : le créneau ira à un autre patient de la liste d’attente.
confirm-manage = Voir ou annuler ce rendez-vous
confirm-manage-link = Voir ou annuler ce rendez-vous : { $url }
confirm-view = Voir ce rendez-vous
confirm-view-link = Voir ce rendez-vous : { $url }

inapp-confirm-title-booked = Rendez-vous confirmé avec { $practitioner }
inapp-confirm-title-moved = Rendez-vous avancé avec { $practitioner }
inapp-confirm-title-cancelled = Rendez-vous annulé avec { $practitioner }
inapp-confirm-body-booked = { $when }.
inapp-confirm-body-moved = Désormais { $when }, au lieu du { $replaced }.
inapp-confirm-body-cancelled = Le rendez-vous du { $when } est annulé.

calendar-summary = Rendez-vous avec { $practitioner }
calendar-description = { $specialty }. Voir ou annuler ce rendez-vous : { $url }
