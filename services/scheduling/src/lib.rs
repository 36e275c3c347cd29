//! The scheduling service: the system of record and the public HTTP API.
//!
//! It owns practitioners, patients, slots, appointments and waiting-list entries. Every state
//! change writes its event into the outbox table in the same transaction; the outbox relay
//! publishes it to JetStream and marks it sent only after the stream acknowledged it.
//!
//! # Notification policy
//! - Each practitioner has an offering policy (`broadcast` or `waves`), or follows the
//!   configured default ([`Policy::offer_policy`], `OFFER_POLICY`). `slot.created` and
//!   `slot.released` carry the effective policy at the time.
//! - Under `waves`, a new or freed slot starts `held` by a *pre-hold* (no hold, no patients,
//!   lapsing after `WAVES_FIRST_HOLD_SECS`): nobody books it until matching places the first
//!   wave's hold (`PUT /v1/holds/{id}`), or the pre-hold lapses should matching be down.
//! - A slot whose `held_until` has passed counts as `available` everywhere (listing, filters,
//!   booking, claims): no background job clears holds. See [`routes`] for the hold rules.
//! - Waiting-list entries have a priority (`urgent` before `routine`) and expire
//!   (`WAITLIST_DEFAULT_TTL_DAYS`); patients have email and in-app preferences, changed through
//!   the API or through the signed links of an email (preferences page, RFC 8058 one-click).
//!
//! # Layout
//! - [`domain`]: request bodies parsed into checked domain values (422 on bad input).
//! - [`booking`], [`claims`], [`waiting`], [`holds`]: the use-cases the routes call: taking and
//!   booking a slot, moving up, freeing a slot for the next in line; claiming an offer through
//!   its link; closing waiting-list entries; placing and letting go the holds of `waves`.
//! - [`confirmations`]: the confirmation of a booking, move or cancellation, written into the
//!   outbox by the use-cases in the transaction of the change, with its signed links.
//! - [`availability`]: a slot's status at a moment, and how a slot that opens starts.
//! - [`store`]: events into the outbox and row locks, inside the caller's transaction.
//! - [`pages`]: the security headers of every HTML page.
//! - [`entities`] and [`migration`]: the tables, the same on Postgres and SQLite.
//! - [`routes`]: one module per resource; each exposes `api()`, its routes registered with
//!   their OpenAPI operations (`#[utoipa::path]`), merged in [`routes::api`].
//! - [`error`]: the API error type, mapped once to problem+json.
//! - [`config`]: [`Config`] and the notification [`Policy`] from the environment.
//! - [`startup`]: the [`Application`] that wires the HTTP server, the database and the outbox
//!   relay together and stops them on a token, and the handlers' [`AppState`].

pub mod availability;
pub mod booking;
pub mod claims;
pub mod config;
pub mod confirmations;
pub mod domain;
pub mod entities;
pub mod error;
pub mod holds;
pub mod migration;
pub mod pages;
pub mod routes;
pub mod startup;
pub mod store;
pub mod waiting;

pub use config::{Config, Policy};
pub use startup::{AppState, Application, openapi};

/// The CloudEvent `source` of everything this service publishes.
pub const SOURCE: &str = slotcast_events::sources::SCHEDULING;
