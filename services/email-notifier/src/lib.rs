//! The email notifier: tells a patient by email about appointment times that fit them.
//!
//! It consumes `slotcast.notify.patient` (stream `SLOTCAST_NOTIFY`, durable consumer
//! `email-notifier`) and sends one multipart email (plain text and HTML) per notification, with
//! one booking link per slot. It owns the email delivery log (`email_deliveries`, keyed by the
//! notification id) and publishes the outcome of each notification, through its outbox, as
//! `slotcast.delivery.email.sent` or `slotcast.delivery.email.failed`. Over HTTP it serves only
//! `/healthz`, `/readyz` and `/metrics`.
//!
//! # Layout
//! - `lib.rs`: [`Config`] from the environment, and [`Application`], which connects the
//!   database (running [`Migrator`]), NATS and the mailer, and runs the consumer, the outbox
//!   relay and the HTTP server until shutdown.
//! - [`render`]: the handlebars templates in `templates/` (compiled in) and the formatting of
//!   times (the practitioner's zone) and fees.
//! - [`mailer`]: SMTP, or `.eml` files in a folder; sorts errors into permanent and transient.
//! - [`smtp_pool`]: the pooled SMTP connections.
//! - [`deliveries`]: the `email_deliveries` table, its migration, and its state changes, each
//!   written together with its outbox event.
//! - [`handler`]: the consumer's handler, which ties the three together: it takes the messages a
//!   batch at a time (see [`batch_size`]), claims them `EMAIL_CONCURRENCY` to a statement, and
//!   writes the `sent` records of concurrent sends together ([`group_commit`]).
//! - [`group_commit`]: many small writes joined into one statement or transaction.
//!
//! # Where mail goes
//! With `SMTP_URL` set, mail goes to that server over pooled connections of our own
//! ([`smtp_pool`]: lettre's SMTP client on sockets with Nagle's algorithm off), and the URL gives
//! the TLS mode, as lettre's `from_url` reads it:
//! - `smtps://user:pass@host:465`: TLS from the first byte (implicit TLS), the recommended way;
//! - `smtp://user:pass@host:587?tls=required`: plain connection upgraded with STARTTLS, and the
//!   send fails if the server does not offer it;
//! - `smtp://host:587?tls=opportunistic`: STARTTLS when offered, else plain text;
//! - `smtp://host:25` without `tls`: plain text, for a relay on a trusted network or tests.
//!
//! Credentials in the URL are percent-encoded. Certificates are checked against the webpki
//! roots. `SMTP_POOL_SIZE` (default: as many as `EMAIL_CONCURRENCY`) bounds the idle connections
//! that are kept open; the number of sends at once is bounded by `EMAIL_CONCURRENCY` (default
//! 32): an email holds one of those permits from the moment it is handed to SMTP until its
//! outcome is written.
//!
//! Without `SMTP_URL` (the embedded default) each message is written to
//! `<MAIL_DIR>/<notification_id>.eml` (default `var/mail`): written under a hidden temporary
//! name and renamed, so a reader never sees half a file.
//!
//! # Configuration
//! Besides the common `NATS_URL`, `DATABASE_URL` (default `sqlite://var/email-notifier.sqlite`),
//! `LISTEN_ADDR` (default `127.0.0.1:8082`), `NATS_STREAM_REPLICAS` and
//! `DATABASE_MAX_CONNECTIONS`:
//!
//! | variable | default | what |
//! |---|---|---|
//! | `SMTP_URL` | unset: write files | the SMTP relay, TLS mode included (below) |
//! | `SMTP_FROM` | `slotcast <no-reply@slotcast.localhost>` | the `From` of every email |
//! | `SMTP_POOL_SIZE` | `EMAIL_CONCURRENCY` | idle SMTP connections kept open |
//! | `MAIL_DIR` | `var/mail` | where emails go without `SMTP_URL` |
//! | `EMAIL_CONCURRENCY` | 32 | emails out at once (sent, outcome not yet written) |
//! | `EMAIL_RETRY_BASE_MS` | 5000 | first delay after a transient failure; it doubles, each delay less up to a fifth at random |
//! | `EMAIL_RETRY_MAX_MS` | 900000 | the longest delay between attempts |
//! | `EMAIL_RETRY_HORIZON_SECS` | 43200 | how long after the first attempt retries go on (12 h) |
//!
//! # Delivery guarantees
//! A notification is sent once and its outcome published once:
//! - a row already `sent` or `failed` makes any redelivery, or a re-publish of the same
//!   notification under another event id, a no-op;
//! - an attempt is recorded (`sending`, `attempts + 1`) before the SMTP transaction starts, and
//!   `sent` is written in one transaction with the `EmailSent` outbox row;
//! - an SMTP 5xx reply is final: the row becomes `failed` and `EmailFailed { permanent: true }`
//!   is published, with no retry. Except 53x (authentication required or refused, encryption
//!   required): that is the relay refusing this service, not this message, and is retried
//!   like a 4xx so a wrong password does not fail every notification for good;
//! - a 4xx reply, a dropped connection or a timeout is retried with exponential backoff
//!   (`EMAIL_RETRY_BASE_MS`, default 5 s, doubling up to `EMAIL_RETRY_MAX_MS`, default 15 min)
//!   for `EMAIL_RETRY_HORIZON_SECS` (default 12 h) after the first attempt; the first failure
//!   after the horizon (or on the consumer's last delivery, `max_deliver` 500) makes the row
//!   `failed` and publishes `EmailFailed { permanent: false }` instead. A pooled connection
//!   that died is dropped by the pool and replaced on the next send;
//! - while a send is slow, the consume loop keeps the message with progress acks, so a slow
//!   SMTP server never causes a second send.
//!
//! One window remains: if the process dies (or the database goes away) after the SMTP server
//! accepted the message and before `sent` is written, the row stays `sending` with its attempt
//! in flight, JetStream redelivers the message after its ack wait, and the patient may get the
//! same email twice. At most `EMAIL_CONCURRENCY` emails are in that window at once. Attempts are
//! claimed a batch ahead of the sends (up to two consumer batches, eight times
//! `EMAIL_CONCURRENCY`, claimed and not recorded), so after a crash some claimed but never sent
//! are counted as re-sends too: the counter below is an upper bound of the duplicates. A claim
//! keeps other attempts away for the lease (the consumer's ack wait, 60 s); one that waited so
//! long for its turn that the longest send (40 s) would outlast it is renewed just before its
//! send, so a copy of the notification arriving meanwhile never sends it a second time. Both
//! copies carry the same `Message-ID: <notification_id@slotcast>`, which many mail clients use
//! to fold duplicates. Such re-sends are counted in
//! `slotcast_email_resend_after_unknown_total`. Closing the window would need the SMTP server
//! to take part in a transaction, which SMTP cannot do.
//!
//! # Metrics
//! `slotcast_email_sent_total`, `slotcast_email_failed_total{permanent}`,
//! `slotcast_email_retried_total`, `slotcast_email_resend_after_unknown_total` and the
//! histogram `slotcast_email_send_duration_seconds`, besides the consumer's and the outbox's
//! own counters.
//!
//! # Privacy
//! Logs carry notification and patient ids only. `last_error` and `EmailFailed.reason` hold the
//! SMTP reply with every address taken out.

pub mod deliveries;
pub mod group_commit;
pub mod handler;
pub mod mailer;
pub mod render;
pub mod smtp_pool;

use std::{path::PathBuf, sync::Arc, time::Duration};

use lettre::message::Mailbox;
use sea_orm::DatabaseConnection;
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use slotcast_bus::{
    Foundation, JetStream,
    consumer::ConsumerSpec,
    outbox::{CreateOutbox, Relay},
};
use slotcast_events::{streams, subjects};
use slotcast_kit::config::{Common, ConfigError, parse_or, var};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    handler::{NotifyHandler, Retry},
    mailer::Mailer,
    render::Templates,
};

/// The service name: durable consumer, NATS client name, default SQLite file.
pub const SERVICE: &str = "email-notifier";
/// `LISTEN_ADDR` when unset: `127.0.0.1:8082`.
pub const DEFAULT_PORT: u16 = 8082;
/// How often JetStream delivers a message at most. The retry horizon normally ends retries
/// first: this bound is for a message that fails without ever reaching SMTP.
pub const MAX_DELIVER: i64 = 500;
/// How long a message may be in hand before JetStream delivers it again.
pub const ACK_WAIT: Duration = Duration::from_secs(60);
/// Messages the consumer hands over at once at most, for `concurrency` emails out at once:
/// four times as many (enough to claim the next while the last go out), between 16 and 256. Not
/// more: what a replica holds waits for its sends, and another replica could take it.
pub fn batch_size(concurrency: usize) -> usize {
    (concurrency * 4).clamp(16, 256)
}
/// Batches in hand at once, so the next batch's claims and sends start while the last emails
/// of one are still out.
const BATCHES_AT_ONCE: usize = 2;

/// The service's settings.
#[derive(Clone)]
pub struct Config {
    pub common: Common,
    /// `SMTP_URL`; `None` writes `.eml` files into `mail_dir`.
    pub smtp_url: Option<String>,
    /// `SMTP_FROM`; default `slotcast <no-reply@slotcast.localhost>`.
    pub smtp_from: Mailbox,
    /// `SMTP_POOL_SIZE`: idle SMTP connections kept open (default: `EMAIL_CONCURRENCY`).
    pub smtp_pool_size: u32,
    /// `MAIL_DIR`: where mail goes without `SMTP_URL` (default `var/mail`).
    pub mail_dir: PathBuf,
    /// `EMAIL_CONCURRENCY`: emails out at once, from the send to the written outcome (default 32).
    pub concurrency: usize,
    /// Delays between transient failures (`EMAIL_RETRY_BASE_MS`, `EMAIL_RETRY_MAX_MS`).
    pub retry: Retry,
}

/// `EMAIL_CONCURRENCY` by default. Emails go out at most at `EMAIL_CONCURRENCY` divided by the
/// time an email holds its permit (the SMTP transaction, then the wait for its `sent` record):
/// with a relay answering in a few milliseconds, 32 reach about 3,500 a second from one
/// replica (BENCHMARKS.md), where 8 stopped at about 1,400; a relay answering in 50 ms
/// allows 640 a second. The price is the crash window: a crash may send up to that many emails
/// twice (counted, see above).
const DEFAULT_CONCURRENCY: usize = 32;

/// How long the outbox relay gathers `EmailSent` and `EmailFailed` events before a turn.
const EVENT_LINGER: Duration = Duration::from_millis(20);

impl Config {
    /// Reads the settings from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let smtp_url = var("SMTP_URL");
        if let Some(url) = &smtp_url {
            lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url).map_err(|e| {
                ConfigError::Invalid {
                    name: "SMTP_URL",
                    reason: mailer::redact_addresses(&e.to_string()),
                }
            })?;
        }
        let smtp_from = var("SMTP_FROM")
            .unwrap_or_else(|| "slotcast <no-reply@slotcast.localhost>".to_owned())
            .parse::<Mailbox>()
            .map_err(|e| ConfigError::Invalid {
                name: "SMTP_FROM",
                reason: e.to_string(),
            })?;
        let concurrency: usize = parse_or("EMAIL_CONCURRENCY", DEFAULT_CONCURRENCY)?;
        if concurrency == 0 {
            return Err(ConfigError::Invalid {
                name: "EMAIL_CONCURRENCY",
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(Self {
            common: Common::from_env(SERVICE, DEFAULT_PORT)?,
            smtp_url,
            smtp_from,
            // As many idle connections as sends at once, so a busy sender never closes one only to
            // open another for the next email.
            smtp_pool_size: parse_or(
                "SMTP_POOL_SIZE",
                u32::try_from(concurrency).unwrap_or(u32::MAX),
            )?,
            mail_dir: PathBuf::from(var("MAIL_DIR").unwrap_or_else(|| "var/mail".to_owned())),
            concurrency,
            retry: Retry {
                delays: slotcast_kit::retry::Backoff::new(
                    Duration::from_millis(parse_or("EMAIL_RETRY_BASE_MS", 5_000)?),
                    Duration::from_millis(parse_or("EMAIL_RETRY_MAX_MS", 15 * 60 * 1000)?),
                ),
                horizon: Duration::from_secs(parse_or("EMAIL_RETRY_HORIZON_SECS", 12 * 3600)?),
            },
        })
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SMTP_URL may carry a password.
        f.debug_struct("Config")
            .field("common", &self.common)
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "<set>"))
            .field("smtp_from", &self.smtp_from)
            .field("smtp_pool_size", &self.smtp_pool_size)
            .field("mail_dir", &self.mail_dir)
            .field("concurrency", &self.concurrency)
            .field("retry", &self.retry)
            .finish()
    }
}

/// The migrations of this service's database: the outbox, then the delivery log.
pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateOutbox),
            Box::new(deliveries::CreateEmailDeliveries),
            Box::new(slotcast_bus::order::AddOrderStamp),
            Box::new(slotcast_bus::order::StampAtCommit),
            Box::new(slotcast_bus::bundle::AddOutboxBundles),
        ]
    }
}

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
        let handler = Arc::new(NotifyHandler::new(
            db.clone(),
            relay.clone(),
            mailer,
            Templates::new()?,
            config.smtp_from,
            config.retry,
            ACK_WAIT,
            MAX_DELIVER,
            config.concurrency,
        ));
        let spec = ConsumerSpec {
            stream: streams::NOTIFY,
            durable: SERVICE.to_owned(),
            filter_subject: subjects::NOTIFY_PATIENT.to_owned(),
            max_deliver: MAX_DELIVER,
            ack_wait: ACK_WAIT,
            concurrency: BATCHES_AT_ONCE,
            // Order does not matter here; messages waiting out a retry delay count as pending,
            // so leave room for them beside the batches in hand.
            max_ack_pending: (batch_size(config.concurrency) * BATCHES_AT_ONCE * 2) as i64,
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
            async move {
                run.await;
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
