# Las páginas de preferencias de notificaciones y de baja.

prefs-page-title = Preferencias de notificaciones
prefs-choose = Elija qué mensajes sobre citas disponibles desea recibir.
prefs-saved = Sus preferencias se han guardado.
prefs-confirm-unsubscribe = ¿Desea dejar de recibir correos sobre citas disponibles?
prefs-already-unsubscribed = No recibe correos sobre citas disponibles.
prefs-unsubscribed = Baja confirmada: ya no recibirá correos sobre citas disponibles.
prefs-unsubscribe-button = Dejar de recibir estos correos
prefs-email-legend = Correos sobre citas disponibles
prefs-inapp-legend = Notificaciones en la aplicación sobre citas disponibles
prefs-sms-legend = SMS sobre citas disponibles
prefs-sms-on = Activados: acepto recibir SMS
prefs-sms-off = Desactivados
prefs-on = Activadas
prefs-off = Desactivadas
prefs-save = Guardar
prefs-footer = Esta configuración se aplica a los mensajes sobre citas que quedan libres.

prefs-error-expired = Este enlace ha caducado.
prefs-error-invalid = Este enlace no es válido.
prefs-error-not-found = No hemos encontrado sus preferencias.
prefs-error-invalid-form = Elija «Activadas» o «Desactivadas» para cada opción.
