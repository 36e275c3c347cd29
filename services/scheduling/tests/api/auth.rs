use std::time::Duration;

use serde_json::{Value, json};
use slotcast_kit::{
    auth::{AuthSettings, JwksSettings, Role},
    retry::Backoff,
};
use slotcast_test_support::{JwksServer, SigningKey, eventually};
use uuid::Uuid;

use crate::helpers::{assert_problem, slot_body, spawn_app, spawn_app_with_auth, token};

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

/// Keycloak's shape: the roles in `realm_access.roles`, short intervals for the test.
fn identity_provider(jwks: &JwksServer) -> AuthSettings {
    AuthSettings {
        jwks: Some(JwksSettings {
            min_refresh_interval: Duration::from_millis(200),
            retry: Backoff::new(Duration::from_millis(100), Duration::from_millis(400)),
            ..JwksSettings::new(jwks.url().parse().unwrap())
        }),
        role_claim: "realm_access.roles".parse().unwrap(),
        ..AuthSettings::default()
    }
}

fn provider_staff_token(key: &SigningKey) -> String {
    key.sign(&json!({
        "sub": Uuid::now_v7(),
        "exp": chrono::Utc::now().timestamp() + 600,
        "realm_access": {"roles": ["offline_access", "staff"]},
    }))
}

fn practitioner() -> Value {
    json!({"name": "Dr Who", "specialty": "time", "timezone": "UTC"})
}

#[tokio::test]
async fn a_staff_token_signed_by_the_identity_provider_creates_a_practitioner() {
    let key = SigningKey::es256("clinic-2026");
    let jwks = JwksServer::start(&[&key]).await.unwrap();
    let app = spawn_app_with_auth(identity_provider(&jwks)).await;

    let res = app
        .post(
            "/v1/practitioners",
            Some(&provider_staff_token(&key)),
            practitioner(),
        )
        .await;

    assert_eq!(res.status(), 201);
    let hs256 = app
        .post("/v1/practitioners", Some(&app.staff), practitioner())
        .await;
    assert_eq!(
        hs256.status(),
        201,
        "slotcast's own HS256 tokens still work"
    );
}

#[tokio::test]
async fn with_the_identity_provider_down_at_start_bearer_calls_get_401_until_it_is_up() {
    let key = SigningKey::es256("clinic-2026");
    let mut jwks = JwksServer::down(&[&key]).unwrap();
    let app = spawn_app_with_auth(identity_provider(&jwks)).await;
    let token = provider_staff_token(&key);

    let res = app
        .post("/v1/practitioners", Some(&token), practitioner())
        .await;
    let problem = assert_problem(res, 401).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("could not be fetched"),
        "{problem}"
    );

    jwks.resume().await.unwrap();
    eventually(
        Duration::from_secs(10),
        "a 201 once the provider is up",
        || {
            let res = app.post("/v1/practitioners", Some(&token), practitioner());
            async move { (res.await.status() == 201).then_some(()) }
        },
    )
    .await;
}
