//! Booking links: `GET /v1/offers/{token}` shows what a link offers, `POST .../claim` books.
//!
//! The token is the only credential (no login): it is signed, names one notification, one
//! patient and the slots offered, and expires when the last of them starts. A link books once:
//! the first successful claim marks its `offers` row used, in the same transaction as the
//! booking. Reading a link never books anything, so a mail scanner that follows links is
//! harmless. A browser gets HTML (with a form per open slot, no script needed), anything else
//! JSON.
//!
//! A slot held for a wave (`waves` policy) shows as `available` to a patient of that hold and
//! as `held` to everyone else; a claim on it by anyone else is refused (409, `held_until`) and
//! recorded as `offer.lost` with reason `held`.

use std::collections::{HashMap, HashSet};

use axum::{
    extract::{FromRequest, Request, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use chrono::{DateTime, TimeZone, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use slotcast_kit::{
    ApiJson, Problem,
    openapi::{BadRequest, JsonBody, ServerErrors, page as on_page},
    problem::{ApiPath, ApiQuery},
};
use slotcast_links::{OfferClaims, OfferError};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::appointments::AppointmentView;
use crate::{
    AppState,
    availability::{AVAILABLE, BOOKED, HELD, WITHDRAWN, held_until, status_at},
    claims::{Refused, claim as book_from_offer},
    entities::appointment::BOOKED as APPOINTMENT_BOOKED,
    entities::{appointment, hold_patient, offer, practitioner, slot},
    error::ApiError,
};

pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show))
        .routes(routes!(claim))
}

/// A slot of an offer, as the link shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfferedSlotView {
    pub slot_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// `available`, `yours` (booked by this patient), `taken`, `held`, `withdrawn` or `started`.
    #[schema(value_type = String)]
    pub status: &'static str,
    /// Where to POST `{slot_id}` to book it, while it is available.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = OfferPractitioner)]
pub struct PractitionerView {
    pub id: Uuid,
    pub name: String,
    pub specialty: String,
    pub timezone: String,
    pub consultation_fee_cents: Option<i64>,
    pub currency: String,
}

/// What a link offers now.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfferView {
    pub notification_id: Uuid,
    pub expires_at: DateTime<Utc>,
    /// The link has booked an appointment and cannot book another.
    pub used: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appointment_id: Option<Uuid>,
    pub practitioner: PractitionerView,
    /// In the order they start.
    pub slots: Vec<OfferedSlotView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ShowQuery {
    /// The slot whose link was followed; the page puts it first.
    slot_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ClaimBody {
    slot_id: Uuid,
}

/// What a successful claim answers: the appointment, and for a move-up the slot it left.
#[derive(Debug, Serialize, ToSchema)]
struct Claimed {
    #[serde(flatten)]
    appointment: AppointmentView,
    notification_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    moved_from_slot_id: Option<Uuid>,
}

/// A browser asked (HTML), or a program (JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Html,
    Json,
}

impl Format {
    pub(super) fn of(headers: &HeaderMap) -> Self {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if accept.contains("text/html") {
            Format::Html
        } else {
            Format::Json
        }
    }
}

/// Whether the body is a form a page posted (`application/x-www-form-urlencoded`), not JSON.
pub(super) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// An error shown the way the caller asked: problem+json, or a page with the same status.
struct Failure {
    format: Format,
    error: Box<ApiError>,
    /// For a page: the offer to show below the message (its open slots).
    offer: Option<Box<(String, OfferView)>>,
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match (self.format, *self.error) {
            (Format::Html, ApiError::Problem(p)) => {
                let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST);
                let message = p.detail.clone().unwrap_or_else(|| p.title.clone());
                let page = page::render(&message, self.offer.as_deref(), None);
                (status, Html(page)).into_response()
            }
            (_, error) => error.into_response(),
        }
    }
}

fn fail(format: Format, error: impl Into<ApiError>) -> Failure {
    Failure {
        format,
        error: Box::new(error.into()),
        offer: None,
    }
}

fn verify(state: &AppState, token: &str, format: Format) -> Result<OfferClaims, Failure> {
    state.offers.verify(token).map_err(|e| {
        let problem = match e {
            OfferError::Expired => Problem::new(StatusCode::GONE, "this offer has expired"),
            OfferError::Invalid => Problem::unauthorized("this booking link is not valid"),
        };
        fail(format, problem)
    })
}

/// What a booking link offers now, and whether each slot is still available: JSON, or an HTML
/// page with a form per open slot for a browser (`Accept: text/html`). The link's signed
/// token is the credential; reading never books.
#[utoipa::path(get, path = "/v1/offers/{token}",
    operation_id = "show_offer", tag = "offers",
    params(("token" = String, Path, description = "The link's signed offer token"), ShowQuery),
    responses(
        (status = 200, description = "The offer", content(
            (OfferView = "application/json"),
            (String = "text/html"),
        )),
        BadRequest, on_page::Unauthorized, on_page::NotFound, on_page::Gone, ServerErrors,
    ))]
async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
    ApiQuery(query): ApiQuery<ShowQuery>,
) -> Result<Response, Failure> {
    let format = Format::of(&headers);
    let claims = verify(&state, &token, format)?;
    let view = load_view(&state.db, &state.public_base_url, &token, &claims)
        .await
        .map_err(|e| fail(format, e))?;
    Ok(match format {
        Format::Json => ApiJson(view).into_response(),
        Format::Html => {
            let mut view = view;
            if let Some(first) = query.slot_id {
                // Stable: the followed slot first, the rest in order.
                view.slots.sort_by_key(|s| s.slot_id != first);
            }
            let title = if view.used {
                "You have booked with this link."
            } else if view.slots.iter().any(|s| s.status == "available") {
                "Choose a time to book it."
            } else {
                "These times are no longer available."
            };
            Html(page::render(title, Some(&(token, view)), None)).into_response()
        }
    })
}

/// Books one of the link's slots (or moves the held appointment up to it): `{slot_id}` as
/// JSON, or as the page's form. A link books once; 409 when the slot was taken (with
/// `other_slots` still open), 410 when the link expired, 401 when it was tampered with.
#[utoipa::path(post, path = "/v1/offers/{token}/claim",
    operation_id = "claim_offer", tag = "offers",
    params(("token" = String, Path, description = "The link's signed offer token")),
    request_body(content(
        (ClaimBody = "application/json"),
        (ClaimBody = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 201, description = "Booked", content(
            (Claimed = "application/json"),
            (String = "text/html"),
        )),
        JsonBody, on_page::Unauthorized, on_page::NotFound, on_page::Conflict, on_page::Gone,
        on_page::Unprocessable, ServerErrors,
    ))]
async fn claim(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    request: Request,
) -> Result<Response, Failure> {
    let format = Format::of(request.headers());
    let is_form = is_form(request.headers());
    let claims = verify(&state, &token, format)?;
    let body = if is_form {
        axum::Form::<ClaimBody>::from_request(request, &())
            .await
            .map(|f| f.0)
            .map_err(|e| fail(format, Problem::unprocessable(e.body_text())))?
    } else {
        ApiJson::<ClaimBody>::from_request(request, &())
            .await
            .map(|j| j.0)
            .map_err(|p| fail(format, p))?
    };
    if !claims.slots.contains(&body.slot_id) {
        return Err(fail(
            format,
            Problem::unprocessable("this link does not offer that slot"),
        ));
    }
    match book_from_offer(&state.db, &state.policy, &claims, body.slot_id)
        .await
        .map_err(|e| fail(format, e))?
        .map(|claim| Claimed {
            appointment: claim.booked.into(),
            notification_id: claims.nid,
            moved_from_slot_id: claim.moved_from_slot_id,
        })
        .map_err(Refused::problem)
    {
        Ok(claimed) => {
            state.relay.wake();
            metrics::counter!("slotcast_scheduling_offers_claimed_total").increment(1);
            tracing::info!(notification_id = %claims.nid, slot_id = %body.slot_id, patient_id = %claims.sub, appointment_id = %claimed.appointment.id, moved = claimed.moved_from_slot_id.is_some(), "offer claimed");
            Ok(match format {
                Format::Json => (StatusCode::CREATED, ApiJson(claimed)).into_response(),
                Format::Html => {
                    let view = load_view(&state.db, &state.public_base_url, &token, &claims)
                        .await
                        .map_err(|e| fail(format, e))?;
                    let message = if claimed.moved_from_slot_id.is_some() {
                        "Your appointment has moved to this time."
                    } else {
                        "Booked. See you then."
                    };
                    let booked = claimed.appointment.slot_id;
                    (
                        StatusCode::CREATED,
                        Html(page::render(message, Some(&(token, view)), Some(booked))),
                    )
                        .into_response()
                }
            })
        }
        Err(problem) => {
            state.relay.wake();
            let view = load_view(&state.db, &state.public_base_url, &token, &claims)
                .await
                .map_err(|e| fail(format, e))?;
            let still_open: Vec<&OfferedSlotView> = view
                .slots
                .iter()
                .filter(|s| s.status == "available")
                .collect();
            // Lost the race: what else the offer still has. (A used link has nothing to offer.)
            let problem = if problem.status == StatusCode::CONFLICT.as_u16() {
                problem.with("other_slots", &still_open)
            } else {
                problem
            };
            tracing::info!(notification_id = %claims.nid, slot_id = %body.slot_id, patient_id = %claims.sub, status = problem.status, "offer claim refused");
            Err(Failure {
                format,
                error: Box::new(problem.into()),
                offer: Some(Box::new((token, view))),
            })
        }
    }
}

/// The offer as it stands: its slots' current state, from this patient's point of view.
async fn load_view(
    db: &DatabaseConnection,
    base_url: &str,
    token: &str,
    claims: &OfferClaims,
) -> Result<OfferView, ApiError> {
    // One snapshot: a booking, cancellation or hold change committed between the reads below
    // would otherwise show a slot free in one and taken in another.
    let txn = slotcast_kit::db::snapshot(db).await?;
    let db = &txn;
    let slots = slot::Entity::find()
        .filter(slot::Column::Id.is_in(claims.slots.clone()))
        .all(db)
        .await?;
    let Some(practitioner_id) = slots.first().map(|s| s.practitioner_id) else {
        return Err(Problem::not_found("the slots of this offer no longer exist").into());
    };
    let p = practitioner::Entity::find_by_id(practitioner_id)
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("practitioner {practitioner_id} is missing"))?;
    let mine: HashSet<Uuid> = appointment::Entity::find()
        .filter(appointment::Column::PatientId.eq(claims.sub))
        .filter(appointment::Column::SlotId.is_in(claims.slots.clone()))
        .filter(appointment::Column::Status.eq(APPOINTMENT_BOOKED))
        .all(db)
        .await?
        .into_iter()
        .map(|a| a.slot_id)
        .collect();
    let used = offer::Entity::find_by_id(claims.nid)
        .one(db)
        .await?
        .filter(|o| o.used_at.is_some());
    let now = Utc::now();
    // The holds this patient belongs to, among those on the offered slots.
    let hold_ids: Vec<Uuid> = slots
        .iter()
        .filter(|s| held_until(s, now).is_some())
        .filter_map(|s| s.hold_id)
        .collect();
    let holding: HashSet<Uuid> = if hold_ids.is_empty() {
        HashSet::new()
    } else {
        hold_patient::Entity::find()
            .filter(hold_patient::Column::PatientId.eq(claims.sub))
            .filter(hold_patient::Column::HoldId.is_in(hold_ids))
            .all(db)
            .await?
            .into_iter()
            .map(|h| h.hold_id)
            .collect()
    };
    txn.commit().await?;
    let claim_url = format!("{base_url}/v1/offers/{token}/claim");
    let mut by_id: HashMap<Uuid, slot::Model> = slots.into_iter().map(|s| (s.id, s)).collect();
    let mut shown: Vec<OfferedSlotView> = claims
        .slots
        .iter()
        .filter_map(|id| by_id.remove(id))
        .map(|s| {
            let status = if mine.contains(&s.id) {
                "yours"
            } else if s.starts_at <= now {
                "started"
            } else {
                match status_at(&s, now) {
                    AVAILABLE => "available",
                    HELD if s.hold_id.is_some_and(|h| holding.contains(&h)) => "available",
                    HELD => "held",
                    BOOKED => "taken",
                    WITHDRAWN => "withdrawn",
                    _ => "taken",
                }
            };
            let open = status == "available" && used.is_none();
            OfferedSlotView {
                slot_id: s.id,
                starts_at: s.starts_at,
                ends_at: s.ends_at,
                status,
                claim_url: open.then(|| claim_url.clone()),
            }
        })
        .collect();
    shown.sort_by_key(|s| (s.starts_at, s.slot_id));
    Ok(OfferView {
        notification_id: claims.nid,
        expires_at: Utc.timestamp_opt(claims.exp, 0).single().unwrap_or(now),
        used: used.is_some(),
        appointment_id: used.and_then(|o| o.appointment_id),
        practitioner: PractitionerView {
            id: p.id,
            name: p.name,
            specialty: p.specialty,
            timezone: p.timezone,
            consultation_fee_cents: p.consultation_fee_cents,
            currency: p.currency,
        },
        slots: shown,
    })
}

/// The HTML page: one template, escaped by handlebars, times in the practice's zone.
mod page {
    use std::sync::LazyLock;

    use chrono_tz::Tz;
    use handlebars::Handlebars;
    use serde_json::json;
    use uuid::Uuid;

    use super::OfferView;

    static TEMPLATES: LazyLock<Handlebars<'static>> = LazyLock::new(|| {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_template_string("offer", include_str!("../../templates/offer.html.hbs"))
            .expect("the offer page template parses");
        hb
    });

    /// The page with `message` on top and, when known, the offer below it. `booked` marks the
    /// slot just booked.
    pub fn render(
        message: &str,
        offer: Option<&(String, OfferView)>,
        booked: Option<Uuid>,
    ) -> String {
        let data = match offer {
            None => json!({ "message": message, "offer": false }),
            Some((_, view)) => {
                let tz: Tz = view.practitioner.timezone.parse().unwrap_or(Tz::UTC);
                let fee = view
                    .practitioner
                    .consultation_fee_cents
                    .map(|c| format!("{} {}.{:02}", view.practitioner.currency, c / 100, c % 100));
                let slots: Vec<_> = view
                    .slots
                    .iter()
                    .map(|s| {
                        let start = s.starts_at.with_timezone(&tz);
                        let end = s.ends_at.with_timezone(&tz);
                        json!({
                            "slot_id": s.slot_id,
                            "when": format!("{}–{}", start.format("%A %-d %B %Y, %H:%M"), end.format("%H:%M")),
                            "status": s.status,
                            "label": label(s.status, Some(s.slot_id) == booked),
                            "claim_url": s.claim_url,
                        })
                    })
                    .collect();
                json!({
                    "message": message,
                    "offer": true,
                    "practitioner": view.practitioner.name,
                    "specialty": view.practitioner.specialty,
                    "timezone": view.practitioner.timezone,
                    "fee": fee,
                    "slots": slots,
                })
            }
        };
        TEMPLATES.render("offer", &data).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the offer page did not render");
            "<!doctype html><title>slotcast</title><p>Something went wrong.</p>".to_owned()
        })
    }

    fn label(status: &str, just_booked: bool) -> &'static str {
        match status {
            _ if just_booked => "Booked for you",
            "available" => "Available",
            "yours" => "Your appointment",
            "held" => "Reserved for now",
            "withdrawn" => "No longer offered",
            "started" => "Already started",
            _ => "Taken",
        }
    }
}
