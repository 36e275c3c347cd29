# La confirmación de una reserva, de una cita adelantada o de una cancelación: correo,
# notificación en la aplicación y entrada de calendario.

confirm-subject-booked = Cita confirmada con { $practitioner }
confirm-subject-moved = Su cita con { $practitioner } se ha adelantado
confirm-subject-cancelled = Cita cancelada con { $practitioner }
confirm-intro-booked = Su cita con { $practitioner } ({ $specialty }) está reservada:
confirm-intro-moved = Su cita con { $practitioner } ({ $specialty }) se ha adelantado:
confirm-intro-cancelled = Su cita con { $practitioner } ({ $specialty }) se ha cancelado:
confirm-replaces = Sustituye a su cita del { $when }, que ahora se ofrece a otros pacientes.
confirm-freed = Este horario se ofrece ahora a los pacientes de la lista de espera.
confirm-calendar = La invitación adjunta a este correo añade la cita a su calendario.
confirm-calendar-moved = La invitación adjunta a este correo cambia la cita de hora en su calendario.
confirm-calendar-cancelled = La invitación adjunta a este correo elimina la cita de su calendario.
confirm-cant-come = Si ya no puede venir, cancele la cita, por favor: el horario pasará a otra persona de la lista de espera.
confirm-manage = Ver o cancelar esta cita
confirm-manage-link = Ver o cancelar esta cita: { $url }
confirm-view = Ver esta cita
confirm-view-link = Ver esta cita: { $url }

inapp-confirm-title-booked = Cita confirmada con { $practitioner }
inapp-confirm-title-moved = Cita adelantada con { $practitioner }
inapp-confirm-title-cancelled = Cita cancelada con { $practitioner }
inapp-confirm-body-booked = { $when }.
inapp-confirm-body-moved = Ahora { $when }, en lugar del { $replaced }.
inapp-confirm-body-cancelled = La cita del { $when } está cancelada.

calendar-summary = Cita con { $practitioner }
calendar-description = { $specialty }. Ver o cancelar esta cita: { $url }
