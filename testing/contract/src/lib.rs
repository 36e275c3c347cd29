//! The slotcast event contract, checkable from Rust.
//!
//! `proto-events/schemas/` holds one JSON Schema (draft 2020-12) per subject of
//! [`slotcast_events::CATALOGUE`], each describing the whole CloudEvents envelope, plus
//! `deadletter.v1.json` for the plain-JSON dead letters on `slotcast.deadletter.<consumer>`.
//! This crate embeds them at compile time and validates events against them:
//!
//! ```
//! use serde_json::json;
//!
//! let event = json!({"specversion": "1.0"});
//! assert!(slotcast_contract::validate_event("slotcast.scheduling.slot.created", &event).is_err());
//! assert!(slotcast_contract::schema_for("slotcast.scheduling.slot.created").is_some());
//! assert!(slotcast_contract::schema_for("slotcast.nope").is_none());
//! ```
//!
//! Formats (`uuid`, `date-time`, `email`, `uri`) are asserted, not just annotated.
//!
//! [`openapi`] does the same for the HTTP APIs: it checks a service's OpenAPI document and real
//! responses against it, and finds routes registered without a documented operation.

pub mod openapi;

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::Value;
use slotcast_events::{CATALOGUE, subjects};

/// The schema file of dead letters (raw struct, no CloudEvents envelope).
pub const DEADLETTER_SCHEMA: &str = "deadletter.v1.json";

macro_rules! embed {
    ($($file:literal),* $(,)?) => {
        &[$(($file, include_str!(concat!("../../../proto-events/schemas/", $file)))),*]
    };
}

/// Every schema file of `proto-events/schemas/`, by file name, with its text.
pub const SCHEMAS: &[(&str, &str)] = embed![
    "practitioner.registered.v1.json",
    "patient.registered.v1.json",
    "slot.created.v1.json",
    "slot.released.v1.json",
    "slot.booked.v1.json",
    "slot.withdrawn.v1.json",
    "appointment.cancelled.v1.json",
    "appointment.moved.v1.json",
    "offer.claimed.v1.json",
    "offer.lost.v1.json",
    "waitlist.joined.v1.json",
    "waitlist.closed.v1.json",
    "waitlist.updated.v1.json",
    "practitioner.policy_changed.v1.json",
    "patient.preferences_changed.v1.json",
    "notify.patient.v1.json",
    "notify.appointment.v1.json",
    "delivery.email.sent.v1.json",
    "delivery.email.failed.v1.json",
    "delivery.inapp.stored.v1.json",
    "delivery.sms.sent.v1.json",
    "delivery.sms.failed.v1.json",
    "delivery.sms.delivered.v1.json",
    "deadletter.v1.json",
];

/// Why an event does not meet the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    /// The subject is neither in the catalogue nor a dead-letter subject.
    #[error("subject {0:?} is not in the slotcast event catalogue")]
    UnknownSubject(String),
    /// The event does not validate against the subject's schema.
    #[error("event on {subject:?} violates {schema}: {}", .errors.join("; "))]
    Invalid {
        subject: String,
        schema: &'static str,
        /// One entry per violation: `<JSON pointer>: <message>`.
        errors: Vec<String>,
    },
}

/// Whether `subject` is a dead-letter subject, `slotcast.deadletter.<consumer>`.
pub fn is_deadletter_subject(subject: &str) -> bool {
    subject
        .strip_prefix(subjects::DEADLETTER_PREFIX)
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|consumer| !consumer.is_empty())
}

/// The schema file name (under `proto-events/schemas/`) for a subject.
pub fn schema_file_for(subject: &str) -> Option<&'static str> {
    if is_deadletter_subject(subject) {
        return Some(DEADLETTER_SCHEMA);
    }
    CATALOGUE
        .iter()
        .find(|(s, _)| *s == subject)
        .map(|(_, file)| *file)
}

/// The text of the JSON Schema for a subject, or `None` for a subject outside the catalogue.
pub fn schema_for(subject: &str) -> Option<&'static str> {
    let file = schema_file_for(subject)?;
    SCHEMAS
        .iter()
        .find(|(f, _)| *f == file)
        .map(|(_, text)| *text)
}

/// Checks an event (a CloudEvent envelope, or a dead letter on a dead-letter subject) against
/// the schema of the subject it is published on.
pub fn validate_event(subject: &str, event: &Value) -> Result<(), ContractError> {
    let schema = schema_file_for(subject)
        .ok_or_else(|| ContractError::UnknownSubject(subject.to_owned()))?;
    let validator = validators()
        .get(schema)
        .ok_or_else(|| ContractError::UnknownSubject(subject.to_owned()))?;
    let errors: Vec<String> = validator
        .iter_errors(event)
        .map(|e| format!("{}: {}", e.instance_path(), e))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ContractError::Invalid {
            subject: subject.to_owned(),
            schema,
            errors,
        })
    }
}

/// Compiles every embedded schema once.
///
/// The schemas are compiled into the binary (`include_str!`) and the tests of this crate parse
/// and compile every one of them (`every_embedded_schema_compiles`), so a failure here can only
/// be a broken build that the test suite already rejects; there is no input at run time that
/// could make it fail. That is why this is the one place that panics instead of returning an
/// error.
fn validators() -> &'static HashMap<&'static str, Validator> {
    static VALIDATORS: OnceLock<HashMap<&'static str, Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        SCHEMAS
            .iter()
            .map(|(file, text)| {
                let validator = compile(text)
                    .unwrap_or_else(|e| panic!("embedded schema {file} is invalid: {e}"));
                (*file, validator)
            })
            .collect()
    })
}

/// Parses and compiles one schema as draft 2020-12, with format assertion on.
fn compile(text: &str) -> Result<Validator, String> {
    let schema: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    jsonschema::draft202012::meta::validate(&schema)
        .map_err(|e| format!("not a draft 2020-12 schema: {e}"))?;
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|e| format!("does not compile: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_schema_compiles() {
        for (file, text) in SCHEMAS {
            if let Err(e) = compile(text) {
                panic!("{file}: {e}");
            }
        }
        assert_eq!(validators().len(), SCHEMAS.len());
    }

    #[test]
    fn every_catalogue_entry_is_embedded() {
        for (subject, file) in CATALOGUE {
            assert_eq!(schema_file_for(subject), Some(*file));
            assert!(schema_for(subject).is_some(), "{file} is not embedded");
        }
        assert_eq!(SCHEMAS.len(), CATALOGUE.len() + 1);
    }

    #[test]
    fn dead_letter_subjects_are_recognised() {
        assert!(is_deadletter_subject("slotcast.deadletter.matching"));
        assert!(is_deadletter_subject("slotcast.deadletter.email-notifier"));
        assert!(!is_deadletter_subject("slotcast.deadletter"));
        assert!(!is_deadletter_subject("slotcast.deadletter."));
        assert!(!is_deadletter_subject("slotcast.deadletterx.matching"));
        assert_eq!(
            schema_file_for("slotcast.deadletter.matching"),
            Some(DEADLETTER_SCHEMA)
        );
        assert_eq!(schema_file_for("slotcast.scheduling.nope"), None);
    }
}
