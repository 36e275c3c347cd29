//! `POST /v1/patients` and `GET /v1/patients/{id}`.

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, EntityTrait, Set, TransactionTrait};
use serde::Serialize;
use slotcast_events::PatientRegistered;
use slotcast_i18n::Locale;
use slotcast_kit::{ApiJson, Problem, auth::Caller, problem::ApiPath};
use uuid::Uuid;

use crate::{AppState, domain::NewPatient, entities::patient, error::ApiResult, store::emit};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/patients", post(create))
        .route("/v1/patients/{id}", get(read))
}

#[derive(Serialize)]
pub struct PatientView {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub locale: String,
    /// The language `locale` gets: the same tag, else the same language, else English.
    pub effective_locale: String,
    pub timezone: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<patient::Model> for PatientView {
    fn from(m: patient::Model) -> Self {
        Self {
            id: m.id,
            name: m.name,
            email: m.email,
            effective_locale: Locale::negotiate(&m.locale).tag(),
            locale: m.locale,
            timezone: m.timezone,
            created_at: m.created_at,
        }
    }
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewPatient>,
) -> ApiResult<(StatusCode, Json<PatientView>)> {
    caller.require_staff()?;
    let p = body.parse()?;
    let id = Uuid::now_v7();
    let txn = state.db.begin().await?;
    let model = patient::ActiveModel {
        id: Set(id),
        name: Set(p.name.clone()),
        email: Set(p.email.clone()),
        locale: Set(p.locale.clone()),
        timezone: Set(p.timezone.clone()),
        created_at: Set(Utc::now()),
        notify_email: Set(true),
        notify_inapp: Set(true),
        preferences_updated_at: Set(None),
    }
    .insert(&txn)
    .await?;
    emit(
        &txn,
        PatientRegistered {
            patient_id: id,
            name: p.name,
            email: p.email,
            locale: p.locale,
            timezone: p.timezone,
        },
    )
    .await?;
    txn.commit().await?;
    state.relay.wake();
    tracing::info!(patient_id = %id, "patient registered");
    Ok((StatusCode::CREATED, Json(model.into())))
}

/// Staff, or the patient themself.
async fn read(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<PatientView>> {
    if !caller.may_act_for_patient(id) {
        return Err(Problem::forbidden("not your patient record").into());
    }
    let p = patient::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or_else(|| Problem::not_found("no such patient"))?;
    Ok(Json(p.into()))
}
