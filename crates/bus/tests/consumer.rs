//! The consume loop against a real nats-server.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use slotcast_bus::consumer::{self, ConsumerSpec, Delivery, Handler, Outcome};
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
