//! Holds for the `waves` policy: matching offers an opening to a first wave of patients with an
//! exclusive hold on its slots, then to the next wave when the hold ends unclaimed.
//!
//! - `PUT /v1/holds/{hold_id}` (staff) `{slot_ids: [..1..=200], patient_ids: [..0..=10000],
//!   until}`: each listed slot that is available or held (by any hold, lapsed or not, or by a
//!   pre-hold) becomes `held` by this hold until `until`; booked, withdrawn or started slots are
//!   reported in `not_held`; an unknown slot id is 422. The hold's patient set is replaced, and
//!   slots it held that are no longer listed are let go (available). The same PUT twice gives
//!   the same state.
//! - `DELETE /v1/holds/{hold_id}` (staff): the slots it still holds become available; 204, and
//!   again 204.
//!
//! While `held_until` is in the future only the hold's patients may book its slots (see
//! `appointments`); after it, the slot counts as available everywhere, without a background job.
//! A hold carries up to 10,000 patient ids (about 390 KB of JSON), more than the API's general
//! body limit, so this router has its own, larger one.

use axum::{Json, Router, extract::State, http::StatusCode, routing::put};
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait, sea_query::Expr,
};
use serde::Serialize;
use slotcast_kit::{ApiJson, Problem, auth::Caller, problem::ApiPath};
use uuid::Uuid;

use super::{
    for_update,
    slots::{AVAILABLE, HELD},
};
use crate::{
    AppState,
    domain::NewHold,
    entities::{hold, hold_patient, slot},
    error::ApiResult,
};

/// The largest body of a hold request: 10,000 patient ids and 200 slot ids, with room to spare.
pub const MAX_HOLD_BODY_BYTES: usize = 1024 * 1024;

/// The hold routes, with the same layers as the rest of the API (tracing by route template,
/// timeout, problem+json for a layer's own errors) but the larger body limit.
pub fn router(state: AppState) -> Router {
    slotcast_kit::http::with_layers(
        Router::new()
            .route("/v1/holds/{id}", put(place).delete(release))
            .with_state(state),
        MAX_HOLD_BODY_BYTES,
    )
}

#[derive(Debug, Serialize)]
struct NotHeld {
    slot_id: Uuid,
    /// `booked`, `withdrawn` or `started`.
    status: String,
}

#[derive(Debug, Serialize)]
struct HoldView {
    id: Uuid,
    until: DateTime<Utc>,
    /// In the order asked.
    held: Vec<Uuid>,
    not_held: Vec<NotHeld>,
}

/// `PUT /v1/holds/{id}`.
async fn place(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<NewHold>,
) -> ApiResult<Json<HoldView>> {
    caller.require_staff()?;
    let now = Utc::now();
    let h = body.parse(now)?;
    let txn = state.db.begin().await?;
    // Locked in id order, so two holds on overlapping slots wait for each other, never deadlock.
    let slots = for_update(
        slot::Entity::find()
            .filter(slot::Column::Id.is_in(h.slot_ids.clone()))
            .order_by_asc(slot::Column::Id),
        &txn,
    )
    .all(&txn)
    .await?;
    let unknown: Vec<Uuid> = h
        .slot_ids
        .iter()
        .filter(|id| !slots.iter().any(|s| s.id == **id))
        .copied()
        .collect();
    if !unknown.is_empty() {
        return Err(Problem::unprocessable("unknown slot ids")
            .with("unknown_slot_ids", unknown)
            .into());
    }
    hold::Entity::insert(hold::ActiveModel {
        id: Set(id),
        until: Set(h.until),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict_do_nothing_on([hold::Column::Id])
    .exec_without_returning(&txn)
    .await?;
    hold::Entity::update_many()
        .col_expr(hold::Column::Until, Expr::value(h.until))
        .col_expr(hold::Column::UpdatedAt, Expr::value(now))
        .filter(hold::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    hold_patient::Entity::delete_many()
        .filter(hold_patient::Column::HoldId.eq(id))
        .exec(&txn)
        .await?;
    // Cut so each statement travels in one piece (`slotcast_bus::rows`).
    for chunk in slotcast_bus::rows::chunks(&h.patient_ids, |_| 0) {
        hold_patient::Entity::insert_many(chunk.iter().map(|p| hold_patient::ActiveModel {
            hold_id: Set(id),
            patient_id: Set(*p),
        }))
        .exec_without_returning(&txn)
        .await?;
    }
    // Slots this hold had that are no longer listed are let go.
    let_go(id)
        .filter(slot::Column::Id.is_not_in(h.slot_ids.clone()))
        .exec(&txn)
        .await?;
    let mut held = Vec::new();
    let mut not_held = Vec::new();
    for slot_id in &h.slot_ids {
        let Some(s) = slots.iter().find(|s| s.id == *slot_id) else {
            continue;
        };
        let open = s.status == AVAILABLE || s.status == HELD;
        if !open || s.starts_at <= now {
            let status = if open { "started" } else { s.status.as_str() };
            not_held.push(NotHeld {
                slot_id: s.id,
                status: status.to_owned(),
            });
            continue;
        }
        held.push(s.id);
    }
    if !held.is_empty() {
        slot::Entity::update_many()
            .col_expr(slot::Column::Status, Expr::value(HELD))
            .col_expr(slot::Column::HoldId, Expr::value(Some(id)))
            .col_expr(slot::Column::HeldUntil, Expr::value(Some(h.until)))
            .filter(slot::Column::Id.is_in(held.clone()))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    metrics::counter!("slotcast_scheduling_holds_placed_total").increment(1);
    tracing::info!(hold_id = %id, held = held.len(), not_held = not_held.len(), patients = h.patient_ids.len(), until = %h.until, "hold placed");
    Ok(Json(HoldView {
        id,
        until: h.until,
        held,
        not_held,
    }))
}

/// `DELETE /v1/holds/{id}`: what the hold still holds becomes available.
async fn release(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    caller.require_staff()?;
    let txn = state.db.begin().await?;
    let freed = let_go(id).exec(&txn).await?;
    hold_patient::Entity::delete_many()
        .filter(hold_patient::Column::HoldId.eq(id))
        .exec(&txn)
        .await?;
    hold::Entity::delete_by_id(id).exec(&txn).await?;
    txn.commit().await?;
    tracing::info!(hold_id = %id, freed = freed.rows_affected, "hold released");
    Ok(StatusCode::NO_CONTENT)
}

/// Makes the slots hold `id` still holds available again (the caller may narrow it down).
fn let_go(id: Uuid) -> sea_orm::UpdateMany<slot::Entity> {
    slot::Entity::update_many()
        .col_expr(slot::Column::Status, Expr::value(AVAILABLE))
        .col_expr(slot::Column::HoldId, Expr::value(Option::<Uuid>::None))
        .col_expr(
            slot::Column::HeldUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(slot::Column::HoldId.eq(id))
        .filter(slot::Column::Status.eq(HELD))
}
