//! Booking: taking a slot (first claim wins), booking it for a patient, moving a booked
//! appointment up to an earlier slot, and freeing a booked slot for the next in line.
//!
//! While a slot is held (`held_until` in the future) only a patient of its hold's patient set
//! may take it, whoever the caller is (staff included). A pre-hold has no patients: nobody books
//! until it lapses or a wave's hold replaces it. A holder who books gets the slot and the hold
//! on it ends.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
    sea_query::Expr,
};
use slotcast_events::{
    AppointmentCancelled, AppointmentMoved, CloseReason, ConfirmationKind, LostReason,
    ReleaseReason, SlotBooked, SlotReleased, WaitKind,
};
use slotcast_kit::Problem;
use uuid::Uuid;

use crate::{
    Policy,
    availability::{AVAILABLE, BOOKED, HELD, WITHDRAWN, held_until, opening, policy_of, status_is},
    confirmations::{self, Links},
    entities::{
        appointment::{self, BOOKED as APPOINTMENT_BOOKED, CANCELLED as APPOINTMENT_CANCELLED},
        hold_patient, slot, waitlist_entry,
    },
    store::{emit, for_update},
    waiting::{ACTIVE, close_entries},
};

/// An appointment booked, with its slot as it is now.
#[derive(Debug, Clone)]
pub struct Booked {
    pub appointment: appointment::Model,
    pub slot: slot::Model,
}

/// Why a slot cannot be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NoSuchSlot,
    Started,
    Taken,
    Withdrawn,
    /// Held for other patients until then.
    Held(DateTime<Utc>),
}

impl Refusal {
    pub fn problem(self) -> Problem {
        match self {
            Refusal::NoSuchSlot => Problem::not_found("no such slot"),
            Refusal::Started => Problem::conflict("the slot has already started"),
            Refusal::Taken => Problem::conflict("the slot is no longer available"),
            Refusal::Withdrawn => Problem::conflict("the slot has been withdrawn"),
            Refusal::Held(until) => {
                Problem::conflict("held for other patients").with("held_until", until)
            }
        }
    }

    /// As a lost offer claim (`None` for a slot that does not exist at all).
    pub fn lost(self) -> Option<LostReason> {
        match self {
            Refusal::NoSuchSlot => None,
            Refusal::Started => Some(LostReason::Started),
            Refusal::Taken => Some(LostReason::Taken),
            Refusal::Withdrawn => Some(LostReason::Withdrawn),
            Refusal::Held(_) => Some(LostReason::Held),
        }
    }
}

/// Marks `slot_id` booked for `patient_id` if it is available (or held for them) and has not
/// started, inside `conn`'s transaction. The slot row is locked (Postgres) and the update is
/// conditional on its status, so under any concurrency exactly one caller gets the slot: the
/// others wait for the winner's commit and then find it booked.
pub async fn take_slot<C: ConnectionTrait>(
    conn: &C,
    slot_id: Uuid,
    patient_id: Uuid,
) -> Result<Result<slot::Model, Refusal>, DbErr> {
    let Some(s) = for_update(slot::Entity::find_by_id(slot_id), conn)
        .one(conn)
        .await?
    else {
        return Ok(Err(Refusal::NoSuchSlot));
    };
    let now = Utc::now();
    if s.starts_at <= now {
        return Ok(Err(Refusal::Started));
    }
    let mut claim = slot::Entity::update_many()
        .col_expr(slot::Column::Status, Expr::value(BOOKED))
        .col_expr(slot::Column::HoldId, Expr::value(Option::<Uuid>::None))
        .col_expr(
            slot::Column::HeldUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(slot::Column::Id.eq(slot_id));
    match held_until(&s, now) {
        Some(until) => {
            let holder = match s.hold_id {
                Some(hold_id) => hold_patient::Entity::find_by_id((hold_id, patient_id))
                    .one(conn)
                    .await?
                    .is_some(),
                None => false,
            };
            if !holder {
                return Ok(Err(Refusal::Held(until)));
            }
            claim = claim
                .filter(slot::Column::Status.eq(HELD))
                .filter(slot::Column::HoldId.eq(s.hold_id));
        }
        None => claim = claim.filter(status_is(AVAILABLE, now)),
    }
    if claim.exec(conn).await?.rows_affected == 0 {
        let current = slot::Entity::find_by_id(slot_id).one(conn).await?;
        let now = Utc::now();
        return Ok(Err(match current {
            Some(c) if c.status == WITHDRAWN => Refusal::Withdrawn,
            Some(c) => match held_until(&c, now) {
                Some(until) => Refusal::Held(until),
                None => Refusal::Taken,
            },
            None => Refusal::NoSuchSlot,
        }));
    }
    Ok(Ok(slot::Model {
        status: BOOKED.to_owned(),
        hold_id: None,
        held_until: None,
        ..s
    }))
}

/// Books `slot_id` for `patient_id` inside `conn`'s transaction, or says why not. The patient's
/// `new` waiting-list entry with this practitioner is fulfilled, and the booking confirmed.
pub async fn book_slot<C: ConnectionTrait>(
    conn: &C,
    links: Links<'_>,
    patient_id: Uuid,
    slot_id: Uuid,
) -> Result<Result<Booked, Refusal>, DbErr> {
    let s = match take_slot(conn, slot_id, patient_id).await? {
        Ok(s) => s,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let a = appointment::ActiveModel {
        id: Set(Uuid::now_v7()),
        patient_id: Set(patient_id),
        practitioner_id: Set(s.practitioner_id),
        slot_id: Set(slot_id),
        status: Set(APPOINTMENT_BOOKED.to_owned()),
        created_at: Set(Utc::now()),
        cancelled_at: Set(None),
        sequence: Set(0),
    }
    .insert(conn)
    .await?;
    emit(
        conn,
        SlotBooked {
            slot_id,
            practitioner_id: s.practitioner_id,
            patient_id,
            appointment_id: a.id,
            starts_at: s.starts_at,
        },
    )
    .await?;
    let fulfilled = waitlist_entry::Entity::find()
        .filter(waitlist_entry::Column::PatientId.eq(patient_id))
        .filter(waitlist_entry::Column::PractitionerId.eq(s.practitioner_id))
        .filter(waitlist_entry::Column::Kind.eq(WaitKind::New.as_str()))
        .filter(waitlist_entry::Column::Status.eq(ACTIVE))
        .all(conn)
        .await?;
    close_entries(conn, fulfilled, CloseReason::Fulfilled).await?;
    confirmations::confirm(conn, links, &a, &s, ConfirmationKind::Booked, None).await?;
    Ok(Ok(Booked {
        appointment: a,
        slot: s,
    }))
}

/// Moves `held` (a booked appointment) to `slot_id`, which must start earlier, in one swap
/// inside `conn`'s transaction: the new slot is booked, the old one released (and offered to the
/// next patients in line, never back to this one), and `entry` (the `move_up` entry) fulfilled.
/// The move is confirmed as an update of the same calendar entry.
pub async fn move_up<C: ConnectionTrait>(
    conn: &C,
    links: Links<'_>,
    held: appointment::Model,
    entry: waitlist_entry::Model,
    slot_id: Uuid,
    settings: &Policy,
) -> Result<Result<Booked, Refusal>, DbErr> {
    let old = slot::Entity::find_by_id(held.slot_id)
        .one(conn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("slot {} of an appointment", held.slot_id)))?;
    let new = match take_slot(conn, slot_id, held.patient_id).await? {
        Ok(s) => s,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let (patient_id, from_slot_id, sequence) = (held.patient_id, held.slot_id, held.sequence);
    let mut moved: appointment::ActiveModel = held.into();
    moved.slot_id = Set(new.id);
    moved.sequence = Set(sequence + 1);
    let a = moved.update(conn).await?;
    emit(
        conn,
        AppointmentMoved {
            appointment_id: a.id,
            patient_id,
            practitioner_id: a.practitioner_id,
            from_slot_id,
            to_slot_id: new.id,
        },
    )
    .await?;
    emit(
        conn,
        SlotBooked {
            slot_id: new.id,
            practitioner_id: new.practitioner_id,
            patient_id,
            appointment_id: a.id,
            starts_at: new.starts_at,
        },
    )
    .await?;
    // Closed before the release, so matching never weighs this entry for the freed slot.
    close_entries(conn, vec![entry], CloseReason::Fulfilled).await?;
    reopen(conn, &old, ReleaseReason::MovedUp, patient_id, settings).await?;
    confirmations::confirm(conn, links, &a, &new, ConfirmationKind::Moved, Some(&old)).await?;
    Ok(Ok(Booked {
        appointment: a,
        slot: new,
    }))
}

/// Frees the booked `slot`: `available`, or under the `waves` policy held by a pre-hold until
/// matching places the first wave's hold. Unless it has already started, says so with
/// `slot.released` (an opening of its own, for matching to offer to the next in line, never
/// back to `left_by`), carrying the effective policy. Returns the slot as it is now.
pub async fn reopen<C: ConnectionTrait>(
    conn: &C,
    slot: &slot::Model,
    reason: ReleaseReason,
    left_by: Uuid,
    settings: &Policy,
) -> Result<slot::Model, DbErr> {
    let now = Utc::now();
    let offer_policy = policy_of(conn, slot.practitioner_id, settings).await?;
    let started = slot.starts_at <= now;
    let (status, held_until) = if started {
        (AVAILABLE, None)
    } else {
        opening(offer_policy, settings, now)
    };
    slot::Entity::update_many()
        .col_expr(slot::Column::Status, Expr::value(status))
        .col_expr(slot::Column::HoldId, Expr::value(Option::<Uuid>::None))
        .col_expr(slot::Column::HeldUntil, Expr::value(held_until))
        .filter(slot::Column::Id.eq(slot.id))
        .filter(slot::Column::Status.eq(BOOKED))
        .exec(conn)
        .await?;
    if !started {
        emit(
            conn,
            SlotReleased {
                slot_id: slot.id,
                practitioner_id: slot.practitioner_id,
                starts_at: slot.starts_at,
                ends_at: slot.ends_at,
                batch_id: Uuid::now_v7(),
                batch_size: 1,
                reason,
                released_by: Some(left_by),
                offer_policy,
            },
        )
        .await?;
    }
    Ok(slot::Model {
        status: status.to_owned(),
        hold_id: None,
        held_until,
        ..slot.clone()
    })
}

/// Cancels the booked appointment `a` on `slot` inside `conn`'s transaction: the slot is freed
/// for the next in line ([`reopen`]), the `move_up` entries that held it are closed, and the
/// patient is sent a cancellation of the calendar entry.
pub async fn cancel<C: ConnectionTrait>(
    conn: &C,
    links: Links<'_>,
    a: appointment::Model,
    slot: &slot::Model,
    settings: &Policy,
) -> Result<Booked, DbErr> {
    let now = Utc::now();
    let sequence = a.sequence;
    let mut cancelled: appointment::ActiveModel = a.into();
    cancelled.status = Set(APPOINTMENT_CANCELLED.to_owned());
    cancelled.cancelled_at = Set(Some(now));
    cancelled.sequence = Set(sequence + 1);
    let a = cancelled.update(conn).await?;
    emit(
        conn,
        AppointmentCancelled {
            appointment_id: a.id,
            slot_id: slot.id,
            patient_id: a.patient_id,
            practitioner_id: a.practitioner_id,
        },
    )
    .await?;
    let s = reopen(conn, slot, ReleaseReason::Cancelled, a.patient_id, settings).await?;
    let holding = waitlist_entry::Entity::find()
        .filter(waitlist_entry::Column::AppointmentId.eq(a.id))
        .filter(waitlist_entry::Column::Status.eq(ACTIVE))
        .all(conn)
        .await?;
    close_entries(conn, holding, CloseReason::AppointmentCancelled).await?;
    confirmations::confirm(conn, links, &a, &s, ConfirmationKind::Cancelled, None).await?;
    Ok(Booked {
        appointment: a,
        slot: s,
    })
}
