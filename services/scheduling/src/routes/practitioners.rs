//! `POST /v1/practitioners`, `GET /v1/practitioners/{id}` and `PATCH /v1/practitioners/{id}`
//! (the offering policy and the quiet hours, staff only).

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, EntityTrait, Set, TransactionTrait};
use serde::{Deserialize, Serialize};
use slotcast_events::{
    OfferPolicy, PractitionerPolicyChanged, PractitionerRegistered, QuietHoursSetting,
};
use slotcast_kit::{
    ApiJson, Problem,
    auth::Caller,
    openapi::{BadRequest, Forbidden, JsonBody, NotFound, ServerErrors, Unauthorized},
    problem::ApiPath,
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    AppState, Policy,
    availability::own_policy,
    domain::{NewPractitioner, present},
    entities::practitioner,
    error::ApiResult,
    store::{emit, for_update},
};

pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(read, update))
}

#[derive(Serialize, ToSchema)]
pub struct PractitionerView {
    pub id: Uuid,
    pub name: String,
    pub specialty: String,
    pub timezone: String,
    pub consultation_fee: Option<f64>,
    pub currency: String,
    /// The practitioner's own policy; `null` follows the configured default.
    pub offer_policy: Option<OfferPolicy>,
    /// The policy their openings are offered with now.
    pub effective_offer_policy: OfferPolicy,
    /// The practitioner's own quiet hours, in each patient's zone; `null` follows matching's
    /// configured `QUIET_HOURS`.
    pub quiet_hours: Option<QuietHoursSetting>,
    /// Whether email and in-app messages also wait out the quiet hours (else only texts do).
    pub quiet_hours_all_channels: bool,
    pub created_at: DateTime<Utc>,
}

impl PractitionerView {
    fn new(m: practitioner::Model, policy: &Policy) -> Self {
        let own = own_policy(&m);
        let quiet_hours = own_quiet_hours(&m);
        Self {
            id: m.id,
            name: m.name,
            specialty: m.specialty,
            timezone: m.timezone,
            consultation_fee: m.consultation_fee_cents.map(|c| c as f64 / 100.0),
            currency: m.currency,
            offer_policy: own,
            effective_offer_policy: policy.effective(own),
            quiet_hours,
            quiet_hours_all_channels: m.quiet_hours_all_channels,
            created_at: m.created_at,
        }
    }
}

/// Registers a practitioner (staff).
#[utoipa::path(post, path = "/v1/practitioners",
    operation_id = "create_practitioner", tag = "practitioners",
    security(("bearer" = [])),
    request_body = NewPractitioner,
    responses(
        (status = 201, description = "The practitioner", body = PractitionerView),
        Unauthorized, Forbidden, JsonBody, ServerErrors,
    ))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewPractitioner>,
) -> ApiResult<(StatusCode, Json<PractitionerView>)> {
    caller.require_staff()?;
    let p = body.parse()?;
    let id = Uuid::now_v7();
    let txn = state.db.begin().await?;
    let model = practitioner::ActiveModel {
        id: Set(id),
        name: Set(p.name.clone()),
        specialty: Set(p.specialty.clone()),
        timezone: Set(p.timezone.clone()),
        consultation_fee_cents: Set(p.consultation_fee_cents),
        currency: Set(p.currency.clone()),
        created_at: Set(Utc::now()),
        offer_policy: Set(p.offer_policy.map(|o| o.as_str().to_owned())),
        quiet_hours: Set(None),
        quiet_hours_all_channels: Set(false),
    }
    .insert(&txn)
    .await?;
    emit(
        &txn,
        PractitionerRegistered {
            practitioner_id: id,
            name: p.name,
            specialty: p.specialty,
            timezone: p.timezone,
            consultation_fee_cents: p.consultation_fee_cents,
            currency: p.currency,
            offer_policy: p.offer_policy,
        },
    )
    .await?;
    txn.commit().await?;
    state.relay.wake();
    tracing::info!(practitioner_id = %id, "practitioner registered");
    Ok((
        StatusCode::CREATED,
        Json(PractitionerView::new(model, &state.policy)),
    ))
}

/// A practitioner (anyone authenticated).
#[utoipa::path(get, path = "/v1/practitioners/{id}",
    operation_id = "read_practitioner", tag = "practitioners",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The practitioner's id")),
    responses(
        (status = 200, description = "The practitioner", body = PractitionerView),
        BadRequest, Unauthorized, NotFound, ServerErrors,
    ))]
async fn read(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<PractitionerView>> {
    let p = practitioner::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or_else(|| Problem::not_found("no such practitioner"))?;
    Ok(Json(PractitionerView::new(p, &state.policy)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PractitionerPatch {
    /// Absent: unchanged; `null`: follow the configured default.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable)]
    offer_policy: Option<Option<OfferPolicy>>,
    /// `HH:MM-HH:MM` in each patient's zone, or `off`. Absent: unchanged; `null`: follow
    /// matching's configured `QUIET_HOURS`.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable)]
    quiet_hours: Option<Option<QuietHoursSetting>>,
    /// Whether email and in-app messages also wait out the quiet hours. Absent or `null`:
    /// unchanged.
    #[serde(default)]
    quiet_hours_all_channels: Option<bool>,
}

/// The practitioner's own quiet hours, as stored.
fn own_quiet_hours(p: &practitioner::Model) -> Option<QuietHoursSetting> {
    p.quiet_hours.as_deref().and_then(QuietHoursSetting::parse)
}

/// Changes the practitioner's offering policy or quiet hours (staff). They apply to openings
/// from then on; `practitioner.policy_changed`, with the whole policy, is published only when
/// something changed.
#[utoipa::path(patch, path = "/v1/practitioners/{id}",
    operation_id = "update_practitioner", tag = "practitioners",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The practitioner's id")),
    request_body = PractitionerPatch,
    responses(
        (status = 200, description = "The practitioner", body = PractitionerView),
        Unauthorized, Forbidden, NotFound, JsonBody, ServerErrors,
    ))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PractitionerPatch>,
) -> ApiResult<Json<PractitionerView>> {
    caller.require_staff()?;
    let txn = state.db.begin().await?;
    let p = for_update(practitioner::Entity::find_by_id(id), &txn)
        .one(&txn)
        .await?
        .ok_or_else(|| Problem::not_found("no such practitioner"))?;
    let offer_policy = body.offer_policy.unwrap_or_else(|| own_policy(&p));
    let quiet_hours = body.quiet_hours.unwrap_or_else(|| own_quiet_hours(&p));
    let all_channels = body
        .quiet_hours_all_channels
        .unwrap_or(p.quiet_hours_all_channels);
    let stored_policy = offer_policy.map(|o| o.as_str().to_owned());
    let stored_quiet = quiet_hours.map(String::from);
    if stored_policy == p.offer_policy
        && stored_quiet == p.quiet_hours
        && all_channels == p.quiet_hours_all_channels
    {
        return Ok(Json(PractitionerView::new(p, &state.policy)));
    }
    let mut changed: practitioner::ActiveModel = p.into();
    changed.offer_policy = Set(stored_policy);
    changed.quiet_hours = Set(stored_quiet);
    changed.quiet_hours_all_channels = Set(all_channels);
    let p = changed.update(&txn).await?;
    emit(
        &txn,
        PractitionerPolicyChanged {
            practitioner_id: id,
            offer_policy,
            quiet_hours,
            quiet_hours_all_channels: all_channels,
        },
    )
    .await?;
    txn.commit().await?;
    state.relay.wake();
    tracing::info!(practitioner_id = %id, offer_policy = ?offer_policy, quiet_hours = ?quiet_hours, all_channels, "practitioner policy changed");
    Ok(Json(PractitionerView::new(p, &state.policy)))
}
