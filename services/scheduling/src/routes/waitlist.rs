//! The waiting list: join, list, leave.

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{delete, post},
};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use slotcast_events::{CloseReason, WaitlistClosed, WaitlistJoined};
use slotcast_kit::{
    ApiJson, Problem,
    auth::{Caller, Role},
    problem::{ApiPath, ApiQuery},
};
use uuid::Uuid;

use super::{appointments::APPOINTMENT_BOOKED, emit, for_update};
use crate::{
    AppState,
    domain::NewWaitlistEntry,
    entities::{appointment, patient, practitioner, slot, waitlist_entry},
    error::ApiResult,
};

pub const ACTIVE: &str = "active";
pub const FULFILLED: &str = "fulfilled";
pub const LEFT: &str = "left";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/waitlist", post(join).get(list))
        .route("/v1/waitlist/{id}", delete(leave))
}

#[derive(Serialize)]
pub struct EntryView {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub practitioner_id: Uuid,
    pub kind: String,
    pub appointment_id: Option<Uuid>,
    pub earliest: Option<DateTime<Utc>>,
    pub latest: Option<DateTime<Utc>>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

impl From<waitlist_entry::Model> for EntryView {
    fn from(m: waitlist_entry::Model) -> Self {
        Self {
            id: m.id,
            patient_id: m.patient_id,
            practitioner_id: m.practitioner_id,
            kind: m.kind,
            appointment_id: m.appointment_id,
            earliest: m.earliest,
            latest: m.latest,
            status: m.status,
            created_at: m.created_at,
            closed_at: m.closed_at,
        }
    }
}

/// Closes `entries` with `reason` and says so on the bus, inside the caller's transaction.
pub async fn close_entries<C: ConnectionTrait>(
    conn: &C,
    entries: Vec<waitlist_entry::Model>,
    reason: CloseReason,
) -> Result<(), DbErr> {
    let status = if reason == CloseReason::Fulfilled {
        FULFILLED
    } else {
        LEFT
    };
    for e in entries {
        let (id, patient_id, practitioner_id) = (e.id, e.patient_id, e.practitioner_id);
        let mut m: waitlist_entry::ActiveModel = e.into();
        m.status = Set(status.to_owned());
        m.closed_at = Set(Some(Utc::now()));
        m.update(conn).await?;
        emit(
            conn,
            WaitlistClosed {
                entry_id: id,
                patient_id,
                practitioner_id,
                reason,
            },
        )
        .await?;
    }
    Ok(())
}

async fn join(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewWaitlistEntry>,
) -> ApiResult<(StatusCode, Json<EntryView>)> {
    let w = body.parse()?;
    if !caller.may_act_for_patient(w.patient_id) {
        return Err(
            Problem::forbidden("a patient manages only their own waiting-list entries").into(),
        );
    }
    let txn = state.db.begin().await?;
    for_update(patient::Entity::find_by_id(w.patient_id), &txn)
        .one(&txn)
        .await?
        .ok_or_else(|| Problem::unprocessable("no such patient"))?;
    practitioner::Entity::find_by_id(w.practitioner_id)
        .one(&txn)
        .await?
        .ok_or_else(|| Problem::unprocessable("no such practitioner"))?;
    let held_starts_at = match w.appointment_id {
        None => None,
        Some(appointment_id) => {
            let a = appointment::Entity::find_by_id(appointment_id)
                .one(&txn)
                .await?
                .filter(|a| a.patient_id == w.patient_id)
                .ok_or_else(|| Problem::unprocessable("no such appointment for this patient"))?;
            if a.status != APPOINTMENT_BOOKED || a.practitioner_id != w.practitioner_id {
                return Err(Problem::unprocessable(
                    "the appointment must be booked with this practitioner",
                )
                .into());
            }
            let s = slot::Entity::find_by_id(a.slot_id)
                .one(&txn)
                .await?
                .ok_or_else(|| {
                    anyhow::anyhow!("appointment {appointment_id} points at a missing slot")
                })?;
            Some(s.starts_at)
        }
    };
    let duplicate = waitlist_entry::Entity::find()
        .filter(waitlist_entry::Column::PatientId.eq(w.patient_id))
        .filter(waitlist_entry::Column::PractitionerId.eq(w.practitioner_id))
        .filter(waitlist_entry::Column::Kind.eq(w.kind.as_str()))
        .filter(waitlist_entry::Column::Status.eq(ACTIVE))
        .one(&txn)
        .await?;
    if let Some(existing) = duplicate {
        return Err(
            Problem::conflict("the patient already waits for this practitioner")
                .with("entry_id", existing.id)
                .into(),
        );
    }
    let now = Utc::now();
    let entry = waitlist_entry::ActiveModel {
        id: Set(Uuid::now_v7()),
        patient_id: Set(w.patient_id),
        practitioner_id: Set(w.practitioner_id),
        kind: Set(w.kind.as_str().to_owned()),
        appointment_id: Set(w.appointment_id),
        earliest: Set(w.earliest),
        latest: Set(w.latest),
        status: Set(ACTIVE.to_owned()),
        created_at: Set(now),
        closed_at: Set(None),
    }
    .insert(&txn)
    .await?;
    emit(
        &txn,
        WaitlistJoined {
            entry_id: entry.id,
            patient_id: w.patient_id,
            practitioner_id: w.practitioner_id,
            kind: w.kind,
            appointment_id: w.appointment_id,
            held_starts_at,
            earliest: w.earliest,
            latest: w.latest,
            joined_at: now,
        },
    )
    .await?;
    txn.commit().await?;
    state.relay.wake();
    tracing::info!(entry_id = %entry.id, patient_id = %entry.patient_id, practitioner_id = %entry.practitioner_id, "joined waiting list");
    Ok((StatusCode::CREATED, Json(entry.into())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    practitioner_id: Option<Uuid>,
    patient_id: Option<Uuid>,
    status: Option<String>,
}

#[derive(Serialize)]
struct EntriesView {
    entries: Vec<EntryView>,
}

/// Staff see every entry; a patient sees their own. Longest waiting first.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<EntriesView>> {
    let patient_id = match caller.0.role {
        Role::Staff => q.patient_id,
        Role::Patient if q.patient_id.is_none_or(|p| p == caller.0.sub) => Some(caller.0.sub),
        _ => return Err(Problem::forbidden("staff, or a patient for their own entries").into()),
    };
    let status = q.status.unwrap_or_else(|| ACTIVE.to_owned());
    if ![ACTIVE, FULFILLED, LEFT].contains(&status.as_str()) {
        return Err(Problem::bad_request("status is one of active, fulfilled, left").into());
    }
    let mut query =
        waitlist_entry::Entity::find().filter(waitlist_entry::Column::Status.eq(status));
    if let Some(p) = q.practitioner_id {
        query = query.filter(waitlist_entry::Column::PractitionerId.eq(p));
    }
    if let Some(p) = patient_id {
        query = query.filter(waitlist_entry::Column::PatientId.eq(p));
    }
    let entries = query
        .order_by_asc(waitlist_entry::Column::CreatedAt)
        .order_by_asc(waitlist_entry::Column::Id)
        .all(&state.db)
        .await?;
    Ok(Json(EntriesView {
        entries: entries.into_iter().map(EntryView::from).collect(),
    }))
}

/// Leaves the list. Leaving twice changes nothing.
async fn leave(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let txn = state.db.begin().await?;
    let entry = for_update(waitlist_entry::Entity::find_by_id(id), &txn)
        .one(&txn)
        .await?
        .filter(|e| caller.may_act_for_patient(e.patient_id))
        .ok_or_else(|| Problem::not_found("no such waiting-list entry"))?;
    if entry.status == ACTIVE {
        close_entries(&txn, vec![entry], CloseReason::Left).await?;
        txn.commit().await?;
        state.relay.wake();
    }
    Ok(StatusCode::NO_CONTENT)
}
