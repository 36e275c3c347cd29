//! `POST /v1/practitioners` and `GET /v1/practitioners/{id}`.

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, EntityTrait, Set, TransactionTrait};
use serde::Serialize;
use slotcast_events::PractitionerRegistered;
use slotcast_kit::{ApiJson, Problem, auth::Caller, problem::ApiPath};
use uuid::Uuid;

use super::emit;
use crate::{AppState, domain::NewPractitioner, entities::practitioner, error::ApiResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/practitioners", post(create))
        .route("/v1/practitioners/{id}", get(read))
}

#[derive(Serialize)]
pub struct PractitionerView {
    pub id: Uuid,
    pub name: String,
    pub specialty: String,
    pub timezone: String,
    pub consultation_fee: Option<f64>,
    pub currency: String,
    pub created_at: DateTime<Utc>,
}

impl From<practitioner::Model> for PractitionerView {
    fn from(m: practitioner::Model) -> Self {
        Self {
            id: m.id,
            name: m.name,
            specialty: m.specialty,
            timezone: m.timezone,
            consultation_fee: m.consultation_fee_cents.map(|c| c as f64 / 100.0),
            currency: m.currency,
            created_at: m.created_at,
        }
    }
}

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
        },
    )
    .await?;
    txn.commit().await?;
    state.relay.wake();
    tracing::info!(practitioner_id = %id, "practitioner registered");
    Ok((StatusCode::CREATED, Json(model.into())))
}

async fn read(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<PractitionerView>> {
    let p = practitioner::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or_else(|| Problem::not_found("no such practitioner"))?;
    Ok(Json(p.into()))
}
