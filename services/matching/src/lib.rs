//! The matching service: decides who is told about which opening.
//!
//! It keeps its own projection of the scheduling events (practitioners, patients, slots,
//! waiting-list entries; it never reads scheduling's tables). When slots open (`slot.created`,
//! `slot.released`) it tells every patient whose entry fits, once per slot, with one
//! `notify.patient` per patient listing every slot of the opening that fits them. Slots posted
//! together share a `batch_id`; the opening is decided when all `batch_size` of them are in.
//!
//! # Layout
//! - [`fit`]: the pure rules of who fits which slot (unit-tested).
//! - [`inbox`]: the scheduling events, decoded once into [`inbox::Input`].
//! - [`projector`]: applying events to the projection, many practitioners at once in lanes, each
//!   event in a transaction with the pending offers of the opening it completes.
//! - [`fence`]: one practitioner's (or patient's) events applied in the order of their stamps.
//! - [`projection`]: deciding an opening (who fits, in the fair order).
//! - [`history`]: `GET /v1/slots/{id}/offers`, a slot's offer history for staff.
//! - [`entities`] and [`migration`]: matching's own tables.
//! - this file: configuration and the [`Application`] (consumer, outbox relay, ops endpoints).

pub mod dispatch;
pub mod entities;
pub mod explain;
pub mod fence;
pub mod fit;
pub mod history;
pub mod holds;
pub mod inbox;
pub mod migration;
pub mod policy;
pub mod projection;
pub mod projector;
pub mod waves;

use std::{sync::Arc, time::Duration};

use sea_orm::DatabaseConnection;
use slotcast_bus::{
    Foundation, JetStream,
    consumer::{self, ConsumerSpec},
    outbox::Relay,
};
use slotcast_events::streams;
use slotcast_kit::{
    auth::Authenticator,
    config::{Common, ConfigError},
    offer::OfferSigner,
    ops::Readiness,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The CloudEvent `source` of what matching publishes.
pub const SOURCE: &str = "/slotcast/matching";
/// The durable consumer on the scheduling stream.
pub const DURABLE: &str = "matching";

#[derive(Debug, Clone)]
pub struct Config {
    pub common: Common,
    /// Signs the offer tokens in booking links.
    pub jwt_secret: String,
    /// `OFFER_KEYS`: `kid=secret` entries, the first signing; `None` signs with `jwt_secret`.
    pub offer_keys: Option<String>,
    pub public_base_url: String,
    /// Coalescing window, daily cap, waves, and where scheduling takes holds.
    pub policy: policy::PolicyConfig,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let public_base_url = slotcast_kit::config::public_base_url();
        Ok(Self {
            common: Common::from_env("matching", 8081)?,
            jwt_secret: slotcast_kit::config::jwt_secret()?,
            offer_keys: slotcast_kit::offer::keys_from_env()?,
            policy: policy::PolicyConfig::from_env(&public_base_url)?,
            public_base_url,
        })
    }
}

/// Scheduling events a replica takes at a time, to apply in [`projector::LANES`] lanes.
pub const MAX_BATCH: usize = 512;

/// The consumer of the scheduling stream, shared by every replica. Many messages are in flight
/// at once: the order of one practitioner's (or patient's) events is kept by their order stamps
/// ([`fence`]), not by the stream, so redeliveries and other replicas cannot break it. Never
/// dead-lettered by the loop: a message waiting for an earlier one must not be; the projector
/// gives up on a failing one itself.
pub fn consumer_spec() -> ConsumerSpec {
    ConsumerSpec {
        stream: streams::SCHEDULING,
        durable: DURABLE.to_owned(),
        filter_subject: streams::SCHEDULING_SUBJECTS.to_owned(),
        max_deliver: 0,
        ack_wait: Duration::from_secs(30),
        // One batch at a time: its lanes are what runs at once, and a key stays in one lane.
        concurrency: 1,
        max_ack_pending: 4 * MAX_BATCH as i64,
    }
}

pub struct Application {
    listener: TcpListener,
    db: DatabaseConnection,
    nats: async_nats::Client,
    js: JetStream,
    matcher: Arc<projection::Matcher>,
    projector: Arc<projector::Projector>,
    auth: Arc<Authenticator>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let Foundation {
            db,
            nats,
            js,
            listener,
        } = Foundation::connect::<migration::Migrator>(&config.common, "matching").await?;
        let matcher = Arc::new(projection::Matcher {
            db: db.clone(),
            relay: Relay::new(db.clone(), js.clone()),
            signer: OfferSigner::from_config(config.offer_keys.as_deref(), &config.jwt_secret)?,
            public_base_url: config.public_base_url,
            holds: holds::Holds::new(&config.policy.scheduling_url, &config.jwt_secret)?,
            policy: config.policy,
            wakers: policy::Wakers::default(),
        });
        let projector = Arc::new(projector::Projector {
            db: db.clone(),
            policy: matcher.policy.clone(),
            wakers: matcher.wakers.clone(),
        });
        Ok(Self {
            listener,
            projector,
            db,
            nats,
            js,
            matcher,
            auth: Authenticator::hs256(&config.jwt_secret),
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Consumes, publishes and serves the ops endpoints until `shutdown`; then finishes the
    /// message in hand, publishes the outbox and drains NATS.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let readiness = Readiness {
            db: self.db.clone(),
            nats: self.nats.clone(),
        };
        let staff = history::HistoryState {
            db: self.db.clone(),
            auth: self.auth.clone(),
        };
        let router = slotcast_kit::http::with_common_layers(
            history::router(staff.clone())
                .merge(explain::router(staff))
                .merge(slotcast_kit::ops::router(readiness)),
        );
        let relay = tokio::spawn(self.matcher.relay.clone().run(shutdown.clone()));
        let dispatcher = tokio::spawn(self.matcher.clone().run_dispatcher(shutdown.clone()));
        let waves = tokio::spawn(self.matcher.clone().run_waves(shutdown.clone()));
        let consumer = tokio::spawn(consumer::run_batches(
            self.js.clone(),
            consumer_spec(),
            MAX_BATCH,
            self.projector.clone(),
            shutdown.clone(),
        ));
        tracing::info!(addr = %self.listener.local_addr()?, "matching listening");
        let served = slotcast_kit::http::serve(self.listener, router, shutdown.clone()).await;
        shutdown.cancel();
        let _ = consumer.await;
        let _ = waves.await;
        let _ = dispatcher.await;
        let _ = relay.await;
        let _ = self.nats.drain().await;
        served?;
        Ok(())
    }
}
