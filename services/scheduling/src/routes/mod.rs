//! The `/v1` API, one module per resource: each parses its requests, calls the use-cases
//! (`crate::booking`, `crate::waiting`, `crate::holds`) and shapes the answers.
//!
//! - `practitioners`, `patients`, `slots`, `appointments`, `waitlist`: the resources.
//! - `offers`: booking links (no login; the signed token is the credential).
//! - `appointment_links`: the links of a confirmation: the appointment's page, which cancels it
//!   on a POST, and its calendar entry (no login; the signed token is the credential).
//! - `link_pages`: what the pages of links share: errors as a page for a browser.
//! - `holds`: the exclusive holds matching places on slots under the `waves` policy.
//! - `preferences`: a patient's notification preferences, through the API and through the
//!   signed preferences and one-click unsubscribe links of an email.

mod appointment_links;
mod appointments;
mod holds;
mod link_pages;
mod offers;
mod patients;
mod practitioners;
mod preferences;
mod slots;
mod waitlist;

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

/// The pages a link opens, with no login: the token in the path is the credential, so they
/// are rate-limited per client address (`slotcast_kit::limits`).
pub const LINK_ROUTES: &[&str] = &[
    "/v1/offers/{token}",
    "/v1/offers/{token}/claim",
    "/v1/preferences/{token}",
    "/v1/unsubscribe/{token}",
    "/v1/appointment-links/{token}",
    "/v1/appointment-links/{token}/cancel",
    "/v1/appointment-links/{token}/calendar.ics",
];

pub use holds::MAX_HOLD_BODY_BYTES;

/// The patient-facing pages as the routes render them, for previews (`make previews`).
pub mod patient_pages {
    pub use super::appointment_links::AppointmentLinkView;
    pub use super::appointment_links::page::render as appointment;
    pub use super::offers::page::render as offer;
    pub use super::offers::{OfferView, OfferedSlotView, PractitionerView};
    pub use super::preferences::PreferencesView;
    pub use super::preferences::page::render as preferences;
}

/// Every `/v1` route but the holds, each registered with its documented operation.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(practitioners::api())
        .merge(patients::api())
        .merge(slots::api())
        .merge(appointments::api())
        .merge(appointment_links::api())
        .merge(waitlist::api())
        .merge(offers::api())
        .merge(preferences::api())
        .layer(axum::middleware::map_response(crate::pages::harden))
}

/// The hold routes, layered on their own (a larger body limit, [`MAX_HOLD_BODY_BYTES`]): merge
/// them after the common layers are applied to [`api`].
pub fn holds_api() -> OpenApiRouter<AppState> {
    holds::api()
}

/// The page shown when a page's template fails, which the template tests rule out.
pub(crate) fn fallback_page(locale: &slotcast_i18n::Locale) -> String {
    let message = handlebars::html_escape(&locale.text("something-went-wrong"));
    format!(
        "<!doctype html><html lang=\"{}\"><title>slotcast</title><p>{message}</p></html>",
        locale.tag()
    )
}
