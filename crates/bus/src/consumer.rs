//! Durable pull consumers and the consume loop.
//!
//! A handler answers each message with an [`Outcome`]. `Done` acks. `Retry` naks with a delay,
//! until the message has been delivered `max_deliver` times; then, like `Reject`, it is
//! published to `slotcast.deadletter.<consumer>` with the reason and terminated, so the consumer
//! moves on. A dead letter that cannot be published is nak'ed instead: nothing is dropped.
//! While a handler works, the loop sends a progress ack every third of `ack_wait`, so only a
//! stopped process, never a slow one, gets its message delivered again.

use std::{future::Future, sync::Arc, time::Duration};

use async_nats::jetstream::{
    self, AckKind,
    consumer::{self, PullConsumer, pull::MessagesErrorKind},
};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use slotcast_events::{DeadLetter, subjects};
use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::JetStream;

/// How a handler's work on one message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done (or already done before): ack.
    Done,
    /// Failed for a reason that may pass (a database or server down): deliver again later.
    Retry { delay: Duration, reason: String },
    /// Can never succeed (malformed, unknown type): dead-letter it and move on.
    Reject(String),
}

impl Outcome {
    /// A retry after `delay` with the error chain as the reason.
    pub fn retry(delay: Duration, err: &anyhow::Error) -> Self {
        Outcome::Retry {
            delay,
            reason: format!("{err:#}"),
        }
    }
}

/// One delivered message, as a handler sees it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub subject: String,
    pub payload: Bytes,
    /// How many times it has been delivered, this time included.
    pub deliveries: i64,
    pub stream_sequence: u64,
}

/// Handles messages of one consumer.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, delivery: &Delivery) -> impl Future<Output = Outcome> + Send;
}

/// A durable consumer's settings.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    pub stream: &'static str,
    pub durable: String,
    pub filter_subject: String,
    pub max_deliver: i64,
    /// Longer than the slowest honest handler.
    pub ack_wait: Duration,
    /// How many messages are handled at once.
    pub concurrency: usize,
    /// Messages delivered but not yet acknowledged. 1 keeps the stream's order strictly, even
    /// across redeliveries (a projection needs that); more lets work overlap.
    pub max_ack_pending: i64,
}

impl ConsumerSpec {
    fn config(&self) -> consumer::pull::Config {
        consumer::pull::Config {
            durable_name: Some(self.durable.clone()),
            filter_subject: self.filter_subject.clone(),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_deliver: self.max_deliver,
            max_ack_pending: self.max_ack_pending.max(1),
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        }
    }
}

/// How long one pull request waits on the server. Short, because the server delivers into a
/// pull request until it expires even when its subscriber is gone (a stopped process).
const PULL_EXPIRES: Duration = Duration::from_secs(10);

/// Creates the durable consumer if it does not exist.
pub async fn ensure_consumer(js: &JetStream, spec: &ConsumerSpec) -> anyhow::Result<PullConsumer> {
    let stream = js
        .get_stream(spec.stream)
        .await
        .map_err(|e| anyhow::anyhow!("stream {} unavailable: {e}", spec.stream))?;
    stream
        .get_or_create_consumer(&spec.durable, spec.config())
        .await
        .map_err(|e| anyhow::anyhow!("consumer {} unavailable: {e}", spec.durable))
}

/// Consumes until `shutdown` is cancelled: then stops pulling, naks what was received but not
/// started, finishes the messages in hand, and returns. Errors never end it: the consumer is recreated after a pause.
pub async fn run<H: Handler>(
    js: JetStream,
    spec: ConsumerSpec,
    handler: Arc<H>,
    shutdown: CancellationToken,
) {
    let spec = Arc::new(spec);
    let limit = Arc::new(Semaphore::new(spec.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut pause = Duration::from_millis(200);
    while !shutdown.is_cancelled() {
        let messages = match ensure_consumer(&js, &spec).await {
            Ok(c) => c
                .stream()
                .expires(PULL_EXPIRES)
                .heartbeat(Duration::from_secs(3))
                .messages()
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e),
        };
        let mut messages = match messages {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(consumer = %spec.durable, error = %format!("{e:#}"), "cannot consume yet");
                sleep_or_cancel(pause, &shutdown).await;
                pause = (pause * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        loop {
            let permit = tokio::select! {
                p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = shutdown.cancelled() => break,
            };
            let next = tokio::select! {
                n = messages.next() => n,
                _ = shutdown.cancelled() => break,
            };
            match next {
                Some(Ok(message)) => {
                    pause = Duration::from_millis(200);
                    let (js, spec, handler) = (js.clone(), spec.clone(), handler.clone());
                    tasks.spawn(async move {
                        process(&js, &spec, &*handler, message).await;
                        drop(permit);
                    });
                    while tasks.try_join_next().is_some() {}
                }
                Some(Err(e)) if matches!(e.kind(), MessagesErrorKind::MissingHeartbeat) => {
                    tracing::warn!(consumer = %spec.durable, "missed heartbeats, pulling again");
                }
                Some(Err(e)) => {
                    tracing::warn!(consumer = %spec.durable, error = %e, "consumer stream failed, recreating");
                    sleep_or_cancel(pause, &shutdown).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                    break;
                }
                None => {
                    // The server ended the pull stream: pull again after a pause, never in a tight loop.
                    sleep_or_cancel(pause, &shutdown).await;
                    break;
                }
            }
        }
        if shutdown.is_cancelled() {
            hand_back(&spec, messages).await;
        }
    }
    while tasks.join_next().await.is_some() {}
    tracing::info!(consumer = %spec.durable, "consumer stopped");
}

/// Naks what the client has already received but not started, so another replica (or the next
/// start) gets it soon instead of after `ack_wait`. The redelivery is delayed until our own pull
/// request has expired on the server: it would otherwise get the message back, with nobody left
/// to read it.
async fn hand_back(spec: &ConsumerSpec, mut messages: consumer::pull::Stream) {
    let mut received = Vec::new();
    while let Some(Some(Ok(message))) = messages.next().now_or_never() {
        received.push(message);
    }
    drop(messages);
    let mut handed_back = 0u64;
    for message in received {
        let after_our_pull = PULL_EXPIRES + Duration::from_secs(1);
        if message
            .ack_with(AckKind::Nak(Some(after_our_pull)))
            .await
            .is_ok()
        {
            handed_back += 1;
        }
    }
    if handed_back > 0 {
        tracing::info!(consumer = %spec.durable, handed_back, "handed back messages not started");
    }
}

async fn sleep_or_cancel(d: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {},
        _ = shutdown.cancelled() => {},
    }
}

async fn process<H: Handler>(
    js: &JetStream,
    spec: &ConsumerSpec,
    handler: &H,
    message: jetstream::Message,
) {
    // Without its metadata (never seen from a JetStream server) a message can be neither
    // ordered nor answered: leave it to `ack_wait`, never hand a handler a made-up sequence.
    let (deliveries, stream_sequence) = match message.info() {
        Ok(info) => (info.delivered, info.stream_sequence),
        Err(e) => {
            tracing::error!(consumer = %spec.durable, error = %e, "message without JetStream metadata; left unanswered");
            return;
        }
    };
    let delivery = Delivery {
        subject: message.subject.to_string(),
        payload: message.payload.clone(),
        deliveries,
        stream_sequence,
    };
    let span = tracing::info_span!("consume", consumer = %spec.durable, subject = %delivery.subject, seq = stream_sequence, deliveries);
    if let Some(headers) = &message.headers {
        slotcast_kit::telemetry::set_parent_from(
            &span,
            headers
                .iter()
                .filter_map(|(k, vs)| vs.first().map(|v| (k.as_ref(), v.as_str()))),
        );
    }
    let outcome = with_progress(
        handler.handle(&delivery).instrument(span.clone()),
        &message,
        spec.ack_wait,
    )
    .await;
    let _enter = span.enter();
    let label = match &outcome {
        Outcome::Done => "done",
        Outcome::Retry { .. } => "retry",
        Outcome::Reject(_) => "rejected",
    };
    metrics::counter!("slotcast_messages_total", "consumer" => spec.durable.clone(), "outcome" => label).increment(1);
    let ack = match outcome {
        Outcome::Done => message.ack().await,
        Outcome::Retry { delay, reason } if deliveries < spec.max_deliver => {
            tracing::warn!(%reason, "handler failed, will retry");
            message.ack_with(AckKind::Nak(Some(delay))).await
        }
        Outcome::Retry { reason, .. } => {
            let reason = format!("gave up after {deliveries} deliveries: {reason}");
            dead_letter(js, spec, &delivery, reason, &message).await
        }
        Outcome::Reject(reason) => dead_letter(js, spec, &delivery, reason, &message).await,
    };
    if let Err(e) = ack {
        tracing::warn!(error = %e, "could not answer the message; it will be redelivered");
    }
}

/// Runs `work`, telling the server every third of `ack_wait` that the message is still in hand,
/// so a slow but honest handler (an SMTP server taking its time) never sees its message
/// delivered a second time. Only a process that has stopped stops the progress acks.
async fn with_progress<F: Future<Output = Outcome>>(
    work: F,
    message: &jetstream::Message,
    ack_wait: Duration,
) -> Outcome {
    let every = (ack_wait / 3).max(Duration::from_millis(100));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            outcome = &mut work => return outcome,
            _ = ticks.tick() => {
                metrics::counter!("slotcast_progress_acks_total").increment(1);
                if let Err(e) = message.ack_with(AckKind::Progress).await {
                    tracing::warn!(error = %e, "progress ack not sent");
                }
            }
        }
    }
}

async fn dead_letter(
    js: &JetStream,
    spec: &ConsumerSpec,
    delivery: &Delivery,
    reason: String,
    message: &jetstream::Message,
) -> Result<(), async_nats::Error> {
    tracing::error!(%reason, "dead-lettering message");
    let letter = DeadLetter {
        consumer: spec.durable.clone(),
        original_subject: delivery.subject.clone(),
        stream_sequence: delivery.stream_sequence,
        deliveries: delivery.deliveries,
        reason,
        payload: String::from_utf8_lossy(&delivery.payload).into_owned(),
    };
    let subject = format!("{}.{}", subjects::DEADLETTER_PREFIX, spec.durable);
    let id = format!(
        "{}-{}-{}",
        spec.stream, delivery.stream_sequence, spec.durable
    );
    let published = match serde_json::to_vec(&letter) {
        Ok(body) => crate::publish(js, &subject, &id, body).await,
        Err(e) => Err(e.into()),
    };
    match published {
        Ok(()) => {
            metrics::counter!("slotcast_dead_letters_total", "consumer" => spec.durable.clone())
                .increment(1);
            message.ack_with(AckKind::Term).await
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "dead letter not published; message handed back");
            message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                .await
        }
    }
}
