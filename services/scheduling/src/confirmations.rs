//! Confirmations: what the patient is told when an appointment is booked, moved or cancelled.
//!
//! Each booking use-case writes an [`AppointmentConfirmation`] into the outbox in the
//! transaction of its change, next to the change's own events: the confirmation commits with the
//! booking or not at all, and it carries everything the notifiers need (the patient's contact and
//! preferences, the practitioner, the times, the links), so neither matching nor the notifiers
//! keep a projection for it. Its id is derived from the appointment, the kind and the
//! appointment's `sequence`, which is also the calendar entry's `SEQUENCE`.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait};
use slotcast_bus::outbox;
use slotcast_events::{
    AppointmentConfirmation, Channels, CloudEvent, ConfirmationKind, PatientContact,
    PractitionerCard, TimeSpan,
};
use slotcast_links::OfferSigner;

use crate::{
    SOURCE,
    entities::{appointment, patient, practitioner, slot},
};

/// What the links of a confirmation are made with: scheduling's public address and the link
/// keys.
#[derive(Clone, Copy)]
pub struct Links<'a> {
    pub base_url: &'a str,
    pub signer: &'a OfferSigner,
}

impl Links<'_> {
    /// The appointment's page, where it can be cancelled.
    pub fn manage_url(&self, token: &str) -> String {
        format!("{}/v1/appointment-links/{token}", self.base_url)
    }

    /// The appointment's calendar entry.
    pub fn calendar_url(&self, token: &str) -> String {
        format!(
            "{}/v1/appointment-links/{token}/calendar.ics",
            self.base_url
        )
    }

    /// A token for the links of `a`, which ends at `ends_at`.
    pub fn token(&self, a: &appointment::Model, ends_at: DateTime<Utc>) -> Result<String, DbErr> {
        self.signer
            .sign_appointment(a.id, a.patient_id, ends_at)
            .map_err(|e| DbErr::Custom(format!("cannot sign an appointment link: {e}")))
    }
}

/// The calendar `SEQUENCE` of an appointment as stored.
pub fn sequence(a: &appointment::Model) -> u32 {
    u32::try_from(a.sequence).unwrap_or(0)
}

/// Writes the confirmation of `kind` for `a` (now on `slot`; for a move, `replaced` is the slot
/// it left) into the outbox, inside the caller's transaction.
pub async fn confirm<C: ConnectionTrait>(
    conn: &C,
    links: Links<'_>,
    a: &appointment::Model,
    slot: &slot::Model,
    kind: ConfirmationKind,
    replaced: Option<&slot::Model>,
) -> Result<(), DbErr> {
    let p = patient::Entity::find_by_id(a.patient_id)
        .one(conn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("patient {}", a.patient_id)))?;
    let dr = practitioner::Entity::find_by_id(a.practitioner_id)
        .one(conn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("practitioner {}", a.practitioner_id)))?;
    let token = links.token(a, slot.ends_at)?;
    let sequence = sequence(a);
    let confirmation_id = AppointmentConfirmation::derive_id(a.id, kind, sequence);
    let texts = p.notify_sms && p.phone.is_some();
    let data = AppointmentConfirmation {
        confirmation_id,
        kind,
        appointment_id: a.id,
        sequence,
        patient: PatientContact {
            id: p.id,
            name: p.name,
            email: p.email,
            locale: p.locale,
            timezone: p.timezone,
            phone: p.phone,
        },
        practitioner: PractitionerCard {
            id: dr.id,
            name: dr.name,
            specialty: dr.specialty,
            timezone: dr.timezone,
            consultation_fee_cents: dr.consultation_fee_cents,
            currency: dr.currency,
        },
        starts_at: slot.starts_at,
        ends_at: slot.ends_at,
        replaced: replaced.map(|s| TimeSpan {
            starts_at: s.starts_at,
            ends_at: s.ends_at,
        }),
        channels: Channels {
            email: p.notify_email,
            inapp: p.notify_inapp,
            sms: texts,
        },
        manage_url: links.manage_url(&token),
        calendar_url: links.calendar_url(&token),
    };
    // The event id is the confirmation id: a re-publish is dropped by the stream.
    outbox::enqueue(conn, &CloudEvent::with_id(confirmation_id, SOURCE, data)).await
}
