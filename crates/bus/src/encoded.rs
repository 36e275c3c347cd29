//! An event as an outbox row: what the outbox writes, and what [`crate::order`] numbers and
//! [`crate::bundle`] gathers before it is written.

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::DbErr;
use slotcast_events::{CloudEvent, Event};

/// An outbox row as [`crate::outbox::enqueue_traced`] writes it, for a producer that writes it
/// with a statement of its own (a data-modifying `WITH` that records a state change and its
/// event at once, say). The row goes into `outbox (event_id, subject, payload, trace,
/// created_at)`; `event_id` is unique there (`ON CONFLICT (event_id) DO NOTHING`). Such a
/// producer's events have no order key: only `enqueue_traced` stamps them ([`crate::order`]);
/// and a bundle row ([`crate::bundle::encode`]) is written by
/// [`crate::outbox::enqueue_bundle`] alone, `bundled` included.
#[derive(Debug, Clone)]
pub struct EncodedRow {
    pub event_id: uuid::Uuid,
    pub subject: &'static str,
    pub payload: String,
    pub trace: String,
    pub created_at: chrono::DateTime<Utc>,
    pub order_key: Option<uuid::Uuid>,
    /// Set by [`crate::outbox::enqueue_traced`] for rows with an order key.
    pub order_seq: Option<i64>,
    /// The number of events of a bundle row ([`crate::bundle`]); `None` for one event.
    pub bundled: Option<i32>,
}

impl EncodedRow {
    /// Its size in a statement, for [`crate::rows::chunks`].
    pub fn size(&self) -> usize {
        self.payload.len() + self.trace.len() + self.subject.len()
    }
}

/// `events` as outbox rows, each with the trace context it continues (an empty one: the current
/// span's).
pub fn encode_traced<T: Event>(
    events: &[(&CloudEvent<T>, &HashMap<String, String>)],
) -> Result<Vec<EncodedRow>, DbErr> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let current = json(&slotcast_kit::telemetry::current_context_headers())?;
    let now = Utc::now();
    events
        .iter()
        .map(|(event, trace)| {
            Ok(EncodedRow {
                event_id: event.id,
                subject: T::SUBJECT,
                payload: json(*event)?,
                trace: if trace.is_empty() {
                    current.clone()
                } else {
                    json(*trace)?
                },
                created_at: now,
                order_key: event.data.order_key(),
                order_seq: None,
                bundled: None,
            })
        })
        .collect()
}

fn json<S: serde::Serialize + ?Sized>(value: &S) -> Result<String, DbErr> {
    serde_json::to_string(value).map_err(|e| DbErr::Custom(e.to_string()))
}
