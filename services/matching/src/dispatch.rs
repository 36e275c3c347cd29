//! The dispatcher: turns due offers (`pending` rows) into `notify.patient` messages.
//!
//! An offer is due when the coalescing window of the first offer to that patient from that
//! practitioner ends (`COALESCE_WINDOW_MS`), or at once for a wave. Everything pending for that
//! patient and practitioner then goes out as one message, so slots published in separate
//! requests within the window reach the patient together. Before it goes out:
//! - a slot booked, withdrawn or started since the decision is dropped from it;
//! - an entry that stopped waiting or expired drops its slots;
//! - a patient who switched both email and in-app off is skipped (`opted_out`); one who
//!   switched one off gets the message on the other only (`channels`);
//! - a patient who was sent `DAILY_MESSAGE_CAP` availability messages in the last 24 hours is
//!   skipped (`capped`).
//!
//! Each is [`crate::eligibility::verdict`] at the moment of sending. A message sent is recorded
//! in `told` (with its decision: rank, priority, wave), a skip in `considered`. One dispatcher runs at a time across replicas (a
//! transaction-scoped advisory lock), and a patient's pending rows are read, turned into `told`
//! rows and the outbox event, and deleted in one transaction: a crash sends nothing twice and
//! loses nothing.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
    sea_query::{Expr, Func},
};
use slotcast_bus::outbox::{self, Relay};
use slotcast_events::{
    Channels, CloudEvent, NotifyPatient, OfferedSlot, PatientContact, PractitionerCard, WaitKind,
};
use slotcast_kit::offer::OfferSigner;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    SOURCE,
    eligibility::{self, Cap, Case, Fit, Verdict},
    entities::{considered, entry, patient, pending, practitioner, slot, told},
    fit::OpenSlot,
    passes::{Wakers, run_passes},
    projection::{find_in, insert_new, record_considered, sent_today},
    vocabulary::{Outcome, Reason},
};

/// The advisory lock key of the dispatcher (one per database).
const DISPATCH_LOCK: i64 = 0x5107_ca57_d15b;
/// Patient and practitioner pairs sent per transaction.
const GROUPS_PER_PASS: u64 = 500;
/// How often due offers are looked for when nothing wakes the dispatcher.
const TICK: Duration = Duration::from_millis(200);
/// How long an offer to a patient matching does not know yet waits for their registration.
const UNKNOWN_GRACE: chrono::Duration = chrono::Duration::seconds(60);
/// How soon such an offer is looked at again.
const UNKNOWN_RETRY: chrono::Duration = chrono::Duration::milliseconds(500);

/// Sends due offers: holds what sending needs, and nothing else.
pub struct Dispatcher {
    db: DatabaseConnection,
    relay: Relay,
    signer: OfferSigner,
    /// `PUBLIC_BASE_URL`, where booking links point.
    public_base_url: String,
    /// `DAILY_MESSAGE_CAP` (0: none).
    daily_cap: u32,
    wakers: Wakers,
}

/// What one pass of the dispatcher did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dispatched {
    /// Patient and practitioner pairs whose due offers were taken.
    pub groups: usize,
    /// `notify.patient` messages written to the outbox.
    pub sent: usize,
}

impl Dispatcher {
    pub fn new(
        db: DatabaseConnection,
        relay: Relay,
        signer: OfferSigner,
        public_base_url: String,
        daily_cap: u32,
        wakers: Wakers,
    ) -> Self {
        Self {
            db,
            relay,
            signer,
            public_base_url,
            daily_cap,
            wakers,
        }
    }

    /// Sends due offers until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let full = usize::try_from(GROUPS_PER_PASS).unwrap_or(usize::MAX);
        run_passes(
            "sending due offers",
            "slotcast_matching_dispatch_failures_total",
            &self.wakers.dispatch,
            TICK,
            full,
            shutdown,
            || async { self.run_once().await.map(|d| d.groups) },
            || self.next_due(),
        )
        .await;
    }

    /// When the first offer not sent yet falls due (it may be due already).
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, DbErr> {
        pending::Entity::find()
            .select_only()
            .column_as(pending::Column::DueAt.min(), "due")
            .into_tuple::<Option<DateTime<Utc>>>()
            .one(&self.db)
            .await
            .map(Option::flatten)
    }

    /// Sends one pass of due offers (nothing while another replica is sending).
    pub async fn run_once(&self) -> Result<Dispatched, DbErr> {
        let txn = self.db.begin().await?;
        if !slotcast_kit::db::try_xact_lock(&txn, DISPATCH_LOCK).await? {
            // Another replica is dispatching.
            return Ok(Dispatched::default());
        }
        let now = Utc::now();
        let taken = take_due(&txn, now).await?;
        if taken.is_empty() {
            return Ok(Dispatched::default());
        }
        let groups = taken.len();
        let sent = self.send(&txn, taken, now).await?;
        txn.commit().await?;
        if sent > 0 {
            self.relay.wake();
        }
        metrics::counter!("slotcast_matching_notifications_total").increment(sent as u64);
        Ok(Dispatched { groups, sent })
    }

    /// Sends the offers `taken` out of `pending`, a patient and practitioner pair at a time in
    /// the order given; returns the messages sent.
    async fn send<C: ConnectionTrait>(
        &self,
        conn: &C,
        taken: Vec<((Uuid, Uuid), Vec<pending::Model>)>,
        now: DateTime<Utc>,
    ) -> Result<usize, DbErr> {
        let rows = || taken.iter().flat_map(|(_, rows)| rows);
        let patient_ids = distinct(taken.iter().map(|((p, _), _)| *p));
        let practitioner_ids = distinct(taken.iter().map(|((_, d), _)| *d));
        let slot_ids = distinct(rows().map(|r| r.slot_id));
        let entry_ids = distinct(rows().map(|r| r.entry_id));
        let slots: HashMap<Uuid, slot::Model> = by_id(slots_held(conn, &slot_ids).await?, |s| s.id);
        let entries: HashMap<Uuid, entry::Model> = by_id(
            find_in::<entry::Entity, _>(conn, entry::Column::Id, &entry_ids).await?,
            |e| e.id,
        );
        let patients: HashMap<Uuid, patient::Model> = by_id(
            find_in::<patient::Entity, _>(conn, patient::Column::Id, &patient_ids).await?,
            |p| p.id,
        );
        let practitioners: HashMap<Uuid, practitioner::Model> = by_id(
            find_in::<practitioner::Entity, _>(conn, practitioner::Column::Id, &practitioner_ids)
                .await?,
            |p| p.id,
        );
        // Belt and braces: a pair told already is never told again, whatever put it here.
        let mut told_before: HashSet<(Uuid, Uuid)> = HashSet::new();
        for slots in slotcast_bus::rows::ids(&slot_ids) {
            for patients in slotcast_bus::rows::ids(&patient_ids) {
                told_before.extend(
                    told::Entity::find()
                        .filter(told::Column::SlotId.is_in(slots.iter().copied()))
                        .filter(told::Column::PatientId.is_in(patients.iter().copied()))
                        .all(conn)
                        .await?
                        .into_iter()
                        .map(|t| (t.slot_id, t.patient_id)),
                );
            }
        }
        let mut sent_today = sent_today(conn, self.daily_cap, &patient_ids, now).await?;

        let mut decisions: Vec<considered::ActiveModel> = Vec::new();
        let mut told_rows: Vec<told::ActiveModel> = Vec::new();
        let mut retry: Vec<pending::ActiveModel> = Vec::new();
        let mut events: Vec<(CloudEvent<NotifyPatient>, &str)> = Vec::new();
        for (group, rows) in &taken {
            let mut rows: Vec<&pending::Model> = rows.iter().collect();
            rows.sort_by_key(|r| (r.rank, slots.get(&r.slot_id).map(|s| s.starts_at)));
            // Belt and braces: a pair told already is never told again, whatever put it here;
            // nothing to record, `considered` already says it was told.
            rows.retain(|r| !told_before.contains(&(r.slot_id, r.patient_id)));
            let (p, dr) = (patients.get(&group.0), practitioners.get(&group.1));
            if p.is_none() || dr.is_none() {
                tracing::warn!(patient_id = %group.0, practitioner_id = %group.1, "offer for a patient or practitioner unknown to the projection; skipped");
            }
            let sent = sent_today.entry(group.0).or_default();
            let open: Vec<Option<OpenSlot>> = rows
                .iter()
                .map(|r| slots.get(&r.slot_id).map(open_slot))
                .collect();
            let judge = |r: &pending::Model, slot: &Option<OpenSlot>, cap| {
                eligibility::verdict(&Case {
                    now,
                    slot: slot
                        .as_ref()
                        .zip(slots.get(&r.slot_id))
                        .map(|(o, s)| (o, s.status)),
                    entry: entries.get(&r.entry_id).map(|e| eligibility::Entry {
                        active: e.active,
                        expires_at: e.expires_at,
                    }),
                    fit: Fit::Decided,
                    channels: p.zip(dr).map(|(p, _)| eligibility::Channels {
                        email: p.email_enabled,
                        inapp: p.inapp_enabled,
                    }),
                    cap,
                    wave: eligibility::Wave::None,
                })
            };
            // A wave's offer was checked against the cap when the wave was decided, and its
            // patient is in the hold: it goes out, and the rest of the pair's offers with it.
            let wave_goes = rows.iter().zip(&open).any(|(r, slot)| {
                r.wave.is_some() && judge(r, slot, Cap::NotCounted) == Verdict::Tell
            });
            let cap = if wave_goes {
                Cap::NotCounted
            } else {
                Cap::Count {
                    sent: *sent,
                    max: self.daily_cap,
                }
            };
            let mut keep: Vec<(&pending::Model, &slot::Model)> = Vec::new();
            for (r, slot) in rows.into_iter().zip(&open) {
                match judge(r, slot, cap) {
                    Verdict::Tell => keep.extend(slots.get(&r.slot_id).map(|s| (r, s))),
                    Verdict::Skip(why) | Verdict::NotReached(why) => {
                        metrics::counter!("slotcast_matching_skipped_total", "reason" => why.as_str())
                            .increment(1);
                        decisions.push(skipped(r, why, now));
                    }
                    // A patient not known yet (their registration is another order key's
                    // event): the offer waits a little, then counts as gone.
                    Verdict::Later if r.decided_at.is_none_or(|d| now - d < UNKNOWN_GRACE) => {
                        let mut again = pending::ActiveModel::from(r.clone()).reset_all();
                        again.due_at = Set(now + UNKNOWN_RETRY);
                        // A row from before `decided_at` existed gets its grace from now.
                        again.decided_at = Set(Some(r.decided_at.unwrap_or(now)));
                        retry.push(again);
                    }
                    Verdict::Later => decisions.push(skipped(r, Reason::Gone, now)),
                }
            }
            let (Some(p), Some(dr), false) = (p, dr, keep.is_empty()) else {
                continue;
            };
            *sent += 1;
            let event = self
                .message(p, dr, &keep, now)
                .map_err(|e| DbErr::Custom(format!("{e:#}")))?;
            let nid = event.data.notification_id;
            for (r, _) in &keep {
                told_rows.push(told::ActiveModel {
                    slot_id: Set(r.slot_id),
                    patient_id: Set(r.patient_id),
                    notification_id: Set(nid),
                    entry_id: Set(r.entry_id),
                    told_at: Set(now),
                    rank: Set(r.rank),
                    priority: Set(r.priority.clone()),
                    wave: Set(r.wave),
                });
            }
            events.push((event, first_trace(&keep)));
        }

        insert_new(
            conn,
            &retry,
            &[pending::Column::PatientId, pending::Column::SlotId],
        )
        .await?;
        insert_new(
            conn,
            &told_rows,
            &[told::Column::SlotId, told::Column::PatientId],
        )
        .await?;
        record_considered(conn, decisions).await?;
        // Each message continues the trace of the request that opened its slots.
        let traces: Vec<HashMap<String, String>> = events
            .iter()
            .map(|(_, trace)| serde_json::from_str(trace).unwrap_or_default())
            .collect();
        let traced: Vec<(&CloudEvent<NotifyPatient>, &HashMap<String, String>)> = events
            .iter()
            .zip(&traces)
            .map(|((event, _), trace)| (event, trace))
            .collect();
        outbox::enqueue_bundle(conn, &traced).await?;
        Ok(events.len())
    }

    /// One `notify.patient`: the patient, the practitioner, the slots with their booking links,
    /// and the preferences and one-click unsubscribe links.
    fn message(
        &self,
        p: &patient::Model,
        dr: &practitioner::Model,
        keep: &[(&pending::Model, &slot::Model)],
        now: DateTime<Utc>,
    ) -> anyhow::Result<CloudEvent<NotifyPatient>> {
        let (first, _) = keep[0];
        let mut slots: Vec<(&pending::Model, &slot::Model)> = keep.to_vec();
        slots.sort_by_key(|(_, s)| (s.starts_at, s.id));
        let ids: Vec<Uuid> = slots.iter().map(|(_, s)| s.id).collect();
        let nid = NotifyPatient::derive_id(p.id, &ids);
        let expires = slots.iter().map(|(_, s)| s.starts_at).max().unwrap_or(now);
        let token = self
            .signer
            .sign(nid, p.id, Some(first.entry_id), &ids, expires)?;
        let preferences = self.signer.sign_preferences(p.id)?;
        let base = &self.public_base_url;
        let offered = slots
            .iter()
            .map(|(r, s)| OfferedSlot {
                slot_id: s.id,
                starts_at: s.starts_at,
                ends_at: s.ends_at,
                booking_url: format!("{base}/v1/offers/{token}?slot_id={}", s.id),
                held_until: r.held_until,
            })
            .collect();
        let event = NotifyPatient {
            notification_id: nid,
            patient: PatientContact {
                id: p.id,
                name: p.name.clone(),
                email: p.email.clone(),
                locale: p.locale.clone(),
                timezone: p.timezone.clone(),
            },
            practitioner: PractitionerCard {
                id: dr.id,
                name: dr.name.clone(),
                specialty: dr.specialty.clone(),
                timezone: dr.timezone.clone(),
                consultation_fee_cents: dr.consultation_fee_cents,
                currency: dr.currency.clone(),
            },
            slots: offered,
            reason: WaitKind::parse(&first.reason).unwrap_or(WaitKind::New),
            entry_id: first.entry_id,
            batch_id: first.batch_id,
            channels: Channels {
                email: p.email_enabled,
                inapp: p.inapp_enabled,
            },
            wave: keep
                .iter()
                .filter_map(|(r, _)| r.wave)
                .max()
                .and_then(|w| u32::try_from(w).ok()),
            preferences_url: Some(format!("{base}/v1/preferences/{preferences}")),
            unsubscribe_url: Some(format!("{base}/v1/unsubscribe/{preferences}")),
        };
        Ok(CloudEvent::with_id(nid, SOURCE, event))
    }
}

/// Takes the pending offers of the first [`GROUPS_PER_PASS`] patient and practitioner pairs
/// that are due (a pair is due once its first offer is; only due rows are read, through the
/// `due_at` index) out of `pending`: a `DELETE … RETURNING` per practitioner and run of
/// patients, so the rows are read and removed by the same statement. Returns each pair with
/// its offers, the pair whose first offer was due first first. Every offer of a pair goes, due
/// or not (one message per pair); an offer decided after a statement's snapshot stays for the
/// next pass; the caller's transaction puts everything back if the pass fails.
async fn take_due<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
) -> Result<Vec<((Uuid, Uuid), Vec<pending::Model>)>, DbErr> {
    let groups: Vec<(Uuid, Uuid)> = pending::Entity::find()
        .select_only()
        .column(pending::Column::PatientId)
        .column(pending::Column::PractitionerId)
        .filter(pending::Column::DueAt.lte(now))
        .group_by(pending::Column::PatientId)
        .group_by(pending::Column::PractitionerId)
        .order_by(
            Expr::expr(Func::min(Expr::col(pending::Column::DueAt))),
            Order::Asc,
        )
        .limit(GROUPS_PER_PASS)
        .into_tuple()
        .all(conn)
        .await?;
    let mut by_practitioner: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for (patient, practitioner) in &groups {
        by_practitioner
            .entry(*practitioner)
            .or_default()
            .push(*patient);
    }
    let mut rows: HashMap<(Uuid, Uuid), Vec<pending::Model>> = HashMap::new();
    for (practitioner, patients) in by_practitioner {
        for run in slotcast_bus::rows::ids(&patients) {
            for row in pending::Entity::delete_many()
                .filter(pending::Column::PractitionerId.eq(practitioner))
                .filter(pending::Column::PatientId.is_in(run.iter().copied()))
                .exec_with_returning(conn)
                .await?
            {
                rows.entry((row.patient_id, row.practitioner_id))
                    .or_default()
                    .push(row);
            }
        }
    }
    Ok(groups
        .into_iter()
        .filter_map(|group| Some((group, rows.remove(&group)?)))
        .collect())
}

/// The slots among `ids`, locked for share on Postgres until the pass commits. A slot the
/// projector changes meanwhile (a booked slot released) waits for the pass, and the pass waits
/// for a change under way: otherwise the pass could drop an offer as taken while the release's
/// decision still counts it as pending, and the patient would never hear of the freed slot.
async fn slots_held<C: ConnectionTrait>(conn: &C, ids: &[Uuid]) -> Result<Vec<slot::Model>, DbErr> {
    let mut found = Vec::with_capacity(ids.len());
    for run in slotcast_bus::rows::ids(ids) {
        let mut select = slot::Entity::find().filter(slot::Column::Id.is_in(run.iter().copied()));
        if conn.get_database_backend() == DbBackend::Postgres {
            select = select.lock_shared();
        }
        found.extend(select.all(conn).await?);
    }
    Ok(found)
}

/// `ids` without repeats, in order (so lookups and their runs are the same from pass to pass).
fn distinct(ids: impl Iterator<Item = Uuid>) -> Vec<Uuid> {
    ids.collect::<BTreeSet<_>>().into_iter().collect()
}

fn first_trace<'a>(keep: &[(&'a pending::Model, &slot::Model)]) -> &'a str {
    keep.first().map_or("{}", |(r, _)| r.trace.as_str())
}

fn by_id<T>(rows: Vec<T>, id: impl Fn(&T) -> Uuid) -> HashMap<Uuid, T> {
    rows.into_iter().map(|r| (id(&r), r)).collect()
}

fn open_slot(s: &slot::Model) -> OpenSlot {
    OpenSlot {
        id: s.id,
        starts_at: s.starts_at,
        ends_at: s.ends_at,
        released_by: s.released_by,
    }
}

/// A pending offer skipped, for `considered`.
fn skipped(r: &pending::Model, reason: Reason, now: DateTime<Utc>) -> considered::ActiveModel {
    considered::ActiveModel {
        slot_id: Set(r.slot_id),
        patient_id: Set(r.patient_id),
        entry_id: Set(r.entry_id),
        rank: Set(r.rank),
        priority: Set(r.priority.clone()),
        outcome: Set(Outcome::Skipped),
        reason: Set(Some(reason)),
        wave: Set(r.wave),
        notification_id: Set(None),
        at: Set(now),
    }
}
