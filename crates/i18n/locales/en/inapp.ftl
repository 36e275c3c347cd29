# The in-app notification about available appointment times.

inapp-title-new = New appointment times with { $practitioner }
inapp-title-move-up = Earlier appointment times with { $practitioner }
inapp-body = { $count ->
    [one] 1 time is available. Book it in a click.
   *[other] { $count } times are available. Book one in a click.
}
