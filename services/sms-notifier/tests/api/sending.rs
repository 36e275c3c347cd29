//! Texts through a real Kannel: one per notification, in the patient's language, only with
//! consent, and never twice.

use std::time::Duration;

use slotcast_events::{CloudEvent, SmsFailed, SmsSent};
use slotcast_test_support::DENIED_PREFIX;
use sms_notifier::deliveries::Status;

use crate::helpers::{Texts, notification, offer_page, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_consenting_patient_gets_one_text_with_the_offer_link_through_kannel() {
    let app = spawn_app().await;
    let event = notification("+33612345678", "en");
    app.publish(&event).await;

    let texts = app
        .kannel()
        .wait_for_messages(1, Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(texts[0].to, "+33612345678");
    assert_eq!(texts[0].coding, "text", "plain English goes as GSM-7");
    let text = &texts[0].text;
    assert_eq!(texts[0].segments.len(), 1, "one SMS: {text}");
    assert!(
        text.starts_with(
            "Dr Ada Lovelace: 2 times are free: 1) Tue 1 Dec 09:30, 2) 14:30. \
             Reply with a number to book, or see "
        ),
        "{text}"
    );
    // The link is short, and leads to the offer's page.
    let link = text.rsplit(' ').next().unwrap();
    let id = link.strip_prefix(&app.url("/s/")).expect("a short link");
    assert_eq!(id.len(), 22, "{link}");
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(link)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], offer_page(&event).as_str());

    let sent = app.wait_for_events::<SmsSent>(1).await;
    assert_eq!(sent[0].data.notification_id, event.data.notification_id);
    assert_eq!(sent[0].data.patient_id, event.data.patient.id);
    assert_eq!(sent[0].data.segments, 1);
    assert_eq!(sent[0].source, "/slotcast/sms-notifier");
}

#[tokio::test]
async fn a_redelivered_notification_sends_no_second_text() {
    let app = spawn_app().await;
    let event = notification("+33612345678", "en");
    app.publish(&event).await;
    app.wait_for_events::<SmsSent>(1).await;
    // The same decision again, under a new event id, so the stream does not drop it.
    app.publish(&CloudEvent::new("matching", event.data.clone()))
        .await;
    app.wait_until_all_notifications_are_handled().await;

    assert_eq!(app.kannel().messages().len(), 1);
    assert_eq!(app.events::<SmsSent>().len(), 1);
    let delivery = app.delivery(event.data.notification_id).await.unwrap();
    assert_eq!(delivery.attempts, 1);
}

#[tokio::test]
async fn no_text_goes_without_consent_or_without_a_number() {
    let app = spawn_app().await;
    let mut no_consent = notification("+33612345678", "en");
    no_consent.data.channels.sms = false;
    let mut no_number = notification("+33612345679", "en");
    no_number.data.patient.phone = None;
    let consented = notification("+33612345670", "en");
    for event in [&no_consent, &no_number, &consented] {
        app.publish(event).await;
    }
    app.wait_until_all_notifications_are_handled().await;
    app.wait_for_events::<SmsSent>(1).await;

    let texts = app.kannel().messages();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert_eq!(texts[0].to, "+33612345670");
    for skipped in [&no_consent, &no_number] {
        assert!(app.delivery(skipped.data.notification_id).await.is_none());
    }
}

#[tokio::test]
async fn a_french_text_is_in_french_in_gsm7_and_one_sms_without_the_list_where_it_would_not_fit() {
    let app = spawn_app().await;
    let event = notification("+33612345678", "fr");
    app.publish(&event).await;

    let texts = app
        .kannel()
        .wait_for_messages(1, Duration::from_secs(15))
        .await
        .unwrap();
    let text = &texts[0].text;
    // The list would take two SMS here (the test's link is long): the first slot and the count.
    assert!(
        text.starts_with(
            "Dr Ada Lovelace : 2 créneaux libres, le premier le mar. 1 déc. à 09:30. \
             Répondez 1 pour le réserver, ou voir "
        ),
        "{text}"
    );
    assert_eq!(texts[0].segments.len(), 1, "{text}");
    assert_eq!(texts[0].coding, "text", "é and à are GSM-7: {text}");
}

#[tokio::test]
async fn a_number_the_gateway_refuses_fails_for_good_and_says_so() {
    let app = spawn_app().await;
    let event = notification(&format!("{DENIED_PREFIX}12345678"), "en");
    app.publish(&event).await;

    let failed = app.wait_for_events::<SmsFailed>(1).await;
    assert_eq!(failed[0].data.notification_id, event.data.notification_id);
    assert!(failed[0].data.permanent);
    assert!(
        failed[0].data.reason.contains("400"),
        "{}",
        failed[0].data.reason
    );
    assert!(
        !failed[0].data.reason.contains("12345678"),
        "no number in the reason"
    );
    let delivery = app.delivery(event.data.notification_id).await.unwrap();
    assert_eq!(delivery.status, Status::Failed);
    assert!(app.kannel().messages().is_empty());
}

#[tokio::test]
async fn a_gateway_that_refuses_our_credentials_is_retried_not_given_up() {
    let app = spawn_app_with(Texts::KannelRefusingUs).await;
    let event = notification("+33612345678", "en");
    app.publish(&event).await;

    let delivery = app
        .wait_for_delivery(event.data.notification_id, "three attempts", |d| {
            d.attempts >= 3
        })
        .await;
    assert_eq!(delivery.status, Status::Sending);
    assert!(
        delivery
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("403"),
        "{:?}",
        delivery.last_error
    );
    assert!(app.events::<SmsFailed>().is_empty());
    assert!(app.kannel().messages().is_empty());
}

#[tokio::test]
async fn without_a_gateway_texts_are_written_as_files() {
    let app = spawn_app_with(Texts::Folder).await;
    let event = notification("+33612345678", "de");
    app.publish(&event).await;
    app.wait_for_events::<SmsSent>(1).await;

    let file = app
        .folder
        .path()
        .join(format!("{}.txt", event.data.notification_id));
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.starts_with("To: +33612345678\n"), "{written}");
    assert!(
        written.contains("Dr Ada Lovelace: 2 Termine frei"),
        "{written}"
    );
}

#[tokio::test]
async fn a_text_for_after_the_quiet_hours_waits_and_one_whose_end_has_come_goes_at_once() {
    let app = spawn_app().await;
    let mut night = notification("+33612345678", "en");
    night.data.sms_not_before = Some(chrono::Utc::now() + chrono::Duration::hours(1));
    let mut morning = notification("+33612345679", "en");
    morning.data.sms_not_before = Some(chrono::Utc::now() - chrono::Duration::seconds(1));
    app.publish(&night).await;
    app.publish(&morning).await;

    let texts = app
        .kannel()
        .wait_for_messages(1, Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(texts[0].to, "+33612345679", "the morning's goes at once");
    // The night's was handed over and given back to JetStream until the hour: nothing claimed.
    crate::helpers::eventually("the night's text handed back", || async {
        let stream = app
            .js
            .get_stream(slotcast_events::streams::NOTIFY)
            .await
            .ok()?;
        let consumer = stream.consumer_info(sms_notifier::SERVICE).await.ok()?;
        (consumer.delivered.stream_sequence >= 2 && consumer.num_ack_pending == 1).then_some(())
    })
    .await;
    assert!(app.delivery(night.data.notification_id).await.is_none());
    assert_eq!(app.kannel().messages().len(), 1);
}
