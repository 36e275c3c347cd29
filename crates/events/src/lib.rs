//! The slotcast event catalogue.
//!
//! Every event on the bus is a CloudEvents 1.0 JSON object in structured mode. The subject of a
//! JetStream message and the CloudEvent `type` are tied: the type is the subject with `.v1`
//! appended. The JetStream `Nats-Msg-Id` header is the CloudEvent `id`, so a re-publish of the
//! same event is dropped by the stream's duplicate window.
//!
//! The JSON Schemas in `proto-events/schemas/` describe these payloads; a test in this crate
//! checks that what the types serialise validates against them.
//!
//! # Layout
//! - this file: the names (streams, subjects, sources), the order-stamp headers, the catalogue
//!   of subjects and schemas, and the `event!` macro that ties a payload to its subject.
//! - [`envelope`]: the CloudEvent envelope, the [`Event`] trait and [`decode`].
//! - [`scheduling`], [`notify`]: what scheduling and matching publish (scheduling also writes
//!   the appointment confirmations of [`notify`]).
//! - [`delivery`]: the notifiers' delivery results, and the dead letters every consumer
//!   publishes.

// Ties a payload type to its subject, and to its order key where it has one.
macro_rules! event {
    ($ty:ty, $subject:expr, $about:ident) => {
        impl Event for $ty {
            const SUBJECT: &'static str = $subject;
            fn about(&self) -> String {
                self.$about.to_string()
            }
        }
    };
    ($ty:ty, $subject:expr, $about:ident, ordered by $key:ident) => {
        impl Event for $ty {
            const SUBJECT: &'static str = $subject;
            fn about(&self) -> String {
                self.$about.to_string()
            }
            fn order_key(&self) -> Option<::uuid::Uuid> {
                Some(self.$key)
            }
        }
    };
}

pub mod delivery;
pub mod envelope;
pub mod notify;
pub mod scheduling;

pub use delivery::*;
pub use envelope::*;
pub use notify::*;
pub use scheduling::*;

/// Streams, each with the subjects it captures.
pub mod streams {
    /// Everything the scheduling service publishes (system of record).
    pub const SCHEDULING: &str = "SLOTCAST_SCHEDULING";
    pub const SCHEDULING_SUBJECTS: &str = "slotcast.scheduling.>";
    /// Decisions of matching (who is to be told about which slots) and scheduling's
    /// confirmations of appointments.
    pub const NOTIFY: &str = "SLOTCAST_NOTIFY";
    pub const NOTIFY_SUBJECTS: &str = "slotcast.notify.>";
    /// Delivery results of the notifiers.
    pub const DELIVERY: &str = "SLOTCAST_DELIVERY";
    pub const DELIVERY_SUBJECTS: &str = "slotcast.delivery.>";
    /// Messages a consumer gave up on, with the reason.
    pub const DEADLETTER: &str = "SLOTCAST_DEADLETTER";
    pub const DEADLETTER_SUBJECTS: &str = "slotcast.deadletter.>";
}

/// Subjects. The CloudEvent type of each is the subject with `.v1` appended.
pub mod subjects {
    pub const PRACTITIONER_REGISTERED: &str = "slotcast.scheduling.practitioner.registered";
    pub const PATIENT_REGISTERED: &str = "slotcast.scheduling.patient.registered";
    pub const SLOT_CREATED: &str = "slotcast.scheduling.slot.created";
    pub const SLOT_RELEASED: &str = "slotcast.scheduling.slot.released";
    pub const SLOT_BOOKED: &str = "slotcast.scheduling.slot.booked";
    pub const SLOT_WITHDRAWN: &str = "slotcast.scheduling.slot.withdrawn";
    pub const APPOINTMENT_CANCELLED: &str = "slotcast.scheduling.appointment.cancelled";
    pub const APPOINTMENT_MOVED: &str = "slotcast.scheduling.appointment.moved";
    pub const OFFER_CLAIMED: &str = "slotcast.scheduling.offer.claimed";
    pub const OFFER_LOST: &str = "slotcast.scheduling.offer.lost";
    pub const WAITLIST_JOINED: &str = "slotcast.scheduling.waitlist.joined";
    pub const WAITLIST_CLOSED: &str = "slotcast.scheduling.waitlist.closed";
    pub const WAITLIST_UPDATED: &str = "slotcast.scheduling.waitlist.updated";
    pub const PRACTITIONER_POLICY_CHANGED: &str = "slotcast.scheduling.practitioner.policy_changed";
    pub const PATIENT_PREFERENCES_CHANGED: &str = "slotcast.scheduling.patient.preferences_changed";
    pub const NOTIFY_PATIENT: &str = "slotcast.notify.patient";
    /// A booking, move or cancellation to confirm to the patient (written by scheduling).
    pub const NOTIFY_APPOINTMENT: &str = "slotcast.notify.appointment";
    pub const EMAIL_SENT: &str = "slotcast.delivery.email.sent";
    pub const EMAIL_FAILED: &str = "slotcast.delivery.email.failed";
    pub const INAPP_STORED: &str = "slotcast.delivery.inapp.stored";
    pub const SMS_SENT: &str = "slotcast.delivery.sms.sent";
    pub const SMS_FAILED: &str = "slotcast.delivery.sms.failed";
    pub const SMS_DELIVERED: &str = "slotcast.delivery.sms.delivered";
    /// Every slot event: created, booked, released, withdrawn.
    pub const SLOT_EVENTS: &str = "slotcast.scheduling.slot.>";
    /// Prefix of dead-letter subjects; the consumer's durable name follows.
    pub const DEADLETTER_PREFIX: &str = "slotcast.deadletter";
}

/// The CloudEvent `source` of each producer: `/slotcast/<service>`.
pub mod sources {
    pub const SCHEDULING: &str = "/slotcast/scheduling";
    pub const MATCHING: &str = "/slotcast/matching";
    pub const EMAIL_NOTIFIER: &str = "/slotcast/email-notifier";
    pub const INAPP_NOTIFIER: &str = "/slotcast/inapp-notifier";
    pub const SMS_NOTIFIER: &str = "/slotcast/sms-notifier";
}

/// The order stamp of scheduling's events: the outbox numbers each order key's events 1, 2, 3…
/// in the transactions that wrote them, and the numbers travel as message headers, so a
/// consumer that applies events of different keys at once (matching) can still apply one key's
/// events in order, whatever order their messages arrive in.
pub mod order {
    /// The header naming the order key (a UUID).
    pub const KEY_HEADER: &str = "Slotcast-Order-Key";
    /// The header holding the event's number among its key's events (1, 2, 3…).
    pub const SEQ_HEADER: &str = "Slotcast-Order-Seq";
}

/// Every subject of the catalogue with its schema file under `proto-events/schemas/`.
pub const CATALOGUE: &[(&str, &str)] = &[
    (
        subjects::PRACTITIONER_REGISTERED,
        "practitioner.registered.v1.json",
    ),
    (subjects::PATIENT_REGISTERED, "patient.registered.v1.json"),
    (subjects::SLOT_CREATED, "slot.created.v1.json"),
    (subjects::SLOT_RELEASED, "slot.released.v1.json"),
    (subjects::SLOT_BOOKED, "slot.booked.v1.json"),
    (subjects::SLOT_WITHDRAWN, "slot.withdrawn.v1.json"),
    (
        subjects::APPOINTMENT_CANCELLED,
        "appointment.cancelled.v1.json",
    ),
    (subjects::APPOINTMENT_MOVED, "appointment.moved.v1.json"),
    (subjects::OFFER_CLAIMED, "offer.claimed.v1.json"),
    (subjects::OFFER_LOST, "offer.lost.v1.json"),
    (subjects::WAITLIST_JOINED, "waitlist.joined.v1.json"),
    (subjects::WAITLIST_CLOSED, "waitlist.closed.v1.json"),
    (subjects::WAITLIST_UPDATED, "waitlist.updated.v1.json"),
    (
        subjects::PRACTITIONER_POLICY_CHANGED,
        "practitioner.policy_changed.v1.json",
    ),
    (
        subjects::PATIENT_PREFERENCES_CHANGED,
        "patient.preferences_changed.v1.json",
    ),
    (subjects::NOTIFY_PATIENT, "notify.patient.v1.json"),
    (subjects::NOTIFY_APPOINTMENT, "notify.appointment.v1.json"),
    (subjects::EMAIL_SENT, "delivery.email.sent.v1.json"),
    (subjects::EMAIL_FAILED, "delivery.email.failed.v1.json"),
    (subjects::INAPP_STORED, "delivery.inapp.stored.v1.json"),
    (subjects::SMS_SENT, "delivery.sms.sent.v1.json"),
    (subjects::SMS_FAILED, "delivery.sms.failed.v1.json"),
    (subjects::SMS_DELIVERED, "delivery.sms.delivered.v1.json"),
];

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;

    fn slot() -> SlotCreated {
        SlotCreated {
            slot_id: Uuid::now_v7(),
            practitioner_id: Uuid::now_v7(),
            starts_at: Utc::now(),
            ends_at: Utc::now(),
            batch_id: Uuid::now_v7(),
            batch_size: 1,
            offer_policy: OfferPolicy::Broadcast,
        }
    }

    #[test]
    fn the_type_is_the_subject_with_v1() {
        let ev = CloudEvent::new("test", slot());
        assert_eq!(ev.ty, "slotcast.scheduling.slot.created.v1");
        assert_eq!(ev.subject, ev.data.slot_id.to_string());
    }

    #[test]
    fn an_event_round_trips_and_a_wrong_type_is_refused() {
        let ev = CloudEvent::new("test", slot());
        let bytes = serde_json::to_vec(&ev).unwrap();
        assert_eq!(decode::<SlotCreated>(&bytes).unwrap(), ev);
        assert!(matches!(
            decode::<SlotBooked>(&bytes),
            Err(DecodeError::Type { .. }) | Err(DecodeError::Json { .. })
        ));
        assert!(matches!(
            decode::<SlotCreated>(b"{nope"),
            Err(DecodeError::Json { .. })
        ));
    }

    #[test]
    fn a_decode_error_never_quotes_the_payload() {
        let secret = br#"{"specversion":"1.0","id":"alice@example.org"}"#;
        let err = decode::<PatientRegistered>(secret).unwrap_err().to_string();
        assert!(!err.contains("alice"), "{err}");
    }

    #[test]
    fn the_notification_id_ignores_slot_order_and_depends_on_the_patient() {
        let (p, a, b) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(
            NotifyPatient::derive_id(p, &[a, b]),
            NotifyPatient::derive_id(p, &[b, a])
        );
        assert_ne!(
            NotifyPatient::derive_id(p, &[a]),
            NotifyPatient::derive_id(Uuid::now_v7(), &[a])
        );
    }
}
