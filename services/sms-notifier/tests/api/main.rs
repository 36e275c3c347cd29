//! The sms-notifier from outside: real nats-server, Postgres and Kannel (or the Twilio
//! stand-in) per test.

mod helpers;
mod inbound;
mod openapi;
mod reports;
mod sending;
mod twilio;
