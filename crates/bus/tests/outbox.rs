//! The outbox relay against a real nats-server and a real database.

use std::time::Duration;

use futures::StreamExt as _;
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use slotcast_bus::outbox::{self, CreateOutbox, Relay};
use slotcast_events::{CloudEvent, InappStored, SlotWithdrawn, streams};
use slotcast_test_support::{NatsServer, TestDatabase};
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

/// A nats-server with the catalogue's streams, and `db` migrated with the outbox.
async fn start(
    db: &TestDatabase,
) -> (
    NatsServer,
    async_nats::jetstream::Context,
    sea_orm::DatabaseConnection,
) {
    slotcast_test_support::init_tracing();
    let nats = NatsServer::start().await.unwrap();
    let client = slotcast_bus::connect(&nats.url(), "test", Duration::from_secs(5))
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    slotcast_bus::ensure_streams(&js, 1).await.unwrap();
    let conn = db.connect().await.unwrap();
    Migrator::up(&conn, None).await.unwrap();
    (nats, js, conn)
}

/// Reads every event on `subject` of `stream_name` from the start, in the stream's order.
async fn ids_in_stream<T: slotcast_events::Event>(
    js: &async_nats::jetstream::Context,
    stream_name: &str,
) -> Vec<Uuid> {
    let stream = js.get_stream(stream_name).await.unwrap();
    let reader = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            filter_subject: T::SUBJECT.to_owned(),
            ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut ids = Vec::new();
    loop {
        let mut messages = reader
            .fetch()
            .max_messages(500)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .unwrap();
        let before = ids.len();
        while let Some(message) = messages.next().await {
            let message = message.unwrap();
            message.ack().await.unwrap();
            let id = message
                .headers
                .as_ref()
                .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                .map(|v| v.as_str().parse::<Uuid>().unwrap());
            let event = slotcast_events::decode::<T>(&message.payload).unwrap();
            assert_eq!(id, Some(event.id), "the message id is the event's");
            ids.push(event.id);
        }
        if ids.len() == before {
            return ids;
        }
    }
}

/// Enqueues `n` events (in a few calls of `enqueue_many`, one id twice), publishes them, and
/// checks the stream holds each once, in the outbox's order.
async fn publishes_in_order(db: TestDatabase, n: usize) {
    let (_nats, js, conn) = start(&db).await;

    let events: Vec<CloudEvent<SlotWithdrawn>> = (0..n)
        .map(|_| {
            CloudEvent::new(
                "test",
                SlotWithdrawn {
                    slot_id: Uuid::now_v7(),
                    practitioner_id: Uuid::now_v7(),
                },
            )
        })
        .collect();
    let (first, rest) = events.split_at(n / 3);
    outbox::enqueue_many(&conn, first).await.unwrap();
    outbox::enqueue_many(&conn, rest).await.unwrap();
    // Already there: ignored.
    outbox::enqueue_many(&conn, &events[..10]).await.unwrap();
    outbox::enqueue(&conn, &events[n - 1]).await.unwrap();
    assert_eq!(outbox::unpublished(&conn).await.unwrap(), n as u64);

    let relay = Relay::new(conn.clone(), js.clone());
    let mut published = 0;
    while published < n {
        let sent = relay.publish_pending().await.unwrap();
        assert!(sent > 0, "the relay made no progress at {published} of {n}");
        published += sent;
    }
    assert_eq!(published, n);
    assert_eq!(outbox::unpublished(&conn).await.unwrap(), 0);

    let ids = ids_in_stream::<SlotWithdrawn>(&js, streams::SCHEDULING).await;
    let expected: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let first_difference = ids.iter().zip(&expected).position(|(a, b)| a != b);
    assert_eq!(
        (ids.len(), first_difference),
        (n, None),
        "every event once, in the outbox's order"
    );
}

#[tokio::test]
async fn the_relay_publishes_more_than_a_batch_once_each_in_order_on_postgres() {
    publishes_in_order(TestDatabase::postgres().await.unwrap(), 2_345).await;
}

#[tokio::test]
async fn the_relay_publishes_more_than_a_batch_once_each_in_order_on_sqlite() {
    publishes_in_order(TestDatabase::sqlite().unwrap(), 1_234).await;
}

/// Bundles and single rows mixed: every event once, in the outbox's order, whatever row it
/// came in.
async fn publishes_bundles_in_order(db: TestDatabase) {
    let (_nats, js, conn) = start(&db).await;

    let events: Vec<CloudEvent<InappStored>> = (0..3_000)
        .map(|_| {
            CloudEvent::new(
                "test",
                InappStored {
                    notification_id: Uuid::now_v7(),
                    patient_id: Uuid::now_v7(),
                },
            )
        })
        .collect();
    let none = std::collections::HashMap::new();
    // Five bundles of 400 with 100 single rows after each, and a last bundle of 500.
    for part in events[..2_500].chunks(500) {
        let bundle: Vec<_> = part[..400].iter().map(|e| (e, &none)).collect();
        outbox::enqueue_bundle(&conn, &bundle).await.unwrap();
        outbox::enqueue_many(&conn, &part[400..]).await.unwrap();
    }
    let last: Vec<_> = events[2_500..].iter().map(|e| (e, &none)).collect();
    outbox::enqueue_bundle(&conn, &last).await.unwrap();
    assert_eq!(outbox::unpublished(&conn).await.unwrap(), 6 + 500);

    let relay = Relay::new(conn.clone(), js.clone());
    let mut published = 0;
    while outbox::unpublished(&conn).await.unwrap() > 0 {
        let sent = relay.publish_pending().await.unwrap();
        assert!(sent > 0, "the relay made no progress at {published}");
        published += sent;
    }
    assert_eq!(published, events.len());
    let ids = ids_in_stream::<InappStored>(&js, streams::DELIVERY).await;
    let expected: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let first_difference = ids.iter().zip(&expected).position(|(a, b)| a != b);
    assert_eq!(
        (ids.len(), first_difference),
        (expected.len(), None),
        "every event once, in the outbox's order"
    );
}

#[tokio::test]
async fn bundles_and_single_rows_are_published_once_each_in_order_on_postgres() {
    publishes_bundles_in_order(TestDatabase::postgres().await.unwrap()).await;
}

#[tokio::test]
async fn bundles_and_single_rows_are_published_once_each_in_order_on_sqlite() {
    publishes_bundles_in_order(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn a_change_writes_the_events_of_the_rows_it_returned_in_one_statement() {
    use sea_orm::ConnectionTrait as _;
    let db = TestDatabase::postgres().await.unwrap();
    let (_nats, _js, conn) = start(&db).await;
    conn.execute_unprepared("CREATE TABLE things (id uuid PRIMARY KEY, done boolean NOT NULL)")
        .await
        .unwrap();
    let (open, finished) = (Uuid::now_v7(), Uuid::now_v7());
    conn.execute_unprepared(&format!(
        "INSERT INTO things VALUES ('{open}', false), ('{finished}', true)"
    ))
    .await
    .unwrap();
    let events: Vec<CloudEvent<SlotWithdrawn>> = [open, finished]
        .iter()
        .map(|&slot_id| {
            CloudEvent::new(
                "/test",
                SlotWithdrawn {
                    slot_id,
                    practitioner_id: Uuid::now_v7(),
                },
            )
        })
        .collect();
    let trace = std::collections::HashMap::new();
    let traced: Vec<_> = events.iter().map(|e| (e, &trace)).collect();
    let rows: Vec<(Uuid, outbox::EncodedRow)> = [open, finished]
        .into_iter()
        .zip(outbox::encode_traced(&traced).unwrap())
        .collect();
    let change =
        "UPDATE things SET done = true WHERE NOT done AND id IN ($1, $2) RETURNING id AS key";
    let statement = outbox::with_events(change, vec![open.into(), finished.into()], &rows);
    // Twice: the second finds nothing left to change, and writes nothing.
    for _ in 0..2 {
        conn.execute_raw(statement.clone()).await.unwrap();
    }
    assert_eq!(
        outbox::unpublished(&conn).await.unwrap(),
        1,
        "only the row it changed"
    );
}
