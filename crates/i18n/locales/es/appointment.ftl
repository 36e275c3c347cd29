# La página detrás del enlace de una confirmación: la cita y un botón para cancelarla.

appointment-page-title = Su cita con { $practitioner }
appointment-page-title-unknown = Su cita
appointment-confirm-cancel = Su cita está reservada. ¿Ya no puede venir? Cancélela y el horario se ofrecerá a los pacientes de la lista de espera.
appointment-cancel-button = Cancelar esta cita
appointment-cancelled-now = Su cita está cancelada. El horario se ofrecerá a los pacientes de la lista de espera.
appointment-already-cancelled = Esta cita se ha cancelado.
appointment-started = Esta cita ya ha empezado y no se puede cancelar aquí. Llame a la consulta, por favor.
appointment-calendar = Añadir a mi calendario
appointment-footer = Los horarios están en la zona horaria { $zone }.
appointment-status-booked = Reservada
appointment-status-cancelled = Cancelada

appointment-error-expired = Este enlace ha caducado.
appointment-error-invalid = Este enlace no es válido.
appointment-error-not-found = No hemos encontrado esta cita.
