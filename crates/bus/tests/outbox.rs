//! The outbox relay against a real nats-server and a real database.

use std::time::Duration;

use futures::StreamExt as _;
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use slotcast_bus::outbox::{self, CreateOutbox, Relay};
use slotcast_events::{CloudEvent, SlotWithdrawn, streams, subjects};
use slotcast_test_support::{NatsServer, TestDatabase};
use uuid::Uuid;

struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateOutbox),
            Box::new(slotcast_bus::order::AddOrderStamp),
            Box::new(slotcast_bus::order::StampAtCommit),
        ]
    }
}

/// Enqueues `n` events (in a few calls of `enqueue_many`, one id twice), publishes them, and
/// checks the stream holds each once, in the outbox's order.
async fn publishes_in_order(db: TestDatabase, n: usize) {
    slotcast_test_support::init_tracing();
    let nats = NatsServer::start().await.unwrap();
    let client = slotcast_bus::connect(&nats.url(), "test", Duration::from_secs(5))
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    slotcast_bus::ensure_streams(&js, 1).await.unwrap();
    let conn = db.connect().await.unwrap();
    Migrator::up(&conn, None).await.unwrap();

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

    let stream = js.get_stream(streams::SCHEDULING).await.unwrap();
    let reader = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            filter_subject: subjects::SLOT_WITHDRAWN.to_owned(),
            ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut ids = Vec::with_capacity(n);
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
            let event = slotcast_events::decode::<SlotWithdrawn>(&message.payload).unwrap();
            ids.push(event.id);
        }
        if ids.len() == before {
            break;
        }
    }
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
