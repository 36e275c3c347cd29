use serde_json::json;
use slotcast_kit::auth::Role;
use uuid::Uuid;

use crate::helpers::{assert_problem, slot_body, spawn_app, token};

#[tokio::test]
async fn a_request_without_a_token_gets_401() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/v1/practitioners",
            None,
            json!({"name": "x", "specialty": "y", "timezone": "UTC"}),
        )
        .await;
    assert_problem(res, 401).await;
}

#[tokio::test]
async fn a_token_signed_with_another_secret_gets_401() {
    let app = spawn_app().await;
    let forged = slotcast_kit::auth::mint(
        "not-the-secret",
        Uuid::now_v7(),
        Role::Staff,
        chrono::Duration::minutes(5),
    )
    .unwrap();
    let res = app.get("/v1/waitlist", Some(&forged)).await;
    assert_problem(res, 401).await;
}

#[tokio::test]
async fn only_staff_register_practitioners_and_patients() {
    let app = spawn_app().await;
    let patient = token(Uuid::now_v7(), Role::Patient);
    let res = app
        .post(
            "/v1/practitioners",
            Some(&patient),
            json!({"name": "x", "specialty": "y", "timezone": "UTC"}),
        )
        .await;
    assert_problem(res, 403).await;
    let res = app
        .post(
            "/v1/patients",
            Some(&patient),
            json!({"name": "x", "email": "x@y.example"}),
        )
        .await;
    assert_problem(res, 403).await;
}

#[tokio::test]
async fn a_practitioner_posts_slots_only_for_themself() {
    let app = spawn_app().await;
    let (mine, theirs) = (
        app.create_practitioner().await,
        app.create_practitioner().await,
    );
    let me = token(mine, Role::Practitioner);
    let res = app
        .post(
            &format!("/v1/practitioners/{theirs}/slots"),
            Some(&me),
            slot_body(&[(1, 2)]),
        )
        .await;
    assert_problem(res, 403).await;
    let res = app
        .post(
            &format!("/v1/practitioners/{mine}/slots"),
            Some(&me),
            slot_body(&[(1, 2)]),
        )
        .await;
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn a_patient_books_and_waits_only_for_themself() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let (alice, bob) = (
        app.create_patient("Alice").await,
        app.create_patient("Bob").await,
    );
    let slot = app.create_slots(practitioner, &[(1, 2)]).await[0];
    let as_bob = token(bob, Role::Patient);
    let res = app
        .post(
            "/v1/appointments",
            Some(&as_bob),
            json!({"patient_id": alice, "slot_id": slot}),
        )
        .await;
    assert_problem(res, 403).await;
    let res = app
        .post(
            "/v1/waitlist",
            Some(&as_bob),
            json!({"patient_id": alice, "practitioner_id": practitioner, "kind": "new"}),
        )
        .await;
    assert_problem(res, 403).await;
    let res = app
        .post(
            "/v1/appointments",
            Some(&as_bob),
            json!({"patient_id": bob, "slot_id": slot}),
        )
        .await;
    assert_eq!(res.status(), 201);
}
