//! The OpenAPI document: served as generated, complete, routed, and true to real responses.

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use slotcast_contract::openapi::{
    assert_document_is_committed, assert_every_route_documented, operations, unrouted,
    validate_response,
};
use slotcast_links::OfferSigner;
use uuid::Uuid;

use crate::helpers::{SECRET, TestApp, spawn_app};

fn generated() -> Value {
    serde_json::to_value(scheduling::openapi()).unwrap()
}

#[test]
fn the_document_meets_the_contract_and_is_the_committed_one() {
    assert_document_is_committed(&generated(), env!("CARGO_MANIFEST_DIR"), "scheduling");
}

#[test]
fn every_route_is_registered_with_its_documented_operation() {
    assert_every_route_documented(env!("CARGO_MANIFEST_DIR"));
}

#[tokio::test]
async fn the_service_serves_its_document_and_a_browsable_ui() {
    let app = spawn_app().await;
    let res = app.get("/openapi.json", None).await;
    assert_eq!(res.status(), 200);
    let served: Value = res.json().await.unwrap();
    assert_eq!(served, generated());
    let ui = app.get("/docs/", None).await;
    assert_eq!(ui.status(), 200);
    let page = ui.text().await.unwrap();
    assert!(page.contains("swagger"), "{page}");
    let ui_config = app.get("/docs/swagger-initializer.js", None).await;
    assert_eq!(ui_config.status(), 200);
    assert!(ui_config.text().await.unwrap().contains("/openapi.json"));
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = spawn_app().await;
    let doc = generated();
    assert!(operations(&doc).len() > 20);
    assert_eq!(unrouted(&app.base, &doc).await, Vec::<String>::new());
}

/// Sends a request and checks the answer against the document; returns the body.
async fn checked(
    app: &TestApp,
    doc: &Value,
    (method, template, path): (Method, &str, String),
    token: Option<&str>,
    body: Option<Value>,
) -> Value {
    let res = app.send(method.clone(), &path, token, body).await;
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    if status == 204 {
        return Value::Null;
    }
    let body: Value = res.json().await.unwrap();
    if let Err(errors) =
        validate_response(doc, method.as_str(), template, status, &content_type, &body)
    {
        panic!("{}\n{body:#}", errors.join("\n"));
    }
    body
}

#[tokio::test]
async fn real_answers_match_their_documented_schemas() {
    let app = spawn_app().await;
    let doc = generated();
    let staff = Some(app.staff.as_str());
    let practitioner = checked(
        &app,
        &doc,
        (Method::POST, "/v1/practitioners", "/v1/practitioners".into()),
        staff,
        Some(json!({
            "name": "Dr Who", "specialty": "GP", "timezone": "Europe/Paris", "consultation_fee": 62.5
        })),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let patient = checked(
        &app,
        &doc,
        (Method::POST, "/v1/patients", "/v1/patients".into()),
        staff,
        Some(json!({"name": "Ann", "email": "ann@example.com", "locale": "fr-FR"})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let slots_path = format!("/v1/practitioners/{practitioner}/slots");
    let slots = checked(
        &app,
        &doc,
        (
            Method::POST,
            "/v1/practitioners/{id}/slots",
            slots_path.clone(),
        ),
        staff,
        Some(crate::helpers::slot_body(&[(30, 31), (40, 41)])),
    )
    .await;
    let slot_ids: Vec<Uuid> = slots["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().parse().unwrap())
        .collect();
    checked(
        &app,
        &doc,
        (Method::GET, "/v1/practitioners/{id}/slots", slots_path),
        staff,
        None,
    )
    .await;
    let entry = checked(
        &app,
        &doc,
        (Method::POST, "/v1/waitlist", "/v1/waitlist".into()),
        staff,
        Some(json!({"patient_id": patient, "practitioner_id": practitioner, "kind": "new"})),
    )
    .await;
    checked(
        &app,
        &doc,
        (Method::GET, "/v1/waitlist", "/v1/waitlist".into()),
        staff,
        None,
    )
    .await;
    let entry: Uuid = entry["id"].as_str().unwrap().parse().unwrap();
    let patient: Uuid = patient.parse().unwrap();
    let token = OfferSigner::new(SECRET)
        .sign(
            Uuid::now_v7(),
            patient,
            entry,
            &slot_ids,
            Utc::now() + Duration::days(3),
        )
        .unwrap();
    checked(
        &app,
        &doc,
        (
            Method::GET,
            "/v1/offers/{token}",
            format!("/v1/offers/{token}"),
        ),
        None,
        None,
    )
    .await;
    let claim = format!("/v1/offers/{token}/claim");
    let appointment = checked(
        &app,
        &doc,
        (Method::POST, "/v1/offers/{token}/claim", claim.clone()),
        None,
        Some(json!({"slot_id": slot_ids[0]})),
    )
    .await;
    // The link is used now: a second claim is refused as problem+json.
    checked(
        &app,
        &doc,
        (Method::POST, "/v1/offers/{token}/claim", claim),
        None,
        Some(json!({"slot_id": slot_ids[1]})),
    )
    .await;
    let cancel = format!(
        "/v1/appointments/{}/cancel",
        appointment["id"].as_str().unwrap()
    );
    checked(
        &app,
        &doc,
        (Method::POST, "/v1/appointments/{id}/cancel", cancel),
        staff,
        None,
    )
    .await;
    let hold = format!("/v1/holds/{}", Uuid::now_v7());
    checked(
        &app,
        &doc,
        (Method::PUT, "/v1/holds/{id}", hold),
        staff,
        Some(json!({
            "slot_ids": slot_ids, "patient_ids": [patient], "until": Utc::now() + Duration::minutes(5)
        })),
    )
    .await;
    checked(
        &app,
        &doc,
        (
            Method::GET,
            "/v1/patients/{id}/preferences",
            format!("/v1/patients/{patient}/preferences"),
        ),
        staff,
        None,
    )
    .await;
    checked(
        &app,
        &doc,
        (Method::GET, "/readyz", "/readyz".into()),
        None,
        None,
    )
    .await;
}
