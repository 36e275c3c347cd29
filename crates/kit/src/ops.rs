//! Operational endpoints every service serves: `/healthz`, `/readyz`, `/metrics`.

use std::{sync::OnceLock, time::Duration};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sea_orm::DatabaseConnection;

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

/// `/healthz`, `/readyz` and `/metrics`, to merge into a service's router.
pub fn router(readiness: Readiness) -> Router {
    metrics_handle();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(readiness)
}

async fn readyz(State(r): State<Readiness>) -> impl IntoResponse {
    match r.check().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ready"})),
        ),
        Err(down) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "unavailable", "down": down})),
        ),
    }
}

async fn metrics() -> impl IntoResponse {
    let body = metrics_handle().map(|h| h.render()).unwrap_or_default();
    ([("content-type", "text/plain; version=0.0.4")], body)
}
