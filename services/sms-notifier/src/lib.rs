//! The SMS notifier: tells a patient by text message about appointment times that fit them.
//!
//! It consumes `slotcast.notify.patient` (durable consumer `sms-notifier`) and sends one text
//! per notification whose patient has a phone number and consented (`channels.sms`), through
//! the gateway `SMS_URL` names, unless the number texted STOP. It answers what patients text
//! back: STOP, START, HELP, and a yes or a number that books. It owns the delivery log (`sms_deliveries`, keyed by the
//! notification id), takes the gateway's delivery reports over HTTP, and publishes each outcome
//! through its outbox (`slotcast.delivery.sms.sent`, `.delivered` or `.failed`). Configuration
//! and delivery guarantees are in the README.
//!
//! # Layout
//! - [`config`]: [`Config`] from the environment.
//! - [`startup`]: [`Application`], the consumer, the outbox relay and the HTTP server.
//! - [`entities`] and [`migration`]: the `sms_deliveries`, `sms_inbound` and `sms_opt_outs`
//!   tables.
//! - [`deliveries`]: the delivery log's state changes, each written with its outbox event.
//! - [`handler`]: the consumer's handler: claim, compose, send, record.
//! - [`text`]: the message in the patient's language, and its length in GSM-7 or UCS-2
//!   segments.
//! - [`gateway`]: the [`gateway::Gateway`] trait and its implementations (Kannel, Twilio,
//!   files); [`gateway::twilio`]: Twilio's Messages API and the signature on what it posts
//!   back.
//! - [`replies`]: a text from a patient answered: STOP, START, HELP, or a yes or a number
//!   that books through [`scheduling`]; [`keywords`] reads what it asks, [`inbox`] keeps each
//!   text and the numbers that texted STOP.
//! - [`routes`]: the texts' short links, the texts patients send, the delivery reports (Kannel's
//!   by GET, Twilio's signed POSTs), and the ops endpoints.
//!
//! # Metrics
//! `slotcast_sms_sent_total`, `slotcast_sms_failed_total{permanent}`,
//! `slotcast_sms_retried_total`, `slotcast_sms_skipped_total{reason}`,
//! `slotcast_sms_replies_total{asked,outcome}`, `slotcast_sms_deferred_total` (quiet hours),
//! `slotcast_sms_resend_after_unknown_total` (the crash window),
//! `slotcast_sms_reports_total{status}` and `slotcast_sms_segments_total`, besides the
//! consumer's and the outbox's.
//!
//! # Privacy
//! Logs carry notification and patient ids only, never a phone number or a text.

pub mod config;
pub mod deliveries;
pub mod entities;
pub mod gateway;
pub mod handler;
pub mod inbox;
pub mod keywords;
pub mod migration;
pub mod replies;
pub mod routes;
pub mod scheduling;
pub mod startup;
pub mod text;

pub use config::{Config, SERVICE};
pub use migration::Migrator;
pub use startup::{Application, openapi};
