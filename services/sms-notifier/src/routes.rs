//! The HTTP API: the texts' short links, the delivery reports the gateway calls back with, and
//! the ops endpoints.
//!
//! `GET /s/{token}` is a text's link: 22 characters that stand for the offer's page, to which it
//! answers 303. Whether the offer still holds (expired, taken, booked) the page says, in the
//! patient's language, as it does for the link of an email. Its requests count against
//! `RATE_LIMIT_LINKS`.
//!
//! `GET /v1/sms/reports/{id}/{token}?status=` is the address each text's `dlr-url` names: the
//! notification and the delivery's own 128-bit key (no login: the gateway has none). Kannel's
//! report codes are 1 delivered, 2 undelivered, 4 queued, 8 taken by the SMSC and 16 refused
//! by it; 1 and 2/16 end the delivery, 4 and 8 change nothing. A repeated report changes
//! nothing twice.

use axum::{Json, extract::State};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use slotcast_bus::outbox::Relay;
use slotcast_kit::{
    Problem,
    openapi::{BadRequest, NotFound, ServerErrors, Unprocessable},
    problem::{ApiPath, ApiQuery},
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::deliveries::{self, Report, Reported};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub relay: Relay,
}

pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(report))
        .routes(routes!(short_link))
}

/// The routes patients open from a text, under the links' rate limit.
pub const LINK_ROUTES: &[&str] = &["/s/{token}"];

/// A text's short link: to the offer's page.
#[utoipa::path(get, path = "/s/{token}",
    operation_id = "sms_short_link", tag = "links",
    params(("token" = String, Path, description = "The short link's id, from a text message")),
    responses(
        (status = 303, description = "To the offer's page", headers(("location" = String, description = "The offer's page"))),
        NotFound, ServerErrors,
    ))]
async fn short_link(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<axum::response::Redirect, Problem> {
    match deliveries::link_target(&state.db, &token).await {
        Ok(Some(target)) => Ok(axum::response::Redirect::to(&target)),
        Ok(None) => Err(Problem::not_found("no such link")),
        Err(e) => Err(unavailable(e)),
    }
}

/// The report's code, as Kannel's `%d` gives it.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReportQuery {
    /// 1 delivered, 2 undelivered, 4 queued, 8 taken by the SMSC, 16 refused by the SMSC.
    status: u32,
}

/// What became of the report.
#[derive(Debug, Serialize, ToSchema)]
struct ReportView {
    notification_id: Uuid,
    /// `applied` (the delivery changed), `unchanged` (it had this outcome already) or `noted`
    /// (an intermediate report, which changes nothing).
    result: &'static str,
}

/// A delivery report from the gateway on one text.
#[utoipa::path(get, path = "/v1/sms/reports/{id}/{token}",
    operation_id = "sms_delivery_report", tag = "reports",
    params(
        ("id" = Uuid, Path, description = "The notification the text was sent for"),
        ("token" = String, Path, description = "The delivery's report key, from its `dlr-url`"),
        ReportQuery,
    ),
    responses(
        (status = 200, description = "Taken", body = ReportView),
        BadRequest, NotFound, Unprocessable, ServerErrors,
    ))]
async fn report(
    State(state): State<AppState>,
    ApiPath((id, token)): ApiPath<(Uuid, String)>,
    ApiQuery(query): ApiQuery<ReportQuery>,
) -> Result<Json<ReportView>, Problem> {
    let report = match query.status {
        1 => Some(Report::Delivered),
        2 | 16 => Some(Report::Undelivered),
        4 | 8 => None,
        other => {
            return Err(Problem::unprocessable(format!(
                "{other} is not a report code (1, 2, 4, 8 or 16)"
            )));
        }
    };
    let status = query.status.to_string();
    metrics::counter!("slotcast_sms_reports_total", "status" => status).increment(1);
    let Some(report) = report else {
        // Only checked for existence, so a probe learns nothing from it either.
        return match deliveries::find(&state.db, id).await {
            Ok(Some(d)) if deliveries::same_key(&d.report_key, &token) => Ok(Json(ReportView {
                notification_id: id,
                result: "noted",
            })),
            Ok(_) => Err(Problem::not_found("no such text")),
            Err(e) => Err(unavailable(e)),
        };
    };
    match deliveries::record_report(&state.db, id, &token, report).await {
        Ok(Some(Reported::Applied)) => {
            state.relay.wake();
            tracing::info!(notification_id = %id, ?report, "delivery report applied");
            Ok(Json(ReportView {
                notification_id: id,
                result: "applied",
            }))
        }
        Ok(Some(Reported::Unchanged)) => Ok(Json(ReportView {
            notification_id: id,
            result: "unchanged",
        })),
        Ok(None) => Err(Problem::not_found("no such text")),
        Err(e) => Err(unavailable(e)),
    }
}

/// A database that cannot answer: 503, so the gateway may report again later.
fn unavailable(e: sea_orm::DbErr) -> Problem {
    tracing::warn!(error = %e, "delivery report not recorded");
    Problem::unavailable("the delivery log is unavailable; retry later")
}
