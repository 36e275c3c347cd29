# Text messages (SMS): short, and in characters every phone can show where the language allows.

sms-date-time = { $date } { $time }
sms-availability-new = { $count ->
    [one] { $practitioner }: a time is free on { $when }. Book: { $link }
   *[other] { $practitioner }: { $count } times are free, the first on { $when }. Book: { $link }
}
sms-availability-move-up = { $count ->
    [one] { $practitioner }: an earlier time is free on { $when }. Move up: { $link }
   *[other] { $practitioner }: { $count } earlier times are free, the first on { $when }. Move up: { $link }
}
