//! Looking at the running system from outside: `/metrics`, the `notify.patient` events on NATS,
//! the consumers' backlog and the outboxes.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use futures::StreamExt as _;
use sea_orm::DatabaseConnection;
use tokio::time::Instant;
use uuid::Uuid;

/// One sample of a Prometheus text page: the value of every line, keyed by its full name and
/// labels as written (`name{label="x"}`).
pub struct Metrics(HashMap<String, f64>);

impl Metrics {
    pub async fn scrape(client: &reqwest::Client, base: &str) -> anyhow::Result<Self> {
        let text = client
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        Ok(Self::parse(&text))
    }

    fn parse(text: &str) -> Self {
        let map = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let (key, value) = l.rsplit_once(' ')?;
                Some((key.to_owned(), value.parse().ok()?))
            })
            .collect();
        Self(map)
    }

    /// The value of `key`, or the sum over every label set of a metric named `key`.
    pub fn get(&self, key: &str) -> f64 {
        if let Some(v) = self.0.get(key) {
            return *v;
        }
        let prefix = format!("{key}{{");
        self.0
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v)
            .sum()
    }
}

/// Follows `slotcast.notify.patient` (a core subscription sees what the stream stores): when the
/// first and the last notification of each batch were published, how many there were, and when
/// each slot was first offered.
#[derive(Clone, Default)]
pub struct NotifyWatch {
    inner: Arc<Mutex<Seen>>,
}

#[derive(Default)]
struct Seen {
    batches: HashMap<Uuid, BatchSeen>,
    slots: HashMap<Uuid, Instant>,
}

#[derive(Debug, Clone, Copy)]
pub struct BatchSeen {
    pub first: Instant,
    pub last: Instant,
    pub count: u64,
    /// Slots listed, summed over the batch's notifications.
    pub slots: u64,
}

impl NotifyWatch {
    pub async fn start(client: &async_nats::Client) -> anyhow::Result<Self> {
        let mut sub = client
            .subscribe("slotcast.notify.patient")
            .await
            .context("cannot subscribe to notify.patient")?;
        let watch = Self::default();
        let inner = watch.inner.clone();
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let now = Instant::now();
                let Ok(event) = serde_json::from_slice::<serde_json::Value>(&msg.payload) else {
                    continue;
                };
                let data = &event["data"];
                let Some(batch) = data["batch_id"]
                    .as_str()
                    .and_then(|b| b.parse::<Uuid>().ok())
                else {
                    continue;
                };
                let slots: Vec<Uuid> = data["slots"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s["slot_id"].as_str()?.parse().ok())
                    .collect();
                let mut seen = inner.lock().unwrap_or_else(|e| e.into_inner());
                let b = seen.batches.entry(batch).or_insert(BatchSeen {
                    first: now,
                    last: now,
                    count: 0,
                    slots: 0,
                });
                b.last = now;
                b.count += 1;
                b.slots += slots.len() as u64;
                for slot in slots {
                    seen.slots.entry(slot).or_insert(now);
                }
            }
        });
        Ok(watch)
    }

    pub fn batch(&self, batch: Uuid) -> Option<BatchSeen> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .batches
            .get(&batch)
            .copied()
    }

    /// Notifications and slots offered so far in the batches `batches`, summed.
    pub fn totals<'a>(&self, batches: impl IntoIterator<Item = &'a Uuid>) -> (u64, u64) {
        let seen = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        batches
            .into_iter()
            .filter_map(|b| seen.batches.get(b))
            .fold((0, 0), |(n, s), b| (n + b.count, s + b.slots))
    }

    /// When `slot` was first listed in a notification.
    pub fn slot_first(&self, slot: Uuid) -> Option<Instant> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .slots
            .get(&slot)
            .copied()
    }
}

/// The backlog of one durable consumer: messages not yet delivered, and delivered but not acked.
pub async fn consumer_backlog(
    js: &async_nats::jetstream::Context,
    stream: &str,
    durable: &str,
) -> anyhow::Result<(u64, usize)> {
    // No stream info request: only the consumer's is needed, and it is asked many times a second.
    let info = js
        .get_stream_no_info(stream)
        .await
        .map_err(|e| anyhow::anyhow!("stream {stream}: {e}"))?
        .consumer_info(durable)
        .await
        .map_err(|e| anyhow::anyhow!("consumer {durable} on {stream}: {e}"))?;
    Ok((info.num_pending, info.num_ack_pending))
}

/// Whether nothing is pending anywhere: no consumer has a backlog, no outbox holds an
/// unpublished row, and matching holds no offer or opening it has not sent (the coalescing
/// window).
pub async fn is_quiet(
    js: &async_nats::jetstream::Context,
    outboxes: &[DatabaseConnection],
    matching: &DatabaseConnection,
) -> anyhow::Result<bool> {
    use sea_orm::{ConnectionTrait as _, Statement};
    let offers = Statement::from_string(
        matching.get_database_backend(),
        "SELECT (SELECT count(*) FROM pending) \
         + (SELECT count(*) FROM openings WHERE due_at IS NOT NULL) AS n",
    );
    let decided = match matching.query_one_raw(offers).await? {
        Some(row) => row.try_get::<i64>("", "n")?,
        None => 0,
    };
    Ok(decided == 0
        && slotcast_test_support::in_flight(js, outboxes.iter().map(|db| ("a service", db)))
            .await?
            .is_none())
}

/// Waits until [`is_quiet`] twice in a row, up to `patience`; returns how long that took.
pub async fn wait_quiet(
    js: &async_nats::jetstream::Context,
    outboxes: &[DatabaseConnection],
    matching: &DatabaseConnection,
    patience: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut quiet = 0;
    loop {
        if is_quiet(js, outboxes, matching).await? {
            quiet += 1;
            if quiet >= 2 {
                return Ok(started.elapsed());
            }
        } else {
            quiet = 0;
        }
        if started.elapsed() > patience {
            anyhow::bail!("the system is still busy after {patience:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What Postgres's statistics say of one table so far (a backend reports them within about a
/// second of its transactions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Rows inserted, updated and deleted.
    pub written: i64,
    /// Rows read by sequential scans: a query that no index serves.
    pub scanned: i64,
}

/// [`TableStats`] of each table of `db`.
pub async fn table_stats(db: &DatabaseConnection) -> anyhow::Result<HashMap<String, TableStats>> {
    use sea_orm::{ConnectionTrait as _, Statement};
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT relname::text AS t, (n_tup_ins + n_tup_upd + n_tup_del)::bigint AS w, \
             seq_tup_read::bigint AS s FROM pg_stat_user_tables",
        ))
        .await?;
    rows.into_iter()
        .map(|r| {
            let stats = TableStats {
                written: r.try_get("", "w")?,
                scanned: r.try_get("", "s")?,
            };
            Ok((r.try_get::<String>("", "t")?, stats))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_read_by_name_and_summed_over_labels() {
        let m = Metrics::parse(
            "# TYPE x counter\nx_total 3\ny{a=\"1\"} 2\ny{a=\"2\"} 5\nz{quantile=\"0.99\"} 0.5\n",
        );
        assert_eq!(m.get("x_total"), 3.0);
        assert_eq!(m.get("y"), 7.0);
        assert_eq!(m.get("z{quantile=\"0.99\"}"), 0.5);
        assert_eq!(m.get("missing"), 0.0);
    }
}
