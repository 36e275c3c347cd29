use reqwest::StatusCode;
use serde_json::Value;
use slotcast_events::WaitKind;
use uuid::Uuid;

use crate::helpers::{is_problem, notify_event, patient_token, spawn_app, staff_token};

#[tokio::test]
async fn the_feed_needs_a_token_and_is_only_for_that_patient_or_staff() {
    let app = spawn_app().await;
    let patient = Uuid::now_v7();
    app.publish_notify(&notify_event(patient, 1, WaitKind::New))
        .await;
    app.wait_for_feed(patient, 1).await;
    let id = patient.to_string();

    let response = app.get_feed(&id, "", None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(is_problem(&response));

    let response = app.get_feed(&id, "", Some("not-a-jwt")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let response = app
        .get_feed(&id, "", Some(&patient_token(Uuid::now_v7())))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(is_problem(&response));

    let response = app.get_feed(&id, "", Some(&staff_token())).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["notifications"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_malformed_patient_or_notification_id_is_a_400_problem() {
    let app = spawn_app().await;
    let patient = Uuid::now_v7();
    let token = patient_token(patient);

    let response = app.get_feed("not-a-uuid", "", Some(&token)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(is_problem(&response));

    let response = app.mark_read(&patient.to_string(), "42", &token).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(is_problem(&response));
}

#[tokio::test]
async fn marking_another_patients_notification_read_is_a_404_and_leaves_it_unread() {
    let app = spawn_app().await;
    let (alice, mallory) = (Uuid::now_v7(), Uuid::now_v7());
    let event = notify_event(alice, 1, WaitKind::New);
    app.publish_notify(&event).await;
    app.wait_for_feed(alice, 1).await;
    let nid = event.data.notification_id.to_string();

    // Through her own feed's path: as if it did not exist.
    let response = app
        .mark_read(&mallory.to_string(), &nid, &patient_token(mallory))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(is_problem(&response));
    let body: Value = response.json().await.unwrap();
    assert!(!body.to_string().contains(&alice.to_string()));

    // Through Alice's path: not hers to change.
    let response = app
        .mark_read(&alice.to_string(), &nid, &patient_token(mallory))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // A notification that does not exist at all is a 404 too.
    let response = app
        .mark_read(
            &alice.to_string(),
            &Uuid::now_v7().to_string(),
            &patient_token(alice),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    assert_eq!(app.feed(alice, "?unread=true").await.len(), 1);
}
