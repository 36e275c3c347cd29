//! The dispatcher: decides broadcast openings when they fall due, and turns their offers and
//! the due `pending` rows into `notify.patient` messages.
//!
//! A broadcast opening falls due when its coalescing window ends (`COALESCE_WINDOW_MS`); it is
//! decided then ([`crate::projection::offers`]), with every other opening of its practitioner
//! waiting out its window, so slots published in separate requests within the window reach a
//! patient together, and a patient who joined the list meanwhile is told too. Its offers go out
//! in the same pass, never written down; an opening too big for one pass is written to `pending`
//! and sent over the next passes. A `pending` offer (a wave's, due at once; one to a patient not
//! known yet, due again a moment later) goes with everything else pending for its patient and
//! practitioner, as one message. Before a message goes out:
//! - a slot booked, withdrawn or started since the decision is dropped from it;
//! - an entry that stopped waiting or expired drops its slots;
//! - a patient who switched both email and in-app off is skipped (`opted_out`); one who
//!   switched one off gets the message on the other only (`channels`);
//! - a patient who was sent `DAILY_MESSAGE_CAP` availability messages in the last 24 hours is
//!   skipped (`capped`);
//! - inside the patient's quiet hours (the practitioner's, else `QUIET_HOURS`) the text waits
//!   for their end or is skipped; where the practitioner applies them to every channel, the
//!   whole message does (written back to `pending`, due when they end, `waits_for` saying why;
//!   its slots that start before then are skipped).
//!
//! Each is [`crate::eligibility::verdict`] at the moment of sending. A message sent is recorded
//! in `told` (with its decision: rank, priority, wave), a skip in `considered`. One dispatcher
//! runs at a time across replicas (a transaction-scoped advisory lock). A pass decides its
//! openings, takes its `pending` rows, writes the `told` rows and the outbox events in one
//! transaction: a crash sends nothing twice and loses nothing.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
    sea_query::{Expr, Func},
};
use slotcast_bus::outbox::{self, Relay};
use slotcast_events::{
    Channels, CloudEvent, NotifyPatient, OfferPolicy, OfferedSlot, PatientContact,
    PractitionerCard, WaitKind,
};
use slotcast_links::OfferSigner;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    SOURCE,
    eligibility::{self, Cap, Case, Fit, QuietHours, QuietHoursSetting, Timing, Verdict},
    entities::{considered, entry, opening, patient, pending, practitioner, slot, told},
    fit::OpenSlot,
    passes::{Wakers, run_passes},
    projection::{self, Complete, find_in, insert_new, record_considered, sent_today},
    vocabulary::{Outcome, Reason},
};

/// The advisory lock key of the dispatcher (one per database).
const DISPATCH_LOCK: i64 = 0x5107_ca57_d15b;
/// Patient and practitioner pairs sent per transaction.
const GROUPS_PER_PASS: u64 = 500;
/// Due openings looked at per pass (with the other openings of their practitioners).
const OPENINGS_PER_PASS: u64 = 100;
/// Practitioners whose openings are decided together, while the pass has room.
const PRACTITIONERS_AT_ONCE: usize = 16;
/// How often due offers are looked for when nothing wakes the dispatcher.
const TICK: Duration = Duration::from_millis(200);
/// How long an offer to a patient matching does not know yet waits for their registration.
const UNKNOWN_GRACE: chrono::Duration = chrono::Duration::seconds(60);
/// How soon such an offer is looked at again.
const UNKNOWN_RETRY: chrono::Duration = chrono::Duration::milliseconds(500);

/// A patient and practitioner pair, with the offers that go to the patient in one message.
type Pair = ((Uuid, Uuid), Vec<pending::Model>);

/// Sends due offers: holds what sending needs, and nothing else.
pub struct Dispatcher {
    db: DatabaseConnection,
    relay: Relay,
    signer: OfferSigner,
    /// `PUBLIC_BASE_URL`, where booking links point.
    public_base_url: String,
    /// `DAILY_MESSAGE_CAP` (0: none).
    daily_cap: u32,
    /// `QUIET_HOURS`: when texts wait, for a practitioner without quiet hours of their own.
    quiet_hours: Option<QuietHours>,
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
            quiet_hours: None,
            wakers,
        }
    }

    /// The dispatcher, texting nobody in `quiet_hours` of their zone.
    pub fn with_quiet_hours(self, quiet_hours: Option<QuietHours>) -> Self {
        Self {
            quiet_hours,
            ..self
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
            || async {
                let (done, more) = self.pass().await?;
                Ok(if more { full } else { done.groups })
            },
            || self.next_due(),
        )
        .await;
    }

    /// When the first offer or opening not sent yet falls due (it may be due already).
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, DbErr> {
        let offer = pending::Entity::find()
            .select_only()
            .column_as(pending::Column::DueAt.min(), "due")
            .into_tuple::<Option<DateTime<Utc>>>()
            .one(&self.db)
            .await?
            .flatten();
        let opening = opening::Entity::find()
            .select_only()
            .column_as(opening::Column::DueAt.min(), "due")
            .into_tuple::<Option<DateTime<Utc>>>()
            .one(&self.db)
            .await?
            .flatten();
        Ok(offer.into_iter().chain(opening).min())
    }

    /// Sends one pass of due offers and openings (nothing while another replica is sending).
    pub async fn run_once(&self) -> Result<Dispatched, DbErr> {
        self.pass().await.map(|(done, _)| done)
    }

    /// [`Self::run_once`], and whether more was due than the pass could take.
    async fn pass(&self) -> Result<(Dispatched, bool), DbErr> {
        let txn = self.db.begin().await?;
        if !slotcast_kit::db::try_xact_lock(&txn, DISPATCH_LOCK).await? {
            // Another replica is dispatching.
            return Ok((Dispatched::default(), false));
        }
        let now = Utc::now();
        let budget = usize::try_from(GROUPS_PER_PASS).unwrap_or(usize::MAX);
        let mut taken = take_due(&txn, now, budget).await?;
        let mut more = taken.len() == budget;
        let mut decided = Decided::default();
        if taken.len() < budget {
            decided = decide_due(&txn, now, budget - taken.len()).await?;
            more |= decided.more;
            if decided.spilled {
                let left = budget - taken.len();
                taken = merged(taken, take_due(&txn, now, left).await?);
            }
            taken = merged(taken, std::mem::take(&mut decided.offers));
        }
        if taken.is_empty() && decided.openings == 0 {
            return Ok((Dispatched::default(), more));
        }
        let groups = taken.len();
        let sent = self.send(&txn, taken, decided.considered, now).await?;
        txn.commit().await?;
        if sent > 0 {
            self.relay.wake();
        }
        metrics::counter!("slotcast_matching_notifications_total").increment(sent as u64);
        Ok((Dispatched { groups, sent }, more))
    }

    /// Sends the offers `taken` (out of `pending`, or decided in this pass), a patient and
    /// practitioner pair at a time in the order given, and records `decisions` with its own;
    /// returns the messages sent.
    async fn send<C: ConnectionTrait>(
        &self,
        conn: &C,
        taken: Vec<Pair>,
        mut decisions: Vec<considered::ActiveModel>,
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
                .map(|r| slots.get(&r.slot_id).map(OpenSlot::from))
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
                        sms: p.texts(),
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
            // Capped rows are recorded once the quiet hours had their say: a message that waits
            // for them meets the cap when it goes.
            let mut capped: Vec<(&pending::Model, &slot::Model)> = Vec::new();
            for (r, slot) in rows.into_iter().zip(&open) {
                match judge(r, slot, cap) {
                    Verdict::Tell => keep.extend(slots.get(&r.slot_id).map(|s| (r, s))),
                    Verdict::Skip(Reason::Capped) if slots.contains_key(&r.slot_id) => {
                        capped.extend(slots.get(&r.slot_id).map(|s| (r, s)));
                    }
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
            let held: Vec<(&pending::Model, &slot::Model)> =
                keep.iter().chain(&capped).copied().collect();
            let (Some(p), Some(dr), false) = (p, dr, held.is_empty()) else {
                decisions.extend(capped.iter().map(|(r, _)| skipped(r, Reason::Capped, now)));
                continue;
            };
            let text = match self.timing(p, dr, &held, now) {
                Timing::Now(text) => text,
                Timing::Wait(at) => {
                    metrics::counter!("slotcast_matching_deferred_total", "reason" => Reason::QuietHours.as_str())
                        .increment(1);
                    // A slot that starts before the quiet hours end is not worth the wait.
                    for (r, s) in &held {
                        if s.starts_at <= at {
                            decisions.push(skipped(r, Reason::QuietHours, now));
                            continue;
                        }
                        let mut again = pending::ActiveModel::from((*r).clone()).reset_all();
                        again.due_at = Set(at);
                        again.decided_at = Set(Some(r.decided_at.unwrap_or(now)));
                        again.waits_for = Set(Some(Reason::QuietHours));
                        retry.push(again);
                    }
                    continue;
                }
                Timing::Skip(why) => {
                    metrics::counter!("slotcast_matching_skipped_total", "reason" => why.as_str())
                        .increment(held.len() as u64);
                    decisions.extend(held.iter().map(|(r, _)| skipped(r, why, now)));
                    continue;
                }
            };
            if !capped.is_empty() {
                metrics::counter!("slotcast_matching_skipped_total", "reason" => Reason::Capped.as_str())
                    .increment(capped.len() as u64);
                decisions.extend(capped.iter().map(|(r, _)| skipped(r, Reason::Capped, now)));
            }
            if keep.is_empty() {
                continue;
            }
            *sent += 1;
            if let eligibility::Text::Skip(why) = text {
                metrics::counter!("slotcast_matching_texts_skipped_total", "reason" => why.as_str())
                    .increment(1);
            }
            let event = self
                .message(p, dr, &keep, text, now)
                .map_err(|e| DbErr::Custom(format!("{e:#}")))?;
            let nid = event.data.notification_id;
            let (texted, text_at) = match p.texts() {
                true => {
                    let (texted, at) = text.recorded();
                    (Some(texted), at)
                }
                false => (None, None),
            };
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
                    texted: Set(texted),
                    text_at: Set(text_at),
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

    /// When a message to `p` about `keep` goes, and its text: the practitioner's quiet hours
    /// (else `QUIET_HOURS`), in the patient's zone (else the practitioner's).
    fn timing(
        &self,
        p: &patient::Model,
        dr: &practitioner::Model,
        keep: &[(&pending::Model, &slot::Model)],
        now: DateTime<Utc>,
    ) -> Timing {
        let zone: Tz = p
            .timezone
            .as_deref()
            .and_then(|z| z.parse().ok())
            .or_else(|| dr.timezone.parse().ok())
            .unwrap_or(Tz::UTC);
        let own = dr.quiet_hours.as_deref().and_then(QuietHoursSetting::parse);
        let quiet = eligibility::quiet_hours(own, self.quiet_hours);
        let held = keep.iter().any(|(r, _)| r.wave.is_some());
        let last_start = keep.iter().map(|(_, s)| s.starts_at).max().unwrap_or(now);
        eligibility::timing(now, zone, quiet, dr.quiet_all_channels, held, last_start)
    }

    /// One `notify.patient`: the patient, the practitioner, the slots with their booking links,
    /// the preferences and one-click unsubscribe links, and whether and when it is texted.
    fn message(
        &self,
        p: &patient::Model,
        dr: &practitioner::Model,
        keep: &[(&pending::Model, &slot::Model)],
        text: eligibility::Text,
        now: DateTime<Utc>,
    ) -> anyhow::Result<CloudEvent<NotifyPatient>> {
        let (first, _) = keep[0];
        let mut slots: Vec<(&pending::Model, &slot::Model)> = keep.to_vec();
        slots.sort_by_key(|(_, s)| (s.starts_at, s.id));
        let ids: Vec<Uuid> = slots.iter().map(|(_, s)| s.id).collect();
        let nid = NotifyPatient::derive_id(p.id, &ids);
        let expires = slots.iter().map(|(_, s)| s.starts_at).max().unwrap_or(now);
        let token = self.signer.sign(nid, p.id, first.entry_id, &ids, expires)?;
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
                phone: p.phone.clone(),
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
                sms: p.texts() && !matches!(text, eligibility::Text::Skip(_)),
            },
            sms_not_before: match text {
                eligibility::Text::After(at) if p.texts() => Some(at),
                _ => None,
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

/// Takes the pending offers of the first `budget` patient and practitioner pairs that are due
/// (a pair is due once its first offer is; only due rows are read, through the `due_at` index)
/// out of `pending`: a `DELETE … RETURNING` per practitioner and run of
/// patients, so the rows are read and removed by the same statement. Returns each pair with
/// its offers, the pair whose first offer was due first first. Every offer of a pair goes, due
/// or not (one message per pair); an offer decided after a statement's snapshot stays for the
/// next pass; the caller's transaction puts everything back if the pass fails.
async fn take_due<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
    budget: usize,
) -> Result<Vec<Pair>, DbErr> {
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
        .limit(u64::try_from(budget).unwrap_or(u64::MAX))
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

/// The broadcast openings decided in a pass, by [`decide_due`].
#[derive(Default)]
struct Decided {
    /// Their offers, by patient and practitioner pair.
    offers: Vec<Pair>,
    /// What did not become an offer, for `considered`.
    considered: Vec<considered::ActiveModel>,
    /// How many openings were decided.
    openings: usize,
    /// Whether openings that are due were left for the next pass.
    more: bool,
    /// Whether an opening's offers were written to `pending` (too many for one pass).
    spilled: bool,
}

/// Decides the broadcast openings that are due ([`projection::offers`]), each with every other
/// opening of its practitioner waiting out its window (slots posted apart within the window go
/// out together): practitioner by practitioner in the order they fell due, while their pairs
/// fit in `budget`. An opening too big for any pass has its offers written to `pending`, due
/// now, for the passes that follow. A pair's offers already in `pending` go with it (one
/// message per pair).
async fn decide_due<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
    budget: usize,
) -> Result<Decided, DbErr> {
    let due = opening::Entity::find()
        .filter(opening::Column::DueAt.lte(now))
        .order_by_asc(opening::Column::DueAt)
        .limit(OPENINGS_PER_PASS)
        .all(conn)
        .await?;
    let mut decided = Decided {
        more: due.len() as u64 == OPENINGS_PER_PASS,
        ..Decided::default()
    };
    let mut practitioners: Vec<Uuid> = Vec::new();
    for o in &due {
        if !practitioners.contains(&o.practitioner_id) {
            practitioners.push(o.practitioner_id);
        }
    }
    // A few practitioners at a time: those past the budget are not decided for nothing.
    let mut chunks = practitioners.chunks(PRACTITIONERS_AT_ONCE);
    for chunk in chunks.by_ref() {
        if decide_for(conn, now, chunk, budget, &mut decided).await? {
            break;
        }
    }
    decided.more |= chunks.next().is_some();
    decided.offers = with_pending(conn, std::mem::take(&mut decided.offers)).await?;
    Ok(decided)
}

/// [`decide_due`] for `practitioners`, in order, into `decided`; returns whether the budget
/// stopped it.
async fn decide_for<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
    practitioners: &[Uuid],
    budget: usize,
    decided: &mut Decided,
) -> Result<bool, DbErr> {
    let full = usize::try_from(GROUPS_PER_PASS).unwrap_or(usize::MAX);
    let waiting = opening::Entity::find()
        .filter(opening::Column::PractitionerId.is_in(practitioners.iter().copied()))
        .filter(opening::Column::DueAt.is_not_null())
        .all(conn)
        .await?;
    let batch_ids: Vec<Uuid> = waiting.iter().map(|o| o.batch_id).collect();
    let mut slots_of = projection::slots_of(conn, &batch_ids).await?;
    let complete: Vec<Complete> = waiting
        .iter()
        .map(|o| Complete {
            practitioner_id: o.practitioner_id,
            batch_id: o.batch_id,
            slot_ids: slots_of.remove(&o.batch_id).unwrap_or_default(),
            policy: OfferPolicy::Broadcast,
            trace: o.trace.clone(),
        })
        .collect();
    let (offers, considered) = projection::offers(conn, &complete, now).await?;
    let mut pairs_of: HashMap<Uuid, Vec<Pair>> = HashMap::new();
    let mut at: HashMap<(Uuid, Uuid), usize> = HashMap::new();
    for offer in offers {
        let pairs = pairs_of.entry(offer.practitioner_id).or_default();
        let pair = (offer.patient_id, offer.practitioner_id);
        match at.get(&pair) {
            Some(&i) => pairs[i].1.push(offer),
            None => {
                at.insert(pair, pairs.len());
                pairs.push((pair, vec![offer]));
            }
        }
    }
    let mut accepted: HashSet<Uuid> = HashSet::new();
    let mut spilled: Vec<pending::ActiveModel> = Vec::new();
    let mut stopped = false;
    for dr in practitioners {
        let pairs = pairs_of.remove(dr).unwrap_or_default();
        if decided.offers.len() + pairs.len() > budget {
            stopped = true;
            if decided.offers.is_empty() && pairs.len() > full {
                accepted.insert(*dr);
                decided.spilled = true;
                spilled.extend(
                    pairs
                        .into_iter()
                        .flat_map(|(_, rows)| rows)
                        .map(|r| pending::ActiveModel::from(r).reset_all()),
                );
            }
            break;
        }
        accepted.insert(*dr);
        decided.offers.extend(pairs);
    }
    let settled: Vec<Uuid> = complete
        .iter()
        .filter(|o| accepted.contains(&o.practitioner_id))
        .map(|o| o.batch_id)
        .collect();
    decided.considered.extend(
        considered
            .into_iter()
            .filter(|(dr, _)| accepted.contains(dr))
            .map(|(_, c)| c),
    );
    decided.openings += settled.len();
    for run in slotcast_bus::rows::ids(&settled) {
        opening::Entity::update_many()
            .col_expr(opening::Column::DecidedAt, Expr::value(now))
            .col_expr(
                opening::Column::DueAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(opening::Column::BatchId.is_in(run.iter().copied()))
            .exec(conn)
            .await?;
    }
    insert_new(
        conn,
        &spilled,
        &[pending::Column::PatientId, pending::Column::SlotId],
    )
    .await?;
    Ok(stopped)
}

/// `pairs` with the offers of each pair already in `pending`, taken out of it.
async fn with_pending<C: ConnectionTrait>(
    conn: &C,
    mut pairs: Vec<Pair>,
) -> Result<Vec<Pair>, DbErr> {
    let patients = distinct(pairs.iter().map(|((p, _), _)| *p));
    let mut found: Vec<pending::Model> = Vec::new();
    for run in slotcast_bus::rows::ids(&patients) {
        found.extend(
            pending::Entity::find()
                .filter(pending::Column::PatientId.is_in(run.iter().copied()))
                .all(conn)
                .await?,
        );
    }
    let at: HashMap<(Uuid, Uuid), usize> = pairs
        .iter()
        .enumerate()
        .map(|(i, (pair, _))| (*pair, i))
        .collect();
    for row in found {
        let Some(&i) = at.get(&(row.patient_id, row.practitioner_id)) else {
            continue;
        };
        pending::Entity::delete_by_id((row.patient_id, row.slot_id))
            .exec(conn)
            .await?;
        let rows = &mut pairs[i].1;
        if !rows.iter().any(|r| r.slot_id == row.slot_id) {
            rows.push(row);
        }
    }
    Ok(pairs)
}

/// `first` then `then`, a pair in both once (with the offers of both).
fn merged(first: Vec<Pair>, then: Vec<Pair>) -> Vec<Pair> {
    let mut all = first;
    let mut at: HashMap<(Uuid, Uuid), usize> = all
        .iter()
        .enumerate()
        .map(|(i, (pair, _))| (*pair, i))
        .collect();
    for (pair, rows) in then {
        match at.get(&pair) {
            Some(&i) => {
                let have = &mut all[i].1;
                for r in rows {
                    if !have.iter().any(|h| h.slot_id == r.slot_id) {
                        have.push(r);
                    }
                }
            }
            None => {
                at.insert(pair, all.len());
                all.push((pair, rows));
            }
        }
    }
    all
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
