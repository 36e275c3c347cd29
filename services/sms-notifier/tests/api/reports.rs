//! Delivery reports: Kannel calls each text's own address back; a report ends the delivery
//! once, and a report without the text's key changes nothing.

use slotcast_events::{SmsDelivered, SmsFailed};
use sms_notifier::deliveries::Status;

use crate::helpers::{Texts, notification, spawn_app, spawn_app_with};

#[tokio::test]
async fn kannel_reports_the_text_delivered_once() {
    let app = spawn_app().await;
    let event = notification("+33612345678", "en");
    app.publish(&event).await;

    let delivery = app
        .wait_for_delivery(event.data.notification_id, "the text delivered", |d| {
            d.status == Status::Delivered
        })
        .await;
    assert!(delivery.sent_at.is_some());
    assert_eq!(delivery.segments, Some(1));
    let delivered = app.wait_for_events::<SmsDelivered>(1).await;
    assert_eq!(delivered[0].data.patient_id, event.data.patient.id);

    // Kannel reporting again (or a retried callback) changes nothing.
    let path = format!(
        "/v1/sms/reports/{}/{}?status=1",
        event.data.notification_id, delivery.report_key
    );
    let again = app.get(&path).await;
    assert_eq!(again.status(), 200);
    let body: serde_json::Value = again.json().await.unwrap();
    assert_eq!(body["result"], "unchanged");
    let undelivered = app.get(&path.replace("status=1", "status=2")).await;
    assert_eq!(undelivered.status(), 200);
    assert_eq!(app.events::<SmsDelivered>().len(), 1);
    assert!(app.events::<SmsFailed>().is_empty());
    let after = app.delivery(event.data.notification_id).await.unwrap();
    assert_eq!(after.status, Status::Delivered);
}

#[tokio::test]
async fn an_undelivered_report_fails_the_text_for_good() {
    let app = spawn_app_with(Texts::Folder).await;
    let event = notification("+33612345678", "en");
    app.publish(&event).await;
    let delivery = app
        .wait_for_delivery(event.data.notification_id, "the text sent", |d| {
            d.status == Status::Sent
        })
        .await;

    let res = app
        .get(&format!(
            "/v1/sms/reports/{}/{}?status=16",
            event.data.notification_id, delivery.report_key
        ))
        .await;
    assert_eq!(res.status(), 200);
    let failed = app.wait_for_events::<SmsFailed>(1).await;
    assert!(failed[0].data.permanent);
    assert_eq!(
        app.delivery(event.data.notification_id)
            .await
            .unwrap()
            .status,
        Status::Failed
    );
}

#[tokio::test]
async fn a_short_link_that_is_not_ours_is_404() {
    let app = spawn_app_with(Texts::Folder).await;
    for id in ["AAAAAAAAAAAAAAAAAAAAAA", "x", "not%20a%20link"] {
        let res = app.get(&format!("/s/{id}")).await;
        assert_eq!(res.status(), 404, "{id}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
}

#[tokio::test]
async fn a_report_without_the_texts_key_or_code_is_refused_and_changes_nothing() {
    let app = spawn_app_with(Texts::Folder).await;
    let event = notification("+33612345678", "en");
    app.publish(&event).await;
    let delivery = app
        .wait_for_delivery(event.data.notification_id, "the text sent", |d| {
            d.status == Status::Sent
        })
        .await;
    let id = event.data.notification_id;

    let wrong_key = app
        .get(&format!("/v1/sms/reports/{id}/{}?status=1", "0".repeat(32)))
        .await;
    assert_eq!(wrong_key.status(), 404);
    assert_eq!(
        wrong_key.headers()["content-type"],
        "application/problem+json"
    );
    let unknown = app
        .get(&format!(
            "/v1/sms/reports/{}/{}?status=1",
            uuid::Uuid::now_v7(),
            delivery.report_key
        ))
        .await;
    assert_eq!(unknown.status(), 404);
    let bad_code = app
        .get(&format!(
            "/v1/sms/reports/{id}/{}?status=3",
            delivery.report_key
        ))
        .await;
    assert_eq!(bad_code.status(), 422);
    let no_code = app
        .get(&format!("/v1/sms/reports/{id}/{}", delivery.report_key))
        .await;
    assert_eq!(no_code.status(), 400);
    let intermediate = app
        .get(&format!(
            "/v1/sms/reports/{id}/{}?status=8",
            delivery.report_key
        ))
        .await;
    assert_eq!(intermediate.status(), 200);

    assert_eq!(app.delivery(id).await.unwrap().status, Status::Sent);
    assert!(app.events::<SmsFailed>().is_empty());
}
