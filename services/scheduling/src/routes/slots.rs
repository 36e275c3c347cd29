//! Slots: publish a batch, list, withdraw; a slot's status at a moment is
//! [`crate::availability`]'s.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait, sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use slotcast_events::{SlotCreated, SlotWithdrawn};
use slotcast_kit::{
    ApiJson, Problem,
    auth::Caller,
    openapi::{BadRequest, Conflict, Forbidden, JsonBody, NotFound, ServerErrors, Unauthorized},
    problem::{ApiPath, ApiQuery},
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    AppState,
    availability::{
        AVAILABLE, BOOKED, HELD, WITHDRAWN, held_until, opening, own_policy, status_at, status_is,
    },
    domain::{Invalid, NewSlots},
    entities::{practitioner, slot},
    error::ApiResult,
    store::{emit, for_update},
};

pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(withdraw, read))
}

#[derive(Serialize, ToSchema)]
pub struct SlotView {
    pub id: Uuid,
    pub practitioner_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// As it is now: a slot whose hold has lapsed is `available`.
    #[schema(examples("available"), pattern = "^(available|held|booked|withdrawn)$")]
    pub status: String,
    pub batch_id: Uuid,
    /// While held: until when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_until: Option<DateTime<Utc>>,
    /// While held by a wave's hold (absent for a pre-hold).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_id: Option<Uuid>,
}

impl SlotView {
    pub fn at(m: slot::Model, now: DateTime<Utc>) -> Self {
        let held_until = held_until(&m, now);
        Self {
            id: m.id,
            practitioner_id: m.practitioner_id,
            starts_at: m.starts_at,
            ends_at: m.ends_at,
            status: status_at(&m, now).to_owned(),
            batch_id: m.batch_id,
            held_until,
            hold_id: held_until.and(m.hold_id),
        }
    }
}

impl From<slot::Model> for SlotView {
    fn from(m: slot::Model) -> Self {
        Self::at(m, Utc::now())
    }
}

#[derive(Serialize, ToSchema)]
pub struct SlotsView {
    pub slots: Vec<SlotView>,
}

/// Publishes a batch of slots in one transaction: all or none (that practitioner, staff).
#[utoipa::path(post, path = "/v1/practitioners/{id}/slots",
    operation_id = "create_slots", tag = "slots",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The practitioner's id")),
    request_body = NewSlots,
    responses(
        (status = 201, description = "The slots created", body = SlotsView),
        Unauthorized, Forbidden, NotFound,
        (status = 409, description = "A slot overlaps an existing slot (`conflicting_slot`)",
            body = Problem, content_type = "application/problem+json"),
        JsonBody, ServerErrors,
    ))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(practitioner_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<NewSlots>,
) -> ApiResult<(StatusCode, Json<SlotsView>)> {
    if !caller.may_act_for_practitioner(practitioner_id) {
        return Err(Problem::forbidden("a practitioner manages only their own slots").into());
    }
    let now = Utc::now();
    let windows = body.parse(now)?;
    let txn = state.db.begin().await?;
    // Locking the practitioner serialises concurrent batches, so the overlap check holds.
    let p = for_update(practitioner::Entity::find_by_id(practitioner_id), &txn)
        .one(&txn)
        .await?
        .ok_or_else(|| Problem::not_found("no such practitioner"))?;
    let offer_policy = state.policy.effective(own_policy(&p));
    let (status, held_until) = opening(offer_policy, &state.policy, now);
    let mut overlap = Condition::any();
    for w in &windows {
        overlap = overlap.add(
            Condition::all()
                .add(slot::Column::StartsAt.lt(w.ends_at))
                .add(slot::Column::EndsAt.gt(w.starts_at)),
        );
    }
    let clash = slot::Entity::find()
        .filter(slot::Column::PractitionerId.eq(practitioner_id))
        .filter(slot::Column::Status.ne(WITHDRAWN))
        .filter(overlap)
        .one(&txn)
        .await?;
    if let Some(existing) = clash {
        return Err(
            Problem::conflict("a slot overlaps an existing slot of this practitioner")
                .with("conflicting_slot", SlotView::from(existing))
                .into(),
        );
    }
    let batch_id = Uuid::now_v7();
    let batch_size = u32::try_from(windows.len()).map_err(|_| Invalid("batch too large".into()))?;
    let mut created = Vec::with_capacity(windows.len());
    for w in windows {
        let model = slot::ActiveModel {
            id: Set(Uuid::now_v7()),
            practitioner_id: Set(practitioner_id),
            starts_at: Set(w.starts_at),
            ends_at: Set(w.ends_at),
            status: Set(status.to_owned()),
            batch_id: Set(batch_id),
            created_at: Set(now),
            hold_id: Set(None),
            held_until: Set(held_until),
        }
        .insert(&txn)
        .await?;
        emit(
            &txn,
            SlotCreated {
                slot_id: model.id,
                practitioner_id,
                starts_at: model.starts_at,
                ends_at: model.ends_at,
                batch_id,
                batch_size,
                offer_policy,
            },
        )
        .await?;
        created.push(SlotView::at(model, now));
    }
    txn.commit().await?;
    state.relay.wake();
    metrics::counter!("slotcast_scheduling_slots_created_total").increment(created.len() as u64);
    tracing::info!(%practitioner_id, %batch_id, count = created.len(), offer_policy = offer_policy.as_str(), "slots published");
    Ok((StatusCode::CREATED, Json(SlotsView { slots: created })))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Slots ending after this.
    #[serde(default, deserialize_with = "slotcast_kit::time::rfc3339_option")]
    from: Option<DateTime<Utc>>,
    /// Slots starting before this.
    #[serde(default, deserialize_with = "slotcast_kit::time::rfc3339_option")]
    to: Option<DateTime<Utc>>,
    /// `available`, `held`, `booked` or `withdrawn`.
    #[param(pattern = "^(available|held|booked|withdrawn)$")]
    status: Option<String>,
}

/// The slots of a practitioner, by start time. Anyone authenticated may look.
#[utoipa::path(get, path = "/v1/practitioners/{id}/slots",
    operation_id = "list_slots", tag = "slots",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The practitioner's id"), ListQuery),
    responses(
        (status = 200, description = "The slots", body = SlotsView),
        BadRequest, Unauthorized, ServerErrors,
    ))]
async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(practitioner_id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<SlotsView>> {
    if !q.from.into_iter().chain(q.to).all(crate::domain::in_range) {
        return Err(
            Problem::bad_request("from and to must be between the years 2000 and 9999").into(),
        );
    }
    let now = Utc::now();
    let mut query = slot::Entity::find().filter(slot::Column::PractitionerId.eq(practitioner_id));
    if let Some(from) = q.from {
        query = query.filter(slot::Column::EndsAt.gt(from));
    }
    if let Some(to) = q.to {
        query = query.filter(slot::Column::StartsAt.lt(to));
    }
    if let Some(status) = q.status {
        if ![AVAILABLE, HELD, BOOKED, WITHDRAWN].contains(&status.as_str()) {
            return Err(Problem::bad_request(
                "status is one of available, held, booked, withdrawn",
            )
            .into());
        }
        query = query.filter(status_is(&status, now));
    }
    let slots = query
        .order_by_asc(slot::Column::StartsAt)
        .all(&state.db)
        .await?;
    Ok(Json(SlotsView {
        slots: slots.into_iter().map(|s| SlotView::at(s, now)).collect(),
    }))
}

/// A slot (anyone authenticated).
#[utoipa::path(get, path = "/v1/slots/{id}",
    operation_id = "read_slot", tag = "slots",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The slot's id")),
    responses(
        (status = 200, description = "The slot", body = SlotView),
        BadRequest, Unauthorized, NotFound, ServerErrors,
    ))]
async fn read(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<SlotView>> {
    let s = slot::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or_else(|| Problem::not_found("no such slot"))?;
    Ok(Json(s.into()))
}

/// Withdraws an unbooked slot (available or held). Withdrawing it again changes nothing.
#[utoipa::path(delete, path = "/v1/slots/{id}",
    operation_id = "withdraw_slot", tag = "slots",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The slot's id")),
    responses(
        (status = 204, description = "Withdrawn"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, ServerErrors,
    ))]
async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let txn = state.db.begin().await?;
    let s = for_update(slot::Entity::find_by_id(id), &txn)
        .one(&txn)
        .await?
        .ok_or_else(|| Problem::not_found("no such slot"))?;
    if !caller.may_act_for_practitioner(s.practitioner_id) {
        return Err(Problem::forbidden("a practitioner manages only their own slots").into());
    }
    if s.status == WITHDRAWN {
        return Ok(StatusCode::NO_CONTENT);
    }
    let updated = slot::Entity::update_many()
        .col_expr(slot::Column::Status, Expr::value(WITHDRAWN))
        .col_expr(slot::Column::HoldId, Expr::value(Option::<Uuid>::None))
        .col_expr(
            slot::Column::HeldUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(slot::Column::Id.eq(id))
        .filter(slot::Column::Status.is_in([AVAILABLE, HELD]))
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        return Err(Problem::conflict("the slot is booked; cancel the appointment first").into());
    }
    emit(
        &txn,
        SlotWithdrawn {
            slot_id: id,
            practitioner_id: s.practitioner_id,
        },
    )
    .await?;
    txn.commit().await?;
    state.relay.wake();
    tracing::info!(slot_id = %id, "slot withdrawn");
    Ok(StatusCode::NO_CONTENT)
}
