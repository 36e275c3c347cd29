//! Serving a service's router: common layers, and graceful shutdown on a token.

use std::time::Duration;

use axum::{
    Router,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::{
    limit::RequestBodyLimitLayer,
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::{DefaultOnResponse, TraceLayer},
};

/// The largest request body accepted (a batch of slots is well under this).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Adds tracing, a request timeout and a body limit, and problem+json for every error that
/// does not come from a handler (unknown route, wrong method, body too large, timeout).
pub fn with_common_layers(router: Router) -> Router {
    with_layers(
        router
            .fallback(crate::problem::not_found)
            .method_not_allowed_fallback(|| async {
                crate::Problem::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "this method is not allowed here",
                )
            }),
        MAX_BODY_BYTES,
    )
}

/// The layers of [`with_common_layers`] with a body limit of `max_body` bytes and without the
/// fallbacks, for routes that take larger bodies and are merged beside the rest (a merged
/// router may not bring a fallback of its own).
pub fn with_layers(router: Router, max_body: usize) -> Router {
    router
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        // Outside the limit and the timeout, so their plain-text answers are rewritten too.
        .layer(axum::middleware::map_response(as_problem))
        // No browser guesses a type other than the one sent (JSON shown as HTML, say).
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        // INFO, not tower-http's default DEBUG: the request span is the root of the trace the
        // outbox events carry, so it must exist at the default log level.
        //
        // The span names the route template, never the URI: a booking link's path is its offer
        // token, a credential that must not reach the logs.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
}

fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        version = ?request.version(),
    )
}

/// Rewrites a plain-text error response (a layer's 413 or 408) as problem+json.
async fn as_problem(response: Response) -> Response {
    let status = response.status();
    // A layer's or axum's own answer is plain text (or empty); a handler's error page is HTML
    // on purpose (a booking link opened in a browser) and is left alone.
    let is_plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    if (status.is_client_error() || status.is_server_error()) && is_plain {
        let detail = status.canonical_reason().unwrap_or("error").to_owned();
        return crate::Problem::new(status, detail).into_response();
    }
    response
}

/// Serves until `shutdown` is cancelled, then finishes requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // The peer address is what the abuse limits count against.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled_owned().await })
    .await
}
