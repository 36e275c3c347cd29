//! What the pages of links share: an error answered as the caller asked, problem+json for a
//! program and, for a browser, the link's page with a message and the same status.

use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use slotcast_i18n::Locale;
use slotcast_kit::Problem;
use slotcast_links::OfferError;

use super::offers::{Asked, Format};
use crate::error::ApiError;

/// The page a family of links shows for a failure.
pub(super) struct FailurePage {
    /// The message for a status, a catalogue message id.
    pub(super) message: fn(u16) -> &'static str,
    /// The page around the message.
    pub(super) render: fn(&Locale, &str) -> String,
}

/// An error shown the way the caller asked.
pub(super) struct Failure {
    asked: Box<Asked>,
    error: ApiError,
    page: &'static FailurePage,
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match (self.asked.format, self.error) {
            (Format::Html, ApiError::Problem(p)) => {
                let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST);
                let message = self.asked.locale.text((self.page.message)(p.status));
                let page = (self.page.render)(&self.asked.locale, &message);
                (status, Html(page)).into_response()
            }
            (_, error) => error.into_response(),
        }
    }
}

/// Turns errors into [`Failure`]s answered as `asked` says, with `page` for a browser.
pub(super) fn fail(
    asked: &Asked,
    page: &'static FailurePage,
) -> impl Fn(ApiError) -> Failure + use<> {
    let asked = Box::new(asked.clone());
    move |error| Failure {
        asked: asked.clone(),
        error,
        page,
    }
}

/// Why a link's token was refused: 410 expired, 401 anything else.
pub(super) fn refused(e: OfferError) -> Problem {
    match e {
        OfferError::Expired => Problem::new(StatusCode::GONE, "this link has expired"),
        OfferError::Invalid => Problem::unauthorized("this link is not valid"),
    }
}
