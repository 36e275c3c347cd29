//! The OpenAPI document: served as generated, complete, routed, and true to real responses.

use serde_json::Value;
use slotcast_contract::openapi::{
    assert_document_is_committed, assert_every_route_documented, operations, unrouted,
};

use crate::helpers::{Texts, spawn_app_with};

fn generated() -> Value {
    serde_json::to_value(sms_notifier::openapi()).unwrap()
}

#[test]
fn the_document_meets_the_contract_and_is_the_committed_one() {
    assert_document_is_committed(&generated(), env!("CARGO_MANIFEST_DIR"), "sms-notifier");
}

#[test]
fn every_route_is_registered_with_its_documented_operation() {
    assert_every_route_documented(env!("CARGO_MANIFEST_DIR"));
}

#[tokio::test]
async fn the_service_serves_its_document_and_routes_every_operation() {
    let app = spawn_app_with(Texts::Folder).await;
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status(), 200);
    let served: Value = res.json().await.unwrap();
    assert_eq!(served, generated());
    assert!(operations(&served).len() >= 4);
    assert_eq!(unrouted(&app.url(""), &served).await, Vec::<String>::new());
}
