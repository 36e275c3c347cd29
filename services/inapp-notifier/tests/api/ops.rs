use reqwest::StatusCode;
use slotcast_events::WaitKind;
use uuid::Uuid;

use crate::helpers::{notify_event, spawn_app};

#[tokio::test]
async fn health_readiness_and_metrics_are_served_and_count_stored_notifications() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);

    let patient = Uuid::now_v7();
    let event = notify_event(patient, 1, WaitKind::New);
    app.publish_notify(&event).await;
    app.wait_for_feed(patient, 1).await;
    app.publish_booked(event.data.slots[0].slot_id).await;
    app.wait_until_slot_events_consumed().await;

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("slotcast_inapp_notifier_notifications_stored_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("slotcast_inapp_notifier_slot_changes_total"),
        "{metrics}"
    );

    let response = app.get("/v1/nothing-here").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
