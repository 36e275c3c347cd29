//! The scheduling events matching consumes, decoded once, at the edge, into [`Input`].

use slotcast_events::{
    CloudEvent, DecodeError, OfferClaimed, OfferLost, PatientPreferencesChanged, PatientRegistered,
    PractitionerPolicyChanged, PractitionerRegistered, SlotBooked, SlotCreated, SlotReleased,
    SlotWithdrawn, WaitlistClosed, WaitlistJoined, WaitlistUpdated, decode, subjects,
};

/// One scheduling event, as the projector applies it.
#[derive(Debug, Clone)]
pub enum Input {
    PractitionerRegistered(CloudEvent<PractitionerRegistered>),
    PractitionerPolicyChanged(CloudEvent<PractitionerPolicyChanged>),
    PatientRegistered(CloudEvent<PatientRegistered>),
    PatientPreferencesChanged(CloudEvent<PatientPreferencesChanged>),
    WaitlistJoined(CloudEvent<WaitlistJoined>),
    WaitlistUpdated(CloudEvent<WaitlistUpdated>),
    WaitlistClosed(CloudEvent<WaitlistClosed>),
    SlotCreated(CloudEvent<SlotCreated>),
    SlotReleased(CloudEvent<SlotReleased>),
    SlotBooked(CloudEvent<SlotBooked>),
    SlotWithdrawn(CloudEvent<SlotWithdrawn>),
    OfferClaimed(CloudEvent<OfferClaimed>),
    OfferLost(CloudEvent<OfferLost>),
    /// A subject matching does not use, left unparsed: `appointment.cancelled` and
    /// `appointment.moved` (a `slot.released` follows each), and any subject newer than this
    /// code.
    Ignored,
}

impl Input {
    /// Decodes the payload of a message on `subject`.
    pub fn decode(subject: &str, payload: &[u8]) -> Result<Self, DecodeError> {
        Ok(match subject {
            subjects::PRACTITIONER_REGISTERED => Input::PractitionerRegistered(decode(payload)?),
            subjects::PRACTITIONER_POLICY_CHANGED => {
                Input::PractitionerPolicyChanged(decode(payload)?)
            }
            subjects::PATIENT_REGISTERED => Input::PatientRegistered(decode(payload)?),
            subjects::PATIENT_PREFERENCES_CHANGED => {
                Input::PatientPreferencesChanged(decode(payload)?)
            }
            subjects::WAITLIST_JOINED => Input::WaitlistJoined(decode(payload)?),
            subjects::WAITLIST_UPDATED => Input::WaitlistUpdated(decode(payload)?),
            subjects::WAITLIST_CLOSED => Input::WaitlistClosed(decode(payload)?),
            subjects::SLOT_CREATED => Input::SlotCreated(decode(payload)?),
            subjects::SLOT_RELEASED => Input::SlotReleased(decode(payload)?),
            subjects::SLOT_BOOKED => Input::SlotBooked(decode(payload)?),
            subjects::SLOT_WITHDRAWN => Input::SlotWithdrawn(decode(payload)?),
            subjects::OFFER_CLAIMED => Input::OfferClaimed(decode(payload)?),
            subjects::OFFER_LOST => Input::OfferLost(decode(payload)?),
            subjects::APPOINTMENT_CANCELLED | subjects::APPOINTMENT_MOVED => Input::Ignored,
            _ => Input::Ignored,
        })
    }
}

#[cfg(test)]
mod tests {
    use slotcast_events::{Event, SlotWithdrawn};
    use uuid::Uuid;

    use super::*;

    #[test]
    fn a_used_subject_is_decoded_and_a_malformed_one_is_an_error() {
        let event = CloudEvent::new(
            slotcast_events::sources::SCHEDULING,
            SlotWithdrawn {
                slot_id: Uuid::now_v7(),
                practitioner_id: Uuid::now_v7(),
            },
        );
        let bytes = serde_json::to_vec(&event).unwrap();
        assert!(matches!(
            Input::decode(SlotWithdrawn::SUBJECT, &bytes),
            Ok(Input::SlotWithdrawn(e)) if e == event
        ));
        // The right payload on the wrong subject is caught by its type.
        assert!(Input::decode(subjects::SLOT_BOOKED, &bytes).is_err());
        assert!(Input::decode(subjects::SLOT_CREATED, b"{").is_err());
    }

    #[test]
    fn subjects_matching_does_not_use_are_ignored_unparsed() {
        for subject in [
            subjects::APPOINTMENT_CANCELLED,
            subjects::APPOINTMENT_MOVED,
            "slotcast.scheduling.something.new",
        ] {
            assert!(matches!(
                Input::decode(subject, b"not json"),
                Ok(Input::Ignored)
            ));
        }
    }
}
