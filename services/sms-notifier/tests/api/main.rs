//! The sms-notifier from outside: real nats-server, Postgres and Kannel per test.

mod helpers;
mod inbound;
mod openapi;
mod reports;
mod sending;
