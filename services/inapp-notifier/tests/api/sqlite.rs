use reqwest::StatusCode;
use serde_json::Value;
use slotcast_events::WaitKind;
use uuid::Uuid;

use crate::helpers::{patient_token, spawn_app_on_sqlite};

#[tokio::test]
async fn on_sqlite_a_notification_is_stored_once_its_slots_follow_the_events_and_the_stream_sends_each_change()
 {
    let app = spawn_app_on_sqlite().await;
    let patient = Uuid::now_v7();
    // The stream reads on the one connection the writers share.
    let mut stream = app.stream(patient, None).await;
    let event = notify_event_with_two_slots(patient);
    app.publish_notify(&event).await;
    let payload = serde_json::to_vec(&event).unwrap();
    app.publish_with_msg_id(
        slotcast_events::subjects::NOTIFY_PATIENT,
        "redelivered",
        payload,
    )
    .await;
    app.wait_until_notifications_consumed().await;
    let feed = app.feed(patient, "").await;
    assert_eq!(feed.len(), 1);
    assert_eq!(app.outbox_rows().await, 1);

    assert_eq!(stream.next().await.event, "notification");

    app.publish_booked_by(event.data.slots[0].slot_id, patient)
        .await;
    app.publish_booked(event.data.slots[1].slot_id).await;
    let feed = app
        .wait_for_feed_where(patient, "all slots taken", |feed| {
            feed[0]["all_taken"] == true
        })
        .await;
    assert_eq!(feed[0]["slots"][0]["status"], "booked_by_you");
    assert_eq!(feed[0]["slots"][1]["status"], "taken");
    for id in ["2", "3"] {
        let updated = stream.next().await;
        assert_eq!(
            (updated.id.as_str(), updated.event.as_str()),
            (id, "notification.updated")
        );
    }

    // Released: available again, whatever the order the consumer handled them in.
    app.publish_released(event.data.slots[1].slot_id).await;
    app.wait_for_feed_where(patient, "the second slot available again", |feed| {
        feed[0]["slots"][1]["available"] == true
    })
    .await;
    assert_eq!(stream.next().await.id, "4");

    let response = app
        .mark_read(
            &patient.to_string(),
            &event.data.notification_id.to_string(),
            &patient_token(patient),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let marked: Value = response.json().await.unwrap();
    assert!(marked["read_at"].is_string());
    assert!(app.feed(patient, "?unread=true").await.is_empty());
    let read = stream.next().await;
    assert_eq!(read.id, "5");
    assert!(read.data["read_at"].is_string());
}

fn notify_event_with_two_slots(
    patient: Uuid,
) -> slotcast_events::CloudEvent<slotcast_events::NotifyPatient> {
    crate::helpers::notify_event(patient, 2, WaitKind::New)
}
