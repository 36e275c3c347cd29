//! `inapp-notifier`: each patient's in-app notification feed.
//!
//! It owns the feed: one notification per `slotcast.notify.patient` event, with the slots it
//! offers, and each slot's state as the slot events (`slotcast.scheduling.slot.>`) leave it,
//! whatever order the two arrive in. Patients (and staff) read the feed, follow its changes as
//! Server-Sent Events, and mark notifications read over HTTP. Storing a notification publishes
//! `slotcast.delivery.inapp.stored` through the transactional outbox.
//!
//! # Layout
//! - [`config`]: [`Config`] from the environment.
//! - [`startup`]: [`Application`]: connects the database (running [`migration`]) and NATS,
//!   binds the listener, then runs the HTTP server, both consumers, the outbox relay and the
//!   listener for other replicas' feed wake-ups.
//! - [`consumers`]: the durable consumers and their handlers, which call [`store`].
//! - [`store`]: the write side: a notification, its feed log entry and its outbox event in one
//!   transaction; a slot event applied in stream order, with a log entry for each notification
//!   it changes. [`wording`] writes the title and body in the patient's language.
//! - [`slots`]: a slot's stored state, read from the events, and its status as a patient sees it.
//! - [`feed`]: the read side: the feed as the API shows it, availability derived on read;
//!   marking read.
//! - [`feed_log`]: each patient's change log (gap-free sequence numbers, in commit order) and
//!   the wake-ups, in-process and over core NATS, that tell open streams it grew.
//! - [`stream`]: the log as Server-Sent Events: replay after `Last-Event-ID`, then live.
//! - [`routes`]: the HTTP handlers, their auth and their OpenAPI operations; ops endpoints come
//!   from `slotcast_kit`.
//! - [`entities`] and [`migration`]: the `notifications`, `notification_slots`, `slot_states`,
//!   `feed_cursors` and `feed_events` tables.

pub mod config;
pub mod consumers;
pub mod entities;
pub mod feed;
pub mod feed_log;
pub mod migration;
pub mod routes;
pub mod slots;
pub mod startup;
pub mod store;
pub mod stream;
pub mod wording;

pub use config::Config;
pub use startup::{Application, openapi};
