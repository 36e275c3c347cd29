//! What matching publishes: a patient to be told about slots.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Event, ID_NAMESPACE, WaitKind, subjects};

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
    /// Which notifiers deliver it: the patient's preferences. Absent means email and in-app.
    #[serde(default)]
    pub channels: Channels,
    /// Not to be texted before then: the end of the patient's quiet hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_not_before: Option<DateTime<Utc>>,
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
    /// Text messages: only for a patient with a phone number who consented. Absent means off.
    #[serde(default)]
    pub sms: bool,
}

impl Default for Channels {
    fn default() -> Self {
        Self {
            email: true,
            inapp: true,
            sms: false,
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
    /// E.164; present when the patient has a phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
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

/// A patient is to be told that an appointment was booked, moved or cancelled, with what their
/// calendar needs. Scheduling writes it in the transaction of the change itself, so it is
/// self-contained: the notifiers need no other event to send it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppointmentConfirmation {
    /// Derived from the appointment, the kind and the sequence ([`Self::derive_id`]).
    pub confirmation_id: Uuid,
    pub kind: ConfirmationKind,
    /// Also the calendar entry's `UID`: a move keeps the appointment, so it keeps the entry.
    pub appointment_id: Uuid,
    /// The calendar entry's `SEQUENCE`: 0 when booked, one more at each move and at the
    /// cancellation.
    pub sequence: u32,
    pub patient: PatientContact,
    pub practitioner: PractitionerCard,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// For a move: the time the appointment had before (null otherwise).
    #[serde(default)]
    pub replaced: Option<TimeSpan>,
    /// The patient's preferences: which notifiers send it.
    #[serde(default)]
    pub channels: Channels,
    /// The appointment's page (no login needed), where a booked appointment can be cancelled.
    pub manage_url: String,
    /// The appointment's calendar entry as it stands (`text/calendar`, no login needed).
    pub calendar_url: String,
}
event!(
    AppointmentConfirmation,
    subjects::NOTIFY_APPOINTMENT,
    confirmation_id
);

/// What happened to the appointment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmationKind {
    Booked,
    Moved,
    Cancelled,
}

impl ConfirmationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfirmationKind::Booked => "booked",
            ConfirmationKind::Moved => "moved",
            ConfirmationKind::Cancelled => "cancelled",
        }
    }
}

/// A start and an end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSpan {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

impl AppointmentConfirmation {
    /// The confirmation id of `appointment_id`'s change `kind` at `sequence`: the same for a
    /// redelivery, different for every change.
    pub fn derive_id(appointment_id: Uuid, kind: ConfirmationKind, sequence: u32) -> Uuid {
        let key = format!("confirm:{appointment_id}:{}:{sequence}", kind.as_str());
        Uuid::new_v5(&ID_NAMESPACE, key.as_bytes())
    }
}
