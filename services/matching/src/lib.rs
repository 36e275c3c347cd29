//! The matching service: decides who is told about which opening.
//!
//! It keeps its own projection of the scheduling events (practitioners, patients, slots,
//! waiting-list entries; it never reads scheduling's tables). When slots open (`slot.created`,
//! `slot.released`) it tells every patient whose entry fits, once per slot, with one
//! `notify.patient` per patient listing every slot of the opening that fits them. Slots posted
//! together share a `batch_id`; the opening is decided when all `batch_size` of them are in.
//!
//! # Layout
//! - [`vocabulary`]: slot status, outcome, reason, wave status, history kind; enums stored as
//!   strings.
//! - [`fit`]: the pure rules of who fits which slot, and the fair order (unit-tested).
//! - [`eligibility`]: the one rule of who is told now, later or not at all, and why (pure,
//!   unit-tested).
//! - [`policy`]: the policy's settings (`PolicyConfig`).
//! - [`inbox`]: the scheduling events, decoded once into [`inbox::Input`].
//! - [`projector`]: applying events to the projection, many practitioners at once in lanes, each
//!   event in a transaction with the pending offers of the opening it completes.
//! - [`apply`]: applying one event to the projection, a function per event; the opening it
//!   completes is decided there.
//! - [`fence`]: one practitioner's (or patient's) events applied in the order of their stamps.
//! - [`projection`]: deciding an opening (who is told, in the fair order), and the lookups and
//!   records the workers share.
//! - [`dispatch`]: the [`dispatch::Dispatcher`], due offers to `notify.patient` messages.
//! - [`waves`]: the [`waves::WaveRunner`], the `waves` policy's timers.
//! - [`holds`]: scheduling's hold API, as the waves call it.
//! - [`passes`]: the loop the dispatcher and the wave runner run, and what wakes them.
//! - [`history`]: `GET /v1/slots/{id}/offers`, a slot's offer history for staff.
//! - [`explain`]: `GET /v1/slots/{id}/decisions`, why each patient was or was not told.
//! - [`entities`]: matching's own tables.
//! - [`migration`]: their schema migrations.
//! - this file: configuration and the [`Application`] (consumer, workers, outbox relay, ops
//!   endpoints).

pub mod apply;
pub mod dispatch;
pub mod eligibility;
pub mod entities;
pub mod explain;
pub mod fence;
pub mod fit;
pub mod history;
pub mod holds;
pub mod inbox;
pub mod migration;
pub mod passes;
pub mod policy;
pub mod projection;
pub mod projector;
pub mod vocabulary;
pub mod waves;

use std::{sync::Arc, time::Duration};

use sea_orm::{DatabaseConnection, DbBackend};
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
pub const SOURCE: &str = slotcast_events::sources::MATCHING;
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

/// Scheduling events in one batch at most, applied in [`projector::LANES`] lanes.
pub const MAX_BATCH: usize = 256;
/// Batches a replica applies at once: one waiting for another replica leaves the rest going.
pub const BATCHES_AT_ONCE: usize = 4;

/// The consumer of the scheduling stream, shared by every replica. Many messages are in flight
/// at once: the order of one practitioner's (or patient's) events is kept by their order stamps
/// ([`fence`]), not by the stream, so redeliveries and other replicas cannot break it. Never
/// dead-lettered by the loop: a message waiting for an earlier one must not be; the projector
/// gives up on a failing one itself.
pub fn consumer_spec(backend: DbBackend) -> ConsumerSpec {
    ConsumerSpec {
        stream: streams::SCHEDULING,
        durable: DURABLE.to_owned(),
        filter_subject: streams::SCHEDULING_SUBJECTS.to_owned(),
        max_deliver: 0,
        ack_wait: Duration::from_secs(30),
        // SQLite's one connection takes one transaction at a time: more would only queue on it.
        concurrency: if backend == DbBackend::Sqlite {
            1
        } else {
            BATCHES_AT_ONCE
        },
        max_ack_pending: 2 * (BATCHES_AT_ONCE * MAX_BATCH) as i64,
    }
}

pub struct Application {
    listener: TcpListener,
    db: DatabaseConnection,
    nats: async_nats::Client,
    js: JetStream,
    relay: Relay,
    dispatcher: Arc<dispatch::Dispatcher>,
    waves: Arc<waves::WaveRunner>,
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
        let wakers = passes::Wakers::default();
        let relay = Relay::new(db.clone(), js.clone());
        let dispatcher = Arc::new(dispatch::Dispatcher::new(
            db.clone(),
            relay.clone(),
            OfferSigner::from_config(config.offer_keys.as_deref(), &config.jwt_secret)?,
            config.public_base_url,
            config.policy.daily_cap,
            wakers.clone(),
        ));
        let waves = Arc::new(waves::WaveRunner::new(
            db.clone(),
            holds::Holds::new(&config.policy.scheduling_url, &config.jwt_secret)?,
            waves::WavePolicy::from(&config.policy),
            wakers.clone(),
        ));
        let projector = Arc::new(projector::Projector {
            db: db.clone(),
            policy: config.policy,
            wakers,
        });
        Ok(Self {
            listener,
            projector,
            db,
            nats,
            js,
            relay,
            dispatcher,
            waves,
            auth: Authenticator::hs256(&config.jwt_secret),
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The dispatcher, to pump its [`dispatch::Dispatcher::run_once`] in tests.
    pub fn dispatcher(&self) -> Arc<dispatch::Dispatcher> {
        self.dispatcher.clone()
    }

    /// The wave runner, to pump its [`waves::WaveRunner::run_once`] in tests.
    pub fn wave_runner(&self) -> Arc<waves::WaveRunner> {
        self.waves.clone()
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
        let relay = tokio::spawn(self.relay.clone().run(shutdown.clone()));
        let dispatcher = tokio::spawn(self.dispatcher.clone().run(shutdown.clone()));
        let waves = tokio::spawn(self.waves.clone().run(shutdown.clone()));
        let consumer = tokio::spawn(consumer::run_batches(
            self.js.clone(),
            consumer_spec(self.db.get_database_backend()),
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
