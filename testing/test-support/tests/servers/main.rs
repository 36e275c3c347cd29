//! The test-support servers proven against the real things: nats-server, Postgres, and SMTP
//! conversations over raw TCP and through lettre.

mod database;
mod nats;
mod smtp;
