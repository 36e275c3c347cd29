//! Turning a [`NotifyPatient`] into the words of an email: subject, plain text and HTML, in the
//! patient's language (the catalogues of `slotcast-i18n`, through the templates' `t` helper).
//!
//! The templates live in `templates/` and are compiled into the binary. The HTML template is
//! rendered with handlebars' HTML escaping (a patient called `<script>` stays text); the subject
//! and the plain-text part go into a header and a `text/plain` body, where HTML entities would
//! show up literally, so they are rendered by a second registry that does not escape.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use handlebars::Handlebars;
use serde::Serialize;
use slotcast_events::{
    AppointmentConfirmation, ConfirmationKind, NotifyPatient, OfferedSlot, WaitKind,
};
use slotcast_i18n::{Arg, Locale, TranslateHelper};

const SUBJECT: &str = "availability.subject";
const TEXT: &str = "availability.txt";
const HTML: &str = "availability.html";
const CONFIRMATION_SUBJECT: &str = "confirmation.subject";
const CONFIRMATION_TEXT: &str = "confirmation.txt";
const CONFIRMATION_HTML: &str = "confirmation.html";

/// The rendered words of one email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why an email could not be rendered. Never transient: the same input fails the same way.
#[derive(Debug, thiserror::Error)]
#[error("cannot render the email: {0}")]
pub struct RenderError(#[from] handlebars::RenderError);

/// The compiled templates.
pub struct Templates {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

/// What the templates see.
#[derive(Debug, Serialize)]
struct View<'a> {
    /// The language in effect, which the `t` helper reads.
    locale: String,
    subject: &'a str,
    patient_name: &'a str,
    practitioner_name: &'a str,
    specialty: &'a str,
    fee: Option<String>,
    move_up: bool,
    slots: Vec<SlotView<'a>>,
    /// `waves` policy: until when the times are held for this patient (and their wave).
    held_until: Option<String>,
    preferences_url: Option<&'a str>,
    unsubscribe_url: Option<&'a str>,
}

/// What the confirmation templates see.
#[derive(Debug, Serialize)]
struct ConfirmationView<'a> {
    locale: String,
    subject: &'a str,
    patient_name: &'a str,
    practitioner_name: &'a str,
    specialty: &'a str,
    fee: Option<String>,
    booked: bool,
    moved: bool,
    cancelled: bool,
    /// The appointment's time, in the practice's zone.
    when: String,
    /// For a move: the time it had before.
    replaced: Option<String>,
    manage_url: &'a str,
}

#[derive(Debug, Serialize)]
struct SlotView<'a> {
    when: String,
    booking_url: &'a str,
}

impl Templates {
    /// Compiles the embedded templates. Fails only if a template does not parse, which the unit
    /// tests rule out.
    pub fn new() -> Result<Self, handlebars::TemplateError> {
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        html.register_helper("t", Box::new(TranslateHelper));
        html.register_template_string(HTML, include_str!("../templates/availability.html.hbs"))?;
        html.register_template_string(
            CONFIRMATION_HTML,
            include_str!("../templates/confirmation.html.hbs"),
        )?;

        let mut text = Handlebars::new();
        text.set_strict_mode(true);
        // The subject and the text part are not HTML: `&` must stay `&`.
        text.register_escape_fn(handlebars::no_escape);
        text.register_helper("t", Box::new(TranslateHelper));
        text.register_template_string(
            SUBJECT,
            include_str!("../templates/availability.subject.hbs"),
        )?;
        text.register_template_string(TEXT, include_str!("../templates/availability.txt.hbs"))?;
        text.register_template_string(
            CONFIRMATION_SUBJECT,
            include_str!("../templates/confirmation.subject.hbs"),
        )?;
        text.register_template_string(
            CONFIRMATION_TEXT,
            include_str!("../templates/confirmation.txt.hbs"),
        )?;
        Ok(Self { html, text })
    }

    /// Renders the email for `notify` in the patient's language. Slot times are shown in the
    /// practitioner's time zone.
    pub fn render(&self, notify: &NotifyPatient) -> Result<RenderedEmail, RenderError> {
        let locale = Locale::negotiate(&notify.patient.locale);
        let zone = zone_of(&notify.practitioner.timezone);
        let slots = notify
            .slots
            .iter()
            .map(|slot| SlotView {
                when: slot_when(&locale, slot, zone),
                booking_url: &slot.booking_url,
            })
            .collect();
        let mut view = View {
            locale: locale.tag(),
            subject: "",
            patient_name: &notify.patient.name,
            practitioner_name: &notify.practitioner.name,
            specialty: &notify.practitioner.specialty,
            fee: notify
                .practitioner
                .consultation_fee_cents
                .map(|cents| locale.amount(cents, &notify.practitioner.currency)),
            move_up: notify.reason == WaitKind::MoveUp,
            slots,
            held_until: notify
                .slots
                .iter()
                .filter_map(|s| s.held_until)
                .min()
                .map(|t| {
                    locale.text_with(
                        "in-zone",
                        &[
                            ("when", Arg::Text(locale.date_time(t, zone))),
                            ("zone", Arg::Text(zone.name().to_owned())),
                        ],
                    )
                }),
            preferences_url: notify.preferences_url.as_deref(),
            unsubscribe_url: notify.unsubscribe_url.as_deref(),
        };
        let subject = one_line(&self.text.render(SUBJECT, &view)?);
        view.subject = &subject;
        let text = self.text.render(TEXT, &view)?;
        let html = self.html.render(HTML, &view)?;
        Ok(RenderedEmail {
            subject,
            text,
            html,
        })
    }
}

impl Templates {
    /// Renders the confirmation email of `confirmation` in the patient's language, the times in
    /// the practitioner's zone.
    pub fn render_confirmation(
        &self,
        confirmation: &AppointmentConfirmation,
    ) -> Result<RenderedEmail, RenderError> {
        let locale = Locale::negotiate(&confirmation.patient.locale);
        let zone = zone_of(&confirmation.practitioner.timezone);
        let practitioner = &confirmation.practitioner;
        let mut view = ConfirmationView {
            locale: locale.tag(),
            subject: "",
            patient_name: &confirmation.patient.name,
            practitioner_name: &practitioner.name,
            specialty: &practitioner.specialty,
            fee: practitioner
                .consultation_fee_cents
                .map(|cents| locale.amount(cents, &practitioner.currency)),
            booked: confirmation.kind == ConfirmationKind::Booked,
            moved: confirmation.kind == ConfirmationKind::Moved,
            cancelled: confirmation.kind == ConfirmationKind::Cancelled,
            when: format_range(&locale, confirmation.starts_at, confirmation.ends_at, zone),
            replaced: confirmation
                .replaced
                .map(|r| format_range(&locale, r.starts_at, r.ends_at, zone)),
            manage_url: &confirmation.manage_url,
        };
        let subject = one_line(&self.text.render(CONFIRMATION_SUBJECT, &view)?);
        view.subject = &subject;
        let text = self.text.render(CONFIRMATION_TEXT, &view)?;
        let html = self.html.render(CONFIRMATION_HTML, &view)?;
        Ok(RenderedEmail {
            subject,
            text,
            html,
        })
    }
}

/// The practitioner's zone, or UTC when it is not a known IANA name.
pub fn zone_of(name: &str) -> Tz {
    name.parse().unwrap_or(Tz::UTC)
}

/// `Tuesday, 1 December 2026, 09:30–10:00 (Europe/Paris)` in `locale`; the end carries its own
/// date when the slot runs past midnight.
pub fn slot_when(locale: &Locale, slot: &OfferedSlot, zone: Tz) -> String {
    format_range(locale, slot.starts_at, slot.ends_at, zone)
}

fn format_range(
    locale: &Locale,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    zone: Tz,
) -> String {
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
}

/// A header value on one line: line breaks and other control characters become spaces.
fn one_line(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::TimeZone;
    use slotcast_events::{PatientContact, PractitionerCard};
    use uuid::Uuid;

    use super::*;

    /// A notification of two slots in December 2026 (shared with [`crate::compose`]'s tests).
    pub(crate) fn notify(
        reason: WaitKind,
        patient_name: &str,
        fee: Option<i64>,
        zone: &str,
    ) -> NotifyPatient {
        let slot = |h: u32, m: u32, id: u128| {
            let starts_at = Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0).unwrap();
            OfferedSlot {
                slot_id: Uuid::from_u128(id),
                starts_at,
                ends_at: starts_at + chrono::Duration::minutes(30),
                booking_url: format!("https://book.example/v1/offers/tok{id}?slot={id}&x=1"),
                held_until: None,
            }
        };
        NotifyPatient {
            notification_id: Uuid::from_u128(7),
            patient: PatientContact {
                id: Uuid::from_u128(1),
                name: patient_name.to_owned(),
                email: "patient@example.com".to_owned(),
                locale: "en".to_owned(),
                timezone: None,
                phone: None,
            },
            practitioner: PractitionerCard {
                id: Uuid::from_u128(2),
                name: "Dr Ada Lovelace".to_owned(),
                specialty: "Cardiology".to_owned(),
                timezone: zone.to_owned(),
                consultation_fee_cents: fee,
                currency: "EUR".to_owned(),
            },
            // 08:30 and 13:00 UTC: 09:30 and 14:00 in Paris (UTC+1 in December).
            slots: vec![slot(8, 30, 11), slot(13, 0, 12)],
            reason,
            entry_id: Uuid::from_u128(3),
            batch_id: Uuid::from_u128(4),
            channels: Default::default(),
            wave: None,
            preferences_url: None,
            unsubscribe_url: None,
            sms_not_before: None,
        }
    }

    fn render(n: &NotifyPatient) -> RenderedEmail {
        Templates::new().unwrap().render(n).unwrap()
    }

    #[test]
    fn slots_are_shown_in_the_practitioners_zone() {
        let email = render(&notify(WaitKind::New, "Grace", Some(8000), "Europe/Paris"));
        for part in [&email.text, &email.html] {
            assert!(
                part.contains("Tuesday, 1 December 2026, 09:30–10:00 (Europe/Paris)"),
                "{part}"
            );
            assert!(
                part.contains("Tuesday, 1 December 2026, 14:00–14:30 (Europe/Paris)"),
                "{part}"
            );
        }
    }

    #[test]
    fn an_unknown_zone_falls_back_to_utc() {
        let email = render(&notify(WaitKind::New, "Grace", None, "Mars/Olympus_Mons"));
        assert!(
            email
                .text
                .contains("Tuesday, 1 December 2026, 08:30–09:00 (UTC)"),
            "{}",
            email.text
        );
    }

    #[test]
    fn a_slot_past_midnight_names_both_days() {
        let when = format_range(
            &Locale::default(),
            Utc.with_ymd_and_hms(2026, 12, 1, 22, 30, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 12, 1, 23, 30, 0).unwrap(),
            zone_of("Europe/Paris"),
        );
        assert_eq!(
            when,
            "Tuesday, 1 December 2026, 23:30 – Wednesday, 2 December 2026, 00:30 (Europe/Paris)"
        );
    }

    #[test]
    fn a_new_opening_and_a_move_up_are_worded_differently() {
        let new = render(&notify(WaitKind::New, "Grace", None, "Europe/Paris"));
        assert_eq!(new.subject, "New appointment times with Dr Ada Lovelace");
        assert!(
            new.text
                .contains("Dr Ada Lovelace (Cardiology) has new appointment times"),
            "{}",
            new.text
        );
        assert!(!new.text.contains("an earlier time"));

        let move_up = render(&notify(WaitKind::MoveUp, "Grace", None, "Europe/Paris"));
        assert_eq!(
            move_up.subject,
            "Earlier appointment times with Dr Ada Lovelace"
        );
        assert!(move_up.text.contains("an earlier time"), "{}", move_up.text);
        assert!(move_up.html.contains("an earlier time"));
    }

    #[test]
    fn the_fee_is_shown_in_units_and_left_out_when_absent() {
        let with_fee = render(&notify(WaitKind::New, "Grace", Some(8000), "Europe/Paris"));
        assert!(with_fee.text.contains("Consultation fee: €80.00"));
        assert!(with_fee.html.contains("Consultation fee: €80.00"));

        let without = render(&notify(WaitKind::New, "Grace", None, "Europe/Paris"));
        assert!(!without.text.contains("fee"), "{}", without.text);
        assert!(!without.html.contains("fee"));
    }

    fn in_language(locale: &str, reason: WaitKind) -> RenderedEmail {
        let mut n = notify(reason, "Zoé", Some(4500), "Europe/Paris");
        n.patient.locale = locale.to_owned();
        n.preferences_url = Some("https://book.example/v1/preferences/p?a=1&b=2".to_owned());
        n.unsubscribe_url = Some("https://book.example/v1/unsubscribe/u".to_owned());
        n.slots[0].held_until = Some(n.slots[0].starts_at - chrono::Duration::hours(2));
        render(&n)
    }

    #[test]
    fn a_french_patient_reads_french_dates_and_amounts() {
        let email = in_language("fr", WaitKind::New);
        assert_eq!(
            email.subject,
            "Nouveaux créneaux de rendez-vous avec Dr Ada Lovelace"
        );
        for part in [&email.text, &email.html] {
            assert!(part.contains("Bonjour Zoé,"), "{part}");
            assert!(
                part.contains("mardi 1 décembre 2026, 09:30–10:00 (Europe/Paris)"),
                "{part}"
            );
            assert!(part.contains("45,00\u{a0}€"), "{part}");
            assert!(part.contains("Réserver ce créneau"), "{part}");
        }
        assert!(email.html.contains("<html lang=\"fr\">"));

        // Canadian French reads the French catalogue with Canada's own way of writing times.
        let canadian = in_language("fr-CA", WaitKind::New);
        assert!(canadian.subject.starts_with("Nouveaux créneaux"));
        assert!(
            canadian.text.contains("09 h 30–10 h 00"),
            "{}",
            canadian.text
        );
    }

    #[test]
    fn a_german_patient_reads_german() {
        let email = in_language("de", WaitKind::MoveUp);
        assert_eq!(email.subject, "Frühere Termine bei Dr Ada Lovelace frei");
        assert!(
            email
                .text
                .contains("Dienstag, 1. Dezember 2026, 09:30–10:00 Uhr (Europe/Paris)"),
            "{}",
            email.text
        );
        assert!(email.text.contains("Kosten der Konsultation: 45,00\u{a0}€"));
    }

    #[test]
    fn an_unknown_locale_reads_english() {
        let email = in_language("tlh", WaitKind::New);
        assert_eq!(email.subject, "New appointment times with Dr Ada Lovelace");
        assert!(email.html.contains("<html lang=\"en\">"));
    }

    #[test]
    fn every_template_renders_in_every_language_with_every_branch() {
        for language in slotcast_i18n::languages() {
            for reason in [WaitKind::New, WaitKind::MoveUp] {
                let email = in_language(&language.to_string(), reason);
                for part in [&email.subject, &email.text, &email.html] {
                    // A Fluent placeholder left unfilled reads `{$name}`; no handlebars is left.
                    assert!(!part.contains("{$"), "{language}: {part}");
                    assert!(!part.contains("{{"), "{language}: {part}");
                    assert!(!part.contains('\u{2068}'), "{language}: {part}");
                }
                let tag = format!("<html lang=\"{language}\">");
                assert!(email.html.contains(&tag), "{language}");
                assert!(email.html.contains("a&#x3D;1&amp;b&#x3D;2"), "{language}");
            }
        }
    }

    #[test]
    fn a_name_with_markup_is_escaped_in_html_and_kept_as_text() {
        let email = render(&notify(
            WaitKind::New,
            "<script>alert(1)</script>",
            None,
            "Europe/Paris",
        ));
        assert!(!email.html.contains("<script>"), "{}", email.html);
        assert!(
            email
                .html
                .contains("Hello &lt;script&gt;alert(1)&lt;/script&gt;,")
        );
        assert!(email.text.contains("Hello <script>alert(1)</script>,"));
    }

    #[test]
    fn each_slot_has_its_booking_link_verbatim_in_text_and_as_a_button_in_html() {
        let n = notify(WaitKind::New, "Grace", None, "Europe/Paris");
        let email = render(&n);
        for slot in &n.slots {
            assert!(
                email
                    .text
                    .contains(&format!("Book this time: {}", slot.booking_url)),
                "{}",
                email.text
            );
            // In an HTML attribute `&` and `=` are entities; a browser reads them back.
            let attr = slot
                .booking_url
                .replace('&', "&amp;")
                .replace('=', "&#x3D;");
            assert!(
                email.html.contains(&format!("<a href=\"{attr}\"")),
                "{}",
                email.html
            );
        }
        assert_eq!(email.html.matches(">Book this time</a>").count(), 2);
    }

    /// The names a template reads: `{{name}}`, `{{#if name}}`, `{{this.name}}` and the values
    /// of `{{t "id" arg=name}}`; helpers, keywords and quoted ids are not names.
    fn fields_read(template: &str) -> std::collections::BTreeSet<String> {
        template
            .split("{{")
            .skip(1)
            .filter_map(|tag| tag.split("}}").next())
            .flat_map(|tag| {
                tag.split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .map(|word| {
                let word = word.rsplit('=').next().unwrap_or_default();
                word.trim_start_matches(['#', '/'])
                    .trim_start_matches("this.")
                    .to_owned()
            })
            .filter(|w| !w.starts_with('"') && !w.is_empty())
            .filter(|w| !["t", "if", "else", "each", "unless"].contains(&w.as_str()))
            .collect()
    }

    #[test]
    fn an_email_reads_only_the_fields_the_readme_lists() {
        // README "What leaves the clinic's system": no reason for the visit, no diagnosis, no
        // contact detail beyond the address it is sent to. A new field is a decision, not a slip.
        let allowed = [
            "locale",
            "subject",
            "patient_name",
            "practitioner_name",
            "specialty",
            "fee",
            "move_up",
            "slots",
            "when",
            "booking_url",
            "held_until",
            "preferences_url",
            "unsubscribe_url",
            "booked",
            "moved",
            "cancelled",
            "replaced",
            "manage_url",
        ];
        for template in [
            include_str!("../templates/availability.subject.hbs"),
            include_str!("../templates/availability.txt.hbs"),
            include_str!("../templates/availability.html.hbs"),
            include_str!("../templates/confirmation.subject.hbs"),
            include_str!("../templates/confirmation.txt.hbs"),
            include_str!("../templates/confirmation.html.hbs"),
        ] {
            let read = fields_read(template);
            let extra: Vec<_> = read
                .iter()
                .filter(|f| !allowed.contains(&f.as_str()))
                .collect();
            assert!(extra.is_empty(), "{extra:?}");
        }
        let sample = fields_read("{{#if a}}{{t \"x\" n=b}}{{this.c}}{{/if}}");
        assert_eq!(sample.into_iter().collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    /// A confirmation of `kind` for the patient of [`notify`], on 1 December 2026.
    pub(crate) fn confirmation(kind: ConfirmationKind, locale: &str) -> AppointmentConfirmation {
        let n = notify(WaitKind::New, "Zoé", Some(4500), "Europe/Paris");
        let sequence = u32::from(kind != ConfirmationKind::Booked);
        let appointment_id = Uuid::from_u128(9);
        AppointmentConfirmation {
            confirmation_id: AppointmentConfirmation::derive_id(appointment_id, kind, sequence),
            kind,
            appointment_id,
            sequence,
            patient: slotcast_events::PatientContact {
                locale: locale.to_owned(),
                ..n.patient
            },
            practitioner: n.practitioner,
            starts_at: n.slots[0].starts_at,
            ends_at: n.slots[0].ends_at,
            replaced: (kind == ConfirmationKind::Moved).then(|| slotcast_events::TimeSpan {
                starts_at: n.slots[1].starts_at,
                ends_at: n.slots[1].ends_at,
            }),
            channels: Default::default(),
            manage_url: "https://book.example/v1/appointment-links/tok?a=1&b=2".to_owned(),
            calendar_url: "https://book.example/v1/appointment-links/tok/calendar.ics".to_owned(),
        }
    }

    #[test]
    fn a_confirmation_states_the_practitioner_the_time_and_what_a_move_replaces() {
        let templates = Templates::new().unwrap();
        let booked = templates
            .render_confirmation(&confirmation(ConfirmationKind::Booked, "en"))
            .unwrap();
        assert_eq!(booked.subject, "Appointment confirmed with Dr Ada Lovelace");
        for part in [&booked.text, &booked.html] {
            assert!(
                part.contains("Tuesday, 1 December 2026, 09:30–10:00 (Europe/Paris)"),
                "{part}"
            );
            assert!(part.contains("Dr Ada Lovelace (Cardiology)"), "{part}");
            assert!(!part.contains("replaces"), "{part}");
        }
        assert!(
            booked
                .text
                .contains("See or cancel this appointment: https://book.example/v1/appointment-links/tok?a=1&b=2"),
            "{}",
            booked.text
        );
        let moved = templates
            .render_confirmation(&confirmation(ConfirmationKind::Moved, "fr"))
            .unwrap();
        assert_eq!(
            moved.subject,
            "Votre rendez-vous avec Dr Ada Lovelace a été avancé"
        );
        for part in [&moved.text, &moved.html] {
            assert!(
                part.contains("Il remplace votre rendez-vous du mardi 1 décembre 2026, 14:00–14:30 (Europe/Paris)"),
                "{part}"
            );
        }
        let cancelled = templates
            .render_confirmation(&confirmation(ConfirmationKind::Cancelled, "de"))
            .unwrap();
        assert_eq!(cancelled.subject, "Termin bei Dr Ada Lovelace abgesagt");
        assert!(
            cancelled.text.contains("Termin ansehen:"),
            "{}",
            cancelled.text
        );
        assert!(!cancelled.text.contains("absagen:"), "{}", cancelled.text);
    }

    #[test]
    fn every_confirmation_renders_in_every_language_with_nothing_left_unfilled() {
        let templates = Templates::new().unwrap();
        for language in slotcast_i18n::languages() {
            for kind in [
                ConfirmationKind::Booked,
                ConfirmationKind::Moved,
                ConfirmationKind::Cancelled,
            ] {
                let email = templates
                    .render_confirmation(&confirmation(kind, &language.to_string()))
                    .unwrap();
                for part in [&email.subject, &email.text, &email.html] {
                    assert!(!part.contains("{$"), "{language}: {part}");
                    assert!(!part.contains("{{"), "{language}: {part}");
                    assert!(!part.contains("confirm-"), "{language}: {part}");
                    assert!(!part.contains('\u{2068}'), "{language}: {part}");
                }
                assert!(email.html.contains(&format!("<html lang=\"{language}\">")));
                assert!(email.html.contains("a&#x3D;1&amp;b&#x3D;2"), "{language}");
            }
        }
    }

    #[test]
    fn the_subject_stays_on_one_line() {
        let mut n = notify(WaitKind::New, "Grace", None, "Europe/Paris");
        n.practitioner.name = "Dr Evil\r\nBcc: everyone@example.com".to_owned();
        let email = render(&n);
        assert_eq!(
            email.subject,
            "New appointment times with Dr Evil Bcc: everyone@example.com"
        );
    }
}
