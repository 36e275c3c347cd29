# The page behind the link of a confirmation: the appointment, and a button that cancels it.

appointment-page-title = Your appointment with { $practitioner }
appointment-page-title-unknown = Your appointment
appointment-confirm-cancel = Your appointment is booked. Can you no longer come? Cancel it, and the time will be offered to patients on the waiting list.
appointment-cancel-button = Cancel this appointment
appointment-cancelled-now = Your appointment is cancelled. The time will be offered to patients on the waiting list.
appointment-already-cancelled = This appointment has been cancelled.
appointment-started = This appointment has already started: it can no longer be cancelled here. Please call the practice.
appointment-calendar = Add to my calendar
appointment-footer = Times are in { $zone }.
appointment-status-booked = Booked
appointment-status-cancelled = Cancelled

appointment-error-expired = This link has expired.
appointment-error-invalid = This link is not valid.
appointment-error-not-found = We could not find this appointment.
