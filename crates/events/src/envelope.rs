//! The CloudEvents 1.0 envelope in structured JSON mode, the [`Event`] trait that ties a payload to
//! its subject, and decoding at the edge.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

/// The CloudEvents spec version we speak.
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
    /// ([`crate::order`]); `None` for events no consumer orders.
    fn order_key(&self) -> Option<Uuid> {
        None
    }
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
