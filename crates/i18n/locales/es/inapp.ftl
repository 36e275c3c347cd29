# La notificación en la aplicación que anuncia citas disponibles.

inapp-title-new = Nuevas citas disponibles con { $practitioner }
inapp-title-move-up = Puede adelantar su cita con { $practitioner }
inapp-body = { $count ->
    [one] Hay { $count } cita disponible. Resérvela con un clic.
   *[other] Hay { $count } citas disponibles. Reserve una con un clic.
}
