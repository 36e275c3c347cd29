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
//! The rules are [`crate::holds`]'s. While `held_until` is in the future only the hold's
//! patients may book its slots ([`crate::booking`]); after it, the slot counts as available
//! everywhere, without a background job. A hold carries up to 10,000 patient ids (about 390 KB
//! of JSON), more than the API's general body limit, so this router has its own, larger one.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;
use serde::Serialize;
use slotcast_kit::{
    ApiJson, Problem,
    auth::Caller,
    openapi::{BadRequest, Forbidden, JsonBody, ServerErrors, Unauthorized},
    problem::ApiPath,
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    AppState,
    domain::NewHold,
    error::ApiResult,
    holds::{self, NotHeld, Placed},
};

/// The largest body of a hold request: 10,000 patient ids and 200 slot ids, with room to spare.
pub const MAX_HOLD_BODY_BYTES: usize = 1024 * 1024;

/// The hold routes; they take the same layers as the rest of the API (tracing by route
/// template, timeout, problem+json for a layer's own errors) but [`MAX_HOLD_BODY_BYTES`].
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(place, release))
}

#[derive(Debug, Serialize, ToSchema)]
struct HoldView {
    id: Uuid,
    until: DateTime<Utc>,
    /// In the order asked.
    held: Vec<Uuid>,
    not_held: Vec<NotHeld>,
}

/// Places or replaces hold `id` on slots for patients until `until` (staff; matching's waves).
#[utoipa::path(put, path = "/v1/holds/{id}",
    operation_id = "place_hold", tag = "holds",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The hold's id, chosen by the caller")),
    request_body = NewHold,
    responses(
        (status = 200, description = "What the hold holds", body = HoldView),
        Unauthorized, Forbidden, JsonBody, ServerErrors,
    ))]
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
    let Placed { held, not_held } = match holds::place(&txn, id, &h, now).await? {
        Ok(placed) => placed,
        Err(unknown) => {
            return Err(Problem::unprocessable("unknown slot ids")
                .with("unknown_slot_ids", unknown)
                .into());
        }
    };
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

/// Lets hold `id` go: what it still holds becomes available (staff). Again changes nothing.
#[utoipa::path(delete, path = "/v1/holds/{id}",
    operation_id = "release_hold", tag = "holds",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The hold's id")),
    responses(
        (status = 204, description = "Released"),
        BadRequest, Unauthorized, Forbidden, ServerErrors,
    ))]
async fn release(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    caller.require_staff()?;
    let txn = state.db.begin().await?;
    let freed = holds::release(&txn, id).await?;
    txn.commit().await?;
    tracing::info!(hold_id = %id, freed, "hold released");
    Ok(StatusCode::NO_CONTENT)
}
