//! The order stamps the outbox gives, against a real database.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use slotcast_bus::outbox::{self, CreateOutbox, entity};
use slotcast_events::{CloudEvent, SlotWithdrawn};
use slotcast_test_support::TestDatabase;
use uuid::Uuid;

struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateOutbox),
            Box::new(slotcast_bus::order::AddOrderStamp),
            Box::new(slotcast_bus::order::StampAtCommit),
            Box::new(slotcast_bus::bundle::AddOutboxBundles),
        ]
    }
}

fn withdrawn(practitioner: Uuid) -> CloudEvent<SlotWithdrawn> {
    CloudEvent::new(
        "test",
        SlotWithdrawn {
            slot_id: Uuid::now_v7(),
            practitioner_id: practitioner,
        },
    )
}

/// The numbers given to `key`'s events, by event id.
async fn numbers(conn: &DatabaseConnection, key: Uuid) -> Vec<(Uuid, Option<i64>)> {
    entity::Entity::find()
        .filter(entity::Column::OrderKey.eq(key))
        .order_by_asc(entity::Column::OrderSeq)
        .all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.event_id, r.order_seq))
        .collect()
}

async fn one_keys_events_are_numbered_in_the_order_they_commit(db: TestDatabase) {
    let conn = db.connect().await.unwrap();
    Migrator::up(&conn, None).await.unwrap();
    let key = Uuid::now_v7();
    let (first, second, third) = (withdrawn(key), withdrawn(key), withdrawn(key));
    outbox::enqueue(&conn, &first).await.unwrap();
    let txn = conn.begin().await.unwrap();
    outbox::enqueue_many(&txn, &[second.clone(), third.clone()])
        .await
        .unwrap();
    txn.commit().await.unwrap();
    // A rolled-back event leaves no gap.
    let txn = conn.begin().await.unwrap();
    outbox::enqueue(&txn, &withdrawn(key)).await.unwrap();
    txn.rollback().await.unwrap();
    let fourth = withdrawn(key);
    outbox::enqueue(&conn, &fourth).await.unwrap();
    // Another key counts on its own; an event without a key gets no number.
    outbox::enqueue(&conn, &withdrawn(Uuid::now_v7()))
        .await
        .unwrap();
    assert_eq!(
        numbers(&conn, key).await,
        [
            (first.id, Some(1)),
            (second.id, Some(2)),
            (third.id, Some(3)),
            (fourth.id, Some(4))
        ]
    );
}

#[tokio::test]
async fn one_keys_events_are_numbered_in_the_order_they_commit_on_postgres() {
    one_keys_events_are_numbered_in_the_order_they_commit(TestDatabase::postgres().await.unwrap())
        .await;
}

#[tokio::test]
async fn one_keys_events_are_numbered_in_the_order_they_commit_on_sqlite() {
    one_keys_events_are_numbered_in_the_order_they_commit(TestDatabase::sqlite().unwrap()).await;
}

/// A transaction that writes a key's event and then locks a row, and one that locks the row and
/// then writes an event of the key, one after the other: the numbers are taken at commit, so
/// neither holds the counter while it waits for the row, and both commit, numbered in the order
/// they committed.
#[tokio::test]
async fn an_event_written_before_a_row_lock_does_not_deadlock_with_one_written_after() {
    let db = TestDatabase::postgres().await.unwrap();
    let conn = db.connect().await.unwrap();
    Migrator::up(&conn, None).await.unwrap();
    conn.execute_unprepared(
        "CREATE TABLE entry (id int PRIMARY KEY, n int); INSERT INTO entry VALUES (1, 0)",
    )
    .await
    .unwrap();
    let key = Uuid::now_v7();
    let (a, b) = (withdrawn(key), withdrawn(key));
    let first = conn.begin().await.unwrap();
    outbox::enqueue(&first, &a).await.unwrap();
    let second = conn.begin().await.unwrap();
    second
        .execute_unprepared("UPDATE entry SET n = n + 1 WHERE id = 1")
        .await
        .unwrap();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        outbox::enqueue(&second, &b),
    )
    .await
    .expect("writing an event takes no lock another writer of the key holds")
    .unwrap();
    // `first` now waits for the row `second` holds, as a booking closing an entry would.
    let blocked = tokio::spawn(async move {
        first
            .execute_unprepared("UPDATE entry SET n = n + 1 WHERE id = 1")
            .await?;
        first.commit().await
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    second.commit().await.unwrap();
    blocked.await.unwrap().expect("no deadlock");
    assert_eq!(
        numbers(&conn, key).await,
        [(b.id, Some(1)), (a.id, Some(2))]
    );
}
