//! Integration tests of the scheduling API against a real nats-server and a fresh Postgres
//! database (SQLite in `sqlite.rs`).

mod appointment_links;
mod appointments;
mod auth;
mod helpers;
mod holds;
mod input;
mod languages;
mod limits;
mod offers;
mod openapi;
mod pages;
mod patients;
mod policy;
mod preferences;
mod process;
mod slots;
mod sqlite;
mod waitlist;
