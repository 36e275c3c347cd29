use serde_json::{Value, json};
use slotcast_kit::auth::Role;

use crate::helpers::{assert_problem, spawn_app, token};

#[tokio::test]
async fn joining_the_list_twice_gets_409_and_leaving_closes_the_entry() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let alice = app.create_patient("Alice").await;
    let as_alice = token(alice, Role::Patient);
    let body = json!({"patient_id": alice, "practitioner_id": practitioner, "kind": "new"});
    let res = app
        .post("/v1/waitlist", Some(&as_alice), body.clone())
        .await;
    assert_eq!(res.status(), 201);
    let entry: Value = res.json().await.unwrap();
    assert_problem(app.post("/v1/waitlist", Some(&as_alice), body).await, 409).await;

    let id = entry["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/v1/waitlist/{id}"), Some(&as_alice))
            .await
            .status(),
        204
    );
    let list: Value = app
        .get("/v1/waitlist", Some(&as_alice))
        .await
        .json()
        .await
        .unwrap();
    assert!(list["entries"].as_array().unwrap().is_empty());
    let closed = app.events("slotcast.scheduling.waitlist.closed", 1).await;
    assert_eq!(closed[0]["data"]["reason"], "left");
}

#[tokio::test]
async fn a_move_up_entry_must_hold_a_booked_appointment_of_that_patient_with_that_practitioner() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let (alice, bob) = (
        app.create_patient("Alice").await,
        app.create_patient("Bob").await,
    );
    let slot = app.create_slots(practitioner, &[(48, 49)]).await[0];
    let appointment: Value = app.book(bob, slot).await.json().await.unwrap();
    let appointment_id = appointment["id"].as_str().unwrap();

    let no_appointment =
        json!({"patient_id": alice, "practitioner_id": practitioner, "kind": "move_up"});
    assert_problem(
        app.post("/v1/waitlist", Some(&app.staff), no_appointment)
            .await,
        422,
    )
    .await;
    let not_hers = json!({"patient_id": alice, "practitioner_id": practitioner, "kind": "move_up", "appointment_id": appointment_id});
    assert_problem(
        app.post("/v1/waitlist", Some(&app.staff), not_hers).await,
        422,
    )
    .await;
    let unknown_kind =
        json!({"patient_id": bob, "practitioner_id": practitioner, "kind": "someday"});
    assert_problem(
        app.post("/v1/waitlist", Some(&app.staff), unknown_kind)
            .await,
        422,
    )
    .await;

    let his = json!({"patient_id": bob, "practitioner_id": practitioner, "kind": "move_up", "appointment_id": appointment_id});
    assert_eq!(
        app.post("/v1/waitlist", Some(&app.staff), his)
            .await
            .status(),
        201
    );
    let joined = app.events("slotcast.scheduling.waitlist.joined", 1).await;
    assert_eq!(joined[0]["data"]["kind"], "move_up");
    assert!(joined[0]["data"]["held_starts_at"].is_string());
}

#[tokio::test]
async fn a_patient_lists_only_their_own_entries_and_staff_see_the_practitioners_list_in_order() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let (alice, bob) = (
        app.create_patient("Alice").await,
        app.create_patient("Bob").await,
    );
    for p in [alice, bob] {
        let body = json!({"patient_id": p, "practitioner_id": practitioner, "kind": "new"});
        assert_eq!(
            app.post("/v1/waitlist", Some(&app.staff), body)
                .await
                .status(),
            201
        );
    }
    let as_alice = token(alice, Role::Patient);
    let mine: Value = app
        .get("/v1/waitlist", Some(&as_alice))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["entries"].as_array().unwrap().len(), 1);
    assert_problem(
        app.get(&format!("/v1/waitlist?patient_id={bob}"), Some(&as_alice))
            .await,
        403,
    )
    .await;

    let all: Value = app
        .get(
            &format!("/v1/waitlist?practitioner_id={practitioner}"),
            Some(&app.staff),
        )
        .await
        .json()
        .await
        .unwrap();
    let order: Vec<&str> = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["patient_id"].as_str().unwrap())
        .collect();
    assert_eq!(order, vec![alice.to_string(), bob.to_string()]);
}

#[tokio::test]
async fn booking_with_the_practitioner_fulfils_the_new_entry() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let alice = app.create_patient("Alice").await;
    let body = json!({"patient_id": alice, "practitioner_id": practitioner, "kind": "new"});
    assert_eq!(
        app.post("/v1/waitlist", Some(&app.staff), body)
            .await
            .status(),
        201
    );
    let slot = app.create_slots(practitioner, &[(1, 2)]).await[0];
    assert_eq!(app.book(alice, slot).await.status(), 201);
    let fulfilled: Value = app
        .get("/v1/waitlist?status=fulfilled", Some(&app.staff))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fulfilled["entries"].as_array().unwrap().len(), 1);
    let closed = app.events("slotcast.scheduling.waitlist.closed", 1).await;
    assert_eq!(closed[0]["data"]["reason"], "fulfilled");
}

async fn join(app: &crate::helpers::TestApp, as_who: &str, body: Value) -> reqwest::Response {
    app.post("/v1/waitlist", Some(as_who), body).await
}

#[tokio::test]
async fn the_list_is_in_fair_order_urgent_first_and_only_unexpired_entries_have_positions() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let mut patients = Vec::new();
    for name in ["Alice", "Bob", "Carol", "Dave"] {
        patients.push(app.create_patient(name).await);
    }
    let (alice, bob, carol, dave) = (patients[0], patients[1], patients[2], patients[3]);
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    for (patient, extra) in [
        (alice, json!({})),
        (bob, json!({"expires_at": soon})),
        (carol, json!({})),
        (dave, json!({"priority": "urgent"})),
    ] {
        let mut body =
            json!({"patient_id": patient, "practitioner_id": practitioner, "kind": "new"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        assert_eq!(join(&app, &app.staff, body).await.status(), 201);
    }
    let list = || async {
        let v: Value = app
            .get(
                &format!("/v1/waitlist?practitioner_id={practitioner}"),
                Some(&app.staff),
            )
            .await
            .json()
            .await
            .unwrap();
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["patient_id"].as_str().unwrap().to_owned(),
                    e["position"].as_u64(),
                    e["expired"].as_bool().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let ids = |v: &[(String, Option<u64>, bool)]| v.iter().map(|e| e.0.clone()).collect::<Vec<_>>();
    let order = [dave, alice, bob, carol].map(|p| p.to_string()).to_vec();
    let before = list().await;
    assert_eq!(ids(&before), order, "urgent first, then longest waiting");
    if before.iter().all(|e| !e.2) {
        let positions: Vec<_> = before.iter().map(|e| e.1).collect();
        assert_eq!(positions, [Some(1), Some(2), Some(3), Some(4)]);
    }
    // Bob's entry expires: it stays listed, without a position, and the others close ranks.
    let mut after = list().await;
    for _ in 0..100 {
        if after[2].2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        after = list().await;
    }
    assert_eq!(ids(&after), order);
    let positions: Vec<_> = after.iter().map(|e| (e.1, e.2)).collect();
    assert_eq!(
        positions,
        [
            (Some(1), false),
            (Some(2), false),
            (None, true),
            (Some(3), false)
        ]
    );
}

#[tokio::test]
async fn a_patient_cannot_ask_for_urgent_and_expiry_defaults_and_must_be_in_the_future() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let alice = app.create_patient("Alice").await;
    let as_alice = token(alice, Role::Patient);
    let base = json!({"patient_id": alice, "practitioner_id": practitioner, "kind": "new"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    assert_problem(
        join(&app, &as_alice, with("priority", json!("urgent"))).await,
        403,
    )
    .await;
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    assert_problem(
        join(&app, &as_alice, with("expires_at", json!(past))).await,
        422,
    )
    .await;
    assert_problem(
        join(&app, &as_alice, with("priority", json!("vip"))).await,
        422,
    )
    .await;

    let res = join(&app, &as_alice, with("priority", json!("routine"))).await;
    assert_eq!(res.status(), 201);
    let entry: Value = res.json().await.unwrap();
    assert_eq!(entry["priority"], "routine");
    assert_eq!(entry["expired"], false);
    assert_eq!(entry["position"], 1);
    let expires: chrono::DateTime<chrono::Utc> =
        entry["expires_at"].as_str().unwrap().parse().unwrap();
    let days = (expires - chrono::Utc::now()).num_hours() as f64 / 24.0;
    assert!((89.0..=90.0).contains(&days), "90 days by default: {days}");
    let joined = app.events("slotcast.scheduling.waitlist.joined", 1).await;
    assert_eq!(joined[0]["data"]["priority"], "routine");
    assert_eq!(joined[0]["data"]["expires_at"], entry["expires_at"]);
}

#[tokio::test]
async fn staff_change_the_priority_the_patient_the_expiry_and_each_change_is_published() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let (alice, bob) = (
        app.create_patient("Alice").await,
        app.create_patient("Bob").await,
    );
    let as_alice = token(alice, Role::Patient);
    let res = join(
        &app,
        &as_alice,
        json!({"patient_id": alice, "practitioner_id": practitioner, "kind": "new"}),
    )
    .await;
    let path = format!("/v1/waitlist/{}", crate::helpers::id_of(res).await);

    assert_problem(
        app.patch(&path, Some(&as_alice), json!({"priority": "urgent"}))
            .await,
        403,
    )
    .await;
    let as_bob = token(bob, Role::Patient);
    let later = (chrono::Utc::now() + chrono::Duration::days(10)).to_rfc3339();
    assert_problem(
        app.patch(&path, Some(&as_bob), json!({"expires_at": later}))
            .await,
        404,
    )
    .await;
    let past = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    assert_problem(
        app.patch(&path, Some(&as_alice), json!({"expires_at": past}))
            .await,
        422,
    )
    .await;

    let res = app
        .patch(&path, Some(&as_alice), json!({"expires_at": later}))
        .await;
    assert_eq!(res.status(), 200);
    let by_alice: Value = res.json().await.unwrap();
    for _ in 0..2 {
        let res = app
            .patch(&path, Some(&app.staff), json!({"priority": "urgent"}))
            .await;
        assert_eq!(res.status(), 200);
        let by_staff: Value = res.json().await.unwrap();
        assert_eq!(by_staff["priority"], "urgent");
        assert_eq!(by_staff["expires_at"], by_alice["expires_at"]);
    }
    let updated = app.events("slotcast.scheduling.waitlist.updated", 3).await;
    assert_eq!(updated.len(), 2, "only changes are published");
    assert_eq!(updated[0]["data"]["priority"], "routine");
    assert_eq!(updated[0]["data"]["expires_at"], by_alice["expires_at"]);
    assert_eq!(updated[1]["data"]["priority"], "urgent");
    assert_eq!(updated[1]["data"]["expires_at"], by_alice["expires_at"]);
}
