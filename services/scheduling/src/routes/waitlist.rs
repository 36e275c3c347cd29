//! The waiting list: join, list, change, leave.
//!
//! The fair order of a practitioner's list is `urgent` before `routine`, then longest waiting
//! (joined first), then id. An entry's `position` is its 1-based rank among that practitioner's
//! active entries that have not expired; an expired entry stays active (it can be extended by
//! `PATCH`) but is never offered anything and has no position. Only staff set the priority; the
//! entry's patient may change its expiry.

use std::collections::HashMap;

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use slotcast_events::{CloseReason, Priority, WaitlistJoined, WaitlistUpdated};
use slotcast_kit::{
    ApiJson, Problem,
    auth::{Caller, Role},
    openapi::{BadRequest, Conflict, Forbidden, JsonBody, NotFound, ServerErrors, Unauthorized},
    problem::{ApiPath, ApiQuery},
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::entities::appointment::BOOKED as APPOINTMENT_BOOKED;
use crate::{
    AppState,
    domain::{NewWaitlistEntry, WaitlistPatch, expiry},
    entities::{appointment, patient, practitioner, slot, waitlist_entry},
    error::ApiResult,
    store::{emit, for_update},
    waiting::{ACTIVE, FULFILLED, LEFT, close_entries, expired},
};

pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(join, list))
        .routes(routes!(leave, update))
}

#[derive(Serialize, ToSchema)]
pub struct EntryView {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub practitioner_id: Uuid,
    /// `new` or `move_up`.
    pub kind: String,
    pub appointment_id: Option<Uuid>,
    pub earliest: Option<DateTime<Utc>>,
    pub latest: Option<DateTime<Utc>>,
    /// `active`, `fulfilled` or `left`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// `urgent` or `routine`.
    pub priority: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// The expiry has passed: the entry is offered nothing more.
    pub expired: bool,
    /// 1-based rank among the practitioner's active, unexpired entries; `null` otherwise.
    pub position: Option<u32>,
}

/// The fair order: urgent first, then longest waiting, then id.
fn fair_key(e: &waitlist_entry::Model) -> (bool, DateTime<Utc>, Uuid) {
    (e.priority != Priority::Urgent.as_str(), e.created_at, e.id)
}

/// The position of every active, unexpired entry of `practitioners`.
async fn positions<C: ConnectionTrait>(
    conn: &C,
    practitioners: Vec<Uuid>,
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, u32>, DbErr> {
    if practitioners.is_empty() {
        return Ok(HashMap::new());
    }
    let mut waiting: Vec<waitlist_entry::Model> = waitlist_entry::Entity::find()
        .filter(waitlist_entry::Column::PractitionerId.is_in(practitioners))
        .filter(waitlist_entry::Column::Status.eq(ACTIVE))
        .all(conn)
        .await?
        .into_iter()
        .filter(|e| !expired(e, now))
        .collect();
    waiting.sort_by_key(fair_key);
    let mut next: HashMap<Uuid, u32> = HashMap::new();
    Ok(waiting
        .into_iter()
        .map(|e| {
            let rank = next.entry(e.practitioner_id).or_insert(0);
            *rank += 1;
            (e.id, *rank)
        })
        .collect())
}

impl EntryView {
    fn new(m: waitlist_entry::Model, now: DateTime<Utc>, positions: &HashMap<Uuid, u32>) -> Self {
        Self {
            expired: expired(&m, now),
            position: positions.get(&m.id).copied(),
            priority: m.priority,
            expires_at: m.expires_at,
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

/// The view of one entry, with its position.
async fn view_of<C: ConnectionTrait>(
    conn: &C,
    entry: waitlist_entry::Model,
) -> Result<EntryView, DbErr> {
    let now = Utc::now();
    let ranks = positions(conn, vec![entry.practitioner_id], now).await?;
    Ok(EntryView::new(entry, now, &ranks))
}

/// Joins the waiting list (staff, that patient; only staff ask for `urgent`).
#[utoipa::path(post, path = "/v1/waitlist",
    operation_id = "join_waitlist", tag = "waitlist",
    security(("bearer" = [])),
    request_body = NewWaitlistEntry,
    responses(
        (status = 201, description = "The entry", body = EntryView),
        Unauthorized, Forbidden,
        (status = 409, description = "The patient already waits for this practitioner (`entry_id`)",
            body = Problem, content_type = "application/problem+json"),
        JsonBody, ServerErrors,
    ))]
async fn join(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewWaitlistEntry>,
) -> ApiResult<(StatusCode, Json<EntryView>)> {
    let now = Utc::now();
    let w = body.parse(now, state.policy.waitlist_ttl)?;
    if !caller.may_act_for_patient(w.patient_id) {
        return Err(
            Problem::forbidden("a patient manages only their own waiting-list entries").into(),
        );
    }
    if w.priority == Priority::Urgent && !caller.is_staff() {
        return Err(Problem::forbidden("only staff set the priority").into());
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
        .all(&txn)
        .await?;
    // An expired entry does not stand in the way: joining again replaces it.
    let (lapsed, duplicate): (Vec<_>, Vec<_>) =
        duplicate.into_iter().partition(|e| expired(e, now));
    close_entries(&txn, lapsed, CloseReason::Left).await?;
    if let Some(existing) = duplicate.into_iter().next() {
        return Err(
            Problem::conflict("the patient already waits for this practitioner")
                .with("entry_id", existing.id)
                .into(),
        );
    }
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
        priority: Set(w.priority.as_str().to_owned()),
        expires_at: Set(Some(w.expires_at)),
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
            priority: w.priority,
            expires_at: Some(w.expires_at),
        },
    )
    .await?;
    let view = view_of(&txn, entry).await?;
    txn.commit().await?;
    state.relay.wake();
    tracing::info!(entry_id = %view.id, patient_id = %view.patient_id, practitioner_id = %view.practitioner_id, priority = %view.priority, "joined waiting list");
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    practitioner_id: Option<Uuid>,
    /// Staff only; a patient sees their own.
    patient_id: Option<Uuid>,
    /// `active` (the default), `fulfilled` or `left`.
    #[param(pattern = "^(active|fulfilled|left)$")]
    status: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct EntriesView {
    entries: Vec<EntryView>,
}

/// Staff see every entry; a patient sees their own. In the fair order: urgent first, then
/// longest waiting, then id.
#[utoipa::path(get, path = "/v1/waitlist",
    operation_id = "list_waitlist", tag = "waitlist",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The entries", body = EntriesView),
        BadRequest, Unauthorized, Forbidden, ServerErrors,
    ))]
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
    // One snapshot: an entry that joins, leaves or books meanwhile is in both reads or in neither.
    let txn = slotcast_kit::db::snapshot(&state.db).await?;
    let mut entries = query
        .order_by_asc(waitlist_entry::Column::CreatedAt)
        .order_by_asc(waitlist_entry::Column::Id)
        .all(&txn)
        .await?;
    entries.sort_by_key(fair_key);
    let now = Utc::now();
    let mut practitioners: Vec<Uuid> = entries
        .iter()
        .filter(|e| e.status == ACTIVE)
        .map(|e| e.practitioner_id)
        .collect();
    practitioners.sort();
    practitioners.dedup();
    let ranks = positions(&txn, practitioners, now).await?;
    txn.commit().await?;
    Ok(Json(EntriesView {
        entries: entries
            .into_iter()
            .map(|e| EntryView::new(e, now, &ranks))
            .collect(),
    }))
}

/// Leaves the list (staff, the entry's patient). Leaving twice changes nothing.
#[utoipa::path(delete, path = "/v1/waitlist/{id}",
    operation_id = "leave_waitlist", tag = "waitlist",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The entry's id")),
    responses(
        (status = 204, description = "Left"),
        BadRequest, Unauthorized, NotFound, ServerErrors,
    ))]
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

/// Changes an entry's priority (staff) or expiry (staff, or the entry's patient), and publishes
/// `waitlist.updated` with both as they are now when something changed.
#[utoipa::path(patch, path = "/v1/waitlist/{id}",
    operation_id = "update_waitlist_entry", tag = "waitlist",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The entry's id")),
    request_body = WaitlistPatch,
    responses(
        (status = 200, description = "The entry", body = EntryView),
        Unauthorized, Forbidden, NotFound, Conflict, JsonBody, ServerErrors,
    ))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<WaitlistPatch>,
) -> ApiResult<Json<EntryView>> {
    let now = Utc::now();
    let expires_at = body.expires_at.map(|t| expiry(t, now)).transpose()?;
    let txn = state.db.begin().await?;
    let entry = for_update(waitlist_entry::Entity::find_by_id(id), &txn)
        .one(&txn)
        .await?
        .filter(|e| caller.may_act_for_patient(e.patient_id))
        .ok_or_else(|| Problem::not_found("no such waiting-list entry"))?;
    if body.priority.is_some() && !caller.is_staff() {
        return Err(Problem::forbidden("only staff set the priority").into());
    }
    if entry.status != ACTIVE {
        return Err(Problem::conflict("the entry no longer waits").into());
    }
    let priority = body
        .priority
        .or_else(|| Priority::parse(&entry.priority))
        .unwrap_or_default();
    let expires_at = expires_at.or(entry.expires_at);
    if priority.as_str() == entry.priority && expires_at == entry.expires_at {
        return Ok(Json(view_of(&txn, entry).await?));
    }
    let (patient_id, practitioner_id) = (entry.patient_id, entry.practitioner_id);
    let mut changed: waitlist_entry::ActiveModel = entry.into();
    changed.priority = Set(priority.as_str().to_owned());
    changed.expires_at = Set(expires_at);
    let entry = changed.update(&txn).await?;
    emit(
        &txn,
        WaitlistUpdated {
            entry_id: id,
            patient_id,
            practitioner_id,
            priority,
            expires_at,
        },
    )
    .await?;
    let view = view_of(&txn, entry).await?;
    txn.commit().await?;
    state.relay.wake();
    tracing::info!(entry_id = %id, %patient_id, priority = priority.as_str(), "waiting-list entry updated");
    Ok(Json(view))
}
