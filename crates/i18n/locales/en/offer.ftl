# The booking page behind the link of an email or notification.

offer-page-title = Appointment with { $practitioner }
offer-page-title-unknown = Booking link
offer-choose = Choose a time to book it.
offer-used = You have booked with this link.
offer-none-left = These times are no longer available.
offer-booked = Booked. See you then.
offer-moved = Your appointment has moved to this time.
offer-book = Book
offer-footer = Times are in { $zone }. The first patient to book a time gets it.

slot-booked-for-you = Booked for you
slot-available = Available
slot-open-to-others = Open to other patients
slot-yours = Your appointment
slot-held = Reserved for now
slot-withdrawn = No longer offered
slot-started = Already started
slot-taken = Taken

offer-error-expired = This booking link has expired.
offer-error-invalid = This booking link is not valid.
offer-error-used = This link has already been used to book an appointment.
offer-error-closed = This offer is closed: you are no longer on the waiting list for it.
offer-error-not-earlier = Your appointment is already at this time or earlier.
offer-error-not-offered = This link does not offer that time.
offer-error-gone = The times of this link no longer exist.
offer-error-started = This time has already started.
offer-error-taken = Sorry, someone else has just booked this time.
offer-error-withdrawn = This time has been withdrawn by the practice.
offer-error-held = This time is reserved for other patients for now.
