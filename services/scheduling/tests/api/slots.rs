use serde_json::{Value, json};

use crate::helpers::{assert_problem, hours, slot_body, spawn_app};

#[tokio::test]
async fn a_batch_is_created_at_once_and_publishes_one_slot_created_per_slot_with_one_batch_id() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let ids = app.create_slots(practitioner, &[(1, 2), (3, 4)]).await;
    assert_eq!(ids.len(), 2);

    let events = app.events("slotcast.scheduling.slot.created", 2).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["data"]["batch_id"], events[1]["data"]["batch_id"]);
    assert_eq!(events[0]["data"]["batch_size"], 2);
    assert_eq!(events[0]["type"], "slotcast.scheduling.slot.created.v1");
    let published: Vec<String> = events
        .iter()
        .map(|e| e["data"]["slot_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        published,
        ids.iter().map(|i| i.to_string()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn an_overlapping_slot_gets_409_and_nothing_of_its_batch_is_created() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    app.create_slots(practitioner, &[(10, 12)]).await;
    let res = app
        .post(
            &format!("/v1/practitioners/{practitioner}/slots"),
            Some(&app.staff),
            slot_body(&[(20, 21), (11, 13)]),
        )
        .await;
    assert_problem(res, 409).await;
    let list: Value = app
        .get(
            &format!("/v1/practitioners/{practitioner}/slots"),
            Some(&app.staff),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["slots"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn impossible_slots_get_422() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let path = format!("/v1/practitioners/{practitioner}/slots");
    let past = json!({"slots": [{"starts_at": hours(-5), "ends_at": hours(-4)}]});
    let oversized = slot_body(&(0..201).map(|i| (i * 2, i * 2 + 1)).collect::<Vec<_>>());
    let no_offset =
        json!({"slots": [{"starts_at": "2030-01-01T10:00:00", "ends_at": "2030-01-01T11:00:00"}]});
    for body in [
        slot_body(&[(3, 2)]),
        past,
        json!({"slots": []}),
        oversized,
        slot_body(&[(1, 3), (2, 4)]),
        no_offset,
    ] {
        let res = app.post(&path, Some(&app.staff), body).await;
        assert_problem(res, 422).await;
    }
}

#[tokio::test]
async fn slots_are_listed_by_time_with_filters_and_a_withdrawn_one_shows_as_such() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let ids = app.create_slots(practitioner, &[(5, 6), (1, 2)]).await;
    let res = app
        .delete(&format!("/v1/slots/{}", ids[0]), Some(&app.staff))
        .await;
    assert_eq!(res.status(), 204);
    // Withdrawing again changes nothing.
    assert_eq!(
        app.delete(&format!("/v1/slots/{}", ids[0]), Some(&app.staff))
            .await
            .status(),
        204
    );

    let all: Value = app
        .get(
            &format!("/v1/practitioners/{practitioner}/slots"),
            Some(&app.staff),
        )
        .await
        .json()
        .await
        .unwrap();
    let statuses: Vec<&str> = all["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["available", "withdrawn"]);

    let available: Value = app
        .get(
            &format!("/v1/practitioners/{practitioner}/slots?status=available"),
            Some(&app.staff),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(available["slots"].as_array().unwrap().len(), 1);
    let from = hours(3).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let later: Value = app
        .get(
            &format!("/v1/practitioners/{practitioner}/slots?from={from}"),
            Some(&app.staff),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(later["slots"][0]["id"], ids[0].to_string());
    assert_problem(
        app.get(
            &format!("/v1/practitioners/{practitioner}/slots?status=lost"),
            Some(&app.staff),
        )
        .await,
        400,
    )
    .await;

    let withdrawn = app.events("slotcast.scheduling.slot.withdrawn", 1).await;
    assert_eq!(withdrawn.len(), 1);
}

#[tokio::test]
async fn a_booked_slot_cannot_be_withdrawn() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let patient = app.create_patient("Alice").await;
    let slot = app.create_slots(practitioner, &[(1, 2)]).await[0];
    assert_eq!(app.book(patient, slot).await.status(), 201);
    assert_problem(
        app.delete(&format!("/v1/slots/{slot}"), Some(&app.staff))
            .await,
        409,
    )
    .await;
}
