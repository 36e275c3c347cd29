//! The calendar entry of an appointment: one `VEVENT` in an RFC 5545 `VCALENDAR`, written with
//! the `icalendar` crate, its words in the patient's language ([`Words`]). The email notifier
//! attaches it to confirmations; scheduling serves it behind the confirmation's link.
//!
//! One entry per appointment: its `UID` is the appointment's id, so a move-up (which keeps the
//! appointment) updates the entry already in the patient's calendar, and its `SEQUENCE` grows at
//! every change (0 when booked, one more at each move and at the cancellation), so a client
//! applies the changes in order and ignores a stale one. Times are written in UTC (`...Z`):
//! every client shows them in its own zone, and no `VTIMEZONE` is needed.
//!
//! The method says what an email asks of the patient's calendar (RFC 5546): `REQUEST` adds or
//! updates the entry, `CANCEL` removes it. A file downloaded from a link is `PUBLISH`: it is not
//! an invitation, there is no organizer to answer.

use chrono::{DateTime, Utc};
use icalendar::{Calendar, Component, EventLike, EventStatus, Property};
use slotcast_i18n::Locale;
use uuid::Uuid;

/// What the calendar entry asks of the client that reads it (RFC 5546 `METHOD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Add the entry, or update it when its `SEQUENCE` is higher than the one held.
    Request,
    /// Remove the entry.
    Cancel,
    /// A copy of the entry as it stands, to import.
    Publish,
}

impl Method {
    /// The `METHOD` value, also the `method` parameter of a `text/calendar` MIME part.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Request => "REQUEST",
            Method::Cancel => "CANCEL",
            Method::Publish => "PUBLISH",
        }
    }
}

/// Someone named in the entry: the organizer or the patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Person<'a> {
    pub name: &'a str,
    pub email: &'a str,
}

/// An appointment as its calendar entry shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub appointment_id: Uuid,
    pub sequence: u32,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// The title, in the patient's language ("Appointment with Dr Ada Lovelace").
    pub summary: &'a str,
    pub description: &'a str,
    /// The appointment's page.
    pub url: Option<&'a str>,
    /// Who sends the entry (REQUEST and CANCEL need one, RFC 5546 §3.2).
    pub organizer: Option<Person<'a>>,
    /// The patient, who has accepted already: no answer is asked for.
    pub attendee: Option<Person<'a>>,
    /// The entry is cancelled.
    pub cancelled: bool,
    /// When this version of the entry was made (`DTSTAMP`).
    pub stamp: DateTime<Utc>,
}

/// The words of an entry, in the patient's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    pub summary: String,
    pub description: String,
    pub url: String,
}

impl Words {
    /// The entry's title and description for an appointment with `practitioner`, whose page is
    /// `manage_url`.
    pub fn new(locale: &Locale, practitioner: &str, specialty: &str, manage_url: &str) -> Self {
        Self {
            summary: locale.text_with("calendar-summary", &[("practitioner", practitioner.into())]),
            description: locale.text_with(
                "calendar-description",
                &[("specialty", specialty.into()), ("url", manage_url.into())],
            ),
            url: manage_url.to_owned(),
        }
    }
}

/// The product that writes the entries (`PRODID`).
pub const PRODID: &str = "-//slotcast//appointments//EN";

/// The entry's `UID`: the appointment's id, with a domain part as RFC 5545 recommends.
pub fn uid(appointment_id: Uuid) -> String {
    format!("{appointment_id}@slotcast")
}

/// The whole `VCALENDAR` text of `entry` with `method`, lines ending in CRLF.
pub fn render(method: Method, entry: &Entry<'_>) -> String {
    let mut event = icalendar::Event::new();
    event
        .uid(&uid(entry.appointment_id))
        .sequence(entry.sequence)
        .timestamp(entry.stamp)
        .starts(entry.starts_at)
        .ends(entry.ends_at)
        .summary(entry.summary)
        .description(entry.description)
        .status(if entry.cancelled {
            EventStatus::Cancelled
        } else {
            EventStatus::Confirmed
        });
    // An appointment occupies the time.
    event.add_property("TRANSP", "OPAQUE");
    if let Some(url) = entry.url {
        event.url(url);
    }
    if let Some(organizer) = entry.organizer {
        event.append_property(
            Property::new("ORGANIZER", format!("mailto:{}", organizer.email))
                .add_parameter("CN", &parameter(organizer.name))
                .done(),
        );
    }
    if let Some(attendee) = entry.attendee {
        event.append_multi_property(
            Property::new("ATTENDEE", format!("mailto:{}", attendee.email))
                .add_parameter("CN", &parameter(attendee.name))
                .add_parameter("ROLE", "REQ-PARTICIPANT")
                .add_parameter("PARTSTAT", "ACCEPTED")
                .add_parameter("RSVP", "FALSE")
                .done(),
        );
    }
    let mut calendar = Calendar::empty();
    calendar
        .append_property(Property::new("VERSION", "2.0"))
        .append_property(Property::new("PRODID", PRODID))
        .append_property(Property::new("CALSCALE", "GREGORIAN"))
        .append_property(Property::new("METHOD", method.as_str()))
        .push(event.done());
    calendar.done().to_string()
}

/// A parameter value as RFC 5545 allows it: no double quote, no control character (the crate
/// quotes values with `:`, `;` or `,`).
fn parameter(value: &str) -> String {
    value
        .chars()
        .map(|c| if c == '"' || c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use icalendar::{CalendarComponent, DatePerhapsTime};

    use super::*;

    fn entry(sequence: u32, cancelled: bool) -> Entry<'static> {
        let starts_at = Utc.with_ymd_and_hms(2026, 12, 5, 9, 0, 0).unwrap();
        Entry {
            appointment_id: Uuid::from_u128(42),
            sequence,
            starts_at,
            ends_at: starts_at + chrono::Duration::minutes(30),
            summary: "Rendez-vous avec Dr Ada Lovelace, cardiologie; 1er étage",
            description: "Samedi 5 décembre 2026, 10:00–10:30 (Europe/Paris)\nAnnuler : https://x",
            url: Some("https://book.example/v1/appointment-links/tok"),
            organizer: Some(Person {
                name: "Clinic \"Central\", Paris",
                email: "no-reply@clinic.example",
            }),
            attendee: Some(Person {
                name: "Zoé Durand",
                email: "zoe@example.org",
            }),
            cancelled,
            stamp: Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap(),
        }
    }

    /// Parses `text` back with the crate's RFC 5545 parser; the one event and the calendar.
    fn parse(text: &str) -> (Calendar, icalendar::Event) {
        let calendar: Calendar = text.parse().expect("the entry parses");
        let events: Vec<icalendar::Event> = calendar
            .components
            .iter()
            .filter_map(|c| match c {
                CalendarComponent::Event(e) => Some(e.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(events.len(), 1, "{text}");
        let event = events[0].clone();
        (calendar, event)
    }

    #[test]
    fn a_booking_is_a_request_with_the_appointments_uid_times_and_patient() {
        let e = entry(0, false);
        let text = render(Method::Request, &e);
        assert!(text.ends_with("END:VCALENDAR\r\n"), "{text}");
        assert!(text.lines().all(|l| l.len() <= 75), "{text}");
        let (calendar, event) = parse(&text);
        assert_eq!(calendar.property_value("METHOD"), Some("REQUEST"));
        assert_eq!(calendar.property_value("VERSION"), Some("2.0"));
        assert_eq!(calendar.property_value("PRODID"), Some(PRODID));
        assert_eq!(
            event.get_uid(),
            Some("00000000-0000-0000-0000-00000000002a@slotcast")
        );
        assert_eq!(event.get_sequence(), Some(0));
        assert_eq!(event.get_status(), Some(EventStatus::Confirmed));
        assert_eq!(event.get_start(), Some(DatePerhapsTime::from(e.starts_at)));
        assert_eq!(event.get_end(), Some(DatePerhapsTime::from(e.ends_at)));
        assert_eq!(event.get_timestamp(), Some(e.stamp));
        assert_eq!(event.get_summary(), Some(e.summary));
        assert_eq!(event.get_description(), Some(e.description));
        assert_eq!(event.get_url(), e.url);
        let attendees = event.get_attendees();
        assert_eq!(attendees.len(), 1);
        // Long lines are folded (RFC 5545 §3.1): a line break and a space.
        let unfolded = text.replace("\r\n ", "");
        assert!(unfolded.contains("PARTSTAT=ACCEPTED"), "{text}");
        assert!(
            unfolded.contains("RSVP=FALSE:mailto:zoe@example.org"),
            "{text}"
        );
        assert!(
            unfolded.contains(
                "ORGANIZER;CN=\"Clinic  Central , Paris\":mailto:no-reply@clinic.example"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_move_keeps_the_uid_with_a_higher_sequence_and_a_cancellation_cancels_it() {
        let (_, booked) = parse(&render(Method::Request, &entry(0, false)));
        let (_, moved) = parse(&render(Method::Request, &entry(1, false)));
        let (calendar, cancelled) = parse(&render(Method::Cancel, &entry(2, true)));
        assert_eq!(booked.get_uid(), moved.get_uid());
        assert_eq!(moved.get_uid(), cancelled.get_uid());
        assert!(moved.get_sequence() > booked.get_sequence());
        assert!(cancelled.get_sequence() > moved.get_sequence());
        assert_eq!(calendar.property_value("METHOD"), Some("CANCEL"));
        assert_eq!(cancelled.get_status(), Some(EventStatus::Cancelled));
    }

    #[test]
    fn the_words_are_in_the_patients_language() {
        let words = Words::new(
            &Locale::negotiate("de"),
            "Dr Ada Lovelace",
            "Kardiologie",
            "https://x/a",
        );
        assert_eq!(words.summary, "Termin bei Dr Ada Lovelace");
        assert!(words.description.contains("https://x/a"), "{words:?}");
        for language in slotcast_i18n::languages() {
            let locale = Locale::negotiate(&language.to_string());
            let words = Words::new(&locale, "Dr A", "GP", "https://x/a");
            assert!(!words.summary.contains("calendar-"), "{language}");
            assert!(!words.description.contains('{'), "{language}");
        }
    }

    #[test]
    fn a_published_copy_needs_no_organizer() {
        let mut e = entry(3, false);
        e.organizer = None;
        e.attendee = None;
        let text = render(Method::Publish, &e);
        let (calendar, event) = parse(&text);
        assert_eq!(calendar.property_value("METHOD"), Some("PUBLISH"));
        assert_eq!(event.get_sequence(), Some(3));
        assert!(
            !text.contains("ORGANIZER") && !text.contains("ATTENDEE"),
            "{text}"
        );
    }
}
