//! The live feed: a patient's change log as Server-Sent Events.
//!
//! Each event is one entry of the log ([`crate::feed_log`]): `id` is its sequence number,
//! `event` its kind, `data` the notification as the feed shows it when the event is sent. A
//! stream first sends what the log holds after its starting point, then waits: for a wake-up
//! naming its patient, or for the poll, whichever comes first, and sends what is new. It ends
//! when the service shuts down.

use std::{collections::VecDeque, convert::Infallible, time::Duration};

use anyhow::Context as _;
use axum::response::sse::Event;
use futures::Stream;
use sea_orm::DatabaseConnection;
use tokio::{sync::broadcast, time::Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{feed, feed_log};

/// How often a stream looks at the log without being woken: a lost wake-up delays this much.
pub const POLL: Duration = Duration::from_secs(5);
/// How long a stream waits after failing to read the log.
const RETRY: Duration = Duration::from_secs(2);
/// Log entries read at once.
const BATCH: u64 = 100;

/// Where a stream starts: what a client sent as `Last-Event-ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastEventId(pub i64);

/// A `Last-Event-ID` that is not one of ours.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Last-Event-ID must be the id of an event of this stream (a whole number)")]
pub struct InvalidLastEventId;

impl LastEventId {
    pub fn parse(value: &[u8]) -> Result<Self, InvalidLastEventId> {
        let text = std::str::from_utf8(value).map_err(|_| InvalidLastEventId)?;
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidLastEventId);
        }
        text.parse::<i64>()
            .map(LastEventId)
            .map_err(|_| InvalidLastEventId)
    }
}

/// The events of `patient_id`'s log after `after`, then live ones, until `shutdown`. `wake`
/// must have been subscribed before `after` was read, so that nothing slips between.
pub fn events(
    db: DatabaseConnection,
    patient_id: Uuid,
    after: i64,
    wake: broadcast::Receiver<Uuid>,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let state = FeedStream {
        db,
        patient_id,
        after,
        wake: Some(wake),
        shutdown,
        pending: VecDeque::new(),
        look: true,
        next_poll: Instant::now() + POLL,
    };
    futures::stream::unfold(state, |mut state| async move {
        let event = state.next().await?;
        Some((Ok(event), state))
    })
}

struct FeedStream {
    db: DatabaseConnection,
    patient_id: Uuid,
    /// The last sequence number sent (or skipped).
    after: i64,
    /// `None` once the channel closed: then only the poll is left.
    wake: Option<broadcast::Receiver<Uuid>>,
    shutdown: CancellationToken,
    /// Read from the log, not sent yet.
    pending: VecDeque<Event>,
    /// Whether the log may hold more than was read.
    look: bool,
    next_poll: Instant,
}

impl FeedStream {
    /// The next event, or `None` at shutdown.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if self.shutdown.is_cancelled() {
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.look {
                self.next_poll = Instant::now() + POLL;
                match self.read().await {
                    Ok(more) => self.look = more,
                    Err(e) => {
                        tracing::warn!(patient_id = %self.patient_id, error = %format!("{e:#}"), "cannot read the feed log; will retry");
                        self.next_poll = Instant::now() + RETRY;
                        self.look = false;
                    }
                }
                continue;
            }
            let wake = self.wake.as_mut();
            let woke = tokio::select! {
                _ = self.shutdown.cancelled() => return None,
                _ = tokio::time::sleep_until(self.next_poll) => None,
                woke = async move {
                    match wake {
                        Some(wake) => wake.recv().await,
                        None => std::future::pending().await,
                    }
                } => Some(woke),
            };
            match woke {
                None => self.look = true,
                Some(Ok(patient_id)) => self.look = patient_id == self.patient_id,
                // Missed some: one of them may have been ours.
                Some(Err(broadcast::error::RecvError::Lagged(_))) => self.look = true,
                // Only the poll is left.
                Some(Err(broadcast::error::RecvError::Closed)) => self.wake = None,
            }
        }
    }

    /// Reads the next batch of the log into `pending`, each with the notification as it is
    /// now; returns whether there may be more.
    async fn read(&mut self) -> anyhow::Result<bool> {
        let entries = feed_log::after(&self.db, self.patient_id, self.after, BATCH).await?;
        let more = entries.len() as u64 == BATCH;
        let mut ids: Vec<Uuid> = entries.iter().map(|e| e.notification_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let shown = feed::by_ids(&self.db, self.patient_id, &ids).await?;
        let mut events = Vec::with_capacity(entries.len());
        for entry in &entries {
            let Some(notification) = shown.get(&entry.notification_id) else {
                // Not possible while notifications are never deleted; skipping beats stopping.
                tracing::warn!(patient_id = %self.patient_id, seq = entry.seq, "feed event without its notification, skipped");
                continue;
            };
            let event = Event::default()
                .id(entry.seq.to_string())
                .event(&entry.kind)
                .json_data(notification)
                .context("cannot encode the notification")?;
            events.push(event);
        }
        if let Some(last) = entries.last() {
            self.after = last.seq;
        }
        self.pending.extend(events);
        Ok(more)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_id_is_a_whole_number() {
        assert_eq!(LastEventId::parse(b"0"), Ok(LastEventId(0)));
        assert_eq!(LastEventId::parse(b"42"), Ok(LastEventId(42)));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b" 1",
            b"1.5",
            b"abc",
            b"99999999999999999999",
            b"\xff",
        ] {
            assert_eq!(LastEventId::parse(bad), Err(InvalidLastEventId), "{bad:?}");
        }
    }
}
