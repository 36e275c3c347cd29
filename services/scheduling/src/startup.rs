//! [`Application`]: the HTTP server, the database and the outbox relay, wired together and
//! stopped on a token; [`AppState`], what every handler can reach.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use slotcast_bus::{Foundation, outbox::Relay};
use slotcast_kit::{
    auth::Authenticator,
    limits::{self, Limits},
    ops::Readiness,
};
use slotcast_links::OfferSigner;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{Config, Policy, migration, routes};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub auth: Arc<Authenticator>,
    pub relay: Relay,
    /// Checks booking links.
    pub offers: OfferSigner,
    pub public_base_url: String,
    pub policy: Policy,
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
        let router = slotcast_kit::http::with_common_layers(
            limits::guard(routes::router(self.state.clone()), self.limits.clone())
                .merge(slotcast_kit::ops::router(readiness)),
        )
        .merge(limits::guard(
            routes::holds_router(self.state.clone()),
            self.limits.clone(),
        ));
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
