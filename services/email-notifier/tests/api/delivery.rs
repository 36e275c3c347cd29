use std::time::Duration;

use email_notifier::deliveries::{Status, entity};
use sea_orm::{ActiveModelTrait, Set};
use slotcast_events::{EmailSent, ID_NAMESPACE, WaitKind};
use uuid::Uuid;

use crate::helpers::{notification, republished, spawn_app};

#[tokio::test]
async fn a_notification_with_two_slots_becomes_one_email_and_an_email_sent_event() {
    let app = spawn_app().await;
    let event = notification(WaitKind::New);
    let n = &event.data;

    app.publish(&event).await;

    let sent = app.wait_for_events::<EmailSent>(1).await;
    let mails = app.smtp().messages();
    assert_eq!(mails.len(), 1, "exactly one email");
    let mail = &mails[0];
    assert_eq!(mail.to, vec![n.patient.email.clone()]);
    assert_eq!(mail.from, "no-reply@slotcast.localhost");
    let message_id = format!("<{}@slotcast>", n.notification_id);
    assert_eq!(
        mail.header("Message-ID").as_deref(),
        Some(message_id.as_str())
    );
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("New appointment times with Dr Ada Lovelace")
    );
    assert!(
        mail.header("Content-Type")
            .unwrap()
            .starts_with("multipart/alternative")
    );

    let text = mail.body_text();
    for slot in &n.slots {
        assert!(
            text.contains(&slot.booking_url),
            "booking link {} missing from:\n{text}",
            slot.booking_url
        );
    }
    assert!(text.contains("Hello Grace Hopper,"), "{text}");
    assert!(text.contains("Dr Ada Lovelace (Cardiology)"), "{text}");
    assert!(text.contains("Consultation fee: €80.00"), "{text}");
    assert!(
        text.contains("Tuesday, 1 December 2026, 09:30–10:00 (Europe/Paris)"),
        "{text}"
    );
    assert!(
        text.contains("Tuesday, 1 December 2026, 14:00–14:45 (Europe/Paris)"),
        "{text}"
    );

    let sent = &sent[0];
    assert_eq!(
        sent.id,
        Uuid::new_v5(
            &ID_NAMESPACE,
            format!("email.sent:{}", n.notification_id).as_bytes()
        )
    );
    assert_eq!(
        sent.data,
        EmailSent {
            notification_id: n.notification_id,
            patient_id: n.patient.id,
            message_id
        }
    );
    assert_eq!(sent.subject, n.notification_id.to_string());

    let row = app
        .delivery(n.notification_id)
        .await
        .expect("a delivery row");
    assert_eq!(
        (row.status, row.attempts, row.in_flight),
        (Status::Sent, 1, false)
    );
    assert_eq!(row.patient_id, n.patient.id);
}

#[tokio::test]
async fn the_same_notification_published_again_sends_nothing_more() {
    let app = spawn_app().await;
    let event = notification(WaitKind::MoveUp);
    app.publish(&event).await;
    app.wait_for_events::<EmailSent>(1).await;

    // Same payload, new Nats-Msg-Id: the stream keeps it and the consumer gets it.
    app.publish(&republished(&event)).await;
    app.wait_until_all_notifications_are_handled().await;

    let mails = app.smtp().messages();
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].header("Subject").as_deref(),
        Some("Earlier appointment times with Dr Ada Lovelace")
    );
    assert!(mails[0].body_text().contains("an earlier time"));
    let row = app.delivery(event.data.notification_id).await.unwrap();
    assert_eq!((row.status, row.attempts), (Status::Sent, 1));
    // Give the relay a moment to publish anything it might (wrongly) have been handed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.events::<EmailSent>().len(), 1);
}

#[tokio::test]
async fn a_notification_left_in_flight_by_a_crash_is_sent_again_once_its_lease_ran_out() {
    let app = spawn_app().await;
    let event = notification(WaitKind::New);
    let n = &event.data;
    // What a crash between the SMTP server's 250 and the `sent` commit leaves behind.
    let long_ago = chrono::Utc::now() - chrono::Duration::minutes(5);
    entity::ActiveModel {
        notification_id: Set(n.notification_id),
        patient_id: Set(n.patient.id),
        status: Set(Status::Sending),
        attempts: Set(1),
        in_flight: Set(true),
        last_error: Set(None),
        message_id: Set(format!("<{}@slotcast>", n.notification_id)),
        created_at: Set(long_ago),
        updated_at: Set(long_ago),
    }
    .insert(&app.db)
    .await
    .unwrap();

    app.publish(&event).await;

    app.wait_for_events::<EmailSent>(1).await;
    assert_eq!(app.smtp().messages().len(), 1);
    let row = app.delivery(n.notification_id).await.unwrap();
    assert_eq!(
        (row.status, row.attempts, row.in_flight),
        (Status::Sent, 2, false)
    );
}

#[tokio::test]
async fn a_burst_of_notifications_is_sent_once_each_and_a_republished_one_sends_nothing_more() {
    let app = spawn_app().await;
    let events: Vec<_> = (0..120).map(|_| notification(WaitKind::New)).collect();
    for event in &events {
        app.publish(event).await;
    }
    app.wait_for_events::<EmailSent>(events.len()).await;
    // Published again in a burst of new ones: claimed with them, found finished.
    let more: Vec<_> = (0..20).map(|_| notification(WaitKind::New)).collect();
    for (i, event) in more.iter().enumerate() {
        app.publish(event).await;
        if i == 10 {
            app.publish(&republished(&events[59])).await;
        }
    }
    let sent = app
        .wait_for_events::<EmailSent>(events.len() + more.len())
        .await;
    app.wait_until_all_notifications_are_handled().await;
    let total = events.len() + more.len();
    assert_eq!(app.smtp().messages().len(), total, "one email each");
    let mut ids: Vec<Uuid> = sent.iter().map(|e| e.data.notification_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), total, "one EmailSent each");
    for event in events.iter().chain(&more).step_by(17) {
        let row = app.delivery(event.data.notification_id).await.unwrap();
        assert_eq!(
            (row.status, row.attempts, row.in_flight),
            (Status::Sent, 1, false)
        );
    }
}
