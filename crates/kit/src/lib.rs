//! The service kit: what every slotcast service needs around its own logic.
//!
//! # Layout
//! - [`config`]: reading the 12-factor environment into typed settings.
//! - [`telemetry`]: tracing, optional OTLP export, W3C trace-context propagation.
//! - [`ops`]: `/healthz`, `/readyz` and `/metrics`.
//! - [`db`]: connecting to Postgres or SQLite and running a service's migrations.
//! - [`email`]: the one check of an email address, for the API and the email notifier.
//! - [`auth`]: bearer JWTs with the three roles (HS256, and an identity provider's keys by JWKS),
//!   and minting dev tokens.
//! - [`problem`]: RFC 9457 `application/problem+json` errors and a JSON extractor that uses them.
//! - [`limits`]: abuse limits per client address (failed authentication, link pages).
//! - [`openapi`]: the frame of a service's OpenAPI document, its problem responses, and serving
//!   it at `/openapi.json` with a Swagger UI at `/docs`.
//! - [`http`]: serving a router with the common layers and graceful shutdown.
//! - [`shutdown`]: SIGTERM / Ctrl-C as a cancellation token.
//! - [`time`]: timestamps as the APIs take them, RFC 3339 and nothing looser.
//! - [`retry`]: the one retry policy, [`retry::Backoff`].

pub mod auth;
pub mod config;
pub mod db;
pub mod email;
pub mod http;
pub mod limits;
pub mod openapi;
pub mod ops;
pub mod problem;
pub mod retry;
pub mod shutdown;
pub mod telemetry;
pub mod time;

pub use problem::{ApiJson, Problem};
