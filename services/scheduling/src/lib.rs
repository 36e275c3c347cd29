//! The scheduling service: the system of record and the public HTTP API.
//!
//! It owns practitioners, patients, slots, appointments and waiting-list entries. Every state
//! change writes its event into the outbox table in the same transaction; the outbox relay
//! publishes it to JetStream and marks it sent only after the stream acknowledged it.
//!
//! # Layout
//! - [`domain`]: request bodies parsed into checked domain values (422 on bad input).
//! - [`entities`] and [`migration`]: the tables, the same on Postgres and SQLite.
//! - [`routes`]: one module per resource; each exposes `router()`, merged in [`routes::router`].
//! - [`error`]: the API error type, mapped once to problem+json.
//! - this file: configuration and the [`Application`] that wires the HTTP server, the database
//!   and the outbox relay together and stops them on a token.

pub mod domain;
pub mod entities;
pub mod error;
pub mod migration;
pub mod routes;

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use slotcast_bus::{Foundation, outbox::Relay};
use slotcast_kit::{
    auth::Authenticator,
    config::{Common, ConfigError},
    offer::OfferSigner,
    ops::Readiness,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The CloudEvent `source` of everything this service publishes.
pub const SOURCE: &str = "/slotcast/scheduling";

/// Settings from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub common: Common,
    pub jwt_secret: String,
    /// `OFFER_KEYS`: `kid=secret` entries checking booking links (the first one signs); `None`
    /// uses `jwt_secret`.
    pub offer_keys: Option<String>,
    /// `PUBLIC_BASE_URL`: where this service is reached, for the links it shows.
    pub public_base_url: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            common: Common::from_env("scheduling", 8080)?,
            jwt_secret: slotcast_kit::config::jwt_secret()?,
            offer_keys: slotcast_kit::offer::keys_from_env()?,
            public_base_url: slotcast_kit::config::public_base_url(),
        })
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub auth: Arc<Authenticator>,
    pub relay: Relay,
    /// Checks booking links.
    pub offers: OfferSigner,
    pub public_base_url: String,
}

impl axum::extract::FromRef<AppState> for Arc<Authenticator> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

/// The running service: HTTP API, outbox relay.
pub struct Application {
    listener: TcpListener,
    state: AppState,
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
            auth: Authenticator::hs256(&config.jwt_secret),
            offers,
            public_base_url: config.public_base_url,
        };
        Ok(Self {
            listener,
            state,
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
        let router = slotcast_kit::http::with_common_layers(
            routes::router(self.state.clone()).merge(slotcast_kit::ops::router(readiness)),
        );
        let relay = tokio::spawn(self.state.relay.clone().run(shutdown.clone()));
        tracing::info!(addr = %self.listener.local_addr()?, "scheduling listening");
        let served = slotcast_kit::http::serve(self.listener, router, shutdown.clone()).await;
        shutdown.cancel();
        let _ = relay.await;
        let _ = self.nats.drain().await;
        served?;
        Ok(())
    }
}
