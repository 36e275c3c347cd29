//! Slot availability: what the scheduling events say about a slot, and how a notification shows
//! it to the patient reading it.
//!
//! The state is kept once per slot (`slot_states`), whatever order the events and the
//! notifications arrive in; each notification's view of its slots is derived from it on read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use slotcast_events::{SlotBooked, SlotCreated, SlotReleased, SlotWithdrawn, subjects};
use uuid::Uuid;

/// A slot's state as the last scheduling event in stream order left it. A slot never heard of
/// is `Available`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    Available,
    /// `by` is the patient who booked it (unknown only for rows carried over from before the
    /// state was kept).
    Booked {
        by: Option<Uuid>,
    },
    Withdrawn,
}

impl SlotState {
    /// The `slot_states.status` value.
    pub fn status(&self) -> &'static str {
        match self {
            SlotState::Available => "available",
            SlotState::Booked { .. } => "booked",
            SlotState::Withdrawn => "withdrawn",
        }
    }

    /// The `slot_states.booked_by` value.
    pub fn booked_by(&self) -> Option<Uuid> {
        match self {
            SlotState::Booked { by } => *by,
            _ => None,
        }
    }

    /// Reads a `slot_states` row back; `None` for a status this version does not know.
    pub fn from_row(status: &str, booked_by: Option<Uuid>) -> Option<Self> {
        match status {
            "available" => Some(SlotState::Available),
            "booked" => Some(SlotState::Booked { by: booked_by }),
            "withdrawn" => Some(SlotState::Withdrawn),
            _ => None,
        }
    }
}

/// What a scheduling event says about one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotChange {
    pub slot_id: Uuid,
    pub state: SlotState,
    /// The event's time.
    pub at: DateTime<Utc>,
}

/// A slot event that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("not a {expected} event: {source}")]
pub struct UnreadableSlotEvent {
    expected: &'static str,
    source: slotcast_events::DecodeError,
}

impl SlotChange {
    /// Reads the event published on `subject`; `Ok(None)` for a subject that says nothing
    /// about availability (or that this version does not know).
    pub fn from_message(
        subject: &str,
        payload: &[u8],
    ) -> Result<Option<Self>, UnreadableSlotEvent> {
        fn read<T: slotcast_events::Event>(
            payload: &[u8],
            expected: &'static str,
        ) -> Result<slotcast_events::CloudEvent<T>, UnreadableSlotEvent> {
            slotcast_events::decode::<T>(payload)
                .map_err(|source| UnreadableSlotEvent { expected, source })
        }
        let change = match subject {
            subjects::SLOT_CREATED => {
                let e = read::<SlotCreated>(payload, "SlotCreated")?;
                Self::new(e.data.slot_id, SlotState::Available, e.time)
            }
            subjects::SLOT_RELEASED => {
                let e = read::<SlotReleased>(payload, "SlotReleased")?;
                Self::new(e.data.slot_id, SlotState::Available, e.time)
            }
            subjects::SLOT_BOOKED => {
                let e = read::<SlotBooked>(payload, "SlotBooked")?;
                let by = Some(e.data.patient_id);
                Self::new(e.data.slot_id, SlotState::Booked { by }, e.time)
            }
            subjects::SLOT_WITHDRAWN => {
                let e = read::<SlotWithdrawn>(payload, "SlotWithdrawn")?;
                Self::new(e.data.slot_id, SlotState::Withdrawn, e.time)
            }
            _ => return Ok(None),
        };
        Ok(Some(change))
    }

    fn new(slot_id: Uuid, state: SlotState, at: DateTime<Utc>) -> Self {
        Self { slot_id, state, at }
    }
}

/// A slot as one patient's notification shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlotStatus {
    /// Open: it can be booked.
    Available,
    /// Booked by someone else.
    Taken,
    /// Booked by the patient reading it.
    BookedByYou,
    /// Removed by the practice.
    Withdrawn,
    /// Still open, but its time has come.
    Started,
}

impl SlotStatus {
    /// How `state` (`None`: never heard of) shows to `reader`, at `now`, for a slot starting at
    /// `starts_at`. What happened to the slot comes before whether it has started.
    pub fn shown(
        state: Option<SlotState>,
        reader: Uuid,
        starts_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        match state.unwrap_or(SlotState::Available) {
            SlotState::Booked { by } if by == Some(reader) => SlotStatus::BookedByYou,
            SlotState::Booked { .. } => SlotStatus::Taken,
            SlotState::Withdrawn => SlotStatus::Withdrawn,
            SlotState::Available if starts_at <= now => SlotStatus::Started,
            SlotState::Available => SlotStatus::Available,
        }
    }

    pub fn is_available(self) -> bool {
        self == SlotStatus::Available
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotcast_events::CloudEvent;

    #[test]
    fn a_slot_shows_what_happened_to_it_before_whether_it_has_started() {
        let (me, other) = (Uuid::now_v7(), Uuid::now_v7());
        let now = Utc::now();
        let later = now + chrono::Duration::hours(1);
        let earlier = now - chrono::Duration::hours(1);
        let shown = |state, starts_at| SlotStatus::shown(state, me, starts_at, now);
        assert_eq!(shown(None, later), SlotStatus::Available);
        assert_eq!(shown(None, earlier), SlotStatus::Started);
        assert_eq!(
            shown(Some(SlotState::Available), earlier),
            SlotStatus::Started
        );
        assert_eq!(
            shown(Some(SlotState::Booked { by: Some(me) }), earlier),
            SlotStatus::BookedByYou
        );
        assert_eq!(
            shown(Some(SlotState::Booked { by: Some(other) }), later),
            SlotStatus::Taken
        );
        assert_eq!(
            shown(Some(SlotState::Booked { by: None }), later),
            SlotStatus::Taken
        );
        assert_eq!(
            shown(Some(SlotState::Withdrawn), later),
            SlotStatus::Withdrawn
        );
        assert!(shown(None, later).is_available());
        assert!(!shown(Some(SlotState::Withdrawn), later).is_available());
    }

    #[test]
    fn a_state_reads_back_from_its_row() {
        let by = Some(Uuid::now_v7());
        for state in [
            SlotState::Available,
            SlotState::Booked { by },
            SlotState::Withdrawn,
        ] {
            assert_eq!(
                SlotState::from_row(state.status(), state.booked_by()),
                Some(state)
            );
        }
        assert_eq!(SlotState::from_row("held", None), None);
    }

    #[test]
    fn each_slot_subject_becomes_its_state_and_other_subjects_are_ignored() {
        let slot_id = Uuid::now_v7();
        let patient_id = Uuid::now_v7();
        let booked = CloudEvent::new(
            "test",
            SlotBooked {
                slot_id,
                practitioner_id: Uuid::now_v7(),
                patient_id,
                appointment_id: Uuid::now_v7(),
                starts_at: Utc::now(),
            },
        );
        let payload = serde_json::to_vec(&booked).unwrap();
        let change = SlotChange::from_message(subjects::SLOT_BOOKED, &payload)
            .unwrap()
            .unwrap();
        assert_eq!(change.slot_id, slot_id);
        assert_eq!(
            change.state,
            SlotState::Booked {
                by: Some(patient_id)
            }
        );
        assert_eq!(change.at, booked.time);

        let withdrawn = CloudEvent::new(
            "test",
            SlotWithdrawn {
                slot_id,
                practitioner_id: Uuid::now_v7(),
            },
        );
        let payload = serde_json::to_vec(&withdrawn).unwrap();
        let change = SlotChange::from_message(subjects::SLOT_WITHDRAWN, &payload)
            .unwrap()
            .unwrap();
        assert_eq!(change.state, SlotState::Withdrawn);

        // A booked event on the withdrawn subject is refused, not misread.
        let payload = serde_json::to_vec(&booked).unwrap();
        assert!(SlotChange::from_message(subjects::SLOT_WITHDRAWN, &payload).is_err());
        assert!(
            SlotChange::from_message("slotcast.scheduling.slot.held", b"anything")
                .unwrap()
                .is_none()
        );
    }
}
