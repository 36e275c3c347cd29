//! Holds for the `waves` policy: only the hold's patients book while it lasts, by link or by the
//! API; after it, or once it is deleted, anyone books.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use slotcast_kit::auth::Role;
use slotcast_links::OfferSigner;
use uuid::Uuid;

use crate::helpers::{SECRET, TestApp, assert_problem, spawn_app, token};

/// A link for `patient`'s waiting-list `entry` offering `slots`.
fn link(patient: Uuid, entry: Uuid, slots: &[Uuid]) -> String {
    OfferSigner::new(SECRET)
        .sign(
            Uuid::now_v7(),
            patient,
            entry,
            slots,
            Utc::now() + Duration::days(3),
        )
        .unwrap()
}

impl TestApp {
    async fn hold(&self, hold: Uuid, body: Value) -> reqwest::Response {
        self.put(&format!("/v1/holds/{hold}"), Some(&self.staff), body)
            .await
    }

    async fn offer_statuses(&self, token: &str) -> Vec<String> {
        let offer: Value = self
            .get(&format!("/v1/offers/{token}"), None)
            .await
            .json()
            .await
            .unwrap();
        offer["slots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["status"].as_str().unwrap().to_owned())
            .collect()
    }
}

#[tokio::test]
async fn a_hold_lets_only_its_patients_book_and_deleting_it_opens_the_slots() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let (alice, bob, carol) = (
        app.create_patient("Alice").await,
        app.create_patient("Bob").await,
        app.create_patient("Carol").await,
    );
    let alices_entry = app.joins(alice, practitioner).await;
    let bobs_entry = app.joins(bob, practitioner).await;
    let slots = app
        .create_slots(practitioner, &[(10, 11), (20, 21), (30, 31)])
        .await;
    assert_eq!(app.book(carol, slots[2]).await.status(), 201);
    let hold = Uuid::now_v7();
    let until = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let body = json!({"slot_ids": slots, "patient_ids": [alice], "until": until});

    // Placing the same hold twice gives the same state.
    let mut answers = Vec::new();
    for _ in 0..2 {
        let res = app.hold(hold, body.clone()).await;
        assert_eq!(res.status(), 200);
        answers.push(res.json::<Value>().await.unwrap());
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0]["id"], hold.to_string());
    assert_eq!(answers[0]["held"], json!([slots[0], slots[1]]));
    assert_eq!(
        answers[0]["not_held"],
        json!([{"slot_id": slots[2], "status": "booked"}])
    );
    let shown = app.slot(slots[0]).await;
    assert_eq!(shown["status"], "held");
    assert_eq!(shown["hold_id"], hold.to_string());

    // Outsiders are refused, by link (recorded as lost: held) and through the API, staff too.
    let bobs_link = link(bob, bobs_entry, &slots[..2]);
    assert_eq!(app.offer_statuses(&bobs_link).await, ["held", "held"]);
    let refused = assert_problem(
        app.post(
            &format!("/v1/offers/{bobs_link}/claim"),
            None,
            json!({"slot_id": slots[0]}),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(refused["detail"], "held for other patients");
    assert!(refused["held_until"].is_string());
    let lost = app.events("slotcast.scheduling.offer.lost", 1).await;
    assert_eq!(lost[0]["data"]["reason"], "held");
    assert_eq!(lost[0]["data"]["patient_id"], bob.to_string());
    assert_problem(app.book(bob, slots[0]).await, 409).await;
    let as_bob = token(bob, Role::Patient);
    assert_problem(
        app.post(
            "/v1/appointments",
            Some(&as_bob),
            json!({"patient_id": bob, "slot_id": slots[1]}),
        )
        .await,
        409,
    )
    .await;

    // The holder sees the slots open and books by link.
    let alices_link = link(alice, alices_entry, &slots[..2]);
    assert_eq!(
        app.offer_statuses(&alices_link).await,
        ["available", "available"]
    );
    let res = app
        .post(
            &format!("/v1/offers/{alices_link}/claim"),
            None,
            json!({"slot_id": slots[0]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let booked = app.slot(slots[0]).await;
    assert_eq!(booked["status"], "booked");
    assert!(booked.get("hold_id").is_none());

    // Deleting the hold opens what it still holds, once and again.
    for _ in 0..2 {
        let res = app
            .delete(&format!("/v1/holds/{hold}"), Some(&app.staff))
            .await;
        assert_eq!(res.status(), 204);
    }
    assert_eq!(app.slot(slots[1]).await["status"], "available");
    assert_eq!(app.slot(slots[0]).await["status"], "booked");
    assert_eq!(app.book(bob, slots[1]).await.status(), 201);
}

#[tokio::test]
async fn once_held_until_passes_anyone_books_and_a_held_slot_can_be_withdrawn() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let (alice, bob) = (
        app.create_patient("Alice").await,
        app.create_patient("Bob").await,
    );
    let bobs_entry = app.joins(bob, practitioner).await;
    let slots = app.create_slots(practitioner, &[(10, 11), (20, 21)]).await;
    let until = (Utc::now() + Duration::seconds(2)).to_rfc3339();
    let res = app
        .hold(
            Uuid::now_v7(),
            json!({"slot_ids": slots, "patient_ids": [alice], "until": until}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_problem(app.book(bob, slots[0]).await, 409).await;
    assert_eq!(
        app.delete(&format!("/v1/slots/{}", slots[1]), Some(&app.staff))
            .await
            .status(),
        204,
        "a held slot can be withdrawn"
    );
    assert_eq!(app.slot(slots[1]).await["status"], "withdrawn");

    app.wait_for_slot_status(slots[0], "available").await;
    let res = app
        .post(
            &format!("/v1/offers/{}/claim", link(bob, bobs_entry, &slots[..1])),
            None,
            json!({"slot_id": slots[0]}),
        )
        .await;
    assert_eq!(res.status(), 201, "a lapsed hold is no hold");
}

#[tokio::test]
async fn a_hold_is_placed_by_staff_only_on_known_slots_until_a_future_time() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let alice = app.create_patient("Alice").await;
    let slot = app.create_slots(practitioner, &[(10, 11)]).await[0];
    let later = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let path = format!("/v1/holds/{}", Uuid::now_v7());
    let as_alice = token(alice, Role::Patient);
    let ok = json!({"slot_ids": [slot], "patient_ids": [alice], "until": later});
    assert_problem(app.put(&path, Some(&as_alice), ok.clone()).await, 403).await;
    assert_problem(app.put(&path, None, ok).await, 401).await;
    let unknown = Uuid::now_v7();
    let body = assert_problem(
        app.put(
            &path,
            Some(&app.staff),
            json!({"slot_ids": [slot, unknown], "patient_ids": [], "until": later}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(body["unknown_slot_ids"], json!([unknown]));
    let past = (Utc::now() - Duration::minutes(1)).to_rfc3339();
    for bad in [
        json!({"slot_ids": [slot], "patient_ids": [], "until": past}),
        json!({"slot_ids": [], "patient_ids": [], "until": later}),
        json!({"slot_ids": [slot], "patient_ids": [], "until": "soon"}),
    ] {
        assert_problem(app.put(&path, Some(&app.staff), bad).await, 422).await;
    }
    assert_eq!(app.slot(slot).await["status"], "available");

    // The largest hold fits: 10,000 patients (over the API's general body limit).
    let many: Vec<Uuid> = (0..10_000).map(|_| Uuid::now_v7()).collect();
    let res = app
        .put(
            &path,
            Some(&app.staff),
            json!({"slot_ids": [slot], "patient_ids": many, "until": later}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_problem(app.book(alice, slot).await, 409).await;

    // Past the hold routes' own limit (1 MiB): 413 as problem+json, the hold unchanged.
    let too_many: Vec<Uuid> = (0..30_000).map(|_| Uuid::now_v7()).collect();
    let res = app
        .put(
            &path,
            Some(&app.staff),
            json!({"slot_ids": [slot], "patient_ids": too_many, "until": later}),
        )
        .await;
    assert_problem(res, 413).await;
    assert_problem(app.book(alice, slot).await, 409).await;
}

#[tokio::test]
async fn placing_a_hold_again_with_fewer_slots_lets_the_others_go() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let (alice, bob) = (
        app.create_patient("Alice").await,
        app.create_patient("Bob").await,
    );
    let slots = app.create_slots(practitioner, &[(10, 11), (20, 21)]).await;
    let hold = Uuid::now_v7();
    let until = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let res = app
        .hold(
            hold,
            json!({"slot_ids": slots, "patient_ids": [alice], "until": until}),
        )
        .await;
    assert_eq!(res.status(), 200);

    let res = app
        .hold(
            hold,
            json!({"slot_ids": [slots[0]], "patient_ids": [alice], "until": until}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["held"], json!([slots[0]]));
    assert_eq!(app.slot(slots[0]).await["status"], "held");
    let freed = app.slot(slots[1]).await;
    assert_eq!(freed["status"], "available");
    assert!(freed["hold_id"].is_null(), "{freed}");
    // Anyone books the slot let go; the one still held stays the hold's.
    assert_eq!(app.book(bob, slots[1]).await.status(), 201);
    assert_eq!(app.book(bob, slots[0]).await.status(), 409);
}
