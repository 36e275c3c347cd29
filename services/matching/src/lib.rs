//! The matching service: decides who is told about which opening.
//!
//! It keeps its own projection of the scheduling events (practitioners, patients, slots,
//! waiting-list entries; it never reads scheduling's tables). When slots open (`slot.created`,
//! `slot.released`) it tells every patient whose entry fits, once per slot, with one
//! `notify.patient` per patient listing every slot of the opening that fits them. Slots posted
//! together share a `batch_id`; the opening is complete when all `batch_size` of them are in,
//! and decided when its coalescing window ends.
//!
//! # Layout
//! - [`config`]: [`Config`] from the environment.
//! - [`startup`]: the [`Application`] (consumer, workers, outbox relay, ops and staff
//!   endpoints) and the consumer's settings.
//! - [`vocabulary`]: slot status, outcome, reason, wave status, history kind; enums stored as
//!   strings.
//! - [`fit`]: the pure rules of who fits which slot, and the fair order (unit-tested).
//! - [`eligibility`]: the one rule of who is told now, later or not at all, and why (pure,
//!   unit-tested).
//! - [`policy`]: the policy's settings (`PolicyConfig`).
//! - [`inbox`]: the scheduling events, decoded once into [`inbox::Input`].
//! - [`projector`]: applying events to the projection, many practitioners at once in lanes, each
//!   event in a transaction with the opening it completes.
//! - [`apply`]: applying one event to the projection, a function per event; the opening it
//!   completes is settled there (due when its window ends, or its first wave now).
//! - [`fence`]: one practitioner's (or patient's) events applied in the order of their stamps.
//! - [`projection`]: deciding an opening (who is told, in the fair order), and the lookups and
//!   records the workers share.
//! - [`dispatch`]: the [`dispatch::Dispatcher`], due openings and offers to `notify.patient`
//!   messages.
//! - [`waves`]: the [`waves::WaveRunner`], the `waves` policy's timers.
//! - [`holds`]: scheduling's hold API, as the waves call it.
//! - [`passes`]: the loop the dispatcher and the wave runner run, and what wakes them.
//! - [`history`]: `GET /v1/slots/{id}/offers`, a slot's offer history for staff.
//! - [`explain`]: `GET /v1/slots/{id}/decisions`, why each patient was or was not told.
//! - [`entities`]: matching's own tables.
//! - [`migration`]: their schema migrations.

pub mod apply;
pub mod config;
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
pub mod startup;
pub mod vocabulary;
pub mod waves;

pub use config::Config;
pub use startup::{Application, BATCHES_AT_ONCE, MAX_BATCH, consumer_spec, openapi};

/// The CloudEvent `source` of what matching publishes.
pub const SOURCE: &str = slotcast_events::sources::MATCHING;
/// The durable consumer on the scheduling stream.
pub const DURABLE: &str = "matching";
