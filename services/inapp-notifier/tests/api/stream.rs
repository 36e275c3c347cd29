use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use slotcast_events::WaitKind;
use uuid::Uuid;

use crate::helpers::{
    EventStream, SseEvent, is_problem, notify_event, open_stream, patient_token, spawn_app,
    staff_token,
};

/// Long enough for a wrongly sent event to arrive (wake-ups take milliseconds).
const QUIET: Duration = Duration::from_millis(1500);

fn ids(events: &[SseEvent]) -> Vec<&str> {
    events.iter().map(|e| e.id.as_str()).collect()
}

#[tokio::test]
async fn the_stream_sends_a_new_notification_a_booking_of_its_slot_and_its_reading() {
    let app = spawn_app().await;
    let patient = Uuid::now_v7();
    let mut stream = app.stream(patient, None).await;

    let event = notify_event(patient, 2, WaitKind::New);
    let nid = event.data.notification_id.to_string();
    app.publish_notify(&event).await;
    let stored = stream.next().await;
    assert_eq!(
        (stored.id.as_str(), stored.event.as_str()),
        ("1", "notification")
    );
    assert_eq!(stored.data["id"], nid);
    assert_eq!(stored.data["slots"][0]["status"], "available");
    // The same shape as the feed's items.
    let feed = app.feed(patient, "").await;
    assert_eq!(stored.data, feed[0]);

    app.publish_booked(event.data.slots[0].slot_id).await;
    let booked = stream.next().await;
    assert_eq!(
        (booked.id.as_str(), booked.event.as_str()),
        ("2", "notification.updated")
    );
    assert_eq!(booked.data["id"], nid);
    assert_eq!(booked.data["slots"][0]["status"], "taken");
    assert_eq!(booked.data["slots"][0]["available"], false);
    assert_eq!(booked.data["all_taken"], false);

    let token = patient_token(patient);
    let response = app.mark_read(&patient.to_string(), &nid, &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let read = stream.next().await;
    assert_eq!(
        (read.id.as_str(), read.event.as_str()),
        ("3", "notification.updated")
    );
    assert!(read.data["read_at"].is_string());

    // Read again: no event. The next one is the withdrawal, numbered right after.
    let response = app.mark_read(&patient.to_string(), &nid, &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    app.publish_withdrawn(event.data.slots[1].slot_id).await;
    let withdrawn = stream.next().await;
    assert_eq!(
        (withdrawn.id.as_str(), withdrawn.event.as_str()),
        ("4", "notification.updated")
    );
    assert_eq!(withdrawn.data["slots"][1]["status"], "withdrawn");
    assert_eq!(withdrawn.data["all_taken"], true);
}

#[tokio::test]
async fn reconnecting_with_last_event_id_sends_exactly_the_events_after_it_then_live_ones() {
    let app = spawn_app().await;
    let patient = Uuid::now_v7();
    let mut first = app.stream(patient, None).await;
    let (a, b) = (
        notify_event(patient, 1, WaitKind::New),
        notify_event(patient, 1, WaitKind::MoveUp),
    );
    app.publish_notify(&a).await;
    let mut seen = vec![first.next().await];
    app.publish_notify(&b).await;
    seen.push(first.next().await);
    app.publish_booked(a.data.slots[0].slot_id).await;
    seen.push(first.next().await);
    app.mark_read(
        &patient.to_string(),
        &b.data.notification_id.to_string(),
        &patient_token(patient),
    )
    .await;
    seen.push(first.next().await);
    assert_eq!(ids(&seen), ["1", "2", "3", "4"]);
    drop(first);

    let mut again = app.stream(patient, Some("1")).await;
    let mut replayed = Vec::new();
    for _ in 0..3 {
        replayed.push(again.next().await);
    }
    assert_eq!(ids(&replayed), ["2", "3", "4"]);
    let kinds: Vec<&str> = replayed.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "notification",
            "notification.updated",
            "notification.updated"
        ]
    );
    assert_eq!(replayed[0].data["id"], b.data.notification_id.to_string());
    // Rendered when sent: the booking shows, and so does the reading.
    assert_eq!(replayed[1].data["all_taken"], true);
    assert!(replayed[0].data["read_at"].is_string());
    assert!(again.next_within(QUIET).await.is_none(), "nothing repeated");

    // Then live.
    let c = notify_event(patient, 1, WaitKind::New);
    app.publish_notify(&c).await;
    let live = again.next().await;
    assert_eq!(
        (live.id.as_str(), live.event.as_str()),
        ("5", "notification")
    );
    assert_eq!(live.data["id"], c.data.notification_id.to_string());

    // Caught up: nothing to replay after the last id, nothing lost when the id is 0.
    let mut current = app.stream(patient, Some("5")).await;
    assert!(current.next_within(QUIET).await.is_none());
    let mut everything = app.stream(patient, Some("0")).await;
    let mut all = Vec::new();
    for _ in 0..5 {
        all.push(everything.next().await);
    }
    assert_eq!(ids(&all), ["1", "2", "3", "4", "5"]);
    // An id this feed never gave (a restored database): the whole log, not silence.
    let mut lost = app.stream(patient, Some("99")).await;
    let mut all = Vec::new();
    for _ in 0..5 {
        all.push(lost.next().await);
    }
    assert_eq!(ids(&all), ["1", "2", "3", "4", "5"]);
}

#[tokio::test]
async fn a_stream_opened_without_last_event_id_starts_after_what_the_feed_shows() {
    let app = spawn_app().await;
    let patient = Uuid::now_v7();
    let old = notify_event(patient, 1, WaitKind::New);
    app.publish_notify(&old).await;
    app.wait_for_feed(patient, 1).await;

    // The feed tells the id of the last change it includes.
    let response = app
        .get_feed(&patient.to_string(), "", Some(&patient_token(patient)))
        .await;
    assert_eq!(response.headers()["feed-last-event-id"], "1");

    let mut stream = app.stream(patient, None).await;
    let new = notify_event(patient, 1, WaitKind::New);
    app.publish_notify(&new).await;
    let event = stream.next().await;
    assert_eq!(event.id, "2");
    assert_eq!(event.data["id"], new.data.notification_id.to_string());
}

#[tokio::test]
async fn another_patients_stream_never_gets_these_events_and_their_token_cannot_open_this_one() {
    let app = spawn_app().await;
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let mut alices = app.stream(alice, None).await;
    let mut bobs = app.stream(bob, Some("0")).await;

    let for_alice = notify_event(alice, 1, WaitKind::New);
    app.publish_notify(&for_alice).await;
    assert_eq!(
        alices.next().await.data["id"],
        for_alice.data.notification_id.to_string()
    );
    app.publish_booked(for_alice.data.slots[0].slot_id).await;
    assert_eq!(alices.next().await.event, "notification.updated");
    assert!(bobs.next_within(QUIET).await.is_none());

    // Bob's first event is his own, numbered in his own log.
    let for_bob = notify_event(bob, 1, WaitKind::New);
    app.publish_notify(&for_bob).await;
    let first = bobs.next().await;
    assert_eq!(first.id, "1");
    assert_eq!(first.data["id"], for_bob.data.notification_id.to_string());
    assert!(!first.data.to_string().contains(&alice.to_string()));

    // Auth is the feed's: 401 without a token, 403 with another patient's, staff may.
    let alice_id = alice.to_string();
    let response = app.open_stream(&alice_id, None, None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(is_problem(&response));
    let response = app
        .open_stream(&alice_id, Some(&patient_token(bob)), None)
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(is_problem(&response));
    let mut staff = EventStream::new(
        app.open_stream(&alice_id, Some(&staff_token()), Some("0"))
            .await,
    );
    assert_eq!(
        staff.next().await.data["id"],
        for_alice.data.notification_id.to_string()
    );
}

#[tokio::test]
async fn a_malformed_last_event_id_or_patient_id_is_a_400_problem() {
    let app = spawn_app().await;
    let patient = Uuid::now_v7();
    let token = patient_token(patient);
    for bad in ["abc", "-1", "1.5", "", "99999999999999999999"] {
        let response = app
            .open_stream(&patient.to_string(), Some(&token), Some(bad))
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(is_problem(&response));
    }
    let response = app
        .open_stream("not-a-uuid", Some(&staff_token()), None)
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(is_problem(&response));
}

#[tokio::test]
async fn a_change_made_through_one_replica_reaches_a_stream_open_on_another_at_once() {
    let app = spawn_app().await;
    let replica = app.replica().await;
    let patient = Uuid::now_v7();
    let event = notify_event(patient, 1, WaitKind::New);
    let nid = event.data.notification_id.to_string();
    app.publish_notify(&event).await;
    app.wait_for_feed(patient, 1).await;

    let mut stream = EventStream::new(
        open_stream(
            &app.http,
            &replica.address,
            &patient.to_string(),
            Some(&patient_token(patient)),
            None,
        )
        .await,
    );
    // Marked read through the first replica: only its NATS wake-up can reach the other before
    // the other's poll (5 s) would.
    let started = tokio::time::Instant::now();
    let response = app
        .mark_read(&patient.to_string(), &nid, &patient_token(patient))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let read = stream.next().await;
    assert_eq!(read.event, "notification.updated");
    assert!(read.data["read_at"].is_string());
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(2500),
        "the other replica took {waited:?}"
    );
}

#[tokio::test]
async fn an_open_stream_ends_when_the_service_stops_and_does_not_hold_it_up() {
    let mut app = spawn_app().await;
    let patient = Uuid::now_v7();
    let mut stream = app.stream(patient, None).await;
    let event = notify_event(patient, 1, WaitKind::New);
    app.publish_notify(&event).await;
    stream.next().await;

    app.stop(Duration::from_secs(10))
        .await
        .expect("a clean, prompt stop");
    assert!(stream.ends_within(Duration::from_secs(5)).await);
}

#[tokio::test]
async fn changes_handled_concurrently_reach_the_stream_numbered_without_gaps_or_repeats() {
    let app = spawn_app().await;
    let patient = Uuid::now_v7();
    let mut stream = app.stream(patient, None).await;
    let events: Vec<_> = (0..20)
        .map(|_| notify_event(patient, 1, WaitKind::New))
        .collect();
    // Each consumer handles up to four messages at once.
    futures::future::join_all(events.iter().map(|e| app.publish_notify(e))).await;
    app.wait_for_feed(patient, 20).await;
    futures::future::join_all(
        events
            .iter()
            .map(|e| app.publish_booked(e.data.slots[0].slot_id)),
    )
    .await;

    let mut received = Vec::new();
    for _ in 0..40 {
        received.push(stream.next().await);
    }
    let expected: Vec<String> = (1..=40).map(|i| i.to_string()).collect();
    assert_eq!(ids(&received), expected);
    let stored: std::collections::HashSet<&Value> = received[..20]
        .iter()
        .filter(|e| e.event == "notification")
        .map(|e| &e.data["id"])
        .collect();
    assert_eq!(stored.len(), 20);
    assert!(
        received[20..]
            .iter()
            .all(|e| e.event == "notification.updated" && e.data["all_taken"] == true)
    );
    assert!(stream.next_within(QUIET).await.is_none());
}
