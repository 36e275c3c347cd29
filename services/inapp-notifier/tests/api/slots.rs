use chrono::{DateTime, Utc};
use inapp_notifier::entities::notification_slot;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use slotcast_events::{WaitKind, subjects};
use uuid::Uuid;

use crate::helpers::{notify_event, spawn_app};

#[tokio::test]
async fn a_booked_slot_shows_unavailable_and_when_both_are_booked_all_taken_is_true() {
    let app = spawn_app().await;
    let patient = Uuid::now_v7();
    let event = notify_event(patient, 2, WaitKind::New);
    let (first, second) = (event.data.slots[0].slot_id, event.data.slots[1].slot_id);
    app.publish_notify(&event).await;
    app.wait_for_feed(patient, 1).await;

    app.publish_booked(first).await;
    let feed = app
        .wait_for_feed_where(patient, "the first slot taken", |feed| {
            feed[0]["slots"][0]["available"] == false
        })
        .await;
    assert_eq!(feed[0]["slots"][0]["slot_id"], first.to_string());
    assert_eq!(feed[0]["slots"][1]["available"], true);
    assert_eq!(feed[0]["all_taken"], false);

    app.publish_booked(second).await;
    let feed = app
        .wait_for_feed_where(patient, "all slots taken", |feed| {
            feed[0]["all_taken"] == true
        })
        .await;
    assert_eq!(feed[0]["slots"][1]["available"], false);
}

#[tokio::test]
async fn a_booked_slot_is_taken_in_every_notification_that_offered_it_and_a_redelivery_changes_nothing()
 {
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
    let booked = app.publish_booked(slot).await;
    app.wait_until_bookings_consumed().await;
    for patient in [alice, bob] {
        let feed = app.feed(patient, "").await;
        assert_eq!(feed[0]["slots"][0]["available"], false);
        assert_eq!(feed[0]["all_taken"], true);
    }
    assert_eq!(
        taken_times(&app, slot).await,
        [Some(booked.time), Some(booked.time)]
    );

    // The same event again (past the duplicate window) keeps the first time.
    let mut again = booked.clone();
    again.time = booked.time + chrono::Duration::minutes(1);
    app.publish_with_msg_id(
        subjects::SLOT_BOOKED,
        "booked-again",
        serde_json::to_vec(&again).unwrap(),
    )
    .await;
    // A booking for a slot nobody was told about is consumed and changes nothing.
    app.publish_booked(Uuid::now_v7()).await;
    app.wait_until_bookings_consumed().await;
    assert_eq!(
        taken_times(&app, slot).await,
        [Some(booked.time), Some(booked.time)]
    );
    assert_eq!(app.feed(alice, "").await[0]["all_taken"], true);
}

/// `taken_at` of `slot` in every notification that offered it.
async fn taken_times(app: &crate::helpers::TestApp, slot: Uuid) -> Vec<Option<DateTime<Utc>>> {
    notification_slot::Entity::find()
        .filter(notification_slot::Column::SlotId.eq(slot))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.taken_at)
        .collect()
}
