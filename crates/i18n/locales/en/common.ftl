# Conventions and phrases shared by every message to a patient.

# The region whose date, time and number conventions a bare "en" follows (BCP 47).
format-locale = en-GB

# An amount: { $number } is already written with this language's separators.
amount = { $currency ->
    [EUR] €{ $number }
    [USD] ${ $number }
    [GBP] £{ $number }
   *[other] { $currency } { $number }
}

# A slot: "Saturday, 5 December 2026, 10:00–10:30".
time-range = { $date }, { $start }–{ $end }
time-range-overnight = { $date }, { $start } – { $end-date }, { $end }
# A moment: "Saturday, 5 December 2026 at 10:00".
date-time = { $date } at { $time }
# A slot or moment with its time zone.
in-zone = { $when } ({ $zone })

# A practitioner's name with their title, when the name has none.
doctor = Dr { $name }

greeting = Hello { $name },
something-went-wrong = Something went wrong. Please try again later.
