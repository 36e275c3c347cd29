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

/// A text message was accepted by the SMS gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmsSent {
    pub notification_id: Uuid,
    pub patient_id: Uuid,
    /// The gateway's reference for the message, where it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_id: Option<String>,
    /// The message's length in SMS segments.
    pub segments: u32,
}
event!(SmsSent, subjects::SMS_SENT, notification_id);

/// A text message could not be sent, or the network reported it undelivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmsFailed {
    pub notification_id: Uuid,
    pub patient_id: Uuid,
    /// The gateway's answer or delivery report, without the patient's number.
    pub reason: String,
    pub permanent: bool,
}
event!(SmsFailed, subjects::SMS_FAILED, notification_id);

/// The network reported a text message delivered to the patient's phone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmsDelivered {
    pub notification_id: Uuid,
    pub patient_id: Uuid,
}
event!(SmsDelivered, subjects::SMS_DELIVERED, notification_id);

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
