//! Bundles: many events in one outbox row, written once and marked published once.
//!
//! A producer that writes hundreds of events in one transaction, none of them with an order
//! key (matching's dispatcher and its `notify.patient` messages), writes them as one row
//! instead of one each, so the outbox costs two row writes per transaction, not two per event.
//! The relay publishes a bundle's events in order, each with its own `Nats-Msg-Id`, and marks
//! the row only once every one is acknowledged; a bundle cut short is published whole again and
//! the stream drops the copies it already holds.
//!
//! The row: `bundled` the number of its events, `subject` their subject, `payload` their JSON
//! one per line (compact JSON has no raw line breaks), `trace` a JSON array of their trace
//! headers in the same order, and `event_id` an id of the row's own.

use std::collections::HashMap;

use sea_orm::DbErr;
use sea_orm_migration::{prelude::*, schema::*};
use serde::Deserialize;
use slotcast_events::{CloudEvent, Event};
use uuid::Uuid;

use crate::encoded::EncodedRow;

/// The events' JSON one bundle row carries at most (their traces come on top), so that a row
/// stays a modest statement.
pub const BUNDLE_BYTES: usize = 512 * 1024;

/// One event of a bundle, as the relay publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundled {
    pub event_id: Uuid,
    pub trace: HashMap<String, String>,
    pub payload: String,
}

/// `events` as bundle rows of at most [`BUNDLE_BYTES`] each, in order; events with an order
/// key cannot be bundled (their stamp is per row).
pub fn encode<T: Event>(
    events: &[(&CloudEvent<T>, &HashMap<String, String>)],
) -> Result<Vec<EncodedRow>, DbErr> {
    let singles = crate::encoded::encode_traced(events)?;
    if singles.iter().any(|r| r.order_key.is_some()) {
        return Err(DbErr::Custom(format!(
            "{} events carry an order key and cannot be bundled",
            T::SUBJECT
        )));
    }
    // Each event's JSON and trace are already encoded: a bundle joins them as text.
    let mut rows = Vec::new();
    let mut run: &[EncodedRow] = &singles;
    while !run.is_empty() {
        let mut bytes = 0;
        let n = run
            .iter()
            .take_while(|r| {
                bytes += r.payload.len() + 1;
                bytes <= BUNDLE_BYTES
            })
            .count()
            .max(1);
        let (bundle, rest) = run.split_at(n);
        run = rest;
        let joined = |part: fn(&EncodedRow) -> &str, separator| {
            bundle.iter().map(part).collect::<Vec<_>>().join(separator)
        };
        rows.push(EncodedRow {
            event_id: Uuid::now_v7(),
            subject: T::SUBJECT,
            payload: joined(|r| &r.payload, "\n"),
            trace: format!("[{}]", joined(|r| &r.trace, ",")),
            created_at: bundle[0].created_at,
            order_key: None,
            order_seq: None,
            bundled: Some(<i32 as TryFrom<usize>>::try_from(n).unwrap_or(i32::MAX)),
        });
    }
    Ok(rows)
}

/// The events of a bundle row, in order. A line whose id cannot be read is left out and
/// logged: one bad line must not hold the rest of the outbox back.
pub fn decode(seq: i64, payload: &str, trace: &str) -> Vec<Bundled> {
    #[derive(Deserialize)]
    struct Id {
        id: Uuid,
    }
    let traces: Vec<HashMap<String, String>> = serde_json::from_str(trace).unwrap_or_default();
    payload
        .lines()
        .enumerate()
        .filter_map(|(i, line)| match serde_json::from_str::<Id>(line) {
            Ok(Id { id }) => Some(Bundled {
                event_id: id,
                trace: traces.get(i).cloned().unwrap_or_default(),
                payload: line.to_owned(),
            }),
            Err(e) => {
                tracing::error!(seq, line = i, error = %e, "bundled event without a readable id; left out");
                None
            }
        })
        .collect()
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Bundled,
}

/// The migration that lets an outbox row be a bundle; each service lists it after
/// [`crate::order::StampAtCommit`].
pub struct AddOutboxBundles;

impl MigrationName for AddOutboxBundles {
    fn name(&self) -> &str {
        "m0000_add_outbox_bundles"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddOutboxBundles {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Outbox::Table)
                .add_column(integer_null(Outbox::Bundled))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Outbox::Table)
                .drop_column(Outbox::Bundled)
                .to_owned(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotcast_events::{InappStored, SlotWithdrawn};

    fn stored() -> CloudEvent<InappStored> {
        CloudEvent::new(
            "test",
            InappStored {
                notification_id: Uuid::now_v7(),
                patient_id: Uuid::now_v7(),
            },
        )
    }

    #[test]
    fn events_with_an_order_key_are_not_bundled() {
        let event = CloudEvent::new(
            "test",
            SlotWithdrawn {
                slot_id: Uuid::now_v7(),
                practitioner_id: Uuid::now_v7(),
            },
        );
        assert!(encode(&[(&event, &HashMap::new())]).is_err());
    }

    #[test]
    fn a_bundle_gives_back_each_event_with_its_trace_in_order() {
        let events: Vec<_> = (0..3).map(|_| stored()).collect();
        let trace: HashMap<String, String> =
            [("traceparent".to_owned(), "00-abc-def-01".to_owned())].into();
        let none = HashMap::new();
        let traced = vec![
            (&events[0], &trace),
            (&events[1], &none),
            (&events[2], &trace),
        ];
        let rows = encode(&traced).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].bundled, Some(3));
        let back = decode(1, &rows[0].payload, &rows[0].trace);
        let ids: Vec<Uuid> = back.iter().map(|b| b.event_id).collect();
        assert_eq!(ids, events.iter().map(|e| e.id).collect::<Vec<_>>());
        assert_eq!(back[0].trace, trace);
        assert_eq!(back[2].trace, trace);
        let again: CloudEvent<InappStored> =
            slotcast_events::decode(back[1].payload.as_bytes()).unwrap();
        assert_eq!(again.id, events[1].id);
    }

    #[test]
    fn many_events_are_cut_into_bundles_under_the_budget() {
        let events: Vec<_> = (0..5_000).map(|_| stored()).collect();
        let none = HashMap::new();
        let traced: Vec<_> = events.iter().map(|e| (e, &none)).collect();
        let rows = encode(&traced).unwrap();
        assert!(rows.len() > 1);
        assert!(rows.iter().all(|r| r.payload.len() <= BUNDLE_BYTES));
        let ids: Vec<Uuid> = rows
            .iter()
            .flat_map(|r| decode(1, &r.payload, &r.trace))
            .map(|b| b.event_id)
            .collect();
        assert_eq!(ids, events.iter().map(|e| e.id).collect::<Vec<_>>());
    }

    #[test]
    fn a_line_without_an_id_is_left_out_and_the_rest_kept() {
        let event = stored();
        let none = HashMap::new();
        let rows = encode(&[(&event, &none)]).unwrap();
        let payload = format!("{{\"not\":\"an event\"}}\n{}", rows[0].payload);
        let back = decode(1, &payload, "[]");
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].event_id, event.id);
    }
}
