//! Building the application from its configuration, and running it until shutdown.

use std::sync::Arc;

use anyhow::Context as _;
use sea_orm::DatabaseConnection;
use slotcast_bus::{Foundation, JetStream, consumer, outbox::Relay};
use slotcast_kit::{auth::Authenticator, http, limits::Limits, openapi, ops};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    Config,
    config::SERVICE,
    consumers::{self, ApplySlotEvents, StoreNotification},
    feed_log::FeedSignal,
    migration::Migrator,
    routes::{self, AppState},
};

/// The service, connected and bound, not yet running.
pub struct Application {
    listener: TcpListener,
    port: u16,
    db: DatabaseConnection,
    nats: async_nats::Client,
    js: JetStream,
    auth: Arc<Authenticator>,
    limits: Limits,
}

impl Application {
    /// Connects and migrates the database, connects NATS (creating the streams and this
    /// service's consumers), and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let Foundation {
            db,
            nats,
            js,
            listener,
        } = Foundation::connect::<Migrator>(&config.common, SERVICE).await?;
        // Created now so that what is published before the first pull is kept for us.
        for spec in [
            consumers::notify_spec(),
            consumers::confirmations_spec(),
            consumers::slots_spec(),
        ] {
            consumer::ensure_consumer(&js, &spec).await?;
        }
        let port = listener.local_addr()?.port();
        let auth = Authenticator::new(&config.jwt_secret, &config.auth)?;
        Ok(Self {
            listener,
            port,
            db,
            nats,
            js,
            auth,
            limits: Limits::new(config.common.limits, &[]),
        })
    }

    /// The port the HTTP server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database connection (for tests and tools).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Serves HTTP (open notification streams included), consumes notifications and slot events,
    /// passes feed wake-ups between replicas, and relays the outbox until `shutdown` is cancelled
    /// (or the HTTP server fails); then ends the streams, finishes the work in hand and drains
    /// NATS.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self {
            listener,
            db,
            nats,
            js,
            auth,
            limits,
            ..
        } = self;
        // A failing HTTP server stops the rest too, without cancelling the caller's token.
        let stop = shutdown.child_token();
        let relay = Relay::new(db.clone(), js.clone());
        let readiness = ops::Readiness {
            db: db.clone(),
            nats: nats.clone(),
        };
        let signal = FeedSignal::new(nats.clone());
        let app = http_app(
            AppState {
                db: db.clone(),
                auth: auth.clone(),
                signal: signal.clone(),
                shutdown: stop.clone(),
            },
            readiness,
            limits,
        );
        let server = {
            let stop = stop.clone();
            async move {
                let served = http::serve(listener, app, stop.clone()).await;
                stop.cancel();
                served
            }
        };
        let store = Arc::new(StoreNotification {
            db: db.clone(),
            relay: relay.clone(),
            signal: signal.clone(),
        });
        let slots = Arc::new(ApplySlotEvents {
            db,
            signal: signal.clone(),
        });
        let (served, (), (), (), (), (), ()) = tokio::join!(
            server,
            consumer::run_batches(
                js.clone(),
                consumers::notify_spec(),
                consumers::NOTIFY_BATCH,
                store.clone(),
                stop.clone()
            ),
            consumer::run_batches(
                js.clone(),
                consumers::confirmations_spec(),
                consumers::NOTIFY_BATCH,
                store,
                stop.clone()
            ),
            consumer::run(js.clone(), consumers::slots_spec(), slots, stop.clone()),
            relay.run(stop.clone()),
            signal.listen(stop.clone()),
            auth.keep_keys_fresh(stop.clone()),
        );
        if let Err(e) = nats.drain().await {
            tracing::warn!(error = %e, "NATS connection not drained");
        }
        served.context("HTTP server failed")
    }
}

/// The parts of the HTTP API, each a router registered with its documented operations.
fn parts() -> (OpenApiRouter<AppState>, OpenApiRouter<ops::Readiness>) {
    (routes::api(), ops::api())
}

/// The document before the parts add their operations: title, description, security, problem.
fn frame() -> OpenApi {
    openapi::document(
        "slotcast inapp-notifier",
        "Each patient's notification feed, marking notifications read, and the feed's live \
         stream (Server-Sent Events). Errors are RFC 9457 `application/problem+json`.",
    )
}

/// The OpenAPI 3.1 document of the HTTP API, as `GET /openapi.json` serves it.
pub fn openapi() -> OpenApi {
    let (feed, ops) = parts();
    frame()
        .merge_from(openapi::limited(feed.into_openapi()))
        .merge_from(ops.into_openapi())
}

/// The HTTP API with its layers, `/openapi.json` and `/docs`: the same parts as [`openapi`].
fn http_app(state: AppState, readiness: ops::Readiness, limits: Limits) -> axum::Router {
    let (feed, ops) = parts();
    let mut doc = frame();
    let feed = openapi::split_limited(&mut doc, feed, state, &limits);
    let ops = openapi::split(&mut doc, ops, readiness);
    http::with_common_layers(feed.merge(ops).merge(openapi::router(doc)))
}
