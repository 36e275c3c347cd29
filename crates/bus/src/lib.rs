//! The JetStream layer every slotcast service shares.
//!
//! # Layout
//! - [`connect`] and [`ensure_streams`]: a client and the catalogue's streams, created or
//!   updated idempotently at start.
//! - [`consumer`]: durable pull consumers and the consume loop (ack, nak with delay, term to the
//!   dead-letter subject), which survives reconnects and a deleted consumer.
//! - [`outbox`]: the transactional outbox: write an event in the same database transaction as
//!   the state change, and a relay that publishes rows in order and marks them sent only after
//!   JetStream's ack.
//! - [`encoded`]: an event as an outbox row, before it is written.
//! - [`bundle`]: many events in one outbox row, written and marked once.
//! - [`order`]: the order stamp: each order key's events numbered by the outbox, so a consumer
//!   can apply one key's events in order while it applies many keys' at once.
//! - [`rows`]: multi-row statements cut to a size that reaches the database in one piece.

pub mod bundle;
pub mod consumer;
pub mod encoded;
pub mod order;
pub mod outbox;
pub mod rows;

use std::time::Duration;

use async_nats::{
    HeaderMap,
    jetstream::{self, stream},
};
use slotcast_events::streams;
use slotcast_kit::retry::Backoff;

pub use async_nats::jetstream::Context as JetStream;

/// How long streams keep events: long enough for a new consumer to replay a day of them.
pub const STREAM_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Dead letters are kept as long as the events they copy, no longer: a dead `notify.patient`
/// holds a patient's email address and booking links, which must not outlive the original.
/// An operator is told at once (`slotcast_dead_letters_total`) and has a week to act.
pub const DEADLETTER_MAX_AGE: Duration = STREAM_MAX_AGE;
/// The window in which a re-publish with the same `Nats-Msg-Id` is dropped.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The servers of a `NATS_URL`: one URL, or several separated by commas (the seed nodes of a
/// cluster; the client also learns the others from the server it reaches).
pub fn server_addrs(url: &str) -> anyhow::Result<Vec<async_nats::ServerAddr>> {
    let servers = url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<async_nats::ServerAddr>()
                .map_err(|e| anyhow::anyhow!("NATS_URL: {s:?} is not a NATS URL: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!servers.is_empty(), "NATS_URL names no server");
    Ok(servers)
}

/// Connects to NATS (`url` as [`server_addrs`] reads it), retrying for up to `patience` while
/// the server comes up.
pub async fn connect(
    url: &str,
    name: &str,
    patience: Duration,
) -> anyhow::Result<async_nats::Client> {
    let servers = server_addrs(url)?;
    let deadline = tokio::time::Instant::now() + patience;
    let mut retries = Backoff::new(Duration::from_millis(100), Duration::from_secs(2)).attempts();
    loop {
        let delay = retries.next_delay();
        let opts = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(Duration::from_secs(3))
            .max_reconnects(None);
        match opts.connect(servers.clone()).await {
            Ok(client) => return Ok(client),
            Err(e) if tokio::time::Instant::now() + delay < deadline => {
                tracing::warn!(error = %e, url, "NATS not reachable yet, retrying");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(anyhow::anyhow!("cannot connect to NATS at {url}: {e}")),
        }
    }
}

/// The stream configurations of the catalogue, with `replicas` (1 on one node, 3 in a cluster).
pub fn stream_configs(replicas: usize) -> Vec<stream::Config> {
    let base = |name: &str, subject: &str, max_age: Duration| stream::Config {
        name: name.to_owned(),
        subjects: vec![subject.to_owned()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_age,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: replicas.max(1),
        ..Default::default()
    };
    vec![
        base(
            streams::SCHEDULING,
            streams::SCHEDULING_SUBJECTS,
            STREAM_MAX_AGE,
        ),
        base(streams::NOTIFY, streams::NOTIFY_SUBJECTS, STREAM_MAX_AGE),
        base(
            streams::DELIVERY,
            streams::DELIVERY_SUBJECTS,
            STREAM_MAX_AGE,
        ),
        base(
            streams::DEADLETTER,
            streams::DEADLETTER_SUBJECTS,
            DEADLETTER_MAX_AGE,
        ),
    ]
}

/// Creates every stream of the catalogue, or updates it to this configuration. Safe to run from
/// every service at every start.
pub async fn ensure_streams(js: &JetStream, replicas: usize) -> anyhow::Result<()> {
    for config in stream_configs(replicas) {
        let name = config.name.clone();
        js.create_or_update_stream(config)
            .await
            .map_err(|e| anyhow::anyhow!("cannot create or update stream {name}: {e}"))?;
    }
    Ok(())
}

/// Connects, and makes sure the streams exist, retrying both for up to a minute while NATS
/// comes up. What each service does at start.
pub async fn start(
    url: &str,
    name: &str,
    replicas: usize,
) -> anyhow::Result<(async_nats::Client, JetStream)> {
    let patience = Duration::from_secs(60);
    let deadline = tokio::time::Instant::now() + patience;
    let client = connect(url, name, patience).await?;
    let js = jetstream::new(client.clone());
    // A cluster that has just formed (or lost a node) may not place replicated streams at once.
    let mut retries = Backoff::new(Duration::from_millis(200), Duration::from_secs(5)).attempts();
    loop {
        let delay = retries.next_delay();
        match ensure_streams(&js, replicas).await {
            Ok(()) => return Ok((client, js)),
            Err(e) if tokio::time::Instant::now() + delay < deadline => {
                tracing::warn!(error = %format!("{e:#}"), "streams not ready yet, retrying");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// What every service connects to at start: its database (migrated), NATS (with the streams
/// created), and its HTTP listener.
pub struct Foundation {
    pub db: sea_orm::DatabaseConnection,
    pub nats: async_nats::Client,
    pub js: JetStream,
    pub listener: tokio::net::TcpListener,
}

impl Foundation {
    /// Connects and migrates the database with `M`'s migrations, connects NATS as `service`
    /// and creates or updates the streams, and binds `common.listen_addr` (port 0 in tests).
    pub async fn connect<M: sea_orm_migration::MigratorTrait>(
        common: &slotcast_kit::config::Common,
        service: &str,
    ) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let db = slotcast_kit::db::connect_and_migrate::<M>(
            &common.database_url,
            common.db_max_connections,
        )
        .await
        .context("database not ready")?;
        let (nats, js) = start(&common.nats_url, service, common.stream_replicas)
            .await
            .context("NATS not ready")?;
        let listener = tokio::net::TcpListener::bind(common.listen_addr)
            .await
            .with_context(|| format!("cannot listen on {}", common.listen_addr))?;
        Ok(Self {
            db,
            nats,
            js,
            listener,
        })
    }
}

/// Headers for a published event: `Nats-Msg-Id` (the CloudEvent id) and the trace context.
pub fn headers(event_id: &str, trace: &std::collections::HashMap<String, String>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, event_id);
    for (k, v) in trace {
        headers.insert(k.as_str(), v.as_str());
    }
    headers
}

/// Publishes `payload` on `subject` and waits for the stream's ack.
pub async fn publish(
    js: &JetStream,
    subject: &str,
    event_id: &str,
    payload: Vec<u8>,
) -> anyhow::Result<()> {
    let trace = slotcast_kit::telemetry::current_context_headers();
    js.publish_with_headers(
        subject.to_owned(),
        headers(event_id, &trace),
        payload.into(),
    )
    .await?
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_url_takes_one_server_or_a_comma_separated_list() {
        assert_eq!(server_addrs("nats://127.0.0.1:4222").unwrap().len(), 1);
        let cluster = server_addrs("nats://a:4222, nats://b:4222,nats://c:4222").unwrap();
        assert_eq!(cluster.len(), 3);
        assert_eq!(cluster[1].host(), "b");
        assert!(server_addrs("").is_err());
        assert!(server_addrs(" , ").is_err());
        assert!(server_addrs("nats://a:4222,http://[::1").is_err());
    }
}
