//! A patient's notification preferences: availability emails and in-app notifications, each on
//! or off (both on by default), and text messages, off until the patient consents.
//!
//! Turning text messages on is the patient's consent: it needs a phone number on file (422
//! without), and records when and through what (`via`). Turning them off keeps that record.
//!
//! - `GET`/`PUT /v1/patients/{id}/preferences`: that patient or staff (`via: "api"`).
//! - `GET`/`POST /v1/preferences/{token}`: the preferences link of an email, no login; the
//!   signed preferences token names the patient (`via: "link"`). A browser gets a page with a
//!   small form (no script), anything else JSON; the POST takes the form or JSON.
//! - `POST /v1/unsubscribe/{token}`: RFC 8058 one-click unsubscribe. Mail clients post
//!   `List-Unsubscribe=One-Click`; whatever the body (or none), it turns availability email off
//!   (`via: "one_click"`), and again changes nothing. `GET` shows a page whose button posts:
//!   a GET never changes anything, since mail scanners follow links.
//!
//! - `PUT /v1/phone-preferences`: staff (the sms-notifier, on a STOP or START texted from a
//!   number) turns text messages off or on for every patient with that number; the consent
//!   records `sms`, the event `api`.
//!
//! `patient.preferences_changed` is published only when something changed. An expired token is
//! 410, any other bad token 401. Nothing here logs more than ids.

use axum::{
    Json,
    extract::{FromRequest, Request, State},
    http::HeaderMap,
    response::{Html, IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use serde::{Deserialize, Serialize};
use slotcast_events::PatientPreferencesChanged;
use slotcast_i18n::Locale;
use slotcast_kit::{
    ApiJson, Problem,
    auth::Caller,
    openapi::{
        BadRequest, Forbidden, JsonBody, NotFound, ServerErrors, Unauthorized, page as on_page,
    },
    problem::ApiPath,
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    link_pages::{self, Failure, FailurePage},
    offers::{Asked, Format},
};
use crate::{
    AppState,
    entities::patient,
    error::{ApiError, ApiResult},
    store::{emit, for_update},
};

pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(read_own, update_own))
        .routes(routes!(show, change))
        .routes(routes!(confirm_unsubscribe, unsubscribe))
        .routes(routes!(change_by_phone))
}

/// Text messages on or off for every patient with a number.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PhonePreferences {
    /// In international form; stored and matched as E.164.
    phone: String,
    sms: bool,
}

/// What changed for a number.
#[derive(Debug, Serialize, ToSchema)]
struct PhonePreferencesView {
    /// E.164.
    phone: String,
    sms: bool,
    /// The patients with that number (whether or not their setting changed).
    patient_ids: Vec<Uuid>,
    /// How many of them changed.
    changed: usize,
}

/// Turns text messages off (STOP) or on (START) for every patient with `phone`, as the owner of
/// the number asked by text (staff: the sms-notifier). `via` is `sms`; START is consent.
#[utoipa::path(put, path = "/v1/phone-preferences",
    operation_id = "update_phone_preferences", tag = "preferences",
    security(("bearer" = [])),
    request_body = PhonePreferences,
    responses(
        (status = 200, description = "The number's patients", body = PhonePreferencesView),
        Unauthorized, Forbidden, JsonBody, ServerErrors,
    ))]
async fn change_by_phone(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PhonePreferences>,
) -> ApiResult<Json<PhonePreferencesView>> {
    caller.require_staff()?;
    let phone = crate::domain::phone(&body.phone)?;
    let patients = patient::Entity::find()
        .filter(patient::Column::Phone.eq(phone.as_str()))
        .all(&state.db)
        .await?;
    let mut changed = 0;
    for p in &patients {
        let change = PreferencesChange {
            sms: Some(body.sms),
            ..PreferencesChange::default()
        };
        if apply(&state, p.id, change, Via::Sms).await?.sms != p.notify_sms {
            changed += 1;
        }
    }
    tracing::info!(
        patients = patients.len(),
        changed,
        sms = body.sms,
        "text messages changed by number"
    );
    Ok(Json(PhonePreferencesView {
        phone,
        sms: body.sms,
        patient_ids: patients.iter().map(|p| p.id).collect(),
        changed,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreferencesView {
    pub patient_id: Uuid,
    pub email: bool,
    pub inapp: bool,
    /// Text messages about available appointments.
    pub sms: bool,
    /// Whether the patient has a phone number, without which text messages stay off.
    pub has_phone: bool,
    /// The patient's latest consent to text messages, if they ever gave one.
    pub sms_consent: Option<SmsConsent>,
    pub updated_at: DateTime<Utc>,
}

/// When and how a patient consented to text messages.
#[derive(Debug, Serialize, ToSchema)]
pub struct SmsConsent {
    pub at: DateTime<Utc>,
    /// `api` (the patient or staff through the API), `link` (the preferences page) or `sms`
    /// (START texted from the patient's number).
    pub via: String,
}

impl From<&patient::Model> for PreferencesView {
    fn from(p: &patient::Model) -> Self {
        Self {
            patient_id: p.id,
            email: p.notify_email,
            inapp: p.notify_inapp,
            sms: p.notify_sms,
            has_phone: p.phone.is_some(),
            sms_consent: p.sms_consent_at.map(|at| SmsConsent {
                at,
                via: p.sms_consent_via.clone().unwrap_or_default(),
            }),
            updated_at: p.preferences_updated_at.unwrap_or(p.created_at),
        }
    }
}

/// What to change; an absent field stays as it is. `sms: true` is the patient's consent.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PreferencesChange {
    email: Option<bool>,
    inapp: Option<bool>,
    sms: Option<bool>,
}

/// The same from an HTML form, where values are text (`true`/`false`, `on`/`off`).
#[derive(Debug, Deserialize, ToSchema)]
struct PreferencesForm {
    email: Option<String>,
    inapp: Option<String>,
    sms: Option<String>,
}

fn form_flag(field: &str, value: Option<String>) -> Result<Option<bool>, Problem> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some("true" | "on" | "1") => Ok(Some(true)),
        Some("false" | "off" | "0") => Ok(Some(false)),
        Some(_) => Err(Problem::unprocessable(format!("{field} is true or false"))),
    }
}

/// Through what a patient's preferences change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// The patient or staff, through the API.
    Api,
    /// The preferences page of a link.
    Link,
    /// The RFC 8058 one-click unsubscribe.
    OneClick,
    /// STOP or START texted from the patient's number (relayed by the sms-notifier).
    Sms,
}

impl Via {
    /// As the consent records it.
    fn as_str(self) -> &'static str {
        match self {
            Via::Api => "api",
            Via::Link => "link",
            Via::OneClick => "one_click",
            Via::Sms => "sms",
        }
    }

    /// As `patient.preferences_changed` says it: a text relayed through the API is `api`, since
    /// a new value of `via` would be a new version of the event.
    fn in_event(self) -> &'static str {
        match self {
            Via::Sms => Via::Api.as_str(),
            other => other.as_str(),
        }
    }
}

/// Applies `change` to the patient's preferences in one transaction; publishes
/// `patient.preferences_changed` with `via` when something changed.
async fn apply(
    state: &AppState,
    patient_id: Uuid,
    change: PreferencesChange,
    via: Via,
) -> ApiResult<PreferencesView> {
    let txn = state.db.begin().await?;
    let p = for_update(patient::Entity::find_by_id(patient_id), &txn)
        .one(&txn)
        .await?
        .ok_or_else(|| Problem::not_found("no such patient"))?;
    let email = change.email.unwrap_or(p.notify_email);
    let inapp = change.inapp.unwrap_or(p.notify_inapp);
    let sms = change.sms.unwrap_or(p.notify_sms);
    if sms && !p.notify_sms && p.phone.is_none() {
        return Err(Problem::unprocessable(
            "text messages need a phone number, and the patient has none",
        )
        .into());
    }
    if email == p.notify_email && inapp == p.notify_inapp && sms == p.notify_sms {
        return Ok(PreferencesView::from(&p));
    }
    let consented = sms && !p.notify_sms;
    let now = Utc::now();
    let mut changed: patient::ActiveModel = p.into();
    changed.notify_email = Set(email);
    changed.notify_inapp = Set(inapp);
    changed.notify_sms = Set(sms);
    if consented {
        changed.sms_consent_at = Set(Some(now));
        changed.sms_consent_via = Set(Some(via.as_str().to_owned()));
    }
    changed.preferences_updated_at = Set(Some(now));
    let p = changed.update(&txn).await?;
    emit(
        &txn,
        PatientPreferencesChanged {
            patient_id,
            email,
            inapp,
            sms,
            via: via.in_event().to_owned(),
        },
    )
    .await?;
    txn.commit().await?;
    state.relay.wake();
    tracing::info!(%patient_id, email, inapp, sms, via = via.as_str(), "notification preferences changed");
    Ok(PreferencesView::from(&p))
}

async fn load(state: &AppState, patient_id: Uuid) -> ApiResult<patient::Model> {
    Ok(patient::Entity::find_by_id(patient_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| Problem::not_found("no such patient"))?)
}

fn may_act(caller: &Caller, patient_id: Uuid) -> Result<(), Problem> {
    if caller.may_act_for_patient(patient_id) {
        Ok(())
    } else {
        Err(Problem::forbidden("not your preferences"))
    }
}

/// A patient's notification preferences (that patient, staff).
#[utoipa::path(get, path = "/v1/patients/{id}/preferences",
    operation_id = "read_preferences", tag = "preferences",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The patient's id")),
    responses(
        (status = 200, description = "The preferences", body = PreferencesView),
        BadRequest, Unauthorized, Forbidden, NotFound, ServerErrors,
    ))]
async fn read_own(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<PreferencesView>> {
    may_act(&caller, id)?;
    Ok(Json(PreferencesView::from(&load(&state, id).await?)))
}

/// Changes a patient's notification preferences; an absent field stays as it is (that patient,
/// staff).
#[utoipa::path(put, path = "/v1/patients/{id}/preferences",
    operation_id = "update_preferences", tag = "preferences",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The patient's id")),
    request_body = PreferencesChange,
    responses(
        (status = 200, description = "The preferences", body = PreferencesView),
        Unauthorized, Forbidden, NotFound, JsonBody, ServerErrors,
    ))]
async fn update_own(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PreferencesChange>,
) -> ApiResult<Json<PreferencesView>> {
    may_act(&caller, id)?;
    Ok(Json(apply(&state, id, body, Via::Api).await?))
}

/// What the page says for a failure of this status, a catalogue message id.
fn failure_message(status: u16) -> &'static str {
    match status {
        401 => "prefs-error-invalid",
        404 => "prefs-error-not-found",
        410 => "prefs-error-expired",
        422 => "prefs-error-invalid-form",
        _ => "something-went-wrong",
    }
}

/// The page of a failure.
static FAILURE_PAGE: FailurePage = FailurePage {
    message: failure_message,
    render: failure_page,
};

fn failure_page(locale: &Locale, message: &str) -> String {
    page::render(locale, message, None, None, None)
}

fn fail(asked: &Asked) -> impl Fn(ApiError) -> Failure + use<> {
    link_pages::fail(asked, &FAILURE_PAGE)
}

/// What a link names, or why its token was refused.
fn verify(state: &AppState, token: &str, asked: &Asked) -> Result<Uuid, Failure> {
    state
        .offers
        .verify_preferences(token)
        .map_err(|e| fail(asked)(link_pages::refused(e).into()))
}

/// The answer to a link: the preferences as JSON, or the page with `message` (a catalogue
/// message id) and its form.
fn answer(
    state: &AppState,
    asked: &Asked,
    token: &str,
    message: &str,
    view: PreferencesView,
) -> Response {
    match asked.format {
        Format::Json => ApiJson(view).into_response(),
        Format::Html => {
            let url = format!("{}/v1/preferences/{token}", state.public_base_url);
            let message = asked.locale.text(message);
            let page = page::render(&asked.locale, &message, Some(&view), Some(&url), None);
            Html(page).into_response()
        }
    }
}

/// The preferences a link of an email names: JSON, or a page with a form for a browser.
#[utoipa::path(get, path = "/v1/preferences/{token}",
    operation_id = "show_preferences_link", tag = "preferences",
    params(("token" = String, Path, description = "The link's signed preferences token")),
    responses(
        (status = 200, description = "The preferences", content(
            (PreferencesView = "application/json"),
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
    let patient_id = verify(&state, &token, &asked)?;
    let asked = asked.for_patient(&state.db, patient_id).await;
    let p = load(&state, patient_id).await.map_err(fail(&asked))?;
    Ok(answer(
        &state,
        &asked,
        &token,
        "prefs-choose",
        PreferencesView::from(&p),
    ))
}

/// Changes the preferences a link names, with the page's form or JSON `{email?, inapp?, sms?}`.
#[utoipa::path(post, path = "/v1/preferences/{token}",
    operation_id = "change_preferences_by_link", tag = "preferences",
    params(("token" = String, Path, description = "The link's signed preferences token")),
    request_body(content(
        (PreferencesChange = "application/json"),
        (PreferencesForm = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The preferences", content(
            (PreferencesView = "application/json"),
            (String = "text/html"),
        )),
        JsonBody, on_page::Unauthorized, on_page::NotFound, on_page::Gone, on_page::Unprocessable,
        ServerErrors,
    ))]
async fn change(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    request: Request,
) -> Result<Response, Failure> {
    let asked = Asked::of(request.headers());
    let patient_id = verify(&state, &token, &asked)?;
    let asked = asked.for_patient(&state.db, patient_id).await;
    let is_form = super::offers::is_form(request.headers());
    let change = if is_form {
        let form = axum::Form::<PreferencesForm>::from_request(request, &())
            .await
            .map(|f| f.0)
            .map_err(|e| fail(&asked)(Problem::unprocessable(e.body_text()).into()))?;
        PreferencesChange {
            email: form_flag("email", form.email).map_err(|p| fail(&asked)(p.into()))?,
            inapp: form_flag("inapp", form.inapp).map_err(|p| fail(&asked)(p.into()))?,
            sms: form_flag("sms", form.sms).map_err(|p| fail(&asked)(p.into()))?,
        }
    } else {
        ApiJson::<PreferencesChange>::from_request(request, &())
            .await
            .map(|j| j.0)
            .map_err(|p| fail(&asked)(p.into()))?
    };
    let view = apply(&state, patient_id, change, Via::Link)
        .await
        .map_err(fail(&asked))?;
    Ok(answer(&state, &asked, &token, "prefs-saved", view))
}

/// The one-click unsubscribe link: shows the preferences (a page with a button that posts);
/// changes nothing, since mail scanners follow links.
#[utoipa::path(get, path = "/v1/unsubscribe/{token}",
    operation_id = "show_unsubscribe_link", tag = "preferences",
    params(("token" = String, Path, description = "The link's signed preferences token")),
    responses(
        (status = 200, description = "The preferences", content(
            (PreferencesView = "application/json"),
            (String = "text/html"),
        )),
        on_page::Unauthorized, on_page::NotFound, on_page::Gone, ServerErrors,
    ))]
async fn confirm_unsubscribe(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, Failure> {
    let asked = Asked::of(&headers);
    let patient_id = verify(&state, &token, &asked)?;
    let asked = asked.for_patient(&state.db, patient_id).await;
    let p = load(&state, patient_id).await.map_err(fail(&asked))?;
    let view = PreferencesView::from(&p);
    Ok(match asked.format {
        Format::Json => ApiJson(view).into_response(),
        Format::Html => {
            let url = format!("{}/v1/unsubscribe/{token}", state.public_base_url);
            let message = asked.locale.text(if view.email {
                "prefs-confirm-unsubscribe"
            } else {
                "prefs-already-unsubscribed"
            });
            let button = view.email.then_some(url.as_str());
            Html(page::render(
                &asked.locale,
                &message,
                Some(&view),
                None,
                button,
            ))
            .into_response()
        }
    })
}

/// RFC 8058 one-click unsubscribe: turns availability email off. The body is not read: a
/// `List-Unsubscribe=One-Click` form, an empty body or anything else all unsubscribe.
#[utoipa::path(post, path = "/v1/unsubscribe/{token}",
    operation_id = "unsubscribe", tag = "preferences",
    params(("token" = String, Path, description = "The link's signed preferences token")),
    responses(
        (status = 200, description = "The preferences", content(
            (PreferencesView = "application/json"),
            (String = "text/html"),
        )),
        on_page::Unauthorized, on_page::NotFound, on_page::Gone, ServerErrors,
    ))]
async fn unsubscribe(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, Failure> {
    let asked = Asked::of(&headers);
    let patient_id = verify(&state, &token, &asked)?;
    let asked = asked.for_patient(&state.db, patient_id).await;
    let off = PreferencesChange {
        email: Some(false),
        ..PreferencesChange::default()
    };
    let view = apply(&state, patient_id, off, Via::OneClick)
        .await
        .map_err(fail(&asked))?;
    Ok(match asked.format {
        Format::Json => ApiJson(view).into_response(),
        Format::Html => {
            let message = asked.locale.text("prefs-unsubscribed");
            Html(page::render(
                &asked.locale,
                &message,
                Some(&view),
                None,
                None,
            ))
            .into_response()
        }
    })
}

/// The HTML page: one template, escaped by handlebars, in the patient's language.
pub mod page {
    use std::sync::LazyLock;

    use handlebars::Handlebars;
    use serde_json::json;
    use slotcast_i18n::{Locale, TranslateHelper};

    use super::PreferencesView;

    static TEMPLATES: LazyLock<Handlebars<'static>> = LazyLock::new(|| {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_helper("t", Box::new(TranslateHelper));
        hb.register_template_string(
            "preferences",
            include_str!("../../templates/preferences.html.hbs"),
        )
        .expect("the preferences page template parses");
        hb
    });

    /// The page with `message`; with `preferences_url`, the form posting there; with
    /// `unsubscribe_url`, the one button that unsubscribes.
    pub fn render(
        locale: &Locale,
        message: &str,
        view: Option<&PreferencesView>,
        preferences_url: Option<&str>,
        unsubscribe_url: Option<&str>,
    ) -> String {
        let data = json!({
            "locale": locale.tag(),
            "message": message,
            "email": view.is_some_and(|v| v.email),
            "inapp": view.is_some_and(|v| v.inapp),
            "sms": view.is_some_and(|v| v.sms),
            "has_phone": view.is_some_and(|v| v.has_phone),
            "preferences_url": preferences_url,
            "unsubscribe_url": unsubscribe_url,
        });
        TEMPLATES.render("preferences", &data).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the preferences page did not render");
            super::super::fallback_page(locale)
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn every_message_a_failed_page_shows_is_in_the_catalogues() {
            for status in [401, 404, 410, 422, 500] {
                let id = super::super::failure_message(status);
                for language in slotcast_i18n::languages() {
                    let locale = Locale::negotiate(&language.to_string());
                    assert!(locale.message(id, &[]).is_ok(), "{language}: {id}");
                }
            }
        }

        #[test]
        fn the_page_renders_in_every_language_with_nothing_left_unfilled() {
            let view = PreferencesView {
                patient_id: uuid::Uuid::nil(),
                email: true,
                inapp: false,
                sms: false,
                has_phone: true,
                sms_consent: None,
                updated_at: chrono::Utc::now(),
            };
            for language in slotcast_i18n::languages() {
                let locale = Locale::negotiate(&language.to_string());
                for page in [
                    render(&locale, "<i>m</i>", Some(&view), Some("/p?a=1&b=2"), None),
                    render(&locale, "m", Some(&view), None, Some("/u")),
                    render(&locale, "m", None, None, None),
                ] {
                    assert!(
                        page.contains(&format!("<html lang=\"{language}\">")),
                        "{page}"
                    );
                    assert!(!page.contains("{$"), "{language}: {page}");
                    assert!(!page.contains("{{"), "{language}: {page}");
                    assert!(!page.contains("<i>"), "{page}");
                    assert!(!page.contains('\u{2068}'), "{language}: {page}");
                }
            }
        }
    }
}
