use slotcast_test_support::TestDatabase;

use crate::helpers::spawn_app_on;

#[tokio::test]
async fn the_api_runs_on_sqlite_with_the_same_migrations() {
    let app = spawn_app_on(TestDatabase::sqlite().expect("sqlite")).await;
    let practitioner = app.create_practitioner().await;
    let alice = app.create_patient("Alice").await;
    let slots = app.create_slots(practitioner, &[(1, 2), (3, 4)]).await;
    assert_eq!(app.book(alice, slots[0]).await.status(), 201);
    assert_eq!(app.book(alice, slots[0]).await.status(), 409);
    assert_eq!(
        app.events("slotcast.scheduling.slot.created", 2)
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn booking_links_work_on_sqlite_one_winner_and_one_use() {
    use chrono::{Duration, Utc};
    use slotcast_links::OfferSigner;
    use uuid::Uuid;

    let app = spawn_app_on(TestDatabase::sqlite().expect("sqlite")).await;
    let practitioner = app.create_practitioner().await;
    let slots = app.create_slots(practitioner, &[(10, 11), (12, 13)]).await;
    let mut links = Vec::new();
    for i in 0..6 {
        let patient = app.create_patient(&format!("P{i}")).await;
        let entry = app.joins(patient, practitioner).await;
        let token = OfferSigner::new(crate::helpers::SECRET)
            .sign(
                Uuid::now_v7(),
                patient,
                entry,
                &slots,
                Utc::now() + Duration::days(1),
            )
            .unwrap();
        links.push(token);
    }
    let paths: Vec<String> = links
        .iter()
        .map(|t| format!("/v1/offers/{t}/claim"))
        .collect();
    let claims = paths
        .iter()
        .map(|p| app.post(p, None, serde_json::json!({ "slot_id": slots[0] })));
    let statuses: Vec<u16> = futures::future::join_all(claims)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    let winner = statuses.iter().position(|s| *s == 201).expect("a winner");
    let mut sorted = statuses.clone();
    sorted.sort();
    assert_eq!(sorted, [201, 409, 409, 409, 409, 409]);
    let other = serde_json::json!({ "slot_id": slots[1] });
    let used = app.post(&paths[winner], None, other.clone()).await;
    assert_eq!(used.status(), 410, "a link books once");
    let loser = (winner + 1) % paths.len();
    let second = app.post(&paths[loser], None, other).await;
    assert_eq!(
        second.status(),
        201,
        "a loser's link still books the other slot"
    );
}

#[tokio::test]
async fn holds_waitlist_priority_and_preferences_work_on_sqlite() {
    use chrono::{Duration, Utc};
    use serde_json::{Value, json};
    use slotcast_links::OfferSigner;
    use uuid::Uuid;

    let app = spawn_app_on(TestDatabase::sqlite().expect("sqlite")).await;
    let practitioner = app.create_practitioner().await;
    let (alice, bob) = (
        app.create_patient("Alice").await,
        app.create_patient("Bob").await,
    );
    let slots = app.create_slots(practitioner, &[(10, 11), (12, 13)]).await;
    let until = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let res = app
        .put(
            &format!("/v1/holds/{}", Uuid::now_v7()),
            Some(&app.staff),
            json!({"slot_ids": slots, "patient_ids": [alice], "until": until}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let held: Value = app
        .get(
            &format!("/v1/practitioners/{practitioner}/slots?status=held"),
            Some(&app.staff),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(held["slots"].as_array().unwrap().len(), 2);
    assert_eq!(app.book(bob, slots[0]).await.status(), 409);
    assert_eq!(app.book(alice, slots[0]).await.status(), 201);

    for (patient, priority) in [(bob, "routine"), (alice, "urgent")] {
        let body = json!({"patient_id": patient, "practitioner_id": practitioner,
                          "kind": "new", "priority": priority});
        assert_eq!(
            app.post("/v1/waitlist", Some(&app.staff), body)
                .await
                .status(),
            201
        );
    }
    let list: Value = app
        .get(
            &format!("/v1/waitlist?practitioner_id={practitioner}"),
            Some(&app.staff),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["entries"][0]["patient_id"], alice.to_string());
    assert_eq!(list["entries"][1]["position"], 2);

    let link = OfferSigner::new(crate::helpers::SECRET)
        .sign_preferences(bob)
        .unwrap();
    let res = app
        .client
        .post(format!("{}/v1/unsubscribe/{link}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let prefs: Value = res.json().await.unwrap();
    assert_eq!(prefs["email"], false);
}
