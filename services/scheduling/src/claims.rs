//! Claiming an offer: booking one of the slots a link offers, once per link, as a new
//! appointment or as a move-up of the one the patient holds.

use axum::http::StatusCode;
use chrono::{TimeZone, Utc};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, Set,
    TransactionTrait,
};
use slotcast_events::{LostReason, OfferClaimed, OfferLost, WaitKind};
use slotcast_kit::Problem;
use slotcast_links::OfferClaims;
use uuid::Uuid;

use crate::{
    Policy,
    booking::{Booked, Refusal, book_slot, move_up},
    confirmations::Links,
    entities::{
        appointment::{self, BOOKED as APPOINTMENT_BOOKED},
        offer, slot, waitlist_entry,
    },
    store::{emit, for_update},
    waiting::ACTIVE,
};

/// A claim that booked: the appointment, and for a move-up the slot it left.
#[derive(Debug)]
pub struct Claim {
    pub booked: Booked,
    pub moved_from_slot_id: Option<Uuid>,
}

/// Why a claim did not book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The link booked already, this appointment.
    Used(Option<Uuid>),
    /// The waiting-list entry the offer answered is no longer open.
    EntryClosed,
    /// A move-up to a slot no earlier than the appointment held.
    NotEarlier,
    /// The slot could not be taken.
    Slot(Refusal),
}

impl Refused {
    pub fn problem(self) -> Problem {
        match self {
            Refused::Used(appointment_id) => Problem::new(
                StatusCode::GONE,
                "this link has already booked an appointment",
            )
            .with("appointment_id", appointment_id),
            Refused::EntryClosed => Problem::new(
                StatusCode::GONE,
                "this offer is closed: the waiting-list entry it answered is no longer open",
            ),
            Refused::NotEarlier => {
                Problem::conflict("your appointment is already at this time or earlier")
            }
            Refused::Slot(refusal) => refusal.problem(),
        }
    }

    /// As `offer.lost` records it.
    pub fn lost(self) -> LostReason {
        match self {
            Refused::NotEarlier => LostReason::NotEarlier,
            Refused::Slot(refusal) => refusal.lost().unwrap_or(LostReason::Withdrawn),
            Refused::Used(_) | Refused::EntryClosed => LostReason::Withdrawn,
        }
    }
}

/// Books `slot_id` for the offer's patient: a move-up when they hold a later appointment with
/// this practitioner and wait to move up, a new appointment otherwise. A lost race is recorded
/// as `offer.lost`, and the refusal returned.
pub async fn claim(
    db: &DatabaseConnection,
    links: Links<'_>,
    settings: &Policy,
    claims: &OfferClaims,
    slot_id: Uuid,
) -> Result<Result<Claim, Refused>, DbErr> {
    let patient_id = claims.sub;
    let txn = db.begin().await?;
    let offer = lock_offer(&txn, claims).await?;
    if offer.used_at.is_some() {
        return Ok(Err(Refused::Used(offer.appointment_id)));
    }
    let Some(target) = slot::Entity::find_by_id(slot_id).one(&txn).await? else {
        return Ok(Err(Refused::Slot(Refusal::NoSuchSlot)));
    };
    // The entry the offer answers, locked: a claim through another link for the same entry
    // waits here, then finds it fulfilled.
    let Some(entry) = for_update(waitlist_entry::Entity::find_by_id(claims.eid), &txn)
        .one(&txn)
        .await?
        .filter(|e| e.patient_id == patient_id && e.status == ACTIVE)
    else {
        return Ok(Err(Refused::EntryClosed));
    };
    let moving = if entry.kind == WaitKind::MoveUp.as_str() {
        match held_by(&txn, &entry).await? {
            Some((held, held_slot)) => Some((held, held_slot, entry)),
            // Never a second appointment for a patient who asked to move one.
            None => return Ok(Err(Refused::EntryClosed)),
        }
    } else {
        None
    };
    let booked = match moving {
        Some((held, held_slot, entry)) => {
            if target.starts_at >= held_slot.starts_at {
                Err(Refused::NotEarlier)
            } else {
                move_up(&txn, links, held, entry, slot_id, settings)
                    .await?
                    .map(|b| (b, Some(held_slot.id)))
                    .map_err(Refused::Slot)
            }
        }
        None => book_slot(&txn, links, patient_id, slot_id)
            .await?
            .map(|b| (b, None))
            .map_err(Refused::Slot),
    };
    match booked {
        Ok((booked, moved_from_slot_id)) => {
            let mut used: offer::ActiveModel = offer.into();
            used.used_at = Set(Some(Utc::now()));
            used.slot_id = Set(Some(slot_id));
            used.appointment_id = Set(Some(booked.appointment.id));
            used.update(&txn).await?;
            emit(
                &txn,
                OfferClaimed {
                    notification_id: claims.nid,
                    patient_id,
                    slot_id,
                    appointment_id: booked.appointment.id,
                    moved_from_slot_id,
                },
            )
            .await?;
            txn.commit().await?;
            Ok(Ok(Claim {
                booked,
                moved_from_slot_id,
            }))
        }
        Err(refused) => {
            // The attempt is history even though the booking rolled back.
            emit(
                &txn,
                OfferLost {
                    notification_id: claims.nid,
                    patient_id,
                    slot_id,
                    reason: refused.lost(),
                },
            )
            .await?;
            txn.commit().await?;
            Ok(Err(refused))
        }
    }
}

/// The offer's row, created on first use and locked for the rest of the transaction, so two
/// claims through one link run one after the other.
async fn lock_offer<C: ConnectionTrait>(
    conn: &C,
    claims: &OfferClaims,
) -> Result<offer::Model, DbErr> {
    let at = |secs: i64| Utc.timestamp_opt(secs, 0).single().unwrap_or_else(Utc::now);
    offer::Entity::insert(offer::ActiveModel {
        notification_id: Set(claims.nid),
        patient_id: Set(claims.sub),
        issued_at: Set(at(claims.iat)),
        expires_at: Set(at(claims.exp)),
        first_claimed_at: Set(Utc::now()),
        used_at: Set(None),
        slot_id: Set(None),
        appointment_id: Set(None),
    })
    .on_conflict_do_nothing_on([offer::Column::NotificationId])
    .exec_without_returning(conn)
    .await?;
    for_update(offer::Entity::find_by_id(claims.nid), conn)
        .one(conn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("offer {}", claims.nid)))
}

/// The booked appointment a `move_up` entry holds, locked, with its slot.
async fn held_by<C: ConnectionTrait>(
    conn: &C,
    entry: &waitlist_entry::Model,
) -> Result<Option<(appointment::Model, slot::Model)>, DbErr> {
    let Some(appointment_id) = entry.appointment_id else {
        return Ok(None);
    };
    let Some(held) = for_update(appointment::Entity::find_by_id(appointment_id), conn)
        .one(conn)
        .await?
        .filter(|a| a.status == APPOINTMENT_BOOKED && a.patient_id == entry.patient_id)
    else {
        return Ok(None);
    };
    let held_slot = slot::Entity::find_by_id(held.slot_id)
        .one(conn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("slot of appointment {}", held.id)))?;
    Ok(Some((held, held_slot)))
}
