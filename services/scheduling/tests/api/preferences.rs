//! Notification preferences: through the API, the preferences link and RFC 8058 one-click.

use serde_json::{Value, json};
use slotcast_kit::auth::Role;
use slotcast_links::OfferSigner;

use crate::helpers::{SECRET, assert_problem, spawn_app, token};

#[tokio::test]
async fn preferences_are_read_and_changed_by_that_patient_or_staff_only() {
    let app = spawn_app().await;
    let (alice, bob) = (
        app.create_patient("Alice").await,
        app.create_patient("Bob").await,
    );
    let path = format!("/v1/patients/{alice}/preferences");
    let as_alice = token(alice, Role::Patient);
    let as_bob = token(bob, Role::Patient);
    let prefs: Value = app.get(&path, Some(&as_alice)).await.json().await.unwrap();
    assert_eq!(
        (prefs["email"].as_bool(), prefs["inapp"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(prefs["patient_id"], alice.to_string());
    assert!(prefs["updated_at"].is_string());
    assert_problem(app.get(&path, Some(&as_bob)).await, 403).await;
    assert_problem(
        app.put(&path, Some(&as_bob), json!({"email": false})).await,
        403,
    )
    .await;
    assert_problem(
        app.put(&path, Some(&as_alice), json!({"email": "no"}))
            .await,
        422,
    )
    .await;

    for _ in 0..2 {
        let res = app
            .put(&path, Some(&as_alice), json!({"inapp": false}))
            .await;
        assert_eq!(res.status(), 200);
        let prefs: Value = res.json().await.unwrap();
        assert_eq!(
            (prefs["email"].as_bool(), prefs["inapp"].as_bool()),
            (Some(true), Some(false))
        );
    }
    let res = app
        .put(
            &path,
            Some(&app.staff),
            json!({"inapp": true, "email": false}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let changed = app
        .events("slotcast.scheduling.patient.preferences_changed", 3)
        .await;
    assert_eq!(changed.len(), 2, "only changes are published");
    assert_eq!(changed[0]["data"]["via"], "api");
    assert_eq!(changed[0]["data"]["inapp"], false);
    assert_eq!(changed[1]["data"]["email"], false);
}

#[tokio::test]
async fn one_click_unsubscribe_works_without_login_and_a_get_changes_nothing() {
    let app = spawn_app().await;
    let alice = app.create_patient("Alice").await;
    let link = OfferSigner::new(SECRET).sign_preferences(alice).unwrap();
    let url = format!("{}/v1/unsubscribe/{link}", app.base);
    let prefs = || async {
        let v: Value = app
            .get(
                &format!("/v1/patients/{alice}/preferences"),
                Some(&app.staff),
            )
            .await
            .json()
            .await
            .unwrap();
        v["email"].as_bool().unwrap()
    };

    // What a mail scanner does: follow the link. It gets a page with a button, nothing changes.
    let res = app
        .client
        .get(&url)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"method="post""#), "{html}");
    assert!(
        !html.contains("Alice") && !html.contains("alice@"),
        "no personal data: {html}"
    );
    assert!(prefs().await, "a GET changes nothing");

    // What a mail client does (RFC 8058): POST the one-click body, no Authorization.
    let res = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(!prefs().await);
    // Again, with an empty body: still 200, nothing more published.
    let res = app.client.post(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (body["email"].as_bool(), body["inapp"].as_bool()),
        (Some(false), Some(true))
    );
    let changed = app
        .events("slotcast.scheduling.patient.preferences_changed", 2)
        .await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["data"]["via"], "one_click");
    assert_eq!(changed[0]["data"]["email"], false);
    assert_eq!(changed[0]["data"]["patient_id"], alice.to_string());

    // Tampered, or another kind of token: 401, on every route.
    let mut tampered = link.clone();
    tampered.insert(tampered.len() - 4, 'x');
    let session = token(alice, Role::Patient);
    for bad in [tampered, session] {
        assert_problem(
            app.post(&format!("/v1/unsubscribe/{bad}"), None, json!({}))
                .await,
            401,
        )
        .await;
        assert_problem(app.get(&format!("/v1/unsubscribe/{bad}"), None).await, 401).await;
        assert_problem(app.get(&format!("/v1/preferences/{bad}"), None).await, 401).await;
    }
}

#[tokio::test]
async fn the_preferences_link_shows_a_form_that_saves() {
    let app = spawn_app().await;
    let alice = app.create_patient("Alice").await;
    let link = OfferSigner::new(SECRET).sign_preferences(alice).unwrap();
    let path = format!("/v1/preferences/{link}");
    let json: Value = app.get(&path, None).await.json().await.unwrap();
    assert_eq!(
        (json["email"].as_bool(), json["inapp"].as_bool()),
        (Some(true), Some(true))
    );

    let res = app.page(&path).await;
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"name="email" value="false""#), "{html}");
    assert!(!html.contains("Alice"));

    let res = app
        .client
        .post(format!("{}{path}", app.base))
        .header("accept", "text/html")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=true&inapp=false")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Saved"));
    let res = app.post(&path, None, json!({"email": false})).await;
    assert_eq!(res.status(), 200);
    let prefs: Value = res.json().await.unwrap();
    assert_eq!(
        (prefs["email"].as_bool(), prefs["inapp"].as_bool()),
        (Some(false), Some(false))
    );
    let changed = app
        .events("slotcast.scheduling.patient.preferences_changed", 2)
        .await;
    assert!(changed.iter().all(|e| e["data"]["via"] == "link"));
    assert_eq!(changed.len(), 2);
}
