//! Integration tests of the email notifier against real servers: nats-server, Postgres (or
//! SQLite), and an SMTP server that captures mail.

mod batch;
mod delivery;
mod embedded;
mod failures;
mod helpers;
mod languages;
mod ops;
mod preferences;
mod process;
mod records;
mod window;
