//! The scheduling events applied to matching's projection, and the decision an opening triggers.
//!
//! Each event is applied in one transaction together with what it decides: the projection
//! change, the `told` rows and the `notify.patient` events in the outbox commit or roll back
//! together, so a redelivered event finds its work done and changes nothing.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use chrono::Utc;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    QueryFilter, QuerySelect, Set, TransactionTrait,
    sea_query::{Expr, OnConflict},
};
use slotcast_bus::{
    consumer::{Delivery, Handler, Outcome},
    outbox::{self, Relay},
};
use slotcast_events::{
    CloudEvent, DecodeError, NotifyPatient, OfferClaimed, OfferLost, OfferedSlot, PatientContact,
    PatientRegistered, PractitionerCard, PractitionerRegistered, ReleaseReason, SlotBooked,
    SlotCreated, SlotReleased, SlotWithdrawn, WaitKind, WaitlistClosed, WaitlistJoined, decode,
    subjects,
};
use slotcast_kit::offer::OfferSigner;
use uuid::Uuid;

use crate::{
    SOURCE,
    entities::{entry, history, opening, opening_slot, patient, practitioner, slot, told},
    fit::{self, OpenSlot, Waiting},
};

const OPEN: &str = "open";
/// `told` rows written by one `INSERT`.
const TOLD_ROWS_PER_INSERT: usize = 2_000;
const BOOKED: &str = "booked";
const WITHDRAWN: &str = "withdrawn";

/// Applies scheduling events and decides who is told about each opening.
pub struct Matcher {
    pub db: DatabaseConnection,
    pub relay: Relay,
    pub signer: OfferSigner,
    /// `PUBLIC_BASE_URL`, where booking links point.
    pub public_base_url: String,
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Malformed(#[from] DecodeError),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Handler for Matcher {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        match self.apply(delivery).await {
            Ok(told) => {
                if told > 0 {
                    self.relay.wake();
                }
                Outcome::Done
            }
            Err(Failure::Malformed(e)) => Outcome::Reject(e.to_string()),
            Err(e) => {
                let backoff = Duration::from_millis(250)
                    * 2u32.pow(delivery.deliveries.clamp(1, 8) as u32 - 1);
                Outcome::retry(
                    backoff.min(Duration::from_secs(30)),
                    &anyhow::Error::from(e),
                )
            }
        }
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

impl Matcher {
    /// Applies one event; returns how many patients it decided to tell.
    async fn apply(&self, d: &Delivery) -> Result<usize, Failure> {
        let txn = self.db.begin().await?;
        let told = match d.subject.as_str() {
            subjects::PRACTITIONER_REGISTERED => {
                let e = decode::<PractitionerRegistered>(&d.payload)?.data;
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
                .exec_without_returning(&txn)
                .await?;
                0
            }
            subjects::PATIENT_REGISTERED => {
                let e = decode::<PatientRegistered>(&d.payload)?.data;
                patient::Entity::insert(patient::ActiveModel {
                    id: Set(e.patient_id),
                    name: Set(e.name),
                    email: Set(e.email),
                    locale: Set(e.locale),
                    timezone: Set(e.timezone),
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
                .exec_without_returning(&txn)
                .await?;
                0
            }
            subjects::WAITLIST_JOINED => {
                let e = decode::<WaitlistJoined>(&d.payload)?.data;
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
                })
                .on_conflict_do_nothing_on([entry::Column::Id])
                .exec_without_returning(&txn)
                .await?;
                0
            }
            subjects::WAITLIST_CLOSED => {
                let e = decode::<WaitlistClosed>(&d.payload)?.data;
                entry::Entity::update_many()
                    .col_expr(entry::Column::Active, Expr::value(false))
                    .filter(entry::Column::Id.eq(e.entry_id))
                    .exec(&txn)
                    .await?;
                0
            }
            subjects::SLOT_CREATED => {
                let ev = decode::<SlotCreated>(&d.payload)?;
                record(&txn, &ev, ev.data.slot_id, "published", None, None, None).await?;
                let e = ev.data;
                // A redelivered `created` must not reopen a slot booked since: insert only.
                slot::Entity::insert(slot::ActiveModel {
                    id: Set(e.slot_id),
                    practitioner_id: Set(e.practitioner_id),
                    starts_at: Set(e.starts_at),
                    ends_at: Set(e.ends_at),
                    status: Set(OPEN.to_owned()),
                    released_by: Set(None),
                })
                .on_conflict_do_nothing_on([slot::Column::Id])
                .exec_without_returning(&txn)
                .await?;
                self.add_to_opening(&txn, e.batch_id, e.practitioner_id, e.batch_size, e.slot_id)
                    .await?
            }
            subjects::SLOT_RELEASED => {
                let ev = decode::<SlotReleased>(&d.payload)?;
                let reason = match ev.data.reason {
                    ReleaseReason::Cancelled => "cancelled",
                    ReleaseReason::MovedUp => "moved_up",
                };
                let (slot_id, by) = (ev.data.slot_id, ev.data.released_by);
                record(&txn, &ev, slot_id, "released", by, None, Some(reason)).await?;
                let e = ev.data;
                slot::Entity::insert(slot::ActiveModel {
                    id: Set(e.slot_id),
                    practitioner_id: Set(e.practitioner_id),
                    starts_at: Set(e.starts_at),
                    ends_at: Set(e.ends_at),
                    status: Set(OPEN.to_owned()),
                    released_by: Set(e.released_by),
                })
                .on_conflict(upsert(
                    [slot::Column::Id],
                    [slot::Column::Status, slot::Column::ReleasedBy],
                ))
                .exec_without_returning(&txn)
                .await?;
                self.add_to_opening(&txn, e.batch_id, e.practitioner_id, e.batch_size, e.slot_id)
                    .await?
            }
            subjects::SLOT_BOOKED => {
                let ev = decode::<SlotBooked>(&d.payload)?;
                let (slot_id, by) = (ev.data.slot_id, Some(ev.data.patient_id));
                record(&txn, &ev, slot_id, "booked", by, None, None).await?;
                let e = ev.data;
                set_slot_status(&txn, e.slot_id, BOOKED).await?;
                0
            }
            subjects::SLOT_WITHDRAWN => {
                let ev = decode::<SlotWithdrawn>(&d.payload)?;
                record(&txn, &ev, ev.data.slot_id, "withdrawn", None, None, None).await?;
                let e = ev.data;
                set_slot_status(&txn, e.slot_id, WITHDRAWN).await?;
                0
            }
            subjects::OFFER_CLAIMED => {
                let ev = decode::<OfferClaimed>(&d.payload)?;
                let e = &ev.data;
                let (slot_id, patient, nid) = (e.slot_id, e.patient_id, e.notification_id);
                record(
                    &txn,
                    &ev,
                    slot_id,
                    "claimed",
                    Some(patient),
                    Some(nid),
                    None,
                )
                .await?;
                0
            }
            subjects::OFFER_LOST => {
                let ev = decode::<OfferLost>(&d.payload)?;
                let e = &ev.data;
                let (slot_id, patient, nid) = (e.slot_id, e.patient_id, e.notification_id);
                let reason = Some(e.reason.as_str());
                record(&txn, &ev, slot_id, "lost", Some(patient), Some(nid), reason).await?;
                0
            }
            // Not an input of matching (appointment.cancelled and .moved: a slot.released
            // follows).
            _ => 0,
        };
        txn.commit().await?;
        Ok(told)
    }

    /// Records that `slot_id` belongs to opening `batch_id`; once every slot of the opening is
    /// there, decides it. The opening row is locked first, so two replicas handling slots of one
    /// batch at once neither both decide nor both miss the last slot.
    async fn add_to_opening<C: ConnectionTrait>(
        &self,
        conn: &C,
        batch_id: Uuid,
        practitioner_id: Uuid,
        batch_size: u32,
        slot_id: Uuid,
    ) -> Result<usize, Failure> {
        opening::Entity::insert(opening::ActiveModel {
            batch_id: Set(batch_id),
            practitioner_id: Set(practitioner_id),
            expected: Set(i32::try_from(batch_size).unwrap_or(i32::MAX)),
            decided_at: Set(None),
        })
        .on_conflict_do_nothing_on([opening::Column::BatchId])
        .exec_without_returning(conn)
        .await?;
        let mut lock = opening::Entity::find_by_id(batch_id);
        if conn.get_database_backend() == DbBackend::Postgres {
            lock = lock.lock_exclusive();
        }
        let Some(open) = lock.one(conn).await? else {
            return Err(anyhow::anyhow!("opening {batch_id} vanished").into());
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
        self.decide(conn, practitioner_id, batch_id, &slot_ids)
            .await
    }

    /// Tells every fitting patient about the opening's slots still open, once.
    async fn decide<C: ConnectionTrait>(
        &self,
        conn: &C,
        practitioner_id: Uuid,
        batch_id: Uuid,
        slot_ids: &[Uuid],
    ) -> Result<usize, Failure> {
        let started = std::time::Instant::now();
        let now = Utc::now();
        let slots: Vec<OpenSlot> = slot::Entity::find()
            .filter(slot::Column::Id.is_in(slot_ids.to_vec()))
            .filter(slot::Column::Status.eq(OPEN))
            .filter(slot::Column::StartsAt.gt(now))
            .all(conn)
            .await?
            .into_iter()
            .map(|s| OpenSlot {
                id: s.id,
                starts_at: s.starts_at,
                ends_at: s.ends_at,
                released_by: s.released_by,
            })
            .collect();
        if slots.is_empty() {
            return Ok(0);
        }
        // Only the entries that can fit one of the slots come back (the index
        // `entries_practitioner_active_earliest` serves the window); `fit::decide` then checks
        // each pair exactly. A long list of patients waiting for other times costs nothing here.
        let first_start = slots.iter().map(|s| s.starts_at).min().unwrap_or(now);
        let last_start = slots.iter().map(|s| s.starts_at).max().unwrap_or(now);
        let first_end = slots.iter().map(|s| s.ends_at).min().unwrap_or(now);
        let waiting: Vec<Waiting> = entry::Entity::find()
            .filter(entry::Column::PractitionerId.eq(practitioner_id))
            .filter(entry::Column::Active.eq(true))
            .filter(
                Condition::any()
                    .add(entry::Column::Earliest.is_null())
                    .add(entry::Column::Earliest.lte(last_start)),
            )
            .filter(
                Condition::any()
                    .add(entry::Column::Latest.is_null())
                    .add(entry::Column::Latest.gte(first_end)),
            )
            .filter(
                Condition::any()
                    .add(entry::Column::Kind.eq(WaitKind::New.as_str()))
                    .add(entry::Column::HeldStartsAt.gt(first_start)),
            )
            .all(conn)
            .await?
            .into_iter()
            .filter_map(|e| {
                Some(Waiting {
                    entry_id: e.id,
                    patient_id: e.patient_id,
                    kind: WaitKind::parse(&e.kind)?,
                    held_starts_at: e.held_starts_at,
                    earliest: e.earliest,
                    latest: e.latest,
                    joined_at: e.joined_at,
                })
            })
            .collect();
        let already: HashSet<(Uuid, Uuid)> = told::Entity::find()
            .filter(told::Column::SlotId.is_in(slot_ids.to_vec()))
            .all(conn)
            .await?
            .into_iter()
            .map(|t| (t.slot_id, t.patient_id))
            .collect();
        let decisions = fit::decide(&slots, &waiting, &already);
        metrics::histogram!("slotcast_matching_decide_seconds")
            .record(started.elapsed().as_secs_f64());
        if decisions.is_empty() {
            return Ok(0);
        }
        let card = practitioner::Entity::find_by_id(practitioner_id)
            .one(conn)
            .await?
            .map(|p| PractitionerCard {
                id: p.id,
                name: p.name,
                specialty: p.specialty,
                timezone: p.timezone,
                consultation_fee_cents: p.consultation_fee_cents,
                currency: p.currency,
            })
            .ok_or_else(|| {
                anyhow::anyhow!("practitioner {practitioner_id} not in the projection yet")
            })?;
        let patients: HashMap<Uuid, patient::Model> = patient::Entity::find()
            .filter(
                patient::Column::Id
                    .is_in(decisions.iter().map(|d| d.patient_id).collect::<Vec<_>>()),
            )
            .all(conn)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        let mut count = 0;
        let mut told_rows: Vec<told::ActiveModel> = Vec::with_capacity(decisions.len());
        for d in decisions {
            let Some(p) = patients.get(&d.patient_id) else {
                tracing::warn!(patient_id = %d.patient_id, "waiting patient unknown to the projection; skipped");
                continue;
            };
            let ids: Vec<Uuid> = d.slots.iter().map(|s| s.id).collect();
            let nid = NotifyPatient::derive_id(d.patient_id, &ids);
            let expires = d.slots.iter().map(|s| s.starts_at).max().unwrap_or(now);
            let token = self
                .signer
                .sign(nid, d.patient_id, Some(d.entry_id), &ids, expires)
                .map_err(anyhow::Error::from)?;
            let offered = d
                .slots
                .iter()
                .map(|s| OfferedSlot {
                    slot_id: s.id,
                    starts_at: s.starts_at,
                    ends_at: s.ends_at,
                    booking_url: format!(
                        "{}/v1/offers/{token}?slot_id={}",
                        self.public_base_url, s.id
                    ),
                })
                .collect();
            told_rows.extend(d.slots.iter().map(|s| told::ActiveModel {
                slot_id: Set(s.id),
                patient_id: Set(d.patient_id),
                notification_id: Set(nid),
                entry_id: Set(d.entry_id),
                told_at: Set(now),
            }));
            let event = NotifyPatient {
                notification_id: nid,
                patient: PatientContact {
                    id: p.id,
                    name: p.name.clone(),
                    email: p.email.clone(),
                    locale: p.locale.clone(),
                    timezone: p.timezone.clone(),
                },
                practitioner: card.clone(),
                slots: offered,
                reason: d.reason,
                entry_id: d.entry_id,
                batch_id,
            };
            outbox::enqueue(conn, &CloudEvent::with_id(nid, SOURCE, event)).await?;
            count += 1;
        }
        // In the same transaction as the outbox rows: one statement per chunk, not per patient
        // (5 parameters a row, well under the 65,535 a statement may bind).
        for chunk in told_rows.chunks(TOLD_ROWS_PER_INSERT) {
            told::Entity::insert_many(chunk.to_vec())
                .on_conflict_do_nothing_on([told::Column::SlotId, told::Column::PatientId])
                .exec_without_returning(conn)
                .await?;
        }
        metrics::counter!("slotcast_matching_notifications_total").increment(count as u64);
        tracing::info!(%batch_id, %practitioner_id, slots = slots.len(), patients = count, "opening decided");
        Ok(count)
    }
}

/// Adds `event` to the history of `slot_id`, once (keyed by the event id).
async fn record<C: ConnectionTrait, T>(
    conn: &C,
    event: &CloudEvent<T>,
    slot_id: Uuid,
    kind: &str,
    patient_id: Option<Uuid>,
    notification_id: Option<Uuid>,
    reason: Option<&str>,
) -> Result<(), DbErr> {
    history::Entity::insert(history::ActiveModel {
        event_id: Set(event.id),
        slot_id: Set(slot_id),
        at: Set(event.time),
        kind: Set(kind.to_owned()),
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
    status: &str,
) -> Result<(), DbErr> {
    slot::Entity::update_many()
        .col_expr(slot::Column::Status, Expr::value(status))
        .filter(slot::Column::Id.eq(slot_id))
        .exec(conn)
        .await?;
    Ok(())
}
