//! The `waves` policy: an opening is offered to the first `WAVE_SIZE` patients in the fair
//! order for each of its slots, with the slots held for them; when the hold ends unclaimed, the
//! next ones are told, until a slot is taken or the list runs out.
//!
//! Each opening's timer is a `waves` row (`due_at`, `next_wave`) in matching's database, so it
//! survives restarts. A due wave is advanced in three steps:
//! 1. **plan**, under a transaction-scoped advisory lock (one runner at a time across replicas),
//!    reading only: the opening's slots still open (a slot that has since opened again in a
//!    newer opening belongs to that one), and for each of them the next `WAVE_SIZE` patients
//!    who fit it, skipping expired entries, patients who opted out of both channels and patients
//!    at their daily cap;
//! 2. **hold**, with no transaction open: scheduling holds the slots some member was told about
//!    for everyone told so far (`PUT /v1/holds/{id}`, the id derived from the opening and the
//!    wave number, so doing it again after a crash places the same hold); a patient of an
//!    earlier wave can still book, nobody else can;
//! 3. **apply**, under the lock again and only if the timer still stands at that wave: the
//!    wave's members and offers (`pending`, due at once; the dispatcher sends them), and the
//!    timer moved to the end of the hold. Two replicas that planned the same wave apply it once.
//!
//! The next wave is placed a little before the hold ends (a tenth of the hold, at most
//! `OVERLAP`), so a slot is not open to everyone in between. When nobody is left the timer stops
//! and the holds are released, so the slots are open to all; when the slots were taken or
//! withdrawn it just stops. A hold scheduling refuses (4xx) stops the opening's waves too.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait, sea_query::Expr,
};
use slotcast_events::ID_NAMESPACE;
use slotcast_kit::retry::Backoff;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::{
    eligibility::{self, Cap, Verdict},
    entities::{considered, opening, opening_slot, pending, told, wave, wave_member},
    fit,
    holds::{HoldError, Holds},
    passes::{Wakers, run_passes},
    policy::PolicyConfig,
    projection::{
        Candidate, candidates, channels, continuing, current_trace, insert_new, open_slots,
        record_considered, sent_today,
    },
    vocabulary::{Outcome, Reason, SlotStatus, WaveStatus},
};

/// The advisory lock key of the wave runner (one per database).
const WAVES_LOCK: i64 = 0x5107_ca57_3a7e;
const TICK: Duration = Duration::from_millis(250);
/// When a wave whose hold scheduling did not take is tried again.
const HOLD_RETRY: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(32));
/// Openings advanced per transaction.
const PER_PASS: u64 = 20;
/// The next wave's hold is placed up to this long before the current one ends (a tenth of the
/// hold at most), so the slots are not open to everyone in between.
const OVERLAP: chrono::Duration = chrono::Duration::seconds(30);

/// What a failed attempt at a wave leaves: scheduling could not be reached (retried with
/// backoff), or the database failed (retried on the next pass).
#[derive(Debug, thiserror::Error)]
enum WaveError {
    #[error("scheduling did not answer: {0:#}")]
    Hold(anyhow::Error),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// What a due wave comes to.
enum Plan {
    /// Stop the waves (`why`), releasing these holds first. `take_over`: slots still under
    /// scheduling's pre-hold (no wave placed yet), to take over and release, so they are not
    /// kept from everyone until it lapses.
    Stop {
        why: Reason,
        release: Vec<Uuid>,
        take_over: Vec<Uuid>,
    },
    Wave(Box<WavePlan>),
}

struct WavePlan {
    number: i32,
    hold_id: Uuid,
    until: DateTime<Utc>,
    next_due: DateTime<Utc>,
    /// The slots to hold, and everyone told so far plus this wave.
    slot_ids: Vec<Uuid>,
    members: Vec<Uuid>,
    /// This wave's patients, each with the slots offered to them.
    chosen: Vec<(Candidate, Vec<Uuid>)>,
    skipped: Vec<considered::ActiveModel>,
    waiting: Vec<considered::ActiveModel>,
}

/// What the waves need of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavePolicy {
    /// Patients told per slot and wave.
    pub size: u32,
    /// The bounds of a wave's hold.
    pub hold_min: Duration,
    pub hold_max: Duration,
    /// Availability messages a patient gets in any 24 hours (0: no cap).
    pub daily_cap: u32,
}

impl From<&PolicyConfig> for WavePolicy {
    fn from(p: &PolicyConfig) -> Self {
        Self {
            size: p.wave_size,
            hold_min: p.hold_min,
            hold_max: p.hold_max,
            daily_cap: p.daily_cap,
        }
    }
}

/// Runs the waves of openings offered under the `waves` policy.
pub struct WaveRunner {
    db: DatabaseConnection,
    /// Scheduling's hold API.
    holds: Holds,
    policy: WavePolicy,
    wakers: Wakers,
}

impl WaveRunner {
    pub fn new(db: DatabaseConnection, holds: Holds, policy: WavePolicy, wakers: Wakers) -> Self {
        Self {
            db,
            holds,
            policy,
            wakers,
        }
    }

    /// Advances due waves until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let full = usize::try_from(PER_PASS).unwrap_or(usize::MAX);
        run_passes(
            "advancing waves",
            "slotcast_matching_wave_failures_total",
            &self.wakers.waves,
            TICK,
            full,
            shutdown,
            || self.run_once(),
            || self.next_wave_due(),
        )
        .await;
    }

    /// When the next wave of a running opening falls due.
    pub async fn next_wave_due(&self) -> Result<Option<DateTime<Utc>>, DbErr> {
        wave::Entity::find()
            .select_only()
            .column_as(wave::Column::DueAt.min(), "due")
            .filter(wave::Column::Status.eq(WaveStatus::Running))
            .into_tuple::<Option<DateTime<Utc>>>()
            .one(&self.db)
            .await
            .map(Option::flatten)
    }

    /// Advances every opening whose wave is due (up to a pass's worth); returns how many it
    /// looked at.
    pub async fn run_once(&self) -> Result<usize, DbErr> {
        let now = Utc::now();
        let due = wave::Entity::find()
            .filter(wave::Column::Status.eq(WaveStatus::Running))
            .filter(wave::Column::DueAt.lte(now))
            .order_by_asc(wave::Column::DueAt)
            .limit(PER_PASS)
            .all(&self.db)
            .await?;
        for w in &due {
            let span = continuing(&w.trace, "wave");
            match self.advance(w.batch_id).instrument(span).await {
                Ok(()) => {}
                Err(WaveError::Hold(e)) => {
                    let attempts = w.attempts.saturating_add(1);
                    let backoff = chrono::Duration::from_std(HOLD_RETRY.delay(attempts.into()))
                        .unwrap_or(chrono::Duration::MAX);
                    metrics::counter!("slotcast_matching_hold_failures_total").increment(1);
                    tracing::warn!(batch_id = %w.batch_id, wave = w.next_wave, attempts, error = %e, "wave held back: scheduling did not take the hold");
                    wave::Entity::update_many()
                        .col_expr(wave::Column::Attempts, Expr::value(attempts))
                        .col_expr(wave::Column::DueAt, Expr::value(Utc::now() + backoff))
                        .filter(wave::Column::BatchId.eq(w.batch_id))
                        .filter(wave::Column::NextWave.eq(w.next_wave))
                        .exec(&self.db)
                        .await?;
                }
                Err(WaveError::Db(e)) => return Err(e),
            }
        }
        if !due.is_empty() {
            self.wakers.dispatch.notify_one();
        }
        Ok(due.len())
    }

    /// Plans, holds and applies the due wave of opening `batch_id`.
    async fn advance(&self, batch_id: Uuid) -> Result<(), WaveError> {
        let now = Utc::now();
        let (w, plan) = {
            let txn = self.db.begin().await?;
            if !slotcast_kit::db::try_xact_lock(&txn, WAVES_LOCK).await? {
                return Ok(());
            }
            let Some(w) = wave::Entity::find_by_id(batch_id)
                .filter(wave::Column::Status.eq(WaveStatus::Running))
                .filter(wave::Column::DueAt.lte(now))
                .one(&txn)
                .await?
            else {
                return Ok(());
            };
            let plan = self.plan(&txn, &w, now).await?;
            txn.commit().await?;
            (w, plan)
        };
        // Scheduling, with no transaction open.
        let (plan, held) = match plan {
            Plan::Stop {
                why,
                mut release,
                take_over,
            } => {
                if !take_over.is_empty() {
                    let hold = hold_id(w.batch_id, 0);
                    let until = now + chrono::Duration::seconds(60);
                    match self.holds.place(hold, &take_over, &[], until).await {
                        Err(HoldError::Transient(e)) => return Err(WaveError::Hold(e)),
                        Err(HoldError::Refused(status)) => {
                            tracing::error!(batch_id = %w.batch_id, %status, "scheduling refused to take over its pre-hold; it lapses on its own");
                        }
                        Ok(_) => release.push(hold),
                    }
                }
                for hold in release {
                    match self.holds.release(hold).await {
                        Err(HoldError::Transient(e)) => return Err(WaveError::Hold(e)),
                        Err(HoldError::Refused(status)) => {
                            tracing::error!(batch_id = %w.batch_id, %hold, %status, "scheduling refused to release a hold; it lapses on its own");
                        }
                        Ok(()) => {}
                    }
                }
                return self.apply_stop(&w, why).await;
            }
            Plan::Wave(plan) => {
                match self
                    .holds
                    .place(plan.hold_id, &plan.slot_ids, &plan.members, plan.until)
                    .await
                {
                    Ok(held) if held.is_empty() => {
                        return self.apply_stop(&w, Reason::SlotGone).await;
                    }
                    Ok(held) => (plan, held),
                    Err(HoldError::Transient(e)) => return Err(WaveError::Hold(e)),
                    Err(HoldError::Refused(status)) => {
                        metrics::counter!("slotcast_matching_hold_refused_total").increment(1);
                        tracing::error!(batch_id = %w.batch_id, wave = w.next_wave, %status, "scheduling refused the hold; the waves of this opening stop");
                        return self.apply_stop(&w, Reason::HoldRefused).await;
                    }
                }
            }
        };
        self.apply_wave(&w, *plan, &held, now).await
    }

    /// Decides the wave, reading only.
    async fn plan<C: ConnectionTrait>(
        &self,
        conn: &C,
        w: &wave::Model,
        now: DateTime<Utc>,
    ) -> Result<Plan, DbErr> {
        let next_hold = hold_id(w.batch_id, w.next_wave);
        // Whatever this opening may have held (a crash can leave the next wave's hold placed).
        let release: Vec<Uuid> = w.hold_id.into_iter().chain([next_hold]).collect();
        let slot_ids = self.own_slots(conn, w.batch_id).await?;
        let slots = open_slots(conn, &slot_ids, now).await?;
        if slots.is_empty() {
            // Taken, withdrawn, started, or opened again in a newer opening.
            return Ok(Plan::Stop {
                why: Reason::SlotGone,
                release: Vec::new(),
                take_over: Vec::new(),
            });
        }
        let ranked = candidates(conn, w.practitioner_id, &slots).await?;
        let patient_ids: Vec<Uuid> = ranked.iter().map(|c| c.decision.patient_id).collect();
        let channels = channels(conn, &ranked).await?;
        let sent_today = sent_today(conn, self.policy.daily_cap, &patient_ids, now).await?;
        // Each slot gets its own first `WAVE_SIZE` patients who fit it: a slot nobody in the
        // wave wants is not held for them.
        let size = usize::try_from(self.policy.size).unwrap_or(usize::MAX);
        let mut per_slot: HashMap<Uuid, usize> = HashMap::new();
        let mut chosen: Vec<(Candidate, Vec<Uuid>)> = Vec::new();
        let mut skipped: Vec<considered::ActiveModel> = Vec::new();
        let mut waiting: Vec<considered::ActiveModel> = Vec::new();
        for c in ranked {
            let cap = Cap::Count {
                sent: sent_today.get(&c.decision.patient_id).copied().unwrap_or(0),
                max: self.policy.daily_cap,
            };
            let mut offered = Vec::new();
            for s in &c.decision.slots {
                let taken = per_slot.entry(s.id).or_default();
                let verdict = eligibility::verdict(&eligibility::Case {
                    cap,
                    wave: eligibility::Wave::Planning {
                        taken: *taken,
                        size,
                    },
                    ..c.case((s, SlotStatus::Open), &channels, now)
                });
                match verdict {
                    Verdict::Tell => {
                        *taken += 1;
                        offered.push(s.id);
                    }
                    Verdict::Later => waiting.push(c.considered(s.id, verdict.outcome(), now)),
                    Verdict::Skip(_) | Verdict::NotReached(_) => {
                        skipped.push(c.considered(s.id, verdict.outcome(), now));
                    }
                }
            }
            if !offered.is_empty() {
                chosen.push((c, offered));
            }
        }
        if chosen.is_empty() {
            return Ok(Plan::Stop {
                why: Reason::ListRanOut,
                release,
                take_over: if w.hold_id.is_none() {
                    slots.iter().map(|s| s.id).collect()
                } else {
                    Vec::new()
                },
            });
        }
        let earlier: Vec<Uuid> = wave_member::Entity::find()
            .filter(wave_member::Column::BatchId.eq(w.batch_id))
            .all(conn)
            .await?
            .into_iter()
            .map(|m| m.patient_id)
            .collect();
        // The slots an earlier wave was told about stay held for it.
        let told_earlier: HashSet<Uuid> = if earlier.is_empty() {
            HashSet::new()
        } else {
            told::Entity::find()
                .filter(told::Column::SlotId.is_in(slots.iter().map(|s| s.id).collect::<Vec<_>>()))
                .filter(told::Column::PatientId.is_in(earlier.clone()))
                .all(conn)
                .await?
                .into_iter()
                .map(|t| t.slot_id)
                .collect()
        };
        let held: Vec<&fit::OpenSlot> = slots
            .iter()
            .filter(|s| per_slot.get(&s.id).is_some_and(|n| *n > 0) || told_earlier.contains(&s.id))
            .collect();
        let first_start = held.iter().map(|s| s.starts_at).min().unwrap_or(now);
        let min = chrono::Duration::from_std(self.policy.hold_min).unwrap_or_default();
        let max = chrono::Duration::from_std(self.policy.hold_max).unwrap_or_default();
        let hold = fit::hold_for(now, first_start, min, max);
        let until = now + hold;
        let mut members = earlier;
        members.extend(chosen.iter().map(|(c, _)| c.decision.patient_id));
        members.sort();
        members.dedup();
        Ok(Plan::Wave(Box::new(WavePlan {
            number: w.next_wave,
            hold_id: next_hold,
            until,
            next_due: until - (hold / 10).min(OVERLAP),
            slot_ids: held.iter().map(|s| s.id).collect(),
            members,
            chosen,
            skipped,
            waiting,
        })))
    }

    /// The opening's slots that have not opened again in a newer opening since.
    async fn own_slots<C: ConnectionTrait>(
        &self,
        conn: &C,
        batch_id: Uuid,
    ) -> Result<Vec<Uuid>, DbErr> {
        let mine: Vec<Uuid> = opening_slot::Entity::find()
            .filter(opening_slot::Column::BatchId.eq(batch_id))
            .all(conn)
            .await?
            .into_iter()
            .map(|s| s.slot_id)
            .collect();
        let memberships = opening_slot::Entity::find()
            .filter(opening_slot::Column::SlotId.is_in(mine.clone()))
            .filter(opening_slot::Column::BatchId.ne(batch_id))
            .all(conn)
            .await?;
        if memberships.is_empty() {
            return Ok(mine);
        }
        let decided: HashMap<Uuid, Option<DateTime<Utc>>> = opening::Entity::find()
            .filter(
                opening::Column::BatchId.is_in(
                    memberships
                        .iter()
                        .map(|m| m.batch_id)
                        .chain([batch_id])
                        .collect::<Vec<_>>(),
                ),
            )
            .all(conn)
            .await?
            .into_iter()
            .map(|o| (o.batch_id, o.decided_at))
            .collect();
        let own = decided.get(&batch_id).copied().flatten();
        Ok(mine
            .into_iter()
            .filter(|slot| {
                // A newer opening (or one not decided yet, so newer) owns the slot now.
                !memberships.iter().any(|m| {
                    m.slot_id == *slot
                        && match (decided.get(&m.batch_id).copied().flatten(), own) {
                            (Some(other), Some(own)) => other > own,
                            _ => true,
                        }
                })
            })
            .collect())
    }

    /// Records the wave if the timer still stands where it was planned.
    async fn apply_wave(
        &self,
        w: &wave::Model,
        plan: WavePlan,
        held: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<(), WaveError> {
        let txn = self.db.begin().await?;
        if !slotcast_kit::db::try_xact_lock(&txn, WAVES_LOCK).await? || !still_at(&txn, w).await? {
            // Another replica applied it (the hold placed is the same).
            return Ok(());
        }
        let held: HashSet<Uuid> = held.iter().copied().collect();
        let mut offers: Vec<pending::ActiveModel> = Vec::new();
        let mut joined: Vec<wave_member::ActiveModel> = Vec::new();
        let decisions = plan.skipped;
        let trace = current_trace();
        for (c, slot_ids) in &plan.chosen {
            let slot_ids: Vec<&Uuid> = slot_ids.iter().filter(|s| held.contains(s)).collect();
            if slot_ids.is_empty() {
                continue;
            }
            joined.push(wave_member::ActiveModel {
                batch_id: Set(w.batch_id),
                patient_id: Set(c.decision.patient_id),
                wave: Set(plan.number),
            });
            for s in slot_ids {
                // `pending` records the offer and its wave, so `considered` need not.
                offers.push(
                    pending::ActiveModel::from(c.offer(
                        *s,
                        w.practitioner_id,
                        w.batch_id,
                        Some((plan.number, plan.until)),
                        (now, now),
                        &trace,
                    ))
                    .reset_all(),
                );
            }
        }
        insert_new(
            &txn,
            &joined,
            &[wave_member::Column::BatchId, wave_member::Column::PatientId],
        )
        .await?;
        insert_new(
            &txn,
            &offers,
            &[pending::Column::PatientId, pending::Column::SlotId],
        )
        .await?;
        record_considered(&txn, decisions).await?;
        // Patients in the order not reached yet (`waiting`); a decision already recorded for
        // one stays as it is.
        insert_new(
            &txn,
            &plan.waiting,
            &[considered::Column::SlotId, considered::Column::PatientId],
        )
        .await?;
        wave::Entity::update_many()
            .col_expr(wave::Column::NextWave, Expr::value(plan.number + 1))
            .col_expr(wave::Column::DueAt, Expr::value(plan.next_due))
            .col_expr(wave::Column::HoldId, Expr::value(Some(plan.hold_id)))
            .col_expr(wave::Column::Attempts, Expr::value(0))
            .filter(wave::Column::BatchId.eq(w.batch_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        metrics::counter!("slotcast_matching_waves_total").increment(1);
        tracing::info!(batch_id = %w.batch_id, wave = plan.number, patients = joined.len(), until = %plan.until, "wave sent");
        self.wakers.dispatch.notify_one();
        Ok(())
    }

    async fn apply_stop(&self, w: &wave::Model, why: Reason) -> Result<(), WaveError> {
        let txn = self.db.begin().await?;
        if !slotcast_kit::db::try_xact_lock(&txn, WAVES_LOCK).await? || !still_at(&txn, w).await? {
            return Ok(());
        }
        // Not the slots a newer opening owns now: their `waiting` rows are that opening's.
        let slot_ids = self.own_slots(&txn, w.batch_id).await?;
        stop(&txn, w, &slot_ids, why).await?;
        txn.commit().await?;
        tracing::info!(batch_id = %w.batch_id, waves = w.next_wave - 1, why = why.as_str(), "waves stopped");
        Ok(())
    }
}

/// The id of wave `number`'s hold on opening `batch_id`.
fn hold_id(batch_id: Uuid, number: i32) -> Uuid {
    Uuid::new_v5(
        &ID_NAMESPACE,
        format!("hold:{batch_id}:{number}").as_bytes(),
    )
}

/// Whether the opening's timer still stands at the wave `w` saw.
async fn still_at<C: ConnectionTrait>(conn: &C, w: &wave::Model) -> Result<bool, DbErr> {
    Ok(wave::Entity::find_by_id(w.batch_id)
        .filter(wave::Column::Status.eq(WaveStatus::Running))
        .filter(wave::Column::NextWave.eq(w.next_wave))
        .one(conn)
        .await?
        .is_some())
}

/// Stops an opening's waves; whoever was still `waiting` in its order was not reached.
async fn stop<C: ConnectionTrait>(
    conn: &C,
    w: &wave::Model,
    slot_ids: &[Uuid],
    why: Reason,
) -> Result<(), DbErr> {
    wave::Entity::update_many()
        .col_expr(wave::Column::Status, Expr::value(WaveStatus::Done))
        .filter(wave::Column::BatchId.eq(w.batch_id))
        .exec(conn)
        .await?;
    // What the rule says of everyone a stopped wave had not reached.
    let (outcome, reason) = eligibility::Verdict::NotReached(why).outcome();
    considered::Entity::update_many()
        .col_expr(considered::Column::Outcome, Expr::value(outcome))
        .col_expr(considered::Column::Reason, Expr::value(reason))
        .filter(considered::Column::SlotId.is_in(slot_ids.to_vec()))
        .filter(considered::Column::Outcome.eq(Outcome::Waiting))
        .exec(conn)
        .await?;
    Ok(())
}
