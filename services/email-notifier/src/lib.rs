//! The email notifier: tells a patient by email about appointment times that fit them.
//!
//! It consumes `slotcast.notify.patient` (durable consumer `email-notifier`) and sends one
//! multipart email (plain text and HTML) per notification, with one booking link per slot; and
//! `slotcast.notify.appointment` (durable consumer `email-notifier-confirmations`): one
//! confirmation per booking, move or cancellation, with its calendar entry (RFC 5545). It
//! owns the delivery log (`email_deliveries`, keyed by the notification or confirmation id) and publishes each
//! outcome through its outbox (`slotcast.delivery.email.sent` or `.failed`). Over HTTP it serves
//! only `/healthz`, `/readyz` and `/metrics`. Configuration, delivery guarantees and the one
//! crash window are in the README.
//!
//! # Layout
//! - [`config`]: [`Config`] from the environment.
//! - [`startup`]: [`Application`], the consumer, the outbox relay and the HTTP server.
//! - [`entities`] and [`migration`]: the `email_deliveries` table.
//! - [`deliveries`]: the delivery log's state changes, each written with its outbox event.
//! - [`handler`]: the consumer's handler: a batch at a time ([`batch_size`]), claimed
//!   `EMAIL_CONCURRENCY` to a statement, sent, and recorded ([`group_commit`]).
//! - [`render`]: the handlebars templates in `templates/`, times and fees.
//! - [`compose`]: the rendered parts as one MIME message with its Message-ID and unsubscribe
//!   headers.
//! - [`mailer`]: SMTP or `.eml` files; errors sorted into permanent and transient.
//! - [`smtp_pool`]: the pooled SMTP connections.
//! - [`group_commit`]: many small writes joined into one statement or transaction.
//!
//! # Metrics
//! `slotcast_email_sent_total`, `slotcast_email_failed_total{permanent}`,
//! `slotcast_email_retried_total`, `slotcast_email_resend_after_unknown_total` and the
//! histogram `slotcast_email_send_duration_seconds`, besides the consumer's and the outbox's.
//!
//! # Privacy
//! Logs carry notification and patient ids only. `last_error` and `EmailFailed.reason` hold the
//! SMTP reply with every address taken out.

pub mod compose;
pub mod config;
pub mod deliveries;
pub mod entities;
pub mod group_commit;
pub mod handler;
pub mod mailer;
pub mod migration;
pub mod render;
pub mod smtp_pool;
pub mod startup;

use std::time::Duration;

pub use config::Config;
pub use migration::Migrator;
pub use startup::Application;

/// The service name: durable consumer, NATS client name, default SQLite file.
pub const SERVICE: &str = "email-notifier";
/// The durable consumer of `slotcast.notify.appointment` (the confirmations); dead letters go
/// to `slotcast.deadletter.email-notifier-confirmations`.
pub const CONFIRMATIONS_DURABLE: &str = "email-notifier-confirmations";
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
pub(crate) const BATCHES_AT_ONCE: usize = 2;
