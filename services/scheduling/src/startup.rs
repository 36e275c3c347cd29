//! [`Application`]: the HTTP server, the database and the outbox relay, wired together and
//! stopped on a token; [`AppState`], what every handler can reach.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use slotcast_bus::{Foundation, outbox::Relay};
use slotcast_kit::{auth::Authenticator, limits::Limits, openapi, ops::Readiness};
use slotcast_links::OfferSigner;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{Config, Policy, migration, routes};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub auth: Arc<Authenticator>,
    pub relay: Relay,
    /// Checks booking and preferences links; signs and checks appointment links.
    pub offers: OfferSigner,
    pub public_base_url: String,
    pub policy: Policy,
}

impl AppState {
    /// What the links of a confirmation are made with.
    pub fn links(&self) -> crate::confirmations::Links<'_> {
        crate::confirmations::Links {
            base_url: &self.public_base_url,
            signer: &self.offers,
        }
    }
}

impl axum::extract::FromRef<AppState> for Arc<Authenticator> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

/// The parts of the HTTP API, each a router registered with its documented operations.
fn parts() -> (
    OpenApiRouter<AppState>,
    OpenApiRouter<AppState>,
    OpenApiRouter<Readiness>,
) {
    (routes::api(), routes::holds_api(), slotcast_kit::ops::api())
}

/// The document before the parts add their operations: title, description, security, problem.
fn frame() -> OpenApi {
    openapi::document(
        "slotcast scheduling",
        "Practitioners, patients, slots, appointments, the waiting list, booking links and \
         notification preferences. Errors are RFC 9457 `application/problem+json`.",
    )
}

/// The OpenAPI 3.1 document of the HTTP API, as `GET /openapi.json` serves it.
pub fn openapi() -> OpenApi {
    let (v1, holds, ops) = parts();
    frame()
        .merge_from(openapi::limited(v1.into_openapi()))
        .merge_from(openapi::limited(holds.into_openapi()))
        .merge_from(ops.into_openapi())
}

/// The HTTP API with its layers, `/openapi.json` and `/docs`: the same parts as [`openapi`].
fn http(state: AppState, readiness: Readiness, limits: Limits) -> axum::Router {
    let (v1, holds, ops) = parts();
    let mut doc = frame();
    let v1 = openapi::split_limited(&mut doc, v1, state.clone(), &limits);
    let holds = openapi::split_limited(&mut doc, holds, state, &limits);
    let ops = openapi::split(&mut doc, ops, readiness);
    slotcast_kit::http::with_common_layers(v1.merge(ops).merge(openapi::router(doc))).merge(
        slotcast_kit::http::with_layers(holds, routes::MAX_HOLD_BODY_BYTES),
    )
}

/// The running service: HTTP API, outbox relay.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    limits: Limits,
    nats: async_nats::Client,
}

impl Application {
    /// Connects the database (running migrations) and NATS (creating streams), and binds the port.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let Foundation {
            db,
            nats,
            js,
            listener,
        } = Foundation::connect::<migration::Migrator>(&config.common, "scheduling").await?;
        let offers = OfferSigner::from_config(config.offer_keys.as_deref(), &config.jwt_secret)?;
        let state = AppState {
            relay: Relay::new(db.clone(), js),
            db,
            auth: Authenticator::new(&config.jwt_secret, &config.auth)?,
            offers,
            public_base_url: config.public_base_url,
            policy: config.policy,
        };
        Ok(Self {
            listener,
            state,
            limits: Limits::new(config.common.limits, routes::LINK_ROUTES),
            nats,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The database, for tests that look behind the API.
    pub fn db(&self) -> &DatabaseConnection {
        &self.state.db
    }

    /// Serves until `shutdown`, then finishes requests in flight, publishes what the outbox
    /// holds, and drains the NATS connection.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let readiness = Readiness {
            db: self.state.db.clone(),
            nats: self.nats.clone(),
        };
        let router = http(self.state.clone(), readiness, self.limits.clone());
        let relay = tokio::spawn(self.state.relay.clone().run(shutdown.clone()));
        let keys = tokio::spawn(self.state.auth.clone().keep_keys_fresh(shutdown.clone()));
        tracing::info!(addr = %self.listener.local_addr()?, "scheduling listening");
        let served = slotcast_kit::http::serve(self.listener, router, shutdown.clone()).await;
        shutdown.cancel();
        let _ = relay.await;
        let _ = keys.await;
        let _ = self.nats.drain().await;
        served?;
        Ok(())
    }
}
