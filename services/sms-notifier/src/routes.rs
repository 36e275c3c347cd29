//! The HTTP API: the texts' short links, the delivery reports the gateway calls back with, and
//! the ops endpoints.
//!
//! `GET /s/{token}` is a text's link: 22 characters that stand for the offer's page, to which it
//! answers 303. Whether the offer still holds (expired, taken, booked) the page says, in the
//! patient's language, as it does for the link of an email. Its requests count against
//! `RATE_LIMIT_LINKS`.
//!
//! `GET /v1/sms/inbound/{token}?from=&to=&text=&id=` is where the gateway hands over a text a
//! patient sent (Kannel's `get-url`, with `%p`, `%P`, `%a` and `%I`); `token` is
//! `SMS_INBOUND_KEY`. It answers 204 without a body, so a gateway set to text the body back
//! texts nothing: the answer goes out through the gateway as a text of its own. 503 when
//! scheduling or the gateway cannot answer now, so the gateway delivers the text again.
//!
//! `GET /v1/sms/reports/{id}/{token}?status=` is the address each text's `dlr-url` names: the
//! notification and the delivery's own 128-bit key (no login: the gateway has none). Kannel's
//! report codes are 1 delivered, 2 undelivered, 4 queued, 8 taken by the SMSC and 16 refused
//! by it; 1 and 2/16 end the delivery, 4 and 8 change nothing. A repeated report changes
//! nothing twice.

use std::sync::Arc;

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

use crate::{
    deliveries::{self, Report, Reported},
    replies::{Inbound, Replies},
};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub relay: Relay,
    /// Answers texts from patients; `None` without `SMS_INBOUND_KEY`.
    pub replies: Option<Arc<Replies>>,
    pub inbound_key: Option<String>,
}

pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(report))
        .routes(routes!(short_link))
        .routes(routes!(inbound))
}

/// A text from a patient's phone, as the gateway hands it over.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct InboundQuery {
    /// The patient's number (`%p`).
    from: String,
    /// The number it was sent to (`%P`).
    #[allow(dead_code)]
    to: Option<String>,
    /// The text (`%a`).
    text: String,
    /// The gateway's id for the message (`%I`): the same on a second delivery.
    id: String,
}

/// A text a patient sent: STOP, START, HELP, or a yes or a number that books.
#[utoipa::path(get, path = "/v1/sms/inbound/{token}",
    operation_id = "sms_inbound", tag = "inbound",
    params(
        ("token" = String, Path, description = "`SMS_INBOUND_KEY`"),
        InboundQuery,
    ),
    responses(
        (status = 204, description = "Answered (the answer goes out as a text)"),
        BadRequest, NotFound, Unprocessable, ServerErrors,
    ))]
async fn inbound(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    ApiQuery(query): ApiQuery<InboundQuery>,
) -> Result<axum::http::StatusCode, Problem> {
    let (Some(replies), Some(key)) = (&state.replies, &state.inbound_key) else {
        return Err(Problem::not_found("no such address"));
    };
    if !deliveries::same_key(key, &token) {
        return Err(Problem::not_found("no such address"));
    }
    let Some(from) = e164(&query.from) else {
        return Err(Problem::unprocessable("from is not a phone number"));
    };
    if query.id.trim().is_empty() || query.id.len() > 100 {
        return Err(Problem::unprocessable("id is the gateway's message id"));
    }
    let text = Inbound {
        gateway_id: query.id,
        from,
        text: query.text,
    };
    match replies.answer(&text).await {
        Ok(_) => Ok(axum::http::StatusCode::NO_CONTENT),
        Err(e) => {
            tracing::warn!(error = %e, "a text from a patient is not answered yet");
            Err(Problem::unavailable("cannot answer now; deliver it again"))
        }
    }
}

/// A sender as gateways give it (`+33…`, `0033…` or `33…`), as E.164.
fn e164(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let number = if let Some(rest) = digits.strip_prefix("00") {
        format!("+{rest}")
    } else if digits.starts_with('+') {
        digits
    } else {
        format!("+{digits}")
    };
    crate::gateway::is_e164(&number).then_some(number)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_is_read_as_e164_in_the_forms_gateways_give() {
        for raw in [
            "+33612345678",
            "0033612345678",
            "33612345678",
            " +33 6 12 34 56 78",
        ] {
            assert_eq!(e164(raw).as_deref(), Some("+33612345678"), "{raw}");
        }
        for raw in ["", "+", "abc", "0612", "+33612345678 +44"] {
            assert_eq!(e164(raw), None, "{raw}");
        }
    }
}
