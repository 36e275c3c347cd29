//! Abuse limits per client address: failed authentication, and the pages of links.

use chrono::{Duration, Utc};
use futures::{StreamExt, stream};
use scheduling::Policy;
use serde_json::json;
use slotcast_kit::{auth::Role, limits::LimitsConfig};
use slotcast_links::OfferSigner;
use slotcast_test_support::TestDatabase;
use uuid::Uuid;

use crate::helpers::{SECRET, TestApp, assert_problem, hours, spawn_app, spawn_app_limited, token};

async fn limited(limits: LimitsConfig) -> TestApp {
    let db = TestDatabase::postgres().await.expect("postgres");
    spawn_app_limited(db, Policy::default(), limits).await
}

/// A token signed with a secret that is not ours.
fn forged() -> String {
    slotcast_kit::auth::mint(
        "not-the-secret",
        Uuid::now_v7(),
        Role::Staff,
        chrono::Duration::minutes(5),
    )
    .unwrap()
}

impl TestApp {
    /// `GET /v1/practitioners/{id}` with `bearer`, as if from `client` behind a proxy.
    async fn read_practitioner_from(
        &self,
        client: &str,
        bearer: &str,
        id: Uuid,
    ) -> reqwest::Response {
        self.client
            .get(format!("{}/v1/practitioners/{id}", self.base))
            .bearer_auth(bearer)
            .header("x-forwarded-for", format!("10.9.9.9, {client}"))
            .send()
            .await
            .unwrap()
    }
}

/// The `Retry-After` of a 429, in seconds.
async fn retry_after(res: reqwest::Response) -> u64 {
    let seconds = res
        .headers()
        .get("retry-after")
        .expect("a 429 says when to retry")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = assert_problem(res, 429).await;
    assert!(body["detail"].as_str().unwrap().contains("retry in"));
    seconds
}

#[tokio::test]
async fn forged_bearer_tokens_get_401_until_the_limit_then_429_with_retry_after() {
    let app = spawn_app().await;
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let res = app
            .get(
                &format!("/v1/practitioners/{}", Uuid::now_v7()),
                Some(&forged()),
            )
            .await;
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            let wait = retry_after(res).await;
            assert!((1..=60).contains(&wait), "Retry-After {wait}");
        }
    }
    let refused = statuses.iter().filter(|s| **s == 401).count();
    // 30 a minute by default; one more may have come back if the loop was slow.
    assert!((30..=32).contains(&refused), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(statuses[..30].iter().all(|s| *s == 401), "{statuses:?}");
}

#[tokio::test]
async fn an_address_over_the_failure_limit_is_blocked_and_no_other_is() {
    let app = limited(LimitsConfig {
        failed_auth_per_minute: 5,
        trust_forwarded_for: true,
        ..LimitsConfig::default()
    })
    .await;
    let practitioner = app.create_practitioner().await;
    let (attacker, clinic) = ("203.0.113.7", "198.51.100.20");
    for _ in 0..5 {
        let res = app
            .read_practitioner_from(attacker, &forged(), practitioner)
            .await;
        assert_eq!(res.status(), 401);
    }
    let res = app
        .read_practitioner_from(attacker, &forged(), practitioner)
        .await;
    assert!(retry_after(res).await >= 1);
    // Blocked, even with a valid token, until the address is back under the limit.
    let res = app
        .read_practitioner_from(attacker, &app.staff, practitioner)
        .await;
    assert_eq!(res.status(), 429);
    // Another client behind the same proxy is served.
    let res = app
        .read_practitioner_from(clinic, &app.staff, practitioner)
        .await;
    assert_eq!(res.status(), 200);
    // The health check is never limited.
    let res = app.get("/healthz", None).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn x_forwarded_for_is_ignored_unless_the_proxy_is_trusted() {
    let app = limited(LimitsConfig {
        failed_auth_per_minute: 3,
        ..LimitsConfig::default()
    })
    .await;
    let practitioner = app.create_practitioner().await;
    let mut statuses = Vec::new();
    for i in 0..5 {
        // A client that varies the header on every try is still one address.
        let res = app
            .read_practitioner_from(&format!("192.0.2.{i}"), &forged(), practitioner)
            .await;
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
}

#[tokio::test]
async fn forged_booking_links_are_limited_like_forged_tokens() {
    let app = limited(LimitsConfig {
        failed_auth_per_minute: 4,
        ..LimitsConfig::default()
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let token = OfferSigner::new("not-the-secret")
            .sign(
                Uuid::now_v7(),
                Uuid::now_v7(),
                Uuid::now_v7(),
                &[Uuid::now_v7()],
                Utc::now() + Duration::days(1),
            )
            .unwrap();
        let res = app
            .post(
                &format!("/v1/offers/{token}/claim"),
                None,
                json!({"slot_id": Uuid::now_v7()}),
            )
            .await;
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429]);
}

#[tokio::test]
async fn the_pages_of_links_are_limited_per_address_and_the_api_is_not() {
    let app = limited(LimitsConfig {
        links_per_minute: 5,
        ..LimitsConfig::default()
    })
    .await;
    let practitioner = app.create_practitioner().await;
    let patient = app.create_patient("Ada").await;
    let entry = app.joins(patient, practitioner).await;
    let slots = app.create_slots(practitioner, &[(30, 31)]).await;
    let link = OfferSigner::new(SECRET)
        .sign(
            Uuid::now_v7(),
            patient,
            entry,
            &slots,
            Utc::now() + Duration::days(1),
        )
        .unwrap();
    for _ in 0..5 {
        assert_eq!(
            app.get(&format!("/v1/offers/{link}"), None).await.status(),
            200
        );
    }
    let res = app.get(&format!("/v1/offers/{link}"), None).await;
    assert!(retry_after(res).await >= 1);
    // Authenticated API calls from the same address are not link pages.
    for _ in 0..10 {
        let res = app
            .get(
                &format!("/v1/practitioners/{practitioner}"),
                Some(&app.staff),
            )
            .await;
        assert_eq!(res.status(), 200);
    }
}

#[tokio::test]
async fn a_clinic_tool_posting_200_slots_a_second_with_a_valid_token_is_never_limited() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let own = token(practitioner, Role::Practitioner);
    let statuses: Vec<u16> = stream::iter(0..200)
        .map(|i| {
            let (app, own) = (&app, &own);
            async move {
                let body = json!({"slots": [{
                    "starts_at": hours(24) + Duration::minutes(30 * i),
                    "ends_at": hours(24) + Duration::minutes(30 * i + 30),
                }]});
                app.post(
                    &format!("/v1/practitioners/{practitioner}/slots"),
                    Some(own),
                    body,
                )
                .await
                .status()
                .as_u16()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
}
