//! Deciding an opening: who fits, in the fair order, and the offers that are pending for them;
//! with the lookups and records the dispatcher and the waves share.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QuerySelect, Set,
    sea_query::{Expr, ExprTrait, OnConflict},
};
use slotcast_events::{OfferPolicy, Priority, WaitKind};
use uuid::Uuid;

use crate::{
    eligibility::{self, Cap, Case, Channels, Fit, Verdict},
    entities::{considered, entry, opening, opening_slot, patient, pending, slot, told, wave},
    fit::{self, OpenSlot, Waiting},
    policy::PolicyConfig,
    vocabulary::{Outcome, Reason, SlotStatus, WaveStatus},
};
/// Rows written by one `INSERT`: matching's rows (ids, times, a short trace) are 150 to 250
/// bytes, so 48 of them stay under `slotcast_bus::rows::STATEMENT_BYTES`.
pub(crate) const ROWS_PER_INSERT: usize = 48;

/// An opening whose slots are all in: decided by [`decide`].
#[derive(Debug, Clone)]
pub(crate) struct Complete {
    pub practitioner_id: Uuid,
    pub batch_id: Uuid,
    pub slot_ids: Vec<Uuid>,
    pub policy: OfferPolicy,
    /// The trace its offers continue (JSON headers from [`current_trace`]).
    pub trace: String,
}

/// Settles openings whose slots are all in. A `waves` opening is decided at once: a timer, due
/// now, for its first wave ([`crate::waves`]). A `broadcast` one falls due when the coalescing
/// window ends, and the dispatcher decides it then ([`offers`]): its offers go out as they are
/// decided, never written down, to the patients waiting when it goes out. Returns the openings
/// settled.
pub(crate) async fn settle<C: ConnectionTrait>(
    conn: &C,
    config: &PolicyConfig,
    openings: &[Complete],
) -> Result<usize, DbErr> {
    let now = Utc::now();
    let (waves, broadcast): (Vec<&Complete>, Vec<&Complete>) = openings
        .iter()
        .partition(|o| o.policy == OfferPolicy::Waves);
    let wave_slots: Vec<Uuid> = waves.iter().flat_map(|o| o.slot_ids.clone()).collect();
    let open: HashSet<Uuid> = open_slots(conn, &wave_slots, now)
        .await?
        .into_iter()
        .map(|s| s.id)
        .collect();
    let timers: Vec<wave::ActiveModel> = waves
        .iter()
        .filter(|o| o.slot_ids.iter().any(|id| open.contains(id)))
        .map(|o| {
            tracing::info!(batch_id = %o.batch_id, practitioner_id = %o.practitioner_id, "opening to be offered in waves");
            wave::ActiveModel {
                batch_id: Set(o.batch_id),
                practitioner_id: Set(o.practitioner_id),
                next_wave: Set(1),
                due_at: Set(now),
                hold_id: Set(None),
                status: Set(WaveStatus::Running),
                attempts: Set(0),
                trace: Set(o.trace.clone()),
            }
        })
        .collect();
    insert_new(conn, &timers, &[wave::Column::BatchId]).await?;
    let decided: Vec<Uuid> = waves.iter().map(|o| o.batch_id).collect();
    set_on(conn, &decided, opening::Column::DecidedAt, now).await?;
    let due = now
        + chrono::Duration::from_std(config.coalesce_window).unwrap_or(chrono::Duration::zero());
    let waiting: Vec<Uuid> = broadcast.iter().map(|o| o.batch_id).collect();
    set_on(conn, &waiting, opening::Column::DueAt, due).await?;
    Ok(timers.len() + waiting.len())
}

/// Sets `column` to `at` on the openings `batch_ids`.
pub(crate) async fn set_on<C: ConnectionTrait>(
    conn: &C,
    batch_ids: &[Uuid],
    column: opening::Column,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    for run in slotcast_bus::rows::ids(batch_ids) {
        opening::Entity::update_many()
            .col_expr(column, Expr::value(at))
            .filter(opening::Column::BatchId.is_in(run.iter().copied()))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// Decides broadcast openings now, together (a statement per lookup for all of them): every
/// fitting patient gets an offer of the opening's slots still open, in the fair order. Returns
/// the offers, due now, and what did not become one, for `considered`, with its practitioner.
pub(crate) async fn offers<C: ConnectionTrait>(
    conn: &C,
    openings: &[Complete],
    now: DateTime<Utc>,
) -> Result<(Vec<pending::Model>, Vec<(Uuid, considered::ActiveModel)>), DbErr> {
    let started = std::time::Instant::now();
    let all_slots: Vec<Uuid> = openings.iter().flat_map(|o| o.slot_ids.clone()).collect();
    // Every slot, open or not: the one rule says why a slot taken in the window is not offered.
    let status: HashMap<Uuid, (OpenSlot, SlotStatus)> =
        find_in::<slot::Entity, _>(conn, slot::Column::Id, &all_slots)
            .await?
            .into_iter()
            .map(|s| (s.id, (OpenSlot::from(&s), s.status)))
            .collect();
    let opened: Vec<(&Complete, Vec<OpenSlot>)> = openings
        .iter()
        .map(|o| {
            let slots = o.slot_ids.iter().filter_map(|id| status.get(id));
            (o, slots.map(|(s, _)| s.clone()).collect())
        })
        .collect();
    let asked: Vec<(Uuid, &[OpenSlot])> = opened
        .iter()
        .map(|(o, slots)| (o.practitioner_id, slots.as_slice()))
        .collect();
    let ranked = candidates_of(conn, &asked).await?;
    let channels = channels(conn, ranked.iter().flatten()).await?;
    metrics::histogram!("slotcast_matching_decide_seconds").record(started.elapsed().as_secs_f64());
    let mut offers: Vec<pending::Model> = Vec::new();
    let mut decisions: Vec<(Uuid, considered::ActiveModel)> = Vec::new();
    // A slot in two openings at once (booked and freed within the window) is decided once.
    let mut seen: HashSet<(Uuid, Uuid)> = HashSet::new();
    for ((o, slots), ranked) in opened.iter().zip(&ranked) {
        let mut patients = 0;
        for c in ranked {
            let mut told = false;
            for s in &c.decision.slots {
                if !seen.insert((s.id, c.decision.patient_id)) {
                    continue;
                }
                // The cap is counted when the message is formed: this offer may join one that
                // goes anyway.
                let state = status
                    .get(&s.id)
                    .map_or(SlotStatus::Withdrawn, |(_, st)| *st);
                let verdict = eligibility::verdict(&Case {
                    cap: Cap::NotCounted,
                    ..c.case((s, state), &channels, now)
                });
                // `Later` is a patient not known yet: the dispatcher holds the offer back.
                if matches!(verdict, Verdict::Tell | Verdict::Later) {
                    let (p, b) = (o.practitioner_id, o.batch_id);
                    offers.push(c.offer(s.id, p, b, None, (now, now), &o.trace));
                    told = true;
                } else {
                    let decision = c.considered(s.id, verdict.outcome(), now);
                    decisions.push((o.practitioner_id, decision));
                }
            }
            patients += usize::from(told);
        }
        tracing::info!(batch_id = %o.batch_id, practitioner_id = %o.practitioner_id, slots = slots.len(), patients, "opening decided");
    }
    Ok((offers, decisions))
}

/// Inserts `rows`, [`ROWS_PER_INSERT`] to a statement; a row whose `key` is there already (a
/// redelivered event, a pass run again) stays as it is.
pub(crate) async fn insert_new<A, C>(
    conn: &C,
    rows: &[A],
    key: &[<A::Entity as EntityTrait>::Column],
) -> Result<(), DbErr>
where
    A: ActiveModelTrait + Clone + Send,
    C: ConnectionTrait,
{
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        A::Entity::insert_many(chunk.to_vec())
            .on_conflict_do_nothing_on(key.iter().copied())
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// The rows of `E` whose `column` is one of `ids`, a statement per run of
/// [`slotcast_bus::rows::IDS_PER_STATEMENT`] ids.
pub(crate) async fn find_in<E: EntityTrait, C: ConnectionTrait>(
    conn: &C,
    column: E::Column,
    ids: &[Uuid],
) -> Result<Vec<E::Model>, DbErr> {
    let mut found = Vec::with_capacity(ids.len());
    for run in slotcast_bus::rows::ids(ids) {
        found.extend(
            E::find()
                .filter(column.is_in(run.iter().copied()))
                .all(conn)
                .await?,
        );
    }
    Ok(found)
}

/// The slots of each of the openings `batch_ids`.
pub(crate) async fn slots_of<C: ConnectionTrait>(
    conn: &C,
    batch_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Uuid>>, DbErr> {
    let mut slots: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for s in
        find_in::<opening_slot::Entity, _>(conn, opening_slot::Column::BatchId, batch_ids).await?
    {
        slots.entry(s.batch_id).or_default().push(s.slot_id);
    }
    Ok(slots)
}

/// The current span's trace context, as JSON headers.
pub(crate) fn current_trace() -> String {
    serde_json::to_string(&slotcast_kit::telemetry::current_context_headers())
        .unwrap_or_else(|_| "{}".to_owned())
}

/// A span that continues the trace in `trace` (JSON headers from [`current_trace`]).
pub(crate) fn continuing(trace: &str, name: &'static str) -> tracing::Span {
    let headers: HashMap<String, String> = serde_json::from_str(trace).unwrap_or_default();
    let span = tracing::info_span!("continue", otel.name = name);
    slotcast_kit::telemetry::set_parent_from(
        &span,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    span
}

/// The slots among `slot_ids` still open and not started.
pub(crate) async fn open_slots<C: ConnectionTrait>(
    conn: &C,
    slot_ids: &[Uuid],
    now: chrono::DateTime<Utc>,
) -> Result<Vec<OpenSlot>, DbErr> {
    let mut found = Vec::with_capacity(slot_ids.len());
    for run in slotcast_bus::rows::ids(slot_ids) {
        found.extend(
            slot::Entity::find()
                .filter(slot::Column::Id.is_in(run.iter().copied()))
                .filter(slot::Column::Status.eq(SlotStatus::Open))
                .filter(slot::Column::StartsAt.gt(now))
                .all(conn)
                .await?,
        );
    }
    Ok(found.iter().map(OpenSlot::from).collect())
}

impl From<&slot::Model> for OpenSlot {
    fn from(s: &slot::Model) -> Self {
        OpenSlot {
            id: s.id,
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            released_by: s.released_by,
        }
    }
}

/// A patient whose entry fits some of the slots, with their place in the fair order.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// 1 is first.
    pub rank: i32,
    pub decision: fit::Decision,
    pub priority: Priority,
    pub expires_at: Option<chrono::DateTime<Utc>>,
}

impl Candidate {
    /// The case of telling this candidate about `slot`, one of the slots their entries fit, as
    /// it stands (the caller sets the cap and the wave).
    pub fn case<'a>(
        &self,
        slot: (&'a OpenSlot, SlotStatus),
        channels: &HashMap<Uuid, Channels>,
        now: chrono::DateTime<Utc>,
    ) -> Case<'a> {
        Case {
            now,
            slot: Some(slot),
            entry: Some(eligibility::Entry {
                active: true,
                expires_at: self.expires_at,
            }),
            fit: Fit::Decided,
            channels: channels.get(&self.decision.patient_id).copied(),
            cap: Cap::NotCounted,
            wave: eligibility::Wave::None,
        }
    }

    pub fn considered(
        &self,
        slot_id: Uuid,
        (outcome, reason): (Outcome, Option<Reason>),
        now: chrono::DateTime<Utc>,
    ) -> considered::ActiveModel {
        considered::ActiveModel {
            slot_id: Set(slot_id),
            patient_id: Set(self.decision.patient_id),
            entry_id: Set(self.decision.entry_id),
            rank: Set(self.rank),
            priority: Set(self.priority.as_str().to_owned()),
            outcome: Set(outcome),
            reason: Set(reason),
            wave: Set(None),
            notification_id: Set(None),
            at: Set(now),
        }
    }

    /// The offer of `slot_id` to this candidate.
    pub fn offer(
        &self,
        slot_id: Uuid,
        practitioner_id: Uuid,
        batch_id: Uuid,
        // A wave's number and the end of its hold; `None` for a broadcast.
        wave: Option<(i32, chrono::DateTime<Utc>)>,
        // When it was decided, and when it falls due.
        (decided_at, due_at): (chrono::DateTime<Utc>, chrono::DateTime<Utc>),
        trace: &str,
    ) -> pending::Model {
        pending::Model {
            patient_id: self.decision.patient_id,
            slot_id,
            practitioner_id,
            entry_id: self.decision.entry_id,
            batch_id,
            reason: self.decision.reason.as_str().to_owned(),
            rank: self.rank,
            priority: self.priority.as_str().to_owned(),
            wave: wave.map(|(n, _)| n),
            held_until: wave.map(|(_, until)| until),
            due_at,
            trace: trace.to_owned(),
            decided_at: Some(decided_at),
            waits_for: None,
        }
    }
}

/// Every patient whose active entry fits some of `slots` and who was not told (nor is about to
/// be) about them, in the fair order, each with the slots that fit. A patient whose only
/// fitting entries expired is in it (so the explanation can say why they were skipped); the
/// caller skips them.
pub(crate) async fn candidates<C: ConnectionTrait>(
    conn: &C,
    practitioner_id: Uuid,
    slots: &[OpenSlot],
) -> Result<Vec<Candidate>, DbErr> {
    Ok(candidates_of(conn, &[(practitioner_id, slots)])
        .await?
        .pop()
        .unwrap_or_default())
}

/// [`candidates`] of each practitioner's slots in `asked`, in its order, with one lookup of
/// each kind for all of them. The slots of one entry of `asked` are not in another's.
pub(crate) async fn candidates_of<C: ConnectionTrait>(
    conn: &C,
    asked: &[(Uuid, &[OpenSlot])],
) -> Result<Vec<Vec<Candidate>>, DbErr> {
    // Only the entries that can fit one of the slots come back (the index
    // `entries_practitioner_active_earliest` serves each window); `fit::decide` then checks
    // each pair exactly. A long list of patients waiting for other times costs nothing here.
    let mut windows = Condition::any();
    for (practitioner_id, slots) in asked {
        let Some(first_start) = slots.iter().map(|s| s.starts_at).min() else {
            continue;
        };
        let last_start = slots
            .iter()
            .map(|s| s.starts_at)
            .max()
            .unwrap_or(first_start);
        let first_end = slots.iter().map(|s| s.ends_at).min().unwrap_or(first_start);
        windows = windows.add(
            Condition::all()
                .add(entry::Column::PractitionerId.eq(*practitioner_id))
                .add(
                    Condition::any()
                        .add(entry::Column::Earliest.is_null())
                        .add(entry::Column::Earliest.lte(last_start)),
                )
                .add(
                    Condition::any()
                        .add(entry::Column::Latest.is_null())
                        .add(entry::Column::Latest.gte(first_end)),
                )
                .add(
                    Condition::any()
                        .add(entry::Column::Kind.eq(WaitKind::New.as_str()))
                        .add(entry::Column::HeldStartsAt.gt(first_start)),
                ),
        );
    }
    if windows.is_empty() {
        return Ok(vec![Vec::new(); asked.len()]);
    }
    let entries = entry::Entity::find()
        .filter(entry::Column::Active.eq(true))
        .filter(windows)
        .all(conn)
        .await?;
    let mut meta: HashMap<Uuid, (Priority, Option<chrono::DateTime<Utc>>)> = HashMap::new();
    let mut waiting: HashMap<Uuid, Vec<Waiting>> = HashMap::new();
    for e in entries {
        let priority = Priority::parse(&e.priority).unwrap_or_default();
        meta.insert(e.id, (priority, e.expires_at));
        if let Some(w) = waiting_of(&e) {
            waiting.entry(e.practitioner_id).or_default().push(w);
        }
    }
    let slot_ids: Vec<Uuid> = asked
        .iter()
        .flat_map(|(_, slots)| slots.iter().map(|s| s.id))
        .collect();
    // `pending` before `told`: the dispatcher moves rows from one to the other in one
    // transaction, so a pair it moves between the two reads is still seen in one of them.
    let mut already: HashSet<(Uuid, Uuid)> =
        find_in::<pending::Entity, _>(conn, pending::Column::SlotId, &slot_ids)
            .await?
            .into_iter()
            .map(|p| (p.slot_id, p.patient_id))
            .collect();
    already.extend(
        find_in::<told::Entity, _>(conn, told::Column::SlotId, &slot_ids)
            .await?
            .into_iter()
            .map(|t| (t.slot_id, t.patient_id)),
    );
    let now = Utc::now();
    Ok(asked
        .iter()
        .map(|(practitioner_id, slots)| {
            let waiting = waiting.get(practitioner_id).map_or(&[][..], Vec::as_slice);
            rank(slots, waiting, &already, &meta, now)
        })
        .collect())
}

/// An entry as the fit rules see it; `None` for a kind this code does not know.
pub(crate) fn waiting_of(e: &entry::Model) -> Option<Waiting> {
    Some(Waiting {
        entry_id: e.id,
        patient_id: e.patient_id,
        kind: WaitKind::parse(&e.kind)?,
        held_starts_at: e.held_starts_at,
        earliest: e.earliest,
        latest: e.latest,
        joined_at: e.joined_at,
        priority: Priority::parse(&e.priority).unwrap_or_default(),
    })
}

/// The candidates among `waiting` for `slots`, in the fair order.
fn rank(
    slots: &[OpenSlot],
    waiting: &[Waiting],
    already: &HashSet<(Uuid, Uuid)>,
    meta: &HashMap<Uuid, (Priority, Option<chrono::DateTime<Utc>>)>,
    now: DateTime<Utc>,
) -> Vec<Candidate> {
    // Expired entries are decided apart, so a patient's other, valid entry is what counts for
    // them; an expired one shows only for a patient with nothing else (to say why).
    let expired = |w: &Waiting| {
        meta.get(&w.entry_id)
            .and_then(|m| m.1)
            .is_some_and(|e| e <= now)
    };
    let (lapsed, valid): (Vec<Waiting>, Vec<Waiting>) = waiting.iter().cloned().partition(expired);
    let mut decisions = fit::decide(slots, &valid, already);
    let offered: HashSet<Uuid> = decisions.iter().map(|d| d.patient_id).collect();
    decisions.extend(
        fit::decide(slots, &lapsed, already)
            .into_iter()
            .filter(|d| !offered.contains(&d.patient_id)),
    );
    let order: HashMap<Uuid, (Priority, chrono::DateTime<Utc>, Uuid)> = valid
        .iter()
        .chain(&lapsed)
        .map(|w| (w.entry_id, w.order_key()))
        .collect();
    decisions.sort_by_key(|d| order.get(&d.entry_id).copied());
    decisions
        .into_iter()
        .enumerate()
        .map(|(i, decision)| {
            let (priority, expires_at) = meta
                .get(&decision.entry_id)
                .copied()
                .unwrap_or((Priority::Routine, None));
            Candidate {
                rank: i32::try_from(i + 1).unwrap_or(i32::MAX),
                decision,
                priority,
                expires_at,
            }
        })
        .collect()
}

/// The channels of each candidate's patient (absent: unknown to the projection).
pub(crate) async fn channels<'a, C: ConnectionTrait>(
    conn: &C,
    candidates: impl IntoIterator<Item = &'a Candidate>,
) -> Result<HashMap<Uuid, Channels>, DbErr> {
    let mut ids: Vec<Uuid> = candidates
        .into_iter()
        .map(|c| c.decision.patient_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(
        find_in::<patient::Entity, _>(conn, patient::Column::Id, &ids)
            .await?
            .into_iter()
            .map(|p| {
                let channels = Channels {
                    email: p.email_enabled,
                    inapp: p.inapp_enabled,
                    sms: p.texts(),
                };
                (p.id, channels)
            })
            .collect(),
    )
}

/// Records decisions: a row per slot and patient, the newest outcome winning.
pub(crate) async fn record_considered<C: ConnectionTrait>(
    conn: &C,
    rows: Vec<considered::ActiveModel>,
) -> Result<(), DbErr> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        considered::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([considered::Column::SlotId, considered::Column::PatientId])
                    .update_columns([
                        considered::Column::EntryId,
                        considered::Column::Outcome,
                        considered::Column::Reason,
                        considered::Column::Wave,
                        considered::Column::NotificationId,
                        considered::Column::At,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// How many availability messages (notifications in `told`) each of `patients` was sent in the 24 hours before `now`
/// (absent: none). Empty when there is no cap to check.
pub(crate) async fn sent_today<C: ConnectionTrait>(
    conn: &C,
    daily_cap: u32,
    patients: &[Uuid],
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, i64>, DbErr> {
    let mut sent = HashMap::new();
    if daily_cap == 0 {
        return Ok(sent);
    }
    for run in slotcast_bus::rows::ids(patients) {
        sent.extend(
            told::Entity::find()
                .select_only()
                .column(told::Column::PatientId)
                .column_as(
                    Expr::col(told::Column::NotificationId).count_distinct(),
                    "n",
                )
                .filter(told::Column::PatientId.is_in(run.iter().copied()))
                .filter(told::Column::ToldAt.gt(now - chrono::Duration::hours(24)))
                .group_by(told::Column::PatientId)
                .into_tuple::<(Uuid, i64)>()
                .all(conn)
                .await?,
        );
    }
    Ok(sent)
}
