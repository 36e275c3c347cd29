//! The links of a confirmation, no login: the signed appointment token in the path names the
//! appointment and its patient.
//!
//! - `GET /v1/appointment-links/{token}`: the appointment (JSON, or a page for a browser) and,
//!   while it is booked and has not started, a form that cancels it. A GET never cancels: mail
//!   scanners follow links.
//! - `POST /v1/appointment-links/{token}/cancel`: cancels it (the body is not read), through the
//!   same use-case as `POST /v1/appointments/{id}/cancel`, so the freed slot goes to the waiting
//!   list. Again on a cancelled appointment: the same answer, nothing changes.
//! - `GET /v1/appointment-links/{token}/calendar.ics`: the calendar entry as it stands
//!   (`METHOD:PUBLISH`, the `UID` and `SEQUENCE` of the emailed entries).
//!
//! An expired token is 410, any other bad token 401, an appointment that is gone 404.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, header},
    response::{Html, IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use sea_orm::{EntityTrait, TransactionTrait};
use serde::Serialize;
use slotcast_i18n::Locale;
use slotcast_kit::{
    ApiJson, Problem,
    openapi::{ServerErrors, page as on_page},
    problem::ApiPath,
};
use slotcast_links::AppointmentClaims;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    link_pages::{self, Failure, FailurePage},
    offers::{Asked, Format},
};
use crate::{
    AppState, booking,
    entities::{
        appointment::{self, BOOKED as APPOINTMENT_BOOKED},
        practitioner, slot,
    },
    error::ApiError,
    store::for_update,
};

pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show))
        .routes(routes!(cancel))
        .routes(routes!(calendar))
}

/// An appointment as its link shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppointmentLinkView {
    pub appointment_id: Uuid,
    /// `booked` or `cancelled`.
    pub status: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub practitioner_name: String,
    pub specialty: String,
    /// IANA time zone of the practice, to show the time in.
    pub timezone: String,
    /// The calendar entry's `SEQUENCE`.
    pub sequence: u32,
    /// Where to POST to cancel it, while it is booked and has not started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_url: Option<String>,
    /// The calendar entry as it stands.
    pub calendar_url: String,
}

/// What the page says for a failure of this status, a catalogue message id.
fn failure_message(status: u16) -> &'static str {
    match status {
        401 => "appointment-error-invalid",
        404 => "appointment-error-not-found",
        409 => "appointment-started",
        410 => "appointment-error-expired",
        _ => "something-went-wrong",
    }
}

/// The page of a failure.
static FAILURE_PAGE: FailurePage = FailurePage {
    message: failure_message,
    render: failure_page,
};

fn failure_page(locale: &Locale, message: &str) -> String {
    page::render(locale, message, true, None)
}

fn fail(asked: &Asked) -> impl Fn(ApiError) -> Failure + use<> {
    link_pages::fail(asked, &FAILURE_PAGE)
}

/// What a link names, or why its token was refused.
fn verify(state: &AppState, token: &str, asked: &Asked) -> Result<AppointmentClaims, Failure> {
    state
        .offers
        .verify_appointment(token)
        .map_err(|e| fail(asked)(link_pages::refused(e).into()))
}

/// The appointment, its slot and its practitioner, read in one snapshot.
struct Loaded {
    appointment: appointment::Model,
    slot: slot::Model,
    practitioner: practitioner::Model,
}

async fn load(
    conn: &impl sea_orm::ConnectionTrait,
    claims: &AppointmentClaims,
    lock: bool,
) -> Result<Loaded, ApiError> {
    let query = appointment::Entity::find_by_id(claims.aid);
    let query = if lock { for_update(query, conn) } else { query };
    let a = query
        .one(conn)
        .await?
        .filter(|a| a.patient_id == claims.sub)
        .ok_or_else(|| Problem::not_found("no such appointment"))?;
    let s = slot::Entity::find_by_id(a.slot_id)
        .one(conn)
        .await?
        .ok_or_else(|| anyhow::anyhow!("appointment {} points at a missing slot", a.id))?;
    let p = practitioner::Entity::find_by_id(a.practitioner_id)
        .one(conn)
        .await?
        .ok_or_else(|| anyhow::anyhow!("practitioner {} is missing", a.practitioner_id))?;
    Ok(Loaded {
        appointment: a,
        slot: s,
        practitioner: p,
    })
}

/// Whether the appointment can still be cancelled from its link at `now`.
fn cancellable(loaded: &Loaded, now: DateTime<Utc>) -> bool {
    loaded.appointment.status == APPOINTMENT_BOOKED && loaded.slot.starts_at > now
}

fn view(state: &AppState, token: &str, loaded: &Loaded) -> AppointmentLinkView {
    let url = state.links().manage_url(token);
    AppointmentLinkView {
        appointment_id: loaded.appointment.id,
        status: loaded.appointment.status.clone(),
        starts_at: loaded.slot.starts_at,
        ends_at: loaded.slot.ends_at,
        practitioner_name: loaded.practitioner.name.clone(),
        specialty: loaded.practitioner.specialty.clone(),
        timezone: loaded.practitioner.timezone.clone(),
        sequence: crate::confirmations::sequence(&loaded.appointment),
        cancel_url: cancellable(loaded, Utc::now()).then(|| format!("{url}/cancel")),
        calendar_url: state.links().calendar_url(token),
    }
}

/// The answer: the view as JSON, or the page with `message` (a catalogue message id).
fn answer(asked: &Asked, message: &str, view: AppointmentLinkView) -> Response {
    match asked.format {
        Format::Json => ApiJson(view).into_response(),
        Format::Html => {
            let message = asked.locale.text(message);
            Html(page::render(&asked.locale, &message, false, Some(&view))).into_response()
        }
    }
}

/// What the page says about an appointment as it stands.
fn state_message(view: &AppointmentLinkView) -> &'static str {
    if view.status != APPOINTMENT_BOOKED {
        "appointment-already-cancelled"
    } else if view.cancel_url.is_some() {
        "appointment-confirm-cancel"
    } else {
        "appointment-started"
    }
}

/// The appointment a confirmation's link names: JSON, or a page whose form cancels it (a GET
/// never does).
#[utoipa::path(get, path = "/v1/appointment-links/{token}",
    operation_id = "show_appointment_link", tag = "appointments",
    params(("token" = String, Path, description = "The link's signed appointment token")),
    responses(
        (status = 200, description = "The appointment", content(
            (AppointmentLinkView = "application/json"),
            (String = "text/html"),
        )),
        on_page::Unauthorized, on_page::NotFound, on_page::Gone, ServerErrors,
    ))]
async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, Failure> {
    let asked = Asked::of(&headers);
    let claims = verify(&state, &token, &asked)?;
    let asked = asked.for_patient(&state.db, claims.sub).await;
    let txn = slotcast_kit::db::snapshot(&state.db)
        .await
        .map_err(|e| fail(&asked)(e.into()))?;
    let loaded = load(&txn, &claims, false).await.map_err(fail(&asked))?;
    txn.commit().await.map_err(|e| fail(&asked)(e.into()))?;
    let view = view(&state, &token, &loaded);
    Ok(answer(&asked, state_message(&view), view))
}

/// Cancels the appointment a confirmation's link names; its slot goes to the waiting list. On
/// an appointment already cancelled, the same answer and no change.
#[utoipa::path(post, path = "/v1/appointment-links/{token}/cancel",
    operation_id = "cancel_appointment_by_link", tag = "appointments",
    params(("token" = String, Path, description = "The link's signed appointment token")),
    responses(
        (status = 200, description = "The cancelled appointment", content(
            (AppointmentLinkView = "application/json"),
            (String = "text/html"),
        )),
        on_page::Unauthorized, on_page::NotFound, on_page::Conflict, on_page::Gone, ServerErrors,
    ))]
async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, Failure> {
    let asked = Asked::of(&headers);
    let claims = verify(&state, &token, &asked)?;
    let asked = asked.for_patient(&state.db, claims.sub).await;
    let to_api = |e: sea_orm::DbErr| fail(&asked)(e.into());
    let txn = state.db.begin().await.map_err(to_api)?;
    let loaded = load(&txn, &claims, true).await.map_err(fail(&asked))?;
    if loaded.appointment.status != APPOINTMENT_BOOKED {
        // Cancelled already (a second click, a reload): nothing to do.
        txn.commit().await.map_err(to_api)?;
        let view = view(&state, &token, &loaded);
        return Ok(answer(&asked, "appointment-already-cancelled", view));
    }
    if !cancellable(&loaded, Utc::now()) {
        return Err(fail(&asked)(
            Problem::conflict("the appointment has already started").into(),
        ));
    }
    let booking::Booked {
        appointment: a,
        slot: s,
    } = booking::cancel(
        &txn,
        state.links(),
        loaded.appointment,
        &loaded.slot,
        &state.policy,
    )
    .await
    .map_err(to_api)?;
    txn.commit().await.map_err(to_api)?;
    state.relay.wake();
    metrics::counter!("slotcast_scheduling_appointments_cancelled_by_link_total").increment(1);
    tracing::info!(appointment_id = %a.id, slot_id = %s.id, patient_id = %a.patient_id, "appointment cancelled by link");
    let loaded = Loaded {
        appointment: a,
        slot: s,
        practitioner: loaded.practitioner,
    };
    Ok(answer(
        &asked,
        "appointment-cancelled-now",
        view(&state, &token, &loaded),
    ))
}

/// The appointment's calendar entry as it stands (RFC 5545, `METHOD:PUBLISH`), in the patient's
/// language: the same `UID` and `SEQUENCE` as the entries the confirmation emails carry.
#[utoipa::path(get, path = "/v1/appointment-links/{token}/calendar.ics",
    operation_id = "appointment_calendar_entry", tag = "appointments",
    params(("token" = String, Path, description = "The link's signed appointment token")),
    responses(
        (status = 200, description = "The calendar entry", content(
            (String = "text/calendar"),
        )),
        on_page::Unauthorized, on_page::NotFound, on_page::Gone, ServerErrors,
    ))]
async fn calendar(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, Failure> {
    // Problems are JSON here: a calendar client asks for the file, not for a page.
    let asked = Asked {
        format: Format::Json,
        ..Asked::of(&headers)
    };
    let claims = verify(&state, &token, &asked)?;
    let patient = crate::entities::patient::Entity::find_by_id(claims.sub)
        .one(&state.db)
        .await
        .map_err(|e| fail(&asked)(e.into()))?;
    let locale =
        slotcast_i18n::Locale::negotiate(patient.as_ref().map(|p| p.locale.as_str()).unwrap_or(""));
    let txn = slotcast_kit::db::snapshot(&state.db)
        .await
        .map_err(|e| fail(&asked)(e.into()))?;
    let loaded = load(&txn, &claims, false).await.map_err(fail(&asked))?;
    txn.commit().await.map_err(|e| fail(&asked)(e.into()))?;
    let words = slotcast_calendar::Words::new(
        &locale,
        &loaded.practitioner.name,
        &loaded.practitioner.specialty,
        &state.links().manage_url(&token),
    );
    let text = slotcast_calendar::render(
        slotcast_calendar::Method::Publish,
        &slotcast_calendar::Entry {
            appointment_id: loaded.appointment.id,
            sequence: crate::confirmations::sequence(&loaded.appointment),
            starts_at: loaded.slot.starts_at,
            ends_at: loaded.slot.ends_at,
            summary: &words.summary,
            description: &words.description,
            url: Some(&words.url),
            organizer: None,
            attendee: None,
            cancelled: loaded.appointment.status != APPOINTMENT_BOOKED,
            stamp: Utc::now(),
        },
    );
    let mut response = text.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/calendar; charset=utf-8; method=PUBLISH"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"appointment.ics\""),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The HTML page: one template, escaped by handlebars, in the patient's language, the time in
/// the practice's zone.
pub mod page {
    use std::sync::LazyLock;

    use chrono_tz::Tz;
    use handlebars::Handlebars;
    use serde_json::json;
    use slotcast_i18n::{Locale, TranslateHelper};

    use super::AppointmentLinkView;

    static TEMPLATES: LazyLock<Handlebars<'static>> = LazyLock::new(|| {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_helper("t", Box::new(TranslateHelper));
        hb.register_template_string(
            "appointment",
            include_str!("../../templates/appointment.html.hbs"),
        )
        .expect("the appointment page template parses");
        hb
    });

    /// The page with `message` on top (styled as a failure when `failure`) and, when known, the
    /// appointment below it with its cancel form while it can be cancelled.
    pub fn render(
        locale: &Locale,
        message: &str,
        failure: bool,
        view: Option<&AppointmentLinkView>,
    ) -> String {
        let data = match view {
            None => json!({
                "locale": locale.tag(),
                "message": message,
                "failure": failure,
                "appointment": false,
            }),
            Some(v) => {
                let tz: Tz = v.timezone.parse().unwrap_or(Tz::UTC);
                let cancelled = v.status != crate::entities::appointment::BOOKED;
                json!({
                    "locale": locale.tag(),
                    "message": message,
                    "failure": failure,
                    "appointment": true,
                    "practitioner": v.practitioner_name,
                    "specialty": v.specialty,
                    "timezone": v.timezone,
                    "when": locale.time_range(v.starts_at, v.ends_at, tz),
                    "cancelled": cancelled,
                    "status": locale.text(if cancelled {
                        "appointment-status-cancelled"
                    } else {
                        "appointment-status-booked"
                    }),
                    "cancel_url": v.cancel_url,
                    "calendar_url": v.calendar_url,
                })
            }
        };
        TEMPLATES.render("appointment", &data).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the appointment page did not render");
            super::super::fallback_page(locale)
        })
    }

    #[cfg(test)]
    mod tests {
        use chrono::{TimeZone, Utc};

        use super::*;

        fn view(cancel: bool) -> AppointmentLinkView {
            let starts_at = Utc.with_ymd_and_hms(2026, 12, 5, 9, 0, 0).unwrap();
            AppointmentLinkView {
                appointment_id: uuid::Uuid::nil(),
                status: if cancel { "booked" } else { "cancelled" }.to_owned(),
                starts_at,
                ends_at: starts_at + chrono::Duration::minutes(30),
                practitioner_name: "Dr <b>Ada</b>".to_owned(),
                specialty: "Cardiology".to_owned(),
                timezone: "Europe/Paris".to_owned(),
                sequence: 0,
                cancel_url: cancel
                    .then(|| "https://b.example/v1/appointment-links/t/cancel".into()),
                calendar_url: "https://b.example/v1/appointment-links/t/calendar.ics?a=1&b=2"
                    .into(),
            }
        }

        #[test]
        fn every_message_a_page_shows_is_in_the_catalogues() {
            let ids = [401, 404, 409, 410, 500]
                .map(super::super::failure_message)
                .into_iter()
                .chain([
                    "appointment-already-cancelled",
                    "appointment-confirm-cancel",
                    "appointment-started",
                    "appointment-cancelled-now",
                ]);
            for id in ids {
                for language in slotcast_i18n::languages() {
                    let locale = Locale::negotiate(&language.to_string());
                    assert!(locale.message(id, &[]).is_ok(), "{language}: {id}");
                }
            }
        }

        #[test]
        fn the_page_renders_in_every_language_with_nothing_left_unfilled() {
            for language in slotcast_i18n::languages() {
                let locale = Locale::negotiate(&language.to_string());
                let booked = view(true);
                let cancelled = view(false);
                for page in [
                    render(&locale, "<i>m</i>", false, Some(&booked)),
                    render(&locale, "m", false, Some(&cancelled)),
                    render(&locale, "m", true, None),
                ] {
                    assert!(
                        page.contains(&format!("<html lang=\"{language}\">")),
                        "{page}"
                    );
                    assert!(!page.contains("{$"), "{language}: {page}");
                    assert!(!page.contains("{{"), "{language}: {page}");
                    assert!(!page.contains("<b>") && !page.contains("<i>"), "{page}");
                    assert!(!page.contains('\u{2068}'), "{language}: {page}");
                }
            }
        }

        #[test]
        fn only_a_booked_appointment_has_the_cancel_form() {
            let locale = Locale::negotiate("fr");
            let booked = render(&locale, "m", false, Some(&view(true)));
            assert!(
                booked.contains(
                    "<form method=\"post\" action=\"https://b.example/v1/appointment-links/t/cancel\">"
                ),
                "{booked}"
            );
            assert!(
                booked.contains("samedi 5 décembre 2026, 10:00–10:30"),
                "{booked}"
            );
            let cancelled = render(&locale, "m", false, Some(&view(false)));
            assert!(!cancelled.contains("<form"), "{cancelled}");
            let failed = render(&locale, "m", true, None);
            assert!(failed.contains("class=\"message failure\""), "{failed}");
        }
    }
}
