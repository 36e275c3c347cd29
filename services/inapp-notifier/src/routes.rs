//! The HTTP API: a patient's feed, and marking a notification read.
//!
//! Every error is problem+json: 401 without a valid token, 403 for another patient's feed, 400
//! for a malformed id or query, 422 for a limit out of range, 404 for a notification that is not
//! in this patient's feed (whether or not it exists elsewhere).

use std::sync::Arc;

use axum::{
    Router,
    extract::{FromRef, State},
    routing::{get, post},
};
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use slotcast_kit::{
    ApiJson, Problem,
    auth::{Authenticator, Caller},
    problem::{ApiPath, ApiQuery},
};
use uuid::Uuid;

use crate::feed::{self, Feed, FeedFilter, MarkReadError, Notification};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub auth: Arc<Authenticator>,
}

impl FromRef<AppState> for Arc<Authenticator> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

/// The feed routes, ready to merge.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/patients/{id}/notifications", get(list_notifications))
        .route(
            "/v1/patients/{id}/notifications/{nid}/read",
            post(mark_read),
        )
        .with_state(state)
}

#[derive(Debug, Deserialize)]
struct FeedQuery {
    unread: Option<bool>,
    limit: Option<u64>,
}

/// `GET /v1/patients/{id}/notifications?unread=&limit=`: that patient or staff.
async fn list_notifications(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(patient_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<FeedQuery>,
) -> Result<ApiJson<Feed>, Problem> {
    authorize(&caller, patient_id)?;
    let filter = FeedFilter::new(query.unread, query.limit)
        .map_err(|e| Problem::unprocessable(e.to_string()))?;
    let notifications = feed::list(&state.db, patient_id, filter)
        .await
        .map_err(|e| Problem::internal(&e))?;
    Ok(ApiJson(Feed { notifications }))
}

/// `POST /v1/patients/{id}/notifications/{nid}/read`: that patient (or staff).
async fn mark_read(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath((patient_id, notification_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<ApiJson<Notification>, Problem> {
    authorize(&caller, patient_id)?;
    match feed::mark_read(&state.db, patient_id, notification_id).await {
        Ok(notification) => Ok(ApiJson(notification)),
        Err(MarkReadError::NotFound) => Err(Problem::not_found("no such notification")),
        Err(MarkReadError::Unexpected(e)) => Err(Problem::internal(&e)),
    }
}

/// Staff, or the patient themself.
fn authorize(caller: &Caller, patient_id: Uuid) -> Result<(), Problem> {
    if caller.may_act_for_patient(patient_id) {
        Ok(())
    } else {
        Err(Problem::forbidden(
            "you may read only your own notifications",
        ))
    }
}
