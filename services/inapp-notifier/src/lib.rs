//! `inapp-notifier`: each patient's in-app notification feed.
//!
//! It owns the feed: one notification per `slotcast.notify.patient` event, with the slots it
//! offers, and whether each has been booked since (from `slotcast.scheduling.slot.booked`).
//! Patients (and staff) read the feed and mark notifications read over HTTP. Storing a
//! notification publishes `slotcast.delivery.inapp.stored` through the transactional outbox.
//!
//! # Layout
//! - [`config`]: [`Config`] from the environment.
//! - [`startup`]: [`Application`]: connects the database (running [`migration`]) and NATS,
//!   binds the listener, then runs the HTTP server, both consumers and the outbox relay.
//! - [`consumers`]: the durable consumers and their handlers, which call [`store`].
//! - [`store`]: the write side: a notification and its outbox event in one transaction; marking
//!   a booked slot taken. [`wording`] writes the English title and body.
//! - [`feed`]: the read side: the feed as the API shows it, availability derived on read;
//!   marking read.
//! - [`routes`]: the HTTP handlers and their auth; ops endpoints come from `slotcast_kit`.
//! - [`entities`] and [`migration`]: the `notifications` and `notification_slots` tables.

pub mod config;
pub mod consumers;
pub mod entities;
pub mod feed;
pub mod migration;
pub mod routes;
pub mod startup;
pub mod store;
pub mod wording;

pub use config::Config;
pub use startup::Application;
