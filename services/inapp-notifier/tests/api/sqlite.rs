use reqwest::StatusCode;
use serde_json::Value;
use slotcast_events::WaitKind;
use uuid::Uuid;

use crate::helpers::{patient_token, spawn_app_on_sqlite};

#[tokio::test]
async fn on_sqlite_a_notification_is_stored_once_marked_taken_and_marked_read() {
    let app = spawn_app_on_sqlite().await;
    let patient = Uuid::now_v7();
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

    for slot in &event.data.slots {
        app.publish_booked(slot.slot_id).await;
    }
    app.wait_for_feed_where(patient, "all slots taken", |feed| {
        feed[0]["all_taken"] == true
    })
    .await;

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
}

fn notify_event_with_two_slots(
    patient: Uuid,
) -> slotcast_events::CloudEvent<slotcast_events::NotifyPatient> {
    crate::helpers::notify_event(patient, 2, WaitKind::New)
}
