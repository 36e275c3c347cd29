//! The two durable consumers: `NotifyPatient` into the feed, `SlotBooked` onto the slots.
//!
//! Malformed or wrong-type messages are rejected (dead-lettered); database failures are retried
//! with a growing delay.

use std::time::Duration;

use sea_orm::DatabaseConnection;
use slotcast_bus::{
    consumer::{ConsumerSpec, Delivery, Handler, Outcome},
    outbox::Relay,
};
use slotcast_events::{NotifyPatient, SlotBooked, streams, subjects};

use crate::store::{self, NewNotification, Stored};

/// Durable name of the `NotifyPatient` consumer; dead letters go to
/// `slotcast.deadletter.inapp-notifier`.
pub const NOTIFY_DURABLE: &str = "inapp-notifier";
/// Durable name of the `slot.booked` consumer.
pub const SLOT_BOOKED_DURABLE: &str = "inapp-notifier-slot-booked";

const MAX_DELIVER: i64 = 50;
const ACK_WAIT: Duration = Duration::from_secs(30);
/// Both handlers are order-independent, so deliveries may overlap freely.
const MAX_ACK_PENDING: i64 = 64;

/// Consumes `slotcast.notify.patient`.
pub fn notify_spec() -> ConsumerSpec {
    ConsumerSpec {
        stream: streams::NOTIFY,
        durable: NOTIFY_DURABLE.to_owned(),
        filter_subject: subjects::NOTIFY_PATIENT.to_owned(),
        max_deliver: MAX_DELIVER,
        ack_wait: ACK_WAIT,
        concurrency: 4,
        max_ack_pending: MAX_ACK_PENDING,
    }
}

/// Consumes `slotcast.scheduling.slot.booked`. Order does not matter: marking a slot taken is
/// the same whenever it happens.
pub fn slot_booked_spec() -> ConsumerSpec {
    ConsumerSpec {
        stream: streams::SCHEDULING,
        durable: SLOT_BOOKED_DURABLE.to_owned(),
        filter_subject: subjects::SLOT_BOOKED.to_owned(),
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

/// Marks a booked slot taken in every notification that offered it.
pub struct MarkSlotTaken {
    pub db: DatabaseConnection,
}

impl Handler for MarkSlotTaken {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        let event = match slotcast_events::decode::<SlotBooked>(&delivery.payload) {
            Ok(event) => event,
            Err(e) => return Outcome::Reject(format!("not a SlotBooked event: {e}")),
        };
        match store::mark_slot_taken(&self.db, event.data.slot_id, event.time).await {
            Ok(changed) => {
                metrics::counter!("slotcast_inapp_notifier_slots_taken_total").increment(changed);
                tracing::info!(slot_id = %event.data.slot_id, notifications = changed, "slot marked taken");
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
