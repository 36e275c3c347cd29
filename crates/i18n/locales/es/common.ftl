# Convenciones y fórmulas comunes a todos los mensajes a pacientes.

# La región cuyas convenciones de fechas y números sigue un «es» sin región (BCP 47).
format-locale = es-ES

amount = { $currency ->
    [EUR] { $number } €
    [USD] { $number } US$
    [GBP] { $number } GBP
   *[other] { $number } { $currency }
}

time-range = { $date }, { $start }–{ $end }
time-range-overnight = { $date }, { $start } – { $end-date }, { $end }
date-time = { $date } a las { $time }
in-zone = { $when } ({ $zone })

doctor = Dr. { $name }

greeting = Hola, { $name }:
something-went-wrong = Se ha producido un error. Vuelva a intentarlo más tarde.
