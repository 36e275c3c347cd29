use slotcast_events::{EmailSent, WaitKind};

use crate::helpers::{notification, spawn_app};

#[tokio::test]
async fn health_readiness_and_metrics_are_served_and_nothing_else() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();

    let health = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    app.publish(&notification(WaitKind::New)).await;
    app.wait_for_events::<EmailSent>(1).await;
    let metrics = client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let body = metrics.text().await.unwrap();
    assert!(body.contains("slotcast_email_sent_total"), "{body}");
    assert!(
        body.contains("slotcast_email_send_duration_seconds"),
        "{body}"
    );

    let other = client.get(app.url("/v1/anything")).send().await.unwrap();
    assert_eq!(other.status(), 404);
}
