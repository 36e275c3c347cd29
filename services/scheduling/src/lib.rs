//! The scheduling service: the system of record and the public HTTP API.
//!
//! It owns practitioners, patients, slots, appointments and waiting-list entries. Every state
//! change writes its event into the outbox table in the same transaction; the outbox relay
//! publishes it to JetStream and marks it sent only after the stream acknowledged it.
//!
//! # Notification policy
//! - Each practitioner has an offering policy (`broadcast` or `waves`), or follows the
//!   configured default ([`Policy::offer_policy`], `OFFER_POLICY`). `slot.created` and
//!   `slot.released` carry the effective policy at the time.
//! - Under `waves`, a new or freed slot starts `held` by a *pre-hold* (no hold, no patients,
//!   lapsing after `WAVES_FIRST_HOLD_SECS`): nobody books it until matching places the first
//!   wave's hold (`PUT /v1/holds/{id}`), or the pre-hold lapses should matching be down.
//! - A slot whose `held_until` has passed counts as `available` everywhere (listing, filters,
//!   booking, claims): no background job clears holds. See [`routes`] for the hold rules.
//! - Waiting-list entries have a priority (`urgent` before `routine`) and expire
//!   (`WAITLIST_DEFAULT_TTL_DAYS`); patients have email and in-app preferences, changed through
//!   the API or through the signed links of an email (preferences page, RFC 8058 one-click).
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

use slotcast_events::OfferPolicy;

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
pub const SOURCE: &str = slotcast_events::sources::SCHEDULING;

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
    /// The notification-policy settings.
    pub policy: Policy,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            common: Common::from_env("scheduling", 8080)?,
            jwt_secret: slotcast_kit::config::jwt_secret()?,
            offer_keys: slotcast_kit::offer::keys_from_env()?,
            public_base_url: slotcast_kit::config::public_base_url(),
            policy: Policy::from_env()?,
        })
    }
}

/// The notification-policy settings: `OFFER_POLICY`, `WAITLIST_DEFAULT_TTL_DAYS`,
/// `WAVES_FIRST_HOLD_SECS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The offering policy of practitioners without one of their own.
    pub offer_policy: OfferPolicy,
    /// How long a waiting-list entry lasts when it is joined without `expires_at`.
    pub waitlist_ttl: chrono::Duration,
    /// How long the pre-hold of a `waves` opening lasts if matching places no hold.
    pub first_hold: chrono::Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            offer_policy: OfferPolicy::Broadcast,
            waitlist_ttl: chrono::Duration::days(90),
            first_hold: chrono::Duration::seconds(120),
        }
    }
}

impl Policy {
    pub fn from_env() -> Result<Self, ConfigError> {
        use slotcast_kit::config::{parse_or, var};
        let offer_policy = match var("OFFER_POLICY") {
            None => OfferPolicy::Broadcast,
            Some(raw) => OfferPolicy::parse(raw.trim()).ok_or_else(|| ConfigError::Invalid {
                name: "OFFER_POLICY",
                reason: format!("{raw:?} is neither broadcast nor waves"),
            })?,
        };
        let ttl_days: i64 = parse_or("WAITLIST_DEFAULT_TTL_DAYS", 90)?;
        if !(1..=3650).contains(&ttl_days) {
            return Err(ConfigError::Invalid {
                name: "WAITLIST_DEFAULT_TTL_DAYS",
                reason: "between 1 and 3650 days".to_owned(),
            });
        }
        let hold_secs: i64 = parse_or("WAVES_FIRST_HOLD_SECS", 120)?;
        if !(1..=86_400).contains(&hold_secs) {
            return Err(ConfigError::Invalid {
                name: "WAVES_FIRST_HOLD_SECS",
                reason: "between 1 and 86400 seconds".to_owned(),
            });
        }
        Ok(Self {
            offer_policy,
            waitlist_ttl: chrono::Duration::days(ttl_days),
            first_hold: chrono::Duration::seconds(hold_secs),
        })
    }

    /// A practitioner's own policy, else the default.
    pub fn effective(&self, own: Option<OfferPolicy>) -> OfferPolicy {
        own.unwrap_or(self.offer_policy)
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
            policy: config.policy,
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
        )
        .merge(routes::holds_router(self.state.clone()));
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
