//! Serving a service's router: common layers, and graceful shutdown on a token.

use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::{limit::RequestBodyLimitLayer, timeout::TimeoutLayer, trace::TraceLayer};

/// The largest request body accepted (a batch of slots is well under this).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Adds tracing, a request timeout and a body limit, and the problem+json fallback.
pub fn with_common_layers(router: Router) -> Router {
    router
        .fallback(crate::problem::not_found)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(TraceLayer::new_for_http())
}

/// Serves until `shutdown` is cancelled, then finishes requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled_owned().await })
        .await
}
