# El correo que anuncia horarios de cita disponibles.

email-subject-new = Nuevas citas disponibles con { $practitioner }
email-subject-move-up = Puede adelantar su cita con { $practitioner }
email-intro-new = { $practitioner } ({ $specialty }) tiene nuevas citas disponibles:
email-intro-move-up = { $practitioner } ({ $specialty }) puede atenderle antes de la cita que tiene reservada. Si alguno de estos horarios le viene bien, resérvelo y su cita se adelantará:
email-book = Reservar esta cita
email-book-link = Reservar esta cita: { $url }
email-fee = Precio de la consulta: { $amount }
email-held = Estos horarios están reservados para usted y algunos otros pacientes hasta el { $until }: quien reserve primero se queda con la cita. Después, se ofrecerán a los siguientes pacientes de la lista.
email-shared = Estos horarios también se ofrecen a otros pacientes: quien reserve primero se queda con la cita.
email-gone = Si un horario ya no está disponible cuando abra su enlace, la página se lo indicará.
email-signature = slotcast, en nombre de { $practitioner }
email-preferences = Preferencias de notificaciones
email-unsubscribe = Darse de baja de los correos de disponibilidad
email-preferences-link = Elija qué notificaciones recibe: { $url }
email-unsubscribe-link = Dejar de recibir estos correos de disponibilidad: { $url }
