# Conventions et formules communes à tous les messages aux patients.

# La région dont un « fr » sans région suit les conventions de dates et de nombres (BCP 47).
format-locale = fr-FR

amount = { $currency ->
    [EUR] { $number } €
    [USD] { $number } $ US
    [GBP] { $number } £GB
   *[other] { $number } { $currency }
}

time-range = { $date }, { $start }–{ $end }
time-range-overnight = { $date }, { $start } – { $end-date }, { $end }
date-time = { $date } à { $time }
in-zone = { $when } ({ $zone })

doctor = Dr { $name }

greeting = Bonjour { $name },
something-went-wrong = Une erreur s’est produite. Veuillez réessayer plus tard.
