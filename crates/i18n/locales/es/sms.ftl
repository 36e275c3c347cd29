# SMS: cortos, y en caracteres que todo teléfono muestra cuando el idioma lo permite.

sms-date-time = { $date }, { $time }
sms-availability-new = { $count ->
    [one] { $practitioner }: hay una cita libre el { $when }. Reservar: { $link }
   *[other] { $practitioner }: hay { $count } citas libres, la primera el { $when }. Reservar: { $link }
}
sms-availability-move-up = { $count ->
    [one] { $practitioner }: hay una cita antes libre el { $when }. Adelantar: { $link }
   *[other] { $practitioner }: hay { $count } citas antes libres, la primera el { $when }. Adelantar: { $link }
}
