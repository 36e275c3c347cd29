# Text messages (SMS): short, and in characters every phone can show where the language allows.

sms-date-time = { $date } { $time }
sms-availability-new = { $count ->
    [one] { $practitioner }: a time is free on { $when }. Reply YES to book it, or see { $link }
   *[other] { $practitioner }: { $count } times are free: { $list }. Reply with a number to book, or see { $link }
}
sms-availability-move-up = { $count ->
    [one] { $practitioner }: an earlier time is free on { $when }. Reply YES to move up, or see { $link }
   *[other] { $practitioner }: { $count } earlier times are free: { $list }. Reply with a number to move up, or see { $link }
}

# Without the list, when the list would not fit one SMS.
sms-availability-new-short = { $practitioner }: { $count } times are free, the first on { $when }. Reply 1 to book it, or see { $link }
sms-availability-move-up-short = { $practitioner }: { $count } earlier times are free, the first on { $when }. Reply 1 to move up, or see { $link }

# Answers to a patient's text.
sms-booked = Booked: { $practitioner }, { $when }. A confirmation follows.
sms-taken = Sorry, that time was just taken. Still free: { $list }. Reply with its number to book.
sms-taken-none = Sorry, that time was just taken, and no other time of this offer is free.
sms-expired = Sorry, this offer has expired.
sms-pick = Please reply with a number from 1 to { $last }, or YES for the first time.
sms-no-offer = There is no open offer for this number. Reply HELP for help, STOP to stop texts.
sms-help = Texts about free appointment times. Reply YES or a time's number to book it, STOP to stop texts, START to get them again.
sms-stopped = You will get no more texts from us. Reply START to get them again.
sms-started = You will get texts about free appointment times again. Reply STOP to stop them.
