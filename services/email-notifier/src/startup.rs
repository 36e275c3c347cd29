//! [`Application`]: connects the database (running [`crate::migration`]), NATS and the mailer,
//! and runs the consumer, the outbox relay and the HTTP server until shutdown.

use std::{sync::Arc, time::Duration};

use sea_orm::DatabaseConnection;
use slotcast_bus::{Foundation, JetStream, consumer::ConsumerSpec, outbox::Relay};
use slotcast_events::{streams, subjects};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    BATCHES_AT_ONCE, CONFIRMATIONS_DURABLE, Config, MAX_DELIVER, SERVICE, batch_size,
    handler::NotifyHandler, mailer::Mailer, migration::Migrator, render::Templates,
};

/// How long the outbox relay gathers `EmailSent` and `EmailFailed` events before a turn.
const EVENT_LINGER: Duration = Duration::from_millis(20);

/// The running service, built and ready to run.
pub struct Application {
    listener: TcpListener,
    port: u16,
    db: DatabaseConnection,
    nats: async_nats::Client,
    js: JetStream,
    relay: Relay,
    handler: Arc<NotifyHandler>,
    spec: ConsumerSpec,
    confirmations: ConsumerSpec,
}

impl Application {
    /// Connects and migrates the database, connects NATS (creating the streams), sets up the
    /// mailer and binds the HTTP listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let Foundation {
            db,
            nats,
            js,
            listener,
        } = Foundation::connect::<Migrator>(&config.common, SERVICE).await?;
        let mailer = match &config.smtp_url {
            Some(url) => Mailer::smtp(url, config.smtp_pool_size)?,
            None => Mailer::folder(config.mail_dir.clone()).await?,
        };
        let port = listener.local_addr()?.port();
        // `EmailSent` events are written a group commit at a time; nobody waits for them
        // within milliseconds, so the relay gathers them into larger turns.
        let relay = Relay::new(db.clone(), js.clone()).with_linger(EVENT_LINGER);
        let max_ack_pending = (batch_size(config.sending.concurrency) * BATCHES_AT_ONCE * 2) as i64;
        let ack_wait = config.sending.lease;
        let handler = Arc::new(NotifyHandler::new(
            db.clone(),
            relay.clone(),
            mailer,
            Templates::new()?,
            config.sending,
        ));
        let spec = ConsumerSpec {
            stream: streams::NOTIFY,
            durable: SERVICE.to_owned(),
            filter_subject: subjects::NOTIFY_PATIENT.to_owned(),
            max_deliver: MAX_DELIVER,
            ack_wait,
            concurrency: BATCHES_AT_ONCE,
            // Order does not matter here; messages waiting out a retry delay count as pending,
            // so leave room for them beside the batches in hand.
            max_ack_pending,
        };
        // Confirmations have a durable consumer of their own: the availability consumer keeps
        // its filter, and a burst of one never waits behind the other.
        let confirmations = ConsumerSpec {
            durable: CONFIRMATIONS_DURABLE.to_owned(),
            filter_subject: subjects::NOTIFY_APPOINTMENT.to_owned(),
            ..spec.clone()
        };
        Ok(Self {
            listener,
            port,
            db,
            nats,
            js,
            relay,
            handler,
            spec,
            confirmations,
        })
    }

    /// The port the HTTP server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database connection (for tests and tools).
    pub fn db(&self) -> DatabaseConnection {
        self.db.clone()
    }

    /// Runs the HTTP server, the consumer and the outbox relay until `shutdown` is cancelled;
    /// then finishes the messages in hand, publishes what they wrote, and drains NATS.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let readiness = slotcast_kit::ops::Readiness {
            db: self.db.clone(),
            nats: self.nats.clone(),
        };
        let router = slotcast_kit::http::with_common_layers(
            axum::Router::new().merge(slotcast_kit::ops::router(readiness)),
        );
        let http = slotcast_kit::http::serve(self.listener, router, shutdown.clone());

        // The relay outlives the consumer, so the events of the last messages still go out.
        let relay_stop = CancellationToken::new();
        let consumer = {
            let relay_stop = relay_stop.clone();
            let run = slotcast_bus::consumer::run_batches(
                self.js.clone(),
                self.spec,
                batch_size(self.handler.concurrency()),
                self.handler.clone(),
                shutdown.clone(),
            );
            let confirmations = slotcast_bus::consumer::run_batches(
                self.js.clone(),
                self.confirmations,
                batch_size(self.handler.concurrency()),
                self.handler.clone(),
                shutdown.clone(),
            );
            async move {
                tokio::join!(run, confirmations);
                relay_stop.cancel();
            }
        };
        let relay = self.relay.run(relay_stop);

        let (served, (), ()) = tokio::join!(http, consumer, relay);
        if let Mailer::Smtp(pool) = &self.handler.mailer {
            pool.shutdown().await;
        }
        if let Err(e) = self.nats.drain().await {
            tracing::warn!(error = %e, "NATS drain failed");
        }
        served.map_err(|e| anyhow::anyhow!("HTTP server failed: {e}"))
    }
}
