//! Matching against a real nats-server and a fresh Postgres database: scheduling events in,
//! `notify.patient` out.

mod decisions;
mod helpers;
mod history;
mod migrations;
mod openapi;
mod order;
mod policy;
mod process;
mod rows;
mod steps;
