//! Offering policies: per practitioner or by default, carried by slot events; the `waves`
//! pre-hold; a bad `OFFER_POLICY` stops the start.

use chrono::Duration;
use scheduling::Policy;
use serde_json::{Value, json};
use slotcast_events::OfferPolicy;
use slotcast_kit::auth::Role;
use slotcast_test_support::TestDatabase;
use uuid::Uuid;

use crate::helpers::{TestApp, assert_problem, id_of, spawn_app, spawn_app_with, token};

impl TestApp {
    async fn practitioner_with(&self, offer_policy: Value) -> Value {
        let body = json!({"name": "Dr Grace Hopper", "specialty": "Cardiology",
                          "timezone": "Europe/Paris", "offer_policy": offer_policy});
        let res = self
            .post("/v1/practitioners", Some(&self.staff), body)
            .await;
        assert_eq!(res.status(), 201);
        res.json().await.unwrap()
    }
}

fn id(v: &Value) -> Uuid {
    v["id"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_practitioners_policy_is_shown_carried_by_slot_events_and_changed_by_staff() {
    let app = spawn_app().await;
    let waves = app.practitioner_with(json!("waves")).await;
    assert_eq!(waves["offer_policy"], "waves");
    assert_eq!(waves["effective_offer_policy"], "waves");
    let plain = app.practitioner_with(Value::Null).await;
    assert!(plain["offer_policy"].is_null());
    assert_eq!(plain["effective_offer_policy"], "broadcast");
    let registered = app
        .events("slotcast.scheduling.practitioner.registered", 2)
        .await;
    assert_eq!(registered[0]["data"]["offer_policy"], "waves");
    assert!(registered[1]["data"]["offer_policy"].is_null());

    let held = app.create_slots(id(&waves), &[(10, 11)]).await[0];
    let open = app.create_slots(id(&plain), &[(10, 11)]).await[0];
    let created = app.events("slotcast.scheduling.slot.created", 2).await;
    assert_eq!(created[0]["data"]["offer_policy"], "waves");
    assert_eq!(created[1]["data"]["offer_policy"], "broadcast");
    assert_eq!(
        app.slot(held).await["status"],
        "held",
        "a waves opening is pre-held"
    );
    assert_eq!(app.slot(open).await["status"], "available");

    // Staff only, a known policy only.
    let path = format!("/v1/practitioners/{}", id(&plain));
    let as_practitioner = token(id(&plain), Role::Practitioner);
    let to_waves = json!({"offer_policy": "waves"});
    assert_problem(
        app.patch(&path, Some(&as_practitioner), to_waves.clone())
            .await,
        403,
    )
    .await;
    assert_problem(
        app.patch(&path, Some(&app.staff), json!({"offer_policy": "lottery"}))
            .await,
        422,
    )
    .await;

    // Booked under broadcast, released under waves: the release carries the policy of its time.
    let alice = app.create_patient("Alice").await;
    let appointment = id_of(app.book(alice, open).await).await;
    for _ in 0..2 {
        let res = app.patch(&path, Some(&app.staff), to_waves.clone()).await;
        assert_eq!(res.status(), 200);
        let view: Value = res.json().await.unwrap();
        assert_eq!(view["offer_policy"], "waves");
        assert_eq!(view["effective_offer_policy"], "waves");
    }
    let res = app
        .post(
            &format!("/v1/appointments/{appointment}/cancel"),
            Some(&app.staff),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let released = app.events("slotcast.scheduling.slot.released", 1).await;
    assert_eq!(released[0]["data"]["offer_policy"], "waves");
    let slot = app.slot(open).await;
    assert_eq!(slot["status"], "held", "a waves release is pre-held");
    assert!(slot["held_until"].is_string() && slot.get("hold_id").is_none());

    // Back to the default; changing to the same again publishes nothing more.
    for _ in 0..2 {
        let res = app
            .patch(&path, Some(&app.staff), json!({"offer_policy": null}))
            .await;
        let view: Value = res.json().await.unwrap();
        assert!(view["offer_policy"].is_null());
        assert_eq!(view["effective_offer_policy"], "broadcast");
    }
    let changed = app
        .events("slotcast.scheduling.practitioner.policy_changed", 3)
        .await;
    assert_eq!(changed.len(), 2, "one event per change: {changed:?}");
    assert_eq!(changed[0]["data"]["offer_policy"], "waves");
    assert!(changed[1]["data"]["offer_policy"].is_null());
}

#[tokio::test]
async fn a_practitioners_quiet_hours_are_set_by_staff_and_published_with_the_policy() {
    let app = spawn_app().await;
    let dr = app.practitioner_with(json!("waves")).await;
    assert!(dr["quiet_hours"].is_null());
    assert_eq!(dr["quiet_hours_all_channels"], false);
    let path = format!("/v1/practitioners/{}", id(&dr));

    for bad in [
        json!("22:00"),
        json!("25:00-07:00"),
        json!("08:00-08:00"),
        json!(" 22:00-07:00"),
        json!("7:00-9:00"),
        json!(7),
    ] {
        assert_problem(
            app.patch(&path, Some(&app.staff), json!({"quiet_hours": bad}))
                .await,
            422,
        )
        .await;
    }
    let res = app
        .patch(
            &path,
            Some(&app.staff),
            json!({"quiet_hours": "22:00-07:30", "quiet_hours_all_channels": true}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["quiet_hours"], "22:00-07:30");
    assert_eq!(view["quiet_hours_all_channels"], true);
    assert_eq!(
        view["offer_policy"], "waves",
        "what the patch leaves out stays"
    );
    // `off` is a setting of its own; `null` is back to matching's default.
    let off: Value = app
        .patch(&path, Some(&app.staff), json!({"quiet_hours": "OFF"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(off["quiet_hours"], "off");
    assert_eq!(off["quiet_hours_all_channels"], true);
    let shown: Value = app.get(&path, Some(&app.staff)).await.json().await.unwrap();
    assert_eq!(shown["quiet_hours"], "off");
    app.patch(&path, Some(&app.staff), json!({"quiet_hours": null}))
        .await;

    let changed = app
        .events("slotcast.scheduling.practitioner.policy_changed", 4)
        .await;
    assert_eq!(changed.len(), 3, "{changed:#?}");
    let data = |i: usize| &changed[i]["data"];
    assert_eq!(
        (
            data(0)["offer_policy"].as_str(),
            data(0)["quiet_hours"].as_str()
        ),
        (Some("waves"), Some("22:00-07:30"))
    );
    assert_eq!(data(0)["quiet_hours_all_channels"], true);
    assert_eq!(data(1)["quiet_hours"], "off");
    assert!(data(2).get("quiet_hours").is_none());
    assert_eq!(data(2)["quiet_hours_all_channels"], true);
}

#[tokio::test]
async fn the_configured_default_applies_to_practitioners_without_their_own() {
    let policy = Policy {
        offer_policy: OfferPolicy::Waves,
        ..Policy::default()
    };
    let app = spawn_app_with(TestDatabase::postgres().await.unwrap(), policy).await;
    let default = app.practitioner_with(Value::Null).await;
    assert_eq!(default["effective_offer_policy"], "waves");
    let own = app.practitioner_with(json!("broadcast")).await;
    assert_eq!(own["effective_offer_policy"], "broadcast");
    app.create_slots(id(&default), &[(10, 11)]).await;
    app.create_slots(id(&own), &[(10, 11)]).await;
    let created = app.events("slotcast.scheduling.slot.created", 2).await;
    assert_eq!(created[0]["data"]["offer_policy"], "waves");
    assert_eq!(created[1]["data"]["offer_policy"], "broadcast");
}

#[tokio::test]
async fn a_pre_held_slot_is_booked_by_nobody_until_the_pre_hold_lapses() {
    let policy = Policy {
        first_hold: Duration::seconds(2),
        ..Policy::default()
    };
    let app = spawn_app_with(TestDatabase::postgres().await.unwrap(), policy).await;
    let practitioner = app.practitioner_with(json!("waves")).await;
    let slot = app.create_slots(id(&practitioner), &[(10, 11)]).await[0];
    let alice = app.create_patient("Alice").await;
    let body = assert_problem(app.book(alice, slot).await, 409).await;
    assert_eq!(body["detail"], "held for other patients");
    assert!(body["held_until"].is_string());
    let held: Value = app
        .get(
            &format!("/v1/practitioners/{}/slots?status=held", id(&practitioner)),
            Some(&app.staff),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(held["slots"].as_array().unwrap().len(), 1);

    // Matching never came: the pre-hold lapses and the slot is available to anyone.
    app.wait_for_slot_status(slot, "available").await;
    let available: Value = app
        .get(
            &format!(
                "/v1/practitioners/{}/slots?status=available",
                id(&practitioner)
            ),
            Some(&app.staff),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(available["slots"].as_array().unwrap().len(), 1);
    assert_eq!(app.book(alice, slot).await.status(), 201);
}

#[tokio::test]
async fn an_unknown_offer_policy_in_the_environment_stops_the_start() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_scheduling"))
        .env("JWT_SECRET", "test-only-jwt-secret")
        .env("OFFER_POLICY", "lottery")
        .env("NATS_URL", "nats://127.0.0.1:1")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("OFFER_POLICY"), "{stderr}");
}
