use serde_json::Value;

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn a_second_booking_of_the_same_slot_gets_409() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let (alice, bob) = (
        app.create_patient("Alice").await,
        app.create_patient("Bob").await,
    );
    let slot = app.create_slots(practitioner, &[(1, 2)]).await[0];
    assert_eq!(app.book(alice, slot).await.status(), 201);
    assert_problem(app.book(bob, slot).await, 409).await;

    let booked = app.events("slotcast.scheduling.slot.booked", 1).await;
    assert_eq!(booked[0]["data"]["patient_id"], alice.to_string());
}

#[tokio::test]
async fn concurrent_bookings_of_one_slot_have_exactly_one_winner() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let slot = app.create_slots(practitioner, &[(1, 2)]).await[0];
    let mut patients = Vec::new();
    for i in 0..8 {
        patients.push(app.create_patient(&format!("P{i}")).await);
    }
    let attempts = patients.iter().map(|p| app.book(*p, slot));
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        7,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn cancelling_releases_the_slot_and_says_so_once() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let alice = app.create_patient("Alice").await;
    let slot = app.create_slots(practitioner, &[(1, 2)]).await[0];
    let appointment: Value = app.book(alice, slot).await.json().await.unwrap();
    let id = appointment["id"].as_str().unwrap();

    let res = app
        .post(
            &format!("/v1/appointments/{id}/cancel"),
            Some(&app.staff),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_problem(
        app.post(
            &format!("/v1/appointments/{id}/cancel"),
            Some(&app.staff),
            serde_json::json!({}),
        )
        .await,
        409,
    )
    .await;

    let s: Value = app
        .get(&format!("/v1/slots/{slot}"), Some(&app.staff))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["status"], "available");
    let released = app.events("slotcast.scheduling.slot.released", 1).await;
    assert_eq!(released.len(), 1);
    assert_eq!(released[0]["data"]["reason"], "cancelled");
    assert_eq!(released[0]["data"]["released_by"], alice.to_string());
    // The slot can be booked again.
    let bob = app.create_patient("Bob").await;
    assert_eq!(app.book(bob, slot).await.status(), 201);
}
