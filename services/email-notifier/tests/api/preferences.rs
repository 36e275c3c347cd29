//! Patient preferences in email: the RFC 8058 one-click unsubscribe headers and the
//! preferences link on every email, the wave's hold in the wording, and nothing sent to a
//! patient who turned availability email off.

use chrono::{TimeZone, Utc};
use slotcast_events::{Channels, EmailSent, OfferedSlot, WaitKind};

use crate::helpers::{notification, spawn_app};

#[tokio::test]
async fn every_email_has_the_one_click_unsubscribe_headers_and_a_visible_preferences_link() {
    let app = spawn_app().await;
    let mut event = notification(WaitKind::New);
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwIn0.c2ln";
    event.data.preferences_url = Some(format!("http://127.0.0.1:8080/v1/preferences/{token}"));
    event.data.unsubscribe_url = Some(format!("http://127.0.0.1:8080/v1/unsubscribe/{token}"));
    app.publish(&event).await;
    app.wait_for_events::<EmailSent>(1).await;
    let mail = &app.smtp().messages()[0];
    assert_eq!(
        mail.header("List-Unsubscribe").as_deref(),
        Some(format!("<http://127.0.0.1:8080/v1/unsubscribe/{token}>").as_str())
    );
    assert_eq!(
        mail.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let text = mail.body_text();
    assert!(
        text.contains(&format!(
            "Choose which notifications you get: http://127.0.0.1:8080/v1/preferences/{token}"
        )),
        "{text}"
    );
    assert!(
        text.contains("These times are offered to other patients too"),
        "{text}"
    );
}

#[tokio::test]
async fn a_wave_s_email_says_until_when_the_times_are_held() {
    let app = spawn_app().await;
    let mut event = notification(WaitKind::New);
    let until = Utc.with_ymd_and_hms(2026, 11, 30, 16, 15, 0).unwrap();
    event.data.wave = Some(2);
    event.data.slots = event
        .data
        .slots
        .into_iter()
        .map(|s| OfferedSlot {
            held_until: Some(until),
            ..s
        })
        .collect();
    app.publish(&event).await;
    app.wait_for_events::<EmailSent>(1).await;
    let text = app.smtp().messages()[0].body_text();
    assert!(
        text.contains(
            "held for you and a few other patients until Monday, 30 November 2026 at 17:15 (Europe/Paris)"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_patient_who_turned_availability_email_off_gets_none() {
    let app = spawn_app().await;
    let mut off = notification(WaitKind::New);
    off.data.channels = Channels {
        email: false,
        inapp: true,
        sms: false,
    };
    let on = notification(WaitKind::New);
    app.publish(&off).await;
    app.publish(&on).await;
    app.wait_for_events::<EmailSent>(1).await;
    app.wait_until_all_notifications_are_handled().await;
    let mails = app.smtp().messages();
    assert_eq!(mails.len(), 1, "only the patient who wants email gets one");
    assert_eq!(mails[0].to, vec![on.data.patient.email.clone()]);
    assert_eq!(app.events::<EmailSent>().len(), 1);
}
