//! Appointments: book a slot, read, cancel ([`crate::booking`]).
//!
//! A slot held for other patients answers 409 "held for other patients" with `held_until`.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, EntityTrait, TransactionTrait};
use serde::{Deserialize, Serialize};
use slotcast_kit::{
    ApiJson, Problem,
    auth::Caller,
    openapi::{BadRequest, Conflict, Forbidden, JsonBody, NotFound, ServerErrors, Unauthorized},
    problem::ApiPath,
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    AppState,
    booking::{self, Booked},
    entities::{
        appointment::{self, BOOKED as APPOINTMENT_BOOKED},
        patient, slot,
    },
    error::ApiResult,
    store::for_update,
};

pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(book))
        .routes(routes!(read))
        .routes(routes!(cancel))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewAppointment {
    patient_id: Uuid,
    slot_id: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppointmentView {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub practitioner_id: Uuid,
    pub slot_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// `booked` or `cancelled`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl From<Booked> for AppointmentView {
    fn from(b: Booked) -> Self {
        Self::new(b.appointment, &b.slot)
    }
}

impl AppointmentView {
    pub fn new(a: appointment::Model, s: &slot::Model) -> Self {
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

/// Books a slot for a patient (staff, that patient).
#[utoipa::path(post, path = "/v1/appointments",
    operation_id = "book_appointment", tag = "appointments",
    security(("bearer" = [])),
    request_body = NewAppointment,
    responses(
        (status = 201, description = "The appointment", body = AppointmentView),
        Unauthorized, Forbidden,
        (status = 409,
            description = "The slot is no longer available (or held for others: `held_until`)",
            body = Problem, content_type = "application/problem+json"),
        JsonBody, ServerErrors,
    ))]
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
    let view = booking::book_slot(&txn, state.links(), body.patient_id, body.slot_id)
        .await?
        .map(AppointmentView::from)
        .map_err(booking::Refusal::problem)?;
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

/// An appointment (staff, its patient).
#[utoipa::path(get, path = "/v1/appointments/{id}",
    operation_id = "read_appointment", tag = "appointments",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The appointment's id")),
    responses(
        (status = 200, description = "The appointment", body = AppointmentView),
        BadRequest, Unauthorized, NotFound, ServerErrors,
    ))]
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
/// list; a `move_up` entry that held this appointment closes (staff, its patient).
#[utoipa::path(post, path = "/v1/appointments/{id}/cancel",
    operation_id = "cancel_appointment", tag = "appointments",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The appointment's id")),
    responses(
        (status = 200, description = "The cancelled appointment", body = AppointmentView),
        BadRequest, Unauthorized, NotFound, Conflict, ServerErrors,
    ))]
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
    let Booked {
        appointment: a,
        slot: s,
    } = booking::cancel(&txn, state.links(), a, &s, &state.policy).await?;
    txn.commit().await?;
    state.relay.wake();
    tracing::info!(appointment_id = %a.id, slot_id = %s.id, "appointment cancelled");
    Ok(Json(AppointmentView::new(a, &s)))
}
