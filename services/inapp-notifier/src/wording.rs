//! The words of a notification, in the patient's language. Only practitioner names go in;
//! patients' data never.

use chrono_tz::Tz;
use slotcast_events::{AppointmentConfirmation, ConfirmationKind, WaitKind};
use slotcast_i18n::{Arg, Locale};

/// "New appointment times with Dr X" or, for a patient moving up, "Earlier appointment times
/// with Dr X", in `locale`.
pub fn title(locale: &Locale, reason: WaitKind, practitioner_name: &str) -> String {
    let id = match reason {
        WaitKind::New => "inapp-title-new",
        WaitKind::MoveUp => "inapp-title-move-up",
    };
    locale.text_with(
        id,
        &[("practitioner", Arg::Text(doctor(locale, practitioner_name)))],
    )
}

/// "2 times are available. Book one in a click.", with the language's plural forms.
pub fn body(locale: &Locale, slots: usize) -> String {
    locale.text_with("inapp-body", &[("count", slots.into())])
}

/// "Appointment confirmed with Dr X" (moved earlier, cancelled), in `locale`.
pub fn confirmation_title(
    locale: &Locale,
    kind: ConfirmationKind,
    practitioner_name: &str,
) -> String {
    let id = match kind {
        ConfirmationKind::Booked => "inapp-confirm-title-booked",
        ConfirmationKind::Moved => "inapp-confirm-title-moved",
        ConfirmationKind::Cancelled => "inapp-confirm-title-cancelled",
    };
    locale.text_with(
        id,
        &[("practitioner", Arg::Text(doctor(locale, practitioner_name)))],
    )
}

/// The time of the appointment in the practice's zone and, for a move, the time it replaces.
pub fn confirmation_body(locale: &Locale, c: &AppointmentConfirmation) -> String {
    let zone: Tz = c.practitioner.timezone.parse().unwrap_or(Tz::UTC);
    let when = |starts_at, ends_at| {
        locale.text_with(
            "in-zone",
            &[
                (
                    "when",
                    Arg::Text(locale.time_range(starts_at, ends_at, zone)),
                ),
                ("zone", Arg::Text(zone.name().to_owned())),
            ],
        )
    };
    let now = when(c.starts_at, c.ends_at);
    match (c.kind, c.replaced) {
        (ConfirmationKind::Moved, Some(before)) => locale.text_with(
            "inapp-confirm-body-moved",
            &[
                ("when", Arg::Text(now)),
                (
                    "replaced",
                    Arg::Text(locale.time_range(before.starts_at, before.ends_at, zone)),
                ),
            ],
        ),
        (ConfirmationKind::Cancelled, _) => {
            locale.text_with("inapp-confirm-body-cancelled", &[("when", Arg::Text(now))])
        }
        _ => locale.text_with("inapp-confirm-body-booked", &[("when", Arg::Text(now))]),
    }
}

/// The name with the language's "Dr" in front, unless it already has a title.
fn doctor(locale: &Locale, name: &str) -> String {
    let name = name.trim();
    let lower = name.to_lowercase();
    if lower.starts_with("dr ") || lower.starts_with("dr. ") {
        name.to_owned()
    } else {
        locale.text_with("doctor", &[("name", Arg::Text(name.to_owned()))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn en() -> Locale {
        Locale::negotiate("en")
    }

    #[test]
    fn the_title_names_the_doctor_once_and_says_why() {
        assert_eq!(
            title(&en(), WaitKind::New, "Alice Martin"),
            "New appointment times with Dr Alice Martin"
        );
        assert_eq!(
            title(&en(), WaitKind::MoveUp, "Dr. Bob Lee"),
            "Earlier appointment times with Dr. Bob Lee"
        );
        assert_eq!(
            title(&en(), WaitKind::New, "dr Who"),
            "New appointment times with dr Who"
        );
        assert_eq!(
            title(&en(), WaitKind::New, "Drake Ramoray"),
            "New appointment times with Dr Drake Ramoray"
        );
    }

    fn moved(locale: &str) -> AppointmentConfirmation {
        use chrono::TimeZone as _;
        let at = |d: u32| chrono::Utc.with_ymd_and_hms(2026, 12, d, 8, 30, 0).unwrap();
        let id = uuid::Uuid::from_u128(9);
        AppointmentConfirmation {
            confirmation_id: AppointmentConfirmation::derive_id(id, ConfirmationKind::Moved, 1),
            kind: ConfirmationKind::Moved,
            appointment_id: id,
            sequence: 1,
            patient: slotcast_events::PatientContact {
                id,
                name: "Zoé".to_owned(),
                email: "zoe@example.org".to_owned(),
                locale: locale.to_owned(),
                timezone: None,
                phone: None,
            },
            practitioner: slotcast_events::PractitionerCard {
                id,
                name: "Ada Lovelace".to_owned(),
                specialty: "Cardiology".to_owned(),
                timezone: "Europe/Paris".to_owned(),
                consultation_fee_cents: None,
                currency: "EUR".to_owned(),
            },
            starts_at: at(1),
            ends_at: at(1) + chrono::Duration::minutes(30),
            replaced: Some(slotcast_events::TimeSpan {
                starts_at: at(8),
                ends_at: at(8) + chrono::Duration::minutes(30),
            }),
            channels: Default::default(),
            manage_url: "https://b.example/v1/appointment-links/t".to_owned(),
            calendar_url: "https://b.example/v1/appointment-links/t/calendar.ics".to_owned(),
        }
    }

    #[test]
    fn a_moved_confirmation_says_the_new_time_and_the_one_it_replaces() {
        let fr = Locale::negotiate("fr");
        let c = moved("fr");
        assert_eq!(
            confirmation_title(&fr, c.kind, &c.practitioner.name),
            "Rendez-vous avancé avec Dr Ada Lovelace"
        );
        assert_eq!(
            confirmation_body(&fr, &c),
            "Désormais mardi 1 décembre 2026, 09:30–10:00 (Europe/Paris), au lieu du mardi 8 \
             décembre 2026, 09:30–10:00."
        );
        let cancelled = AppointmentConfirmation {
            kind: ConfirmationKind::Cancelled,
            replaced: None,
            ..moved("en")
        };
        assert_eq!(
            confirmation_body(&en(), &cancelled),
            "The appointment on Tuesday, 1 December 2026, 09:30–10:00 (Europe/Paris) is cancelled."
        );
    }

    #[test]
    fn the_body_counts_the_times() {
        assert_eq!(
            body(&en(), 2),
            "2 times are available. Book one in a click."
        );
        assert_eq!(body(&en(), 1), "1 time is available. Book it in a click.");
    }

    #[test]
    fn each_language_has_its_words_and_plurals() {
        let fr = Locale::negotiate("fr-BE");
        assert_eq!(
            title(&fr, WaitKind::New, "Alice Martin"),
            "Nouveaux créneaux avec Dr Alice Martin"
        );
        assert_eq!(
            body(&fr, 1),
            "1 créneau est disponible. Réservez-le en un clic."
        );
        assert_eq!(
            body(&fr, 3),
            "3 créneaux sont disponibles. Réservez-en un en un clic."
        );
        let de = Locale::negotiate("de");
        assert_eq!(
            title(&de, WaitKind::MoveUp, "Alice Martin"),
            "Frühere Termine bei Dr. Alice Martin frei"
        );
        assert_eq!(
            body(&de, 2),
            "2 Termine sind frei. Buchen Sie einen davon mit einem Klick."
        );
    }

    #[test]
    fn every_language_has_a_title_and_a_body_with_nothing_left_unfilled() {
        for language in slotcast_i18n::languages() {
            let locale = Locale::negotiate(&language.to_string());
            for text in [
                title(&locale, WaitKind::New, "Ana"),
                title(&locale, WaitKind::MoveUp, "Ana"),
                body(&locale, 1),
                body(&locale, 5),
            ] {
                assert!(!text.contains('{'), "{language}: {text}");
                assert!(!text.contains("inapp-"), "{language}: {text}");
                assert!(!text.contains('\u{2068}'), "{language}: {text}");
            }
        }
    }
}
