//! The projector: applies scheduling events to matching's projection and decides the openings
//! they complete ([`crate::projection::decide`]).
//!
//! Each event is applied in one transaction together with what it decides: the projection
//! change and the pending offers commit or roll back together, so a redelivered event finds
//! its work done and changes nothing.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QuerySelect, Set, TransactionTrait,
    sea_query::{Expr, OnConflict},
};
use slotcast_bus::consumer::{Delivery, Handler, Outcome};
use slotcast_events::{
    CloudEvent, DecodeError, OfferClaimed, OfferLost, OfferPolicy, PatientPreferencesChanged,
    PatientRegistered, PractitionerRegistered, ReleaseReason, SlotBooked, SlotCreated,
    SlotReleased, SlotWithdrawn, WaitlistClosed, WaitlistJoined, WaitlistUpdated, decode, subjects,
};
use uuid::Uuid;

use crate::{
    entities::{entry, history, opening, opening_slot, patient, practitioner, slot},
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

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Malformed(#[from] DecodeError),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Handler for Projector {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        match self.apply(delivery).await {
            Ok(decided) => {
                if decided > 0 {
                    self.wakers.dispatch.notify_one();
                    self.wakers.waves.notify_one();
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

impl Projector {
    /// Applies one event; returns how many offers (or wave timers) it decided.
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
                .exec_without_returning(&txn)
                .await?;
                0
            }
            subjects::PATIENT_PREFERENCES_CHANGED => {
                let e = decode::<PatientPreferencesChanged>(&d.payload)?.data;
                patient::Entity::update_many()
                    .col_expr(patient::Column::EmailEnabled, Expr::value(e.email))
                    .col_expr(patient::Column::InappEnabled, Expr::value(e.inapp))
                    .filter(patient::Column::Id.eq(e.patient_id))
                    .exec(&txn)
                    .await?;
                0
            }
            subjects::WAITLIST_UPDATED => {
                let e = decode::<WaitlistUpdated>(&d.payload)?.data;
                entry::Entity::update_many()
                    .col_expr(entry::Column::Priority, Expr::value(e.priority.as_str()))
                    .col_expr(entry::Column::ExpiresAt, Expr::value(e.expires_at))
                    .filter(entry::Column::Id.eq(e.entry_id))
                    .exec(&txn)
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
                    priority: Set(e.priority.as_str().to_owned()),
                    expires_at: Set(e.expires_at),
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
                record(
                    &txn,
                    &ev,
                    ev.data.slot_id,
                    HistoryKind::Published,
                    None,
                    None,
                    None,
                )
                .await?;
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
                .exec_without_returning(&txn)
                .await?;
                let opening = Opening {
                    batch_id: e.batch_id,
                    practitioner_id: e.practitioner_id,
                    size: e.batch_size,
                    policy: e.offer_policy,
                };
                self.add_to_opening(&txn, &opening, e.slot_id).await?
            }
            subjects::SLOT_RELEASED => {
                let ev = decode::<SlotReleased>(&d.payload)?;
                let reason = match ev.data.reason {
                    ReleaseReason::Cancelled => "cancelled",
                    ReleaseReason::MovedUp => "moved_up",
                };
                let (slot_id, by) = (ev.data.slot_id, ev.data.released_by);
                record(
                    &txn,
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
                .exec_without_returning(&txn)
                .await?;
                let opening = Opening {
                    batch_id: e.batch_id,
                    practitioner_id: e.practitioner_id,
                    size: e.batch_size,
                    policy: e.offer_policy,
                };
                self.add_to_opening(&txn, &opening, e.slot_id).await?
            }
            subjects::SLOT_BOOKED => {
                let ev = decode::<SlotBooked>(&d.payload)?;
                let (slot_id, by) = (ev.data.slot_id, Some(ev.data.patient_id));
                record(&txn, &ev, slot_id, HistoryKind::Booked, by, None, None).await?;
                let e = ev.data;
                set_slot_status(&txn, e.slot_id, SlotStatus::Booked).await?;
                0
            }
            subjects::SLOT_WITHDRAWN => {
                let ev = decode::<SlotWithdrawn>(&d.payload)?;
                record(
                    &txn,
                    &ev,
                    ev.data.slot_id,
                    HistoryKind::Withdrawn,
                    None,
                    None,
                    None,
                )
                .await?;
                let e = ev.data;
                set_slot_status(&txn, e.slot_id, SlotStatus::Withdrawn).await?;
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
                    HistoryKind::Claimed,
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
                record(
                    &txn,
                    &ev,
                    slot_id,
                    HistoryKind::Lost,
                    Some(patient),
                    Some(nid),
                    reason,
                )
                .await?;
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
        o: &Opening,
        slot_id: Uuid,
    ) -> Result<usize, Failure> {
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
        let policy = OfferPolicy::parse(&open.policy).unwrap_or_default();
        Ok(decide(
            conn,
            &self.policy,
            practitioner_id,
            batch_id,
            &slot_ids,
            policy,
        )
        .await?)
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
