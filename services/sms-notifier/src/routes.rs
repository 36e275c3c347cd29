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
//!
//! With a Twilio gateway the same addresses take POSTed forms, each signed
//! (`X-Twilio-Signature`, [`crate::gateway::twilio`]) over the public URL it was posted to: the report
//! base (`SMS_REPORT_URL`) or the inbound base (`SMS_INBOUND_URL`) followed by the request's
//! path and query. A POST that is not signed so is 403 and changes nothing; without a Twilio
//! gateway the POSTs are 404. A patient's text is answered with empty TwiML, so Twilio texts
//! nothing back: the answer goes out through the API as a message of its own.

use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::{OriginalUri, State},
    http::{HeaderMap, Uri, header},
    response::IntoResponse,
};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use slotcast_bus::outbox::Relay;
use slotcast_kit::{
    Problem,
    openapi::{BadRequest, Forbidden, NotFound, ServerErrors, Unprocessable},
    problem::{ApiPath, ApiQuery},
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    deliveries::{self, Report, Reported},
    gateway::twilio::{SIGNATURE_HEADER, WebhookKey},
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
    pub webhooks: Webhooks,
}

/// What checks the gateway's signed webhooks, and the public addresses they are signed over.
#[derive(Debug, Clone)]
pub struct Webhooks {
    /// The Twilio account's key; `None` unless `SMS_URL` is a Twilio URL.
    pub twilio: Option<WebhookKey>,
    /// `SMS_REPORT_URL`, or the address this service listens on.
    pub report_base_url: String,
    /// `SMS_INBOUND_URL`, or the report base.
    pub inbound_base_url: String,
}

pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(report, twilio_report))
        .routes(routes!(short_link))
        .routes(routes!(inbound, twilio_inbound))
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
    let (replies, text) = received(&state, &token, &query.from, query.id, query.text)?;
    answer(replies, &text).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// A text from a patient's phone, as Twilio posts it to a number's messaging webhook.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
struct TwilioInbound {
    /// Twilio's id for the message: the same on a second delivery.
    message_sid: String,
    /// The patient's number.
    from: String,
    /// The number it was sent to.
    #[allow(dead_code)]
    to: Option<String>,
    /// The text.
    #[serde(default)]
    body: String,
}

/// TwiML that says nothing: Twilio texts nothing back.
const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

/// A text a patient sent, posted by Twilio and signed: STOP, START, HELP, or a yes or a number
/// that books.
#[utoipa::path(post, path = "/v1/sms/inbound/{token}",
    operation_id = "sms_inbound_twilio", tag = "inbound",
    params(
        ("token" = String, Path, description = "`SMS_INBOUND_KEY`"),
        ("X-Twilio-Signature" = String, Header, description = "Twilio's signature over `SMS_INBOUND_URL` (or `SMS_REPORT_URL`), this path and query, and the form"),
    ),
    request_body(content = TwilioInbound, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Answered (the answer goes out as a message of its own): empty TwiML", body = String, content_type = "text/xml"),
        Forbidden, NotFound, Unprocessable, ServerErrors,
    ))]
async fn twilio_inbound(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    let webhooks = &state.webhooks;
    let params = signed_form(
        webhooks.twilio.as_ref(),
        &webhooks.inbound_base_url,
        &uri,
        &headers,
        &body,
    )?;
    let posted: TwilioInbound = form(&params)?;
    let (replies, text) = received(
        &state,
        &token,
        &posted.from,
        posted.message_sid,
        posted.body,
    )?;
    answer(replies, &text).await?;
    Ok(([(header::CONTENT_TYPE, "text/xml")], EMPTY_TWIML))
}

/// A patient's text read, if `token` is the inbound key and texts are answered here.
fn received<'s>(
    state: &'s AppState,
    token: &str,
    from: &str,
    gateway_id: String,
    text: String,
) -> Result<(&'s Replies, Inbound), Problem> {
    let (Some(replies), Some(key)) = (&state.replies, &state.inbound_key) else {
        return Err(Problem::not_found("no such address"));
    };
    if !deliveries::same_key(key, token) {
        return Err(Problem::not_found("no such address"));
    }
    let Some(from) = e164(from) else {
        return Err(Problem::unprocessable("from is not a phone number"));
    };
    if gateway_id.trim().is_empty() || gateway_id.len() > 100 {
        return Err(Problem::unprocessable("id is the gateway's message id"));
    }
    Ok((
        replies.as_ref(),
        Inbound {
            gateway_id,
            from,
            text,
        },
    ))
}

/// Answers `text`; 503 when it cannot now, so the gateway delivers it again.
async fn answer(replies: &Replies, text: &Inbound) -> Result<(), Problem> {
    match replies.answer(text).await {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, "a text from a patient is not answered yet");
            Err(Problem::unavailable("cannot answer now; deliver it again"))
        }
    }
}

/// The form a gateway posted, if `key` signs it over `base` and the request's path and query:
/// its fields as sent. 403 when unsigned or not signed so; 404 for a signed form without a key
/// (no gateway posts here).
fn signed_form(
    key: Option<&WebhookKey>,
    base: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, Problem> {
    let unsigned = || Problem::forbidden("not signed by the gateway");
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unsigned)?;
    let Some(key) = key else {
        return Err(Problem::not_found("no such address"));
    };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let url = format!("{base}{path}");
    match key.verify(&url, &params, signature) {
        true => Ok(params),
        false => Err(unsigned()),
    }
}

/// `params` read as `T`; 422 when a field is missing or given twice.
fn form<T: DeserializeOwned>(params: &[(String, String)]) -> Result<T, Problem> {
    let mut fields = serde_json::Map::new();
    for (name, value) in params {
        if fields
            .insert(name.clone(), serde_json::Value::String(value.clone()))
            .is_some()
        {
            return Err(Problem::unprocessable(format!("{name} is given twice")));
        }
    }
    serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| Problem::unprocessable(format!("not the gateway's form: {e}")))
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
    apply(&state, id, &token, report).await
}

/// A status callback from Twilio, as a form.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
struct TwilioStatus {
    /// The message's sid, as the API gave it.
    message_sid: Option<String>,
    /// `queued`, `sending`, `sent`, `delivered`, `undelivered` or `failed` (or another state a
    /// newer API adds): `delivered` and `undelivered`/`failed` end the delivery, the others
    /// change nothing.
    message_status: String,
    /// Twilio's error code, with `undelivered` and `failed`.
    error_code: Option<String>,
}

/// A status callback from Twilio on one text (the `StatusCallback` the text was sent with),
/// signed.
#[utoipa::path(post, path = "/v1/sms/reports/{id}/{token}",
    operation_id = "sms_delivery_report_twilio", tag = "reports",
    params(
        ("id" = Uuid, Path, description = "The notification the text was sent for"),
        ("token" = String, Path, description = "The delivery's report key, from its `StatusCallback`"),
        ("X-Twilio-Signature" = String, Header, description = "Twilio's signature over `SMS_REPORT_URL`, this path and query, and the form"),
    ),
    request_body(content = TwilioStatus, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Taken", body = ReportView),
        BadRequest, Forbidden, NotFound, Unprocessable, ServerErrors,
    ))]
async fn twilio_report(
    State(state): State<AppState>,
    ApiPath((id, token)): ApiPath<(Uuid, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ReportView>, Problem> {
    let webhooks = &state.webhooks;
    let params = signed_form(
        webhooks.twilio.as_ref(),
        &webhooks.report_base_url,
        &uri,
        &headers,
        &body,
    )?;
    let posted: TwilioStatus = form(&params)?;
    let (report, status) = match posted.message_status.as_str() {
        "delivered" => (Some(Report::Delivered), "delivered"),
        "undelivered" => (Some(Report::Undelivered), "undelivered"),
        "failed" => (Some(Report::Undelivered), "failed"),
        "queued" => (None, "queued"),
        "sending" => (None, "sending"),
        "sent" => (None, "sent"),
        // Label values stay a known few, whatever a provider sends.
        _ => (None, "other"),
    };
    metrics::counter!("slotcast_sms_reports_total", "status" => status).increment(1);
    if report == Some(Report::Undelivered) {
        tracing::info!(notification_id = %id, message_sid = posted.message_sid, error_code = posted.error_code, status, "Twilio could not deliver a text");
    }
    apply(&state, id, &token, report).await
}

/// Applies `report` (or, for an intermediate one, only checks the key) to the delivery `id`.
async fn apply(
    state: &AppState,
    id: Uuid,
    token: &str,
    report: Option<Report>,
) -> Result<Json<ReportView>, Problem> {
    let Some(report) = report else {
        // Only checked for existence, so a probe learns nothing from it either.
        return match deliveries::find(&state.db, id).await {
            Ok(Some(d)) if deliveries::same_key(&d.report_key, token) => Ok(Json(ReportView {
                notification_id: id,
                result: "noted",
            })),
            Ok(_) => Err(Problem::not_found("no such text")),
            Err(e) => Err(unavailable(e)),
        };
    };
    match deliveries::record_report(&state.db, id, token, report).await {
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
