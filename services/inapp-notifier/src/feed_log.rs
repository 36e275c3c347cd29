//! Each patient's change log, and the wake-ups that tell open streams about it.
//!
//! Every change a patient should see live (a new notification, one whose slots changed, one
//! marked read) appends a row to `feed_events` in the transaction that makes the change. Its
//! `seq` comes from the patient's `feed_cursors` row, bumped in that same transaction: the row
//! lock this takes makes the numbers gap-free and in commit order per patient, so a reader that
//! has seen `n` loses nothing by asking for what comes after `n`. (An auto-increment would not
//! do: Postgres hands ids out before commit, so a higher one may become visible first.)
//!
//! After the commit, [`FeedSignal::changed`] wakes the streams: at once in this process, and
//! through a core NATS subject in the other replicas. A lost wake-up only delays: streams poll
//! too.

use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait as _, OnConflict, Query},
};
use slotcast_kit::retry::Backoff;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::entities::{feed_cursor, feed_event};

/// The core NATS subject (no stream keeps it) on which replicas tell each other that a
/// patient's log grew. The payload is patient ids separated by spaces, nothing else.
pub const FEED_CHANGED_SUBJECT: &str = "slotcast.inapp.feed.changed";
/// Header naming the replica that published a wake-up, so it does not wake itself twice.
const REPLICA_HEADER: &str = "Slotcast-Replica";
/// Wake-ups a slow stream may miss before it is told it lagged (and then simply looks again).
const WAKE_CAPACITY: usize = 1024;
/// While NATS is away its client buffers, then makes publishers wait: a wake-up is not worth
/// holding a request or a consumer for (the other replicas poll).
const PUBLISH_PATIENCE: Duration = Duration::from_millis(500);
/// Patient ids per wake-up message (36 bytes each, well under NATS's 1 MiB payload limit).
const WAKE_UP_IDS: usize = 1000;

/// What changed in the feed: the SSE event name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A notification was stored.
    Notification,
    /// A notification changed: one of its slots, or it was read.
    NotificationUpdated,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Notification => "notification",
            ChangeKind::NotificationUpdated => "notification.updated",
        }
    }
}

/// Appends one change to `patient_id`'s log on `txn` (which must be a transaction: the cursor's
/// row lock is what orders the log), and returns its sequence number.
pub async fn append<C: ConnectionTrait>(
    txn: &C,
    patient_id: Uuid,
    kind: ChangeKind,
    notification_id: Uuid,
    at: DateTime<Utc>,
) -> anyhow::Result<i64> {
    let bump = Query::insert()
        .into_table(feed_cursor::Entity)
        .columns([feed_cursor::Column::PatientId, feed_cursor::Column::LastSeq])
        .values_panic([patient_id.into(), 1i64.into()])
        .on_conflict(
            OnConflict::column(feed_cursor::Column::PatientId)
                .value(
                    feed_cursor::Column::LastSeq,
                    Expr::col((feed_cursor::Entity, feed_cursor::Column::LastSeq)).add(1),
                )
                .to_owned(),
        )
        .returning_col(feed_cursor::Column::LastSeq)
        .to_owned();
    let seq: i64 = txn
        .query_one(&bump)
        .await
        .context("cannot bump the feed cursor")?
        .context("the feed cursor returned no row")?
        .try_get("", "last_seq")
        .context("cannot read the feed cursor")?;
    let row = feed_event::ActiveModel {
        patient_id: Set(patient_id),
        seq: Set(seq),
        kind: Set(kind.as_str().to_owned()),
        notification_id: Set(notification_id),
        created_at: Set(at),
    };
    feed_event::Entity::insert(row)
        .exec_without_returning(txn)
        .await
        .context("cannot append to the feed log")?;
    Ok(seq)
}

/// Appends `kind` for each `(patient_id, notification_id)`, patients in a fixed order so that
/// two transactions never wait on each other's cursors. Returns the patients, each once.
pub async fn append_all<C: ConnectionTrait>(
    txn: &C,
    mut changes: Vec<(Uuid, Uuid)>,
    kind: ChangeKind,
    at: DateTime<Utc>,
) -> anyhow::Result<Vec<Uuid>> {
    changes.sort_unstable();
    changes.dedup();
    append_many(txn, &changes, kind, at).await
}

/// Appends `kind` for each `(patient_id, notification_id)` on `txn` (a transaction), a
/// patient's changes numbered in the order given, in two multi-row statements per thousand
/// patients instead of two statements per change: each patient's cursor is bumped once by the
/// number of its changes (in patient id order, so two transactions never wait on each other's
/// cursors), then the changes are inserted. Returns the patients, each once, in id order.
pub async fn append_many<C: ConnectionTrait>(
    txn: &C,
    changes: &[(Uuid, Uuid)],
    kind: ChangeKind,
    at: DateTime<Utc>,
) -> anyhow::Result<Vec<Uuid>> {
    let mut per_patient: std::collections::BTreeMap<Uuid, i64> = Default::default();
    for (patient_id, _) in changes {
        *per_patient.entry(*patient_id).or_default() += 1;
    }
    let counts: Vec<(Uuid, i64)> = per_patient.into_iter().collect();
    // The next number each patient's changes start from.
    let mut next: HashMap<Uuid, i64> = HashMap::with_capacity(counts.len());
    for chunk in slotcast_bus::rows::chunks(&counts, |_| 0) {
        let mut bump = Query::insert();
        bump.into_table(feed_cursor::Entity)
            .columns([feed_cursor::Column::PatientId, feed_cursor::Column::LastSeq]);
        for &(patient_id, n) in chunk {
            bump.values_panic([patient_id.into(), n.into()]);
        }
        bump.on_conflict(
            OnConflict::column(feed_cursor::Column::PatientId)
                .value(
                    feed_cursor::Column::LastSeq,
                    Expr::col((feed_cursor::Entity, feed_cursor::Column::LastSeq))
                        .add(Expr::col(("excluded", feed_cursor::Column::LastSeq))),
                )
                .to_owned(),
        )
        .returning(
            Query::returning()
                .columns([feed_cursor::Column::PatientId, feed_cursor::Column::LastSeq]),
        );
        for row in txn
            .query_all(&bump)
            .await
            .context("cannot bump the feed cursors")?
        {
            let patient_id: Uuid = row
                .try_get("", "patient_id")
                .context("cannot read the feed cursor")?;
            let last: i64 = row
                .try_get("", "last_seq")
                .context("cannot read the feed cursor")?;
            let n = chunk
                .iter()
                .find_map(|&(p, n)| (p == patient_id).then_some(n))
                .context("the feed cursor of another patient came back")?;
            next.insert(patient_id, last - n + 1);
        }
    }
    let mut rows = Vec::with_capacity(changes.len());
    for &(patient_id, notification_id) in changes {
        let seq = next
            .get_mut(&patient_id)
            .context("a feed cursor was not bumped")?;
        rows.push(feed_event::ActiveModel {
            patient_id: Set(patient_id),
            seq: Set(*seq),
            kind: Set(kind.as_str().to_owned()),
            notification_id: Set(notification_id),
            created_at: Set(at),
        });
        *seq += 1;
    }
    for chunk in slotcast_bus::rows::chunks(&rows, |_| 32) {
        feed_event::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await
            .context("cannot append to the feed log")?;
    }
    Ok(counts
        .into_iter()
        .map(|(patient_id, _)| patient_id)
        .collect())
}

/// The last sequence number of `patient_id`'s log (0 when it is empty).
pub async fn last_seq<C: ConnectionTrait>(db: &C, patient_id: Uuid) -> anyhow::Result<i64> {
    let cursor = feed_cursor::Entity::find_by_id(patient_id)
        .one(db)
        .await
        .context("cannot read the feed cursor")?;
    Ok(cursor.map_or(0, |c| c.last_seq))
}

/// Up to `limit` changes of `patient_id` after `seq`, in order.
pub async fn after<C: ConnectionTrait>(
    db: &C,
    patient_id: Uuid,
    seq: i64,
    limit: u64,
) -> anyhow::Result<Vec<feed_event::Model>> {
    feed_event::Entity::find()
        .filter(feed_event::Column::PatientId.eq(patient_id))
        .filter(feed_event::Column::Seq.gt(seq))
        .order_by_asc(feed_event::Column::Seq)
        .limit(limit)
        .all(db)
        .await
        .context("cannot read the feed log")
}

/// Wakes the open streams of patients whose log grew. Cheap to clone.
#[derive(Clone)]
pub struct FeedSignal {
    local: broadcast::Sender<Uuid>,
    nats: Option<async_nats::Client>,
    replica: Arc<str>,
}

impl FeedSignal {
    /// Wakes this process's streams, and the other replicas' through NATS.
    pub fn new(nats: async_nats::Client) -> Self {
        Self {
            nats: Some(nats),
            ..Self::local_only()
        }
    }

    /// Wakes this process's streams only.
    pub fn local_only() -> Self {
        Self {
            local: broadcast::channel(WAKE_CAPACITY).0,
            nats: None,
            replica: Uuid::now_v7().to_string().into(),
        }
    }

    /// The wake-ups from now on: the ids of patients whose log grew.
    pub fn subscribe(&self) -> broadcast::Receiver<Uuid> {
        self.local.subscribe()
    }

    /// Tells every replica's streams that these patients' logs grew. Call it after the commit.
    pub async fn changed(&self, patients: &[Uuid]) {
        for &patient_id in patients {
            // No receiver just means no stream is open here.
            let _ = self.local.send(patient_id);
        }
        let Some(nats) = &self.nats else {
            return;
        };
        // One message per thousand patients (ids separated by spaces), all under one timeout:
        // a slot offered to many patients must not wait on NATS once per patient.
        let publish = async {
            for chunk in patients.chunks(WAKE_UP_IDS) {
                let ids: Vec<String> = chunk.iter().map(Uuid::to_string).collect();
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(REPLICA_HEADER, &*self.replica);
                nats.publish_with_headers(FEED_CHANGED_SUBJECT, headers, ids.join(" ").into())
                    .await?;
            }
            Ok::<(), async_nats::PublishError>(())
        };
        match tokio::time::timeout(PUBLISH_PATIENCE, publish).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "feed wake-up not published; other replicas will poll");
            }
            Err(_) => {
                tracing::warn!("feed wake-up not published in time; other replicas will poll");
            }
        }
    }

    /// Passes the other replicas' wake-ups to this process's streams until `shutdown`.
    pub async fn listen(self, shutdown: CancellationToken) {
        let Some(nats) = self.nats.clone() else {
            return;
        };
        let mut pauses =
            Backoff::new(Duration::from_millis(200), Duration::from_secs(5)).attempts();
        while !shutdown.is_cancelled() {
            let mut wake_ups = match nats.subscribe(FEED_CHANGED_SUBJECT).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot subscribe to feed wake-ups yet");
                    tokio::select! {
                        _ = tokio::time::sleep(pauses.next_delay()) => {},
                        _ = shutdown.cancelled() => {},
                    }
                    continue;
                }
            };
            pauses.reset();
            loop {
                let message = tokio::select! {
                    m = wake_ups.next() => m,
                    _ = shutdown.cancelled() => break,
                };
                let Some(message) = message else {
                    // The client is closing; try again unless we are stopping.
                    break;
                };
                let from_here = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(REPLICA_HEADER))
                    .is_some_and(|r| r.as_str() == &*self.replica);
                if from_here {
                    continue;
                }
                let ids = std::str::from_utf8(&message.payload).unwrap_or_default();
                for id in ids.split_whitespace() {
                    match id.parse::<Uuid>() {
                        Ok(patient_id) => {
                            let _ = self.local.send(patient_id);
                        }
                        Err(_) => {
                            tracing::warn!("ignoring a feed wake-up that is not a patient id")
                        }
                    }
                }
            }
            let _ = wake_ups.unsubscribe().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_up_reaches_every_stream_of_this_process() {
        let signal = FeedSignal::local_only();
        let (mut a, mut b) = (signal.subscribe(), signal.subscribe());
        let patient = Uuid::now_v7();
        signal.changed(&[patient]).await;
        assert_eq!(a.recv().await.unwrap(), patient);
        assert_eq!(b.recv().await.unwrap(), patient);
    }
}
