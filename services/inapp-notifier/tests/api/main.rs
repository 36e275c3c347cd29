//! Integration tests: the real application in-process against a real nats-server and a fresh
//! database (Postgres, and SQLite in `sqlite`).

mod auth;
mod batch;
mod deadletter;
mod feed;
mod helpers;
mod languages;
mod openapi;
mod ops;
mod process;
mod slots;
mod sqlite;
mod stream;
mod upgrade;
