use std::time::Duration;

use email_notifier::deliveries::Status;
use slotcast_events::{EmailFailed, EmailSent, WaitKind, subjects};
use slotcast_test_support::ReplyMode;

use crate::helpers::{
    Db, Mail, PATIENCE, eventually, notification, spawn_app, spawn_app_retrying_for,
};

#[tokio::test]
async fn a_recipient_refused_with_550_fails_for_good_without_a_retry() {
    let app = spawn_app().await;
    let event = notification(WaitKind::New);
    let n = &event.data;
    app.smtp()
        .set_reply(ReplyMode::RejectRecipient(n.patient.email.clone()));

    app.publish(&event).await;

    let failed = app.wait_for_events::<EmailFailed>(1).await;
    let failed = &failed[0].data;
    assert!(failed.permanent);
    assert_eq!(
        (failed.notification_id, failed.patient_id),
        (n.notification_id, n.patient.id)
    );
    assert!(failed.reason.contains("550"), "{}", failed.reason);
    assert!(
        !failed.reason.contains('@'),
        "the address leaked: {}",
        failed.reason
    );

    app.wait_until_all_notifications_are_handled().await;
    let row = app.delivery(n.notification_id).await.unwrap();
    assert_eq!(
        (row.status, row.attempts, row.in_flight),
        (Status::Failed, 1, false)
    );
    let last_error = row.last_error.unwrap();
    assert!(
        last_error.contains("550") && !last_error.contains(&n.patient.email),
        "{last_error}"
    );
    assert!(app.smtp().messages().is_empty());
    assert!(app.events::<EmailSent>().is_empty());
}

#[tokio::test]
async fn a_server_answering_451_for_a_while_gets_the_email_exactly_once_in_the_end() {
    let app = spawn_app().await;
    let event = notification(WaitKind::New);
    let n = &event.data;
    app.smtp().set_reply(ReplyMode::TempFail);

    app.publish(&event).await;

    // Retried (200 ms, 400 ms, …) while the server keeps saying 451.
    eventually("two refused attempts", || async {
        let row = app.delivery(n.notification_id).await?;
        (row.attempts >= 2 && !row.in_flight).then_some(row)
    })
    .await;
    let row = app.delivery(n.notification_id).await.unwrap();
    assert_eq!(row.status, Status::Sending);
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("451"),
        "{:?}",
        row.last_error
    );
    assert!(app.smtp().messages().is_empty());

    app.smtp().set_reply(ReplyMode::Accept);

    let mails = app.smtp().wait_for_messages(1, PATIENCE).await.unwrap();
    assert_eq!(mails[0].to, vec![n.patient.email.clone()]);
    app.wait_for_events::<EmailSent>(1).await;
    app.wait_until_all_notifications_are_handled().await;
    let row = app.delivery(n.notification_id).await.unwrap();
    assert_eq!(row.status, Status::Sent);
    assert!(row.attempts >= 3, "attempts: {}", row.attempts);
    assert_eq!(app.smtp().messages().len(), 1);
    assert!(app.events::<EmailFailed>().is_empty());
}

#[tokio::test]
async fn a_server_answering_451_past_the_retry_horizon_fails_the_email_once_and_for_good() {
    let app = spawn_app_retrying_for(Db::Postgres, Mail::Smtp, Duration::from_secs(2)).await;
    let event = notification(WaitKind::New);
    let n = &event.data;
    app.smtp().set_reply(ReplyMode::TempFail);

    app.publish(&event).await;

    let failed = app.wait_for_events::<EmailFailed>(1).await;
    let failed = &failed[0].data;
    assert!(
        !failed.permanent,
        "a temporary failure that lasted too long"
    );
    assert!(failed.reason.contains("451"), "{}", failed.reason);
    app.wait_until_all_notifications_are_handled().await;
    let row = app.delivery(n.notification_id).await.unwrap();
    assert_eq!(row.status, Status::Failed);
    assert!(
        row.attempts >= 2,
        "retried first: {} attempts",
        row.attempts
    );

    // A server that recovers later changes nothing: the notification is not tried again.
    app.smtp().set_reply(ReplyMode::Accept);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(app.smtp().messages().is_empty());
    assert_eq!(app.events::<EmailFailed>().len(), 1);
}

#[tokio::test]
async fn a_malformed_payload_is_dead_lettered_and_the_next_good_message_is_still_delivered() {
    let app = spawn_app().await;
    let event = notification(WaitKind::New);

    app.publish_raw(b"{\"this is\": not a cloud event").await;
    app.publish(&event).await;

    let letter = app.wait_for_dead_letter().await;
    assert_eq!(letter.consumer, "email-notifier");
    assert_eq!(letter.original_subject, subjects::NOTIFY_PATIENT);
    assert_eq!(letter.deliveries, 1, "a malformed payload is not retried");
    assert!(
        letter.reason.contains("not a NotifyPatient"),
        "{}",
        letter.reason
    );

    let mails = app.smtp().wait_for_messages(1, PATIENCE).await.unwrap();
    assert_eq!(mails[0].to, vec![event.data.patient.email.clone()]);
    app.wait_for_events::<EmailSent>(1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.smtp().messages().len(), 1);
}
