//! The OpenAPI document: served as generated, complete, routed, and true to real responses.

use serde_json::Value;
use slotcast_contract::openapi::{
    assert_document_is_committed, assert_every_route_documented, operations, unrouted,
    validate_response,
};
use slotcast_events::WaitKind;

use crate::helpers::{notify_event, patient_token, spawn_app, staff_token};

fn generated() -> Value {
    serde_json::to_value(inapp_notifier::openapi()).unwrap()
}

#[test]
fn the_document_meets_the_contract_and_is_the_committed_one() {
    assert_document_is_committed(&generated(), env!("CARGO_MANIFEST_DIR"), "inapp-notifier");
}

#[test]
fn every_route_is_registered_with_its_documented_operation() {
    assert_every_route_documented(env!("CARGO_MANIFEST_DIR"));
}

#[tokio::test]
async fn the_service_serves_its_document_a_browsable_ui_and_routes_every_operation() {
    let app = spawn_app().await;
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status(), 200);
    let served: Value = res.json().await.unwrap();
    assert_eq!(served, generated());
    let ui = app.get("/docs/").await;
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.unwrap().contains("swagger"));
    assert!(operations(&served).len() >= 6);
    assert_eq!(unrouted(&app.address, &served).await, Vec::<String>::new());
}

#[tokio::test]
async fn the_feed_and_marking_read_match_their_documented_schemas() {
    let app = spawn_app().await;
    let doc = generated();
    let event = notify_event(uuid::Uuid::now_v7(), 2, WaitKind::New);
    let patient = event.data.patient.id;
    app.publish_notify(&event).await;
    let notifications = app.wait_for_feed(patient, 1).await;
    let res = app
        .get_feed(&patient.to_string(), "", Some(&staff_token()))
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("feed-last-event-id"));
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    let feed: Value = res.json().await.unwrap();
    let feed_path = "/v1/patients/{id}/notifications";
    validate_response(&doc, "GET", feed_path, 200, &content_type, &feed).unwrap();
    let nid = notifications[0]["id"].as_str().unwrap();
    let res = app
        .mark_read(&patient.to_string(), nid, &patient_token(patient))
        .await;
    assert_eq!(res.status(), 200);
    let read: Value = res.json().await.unwrap();
    let read_path = "/v1/patients/{id}/notifications/{nid}/read";
    validate_response(&doc, "POST", read_path, 200, "application/json", &read).unwrap();
    let res = app
        .get_feed(&patient.to_string(), "?limit=0", Some(&staff_token()))
        .await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    validate_response(
        &doc,
        "GET",
        feed_path,
        422,
        "application/problem+json",
        &problem,
    )
    .unwrap();
}
