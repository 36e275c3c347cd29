//! The HTTP API: a patient's feed, its live stream, and marking a notification read.
//!
//! Every error is problem+json: 401 without a valid token, 403 for another patient's feed, 400
//! for a malformed id, query or `Last-Event-ID`, 422 for a limit out of range, 404 for a
//! notification that is not in this patient's feed (whether or not it exists elsewhere).

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{FromRef, State},
    http::{HeaderMap, HeaderName, HeaderValue},
    response::{
        IntoResponse,
        sse::{KeepAlive, Sse},
    },
    routing::{get, post},
};
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use slotcast_kit::{
    ApiJson, Problem,
    auth::{Authenticator, Caller},
    problem::{ApiPath, ApiQuery},
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    feed::{self, Feed, FeedFilter, MarkReadError, MarkedRead, Notification},
    feed_log::{self, FeedSignal},
    stream::{self, LastEventId},
};

/// On the feed: the id of the last change it includes. A client that opens the stream with it
/// as `Last-Event-ID` misses nothing that happened after it read the feed.
pub const FEED_LAST_EVENT_ID: HeaderName = HeaderName::from_static("feed-last-event-id");
/// A comment line on an idle stream this often keeps proxies from closing it.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub auth: Arc<Authenticator>,
    /// Wakes the open streams after a change is committed.
    pub signal: FeedSignal,
    /// Cancelled when the service stops: open streams end then.
    pub shutdown: CancellationToken,
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
            "/v1/patients/{id}/notifications/stream",
            get(stream_notifications),
        )
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
) -> Result<impl IntoResponse, Problem> {
    authorize(&caller, patient_id)?;
    let filter = FeedFilter::new(query.unread, query.limit)
        .map_err(|e| Problem::unprocessable(e.to_string()))?;
    // Read before the feed: whatever changes after the feed is read has a later id.
    let last_seq = feed_log::last_seq(&state.db, patient_id)
        .await
        .map_err(|e| Problem::internal(&e))?;
    let notifications = feed::list(&state.db, patient_id, filter)
        .await
        .map_err(|e| Problem::internal(&e))?;
    Ok((
        [(FEED_LAST_EVENT_ID, HeaderValue::from(last_seq))],
        ApiJson(Feed { notifications }),
    ))
}

/// `GET /v1/patients/{id}/notifications/stream`: that patient or staff. Server-Sent Events:
/// with `Last-Event-ID`, every change after it first; without, changes from now on.
async fn stream_notifications(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(patient_id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, Problem> {
    authorize(&caller, patient_id)?;
    let last_event_id = headers
        .get("last-event-id")
        .map(|v| LastEventId::parse(v.as_bytes()))
        .transpose()
        .map_err(|e| Problem::bad_request(e.to_string()))?;
    // Subscribed before the starting point is read, so no wake-up falls between.
    let wake = state.signal.subscribe();
    let last_seq = feed_log::last_seq(&state.db, patient_id)
        .await
        .map_err(|e| Problem::internal(&e))?;
    let after = match last_event_id {
        Some(LastEventId(seq)) if seq <= last_seq => seq,
        // An id we never gave (a restored database, another deployment's id): the client has
        // lost track, so it gets the whole log rather than silence until the log catches up.
        Some(LastEventId(_)) => 0,
        None => last_seq,
    };
    tracing::info!(%patient_id, after, "notification stream opened");
    let events = stream::events(
        state.db.clone(),
        patient_id,
        after,
        wake,
        state.shutdown.clone(),
    );
    Ok((
        // Tells nginx-like proxies not to hold events back.
        [(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        )],
        Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)),
    ))
}

/// `POST /v1/patients/{id}/notifications/{nid}/read`: that patient (or staff).
async fn mark_read(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath((patient_id, notification_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<ApiJson<Notification>, Problem> {
    authorize(&caller, patient_id)?;
    match feed::mark_read(&state.db, patient_id, notification_id).await {
        Ok(MarkedRead {
            notification,
            first_time,
        }) => {
            if first_time {
                state.signal.changed(&[patient_id]).await;
            }
            Ok(ApiJson(notification))
        }
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
