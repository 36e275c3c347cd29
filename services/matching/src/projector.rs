//! The projector: applies scheduling events to matching's projection ([`crate::apply`]), many
//! practitioners at once.
//!
//! A pulled batch is split into [`LANES`] lanes by order key, applied at once. A lane applies
//! its events up to [`PER_TRANSACTION`] to a transaction, each key's in the order of its stamps
//! ([`crate::fence`]): the projection change, the openings it settles and the key's progress
//! commit or roll back together, so a redelivered event finds its work done and
//! changes nothing, and an event whose predecessor is not applied yet waits for it.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, TransactionTrait};
use slotcast_bus::{
    consumer::{BatchHandler, Delivery, Outcome},
    order::OrderStamp,
};
use slotcast_events::{CloudEvent, DecodeError, SlotCreated};
use slotcast_kit::retry::Backoff;
use tracing::Instrument as _;

use crate::{
    apply::{apply, slots_created},
    fence::{self, Gate},
    inbox::Input,
    passes::Wakers,
    policy::PolicyConfig,
    projection::current_trace,
};

/// Applies scheduling events to the projection and settles the openings they complete.
pub struct Projector {
    pub db: DatabaseConnection,
    pub policy: PolicyConfig,
    pub wakers: Wakers,
}

/// A batch of messages, decoded, each with its order stamp.
struct Batch<'a> {
    deliveries: &'a [Delivery],
    inputs: Vec<Result<Input, DecodeError>>,
}

impl BatchHandler for Projector {
    /// Splits the batch into [`LANES`] lanes by order key, so one key's events in a batch are
    /// applied by one transaction after another, in order, and applies the lanes at once.
    async fn handle_batch(&self, deliveries: &[Delivery]) -> Vec<Outcome> {
        let batch = Batch {
            deliveries,
            inputs: deliveries
                .iter()
                .map(|d| Input::decode(&d.subject, &d.payload))
                .collect(),
        };
        // SQLite's one connection would only queue the lanes: one lane there.
        let count = if self.db.get_database_backend() == DbBackend::Sqlite {
            1
        } else {
            LANES
        };
        let mut lanes: Vec<Vec<usize>> = vec![Vec::new(); count];
        for (i, d) in deliveries.iter().enumerate() {
            // Unstamped messages share lane 0, so they too are applied in the order they came.
            let lane = d
                .order
                .map_or(0, |s| (s.key.as_u128() % count as u128) as usize);
            lanes[lane].push(i);
        }
        let answered = futures::future::join_all(
            lanes
                .iter_mut()
                .filter(|lane| !lane.is_empty())
                .map(|lane| self.apply_lane(&batch, lane)),
        )
        .await;
        let mut outcomes: Vec<Option<Outcome>> = vec![None; deliveries.len()];
        for (i, outcome) in answered.into_iter().flatten() {
            outcomes[i] = Some(outcome);
        }
        outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| Outcome::Retry {
                    delay: Duration::from_secs(1),
                    reason: "left unanswered".to_owned(),
                })
            })
            .collect()
    }
}

/// Lanes a batch is applied in at once (each a transaction at a time).
pub const LANES: usize = 4;
/// How long a lane holds messages that wait for an earlier event of their key.
const HOLD_AT_MOST: Duration = Duration::from_secs(1);
/// The pauses between a lane's tries of the messages it holds.
const HOLD_PAUSE: Backoff = Backoff::new(Duration::from_millis(5), Duration::from_millis(100));
/// When a message whose key waits for an earlier event is delivered again.
const WAIT_RETRY: Backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(500));
/// When a message that failed to apply is delivered again.
const FAILED_RETRY: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
/// Messages applied in one transaction at most.
const PER_TRANSACTION: usize = 64;

/// Deliveries of a message that fails to apply before it is dead-lettered; the deliveries in
/// which it waited for an earlier event count too, hence more than the 20 of other consumers.
const GIVE_UP_AFTER: i64 = 50;
/// Deliveries of a message that waits for an earlier event of its key before it is applied
/// anyway (the earlier one is lost: the stream no longer holds it, say), with an error logged.
const WAIT_AT_MOST: i64 = 600;

impl Projector {
    /// Applies one lane's messages, [`PER_TRANSACTION`] to a transaction, each key's in its
    /// order. Messages whose key waits for an earlier event (being applied by another batch or
    /// replica, most often) are held and tried again for up to [`HOLD_AT_MOST`] before they are
    /// handed back, so a key split between two pulls is applied in order within milliseconds.
    async fn apply_lane(&self, batch: &Batch<'_>, lane: &mut [usize]) -> Vec<(usize, Outcome)> {
        lane.sort_by_key(|&i| order_of(batch.deliveries, i));
        let mut answered = Vec::with_capacity(lane.len());
        let mut held = self.apply_chunks(batch, lane, &mut answered).await;
        let started = tokio::time::Instant::now();
        let mut pauses = HOLD_PAUSE.attempts();
        while !held.is_empty() && started.elapsed() < HOLD_AT_MOST {
            tokio::time::sleep(pauses.next_delay()).await;
            let waiting: Vec<usize> = held.iter().map(|(i, _)| *i).collect();
            held = self.apply_chunks(batch, &waiting, &mut answered).await;
        }
        answered.extend(held);
        answered
    }

    /// Applies `which` in transactions of [`PER_TRANSACTION`], answering into `answered`;
    /// returns the messages that wait for an earlier event of their key. A transaction that
    /// fails is tried again message by message, so a message that cannot be applied holds back
    /// only itself (and its key's later events).
    async fn apply_chunks(
        &self,
        batch: &Batch<'_>,
        which: &[usize],
        answered: &mut Vec<(usize, Outcome)>,
    ) -> Vec<(usize, Outcome)> {
        let mut outcomes = Vec::with_capacity(which.len());
        for chunk in which.chunks(PER_TRANSACTION) {
            match self.apply_together(batch, chunk).await {
                Ok(applied) => outcomes.extend(applied),
                Err(e) => {
                    tracing::warn!(error = %e, messages = chunk.len(), "batch not applied; applying its messages one by one");
                    for &i in chunk {
                        let outcome = match self.apply_together(batch, &[i]).await {
                            Ok(mut one) => one.remove(0).1,
                            Err(e) => self.failed(&batch.deliveries[i], e).await,
                        };
                        outcomes.push((i, outcome));
                    }
                }
            }
        }
        let (held, done): (Vec<_>, Vec<_>) = outcomes
            .into_iter()
            .partition(|(_, o)| matches!(o, Outcome::Wait { .. }));
        answered.extend(done);
        held
    }

    /// Applies the messages `which` of `batch` in one transaction, one order key's in its order
    /// and keys in sorted order (so two replicas lock keys in one order), and answers each.
    async fn apply_together(
        &self,
        batch: &Batch<'_>,
        which: &[usize],
    ) -> Result<Vec<(usize, Outcome)>, DbErr> {
        let mut order: Vec<usize> = which.to_vec();
        order.sort_by_key(|&i| order_of(batch.deliveries, i));
        let mut outcomes: Vec<(usize, Outcome)> = Vec::with_capacity(order.len());
        let mut held_back = std::collections::HashSet::new();
        let mut decided = 0;
        let mut created = Vec::new();
        let txn = self.db.begin().await?;
        for i in order {
            let delivery = &batch.deliveries[i];
            if let Some(stamp) = delivery.order {
                if held_back.contains(&stamp.key) {
                    outcomes.push((i, wait(delivery, "an earlier event of its key waits")));
                    continue;
                }
                match fence::advance(&txn, stamp).await? {
                    Gate::Next => {}
                    Gate::Done => {
                        outcomes.push((i, Outcome::Done));
                        continue;
                    }
                    Gate::Early { applied } if delivery.deliveries < WAIT_AT_MOST => {
                        held_back.insert(stamp.key);
                        let why = format!("event {} of its key comes after {applied}", stamp.seq);
                        outcomes.push((i, wait(delivery, &why)));
                        continue;
                    }
                    Gate::Early { applied } => {
                        metrics::counter!("slotcast_matching_order_gaps_total").increment(1);
                        tracing::error!(key = %stamp.key, seq = stamp.seq, applied, "earlier events of this key never came; applying this one anyway");
                        fence::skip_to(&txn, stamp).await?;
                    }
                }
            }
            match &batch.inputs[i] {
                // New slots wait to be applied together, until an event of another kind comes.
                Ok(Input::SlotCreated(ev)) => {
                    let trace = apply_span(delivery).in_scope(current_trace);
                    created.push((ev.clone(), trace));
                    outcomes.push((i, Outcome::Done));
                }
                Ok(input) => {
                    decided += self.apply_created(&txn, &mut created).await?;
                    // The decision's offers continue the trace of the event, not of the batch.
                    decided += apply(&txn, &self.policy, input.clone())
                        .instrument(apply_span(delivery))
                        .await?;
                    outcomes.push((i, Outcome::Done));
                }
                // Its key's progress moves past it all the same: it can never be applied.
                Err(e) => outcomes.push((i, Outcome::Reject(e.to_string()))),
            }
        }
        decided += self.apply_created(&txn, &mut created).await?;
        txn.commit().await?;
        if decided > 0 {
            self.wakers.dispatch.notify_one();
            self.wakers.waves.notify_one();
        }
        Ok(outcomes)
    }

    /// Applies the new slots gathered so far, together ([`slots_created`]), and empties `created`.
    async fn apply_created<C: ConnectionTrait>(
        &self,
        txn: &C,
        created: &mut Vec<(CloudEvent<SlotCreated>, String)>,
    ) -> Result<usize, DbErr> {
        if created.is_empty() {
            return Ok(0);
        }
        let span = tracing::info_span!("apply slot.created", events = created.len());
        slots_created(txn, &self.policy, std::mem::take(created))
            .instrument(span)
            .await
    }

    /// The answer to a message that failed to apply on its own: again later, or, after
    /// [`GIVE_UP_AFTER`] deliveries (waits included), dead-lettered with its key's progress
    /// moved past it, once every earlier event of its key is applied.
    async fn failed(&self, delivery: &Delivery, e: DbErr) -> Outcome {
        let e = anyhow::Error::from(e);
        if delivery.deliveries < GIVE_UP_AFTER {
            return Outcome::retry(FAILED_RETRY.delay(delivery.deliveries), &e);
        }
        if let Some(stamp) = delivery.order {
            match fence::pass(&self.db, stamp).await {
                Ok(true) => {}
                // An earlier event of its key is still to come: dead-lettering this one now
                // would let that one be taken for done.
                Ok(false) => {
                    return wait(delivery, "failing, and an earlier event of its key waits");
                }
                Err(pass_failed) => {
                    return Outcome::retry(
                        Duration::from_secs(30),
                        &anyhow::Error::from(pass_failed),
                    );
                }
            }
        }
        Outcome::Reject(format!(
            "gave up after {} deliveries: {e:#}",
            delivery.deliveries
        ))
    }
}

/// The span an event is applied in: it continues the event's trace, not the batch's.
fn apply_span(delivery: &Delivery) -> tracing::Span {
    let span =
        tracing::info_span!("apply", subject = %delivery.subject, seq = delivery.stream_sequence);
    slotcast_kit::telemetry::set_parent_from(
        &span,
        delivery.trace.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    span
}

/// Stamped messages by key and number; unstamped ones after them, as they came.
fn order_of(deliveries: &[Delivery], i: usize) -> (bool, Option<OrderStamp>, usize) {
    (deliveries[i].order.is_none(), deliveries[i].order, i)
}

/// Asks for `delivery` again soon: 20 ms after its first delivery, doubling to half a second.
fn wait(delivery: &Delivery, why: &str) -> Outcome {
    Outcome::Wait {
        delay: WAIT_RETRY.delay(delivery.deliveries),
        reason: why.to_owned(),
    }
}
