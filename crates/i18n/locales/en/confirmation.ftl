# The confirmation of a booking, a move to an earlier time, or a cancellation: email, in-app
# item and calendar entry.

confirm-subject-booked = Appointment confirmed with { $practitioner }
confirm-subject-moved = Your appointment with { $practitioner } has moved earlier
confirm-subject-cancelled = Appointment cancelled with { $practitioner }
confirm-intro-booked = Your appointment with { $practitioner } ({ $specialty }) is booked:
confirm-intro-moved = Your appointment with { $practitioner } ({ $specialty }) has moved to an earlier time:
confirm-intro-cancelled = Your appointment with { $practitioner } ({ $specialty }) has been cancelled:
confirm-replaces = This replaces your appointment on { $when }, which is now offered to other patients.
confirm-freed = The time is now offered to patients on the waiting list.
confirm-calendar = The calendar entry attached to this email adds the appointment to your calendar.
confirm-calendar-moved = The calendar entry attached to this email moves the appointment in your calendar.
confirm-calendar-cancelled = The calendar entry attached to this email removes the appointment from your calendar.
confirm-cant-come = If you can no longer come, please cancel: the time will go to someone on the waiting list.
confirm-manage = See or cancel this appointment
confirm-manage-link = See or cancel this appointment: { $url }
confirm-view = See this appointment
confirm-view-link = See this appointment: { $url }

inapp-confirm-title-booked = Appointment confirmed with { $practitioner }
inapp-confirm-title-moved = Appointment moved earlier with { $practitioner }
inapp-confirm-title-cancelled = Appointment cancelled with { $practitioner }
inapp-confirm-body-booked = { $when }.
inapp-confirm-body-moved = Now { $when }, instead of { $replaced }.
inapp-confirm-body-cancelled = The appointment on { $when } is cancelled.

calendar-summary = Appointment with { $practitioner }
calendar-description = { $specialty }. See or cancel this appointment: { $url }
