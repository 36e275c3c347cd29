use inapp_notifier::{
    consumers::ApplySlotEvents,
    entities::{feed_event, slot_state},
    feed_log::FeedSignal,
};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::Value;
use slotcast_bus::consumer::{Delivery, Handler, Outcome};
use slotcast_events::{WaitKind, subjects};
use uuid::Uuid;

use crate::helpers::{TestApp, notify_event, spawn_app};

fn slot_statuses(notification: &Value) -> Vec<(bool, String)> {
    notification["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["available"].as_bool().unwrap(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn shown(statuses: &[(bool, &str)]) -> Vec<(bool, String)> {
    statuses
        .iter()
        .map(|(a, s)| (*a, (*s).to_owned()))
        .collect()
}

/// Rows in `patient_id`'s change log.
async fn logged(app: &TestApp, patient_id: Uuid) -> u64 {
    feed_event::Entity::find()
        .filter(feed_event::Column::PatientId.eq(patient_id))
        .count(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_booked_slot_shows_taken_and_when_both_are_booked_all_taken_is_true() {
    let app = spawn_app().await;
    let patient = Uuid::now_v7();
    let event = notify_event(patient, 2, WaitKind::New);
    let (first, second) = (event.data.slots[0].slot_id, event.data.slots[1].slot_id);
    app.publish_notify(&event).await;
    let feed = app.wait_for_feed(patient, 1).await;
    assert_eq!(
        slot_statuses(&feed[0]),
        shown(&[(true, "available"), (true, "available")])
    );

    app.publish_booked(first).await;
    let feed = app
        .wait_for_feed_where(patient, "the first slot taken", |feed| {
            feed[0]["slots"][0]["available"] == false
        })
        .await;
    assert_eq!(feed[0]["slots"][0]["slot_id"], first.to_string());
    assert_eq!(
        slot_statuses(&feed[0]),
        shown(&[(false, "taken"), (true, "available")])
    );
    assert_eq!(feed[0]["all_taken"], false);

    app.publish_booked(second).await;
    let feed = app
        .wait_for_feed_where(patient, "all slots taken", |feed| {
            feed[0]["all_taken"] == true
        })
        .await;
    assert_eq!(
        slot_statuses(&feed[0]),
        shown(&[(false, "taken"), (false, "taken")])
    );
}

#[tokio::test]
async fn a_slot_booked_before_its_notification_is_stored_shows_taken_in_it() {
    let app = spawn_app().await;
    let patient = Uuid::now_v7();
    let event = notify_event(patient, 2, WaitKind::New);
    let booked = event.data.slots[1].slot_id;

    // The booking is handled first: the notification does not exist yet.
    app.publish_booked(booked).await;
    app.wait_until_slot_events_consumed().await;
    app.publish_notify(&event).await;

    let feed = app.wait_for_feed(patient, 1).await;
    assert_eq!(
        slot_statuses(&feed[0]),
        shown(&[(true, "available"), (false, "taken")])
    );
    assert_eq!(feed[0]["all_taken"], false);
}

#[tokio::test]
async fn the_booking_patient_sees_booked_by_you_the_others_taken_and_a_repeat_logs_nothing() {
    let app = spawn_app().await;
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    // Broadcast: both patients are told about the same slot.
    let for_alice = notify_event(alice, 1, WaitKind::New);
    let mut for_bob = notify_event(bob, 1, WaitKind::MoveUp);
    for_bob.data.slots = for_alice.data.slots.clone();
    for_bob.data.notification_id =
        slotcast_events::NotifyPatient::derive_id(bob, &[for_alice.data.slots[0].slot_id]);
    app.publish_notify(&for_alice).await;
    app.publish_notify(&for_bob).await;
    app.wait_for_feed(alice, 1).await;
    app.wait_for_feed(bob, 1).await;

    let slot = for_alice.data.slots[0].slot_id;
    let (booked, _) = app.publish_booked_by(slot, alice).await;
    app.wait_until_slot_events_consumed().await;
    let feed = app.feed(alice, "").await;
    assert_eq!(slot_statuses(&feed[0]), shown(&[(false, "booked_by_you")]));
    assert_eq!(feed[0]["all_taken"], true);
    let feed = app.feed(bob, "").await;
    assert_eq!(slot_statuses(&feed[0]), shown(&[(false, "taken")]));
    assert_eq!(feed[0]["all_taken"], true);
    // `notification`, then `notification.updated` once, for each.
    assert_eq!((logged(&app, alice).await, logged(&app, bob).await), (2, 2));

    // The same booking again (past the duplicate window: a new message) changes nothing, and
    // a booking of a slot nobody was told about is consumed and changes nothing either.
    app.publish_with_msg_id(
        subjects::SLOT_BOOKED,
        "booked-again",
        serde_json::to_vec(&booked).unwrap(),
    )
    .await;
    app.publish_booked(Uuid::now_v7()).await;
    app.wait_until_slot_events_consumed().await;
    assert_eq!((logged(&app, alice).await, logged(&app, bob).await), (2, 2));
    assert_eq!(
        slot_statuses(&app.feed(alice, "").await[0]),
        shown(&[(false, "booked_by_you")])
    );
}

#[tokio::test]
async fn a_released_slot_is_available_again_and_the_booking_redelivered_late_does_not_undo_it() {
    let app = spawn_app().await;
    let patient = Uuid::now_v7();
    let event = notify_event(patient, 1, WaitKind::MoveUp);
    let slot = event.data.slots[0].slot_id;
    app.publish_notify(&event).await;
    app.wait_for_feed(patient, 1).await;

    let (booked, booked_seq) = app.publish_booked_by(slot, Uuid::now_v7()).await;
    app.wait_for_feed_where(patient, "the slot taken", |feed| {
        feed[0]["all_taken"] == true
    })
    .await;
    let released_seq = app.publish_released(slot).await;
    assert!(released_seq > booked_seq);
    let feed = app
        .wait_for_feed_where(patient, "the slot available again", |feed| {
            feed[0]["all_taken"] == false
        })
        .await;
    assert_eq!(slot_statuses(&feed[0]), shown(&[(true, "available")]));

    // JetStream redelivers the booking (same stream sequence) after the release was handled,
    // as happens when its ack was lost: the release stays, being later in the stream.
    let handler = ApplySlotEvents {
        db: app.db.clone(),
        signal: FeedSignal::local_only(),
    };
    let redelivery = Delivery {
        subject: subjects::SLOT_BOOKED.to_owned(),
        payload: serde_json::to_vec(&booked).unwrap().into(),
        deliveries: 2,
        stream_sequence: booked_seq,
        trace: Default::default(),
        order: None,
    };
    assert_eq!(handler.handle(&redelivery).await, Outcome::Done);
    assert_eq!(
        slot_statuses(&app.feed(patient, "").await[0]),
        shown(&[(true, "available")])
    );
    let state = slot_state::Entity::find_by_id(slot)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (state.status.as_str(), state.stream_seq),
        ("available", released_seq as i64)
    );
    // notification, booked, released: the stale booking logged nothing.
    assert_eq!(logged(&app, patient).await, 3);
}

#[tokio::test]
async fn a_withdrawn_slot_is_not_available_and_all_taken_once_every_slot_is_gone() {
    let app = spawn_app().await;
    let patient = Uuid::now_v7();
    let event = notify_event(patient, 2, WaitKind::New);
    let (first, second) = (event.data.slots[0].slot_id, event.data.slots[1].slot_id);
    app.publish_notify(&event).await;
    app.wait_for_feed(patient, 1).await;

    app.publish_withdrawn(first).await;
    let feed = app
        .wait_for_feed_where(patient, "the first slot withdrawn", |feed| {
            feed[0]["slots"][0]["available"] == false
        })
        .await;
    assert_eq!(
        slot_statuses(&feed[0]),
        shown(&[(false, "withdrawn"), (true, "available")])
    );
    assert_eq!(feed[0]["all_taken"], false);

    app.publish_booked_by(second, patient).await;
    let feed = app
        .wait_for_feed_where(patient, "all slots gone", |feed| {
            feed[0]["all_taken"] == true
        })
        .await;
    assert_eq!(
        slot_statuses(&feed[0]),
        shown(&[(false, "withdrawn"), (false, "booked_by_you")])
    );
}
