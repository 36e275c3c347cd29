# Konventionen und Wendungen, die alle Nachrichten an Patienten teilen.

# Die Region, deren Datums- und Zahlenformate ein „de“ ohne Region verwendet (BCP 47).
format-locale = de-DE

amount = { $currency ->
    [EUR] { $number } €
    [USD] { $number } $
    [GBP] { $number } £
   *[other] { $number } { $currency }
}

time-range = { $date }, { $start }–{ $end } Uhr
time-range-overnight = { $date }, { $start } Uhr – { $end-date }, { $end } Uhr
date-time = { $date } um { $time } Uhr
in-zone = { $when } ({ $zone })

doctor = Dr. { $name }

greeting = Guten Tag { $name },
something-went-wrong = Leider ist ein Fehler aufgetreten. Bitte versuchen Sie es später noch einmal.
