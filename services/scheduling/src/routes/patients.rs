//! `POST /v1/patients` and `GET /v1/patients/{id}`.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, EntityTrait, Set, TransactionTrait};
use serde::Serialize;
use slotcast_events::PatientRegistered;
use slotcast_i18n::Locale;
use slotcast_kit::{
    ApiJson, Problem,
    auth::Caller,
    openapi::{BadRequest, Forbidden, JsonBody, NotFound, ServerErrors, Unauthorized},
    problem::ApiPath,
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{AppState, domain::NewPatient, entities::patient, error::ApiResult, store::emit};

pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(read))
}

#[derive(Serialize, ToSchema)]
pub struct PatientView {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub locale: String,
    /// The language `locale` gets: the same tag, else the same language, else English.
    pub effective_locale: String,
    pub timezone: Option<String>,
    /// E.164.
    pub phone: Option<String>,
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
            phone: m.phone,
            created_at: m.created_at,
        }
    }
}

/// Registers a patient (staff).
#[utoipa::path(post, path = "/v1/patients",
    operation_id = "create_patient", tag = "patients",
    security(("bearer" = [])),
    request_body = NewPatient,
    responses(
        (status = 201, description = "The patient", body = PatientView),
        Unauthorized, Forbidden, JsonBody, ServerErrors,
    ))]
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
        phone: Set(p.phone.clone()),
        notify_sms: Set(false),
        sms_consent_at: Set(None),
        sms_consent_via: Set(None),
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
            phone: p.phone,
        },
    )
    .await?;
    txn.commit().await?;
    state.relay.wake();
    tracing::info!(patient_id = %id, "patient registered");
    Ok((StatusCode::CREATED, Json(model.into())))
}

/// A patient: staff, or the patient themself.
#[utoipa::path(get, path = "/v1/patients/{id}",
    operation_id = "read_patient", tag = "patients",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The patient's id")),
    responses(
        (status = 200, description = "The patient", body = PatientView),
        BadRequest, Unauthorized, Forbidden, NotFound, ServerErrors,
    ))]
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
