//! The slotcast event catalogue.
//!
//! Every event on the bus is a CloudEvents 1.0 JSON object in structured mode. The subject of a
//! JetStream message and the CloudEvent `type` are tied: the type is the subject with `.v1`
//! appended. The JetStream `Nats-Msg-Id` header is the CloudEvent `id`, so a re-publish of the
//! same event is dropped by the stream's duplicate window.
//!
//! The JSON Schemas in `proto-events/schemas/` describe these payloads; a test in this crate
//! checks that what the types serialise validates against them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

/// Streams, each with the subjects it captures.
pub mod streams {
    /// Everything the scheduling service publishes (system of record).
    pub const SCHEDULING: &str = "SLOTCAST_SCHEDULING";
    pub const SCHEDULING_SUBJECTS: &str = "slotcast.scheduling.>";
    /// Decisions of matching: who is to be told what.
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
    pub const EMAIL_SENT: &str = "slotcast.delivery.email.sent";
    pub const EMAIL_FAILED: &str = "slotcast.delivery.email.failed";
    pub const INAPP_STORED: &str = "slotcast.delivery.inapp.stored";
    /// Prefix of dead-letter subjects; the consumer's durable name follows.
    pub const DEADLETTER_PREFIX: &str = "slotcast.deadletter";
}

/// The CloudEvents spec version we speak.
/// The CloudEvent `source` of each producer: `/slotcast/<service>`.
pub mod sources {
    pub const SCHEDULING: &str = "/slotcast/scheduling";
    pub const MATCHING: &str = "/slotcast/matching";
    pub const EMAIL_NOTIFIER: &str = "/slotcast/email-notifier";
    pub const INAPP_NOTIFIER: &str = "/slotcast/inapp-notifier";
}

pub const SPECVERSION: &str = "1.0";
/// Namespace for ids derived from content (UUID v5), so a redelivery yields the same id.
pub const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a4e_5b7d_4c1e_9a3f_2d8b_7e6c_5a41);

/// A CloudEvents 1.0 envelope in structured JSON mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent<T> {
    pub specversion: String,
    pub id: Uuid,
    pub source: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub time: DateTime<Utc>,
    pub subject: String,
    pub datacontenttype: String,
    pub data: T,
}

/// A payload that belongs to exactly one subject.
pub trait Event: Serialize + DeserializeOwned {
    const SUBJECT: &'static str;
    /// The CloudEvent `subject` attribute: the id of the thing the event is about.
    fn about(&self) -> String;
    /// The practitioner or patient whose events must be applied in the order they happened
    /// ([`order`]); `None` for events no consumer orders.
    fn order_key(&self) -> Option<Uuid> {
        None
    }
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

/// The CloudEvent type for a subject.
pub fn type_of(subject: &str) -> String {
    format!("{subject}.v1")
}

impl<T: Event> CloudEvent<T> {
    /// Wraps a payload with a fresh time-ordered id.
    pub fn new(source: &str, data: T) -> Self {
        Self::with_id(Uuid::now_v7(), source, data)
    }

    /// Wraps a payload with an id the caller derived (for idempotent producers).
    pub fn with_id(id: Uuid, source: &str, data: T) -> Self {
        Self {
            specversion: SPECVERSION.to_owned(),
            id,
            source: source.to_owned(),
            ty: type_of(T::SUBJECT),
            time: Utc::now(),
            subject: data.about(),
            datacontenttype: "application/json".to_owned(),
            data,
        }
    }
}

/// Why an envelope could not be read. It never quotes the payload: serde's own messages can
/// hold values (a patient's name or address), and these reasons end up in logs and dead letters.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a valid event: {what} (line {line}, column {column})")]
    Json {
        what: String,
        line: usize,
        column: usize,
    },
    #[error("unsupported specversion {0:?}")]
    SpecVersion(String),
    #[error("type {found:?} does not belong on this subject (expected {expected:?})")]
    Type { expected: String, found: String },
}

impl From<serde_json::Error> for DecodeError {
    fn from(e: serde_json::Error) -> Self {
        let what = match e.classify() {
            // A missing field names the schema's field, never a value: keep it.
            serde_json::error::Category::Data if e.to_string().starts_with("missing field") => e
                .to_string()
                .split(" at line")
                .next()
                .unwrap_or_default()
                .to_owned(),
            serde_json::error::Category::Data => "a field has the wrong type or value".to_owned(),
            serde_json::error::Category::Syntax => "not valid JSON".to_owned(),
            serde_json::error::Category::Eof => "the JSON ends early".to_owned(),
            serde_json::error::Category::Io => "unreadable".to_owned(),
        };
        DecodeError::Json {
            what,
            line: e.line(),
            column: e.column(),
        }
    }
}

/// Parses an envelope and checks that its type is the one of `T`.
pub fn decode<T: Event>(bytes: &[u8]) -> Result<CloudEvent<T>, DecodeError> {
    let event: CloudEvent<T> = serde_json::from_slice(bytes)?;
    if event.specversion != SPECVERSION {
        return Err(DecodeError::SpecVersion(event.specversion));
    }
    let expected = type_of(T::SUBJECT);
    if event.ty != expected {
        return Err(DecodeError::Type {
            expected,
            found: event.ty,
        });
    }
    Ok(event)
}

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
            fn order_key(&self) -> Option<Uuid> {
                Some(self.$key)
            }
        }
    };
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PractitionerRegistered {
    pub practitioner_id: Uuid,
    pub name: String,
    pub specialty: String,
    /// IANA time zone, for example `Europe/Paris`.
    pub timezone: String,
    /// In minor units (cents) of `currency`.
    pub consultation_fee_cents: Option<i64>,
    pub currency: String,
    /// The practitioner's own offering policy; `None` follows the configured default.
    #[serde(default)]
    pub offer_policy: Option<OfferPolicy>,
}
event!(PractitionerRegistered, subjects::PRACTITIONER_REGISTERED, practitioner_id, ordered by practitioner_id);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatientRegistered {
    pub patient_id: Uuid,
    pub name: String,
    pub email: String,
    pub locale: String,
    pub timezone: Option<String>,
}
event!(PatientRegistered, subjects::PATIENT_REGISTERED, patient_id, ordered by patient_id);

/// How a practitioner's openings are offered to the waiting list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferPolicy {
    /// Everyone who fits is told at once; the first claim wins.
    #[default]
    Broadcast,
    /// The first patients in order are told with an exclusive hold on the slots; when the hold
    /// ends unclaimed, the next ones are told.
    Waves,
}

impl OfferPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            OfferPolicy::Broadcast => "broadcast",
            OfferPolicy::Waves => "waves",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "broadcast" => Some(OfferPolicy::Broadcast),
            "waves" => Some(OfferPolicy::Waves),
            _ => None,
        }
    }
}

/// A practitioner's own offering policy changed (staff). It applies to openings from then on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PractitionerPolicyChanged {
    pub practitioner_id: Uuid,
    /// `None`: back to the configured default.
    pub offer_policy: Option<OfferPolicy>,
}
event!(PractitionerPolicyChanged, subjects::PRACTITIONER_POLICY_CHANGED, practitioner_id, ordered by practitioner_id);

/// A patient's notification preferences changed, through the API or a link in an email.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatientPreferencesChanged {
    pub patient_id: Uuid,
    /// Availability email on or off.
    pub email: bool,
    /// In-app notifications on or off.
    pub inapp: bool,
    /// `api` (patient or staff), `link` (the preferences page of an email) or `one_click`
    /// (the RFC 8058 unsubscribe of an email).
    pub via: String,
}
event!(PatientPreferencesChanged, subjects::PATIENT_PREFERENCES_CHANGED, patient_id, ordered by patient_id);

/// A slot was published. Slots posted in one request share `batch_id`; `batch_size` tells a
/// consumer how many to expect, so it can treat the batch as one opening.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotCreated {
    pub slot_id: Uuid,
    pub practitioner_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub batch_id: Uuid,
    pub batch_size: u32,
    /// How the slot is offered: the practitioner's policy, or the configured default.
    #[serde(default)]
    pub offer_policy: OfferPolicy,
}
event!(SlotCreated, subjects::SLOT_CREATED, slot_id, ordered by practitioner_id);

/// A booked slot became available again (its appointment was cancelled or moved).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotReleased {
    pub slot_id: Uuid,
    pub practitioner_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub batch_id: Uuid,
    pub batch_size: u32,
    pub reason: ReleaseReason,
    /// The patient who held it, so matching never offers it back to them.
    pub released_by: Option<Uuid>,
    /// How the slot is offered: the practitioner's policy, or the configured default.
    #[serde(default)]
    pub offer_policy: OfferPolicy,
}
event!(SlotReleased, subjects::SLOT_RELEASED, slot_id, ordered by practitioner_id);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    Cancelled,
    MovedUp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotBooked {
    pub slot_id: Uuid,
    pub practitioner_id: Uuid,
    pub patient_id: Uuid,
    pub appointment_id: Uuid,
    pub starts_at: DateTime<Utc>,
}
event!(SlotBooked, subjects::SLOT_BOOKED, slot_id, ordered by practitioner_id);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotWithdrawn {
    pub slot_id: Uuid,
    pub practitioner_id: Uuid,
}
event!(SlotWithdrawn, subjects::SLOT_WITHDRAWN, slot_id, ordered by practitioner_id);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppointmentCancelled {
    pub appointment_id: Uuid,
    pub slot_id: Uuid,
    pub patient_id: Uuid,
    pub practitioner_id: Uuid,
}
event!(AppointmentCancelled, subjects::APPOINTMENT_CANCELLED, appointment_id, ordered by practitioner_id);

/// A patient moved their appointment up to an earlier slot: one swap. `slot.booked` for the new
/// slot and `slot.released` (reason `moved_up`) for the old one follow in the same transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppointmentMoved {
    pub appointment_id: Uuid,
    pub patient_id: Uuid,
    pub practitioner_id: Uuid,
    pub from_slot_id: Uuid,
    pub to_slot_id: Uuid,
}
event!(AppointmentMoved, subjects::APPOINTMENT_MOVED, appointment_id, ordered by practitioner_id);

/// A booking link won its slot: the offer's patient booked it (or moved up to it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferClaimed {
    /// The notification whose link was used.
    pub notification_id: Uuid,
    pub patient_id: Uuid,
    pub slot_id: Uuid,
    pub appointment_id: Uuid,
    /// For a move-up, the slot the appointment left.
    pub moved_from_slot_id: Option<Uuid>,
}
event!(OfferClaimed, subjects::OFFER_CLAIMED, notification_id, ordered by patient_id);

/// A claim from a booking link did not get its slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferLost {
    pub notification_id: Uuid,
    pub patient_id: Uuid,
    pub slot_id: Uuid,
    pub reason: LostReason,
}
event!(OfferLost, subjects::OFFER_LOST, notification_id, ordered by patient_id);

/// Why a claim did not get its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LostReason {
    /// Someone else booked it first (the race was lost).
    Taken,
    /// The practitioner withdrew it.
    Withdrawn,
    /// It has started.
    Started,
    /// The patient's held appointment is already earlier: moving would not be up.
    NotEarlier,
    /// The slot is held for a wave of other patients (`waves` policy) until the hold ends.
    Held,
}

impl LostReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LostReason::Taken => "taken",
            LostReason::Withdrawn => "withdrawn",
            LostReason::Started => "started",
            LostReason::NotEarlier => "not_earlier",
            LostReason::Held => "held",
        }
    }
}

/// What a waiting-list entry waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitKind {
    /// Waiting for a first appointment.
    New,
    /// Holds an appointment and wants an earlier one.
    MoveUp,
}

impl WaitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitKind::New => "new",
            WaitKind::MoveUp => "move_up",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "new" => Some(WaitKind::New),
            "move_up" => Some(WaitKind::MoveUp),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitlistJoined {
    pub entry_id: Uuid,
    pub patient_id: Uuid,
    pub practitioner_id: Uuid,
    pub kind: WaitKind,
    pub appointment_id: Option<Uuid>,
    /// For `move_up`: when the held appointment starts; only earlier slots fit.
    pub held_starts_at: Option<DateTime<Utc>>,
    pub earliest: Option<DateTime<Utc>>,
    pub latest: Option<DateTime<Utc>>,
    pub joined_at: DateTime<Utc>,
    #[serde(default)]
    pub priority: Priority,
    /// After this the entry is never offered anything. `None`: it does not expire.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}
event!(WaitlistJoined, subjects::WAITLIST_JOINED, entry_id, ordered by practitioner_id);

/// Where an entry stands in the waiting order: `urgent` before `routine`, then longest waiting
/// first. Set by staff.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Urgent,
    #[default]
    Routine,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Urgent => "urgent",
            Priority::Routine => "routine",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "urgent" => Some(Priority::Urgent),
            "routine" => Some(Priority::Routine),
            _ => None,
        }
    }
}

/// A waiting-list entry's priority or expiry changed. Carries both, as they are now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitlistUpdated {
    pub entry_id: Uuid,
    pub patient_id: Uuid,
    pub practitioner_id: Uuid,
    pub priority: Priority,
    pub expires_at: Option<DateTime<Utc>>,
}
event!(WaitlistUpdated, subjects::WAITLIST_UPDATED, entry_id, ordered by practitioner_id);

/// A waiting-list entry stopped waiting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitlistClosed {
    pub entry_id: Uuid,
    pub patient_id: Uuid,
    pub practitioner_id: Uuid,
    pub reason: CloseReason,
}
event!(WaitlistClosed, subjects::WAITLIST_CLOSED, entry_id, ordered by practitioner_id);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The patient (or staff) took it off the list.
    Left,
    /// The patient got what they waited for.
    Fulfilled,
    /// The appointment a `move_up` entry held was cancelled.
    AppointmentCancelled,
}

/// A patient is to be told about slots. One per patient per opening, listing every slot of the
/// opening that fits them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifyPatient {
    /// Derived from the patient and the slots, so a redelivered decision has the same id.
    pub notification_id: Uuid,
    pub patient: PatientContact,
    pub practitioner: PractitionerCard,
    pub slots: Vec<OfferedSlot>,
    pub reason: WaitKind,
    pub entry_id: Uuid,
    /// The opening it is about (the first, when openings within the coalescing window were
    /// merged into one message).
    pub batch_id: Uuid,
    /// Which notifiers deliver it: the patient's preferences. Absent means both.
    #[serde(default)]
    pub channels: Channels,
    /// For the `waves` policy: the wave this message belongs to (1 is the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave: Option<u32>,
    /// The patient's preferences page (no login needed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferences_url: Option<String>,
    /// The RFC 8058 one-click unsubscribe address: a `POST` turns availability email off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsubscribe_url: Option<String>,
}
event!(NotifyPatient, subjects::NOTIFY_PATIENT, notification_id);

/// The channels a notification goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channels {
    pub email: bool,
    pub inapp: bool,
}

impl Default for Channels {
    fn default() -> Self {
        Self {
            email: true,
            inapp: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatientContact {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub locale: String,
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PractitionerCard {
    pub id: Uuid,
    pub name: String,
    pub specialty: String,
    pub timezone: String,
    pub consultation_fee_cents: Option<i64>,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferedSlot {
    pub slot_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub booking_url: String,
    /// For the `waves` policy: the slot is held for this message's wave until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_until: Option<DateTime<Utc>>,
}

impl NotifyPatient {
    /// The notification id for telling `patient_id` about `slot_ids` (order does not matter).
    pub fn derive_id(patient_id: Uuid, slot_ids: &[Uuid]) -> Uuid {
        let mut ids = slot_ids.to_vec();
        ids.sort();
        let mut key = format!("notify:{patient_id}");
        for id in ids {
            key.push(':');
            key.push_str(&id.to_string());
        }
        Uuid::new_v5(&ID_NAMESPACE, key.as_bytes())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailSent {
    pub notification_id: Uuid,
    pub patient_id: Uuid,
    pub message_id: String,
}
event!(EmailSent, subjects::EMAIL_SENT, notification_id);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailFailed {
    pub notification_id: Uuid,
    pub patient_id: Uuid,
    /// The SMTP reply or error, without the patient's address.
    pub reason: String,
    pub permanent: bool,
}
event!(EmailFailed, subjects::EMAIL_FAILED, notification_id);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InappStored {
    pub notification_id: Uuid,
    pub patient_id: Uuid,
}
event!(InappStored, subjects::INAPP_STORED, notification_id);

/// What a consumer publishes when it gives up on a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub consumer: String,
    pub original_subject: String,
    pub stream_sequence: u64,
    pub deliveries: i64,
    pub reason: String,
    /// The original payload, as text when it was UTF-8.
    pub payload: String,
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
    (subjects::EMAIL_SENT, "delivery.email.sent.v1.json"),
    (subjects::EMAIL_FAILED, "delivery.email.failed.v1.json"),
    (subjects::INAPP_STORED, "delivery.inapp.stored.v1.json"),
];

#[cfg(test)]
mod tests {
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
