//! The consume loop against a real nats-server.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use slotcast_bus::consumer::{self, BatchHandler, ConsumerSpec, Delivery, Handler, Outcome};
use slotcast_events::{streams, subjects};
use slotcast_test_support::NatsServer;
use tokio_util::sync::CancellationToken;

/// Takes its time over each message, counting starts.
struct Slow {
    started: Arc<AtomicUsize>,
}

impl Handler for Slow {
    async fn handle(&self, _: &Delivery) -> Outcome {
        self.started.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(500)).await;
        Outcome::Done
    }
}

fn spec() -> ConsumerSpec {
    ConsumerSpec {
        stream: streams::SCHEDULING,
        durable: "slow".to_owned(),
        filter_subject: subjects::SLOT_CREATED.to_owned(),
        max_deliver: 5,
        // Long: a message received but never answered would sit this long before redelivery.
        ack_wait: Duration::from_secs(120),
        concurrency: 1,
        max_ack_pending: 50,
    }
}

#[tokio::test]
async fn on_shutdown_the_message_in_hand_is_finished_and_the_ones_not_started_are_handed_back() {
    slotcast_test_support::init_tracing();
    let nats = NatsServer::start().await.unwrap();
    let client = slotcast_bus::connect(&nats.url(), "test", Duration::from_secs(5))
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    slotcast_bus::ensure_streams(&js, 1).await.unwrap();
    for i in 0..10 {
        slotcast_bus::publish(
            &js,
            subjects::SLOT_CREATED,
            &format!("m{i}"),
            b"{}".to_vec(),
        )
        .await
        .unwrap();
    }
    let started = Arc::new(AtomicUsize::new(0));
    let shutdown = CancellationToken::new();
    let handler = Arc::new(Slow {
        started: started.clone(),
    });
    let running = tokio::spawn(consumer::run(js.clone(), spec(), handler, shutdown.clone()));
    while started.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the loop stops promptly")
        .unwrap();

    let finished_first = started.load(Ordering::SeqCst);

    // A second replica (or the restarted one) gets the rest once the stopped one's pull request
    // has expired on the server (about 11 s), long before the two-minute ack_wait.
    let again = Arc::new(AtomicUsize::new(0));
    let shutdown = CancellationToken::new();
    let handler = Arc::new(Count {
        seen: again.clone(),
    });
    let running = tokio::spawn(consumer::run(js.clone(), spec(), handler, shutdown.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while finished_first + again.load(Ordering::SeqCst) < 10 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} + {} of 10 handled: the rest waits for ack_wait",
            finished_first,
            again.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Acks are applied by the server asynchronously: wait for the floor to reach the end.
    let mut c = js
        .get_stream(streams::SCHEDULING)
        .await
        .unwrap()
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>("slow")
        .await
        .unwrap();
    while c.info().await.unwrap().ack_floor.stream_sequence < 10 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every message acked: {:?}",
            c.info().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    running.await.unwrap();
    assert_eq!(
        finished_first + again.load(Ordering::SeqCst),
        10,
        "none handled twice"
    );
}

struct Count {
    seen: Arc<AtomicUsize>,
}

impl Handler for Count {
    async fn handle(&self, _: &Delivery) -> Outcome {
        self.seen.fetch_add(1, Ordering::SeqCst);
        Outcome::Done
    }
}

/// Publishes `n` messages on `slot.created` and returns a JetStream context.
async fn stream_with(nats: &NatsServer, n: usize) -> async_nats::jetstream::Context {
    let client = slotcast_bus::connect(&nats.url(), "test", Duration::from_secs(5))
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    slotcast_bus::ensure_streams(&js, 1).await.unwrap();
    for i in 0..n {
        slotcast_bus::publish(
            &js,
            subjects::SLOT_CREATED,
            &format!("m{i}"),
            b"{}".to_vec(),
        )
        .await
        .unwrap();
    }
    js
}

/// Takes `took` over every message, counting deliveries.
struct Sleepy {
    took: Duration,
    deliveries: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
}

impl Handler for Sleepy {
    async fn handle(&self, _: &Delivery) -> Outcome {
        self.deliveries.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.took).await;
        self.done.fetch_add(1, Ordering::SeqCst);
        Outcome::Done
    }
}

async fn until(within: Duration, what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_handler_slower_than_ack_wait_keeps_its_message_with_progress_acks() {
    slotcast_test_support::init_tracing();
    let nats = NatsServer::start().await.unwrap();
    let js = stream_with(&nats, 2).await;
    let (deliveries, done) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let handler = Arc::new(Sleepy {
        took: Duration::from_secs(4),
        deliveries: deliveries.clone(),
        done: done.clone(),
    });
    let spec = ConsumerSpec {
        durable: "sleepy".to_owned(),
        // Far shorter than the handler: without progress acks both would be delivered again
        // (to the second worker) while the first is still at work.
        ack_wait: Duration::from_secs(1),
        concurrency: 2,
        ..spec()
    };
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(consumer::run(js, spec, handler, shutdown.clone()));
    until(Duration::from_secs(20), "both handled", || {
        done.load(Ordering::SeqCst) == 2
    })
    .await;
    // Anything delivered again would have arrived by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    shutdown.cancel();
    running.await.unwrap();
    assert_eq!(deliveries.load(Ordering::SeqCst), 2, "each delivered once");
}

#[tokio::test]
async fn a_deleted_consumer_is_created_again_and_consuming_goes_on() {
    slotcast_test_support::init_tracing();
    let nats = NatsServer::start().await.unwrap();
    let js = stream_with(&nats, 3).await;
    let seen = Arc::new(AtomicUsize::new(0));
    let handler = Arc::new(Count { seen: seen.clone() });
    let spec = ConsumerSpec {
        durable: "deleted".to_owned(),
        ack_wait: Duration::from_secs(5),
        ..spec()
    };
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(consumer::run(
        js.clone(),
        spec.clone(),
        handler,
        shutdown.clone(),
    ));
    until(Duration::from_secs(10), "the first three", || {
        seen.load(Ordering::SeqCst) == 3
    })
    .await;
    js.get_stream(streams::SCHEDULING)
        .await
        .unwrap()
        .delete_consumer(&spec.durable)
        .await
        .unwrap();
    // The loop notices, creates the consumer again (from the start of the stream: a consumer
    // that was deleted remembers nothing) and goes on with what is published next.
    slotcast_bus::publish(&js, subjects::SLOT_CREATED, "after", b"{}".to_vec())
        .await
        .unwrap();
    until(
        Duration::from_secs(30),
        "consuming after the delete",
        || seen.load(Ordering::SeqCst) >= 4,
    )
    .await;
    shutdown.cancel();
    running.await.unwrap();
    let consumer = js
        .get_stream(streams::SCHEDULING)
        .await
        .unwrap()
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&spec.durable)
        .await;
    assert!(consumer.is_ok(), "the consumer exists again");
}

/// Fails every time, for a reason that might pass.
struct Failing {
    deliveries: Arc<AtomicUsize>,
}

impl Handler for Failing {
    async fn handle(&self, _: &Delivery) -> Outcome {
        self.deliveries.fetch_add(1, Ordering::SeqCst);
        Outcome::Retry {
            delay: Duration::from_millis(50),
            reason: "the database is down".to_owned(),
        }
    }
}

#[tokio::test]
async fn a_message_that_exhausts_max_deliver_is_dead_lettered_with_the_reason_and_the_loop_goes_on()
{
    slotcast_test_support::init_tracing();
    let nats = NatsServer::start().await.unwrap();
    let js = stream_with(&nats, 1).await;
    let deliveries = Arc::new(AtomicUsize::new(0));
    let spec = ConsumerSpec {
        durable: "failing".to_owned(),
        max_deliver: 3,
        ack_wait: Duration::from_secs(5),
        ..spec()
    };
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(consumer::run(
        js.clone(),
        spec,
        Arc::new(Failing {
            deliveries: deliveries.clone(),
        }),
        shutdown.clone(),
    ));
    let letters = js
        .get_stream(streams::DEADLETTER)
        .await
        .unwrap()
        .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
        .await
        .unwrap();
    let mut batch = letters
        .fetch()
        .max_messages(1)
        .expires(Duration::from_secs(15))
        .messages()
        .await
        .unwrap();
    use futures::StreamExt as _;
    let letter = batch.next().await.expect("a dead letter").unwrap();
    assert_eq!(letter.subject.as_str(), "slotcast.deadletter.failing");
    let letter: slotcast_events::DeadLetter = serde_json::from_slice(&letter.payload).unwrap();
    assert_eq!(letter.deliveries, 3);
    assert_eq!(letter.original_subject, subjects::SLOT_CREATED);
    assert!(
        letter
            .reason
            .contains("gave up after 3 deliveries: the database is down")
    );
    // Terminated: never delivered a fourth time.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(deliveries.load(Ordering::SeqCst), 3);
    shutdown.cancel();
    running.await.unwrap();
}

/// Answers each message by its payload: `retry` fails on the first delivery, `reject` always,
/// anything else succeeds. Remembers every batch it was given.
struct Mixed {
    batches: Batches,
}

/// Each batch handed over: payload and delivery count of each message.
type Batches = Arc<std::sync::Mutex<Vec<Vec<(String, i64)>>>>;

impl BatchHandler for Mixed {
    async fn handle_batch(&self, deliveries: &[Delivery]) -> Vec<Outcome> {
        let seen = deliveries
            .iter()
            .map(|d| {
                (
                    String::from_utf8_lossy(&d.payload).into_owned(),
                    d.deliveries,
                )
            })
            .collect::<Vec<_>>();
        let outcomes = seen
            .iter()
            .map(
                |(payload, deliveries)| match (payload.as_str(), deliveries) {
                    ("retry", 1) => Outcome::Retry {
                        delay: Duration::from_millis(50),
                        reason: "not yet".to_owned(),
                    },
                    ("reject", _) => Outcome::Reject("never".to_owned()),
                    _ => Outcome::Done,
                },
            )
            .collect();
        self.batches.lock().unwrap().push(seen);
        outcomes
    }
}

#[tokio::test]
async fn a_batch_handler_gets_several_messages_and_each_is_answered_on_its_own() {
    slotcast_test_support::init_tracing();
    let nats = NatsServer::start().await.unwrap();
    let client = slotcast_bus::connect(&nats.url(), "test", Duration::from_secs(5))
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    slotcast_bus::ensure_streams(&js, 1).await.unwrap();
    let payloads = ["a", "retry", "b", "reject", "c", "d"];
    for (i, payload) in payloads.iter().enumerate() {
        slotcast_bus::publish(
            &js,
            subjects::SLOT_CREATED,
            &format!("m{i}"),
            payload.as_bytes().to_vec(),
        )
        .await
        .unwrap();
    }
    let batches = Arc::new(std::sync::Mutex::new(Vec::new()));
    let spec = ConsumerSpec {
        durable: "mixed".to_owned(),
        ack_wait: Duration::from_secs(5),
        ..spec()
    };
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(consumer::run_batches(
        js.clone(),
        spec.clone(),
        4,
        Arc::new(Mixed {
            batches: batches.clone(),
        }),
        shutdown.clone(),
    ));
    let handled = |payload: &str| {
        batches
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .filter(|(p, _)| p == payload)
            .count()
    };
    until(Duration::from_secs(20), "the retry delivered again", || {
        handled("retry") == 2
    })
    .await;
    // The rejected one went to the dead letters, alone: the others of its batch were acked.
    let letters = js
        .get_stream(streams::DEADLETTER)
        .await
        .unwrap()
        .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
        .await
        .unwrap();
    let mut batch = letters
        .fetch()
        .max_messages(1)
        .expires(Duration::from_secs(10))
        .messages()
        .await
        .unwrap();
    use futures::StreamExt as _;
    let letter = batch.next().await.expect("a dead letter").unwrap();
    let letter: slotcast_events::DeadLetter = serde_json::from_slice(&letter.payload).unwrap();
    assert_eq!(letter.payload, "reject");
    assert_eq!(letter.reason, "never");
    let mut c = js
        .get_stream(streams::SCHEDULING)
        .await
        .unwrap()
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&spec.durable)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let info = c.info().await.unwrap();
        if info.num_ack_pending == 0 && info.num_pending == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every message answered: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    running.await.unwrap();
    assert!(
        batches
            .lock()
            .unwrap()
            .iter()
            .all(|b| !b.is_empty() && b.len() <= 4)
    );
    for payload in ["a", "b", "c", "d", "reject"] {
        assert_eq!(handled(payload), 1, "{payload} handled once");
    }
}
