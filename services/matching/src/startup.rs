//! [`Application`]: the consumer and its projector, the dispatcher, the wave runner, the outbox
//! relay and the ops and staff endpoints, built from a [`Config`] and run until shutdown.

use std::{sync::Arc, time::Duration};

use sea_orm::{DatabaseConnection, DbBackend};
use slotcast_bus::{
    Foundation, JetStream,
    consumer::{self, ConsumerSpec},
    outbox::Relay,
};
use slotcast_events::streams;
use slotcast_kit::{auth::Authenticator, limits::Limits, openapi, ops::Readiness};
use slotcast_links::OfferSigner;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    Config, DURABLE, dispatch, explain, history, holds, migration, passes, projector, waves,
};

/// Scheduling events in one batch at most, applied in [`crate::projector::LANES`] lanes.
pub const MAX_BATCH: usize = 256;
/// Batches a replica applies at once: one waiting for another replica leaves the rest going.
pub const BATCHES_AT_ONCE: usize = 4;

/// The consumer of the scheduling stream, shared by every replica. Many messages are in flight
/// at once: the order of one practitioner's (or patient's) events is kept by their order stamps
/// ([`crate::fence`]), not by the stream, so redeliveries and other replicas cannot break it. Never
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
    limits: Limits,
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
        let dispatcher = Arc::new(
            dispatch::Dispatcher::new(
                db.clone(),
                relay.clone(),
                OfferSigner::from_config(config.offer_keys.as_deref(), &config.jwt_secret)?,
                config.public_base_url,
                config.policy.daily_cap,
                wakers.clone(),
            )
            .with_quiet_hours(config.policy.quiet_hours),
        );
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
            auth: Authenticator::new(&config.jwt_secret, &config.auth)?,
            limits: Limits::new(config.common.limits, &[]),
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
        let router = http(staff, readiness, self.limits.clone());
        let relay = tokio::spawn(self.relay.clone().run(shutdown.clone()));
        let keys = tokio::spawn(self.auth.clone().keep_keys_fresh(shutdown.clone()));
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
        let _ = keys.await;
        let _ = self.nats.drain().await;
        served?;
        Ok(())
    }
}

/// The parts of the HTTP API, each a router registered with its documented operations.
fn parts() -> (
    OpenApiRouter<history::HistoryState>,
    OpenApiRouter<Readiness>,
) {
    (
        history::api().merge(explain::api()),
        slotcast_kit::ops::api(),
    )
}

/// The document before the parts add their operations: title, description, security, problem.
fn frame() -> OpenApi {
    openapi::document(
        "slotcast matching",
        "Staff views of matching's decisions: a slot's offer history and why each patient was \
         or was not told about it. Errors are RFC 9457 `application/problem+json`.",
    )
}

/// The OpenAPI 3.1 document of the HTTP API, as `GET /openapi.json` serves it.
pub fn openapi() -> OpenApi {
    let (staff, ops) = parts();
    frame()
        .merge_from(openapi::limited(staff.into_openapi()))
        .merge_from(ops.into_openapi())
}

/// The HTTP API with its layers, `/openapi.json` and `/docs`: the same parts as [`openapi`].
fn http(staff: history::HistoryState, readiness: Readiness, limits: Limits) -> axum::Router {
    let (staff_api, ops) = parts();
    let mut doc = frame();
    let staff = openapi::split_limited(&mut doc, staff_api, staff, &limits);
    let ops = openapi::split(&mut doc, ops, readiness);
    slotcast_kit::http::with_common_layers(staff.merge(ops).merge(openapi::router(doc)))
}
