use chrono::{DateTime, Utc};
use inapp_notifier::store::stored_event_id;
use reqwest::StatusCode;
use serde_json::Value;
use slotcast_events::{InappStored, WaitKind, streams, subjects};
use uuid::Uuid;

use crate::helpers::{at, eventually, notify_event, patient_token, spawn_app, staff_token};

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .expect("a time string")
        .parse()
        .expect("an RFC 3339 time")
}

#[tokio::test]
async fn a_notification_published_on_nats_appears_in_that_patients_feed_with_both_slots_available()
{
    let app = spawn_app().await;
    let patient = Uuid::now_v7();
    let event = notify_event(patient, 2, WaitKind::New);

    app.publish_notify(&event).await;

    let feed = app.wait_for_feed(patient, 1).await;
    let n = &feed[0];
    assert_eq!(n["id"], event.data.notification_id.to_string());
    assert_eq!(n["title"], "New appointment times with Dr Ada Byron");
    assert_eq!(n["body"], "2 times are available. Book one in a click.");
    assert_eq!(n["reason"], "new");
    assert_eq!(
        n["practitioner"]["id"],
        event.data.practitioner.id.to_string()
    );
    assert_eq!(n["practitioner"]["name"], "Ada Byron");
    assert_eq!(n["practitioner"]["specialty"], "general practice");
    assert_eq!(n["practitioner"]["timezone"], "Europe/Paris");
    assert_eq!(n["practitioner"]["fee"]["amount_cents"], 2500);
    assert_eq!(n["practitioner"]["fee"]["currency"], "EUR");
    assert_eq!(n["all_taken"], false);
    assert_eq!(n["read_at"], Value::Null);
    assert_eq!(time(&n["created_at"]), event.time);
    let slots = n["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 2);
    for (shown, offered) in slots.iter().zip(&event.data.slots) {
        assert_eq!(shown["slot_id"], offered.slot_id.to_string());
        assert_eq!(time(&shown["starts_at"]), offered.starts_at);
        assert_eq!(time(&shown["ends_at"]), offered.ends_at);
        assert_eq!(shown["booking_url"], offered.booking_url);
        assert_eq!(shown["available"], true);
    }
    // No patient data in the feed beyond what the patient is shown.
    assert!(!n.to_string().contains("grace@example.test"));

    // Nobody else sees it, not even when staff asks for another patient's feed.
    let other = Uuid::now_v7();
    assert!(app.feed(other, "").await.is_empty());
    let response = app
        .get_feed(&other.to_string(), "", Some(&staff_token()))
        .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["notifications"], serde_json::json!([]));
}

#[tokio::test]
async fn the_same_event_delivered_twice_yields_one_notification_and_one_stored_event() {
    let app = spawn_app().await;
    let patient = Uuid::now_v7();
    let event = notify_event(patient, 2, WaitKind::MoveUp);
    let payload = serde_json::to_vec(&event).unwrap();

    // Two publishes with different message ids get past the stream's duplicate window.
    app.publish_with_msg_id(
        subjects::NOTIFY_PATIENT,
        &format!("{}-a", event.id),
        payload.clone(),
    )
    .await;
    app.publish_with_msg_id(
        subjects::NOTIFY_PATIENT,
        &format!("{}-b", event.id),
        payload,
    )
    .await;
    app.wait_until_notifications_consumed().await;

    let feed = app.feed(patient, "").await;
    assert_eq!(feed.len(), 1);
    assert_eq!(
        feed[0]["title"],
        "Earlier appointment times with Dr Ada Byron"
    );
    assert_eq!(feed[0]["slots"].as_array().unwrap().len(), 2);
    assert_eq!(app.outbox_rows().await, 1);

    // The delivery event is published once, with the derived id.
    let delivery = app.js.get_stream(streams::DELIVERY).await.unwrap();
    let message = eventually("the InappStored event", || async {
        delivery
            .get_last_raw_message_by_subject(subjects::INAPP_STORED)
            .await
            .ok()
    })
    .await;
    let stored: slotcast_events::CloudEvent<InappStored> =
        slotcast_events::decode(&message.payload).expect("an InappStored CloudEvent");
    assert_eq!(stored.id, stored_event_id(event.data.notification_id));
    assert_eq!(stored.data.notification_id, event.data.notification_id);
    assert_eq!(stored.data.patient_id, patient);
    let mut delivery = delivery;
    assert_eq!(delivery.info().await.unwrap().state.messages, 1);
}

#[tokio::test]
async fn the_feed_is_newest_first_and_the_unread_filter_follows_mark_read() {
    let app = spawn_app().await;
    let patient = Uuid::now_v7();
    let now = Utc::now();
    let older = at(
        notify_event(patient, 1, WaitKind::New),
        now - chrono::Duration::minutes(10),
    );
    let newer = at(
        notify_event(patient, 2, WaitKind::New),
        now - chrono::Duration::minutes(1),
    );
    app.publish_notify(&newer).await;
    app.publish_notify(&older).await;

    let feed = app.wait_for_feed(patient, 2).await;
    let ids: Vec<&Value> = feed.iter().map(|n| &n["id"]).collect();
    assert_eq!(
        ids,
        [
            &Value::from(newer.data.notification_id.to_string()),
            &Value::from(older.data.notification_id.to_string())
        ]
    );
    assert_eq!(feed[1]["body"], "1 time is available. Book it in a click.");

    let token = patient_token(patient);
    let response = app
        .mark_read(
            &patient.to_string(),
            &older.data.notification_id.to_string(),
            &token,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let marked: Value = response.json().await.unwrap();
    assert_eq!(marked["id"], older.data.notification_id.to_string());
    let read_at = time(&marked["read_at"]);

    let unread = app.feed(patient, "?unread=true").await;
    assert_eq!(unread.len(), 1);
    assert_eq!(unread[0]["id"], newer.data.notification_id.to_string());
    let read = app.feed(patient, "?unread=false").await;
    assert_eq!(read.len(), 1);
    assert_eq!(read[0]["id"], older.data.notification_id.to_string());
    assert_eq!(app.feed(patient, "").await.len(), 2);

    // Marking it read again changes nothing.
    let again: Value = app
        .mark_read(
            &patient.to_string(),
            &older.data.notification_id.to_string(),
            &token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(time(&again["read_at"]), read_at);
}

#[tokio::test]
async fn the_limit_caps_the_feed_and_a_limit_above_200_is_refused() {
    let app = spawn_app().await;
    let patient = Uuid::now_v7();
    for _ in 0..3 {
        app.publish_notify(&notify_event(patient, 1, WaitKind::New))
            .await;
    }
    app.wait_for_feed(patient, 3).await;

    assert_eq!(app.feed(patient, "?limit=2").await.len(), 2);
    assert_eq!(app.feed(patient, "?limit=200").await.len(), 3);
    let token = patient_token(patient);
    let response = app
        .get_feed(&patient.to_string(), "?limit=201", Some(&token))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(crate::helpers::is_problem(&response));
    let response = app
        .get_feed(&patient.to_string(), "?limit=many", Some(&token))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(crate::helpers::is_problem(&response));
}

#[tokio::test]
async fn a_patient_who_turned_in_app_notifications_off_gets_none_in_the_feed() {
    let app = spawn_app().await;
    let patient = Uuid::now_v7();
    let mut off = notify_event(patient, 1, WaitKind::New);
    off.data.channels = slotcast_events::Channels {
        email: true,
        inapp: false,
        sms: false,
    };
    let on = notify_event(patient, 2, WaitKind::New);
    app.publish_notify(&off).await;
    app.publish_notify(&on).await;
    app.wait_until_notifications_consumed().await;
    let feed = app.feed(patient, "").await;
    assert_eq!(feed.len(), 1, "{feed:#?}");
    assert_eq!(feed[0]["id"], on.data.notification_id.to_string());
}
