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
