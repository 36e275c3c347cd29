//! What the notifiers publish: delivery results, and dead letters.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Event, subjects};

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
