//! Previews of everything a patient is sent or shown: each availability and confirmation email
//! (HTML and plain text) and each booking, appointment, preferences and unsubscribe page, in
//! every shipped language, filled with a few realistic patients and practices.
//!
//! Nothing is rendered here: the emails come from `email_notifier::render::Templates` and the
//! pages from `scheduling::routes::patient_pages`, the code the services answer with, so a
//! preview is what a patient gets. `make previews` writes them with an index to `var/previews/`
//! (and `scripts/previews.sh` screenshots them); the tests check that every one is complete.
//!
//! # Layout
//! - [`scenarios`]: the patients, practices and slots.
//! - `lib.rs`: [`all`] renders them; [`index`] links them.

pub mod scenarios;

use chrono::Utc;
use email_notifier::render::{RenderedEmail, Templates};
use handlebars::html_escape;
use scheduling::routes::patient_pages::{self, PreferencesView};
use slotcast_i18n::{LanguageIdentifier, Locale};

use crate::scenarios::{SCENARIOS, Scenario};

/// One rendered file.
#[derive(Debug, Clone)]
pub struct Preview {
    /// The file name under the previews folder (`email-paris-gp-fr.html`).
    pub file: String,
    /// What it shows, for the index (`Email: Paris GP, fee`).
    pub title: String,
    /// The shipped language it is rendered in.
    pub language: String,
    /// `html` or `text`.
    pub kind: Kind,
    pub body: String,
}

/// How a preview is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Html,
    Text,
}

/// Every preview, in every shipped language.
pub fn all() -> anyhow::Result<Vec<Preview>> {
    let templates = Templates::new()?;
    let mut previews = Vec::new();
    for language in slotcast_i18n::languages() {
        for scenario in SCENARIOS {
            previews.extend(email(&templates, scenario, &language)?);
            previews.extend(confirmation(&templates, scenario, &language, false)?);
            previews.push(offer_page(scenario, &language));
        }
        previews.extend(confirmation(&templates, &SCENARIOS[0], &language, true)?);
        previews.extend(other_pages(&language));
    }
    Ok(previews)
}

/// The patient's own tag when the scenario is in `language` (`en-US` keeps US conventions),
/// else the bare language: every scenario is also read in every other language.
fn patient_tag(scenario: &Scenario, language: &LanguageIdentifier) -> String {
    let own = scenario.patient_locale;
    if own.split('-').next() == Some(language.language.as_str()) {
        own.to_owned()
    } else {
        language.to_string()
    }
}

fn email(
    templates: &Templates,
    scenario: &Scenario,
    language: &LanguageIdentifier,
) -> anyhow::Result<[Preview; 2]> {
    let notify = scenario.notify(&patient_tag(scenario, language));
    let email = templates.render(&notify)?;
    let name = format!("email-{}-{language}", scenario.key);
    let title = format!("Email: {}", scenario.title);
    Ok(email_previews(&name, &title, language, email))
}

/// The confirmation email of booking (or, for a move-up scenario, moving to) the scenario's
/// first time, or of cancelling it.
fn confirmation(
    templates: &Templates,
    scenario: &Scenario,
    language: &LanguageIdentifier,
    cancelled: bool,
) -> anyhow::Result<[Preview; 2]> {
    let confirmation = scenario.confirmation(&patient_tag(scenario, language), cancelled);
    let email = templates.render_confirmation(&confirmation)?;
    let kind = confirmation.kind.as_str();
    let name = format!("confirmation-{kind}-{}-{language}", scenario.key);
    let title = format!("Confirmation ({kind}): {}", scenario.title);
    Ok(email_previews(&name, &title, language, email))
}

/// An email's two previews: its HTML, and its subject with its plain text.
fn email_previews(
    name: &str,
    title: &str,
    language: &LanguageIdentifier,
    email: RenderedEmail,
) -> [Preview; 2] {
    [
        Preview {
            file: format!("{name}.html"),
            title: title.to_owned(),
            language: language.to_string(),
            kind: Kind::Html,
            body: email.html,
        },
        Preview {
            file: format!("{name}.txt"),
            title: format!("{title} (plain text)"),
            language: language.to_string(),
            kind: Kind::Text,
            body: format!("Subject: {}\n\n{}", email.subject, email.text),
        },
    ]
}

fn offer_page(scenario: &Scenario, language: &LanguageIdentifier) -> Preview {
    let locale = Locale::negotiate(&patient_tag(scenario, language));
    let view = scenario.offer();
    let message = locale.text("offer-choose");
    Preview {
        file: format!("offer-{}-{language}.html", scenario.key),
        title: format!("Booking page: {}", scenario.title),
        language: language.to_string(),
        kind: Kind::Html,
        body: patient_pages::offer(
            &locale,
            &message,
            false,
            Some(&("t".to_owned(), view)),
            None,
        ),
    }
}

/// The pages that do not depend on the scenario: a booking just made, a lost race, a bad
/// link, and the preferences and unsubscribe pages.
fn other_pages(language: &LanguageIdentifier) -> Vec<Preview> {
    let locale = Locale::negotiate(&language.to_string());
    let scenario = &SCENARIOS[0];
    let page = |key: &str, title: &str, body: String| Preview {
        file: format!("{key}-{language}.html"),
        title: title.to_owned(),
        language: language.to_string(),
        kind: Kind::Html,
        body,
    };

    let mut booked = scenario.offer();
    let booked_id = booked.slots[0].slot_id;
    booked.used = true;
    booked.slots[0].status = "yours";
    for slot in &mut booked.slots {
        slot.claim_url = None;
    }
    let mut lost = scenario.offer();
    lost.slots[0].status = "taken";
    lost.slots[0].claim_url = None;

    let prefs = PreferencesView {
        patient_id: uuid::Uuid::nil(),
        email: true,
        inapp: false,
        sms: true,
        has_phone: true,
        sms_consent: None,
        updated_at: Utc::now(),
    };
    let unsubscribed = PreferencesView {
        email: false,
        inapp: false,
        sms: false,
        has_phone: false,
        sms_consent: None,
        patient_id: prefs.patient_id,
        updated_at: prefs.updated_at,
    };
    let preferences_url = "https://book.example/v1/preferences/tok";
    let unsubscribe_url = "https://book.example/v1/unsubscribe/tok";
    vec![
        page(
            "offer-booked",
            "Booking page: just booked",
            patient_pages::offer(
                &locale,
                &locale.text("offer-booked"),
                false,
                Some(&("t".to_owned(), booked)),
                Some(booked_id),
            ),
        ),
        page(
            "offer-taken",
            "Booking page: someone else was faster",
            patient_pages::offer(
                &locale,
                &locale.text("offer-error-taken"),
                true,
                Some(&("t".to_owned(), lost)),
                None,
            ),
        ),
        page(
            "offer-expired",
            "Booking page: expired link",
            patient_pages::offer(
                &locale,
                &locale.text("offer-error-expired"),
                true,
                None,
                None,
            ),
        ),
        page(
            "appointment",
            "Appointment page (from a confirmation)",
            patient_pages::appointment(
                &locale,
                &locale.text("appointment-confirm-cancel"),
                false,
                Some(&scenario.appointment(false)),
            ),
        ),
        page(
            "appointment-cancelled",
            "Appointment page: just cancelled",
            patient_pages::appointment(
                &locale,
                &locale.text("appointment-cancelled-now"),
                false,
                Some(&scenario.appointment(true)),
            ),
        ),
        page(
            "appointment-expired",
            "Appointment page: expired link",
            patient_pages::appointment(
                &locale,
                &locale.text("appointment-error-expired"),
                true,
                None,
            ),
        ),
        page(
            "preferences",
            "Preferences page",
            patient_pages::preferences(
                &locale,
                &locale.text("prefs-choose"),
                Some(&prefs),
                Some(preferences_url),
                None,
            ),
        ),
        page(
            "unsubscribe",
            "Unsubscribe page (before the click)",
            patient_pages::preferences(
                &locale,
                &locale.text("prefs-confirm-unsubscribe"),
                Some(&prefs),
                None,
                Some(unsubscribe_url),
            ),
        ),
        page(
            "unsubscribed",
            "Unsubscribe page (after the click)",
            patient_pages::preferences(
                &locale,
                &locale.text("prefs-unsubscribed"),
                Some(&unsubscribed),
                None,
                None,
            ),
        ),
    ]
}

/// The index page: one row per preview, one column per language.
pub fn index(previews: &[Preview]) -> String {
    let languages: Vec<String> = slotcast_i18n::languages()
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut titles: Vec<&str> = Vec::new();
    for p in previews {
        if !titles.contains(&p.title.as_str()) {
            titles.push(&p.title);
        }
    }
    let mut rows = String::new();
    for title in titles {
        rows.push_str(&format!("<tr><th>{}</th>", html_escape(title)));
        for language in &languages {
            let cell = previews
                .iter()
                .find(|p| p.title == title && &p.language == language)
                .map(|p| format!("<a href=\"{0}\">{1}</a>", html_escape(&p.file), language))
                .unwrap_or_default();
            rows.push_str(&format!("<td>{cell}</td>"));
        }
        rows.push_str("</tr>\n");
    }
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>slotcast previews</title></head>\n<body style=\"font-family:sans-serif\">\n\
         <h1>slotcast previews</h1>\n<p>Rendered by the services' own templates; screenshots \
         (when taken) are in <code>shots/</code>.</p>\n<table cellpadding=\"4\">\n{rows}</table>\n\
         </body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a preview shows a reader: the text outside tags, without the pages' style block.
    fn visible_text(preview: &Preview) -> String {
        if preview.kind == Kind::Text {
            return preview.body.clone();
        }
        let body = &preview.body;
        let text = match (body.find("<style>"), body.find("</style>")) {
            (Some(start), Some(end)) => format!("{}{}", &body[..start], &body[end..]),
            _ => body.clone(),
        };
        let mut out = String::new();
        let mut in_tag = false;
        for c in text.chars() {
            match c {
                '<' => in_tag = true,
                '>' => {
                    in_tag = false;
                    out.push('\n');
                }
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out
    }

    /// A catalogue id shown in place of its message (`offer-choose`), as `Locale::text` does when
    /// a message is missing.
    fn looks_like_a_message_id(line: &str) -> bool {
        let line = line.trim();
        line.contains('-')
            && !line.starts_with('-')
            && line
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    }

    #[test]
    fn every_preview_renders_in_every_language_with_nothing_left_unfilled() {
        let previews = all().expect("every preview renders");
        for language in slotcast_i18n::languages() {
            let tag = language.to_string();
            let of_language: Vec<&Preview> =
                previews.iter().filter(|p| p.language == tag).collect();
            // Each scenario's email and confirmation (HTML and text) and booking page, a
            // cancellation (HTML and text), and the nine other pages.
            assert_eq!(of_language.len(), SCENARIOS.len() * 5 + 2 + 9, "{tag}");
            for preview in of_language {
                let name = &preview.file;
                let text = visible_text(preview);
                for marker in [
                    "{{", "}}", "{$", "{ $", "???", "{", "}", "\u{2068}", "\u{2069}",
                ] {
                    assert!(!text.contains(marker), "{name}: {marker:?} in {text}");
                }
                assert!(!preview.body.contains("{{"), "{name}");
                assert!(!preview.body.to_lowercase().contains("<script"), "{name}");
                for line in text.lines() {
                    assert!(!looks_like_a_message_id(line), "{name}: {line:?}");
                }
                if preview.kind == Kind::Html {
                    let lang = format!("<html lang=\"{tag}\">");
                    assert!(preview.body.contains(&lang), "{name}");
                }
            }
        }
    }

    #[test]
    fn a_missing_message_would_be_caught() {
        let locale = Locale::default();
        assert!(looks_like_a_message_id(&locale.text("no-such-message")));
        assert!(!looks_like_a_message_id(&locale.text("offer-choose")));
    }

    #[test]
    fn each_scenario_is_read_with_its_own_conventions_in_its_own_language() {
        let previews = all().expect("every preview renders");
        let us = previews
            .iter()
            .find(|p| p.file == "email-new-york-move-up-en.txt")
            .expect("the US patient's email");
        assert!(us.body.contains("January 11, 2027, 7:30"), "{}", us.body);
        assert!(us.body.contains("$150.00"), "{}", us.body);
        let paris = previews
            .iter()
            .find(|p| p.file == "email-paris-gp-fr.html")
            .expect("the Paris email");
        assert!(paris.body.contains("30,00\u{a0}€"), "{}", paris.body);
    }

    #[test]
    fn the_index_links_every_preview() {
        let previews = all().expect("every preview renders");
        let index = index(&previews);
        for preview in &previews {
            assert!(
                index.contains(&format!("href=\"{}\"", preview.file)),
                "{}",
                preview.file
            );
        }
    }
}
