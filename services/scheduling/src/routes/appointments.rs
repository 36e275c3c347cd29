//! Appointments: book a slot, read, cancel.
//!
//! While a slot is held (`held_until` in the future) only a patient of its hold's patient set
//! may book it, whoever the caller is (staff included); anyone else gets 409 "held for other
//! patients" with `held_until`. A pre-hold has no patients: nobody books until it lapses or a
//! wave's hold replaces it. A holder who books gets the slot and the hold on it ends.

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
    TransactionTrait, sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use slotcast_events::{
    AppointmentCancelled, AppointmentMoved, CloseReason, LostReason, ReleaseReason, SlotBooked,
    SlotReleased, WaitKind,
};
use slotcast_kit::{ApiJson, Problem, auth::Caller, problem::ApiPath};
use uuid::Uuid;

use super::{
    emit, for_update,
    slots::{AVAILABLE, BOOKED, HELD, WITHDRAWN, held_until, opening, policy_of, status_is},
    waitlist::{ACTIVE, close_entries},
};
use crate::{
    AppState, Policy,
    entities::{appointment, hold_patient, patient, slot, waitlist_entry},
    error::ApiResult,
};

pub use crate::entities::appointment::{
    BOOKED as APPOINTMENT_BOOKED, CANCELLED as APPOINTMENT_CANCELLED,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/appointments", post(book))
        .route("/v1/appointments/{id}", get(read))
        .route("/v1/appointments/{id}/cancel", post(cancel))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAppointment {
    patient_id: Uuid,
    slot_id: Uuid,
}

#[derive(Debug, Serialize)]
pub struct AppointmentView {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub practitioner_id: Uuid,
    pub slot_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl AppointmentView {
    fn new(a: appointment::Model, s: &slot::Model) -> Self {
        Self {
            id: a.id,
            patient_id: a.patient_id,
            practitioner_id: a.practitioner_id,
            slot_id: a.slot_id,
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            status: a.status,
            created_at: a.created_at,
            cancelled_at: a.cancelled_at,
        }
    }
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
/// `new` waiting-list entry with this practitioner is fulfilled.
pub async fn book_slot<C: ConnectionTrait>(
    conn: &C,
    patient_id: Uuid,
    slot_id: Uuid,
) -> Result<Result<AppointmentView, Refusal>, DbErr> {
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
    Ok(Ok(AppointmentView::new(a, &s)))
}

/// Moves `held` (a booked appointment) to `slot_id`, which must start earlier, in one swap
/// inside `conn`'s transaction: the new slot is booked, the old one released (and offered to the
/// next patients in line, never back to this one), and `entry` (the `move_up` entry) fulfilled.
pub async fn move_up<C: ConnectionTrait>(
    conn: &C,
    held: appointment::Model,
    entry: waitlist_entry::Model,
    slot_id: Uuid,
    settings: &Policy,
) -> Result<Result<AppointmentView, Refusal>, DbErr> {
    let old = slot::Entity::find_by_id(held.slot_id)
        .one(conn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("slot {} of an appointment", held.slot_id)))?;
    let new = match take_slot(conn, slot_id, held.patient_id).await? {
        Ok(s) => s,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let (patient_id, from_slot_id) = (held.patient_id, held.slot_id);
    let mut moved: appointment::ActiveModel = held.into();
    moved.slot_id = Set(new.id);
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
    Ok(Ok(AppointmentView::new(a, &new)))
}

/// Frees the booked `slot`: `available`, or under the `waves` policy held by a pre-hold until
/// matching places the first wave's hold. Unless it has already started, says so with
/// `slot.released` (an opening of its own, for matching to offer to the next in line, never
/// back to `left_by`), carrying the effective policy. Returns the slot as it is now.
async fn reopen<C: ConnectionTrait>(
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

async fn book(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewAppointment>,
) -> ApiResult<(StatusCode, Json<AppointmentView>)> {
    if !caller.may_act_for_patient(body.patient_id) {
        return Err(Problem::forbidden("a patient books only for themself").into());
    }
    let txn = state.db.begin().await?;
    patient::Entity::find_by_id(body.patient_id)
        .one(&txn)
        .await?
        .ok_or_else(|| Problem::unprocessable("no such patient"))?;
    let view = book_slot(&txn, body.patient_id, body.slot_id)
        .await?
        .map_err(Refusal::problem)?;
    txn.commit().await?;
    state.relay.wake();
    metrics::counter!("slotcast_scheduling_appointments_booked_total").increment(1);
    tracing::info!(appointment_id = %view.id, slot_id = %view.slot_id, patient_id = %view.patient_id, "appointment booked");
    Ok((StatusCode::CREATED, Json(view)))
}

async fn load(
    conn: &impl ConnectionTrait,
    caller: &Caller,
    id: Uuid,
    lock: bool,
) -> ApiResult<(appointment::Model, slot::Model)> {
    let query = appointment::Entity::find_by_id(id);
    let query = if lock { for_update(query, conn) } else { query };
    let a = query
        .one(conn)
        .await?
        .ok_or_else(|| Problem::not_found("no such appointment"))?;
    // Another patient's appointment is reported as missing, not as forbidden: ids leak nothing.
    if !caller.may_act_for_patient(a.patient_id) {
        return Err(Problem::not_found("no such appointment").into());
    }
    let s = slot::Entity::find_by_id(a.slot_id)
        .one(conn)
        .await?
        .ok_or_else(|| anyhow::anyhow!("appointment {id} points at a missing slot"))?;
    Ok((a, s))
}

async fn read(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<AppointmentView>> {
    // One snapshot: a move-up committed between the two reads would pair the appointment with
    // its old slot.
    let txn = slotcast_kit::db::snapshot(&state.db).await?;
    let (a, s) = load(&txn, &caller, id, false).await?;
    txn.commit().await?;
    Ok(Json(AppointmentView::new(a, &s)))
}

/// Cancels: the slot becomes available again and a `slot.released` offers it to the waiting
/// list; a `move_up` entry that held this appointment closes.
async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<AppointmentView>> {
    let txn = state.db.begin().await?;
    let (a, s) = load(&txn, &caller, id, true).await?;
    if a.status != APPOINTMENT_BOOKED {
        return Err(Problem::conflict("the appointment is already cancelled").into());
    }
    let now = Utc::now();
    let mut cancelled: appointment::ActiveModel = a.into();
    cancelled.status = Set(APPOINTMENT_CANCELLED.to_owned());
    cancelled.cancelled_at = Set(Some(now));
    let a = cancelled.update(&txn).await?;
    emit(
        &txn,
        AppointmentCancelled {
            appointment_id: a.id,
            slot_id: s.id,
            patient_id: a.patient_id,
            practitioner_id: a.practitioner_id,
        },
    )
    .await?;
    let s = reopen(
        &txn,
        &s,
        ReleaseReason::Cancelled,
        a.patient_id,
        &state.policy,
    )
    .await?;
    let holding = waitlist_entry::Entity::find()
        .filter(waitlist_entry::Column::AppointmentId.eq(a.id))
        .filter(waitlist_entry::Column::Status.eq(ACTIVE))
        .all(&txn)
        .await?;
    close_entries(&txn, holding, CloseReason::AppointmentCancelled).await?;
    txn.commit().await?;
    state.relay.wake();
    tracing::info!(appointment_id = %a.id, slot_id = %s.id, "appointment cancelled");
    Ok(Json(AppointmentView::new(a, &s)))
}
