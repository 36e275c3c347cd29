//! What the Rust event types serialise must validate against `proto-events/schemas/`, and what
//! drifts from them must not.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};
use slotcast_contract::{
    ContractError, DEADLETTER_SCHEMA, SCHEMAS, schema_file_for, schema_for, validate_event,
};
use slotcast_events::{
    AppointmentCancelled, AppointmentConfirmation, AppointmentMoved, CATALOGUE, Channels,
    CloseReason, CloudEvent, ConfirmationKind, DeadLetter, EmailFailed, EmailSent, Event,
    InappStored, LostReason, NotifyPatient, OfferClaimed, OfferLost, OfferPolicy, OfferedSlot,
    PatientContact, PatientPreferencesChanged, PatientRegistered, PractitionerCard,
    PractitionerPolicyChanged, PractitionerRegistered, Priority, QuietHoursSetting, ReleaseReason,
    SlotBooked, SlotCreated, SlotReleased, SlotWithdrawn, SmsDelivered, SmsFailed, SmsSent,
    TimeSpan, WaitKind, WaitlistClosed, WaitlistJoined, WaitlistUpdated, streams, subjects,
};
use uuid::Uuid;

fn proto_events() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto-events")
}

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 3, day, hour, 30, 0)
        .single()
        .expect("a valid time")
}

fn id() -> Uuid {
    Uuid::now_v7()
}

/// Wraps a payload the way the producers do and serialises it.
fn envelope<T: Event>(payload: T) -> (&'static str, Value) {
    let event = CloudEvent::new("test", payload);
    (
        T::SUBJECT,
        serde_json::to_value(&event).expect("an event serialises"),
    )
}

fn slot_created() -> SlotCreated {
    SlotCreated {
        slot_id: id(),
        practitioner_id: id(),
        starts_at: at(4, 9),
        ends_at: at(4, 9) + Duration::minutes(30),
        batch_id: id(),
        batch_size: 3,
        offer_policy: Default::default(),
    }
}

fn notify_patient() -> NotifyPatient {
    let patient_id = id();
    let slots: Vec<OfferedSlot> = (0..2)
        .map(|i| {
            let slot_id = id();
            OfferedSlot {
                slot_id,
                starts_at: at(5, 9 + i),
                ends_at: at(5, 9 + i) + Duration::minutes(30),
                booking_url: format!("https://clinic.example/v1/offers/eyJhbGciOi.{i}.sig"),
                held_until: None,
            }
        })
        .collect();
    let slot_ids: Vec<Uuid> = slots.iter().map(|s| s.slot_id).collect();
    NotifyPatient {
        notification_id: NotifyPatient::derive_id(patient_id, &slot_ids),
        patient: PatientContact {
            id: patient_id,
            name: "Ada Lovelace".into(),
            email: "ada@example.org".into(),
            locale: "en-GB".into(),
            timezone: Some("Europe/London".into()),
            phone: Some("+447700900123".into()),
        },
        practitioner: PractitionerCard {
            id: id(),
            name: "Dr. Grace Hopper".into(),
            specialty: "general practice".into(),
            timezone: "Europe/Paris".into(),
            consultation_fee_cents: Some(2500),
            currency: "EUR".into(),
        },
        slots,
        reason: WaitKind::MoveUp,
        entry_id: id(),
        batch_id: id(),
        channels: Default::default(),
        wave: None,
        preferences_url: None,
        unsubscribe_url: None,
        sms_not_before: Some(at(4, 7)),
    }
}

fn confirmation(kind: ConfirmationKind) -> AppointmentConfirmation {
    let n = notify_patient();
    let appointment_id = id();
    let sequence = u32::from(kind != ConfirmationKind::Booked);
    AppointmentConfirmation {
        confirmation_id: AppointmentConfirmation::derive_id(appointment_id, kind, sequence),
        kind,
        appointment_id,
        sequence,
        patient: n.patient,
        practitioner: n.practitioner,
        starts_at: at(5, 9),
        ends_at: at(5, 9) + Duration::minutes(30),
        replaced: (kind == ConfirmationKind::Moved).then(|| TimeSpan {
            starts_at: at(9, 9),
            ends_at: at(9, 9) + Duration::minutes(30),
        }),
        channels: Channels {
            email: kind != ConfirmationKind::Cancelled,
            inapp: true,
            sms: false,
        },
        manage_url: "https://clinic.example/v1/appointment-links/eyJhbGciOi.x.sig".into(),
        calendar_url: "https://clinic.example/v1/appointment-links/eyJhbGciOi.x.sig/calendar.ics"
            .into(),
    }
}

fn dead_letter() -> DeadLetter {
    DeadLetter {
        consumer: "matching".into(),
        original_subject: subjects::SLOT_CREATED.into(),
        stream_sequence: 42,
        deliveries: 5,
        reason: "data.slot_id: invalid uuid".into(),
        payload: "{\"specversion\":\"1.0\"}".into(),
    }
}

/// A realistic sample of every event type, with each `Option` both set and unset and each enum
/// value at least once.
fn samples() -> Vec<(&'static str, Value)> {
    let mut out = vec![
        envelope(PractitionerRegistered {
            practitioner_id: id(),
            name: "Dr. Grace Hopper".into(),
            specialty: "general practice".into(),
            timezone: "Europe/Paris".into(),
            consultation_fee_cents: Some(2500),
            currency: "EUR".into(),
            offer_policy: None,
        }),
        envelope(PractitionerRegistered {
            practitioner_id: id(),
            name: "Dr. Jean Bernard".into(),
            specialty: "dermatology".into(),
            timezone: "America/New_York".into(),
            consultation_fee_cents: None,
            currency: "USD".into(),
            offer_policy: Some(OfferPolicy::Waves),
        }),
        envelope(PatientRegistered {
            patient_id: id(),
            name: "Ada Lovelace".into(),
            email: "ada@example.org".into(),
            locale: "en-GB".into(),
            timezone: Some("Europe/London".into()),
            phone: None,
        }),
        envelope(PatientRegistered {
            patient_id: id(),
            name: "Émile Zola".into(),
            email: "emile.zola+rdv@example.fr".into(),
            locale: "fr".into(),
            timezone: None,
            phone: Some("+33612345678".into()),
        }),
        envelope(slot_created()),
        envelope(SlotBooked {
            slot_id: id(),
            practitioner_id: id(),
            patient_id: id(),
            appointment_id: id(),
            starts_at: at(6, 14),
        }),
        envelope(SlotWithdrawn {
            slot_id: id(),
            practitioner_id: id(),
        }),
        envelope(AppointmentCancelled {
            appointment_id: id(),
            slot_id: id(),
            patient_id: id(),
            practitioner_id: id(),
        }),
        envelope(AppointmentMoved {
            appointment_id: id(),
            patient_id: id(),
            practitioner_id: id(),
            from_slot_id: id(),
            to_slot_id: id(),
        }),
        envelope(OfferClaimed {
            notification_id: id(),
            patient_id: id(),
            slot_id: id(),
            appointment_id: id(),
            moved_from_slot_id: None,
        }),
        envelope(OfferClaimed {
            notification_id: id(),
            patient_id: id(),
            slot_id: id(),
            appointment_id: id(),
            moved_from_slot_id: Some(id()),
        }),
        envelope(OfferLost {
            notification_id: id(),
            patient_id: id(),
            slot_id: id(),
            reason: LostReason::Taken,
        }),
        envelope(OfferLost {
            notification_id: id(),
            patient_id: id(),
            slot_id: id(),
            reason: LostReason::Held,
        }),
        envelope(WaitlistJoined {
            entry_id: id(),
            patient_id: id(),
            practitioner_id: id(),
            kind: WaitKind::New,
            appointment_id: None,
            held_starts_at: None,
            earliest: None,
            latest: None,
            joined_at: at(1, 8),
            priority: Default::default(),
            expires_at: None,
        }),
        envelope(WaitlistJoined {
            entry_id: id(),
            patient_id: id(),
            practitioner_id: id(),
            kind: WaitKind::MoveUp,
            appointment_id: Some(id()),
            held_starts_at: Some(at(20, 10)),
            earliest: Some(at(2, 8)),
            latest: Some(at(19, 18)),
            joined_at: at(1, 8),
            priority: Priority::Urgent,
            expires_at: Some(at(28, 0)),
        }),
        envelope(notify_patient()),
        envelope(confirmation(ConfirmationKind::Booked)),
        envelope(confirmation(ConfirmationKind::Moved)),
        envelope(confirmation(ConfirmationKind::Cancelled)),
        envelope(NotifyPatient {
            reason: WaitKind::New,
            patient: PatientContact {
                timezone: None,
                ..notify_patient().patient
            },
            practitioner: PractitionerCard {
                consultation_fee_cents: None,
                ..notify_patient().practitioner
            },
            slots: notify_patient()
                .slots
                .into_iter()
                .map(|s| OfferedSlot {
                    held_until: Some(at(4, 12)),
                    ..s
                })
                .collect(),
            channels: Channels {
                email: false,
                inapp: true,
                sms: false,
            },
            wave: Some(2),
            preferences_url: Some("https://clinic.example/v1/preferences/eyJhbGciOi.x.sig".into()),
            unsubscribe_url: Some("https://clinic.example/v1/unsubscribe/eyJhbGciOi.x.sig".into()),
            ..notify_patient()
        }),
        envelope(WaitlistUpdated {
            entry_id: id(),
            patient_id: id(),
            practitioner_id: id(),
            priority: Priority::Urgent,
            expires_at: Some(at(30, 0)),
        }),
        envelope(WaitlistUpdated {
            entry_id: id(),
            patient_id: id(),
            practitioner_id: id(),
            priority: Priority::Routine,
            expires_at: None,
        }),
        envelope(PractitionerPolicyChanged {
            practitioner_id: id(),
            offer_policy: Some(OfferPolicy::Waves),
            quiet_hours: QuietHoursSetting::parse("22:00-07:30"),
            quiet_hours_all_channels: true,
        }),
        envelope(PractitionerPolicyChanged {
            practitioner_id: id(),
            offer_policy: None,
            quiet_hours: Some(QuietHoursSetting::Off),
            quiet_hours_all_channels: false,
        }),
        envelope(PractitionerPolicyChanged {
            practitioner_id: id(),
            offer_policy: None,
            quiet_hours: None,
            quiet_hours_all_channels: false,
        }),
        envelope(PatientPreferencesChanged {
            patient_id: id(),
            email: false,
            inapp: true,
            via: "one_click".into(),
            sms: true,
        }),
        envelope(EmailSent {
            notification_id: id(),
            patient_id: id(),
            message_id: "<0192f3a4.5b6c@slotcast.example>".into(),
        }),
        envelope(EmailFailed {
            notification_id: id(),
            patient_id: id(),
            reason: "550 5.1.1 mailbox unavailable".into(),
            permanent: true,
        }),
        envelope(EmailFailed {
            notification_id: id(),
            patient_id: id(),
            reason: "connection refused".into(),
            permanent: false,
        }),
        envelope(InappStored {
            notification_id: id(),
            patient_id: id(),
        }),
        envelope(SmsSent {
            notification_id: id(),
            patient_id: id(),
            gateway_id: Some("0f3c9a1e".into()),
            segments: 1,
        }),
        envelope(SmsSent {
            notification_id: id(),
            patient_id: id(),
            gateway_id: None,
            segments: 2,
        }),
        envelope(SmsFailed {
            notification_id: id(),
            patient_id: id(),
            reason: "delivery report: undelivered".into(),
            permanent: true,
        }),
        envelope(SmsDelivered {
            notification_id: id(),
            patient_id: id(),
        }),
    ];
    for (reason, released_by) in [
        (ReleaseReason::Cancelled, None),
        (ReleaseReason::MovedUp, Some(id())),
    ] {
        let s = slot_created();
        out.push(envelope(SlotReleased {
            slot_id: s.slot_id,
            practitioner_id: s.practitioner_id,
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            batch_id: s.batch_id,
            batch_size: 1,
            reason,
            released_by,
            offer_policy: if released_by.is_some() {
                OfferPolicy::Waves
            } else {
                OfferPolicy::Broadcast
            },
        }));
    }
    for reason in [
        CloseReason::Left,
        CloseReason::Fulfilled,
        CloseReason::AppointmentCancelled,
    ] {
        out.push(envelope(WaitlistClosed {
            entry_id: id(),
            patient_id: id(),
            practitioner_id: id(),
            reason,
        }));
    }
    out
}

fn sample(subject: &str) -> Value {
    samples()
        .into_iter()
        .find(|(s, _)| *s == subject)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no sample for {subject}"))
}

#[track_caller]
fn assert_invalid(subject: &str, event: &Value) -> Vec<String> {
    match validate_event(subject, event) {
        Err(ContractError::Invalid { errors, .. }) => {
            assert!(!errors.is_empty());
            errors
        }
        other => panic!("expected {subject} to be refused, got {other:?} for {event:#}"),
    }
}

#[test]
fn every_event_type_validates() {
    let mut seen = BTreeSet::new();
    for (subject, event) in samples() {
        if let Err(e) = validate_event(subject, &event) {
            panic!("{e}\n{event:#}");
        }
        seen.insert(subject);
    }
    let catalogue: BTreeSet<&str> = CATALOGUE.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seen, catalogue,
        "every subject of the catalogue has a sample"
    );
}

#[test]
fn a_dead_letter_validates_on_any_dead_letter_subject() {
    let letter = serde_json::to_value(dead_letter()).expect("serialises");
    for consumer in ["matching", "email-notifier", "inapp-notifier"] {
        let subject = format!("{}.{consumer}", subjects::DEADLETTER_PREFIX);
        validate_event(&subject, &letter).expect("a dead letter validates");
    }
}

#[test]
fn a_missing_data_field_is_refused() {
    let mut event = sample(subjects::SLOT_CREATED);
    event["data"]
        .as_object_mut()
        .expect("data")
        .remove("batch_id");
    let errors = assert_invalid(subjects::SLOT_CREATED, &event);
    assert!(errors.iter().any(|e| e.contains("batch_id")), "{errors:?}");

    // `Option` fields are always present (as null when unset).
    let mut event = sample(subjects::SLOT_RELEASED);
    event["data"]
        .as_object_mut()
        .expect("data")
        .remove("released_by");
    assert_invalid(subjects::SLOT_RELEASED, &event);

    let mut event = sample(subjects::SLOT_CREATED);
    event.as_object_mut().expect("envelope").remove("data");
    assert_invalid(subjects::SLOT_CREATED, &event);
}

#[test]
fn a_missing_envelope_attribute_is_refused() {
    for attribute in [
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "subject",
        "datacontenttype",
    ] {
        let mut event = sample(subjects::SLOT_BOOKED);
        event.as_object_mut().expect("envelope").remove(attribute);
        assert_invalid(subjects::SLOT_BOOKED, &event);
    }
}

#[test]
fn a_wrong_type_is_refused() {
    let mut event = sample(subjects::SLOT_CREATED);
    event["type"] = json!("slotcast.scheduling.slot.booked.v1");
    assert_invalid(subjects::SLOT_CREATED, &event);
    event["type"] = json!("slotcast.scheduling.slot.created.v2");
    assert_invalid(subjects::SLOT_CREATED, &event);
    event["type"] = json!("slotcast.scheduling.slot.created");
    assert_invalid(subjects::SLOT_CREATED, &event);

    // An event published on another event's subject.
    let event = sample(subjects::SLOT_WITHDRAWN);
    assert_invalid(subjects::SLOT_BOOKED, &event);
    assert_invalid(subjects::APPOINTMENT_CANCELLED, &event);
}

#[test]
fn a_wrong_envelope_constant_is_refused() {
    let mut event = sample(subjects::INAPP_STORED);
    event["specversion"] = json!("0.3");
    assert_invalid(subjects::INAPP_STORED, &event);

    let mut event = sample(subjects::INAPP_STORED);
    event["datacontenttype"] = json!("text/plain");
    assert_invalid(subjects::INAPP_STORED, &event);

    let mut event = sample(subjects::INAPP_STORED);
    event["id"] = json!("not-a-uuid");
    assert_invalid(subjects::INAPP_STORED, &event);

    let mut event = sample(subjects::INAPP_STORED);
    event["time"] = json!("yesterday");
    assert_invalid(subjects::INAPP_STORED, &event);
}

#[test]
fn an_extra_field_in_data_is_refused() {
    let mut event = sample(subjects::SLOT_CREATED);
    event["data"]["room"] = json!("B12");
    let errors = assert_invalid(subjects::SLOT_CREATED, &event);
    assert!(errors.iter().any(|e| e.contains("room")), "{errors:?}");

    // Nested objects are closed too.
    let mut event = sample(subjects::NOTIFY_PATIENT);
    event["data"]["patient"]["phone"] = json!("+33 1 23 45 67 89");
    assert_invalid(subjects::NOTIFY_PATIENT, &event);

    let mut event = sample(subjects::NOTIFY_PATIENT);
    event["data"]["slots"][1]["room"] = json!("B12");
    assert_invalid(subjects::NOTIFY_PATIENT, &event);

    let mut event = sample(subjects::NOTIFY_PATIENT);
    event["data"]["practitioner"]["rating"] = json!(5);
    assert_invalid(subjects::NOTIFY_PATIENT, &event);

    let mut letter = serde_json::to_value(dead_letter()).expect("serialises");
    letter["extra"] = json!(true);
    assert_invalid("slotcast.deadletter.matching", &letter);
}

#[test]
fn envelope_extensions_are_allowed() {
    let mut event = sample(subjects::NOTIFY_PATIENT);
    event["traceparent"] = json!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    event["dataschema"] = json!("https://slotcast.example/schemas/notify.patient.v1.json");
    validate_event(subjects::NOTIFY_PATIENT, &event).expect("extensions are allowed");
}

#[test]
fn wrong_data_types_are_refused() {
    type Mutation = (&'static str, fn(&mut Value));
    let mutations: &[Mutation] = &[
        (subjects::SLOT_CREATED, |e| {
            e["data"]["slot_id"] = json!("slot-1")
        }),
        (subjects::SLOT_CREATED, |e| {
            e["data"]["starts_at"] = json!("2030-03-04 09:30")
        }),
        (subjects::SLOT_CREATED, |e| {
            e["data"]["batch_size"] = json!(0)
        }),
        (subjects::SLOT_CREATED, |e| {
            e["data"]["batch_size"] = json!(-1)
        }),
        (subjects::SLOT_CREATED, |e| {
            e["data"]["batch_size"] = json!("3")
        }),
        (subjects::SLOT_RELEASED, |e| {
            e["data"]["reason"] = json!("Cancelled")
        }),
        (subjects::SLOT_BOOKED, |e| {
            e["data"]["patient_id"] = Value::Null
        }),
        (subjects::WAITLIST_JOINED, |e| {
            e["data"]["kind"] = json!("later")
        }),
        (subjects::WAITLIST_CLOSED, |e| {
            e["data"]["reason"] = json!("expired")
        }),
        (subjects::NOTIFY_PATIENT, |e| e["data"]["slots"] = json!([])),
        (subjects::NOTIFY_APPOINTMENT, |e| {
            e["data"]["kind"] = json!("rescheduled")
        }),
        (subjects::NOTIFY_APPOINTMENT, |e| {
            e["data"]["sequence"] = json!(-1)
        }),
        (subjects::NOTIFY_PATIENT, |e| {
            e["data"]["patient"]["email"] = json!("not an address")
        }),
        (subjects::NOTIFY_PATIENT, |e| {
            e["data"]["slots"][0]["booking_url"] = json!("not a url")
        }),
        (subjects::NOTIFY_PATIENT, |e| {
            e["data"]["practitioner"]["consultation_fee_cents"] = json!(12.5)
        }),
        (subjects::PRACTITIONER_REGISTERED, |e| {
            e["data"]["currency"] = json!("euro")
        }),
        (subjects::EMAIL_FAILED, |e| {
            e["data"]["permanent"] = json!("yes")
        }),
    ];
    for (subject, mutate) in mutations {
        let mut event = sample(subject);
        mutate(&mut event);
        assert_invalid(subject, &event);
    }
}

#[test]
fn a_bad_dead_letter_is_refused() {
    let subject = "slotcast.deadletter.matching";
    let mut letter = serde_json::to_value(dead_letter()).expect("serialises");
    letter["stream_sequence"] = json!(-1);
    assert_invalid(subject, &letter);

    let mut letter = serde_json::to_value(dead_letter()).expect("serialises");
    letter.as_object_mut().expect("object").remove("reason");
    assert_invalid(subject, &letter);

    // Dead letters are plain JSON, not CloudEvents.
    let wrapped = json!({
        "specversion": "1.0",
        "id": Uuid::now_v7(),
        "source": "matching",
        "type": "slotcast.deadletter.v1",
        "time": Utc::now(),
        "subject": "matching",
        "datacontenttype": "application/json",
        "data": dead_letter(),
    });
    assert_invalid(subject, &wrapped);
}

#[test]
fn an_unknown_subject_is_refused() {
    let event = sample(subjects::SLOT_CREATED);
    for subject in [
        "slotcast.scheduling.slot.moved",
        "slotcast.scheduling.slot.created.v1",
        "slotcast.deadletter",
        "",
    ] {
        assert_eq!(
            validate_event(subject, &event),
            Err(ContractError::UnknownSubject(subject.to_owned()))
        );
        assert_eq!(schema_for(subject), None);
    }
}

#[test]
fn the_error_names_the_subject_schema_and_place() {
    let mut event = sample(subjects::SLOT_CREATED);
    event["data"]["slot_id"] = json!(7);
    let err = validate_event(subjects::SLOT_CREATED, &event).expect_err("refused");
    let text = err.to_string();
    assert!(text.contains(subjects::SLOT_CREATED), "{text}");
    assert!(text.contains("slot.created.v1.json"), "{text}");
    assert!(text.contains("/data/slot_id"), "{text}");
}

fn schema_files() -> Vec<(String, String)> {
    let dir = proto_events().join("schemas");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("a UTF-8 file name")
                .to_owned();
            let text = std::fs::read_to_string(&path).expect("readable");
            (name, text)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_schema_file_is_a_valid_json_schema_and_embedded() {
    let files = schema_files();
    let mut ids = BTreeSet::new();
    for (name, text) in &files {
        assert!(name.ends_with(".v1.json"), "unexpected file {name}");
        let schema: Value =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
            panic!("{name} is not a draft 2020-12 schema: {e}");
        }
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        assert!(
            ids.insert(schema["$id"].to_string()),
            "{name}: duplicate $id"
        );
        let embedded = SCHEMAS.iter().find(|(f, _)| f == name);
        assert_eq!(
            embedded.map(|(_, t)| *t),
            Some(text.as_str()),
            "{name} is not embedded in slotcast-contract"
        );
    }
    assert_eq!(files.len(), SCHEMAS.len());
}

#[test]
fn every_catalogue_entry_has_a_schema_whose_type_is_the_subject_v1() {
    let names: BTreeSet<String> = schema_files().into_iter().map(|(n, _)| n).collect();
    for (subject, file) in CATALOGUE {
        assert!(names.contains(*file), "{file} for {subject} is missing");
        assert_eq!(schema_file_for(subject), Some(*file));
        let schema: Value =
            serde_json::from_str(schema_for(subject).expect("embedded")).expect("JSON");
        assert_eq!(
            schema["properties"]["type"]["const"],
            json!(format!("{subject}.v1")),
            "{file}"
        );
        assert_eq!(
            schema["properties"]["data"]["additionalProperties"],
            json!(false)
        );
        assert_eq!(schema["additionalProperties"], json!(true), "{file}");
    }
    assert!(names.contains(DEADLETTER_SCHEMA));
}

#[test]
fn the_asyncapi_document_covers_the_catalogue() {
    let path = proto_events().join("asyncapi.yaml");
    let text = std::fs::read_to_string(&path).expect("asyncapi.yaml is readable");
    assert!(text.contains("asyncapi: 3.0.0"));
    for (subject, file) in CATALOGUE {
        assert!(
            text.contains(&format!("address: {subject}\n")),
            "no channel for {subject}"
        );
        assert!(
            text.contains(&format!("'./schemas/{file}'")),
            "{file} is not referenced"
        );
    }
    assert!(text.contains("address: slotcast.deadletter.{consumer}"));
    assert!(text.contains(&format!("'./schemas/{DEADLETTER_SCHEMA}'")));
    for (stream, filter) in [
        (streams::SCHEDULING, streams::SCHEDULING_SUBJECTS),
        (streams::NOTIFY, streams::NOTIFY_SUBJECTS),
        (streams::DELIVERY, streams::DELIVERY_SUBJECTS),
        (streams::DEADLETTER, streams::DEADLETTER_SUBJECTS),
    ] {
        assert!(text.contains(stream), "{stream} is not described");
        assert!(text.contains(filter), "{filter} is not described");
    }
    for header in ["Nats-Msg-Id", "traceparent"] {
        assert!(text.contains(header), "{header} is not described");
    }
}
