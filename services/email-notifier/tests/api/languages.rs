//! Patients read their email in their own language, with their own ways of writing dates and
//! amounts.

use slotcast_events::{EmailSent, WaitKind};

use crate::helpers::{notification, spawn_app};

#[tokio::test]
async fn a_french_patient_gets_the_email_in_french_with_french_dates_and_amounts() {
    let app = spawn_app().await;
    let mut event = notification(WaitKind::New);
    event.data.patient.name = "Zoé Martin".to_owned();
    event.data.patient.locale = "fr".to_owned();
    event.data.practitioner.consultation_fee_cents = Some(4500);

    app.publish(&event).await;

    app.wait_for_events::<EmailSent>(1).await;
    let mails = app.smtp().messages();
    let mail = &mails[0];
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Nouveaux créneaux de rendez-vous avec Dr Ada Lovelace")
    );
    let body = mail.body_text();
    assert!(body.contains("Bonjour Zoé Martin,"), "{body}");
    assert!(
        body.contains("Dr Ada Lovelace (Cardiology) propose de nouveaux créneaux de rendez-vous"),
        "{body}"
    );
    assert!(
        body.contains("mardi 1 décembre 2026, 09:30–10:00 (Europe/Paris)"),
        "{body}"
    );
    assert!(
        body.contains("mardi 1 décembre 2026, 14:00–14:45 (Europe/Paris)"),
        "{body}"
    );
    assert!(
        body.contains("Tarif de la consultation\u{a0}: 45,00\u{a0}€"),
        "{body}"
    );
    assert!(body.contains("<html lang=\"fr\">"), "{body}");
    assert!(body.contains(">Réserver ce créneau</a>"), "{body}");
    assert!(!body.contains("Book this time"), "{body}");
    assert!(
        !body.contains('\u{2068}'),
        "no bidi isolation marks: {body:?}"
    );
}

#[tokio::test]
async fn a_patient_with_an_unsupported_locale_gets_the_email_in_english() {
    let app = spawn_app().await;
    let mut event = notification(WaitKind::MoveUp);
    event.data.patient.locale = "pt-BR".to_owned();

    app.publish(&event).await;

    app.wait_for_events::<EmailSent>(1).await;
    let mails = app.smtp().messages();
    assert_eq!(
        mails[0].header("Subject").as_deref(),
        Some("Earlier appointment times with Dr Ada Lovelace")
    );
}
