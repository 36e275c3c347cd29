# La página de reserva detrás del enlace de un correo o una notificación.

offer-page-title = Cita con { $practitioner }
offer-page-title-unknown = Enlace de reserva
offer-choose = Elija un horario para reservarlo.
offer-used = Ya ha reservado con este enlace.
offer-none-left = Estos horarios ya no están disponibles.
offer-booked = Reservado. ¡Hasta pronto!
offer-moved = Su cita se ha adelantado a este horario.
offer-book = Reservar
offer-footer = Los horarios se indican en la zona horaria { $zone }. El primer paciente que reserve un horario se lo queda.

slot-booked-for-you = Reservado para usted
slot-available = Disponible
slot-open-to-others = Disponible para otros pacientes
slot-yours = Su cita
slot-held = Reservado por ahora
slot-withdrawn = Ya no se ofrece
slot-started = Ya ha empezado
slot-taken = Ocupado

offer-error-expired = Este enlace de reserva ha caducado.
offer-error-invalid = Este enlace de reserva no es válido.
offer-error-used = Este enlace ya se ha utilizado para reservar una cita.
offer-error-closed = Esta oferta está cerrada: ya no figura en la lista de espera correspondiente.
offer-error-not-earlier = Su cita ya es a esta hora o antes.
offer-error-not-offered = Este enlace no ofrece ese horario.
offer-error-gone = Los horarios de este enlace ya no existen.
offer-error-started = Este horario ya ha empezado.
offer-error-taken = Lo sentimos, otra persona acaba de reservar este horario.
offer-error-withdrawn = La consulta ha retirado este horario.
offer-error-held = Este horario está reservado para otros pacientes por ahora.
