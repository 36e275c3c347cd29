//! Notifications stored a batch at a time (one transaction for many): what one at a time did,
//! no more and no less.

use inapp_notifier::{
    entities::feed_event,
    slots::{SlotChange, SlotState},
    store::{self, NewNotification, SlotApplied, Stored},
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use slotcast_events::WaitKind;
use uuid::Uuid;

use crate::helpers::{TestApp, notify_event, spawn_app, spawn_app_on_sqlite};

async fn log_of(app: &TestApp, patient: Uuid) -> Vec<(i64, String, Uuid)> {
    feed_event::Entity::find()
        .filter(feed_event::Column::PatientId.eq(patient))
        .order_by_asc(feed_event::Column::Seq)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.kind, e.notification_id))
        .collect()
}

async fn a_batch_stores_each_notification_once_and_logs_it_in_order(app: TestApp) {
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let mut events = [
        notify_event(alice, 2, WaitKind::New),
        notify_event(bob, 1, WaitKind::MoveUp),
        notify_event(alice, 1, WaitKind::New),
    ];
    // Bob's notification offers one of Alice's slots too: one state row, shared.
    let shared = events[0].data.slots[0].clone();
    events[1].data.slots.push(shared.clone());
    let news: Vec<NewNotification> = events
        .iter()
        .map(|e| NewNotification::from_event(e.clone()).unwrap())
        .collect();
    // The same message twice in one batch (a redelivery that met its original).
    let mut batch = news.clone();
    batch.push(news[0].clone());
    let stored = store::store_batch(&app.db, &batch).await.unwrap();
    assert_eq!(
        stored,
        [Stored::New, Stored::New, Stored::New, Stored::AlreadyThere]
    );
    assert_eq!(app.outbox_rows().await, 3, "one InappStored each");
    let alice_log = log_of(&app, alice).await;
    assert_eq!(
        alice_log,
        [
            (1, "notification".to_owned(), news[0].id),
            (2, "notification".to_owned(), news[2].id)
        ],
        "numbered without gaps, in the batch's order"
    );

    // Redelivered in another batch with something new: only the new one changes anything.
    let carol = Uuid::now_v7();
    let late = NewNotification::from_event(notify_event(carol, 1, WaitKind::New)).unwrap();
    let again = vec![news[2].clone(), late.clone(), news[1].clone()];
    let stored = store::store_batch(&app.db, &again).await.unwrap();
    assert_eq!(
        stored,
        [Stored::AlreadyThere, Stored::New, Stored::AlreadyThere]
    );
    assert_eq!(app.outbox_rows().await, 4);
    assert_eq!(log_of(&app, alice).await, alice_log);
    assert_eq!(app.feed(alice, "").await.len(), 2);
    assert_eq!(app.feed(bob, "").await.len(), 1);

    // The shared slot is booked: each notification that offered it is logged as updated, after
    // what the batch logged.
    let change = SlotChange {
        slot_id: shared.slot_id,
        state: SlotState::Booked { by: Some(carol) },
        at: chrono::Utc::now(),
    };
    let applied = store::apply_slot_change(&app.db, &change, 1_000_000)
        .await
        .unwrap();
    let mut patients = vec![alice, bob];
    patients.sort_unstable();
    assert_eq!(
        applied,
        SlotApplied::Changed {
            notifications: 2,
            patients
        }
    );
    let alice_log = log_of(&app, alice).await;
    assert_eq!(
        alice_log.last(),
        Some(&(3, "notification.updated".to_owned(), news[0].id))
    );
    assert_eq!(
        log_of(&app, bob).await,
        [
            (1, "notification".to_owned(), news[1].id),
            (2, "notification.updated".to_owned(), news[1].id)
        ]
    );
}

#[tokio::test]
async fn a_batch_stores_each_notification_once_and_logs_it_in_order_on_postgres() {
    a_batch_stores_each_notification_once_and_logs_it_in_order(spawn_app().await).await;
}

#[tokio::test]
async fn a_batch_stores_each_notification_once_and_logs_it_in_order_on_sqlite() {
    a_batch_stores_each_notification_once_and_logs_it_in_order(spawn_app_on_sqlite().await).await;
}

#[tokio::test]
async fn many_notifications_published_at_once_are_all_stored_once() {
    let app = spawn_app().await;
    let patients: Vec<Uuid> = (0..300).map(|_| Uuid::now_v7()).collect();
    for &patient in &patients {
        app.publish_notify(&notify_event(patient, 1, WaitKind::New))
            .await;
    }
    app.wait_until_notifications_consumed().await;
    assert_eq!(app.outbox_rows().await, 300);
    for &patient in patients.iter().step_by(37) {
        assert_eq!(app.feed(patient, "").await.len(), 1);
        assert_eq!(log_of(&app, patient).await.len(), 1);
    }
}
