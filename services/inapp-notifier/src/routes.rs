//! The HTTP API: a patient's feed, its live stream, and marking a notification read.
//!
//! Every error is problem+json: 401 without a valid token, 403 for another patient's feed, 400
//! for a malformed id, query or `Last-Event-ID`, 422 for a limit out of range, 404 for a
//! notification that is not in this patient's feed (whether or not it exists elsewhere).

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{FromRef, State},
    http::{HeaderMap, HeaderName, HeaderValue},
    response::{
        IntoResponse,
        sse::{KeepAlive, Sse},
    },
};
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use slotcast_kit::{
    ApiJson, Problem,
    auth::{Authenticator, Caller},
    openapi::{BadRequest, Forbidden, NotFound, ServerErrors, Unauthorized, Unprocessable},
    problem::{ApiPath, ApiQuery},
};
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
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

/// The feed routes, each registered with its documented operation.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_notifications))
        .routes(routes!(stream_notifications))
        .routes(routes!(mark_read))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct FeedQuery {
    /// `true`: unread only; `false`: read only; absent: all.
    unread: Option<bool>,
    /// How many, newest first: 1 to 200 (50 when absent).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u64>,
}

/// A patient's feed, newest first: each notification with its practitioner, its slots and
/// their current availability, and booking links (that patient, staff).
#[utoipa::path(get, path = "/v1/patients/{id}/notifications", tag = "notifications",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The patient's id"), FeedQuery),
    responses(
        (status = 200, description = "The feed", body = Feed, headers(
            ("feed-last-event-id" = i64,
                description = "The id of the last change the feed includes: the stream's \
                    `Last-Event-ID` to miss nothing after it"),
        )),
        BadRequest, Unauthorized, Forbidden, Unprocessable, ServerErrors,
    ))]
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

/// A patient's feed as it changes, as Server-Sent Events (that patient, staff): each event's
/// `id` is its sequence number, `event` the kind of change (`notification`,
/// `notification.updated`), and `data` the notification as the feed shows it. With `Last-Event-ID`, every change after it
/// first; without, changes from now on.
#[utoipa::path(get, path = "/v1/patients/{id}/notifications/stream", tag = "notifications",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The patient's id"),
        ("Last-Event-ID" = Option<String>, Header,
            description = "The id of the last event seen (a whole number)"),
    ),
    responses(
        (status = 200, description = "An endless stream of events, one per change",
            body = String, content_type = "text/event-stream"),
        BadRequest, Unauthorized, Forbidden, ServerErrors,
    ))]
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

/// Marks a notification read (that patient, staff); marking it again changes nothing.
#[utoipa::path(post, path = "/v1/patients/{id}/notifications/{nid}/read", tag = "notifications",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The patient's id"),
        ("nid" = Uuid, Path, description = "The notification's id"),
    ),
    responses(
        (status = 200, description = "The notification", body = Notification),
        BadRequest, Unauthorized, Forbidden, NotFound, ServerErrors,
    ))]
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
