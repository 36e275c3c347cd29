# SMS: cortos, y en caracteres que todo teléfono muestra cuando el idioma lo permite.

sms-date-time = { $date }, { $time }
sms-availability-new = { $count ->
    [one] { $practitioner }: hay una cita libre el { $when }. Responda SI para reservarla, o vea { $link }
   *[other] { $practitioner }: hay { $count } citas libres: { $list }. Responda con un número para reservar, o vea { $link }
}
sms-availability-move-up = { $count ->
    [one] { $practitioner }: hay una cita antes libre el { $when }. Responda SI para adelantar, o vea { $link }
   *[other] { $practitioner }: hay { $count } citas antes libres: { $list }. Responda con un número para adelantar, o vea { $link }
}

# Without the list, when the list would not fit one SMS.
sms-availability-new-short = { $practitioner }: hay { $count } citas libres, la primera el { $when }. Responda 1 para reservarla, o vea { $link }
sms-availability-move-up-short = { $practitioner }: hay { $count } citas antes libres, la primera el { $when }. Responda 1 para adelantar, o vea { $link }

# Respuestas al SMS de un paciente.
sms-booked = Reservada: { $practitioner }, { $when }. Le enviaremos una confirmación.
sms-taken = Lo sentimos, esa cita acaba de ser tomada. Siguen libres: { $list }. Responda con su número para reservar.
sms-taken-none = Lo sentimos, esa cita acaba de ser tomada, y no queda ninguna otra libre de esta oferta.
sms-expired = Lo sentimos, esta oferta ha caducado.
sms-pick = Responda con un número del 1 al { $last }, o SI para la primera cita.
sms-no-offer = No hay ninguna oferta abierta para este número. Responda AYUDA para ayuda, STOP para no recibir más SMS.
sms-help = SMS sobre citas libres. Responda SI o el número de una cita para reservarla, STOP para no recibir más SMS, START para recibirlos de nuevo.
sms-stopped = No recibirá más SMS nuestros. Responda START para recibirlos de nuevo.
sms-started = Recibirá de nuevo SMS sobre citas libres. Responda STOP para dejar de recibirlos.
