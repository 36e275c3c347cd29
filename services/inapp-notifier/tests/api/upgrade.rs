//! What this version does to a database and a NATS server set up by the version before.

use chrono::{SubsecRound, Utc};
use inapp_notifier::{
    entities::{notification, notification_slot, slot_state},
    migration::Migrator,
};
use sea_orm::{ActiveValue::Set, EntityTrait};
use sea_orm_migration::MigratorTrait;
use slotcast_events::WaitKind;
use slotcast_test_support::TestDatabase;
use uuid::Uuid;

use crate::helpers::notify_event;

async fn slots_taken_before_the_upgrade_stay_taken(database: TestDatabase) {
    let db = database.connect().await.unwrap();
    // The outbox and the feed, as the version before left them.
    Migrator::up(&db, Some(2)).await.unwrap();
    let patient = Uuid::now_v7();
    let event = notify_event(patient, 2, WaitKind::New);
    notification::Entity::insert(notification::ActiveModel {
        id: Set(event.data.notification_id),
        patient_id: Set(patient),
        reason: Set("new".to_owned()),
        title: Set("t".to_owned()),
        body: Set("b".to_owned()),
        practitioner: Set("{}".to_owned()),
        created_at: Set(event.time),
        read_at: Set(None),
        // A column the version before did not have.
        confirmation: sea_orm::ActiveValue::NotSet,
    })
    .exec_without_returning(&db)
    .await
    .unwrap();
    let taken_at = Utc::now().trunc_subsecs(6);
    for (i, slot) in event.data.slots.iter().enumerate() {
        notification_slot::Entity::insert(notification_slot::ActiveModel {
            notification_id: Set(event.data.notification_id),
            slot_id: Set(slot.slot_id),
            starts_at: Set(slot.starts_at),
            ends_at: Set(slot.ends_at),
            booking_url: Set(slot.booking_url.clone()),
            taken_at: Set((i == 0).then_some(taken_at)),
        })
        .exec_without_returning(&db)
        .await
        .unwrap();
    }

    Migrator::up(&db, None).await.unwrap();

    let states = slot_state::Entity::find().all(&db).await.unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].slot_id, event.data.slots[0].slot_id);
    assert_eq!(
        (
            states[0].status.as_str(),
            states[0].booked_by,
            states[0].stream_seq
        ),
        ("booked", None, 0)
    );
}

#[tokio::test]
async fn on_postgres_slots_taken_before_the_upgrade_stay_taken() {
    slots_taken_before_the_upgrade_stay_taken(TestDatabase::postgres().await.unwrap()).await;
}

#[tokio::test]
async fn on_sqlite_slots_taken_before_the_upgrade_stay_taken() {
    slots_taken_before_the_upgrade_stay_taken(TestDatabase::sqlite().unwrap()).await;
}
