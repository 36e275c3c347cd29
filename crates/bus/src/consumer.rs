//! Durable pull consumers and the consume loop.
//!
//! A handler answers each message with an [`Outcome`]. `Done` acks. `Retry` naks with a delay,
//! until the message has been delivered `max_deliver` times; then, like `Reject`, it is
//! published to `slotcast.deadletter.<consumer>` with the reason and terminated, so the consumer
//! moves on. A dead letter that cannot be published is nak'ed instead: nothing is dropped.
//! While a handler works, the loop sends a progress ack every third of `ack_wait`, so only a
//! stopped process, never a slow one, gets its message delivered again.
//!
//! Two kinds of handler: a [`Handler`] answers one message at a time ([`run`]); a
//! [`BatchHandler`] gets what one pull has brought, up to a maximum ([`run_batches`]), and
//! answers each message of the batch on its own, so that a service can write a whole batch in
//! one transaction (group commit) and still ack, retry or dead-letter message by message. A
//! batch is never waited for: the loop takes the first message as soon as it comes and adds what
//! the client has already received, so a quiet consumer handles batches of one, a busy one
//! large batches. Progress acks, dead letters, hand-back on shutdown and redelivery are the same
//! for both kinds.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use async_nats::jetstream::{
    self, AckKind,
    consumer::{self, PullConsumer, pull::MessagesErrorKind},
};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use opentelemetry::trace::TraceContextExt as _;
use slotcast_events::{DeadLetter, subjects};
use slotcast_kit::retry::Backoff;
use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

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
    /// Not yet: something that must come first has not (an earlier event of the same order
    /// key). Delivered again after `delay`, however often; the handler decides when to stop.
    Wait { delay: Duration, reason: String },
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
    /// The message's W3C trace context (`traceparent`, `tracestate`), so that what a batch
    /// handler writes for this message continues its trace.
    pub trace: HashMap<String, String>,
    /// Its place among the events of its order key, if the producer stamped it.
    pub order: Option<crate::order::OrderStamp>,
}

/// Handles messages of one consumer, one at a time.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, delivery: &Delivery) -> impl Future<Output = Outcome> + Send;
}

/// Handles messages of one consumer a batch at a time.
///
/// The answer holds one [`Outcome`] per delivery, in the same order: each message is acked,
/// retried or dead-lettered on its own, whatever happened to the others. A handler must stay
/// idempotent message by message: any message of a batch may come again (a retry, a crash
/// before the acks, a redelivery in another batch, even twice in one batch).
pub trait BatchHandler: Send + Sync + 'static {
    fn handle_batch(&self, deliveries: &[Delivery]) -> impl Future<Output = Vec<Outcome>> + Send;
}

/// A [`Handler`] seen as a [`BatchHandler`] (the loop gives it batches of one).
struct OneByOne<H>(Arc<H>);

impl<H: Handler> BatchHandler for OneByOne<H> {
    async fn handle_batch(&self, deliveries: &[Delivery]) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            outcomes.push(self.0.handle(delivery).await);
        }
        outcomes
    }
}

/// A durable consumer's settings.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    pub stream: &'static str,
    pub durable: String,
    pub filter_subject: String,
    /// Deliveries after which a message still answered `Retry` is dead-lettered; 0 or less:
    /// never (the handler gives up itself, with `Reject`).
    pub max_deliver: i64,
    /// Longer than the slowest honest handler.
    pub ack_wait: Duration,
    /// How many messages are handled at once ([`run`]), or how many batches ([`run_batches`]).
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
            max_deliver: if self.max_deliver > 0 {
                self.max_deliver
            } else {
                -1
            },
            max_ack_pending: self.max_ack_pending.max(1),
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        }
    }
}

/// The client's default pull size; a batch consumer asks for at least its batch.
const PULL_BATCH: usize = 200;
/// Traces a batch's span links to (OpenTelemetry keeps 128 links a span by default).
const MAX_LINKS: usize = 128;

/// How long one pull request waits on the server. Short, because the server delivers into a
/// pull request until it expires even when its subscriber is gone (a stopped process).
const PULL_EXPIRES: Duration = Duration::from_secs(10);

/// Creates the durable consumer if it does not exist, and brings the settings a new version may
/// change (`max_ack_pending`, `ack_wait`, `max_deliver`) to the spec's if it does.
pub async fn ensure_consumer(js: &JetStream, spec: &ConsumerSpec) -> anyhow::Result<PullConsumer> {
    let stream = js
        .get_stream(spec.stream)
        .await
        .map_err(|e| anyhow::anyhow!("stream {} unavailable: {e}", spec.stream))?;
    let want = spec.config();
    let consumer: PullConsumer = stream
        .get_or_create_consumer(&spec.durable, want.clone())
        .await
        .map_err(|e| anyhow::anyhow!("consumer {} unavailable: {e}", spec.durable))?;
    let have = &consumer.cached_info().config;
    if have.max_ack_pending == want.max_ack_pending
        && have.ack_wait == want.ack_wait
        && have.max_deliver == want.max_deliver
    {
        return Ok(consumer);
    }
    // These three may be edited in place; a server that refuses keeps the old settings, which
    // work, only with smaller batches.
    match stream.create_consumer(want).await {
        Ok(updated) => {
            tracing::info!(consumer = %spec.durable, "consumer settings updated");
            Ok(updated)
        }
        Err(e) => {
            tracing::warn!(consumer = %spec.durable, error = %e, "consumer settings not updated; going on with the old ones");
            Ok(consumer)
        }
    }
}

/// Consumes until `shutdown` is cancelled, one message at a time per task (`spec.concurrency`
/// at once): then stops pulling, naks what was received but not started, finishes the messages
/// in hand, and returns. Errors never end it: the consumer is recreated after a pause.
pub async fn run<H: Handler>(
    js: JetStream,
    spec: ConsumerSpec,
    handler: Arc<H>,
    shutdown: CancellationToken,
) {
    consume(js, spec, 1, Arc::new(OneByOne(handler)), shutdown).await
}

/// Like [`run`], but hands the handler batches of up to `max_batch` messages (`spec.concurrency`
/// batches at once): the first message as soon as it comes, with what the client has already
/// received behind it. `spec.max_ack_pending` should leave room for the batches in hand.
pub async fn run_batches<H: BatchHandler>(
    js: JetStream,
    spec: ConsumerSpec,
    max_batch: usize,
    handler: Arc<H>,
    shutdown: CancellationToken,
) {
    consume(js, spec, max_batch.max(1), handler, shutdown).await
}

/// What the pull stream gave.
enum Next {
    Message(Box<jetstream::Message>),
    MissedHeartbeat,
    Failed(String),
    Ended,
}

impl Next {
    fn from(next: Option<Result<jetstream::Message, consumer::pull::MessagesError>>) -> Self {
        match next {
            Some(Ok(message)) => Next::Message(Box::new(message)),
            Some(Err(e)) if matches!(e.kind(), MessagesErrorKind::MissingHeartbeat) => {
                Next::MissedHeartbeat
            }
            Some(Err(e)) => Next::Failed(e.to_string()),
            None => Next::Ended,
        }
    }
}

async fn consume<H: BatchHandler>(
    js: JetStream,
    spec: ConsumerSpec,
    max_batch: usize,
    handler: Arc<H>,
    shutdown: CancellationToken,
) {
    let spec = Arc::new(spec);
    let limit = Arc::new(Semaphore::new(spec.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut pauses = Backoff::new(Duration::from_millis(200), Duration::from_secs(5)).attempts();
    // Ask the server for a batch's worth at a time, at least the client's default.
    let pull_batch = max_batch.max(PULL_BATCH);
    while !shutdown.is_cancelled() {
        let messages = match ensure_consumer(&js, &spec).await {
            Ok(c) => c
                .stream()
                .max_messages_per_batch(pull_batch)
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
                sleep_or_cancel(pauses.next_delay(), &shutdown).await;
                continue;
            }
        };
        loop {
            let permit = tokio::select! {
                p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = shutdown.cancelled() => break,
            };
            let next = tokio::select! {
                n = messages.next() => Next::from(n),
                _ = shutdown.cancelled() => break,
            };
            let mut after = None;
            if let Next::Message(first) = next {
                pauses.reset();
                // What the client already holds joins the batch; nothing is waited for.
                let mut batch = vec![*first];
                while batch.len() < max_batch {
                    match messages.next().now_or_never() {
                        None => break,
                        Some(n) => match Next::from(n) {
                            Next::Message(m) => batch.push(*m),
                            other => {
                                after = Some(other);
                                break;
                            }
                        },
                    }
                }
                let (js, spec, handler) = (js.clone(), spec.clone(), handler.clone());
                tasks.spawn(async move {
                    process(&js, &spec, &*handler, batch).await;
                    drop(permit);
                });
                while tasks.try_join_next().is_some() {}
            } else {
                after = Some(next);
            }
            match after {
                None | Some(Next::Message(_)) => {}
                Some(Next::MissedHeartbeat) => {
                    tracing::warn!(consumer = %spec.durable, "missed heartbeats, pulling again");
                }
                Some(Next::Failed(e)) => {
                    tracing::warn!(consumer = %spec.durable, error = %e, "consumer stream failed, recreating");
                    sleep_or_cancel(pauses.next_delay(), &shutdown).await;
                    break;
                }
                Some(Next::Ended) => {
                    // The server ended the pull stream: pull again after a pause, never in a tight loop.
                    sleep_or_cancel(pauses.upcoming(), &shutdown).await;
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

/// Hands `messages` to the handler as one batch and answers each with its own outcome.
async fn process<H: BatchHandler>(
    js: &JetStream,
    spec: &ConsumerSpec,
    handler: &H,
    messages: Vec<jetstream::Message>,
) {
    let mut held = Vec::with_capacity(messages.len());
    let mut deliveries = Vec::with_capacity(messages.len());
    for message in messages {
        // Without its metadata (never seen from a JetStream server) a message can be neither
        // ordered nor answered: leave it to `ack_wait`, never hand a handler a made-up sequence.
        match message.info() {
            Ok(info) => {
                deliveries.push(Delivery {
                    subject: message.subject.to_string(),
                    payload: message.payload.clone(),
                    deliveries: info.delivered,
                    stream_sequence: info.stream_sequence,
                    trace: trace_context(&message),
                    order: crate::order::OrderStamp::from_headers(message.headers.as_ref()),
                });
                held.push(message);
            }
            Err(e) => {
                tracing::error!(consumer = %spec.durable, error = %e, "message without JetStream metadata; left unanswered");
            }
        }
    }
    if deliveries.is_empty() {
        return;
    }
    let span = batch_span(spec, &deliveries);
    let started = tokio::time::Instant::now();
    let mut outcomes = with_progress(
        handler.handle_batch(&deliveries).instrument(span.clone()),
        &held,
        spec.ack_wait,
    )
    .await;
    let _enter = span.enter();
    let took = started.elapsed();
    metrics::histogram!("slotcast_consumer_batch_messages", "consumer" => spec.durable.clone())
        .record(deliveries.len() as f64);
    tracing::debug!(
        messages = deliveries.len(),
        took_ms = took.as_secs_f64() * 1000.0,
        "batch handled"
    );
    if outcomes.len() != deliveries.len() {
        // A handler bug; never ack what it did not answer.
        tracing::error!(
            outcomes = outcomes.len(),
            deliveries = deliveries.len(),
            "the handler answered a batch with the wrong number of outcomes"
        );
        outcomes.resize(
            deliveries.len(),
            Outcome::Retry {
                delay: Duration::from_secs(5),
                reason: "left unanswered by the handler".to_owned(),
            },
        );
    }
    let mut counts = [0u64; 4];
    let answering = tokio::time::Instant::now();
    for ((message, delivery), outcome) in held.iter().zip(&deliveries).zip(outcomes) {
        let i = match &outcome {
            Outcome::Done => 0,
            Outcome::Retry { .. } => 1,
            Outcome::Reject(_) => 2,
            Outcome::Wait { .. } => 3,
        };
        counts[i] += 1;
        answer(js, spec, message, delivery, outcome).await;
    }
    tracing::debug!(
        messages = deliveries.len(),
        took_ms = answering.elapsed().as_secs_f64() * 1000.0,
        "batch answered"
    );
    for (label, n) in ["done", "retry", "rejected", "waiting"]
        .into_iter()
        .zip(counts)
    {
        if n > 0 {
            metrics::counter!("slotcast_messages_total", "consumer" => spec.durable.clone(), "outcome" => label).increment(n);
        }
    }
}

/// The W3C trace context headers of `message`, keys in lower case.
fn trace_context(message: &jetstream::Message) -> HashMap<String, String> {
    let Some(headers) = &message.headers else {
        return HashMap::new();
    };
    headers
        .iter()
        .filter_map(|(k, vs)| {
            let key = k.to_string().to_ascii_lowercase();
            let wanted = key == "traceparent" || key == "tracestate";
            wanted.then(|| vs.first().map(|v| (key, v.to_string())))?
        })
        .collect()
}

/// The span a batch is handled in: a child of the message's trace for a batch of one; for
/// more, a span of its own linked to each message's trace.
fn batch_span(spec: &ConsumerSpec, deliveries: &[Delivery]) -> tracing::Span {
    if let [delivery] = deliveries {
        let span = tracing::info_span!("consume", consumer = %spec.durable, subject = %delivery.subject, seq = delivery.stream_sequence, deliveries = delivery.deliveries);
        slotcast_kit::telemetry::set_parent_from(
            &span,
            delivery.trace.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        return span;
    }
    let span = tracing::info_span!("consume_batch", consumer = %spec.durable, messages = deliveries.len(), first_seq = deliveries[0].stream_sequence);
    for delivery in deliveries.iter().take(MAX_LINKS) {
        // `trace` holds the message's W3C headers, keys in lower case (`trace_context`).
        let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&delivery.trace));
        let linked = cx.span().span_context().clone();
        if linked.is_valid() {
            span.add_link(linked);
        }
    }
    span
}

/// Acks, naks or dead-letters one message according to its outcome.
async fn answer(
    js: &JetStream,
    spec: &ConsumerSpec,
    message: &jetstream::Message,
    delivery: &Delivery,
    outcome: Outcome,
) {
    let ack = match outcome {
        Outcome::Done => message.ack().await,
        Outcome::Wait { delay, reason } => {
            tracing::debug!(seq = delivery.stream_sequence, deliveries = delivery.deliveries, %reason, "not yet, will come again");
            message.ack_with(AckKind::Nak(Some(delay))).await
        }
        Outcome::Retry { delay, reason }
            if spec.max_deliver <= 0 || delivery.deliveries < spec.max_deliver =>
        {
            tracing::warn!(seq = delivery.stream_sequence, deliveries = delivery.deliveries, %reason, "handler failed, will retry");
            message.ack_with(AckKind::Nak(Some(delay))).await
        }
        Outcome::Retry { reason, .. } => {
            let reason = format!("gave up after {} deliveries: {reason}", delivery.deliveries);
            dead_letter(js, spec, delivery, reason, message).await
        }
        Outcome::Reject(reason) => dead_letter(js, spec, delivery, reason, message).await,
    };
    if let Err(e) = ack {
        tracing::warn!(seq = delivery.stream_sequence, error = %e, "could not answer the message; it will be redelivered");
    }
}

/// Runs `work`, telling the server every third of `ack_wait` that the messages are still in
/// hand, so a slow but honest handler (an SMTP server taking its time) never sees its messages
/// delivered a second time. Only a process that has stopped stops the progress acks.
async fn with_progress<F: Future>(
    work: F,
    messages: &[jetstream::Message],
    ack_wait: Duration,
) -> F::Output {
    let every = (ack_wait / 3).max(Duration::from_millis(100));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            outcome = &mut work => return outcome,
            _ = ticks.tick() => {
                metrics::counter!("slotcast_progress_acks_total").increment(messages.len() as u64);
                for message in messages {
                    if let Err(e) = message.ack_with(AckKind::Progress).await {
                        tracing::warn!(error = %e, "progress ack not sent");
                    }
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
