//! Real servers for integration tests and the benchmark.
//!
//! Every test gets its own servers, so tests run in parallel without sharing state:
//!
//! - [`NatsServer`] runs `nats-server -js` on a random port with a temporary store; it can be
//!   killed like a crash and restarted on the same port and store. [`NatsCluster`] runs a
//!   three-node JetStream cluster whose nodes can be killed and restarted one by one.
//! - [`TestDatabase`] creates a fresh Postgres database (dropped again on drop) or a temporary
//!   SQLite file.
//! - [`SmtpServer`] is a small SMTP server that captures every accepted message as a
//!   [`CapturedMail`] and can be told to fail ([`ReplyMode`]).
//! - [`KannelGateway`] runs a real Kannel SMS gateway (`bearerbox`, `smsbox`) with Kannel's fake
//!   SMSC played by the harness, which records every text ([`Sms`]) and reports it delivered.
//! - [`TwilioStandIn`] stands in for Twilio's Messages API, which cannot be reached from here:
//!   it takes messages with the account's credentials ([`TwilioMessage`]), reports them with
//!   signed status callbacks ([`StatusCallback`], [`twilio_signature`]), can be told to fail,
//!   and posts patients' texts to a webhook, signed.
//! - [`JwksServer`] serves an identity provider's key set made of [`SigningKey`]s generated at
//!   test time, counts its fetches, and can be stopped and started again on the same port.
//! - [`run_until_ready_then_sigterm`] runs a service's binary and stops it as an orchestrator would.
//! - [`init_tracing`] turns on log output when `TEST_LOG` is set; [`free_port`] finds a port.
//! - [`poll`] and [`eventually`] wait for a condition without a fixed sleep; [`in_flight`] says
//!   what the system still has to do (consumers, outboxes) before it has settled.
//!
//! # Layout
//! - `nats.rs`: the nats-server process, single and clustered.
//! - `database.rs`: Postgres and SQLite test databases.
//! - `process.rs`: a service's real binary, started and stopped with SIGTERM.
//! - `jwks.rs`: the identity provider's key set and its signing keys.
//! - `kannel.rs`: the Kannel gateway and its fake SMSC.
//! - `twilio.rs`: the stand-in for Twilio's Messages API and its webhooks.
//! - `smtp.rs`: the SMTP server; `mime.rs`: header and body decoding for captured mail.
//! - `settled.rs`: [`in_flight`].

mod database;
mod jwks;
mod kannel;
mod mime;
mod nats;
mod process;
mod settled;
mod smtp;
mod twilio;

pub use database::TestDatabase;
pub use jwks::{JwksServer, SigningKey};
pub use kannel::{DENIED_PREFIX, KannelGateway, Sms};
pub use mime::Part as MailPart;
pub use nats::{NatsCluster, NatsServer};
pub use process::run_until_ready_then_sigterm;
pub use settled::in_flight;
pub use smtp::{CapturedMail, ReplyMode, SmtpServer};
pub use twilio::{StatusCallback, TWILIO_NUMBER, TwilioMessage, TwilioStandIn, twilio_signature};

use std::net::{Ipv4Addr, TcpListener};
use std::sync::Once;

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;

/// Initialises tracing for tests, once per process.
///
/// Silent unless the environment variable `TEST_LOG` is set; then it logs through the test
/// writer (so `cargo test` captures it per test) with the filter from `RUST_LOG`, or `info`.
pub fn init_tracing() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_none() {
            return;
        }
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        // Another subscriber may already be installed (by the test itself): keep that one.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// Another process may take it before you bind it; prefer binding port 0 yourself where the
/// code under test allows it.
///
/// # Panics
/// If the operating system cannot bind 127.0.0.1:0 at all, which leaves no test able to run.
pub fn free_port() -> u16 {
    try_free_port().unwrap_or_else(|e| panic!("{e:#}"))
}

/// How often [`poll`] looks again.
const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// Calls `check` every 50 ms until it gives a value; an error naming `what` once `within` has
/// passed, or at `check`'s first error.
pub async fn poll<T, F, Fut>(
    within: std::time::Duration,
    what: &str,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// [`poll`] for a check that cannot fail, as tests use it: panics once `within` has passed.
pub async fn eventually<T, F, Fut>(within: std::time::Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    poll(within, what, || {
        let checked = check();
        async move { Ok(checked.await) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"))
}

/// [`free_port`], with an error in place of the panic.
pub fn try_free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("cannot bind 127.0.0.1:0 to find a free port")?;
    Ok(listener.local_addr()?.port())
}
