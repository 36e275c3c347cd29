//! The durable consumers: `NotifyPatient` and `AppointmentConfirmation` (each its own consumer)
//! into the feed, and the slot events (`slotcast.scheduling.slot.>`) onto each slot's state.
//!
//! Malformed or wrong-type messages are rejected (dead-lettered); database failures are retried
//! with a growing delay. After a commit that logged changes, the patients' streams are woken.

use std::time::Duration;

use sea_orm::DatabaseConnection;
use slotcast_bus::{
    consumer::{BatchHandler, ConsumerSpec, Delivery, Handler, Outcome},
    outbox::Relay,
};
use slotcast_events::{AppointmentConfirmation, NotifyPatient, streams, subjects};
use slotcast_kit::retry::Backoff;

use crate::{
    feed_log::FeedSignal,
    slots::SlotChange,
    store::{self, NewNotification, SlotApplied, Stored},
};

/// Durable name of the `NotifyPatient` consumer; dead letters go to
/// `slotcast.deadletter.inapp-notifier`.
pub const NOTIFY_DURABLE: &str = "inapp-notifier";
/// Durable name of the confirmations consumer (`slotcast.notify.appointment`); dead letters go
/// to `slotcast.deadletter.inapp-notifier-confirmations`.
pub const CONFIRMATIONS_DURABLE: &str = "inapp-notifier-confirmations";
/// Durable name of the slot events consumer; dead letters go to
/// `slotcast.deadletter.inapp-notifier-slots`.
pub const SLOTS_DURABLE: &str = "inapp-notifier-slots";

const MAX_DELIVER: i64 = 50;
const ACK_WAIT: Duration = Duration::from_secs(30);
/// Both handlers are order-independent (slot events carry their stream sequence, and the last
/// one in stream order wins), so deliveries may overlap freely.
const MAX_ACK_PENDING: i64 = 64;

/// Notifications stored in one transaction at most.
pub const NOTIFY_BATCH: usize = 256;
/// Batches in hand at once: one commits while the next is read and written.
const NOTIFY_BATCHES_AT_ONCE: usize = 2;

/// Consumes `slotcast.notify.patient`, [`NOTIFY_BATCH`] messages at a time.
pub fn notify_spec() -> ConsumerSpec {
    ConsumerSpec {
        stream: streams::NOTIFY,
        durable: NOTIFY_DURABLE.to_owned(),
        filter_subject: subjects::NOTIFY_PATIENT.to_owned(),
        max_deliver: MAX_DELIVER,
        ack_wait: ACK_WAIT,
        concurrency: NOTIFY_BATCHES_AT_ONCE,
        // The batches in hand, and as many again on their way, so a batch is never short for
        // want of room.
        max_ack_pending: (NOTIFY_BATCH * NOTIFY_BATCHES_AT_ONCE * 2) as i64,
    }
}

/// Consumes `slotcast.notify.appointment` like [`notify_spec`], with a durable consumer of its
/// own, so the availability consumer keeps its filter.
pub fn confirmations_spec() -> ConsumerSpec {
    ConsumerSpec {
        durable: CONFIRMATIONS_DURABLE.to_owned(),
        filter_subject: subjects::NOTIFY_APPOINTMENT.to_owned(),
        ..notify_spec()
    }
}

/// Consumes `slotcast.scheduling.slot.>`. Order does not matter: an event older (in the stream)
/// than the one a slot's state comes from is ignored.
pub fn slots_spec() -> ConsumerSpec {
    ConsumerSpec {
        stream: streams::SCHEDULING,
        durable: SLOTS_DURABLE.to_owned(),
        filter_subject: subjects::SLOT_EVENTS.to_owned(),
        max_deliver: MAX_DELIVER,
        ack_wait: ACK_WAIT,
        concurrency: 4,
        max_ack_pending: MAX_ACK_PENDING,
    }
}

/// 2 s, 4 s, 8 s, ... up to 30 s: a database that is down gets time to come back.
const RETRY: Backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(30));

/// Stores each `NotifyPatient` in the patient's feed, a batch at a time.
pub struct StoreNotification {
    pub db: DatabaseConnection,
    pub relay: Relay,
    pub signal: FeedSignal,
}

impl BatchHandler for StoreNotification {
    /// Stores the batch in one transaction. If that fails, each notification is tried in a
    /// transaction of its own, so one that cannot be stored never holds the others back (and a
    /// database that is down fails them all, to be retried).
    async fn handle_batch(&self, deliveries: &[Delivery]) -> Vec<Outcome> {
        let mut outcomes: Vec<Option<Outcome>> = vec![None; deliveries.len()];
        let mut news = Vec::with_capacity(deliveries.len());
        let mut at = Vec::with_capacity(deliveries.len());
        for (i, delivery) in deliveries.iter().enumerate() {
            match read(delivery) {
                Ok(new) => {
                    news.push(new);
                    at.push(i);
                }
                Err(rejected) => outcomes[i] = Some(rejected),
            }
        }
        if !news.is_empty() {
            match store::store_batch(&self.db, &news).await {
                Ok(stored) => {
                    self.stored(&news, &stored).await;
                    for (&i, _) in at.iter().zip(&stored) {
                        outcomes[i] = Some(Outcome::Done);
                    }
                }
                Err(e) if news.len() > 1 => {
                    tracing::warn!(error = %format!("{e:#}"), notifications = news.len(), "batch not stored; storing one at a time");
                    for (&i, new) in at.iter().zip(&news) {
                        let one = std::slice::from_ref(new);
                        outcomes[i] = Some(match store::store_batch(&self.db, one).await {
                            Ok(stored) => {
                                self.stored(one, &stored).await;
                                Outcome::Done
                            }
                            Err(e) => Outcome::retry(RETRY.delay(deliveries[i].deliveries), &e),
                        });
                    }
                }
                Err(e) => {
                    outcomes[at[0]] = Some(Outcome::retry(
                        RETRY.delay(deliveries[at[0]].deliveries),
                        &e,
                    ));
                }
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Outcome::Reject("left unanswered".to_owned())))
            .collect()
    }
}

/// Reads a `NotifyPatient` or `AppointmentConfirmation` message (by its subject), or answers it
/// at once: rejected, or done when the patient turned in-app notifications off.
fn read(delivery: &Delivery) -> Result<NewNotification, Outcome> {
    if delivery.subject == subjects::NOTIFY_APPOINTMENT {
        return read_confirmation(delivery);
    }
    let event = slotcast_events::decode::<NotifyPatient>(&delivery.payload)
        .map_err(|e| Outcome::Reject(format!("not a NotifyPatient event: {e}")))?;
    let event_id = event.id;
    if !event.data.channels.inapp {
        // The patient turned in-app notifications off: nothing to store.
        metrics::counter!("slotcast_inapp_notifier_skipped_total", "reason" => "opted_out")
            .increment(1);
        tracing::debug!(notification_id = %event.data.notification_id, patient_id = %event.data.patient.id, "in-app notifications turned off by the patient; not stored");
        return Err(Outcome::Done);
    }
    let mut new = NewNotification::from_event(event)
        .map_err(|e| Outcome::Reject(format!("event {event_id}: {e}")))?;
    new.trace = delivery.trace.clone();
    Ok(new)
}

/// [`read`] for a confirmation.
fn read_confirmation(delivery: &Delivery) -> Result<NewNotification, Outcome> {
    let event = slotcast_events::decode::<AppointmentConfirmation>(&delivery.payload)
        .map_err(|e| Outcome::Reject(format!("not an AppointmentConfirmation event: {e}")))?;
    if !event.data.channels.inapp {
        metrics::counter!("slotcast_inapp_notifier_skipped_total", "reason" => "opted_out")
            .increment(1);
        tracing::debug!(confirmation_id = %event.data.confirmation_id, patient_id = %event.data.patient.id, "in-app notifications turned off by the patient; confirmation not stored");
        return Err(Outcome::Done);
    }
    let mut new = NewNotification::from_confirmation(event);
    new.trace = delivery.trace.clone();
    Ok(new)
}

impl StoreNotification {
    /// After the commit: publish the `InappStored` events and wake the patients' streams.
    async fn stored(&self, news: &[NewNotification], stored: &[Stored]) {
        let mut patients = Vec::new();
        for (new, stored) in news.iter().zip(stored) {
            match stored {
                Stored::New => {
                    tracing::info!(notification_id = %new.id, patient_id = %new.patient_id, slots = new.slots.len(), "notification stored");
                    patients.push(new.patient_id);
                }
                Stored::AlreadyThere => {
                    tracing::debug!(notification_id = %new.id, "notification already stored");
                }
            }
        }
        if patients.is_empty() {
            return;
        }
        self.relay.wake();
        metrics::counter!("slotcast_inapp_notifier_notifications_stored_total")
            .increment(patients.len() as u64);
        patients.sort_unstable();
        patients.dedup();
        self.signal.changed(&patients).await;
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
            Err(e) => Outcome::retry(RETRY.delay(delivery.deliveries), &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_delay_grows_to_thirty_seconds() {
        assert_eq!(RETRY.ceiling(1), Duration::from_secs(2));
        assert_eq!(RETRY.ceiling(3), Duration::from_secs(8));
        assert_eq!(RETRY.ceiling(49), Duration::from_secs(30));
        assert!(RETRY.delay(49) <= Duration::from_secs(30));
    }
}
