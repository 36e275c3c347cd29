//! The two durable consumers: `NotifyPatient` into the feed, and the slot events
//! (`slotcast.scheduling.slot.>`) onto each slot's state.
//!
//! Malformed or wrong-type messages are rejected (dead-lettered); database failures are retried
//! with a growing delay. After a commit that logged changes, the patients' streams are woken.

use std::time::Duration;

use sea_orm::DatabaseConnection;
use slotcast_bus::{
    consumer::{ConsumerSpec, Delivery, Handler, Outcome},
    outbox::Relay,
};
use slotcast_events::{NotifyPatient, streams, subjects};

use crate::{
    feed_log::FeedSignal,
    slots::SlotChange,
    store::{self, NewNotification, SlotApplied, Stored},
};

/// Durable name of the `NotifyPatient` consumer; dead letters go to
/// `slotcast.deadletter.inapp-notifier`.
pub const NOTIFY_DURABLE: &str = "inapp-notifier";
/// Durable name of the slot events consumer; dead letters go to
/// `slotcast.deadletter.inapp-notifier-slots`.
pub const SLOTS_DURABLE: &str = "inapp-notifier-slots";
/// The consumer of `slot.booked` alone that `SLOTS_DURABLE` replaced; removed at start.
pub const RETIRED_SLOT_BOOKED_DURABLE: &str = "inapp-notifier-slot-booked";
/// Every slot event: created, booked, released, withdrawn.
pub const SLOT_EVENTS: &str = "slotcast.scheduling.slot.>";

const MAX_DELIVER: i64 = 50;
const ACK_WAIT: Duration = Duration::from_secs(30);
/// Both handlers are order-independent (slot events carry their stream sequence, and the last
/// one in stream order wins), so deliveries may overlap freely.
const MAX_ACK_PENDING: i64 = 64;

/// Consumes `slotcast.notify.patient`.
pub fn notify_spec() -> ConsumerSpec {
    ConsumerSpec {
        stream: streams::NOTIFY,
        durable: NOTIFY_DURABLE.to_owned(),
        filter_subject: subjects::NOTIFY_PATIENT.to_owned(),
        max_deliver: MAX_DELIVER,
        ack_wait: ACK_WAIT,
        // Notifications about one slot are stored side by side (the slot's state row is
        // shared), so more at once keeps the database busy while each waits on a commit.
        concurrency: 8,
        max_ack_pending: MAX_ACK_PENDING,
    }
}

/// Consumes `slotcast.scheduling.slot.>`. Order does not matter: an event older (in the stream)
/// than the one a slot's state comes from is ignored.
pub fn slots_spec() -> ConsumerSpec {
    ConsumerSpec {
        stream: streams::SCHEDULING,
        durable: SLOTS_DURABLE.to_owned(),
        filter_subject: SLOT_EVENTS.to_owned(),
        max_deliver: MAX_DELIVER,
        ack_wait: ACK_WAIT,
        concurrency: 4,
        max_ack_pending: MAX_ACK_PENDING,
    }
}

/// 2 s, 4 s, 8 s, ... up to 30 s: a database that is down gets time to come back.
fn backoff(deliveries: i64) -> Duration {
    let exponent = deliveries.clamp(1, 5) as u32;
    Duration::from_secs(2u64.pow(exponent)).min(Duration::from_secs(30))
}

/// Stores each `NotifyPatient` in the patient's feed.
pub struct StoreNotification {
    pub db: DatabaseConnection,
    pub relay: Relay,
    pub signal: FeedSignal,
}

impl Handler for StoreNotification {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        let event = match slotcast_events::decode::<NotifyPatient>(&delivery.payload) {
            Ok(event) => event,
            Err(e) => return Outcome::Reject(format!("not a NotifyPatient event: {e}")),
        };
        let event_id = event.id;
        let new = match NewNotification::from_event(event) {
            Ok(new) => new,
            Err(e) => return Outcome::Reject(format!("event {event_id}: {e}")),
        };
        match store::store(&self.db, &new).await {
            Ok(Stored::New) => {
                self.relay.wake();
                self.signal.changed(&[new.patient_id]).await;
                metrics::counter!("slotcast_inapp_notifier_notifications_stored_total")
                    .increment(1);
                tracing::info!(notification_id = %new.id, patient_id = %new.patient_id, slots = new.slots.len(), "notification stored");
                Outcome::Done
            }
            Ok(Stored::AlreadyThere) => {
                tracing::debug!(notification_id = %new.id, "notification already stored");
                Outcome::Done
            }
            Err(e) => Outcome::retry(backoff(delivery.deliveries), &e),
        }
    }
}

/// Applies each slot event to the slot's state; the notifications that offered the slot show it.
pub struct ApplySlotEvents {
    pub db: DatabaseConnection,
    pub signal: FeedSignal,
}

impl Handler for ApplySlotEvents {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        let change = match SlotChange::from_message(&delivery.subject, &delivery.payload) {
            Ok(Some(change)) => change,
            // Nothing about availability (or a subject newer than this version).
            Ok(None) => return Outcome::Done,
            Err(e) => return Outcome::Reject(e.to_string()),
        };
        let status = change.state.status();
        match store::apply_slot_change(&self.db, &change, delivery.stream_sequence).await {
            Ok(SlotApplied::Changed {
                notifications,
                patients,
            }) => {
                self.signal.changed(&patients).await;
                metrics::counter!("slotcast_inapp_notifier_slot_changes_total", "status" => status)
                    .increment(1);
                tracing::info!(slot_id = %change.slot_id, status, notifications, "slot state changed");
                Outcome::Done
            }
            Ok(SlotApplied::Unchanged) => {
                tracing::debug!(slot_id = %change.slot_id, status, "slot state unchanged");
                Outcome::Done
            }
            Ok(SlotApplied::Stale) => {
                tracing::debug!(slot_id = %change.slot_id, "slot event older than the state, ignored");
                Outcome::Done
            }
            Err(e) => Outcome::retry(backoff(delivery.deliveries), &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_delay_grows_to_thirty_seconds() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(49), Duration::from_secs(30));
    }
}
