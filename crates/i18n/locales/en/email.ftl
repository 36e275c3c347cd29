# The email about available appointment times.

email-subject-new = New appointment times with { $practitioner }
email-subject-move-up = Earlier appointment times with { $practitioner }
email-intro-new = { $practitioner } ({ $specialty }) has new appointment times:
email-intro-move-up = { $practitioner } ({ $specialty }) can see you at an earlier time than the appointment you hold. If one of these times suits you, book it and your appointment moves up:
email-book = Book this time
email-book-link = Book this time: { $url }
email-fee = Consultation fee: { $amount }
email-held = These times are held for you and a few other patients until { $until }: the first of you to book a time gets it. After that, they are offered to the next patients on the list.
email-shared = These times are offered to other patients too: the first to book a time gets it.
email-gone = If a time is gone when you open its link, the page says so.
email-signature = slotcast, on behalf of { $practitioner }
email-preferences = Notification preferences
email-unsubscribe = Unsubscribe from availability emails
email-preferences-link = Choose which notifications you get: { $url }
email-unsubscribe-link = Stop these availability emails: { $url }
