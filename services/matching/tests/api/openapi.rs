//! The OpenAPI document: served as generated, complete, routed, and true to real responses.

use std::time::Duration;

use serde_json::Value;
use slotcast_contract::openapi::{
    assert_document_is_committed, assert_every_route_documented, operations, unrouted,
    validate_response,
};
use slotcast_events::WaitKind;
use slotcast_kit::auth::{Role, mint};
use uuid::Uuid;

use crate::helpers::{SECRET, TestMatching, spawn_matching};

fn generated() -> Value {
    serde_json::to_value(matching::openapi()).unwrap()
}

#[test]
fn the_document_meets_the_contract_and_is_the_committed_one() {
    assert_document_is_committed(&generated(), env!("CARGO_MANIFEST_DIR"), "matching");
}

#[test]
fn every_route_is_registered_with_its_documented_operation() {
    assert_every_route_documented(env!("CARGO_MANIFEST_DIR"));
}

impl TestMatching {
    /// `GET path` as staff, checked against the document; the body.
    async fn checked(&self, doc: &Value, template: &str, path: &str) -> Value {
        let staff = mint(
            SECRET,
            Uuid::now_v7(),
            Role::Staff,
            chrono::Duration::minutes(5),
        )
        .unwrap();
        let res = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(staff)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
        let body: Value = res.json().await.unwrap();
        if let Err(errors) = validate_response(doc, "GET", template, status, &content_type, &body) {
            panic!("{}\n{body:#}", errors.join("\n"));
        }
        body
    }
}

#[tokio::test]
async fn the_service_serves_its_document_and_answers_as_it_documents() {
    let m = spawn_matching().await;
    let res = reqwest::get(format!("{}/openapi.json", m.base))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let served: Value = res.json().await.unwrap();
    assert_eq!(served, generated());
    let ui = reqwest::get(format!("{}/docs/", m.base)).await.unwrap();
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.unwrap().contains("swagger"));
    assert!(operations(&served).len() >= 5);
    assert_eq!(unrouted(&m.base, &served).await, Vec::<String>::new());

    let dr = m.practitioner().await;
    let ann = m.patient().await;
    m.waits(ann, dr, WaitKind::New, None).await;
    let slot = m.batch(dr, &[10]).await.remove(0).slot_id;
    m.notifications(1, Duration::from_millis(300)).await;
    let offers = m
        .checked(
            &served,
            "/v1/slots/{id}/offers",
            &format!("/v1/slots/{slot}/offers"),
        )
        .await;
    assert_eq!(offers["offered"].as_array().unwrap().len(), 1);
    let decisions = m
        .checked(
            &served,
            "/v1/slots/{id}/decisions",
            &format!("/v1/slots/{slot}/decisions"),
        )
        .await;
    assert_eq!(decisions["considered"].as_array().unwrap().len(), 1);
    let unknown = format!("/v1/slots/{}/decisions", Uuid::now_v7());
    m.checked(&served, "/v1/slots/{id}/decisions", &unknown)
        .await;
}
