//! Operational endpoints every service serves: `/healthz`, `/readyz`, `/metrics`.

use std::{sync::OnceLock, time::Duration};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sea_orm::DatabaseConnection;
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    RECORDER
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .clone()
}

/// What `/readyz` checks: the service's database and its NATS connection.
#[derive(Clone)]
pub struct Readiness {
    pub db: DatabaseConnection,
    pub nats: async_nats::Client,
}

impl Readiness {
    /// `Ok` when both answer; otherwise what is down.
    pub async fn check(&self) -> Result<(), Vec<&'static str>> {
        let mut down = Vec::new();
        let ping = tokio::time::timeout(Duration::from_secs(2), self.db.ping()).await;
        if !matches!(ping, Ok(Ok(()))) {
            down.push("database");
        }
        if self.nats.connection_state() != async_nats::connection::State::Connected {
            down.push("nats");
        }
        if down.is_empty() { Ok(()) } else { Err(down) }
    }
}

/// `/healthz`, `/readyz` and `/metrics`, documented, for a service's OpenAPI document.
pub fn api() -> OpenApiRouter<Readiness> {
    metrics_handle();
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// `/healthz`, `/readyz` and `/metrics`, to merge into a service without an API document.
pub fn router(readiness: Readiness) -> Router {
    api().with_state(readiness).split_for_parts().0
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "Alive", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok"
}

/// What `/readyz` answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadinessView {
    /// `ready` or `unavailable`.
    pub status: &'static str,
    /// What is down: `database`, `nats`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub down: Vec<&'static str>,
}

/// The database and NATS are reachable.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, description = "Ready", body = ReadinessView),
    (status = 503, description = "The database or NATS is unreachable", body = ReadinessView),
))]
async fn readyz(State(r): State<Readiness>) -> impl IntoResponse {
    match r.check().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(ReadinessView {
                status: "ready",
                down: Vec::new(),
            }),
        ),
        Err(down) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(ReadinessView {
                status: "unavailable",
                down,
            }),
        ),
    }
}

/// Prometheus metrics, in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses(
        (status = 200, description = "The metrics", body = String, content_type = "text/plain"),
    ))]
async fn metrics() -> impl IntoResponse {
    let body = metrics_handle().map(|h| h.render()).unwrap_or_default();
    ([("content-type", "text/plain; version=0.0.4")], body)
}
