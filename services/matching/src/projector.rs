//! The projector: applies scheduling events to matching's projection and decides the openings
//! they complete ([`crate::projection::decide`]).
//!
//! A pulled batch is split into [`LANES`] lanes by order key, applied at once. A lane applies
//! its events up to [`PER_TRANSACTION`] to a transaction, each key's in the order of its stamps
//! ([`crate::fence`]): the projection change, the pending offers it decides and the key's
//! progress commit or roll back together, so a redelivered event finds its work done and
//! changes nothing, and an event whose predecessor is not applied yet waits for it.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QuerySelect, Set, TransactionTrait,
    sea_query::{Expr, OnConflict},
};
use slotcast_bus::{
    consumer::{BatchHandler, Delivery, Outcome},
    order::OrderStamp,
};
use slotcast_events::{CloudEvent, DecodeError, OfferPolicy, ReleaseReason};
use uuid::Uuid;

use crate::{
    entities::{entry, history, opening, opening_slot, patient, practitioner, slot},
    fence::{self, Gate},
    inbox::Input,
    passes::Wakers,
    policy::PolicyConfig,
    projection::decide,
    vocabulary::{HistoryKind, SlotStatus},
};

/// Applies scheduling events to the projection and decides the openings they complete.
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
    /// Splits the batch into [`LANES`] lanes by order key, so one key's events are never
    /// applied by two transactions of this replica at once, and applies the lanes at once.
    async fn handle_batch(&self, deliveries: &[Delivery]) -> Vec<Outcome> {
        let batch = Batch {
            deliveries,
            inputs: deliveries
                .iter()
                .map(|d| Input::decode(&d.subject, &d.payload))
                .collect(),
        };
        let mut lanes: Vec<Vec<usize>> = vec![Vec::new(); LANES];
        for (i, d) in deliveries.iter().enumerate() {
            // Unstamped messages share lane 0, so they too are applied in the order they came.
            let lane = d
                .order
                .map_or(0, |s| (s.key.as_u128() % LANES as u128) as usize);
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
/// Messages applied in one transaction at most.
const PER_TRANSACTION: usize = 64;

/// Deliveries of a message that fails to apply before it is dead-lettered.
const GIVE_UP_AFTER: i64 = 20;
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
        let mut pause = Duration::from_millis(5);
        while !held.is_empty() && started.elapsed() < HOLD_AT_MOST {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
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
                        fence::pass(&txn, stamp).await?;
                    }
                }
            }
            match &batch.inputs[i] {
                Ok(input) => {
                    decided += self.apply(&txn, input).await?;
                    outcomes.push((i, Outcome::Done));
                }
                // Its key's progress moves past it all the same: it can never be applied.
                Err(e) => outcomes.push((i, Outcome::Reject(e.to_string()))),
            }
        }
        txn.commit().await?;
        if decided > 0 {
            self.wakers.dispatch.notify_one();
            self.wakers.waves.notify_one();
        }
        Ok(outcomes)
    }

    /// The answer to a message that failed to apply on its own: again later, or, after
    /// [`GIVE_UP_AFTER`] deliveries, dead-lettered with its key's progress moved past it.
    async fn failed(&self, delivery: &Delivery, e: DbErr) -> Outcome {
        let e = anyhow::Error::from(e);
        if delivery.deliveries < GIVE_UP_AFTER {
            let backoff =
                Duration::from_millis(250) * 2u32.pow(delivery.deliveries.clamp(1, 8) as u32 - 1);
            return Outcome::retry(backoff.min(Duration::from_secs(30)), &e);
        }
        if let Some(stamp) = delivery.order
            && let Err(pass_failed) = fence::pass(&self.db, stamp).await
        {
            // Not given up yet: the key's later events would wait for it.
            return Outcome::retry(Duration::from_secs(30), &anyhow::Error::from(pass_failed));
        }
        Outcome::Reject(format!(
            "gave up after {} deliveries: {e:#}",
            delivery.deliveries
        ))
    }
}

/// Stamped messages by key and number; unstamped ones after them, as they came.
fn order_of(deliveries: &[Delivery], i: usize) -> (bool, Option<OrderStamp>, usize) {
    (deliveries[i].order.is_none(), deliveries[i].order, i)
}

/// Asks for `delivery` again soon: 20 ms after its first delivery, doubling to half a second.
fn wait(delivery: &Delivery, why: &str) -> Outcome {
    let delay = Duration::from_millis(20) * 2u32.pow(delivery.deliveries.clamp(1, 6) as u32 - 1);
    Outcome::Wait {
        delay: delay.min(Duration::from_millis(500)),
        reason: why.to_owned(),
    }
}

/// `ON CONFLICT (columns) DO UPDATE SET update...`: the newest registration wins.
fn upsert<C: sea_orm::sea_query::IntoIden>(
    columns: impl IntoIterator<Item = C>,
    update: impl IntoIterator<Item = C>,
) -> OnConflict {
    OnConflict::columns(columns)
        .update_columns(update)
        .to_owned()
}

impl Projector {
    /// Applies one event on `txn`; returns how many offers (or wave timers) it decided.
    async fn apply<C: ConnectionTrait>(&self, txn: &C, input: &Input) -> Result<usize, DbErr> {
        Ok(match input.clone() {
            Input::PractitionerRegistered(ev) => {
                let e = ev.data;
                practitioner::Entity::insert(practitioner::ActiveModel {
                    id: Set(e.practitioner_id),
                    name: Set(e.name),
                    specialty: Set(e.specialty),
                    timezone: Set(e.timezone),
                    consultation_fee_cents: Set(e.consultation_fee_cents),
                    currency: Set(e.currency),
                })
                .on_conflict(upsert(
                    [practitioner::Column::Id],
                    [
                        practitioner::Column::Name,
                        practitioner::Column::Specialty,
                        practitioner::Column::Timezone,
                        practitioner::Column::ConsultationFeeCents,
                        practitioner::Column::Currency,
                    ],
                ))
                .exec_without_returning(txn)
                .await?;
                0
            }
            Input::PatientRegistered(ev) => {
                let e = ev.data;
                patient::Entity::insert(patient::ActiveModel {
                    id: Set(e.patient_id),
                    name: Set(e.name),
                    email: Set(e.email),
                    locale: Set(e.locale),
                    timezone: Set(e.timezone),
                    email_enabled: Set(true),
                    inapp_enabled: Set(true),
                })
                .on_conflict(upsert(
                    [patient::Column::Id],
                    [
                        patient::Column::Name,
                        patient::Column::Email,
                        patient::Column::Locale,
                        patient::Column::Timezone,
                    ],
                ))
                .exec_without_returning(txn)
                .await?;
                0
            }
            Input::PatientPreferencesChanged(ev) => {
                let e = ev.data;
                patient::Entity::update_many()
                    .col_expr(patient::Column::EmailEnabled, Expr::value(e.email))
                    .col_expr(patient::Column::InappEnabled, Expr::value(e.inapp))
                    .filter(patient::Column::Id.eq(e.patient_id))
                    .exec(txn)
                    .await?;
                0
            }
            Input::WaitlistUpdated(ev) => {
                let e = ev.data;
                entry::Entity::update_many()
                    .col_expr(entry::Column::Priority, Expr::value(e.priority.as_str()))
                    .col_expr(entry::Column::ExpiresAt, Expr::value(e.expires_at))
                    .filter(entry::Column::Id.eq(e.entry_id))
                    .exec(txn)
                    .await?;
                0
            }
            Input::WaitlistJoined(ev) => {
                let e = ev.data;
                entry::Entity::insert(entry::ActiveModel {
                    id: Set(e.entry_id),
                    patient_id: Set(e.patient_id),
                    practitioner_id: Set(e.practitioner_id),
                    kind: Set(e.kind.as_str().to_owned()),
                    held_starts_at: Set(e.held_starts_at),
                    earliest: Set(e.earliest),
                    latest: Set(e.latest),
                    active: Set(true),
                    joined_at: Set(e.joined_at),
                    priority: Set(e.priority.as_str().to_owned()),
                    expires_at: Set(e.expires_at),
                })
                .on_conflict_do_nothing_on([entry::Column::Id])
                .exec_without_returning(txn)
                .await?;
                0
            }
            Input::WaitlistClosed(ev) => {
                let e = ev.data;
                entry::Entity::update_many()
                    .col_expr(entry::Column::Active, Expr::value(false))
                    .filter(entry::Column::Id.eq(e.entry_id))
                    .exec(txn)
                    .await?;
                0
            }
            Input::SlotCreated(ev) => {
                let slot_id = ev.data.slot_id;
                record(txn, &ev, slot_id, HistoryKind::Published, None, None, None).await?;
                let e = ev.data;
                // A redelivered `created` must not reopen a slot booked since: insert only.
                slot::Entity::insert(slot::ActiveModel {
                    id: Set(e.slot_id),
                    practitioner_id: Set(e.practitioner_id),
                    starts_at: Set(e.starts_at),
                    ends_at: Set(e.ends_at),
                    status: Set(SlotStatus::Open),
                    released_by: Set(None),
                })
                .on_conflict_do_nothing_on([slot::Column::Id])
                .exec_without_returning(txn)
                .await?;
                let opening = Opening {
                    batch_id: e.batch_id,
                    practitioner_id: e.practitioner_id,
                    size: e.batch_size,
                    policy: e.offer_policy,
                };
                self.add_to_opening(txn, &opening, e.slot_id).await?
            }
            Input::SlotReleased(ev) => {
                let reason = match ev.data.reason {
                    ReleaseReason::Cancelled => "cancelled",
                    ReleaseReason::MovedUp => "moved_up",
                };
                let (slot_id, by) = (ev.data.slot_id, ev.data.released_by);
                record(
                    txn,
                    &ev,
                    slot_id,
                    HistoryKind::Released,
                    by,
                    None,
                    Some(reason),
                )
                .await?;
                let e = ev.data;
                slot::Entity::insert(slot::ActiveModel {
                    id: Set(e.slot_id),
                    practitioner_id: Set(e.practitioner_id),
                    starts_at: Set(e.starts_at),
                    ends_at: Set(e.ends_at),
                    status: Set(SlotStatus::Open),
                    released_by: Set(e.released_by),
                })
                .on_conflict(upsert(
                    [slot::Column::Id],
                    [slot::Column::Status, slot::Column::ReleasedBy],
                ))
                .exec_without_returning(txn)
                .await?;
                let opening = Opening {
                    batch_id: e.batch_id,
                    practitioner_id: e.practitioner_id,
                    size: e.batch_size,
                    policy: e.offer_policy,
                };
                self.add_to_opening(txn, &opening, e.slot_id).await?
            }
            Input::SlotBooked(ev) => {
                let (slot_id, by) = (ev.data.slot_id, Some(ev.data.patient_id));
                record(txn, &ev, slot_id, HistoryKind::Booked, by, None, None).await?;
                let e = ev.data;
                set_slot_status(txn, e.slot_id, SlotStatus::Booked).await?;
                0
            }
            Input::SlotWithdrawn(ev) => {
                let slot_id = ev.data.slot_id;
                record(txn, &ev, slot_id, HistoryKind::Withdrawn, None, None, None).await?;
                let e = ev.data;
                set_slot_status(txn, e.slot_id, SlotStatus::Withdrawn).await?;
                0
            }
            Input::OfferClaimed(ev) => {
                let e = &ev.data;
                let (slot_id, patient, nid) = (e.slot_id, e.patient_id, e.notification_id);
                let (patient, nid) = (Some(patient), Some(nid));
                record(txn, &ev, slot_id, HistoryKind::Claimed, patient, nid, None).await?;
                0
            }
            Input::OfferLost(ev) => {
                let e = &ev.data;
                let (slot_id, patient, nid) = (e.slot_id, e.patient_id, e.notification_id);
                let reason = Some(e.reason.as_str());
                let (patient, nid) = (Some(patient), Some(nid));
                record(txn, &ev, slot_id, HistoryKind::Lost, patient, nid, reason).await?;
                0
            }
            Input::Ignored => 0,
        })
    }

    /// Records that `slot_id` belongs to opening `batch_id`; once every slot of the opening is
    /// there, decides it. The opening row is locked first, so two replicas handling slots of one
    /// batch at once neither both decide nor both miss the last slot.
    async fn add_to_opening<C: ConnectionTrait>(
        &self,
        conn: &C,
        o: &Opening,
        slot_id: Uuid,
    ) -> Result<usize, DbErr> {
        let (batch_id, practitioner_id) = (o.batch_id, o.practitioner_id);
        opening::Entity::insert(opening::ActiveModel {
            batch_id: Set(batch_id),
            practitioner_id: Set(practitioner_id),
            expected: Set(i32::try_from(o.size).unwrap_or(i32::MAX)),
            decided_at: Set(None),
            policy: Set(o.policy.as_str().to_owned()),
        })
        .on_conflict_do_nothing_on([opening::Column::BatchId])
        .exec_without_returning(conn)
        .await?;
        let mut lock = opening::Entity::find_by_id(batch_id);
        if conn.get_database_backend() == DbBackend::Postgres {
            lock = lock.lock_exclusive();
        }
        let Some(open) = lock.one(conn).await? else {
            return Err(DbErr::RecordNotFound(format!("opening {batch_id}")));
        };
        opening_slot::Entity::insert(opening_slot::ActiveModel {
            batch_id: Set(batch_id),
            slot_id: Set(slot_id),
        })
        .on_conflict_do_nothing_on([opening_slot::Column::BatchId, opening_slot::Column::SlotId])
        .exec_without_returning(conn)
        .await?;
        if open.decided_at.is_some() {
            return Ok(0);
        }
        let slot_ids: Vec<Uuid> = opening_slot::Entity::find()
            .filter(opening_slot::Column::BatchId.eq(batch_id))
            .all(conn)
            .await?
            .into_iter()
            .map(|s| s.slot_id)
            .collect();
        if (slot_ids.len() as i64) < i64::from(open.expected) {
            return Ok(0);
        }
        opening::Entity::update_many()
            .col_expr(opening::Column::DecidedAt, Expr::value(Utc::now()))
            .filter(opening::Column::BatchId.eq(batch_id))
            .exec(conn)
            .await?;
        let policy = OfferPolicy::parse(&open.policy).unwrap_or_default();
        decide(
            conn,
            &self.policy,
            practitioner_id,
            batch_id,
            &slot_ids,
            policy,
        )
        .await
    }
}

/// An opening as a slot event describes it.
struct Opening {
    batch_id: Uuid,
    practitioner_id: Uuid,
    size: u32,
    policy: OfferPolicy,
}

/// Adds `event` to the history of `slot_id`, once (keyed by the event id).
async fn record<C: ConnectionTrait, T>(
    conn: &C,
    event: &CloudEvent<T>,
    slot_id: Uuid,
    kind: HistoryKind,
    patient_id: Option<Uuid>,
    notification_id: Option<Uuid>,
    reason: Option<&str>,
) -> Result<(), DbErr> {
    history::Entity::insert(history::ActiveModel {
        event_id: Set(event.id),
        slot_id: Set(slot_id),
        at: Set(event.time),
        kind: Set(kind),
        patient_id: Set(patient_id),
        notification_id: Set(notification_id),
        reason: Set(reason.map(str::to_owned)),
    })
    .on_conflict_do_nothing_on([history::Column::EventId])
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

async fn set_slot_status<C: ConnectionTrait>(
    conn: &C,
    slot_id: Uuid,
    status: SlotStatus,
) -> Result<(), DbErr> {
    slot::Entity::update_many()
        .col_expr(slot::Column::Status, Expr::value(status))
        .filter(slot::Column::Id.eq(slot_id))
        .exec(conn)
        .await?;
    Ok(())
}
