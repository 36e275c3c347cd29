//! What scheduling publishes: practitioners, patients, slots, appointments, offers and the
//! waiting list. Each carries an order key (its practitioner, or its patient).

use chrono::{DateTime, Duration, LocalResult, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Event, subjects};

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
    /// E.164, for example `+33612345678`; text messages go only to a patient who has one and
    /// consented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}
event!(PatientRegistered, subjects::PATIENT_REGISTERED, patient_id, ordered by patient_id);

/// How a practitioner's openings are offered to the waiting list.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
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

/// A practitioner's own policy changed (staff): the whole of it, as it now stands. It applies
/// to openings from then on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PractitionerPolicyChanged {
    pub practitioner_id: Uuid,
    /// `None`: back to the configured default.
    pub offer_policy: Option<OfferPolicy>,
    /// `None`: matching's configured quiet hours (`QUIET_HOURS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHoursSetting>,
    /// Whether email and in-app messages also wait out the quiet hours (else only texts do).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quiet_hours_all_channels: bool,
}

/// A daily window, in the patient's zone, in which texts (and, where a practitioner says so,
/// every message) wait: `HH:MM-HH:MM`, which may run past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl QuietHours {
    /// `HH:MM-HH:MM`; the two times differ.
    pub fn parse(text: &str) -> Option<Self> {
        let (start, end) = text.trim().split_once('-')?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").ok();
        let hours = Self {
            start: time(start)?,
            end: time(end)?,
        };
        (hours.start != hours.end).then_some(hours)
    }

    /// When the quiet hours around `now` end, in `zone`; `None` when `now` is not in them.
    pub fn end_after(&self, now: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&zone);
        let time = local.time();
        let inside = if self.start < self.end {
            self.start <= time && time < self.end
        } else {
            time >= self.start || time < self.end
        };
        if !inside {
            return None;
        }
        let day = if time < self.end {
            local.date_naive()
        } else {
            local.date_naive() + Duration::days(1)
        };
        let end = day.and_time(self.end);
        let instant = match zone.from_local_datetime(&end) {
            LocalResult::Single(at) => at,
            // The night the clocks go back the end's local time comes twice: the next of them.
            LocalResult::Ambiguous(first, second) if first.with_timezone(&Utc) <= now => second,
            LocalResult::Ambiguous(first, _) => first,
            // The night they go forward it may not come at all: the first instant after it.
            LocalResult::None => zone
                .from_local_datetime(&(end + Duration::hours(1)))
                .earliest()?,
        };
        Some(instant.with_timezone(&Utc))
    }
}

impl std::fmt::Display for QuietHours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

/// Quiet hours as a practitioner or `QUIET_HOURS` sets them: a window, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum QuietHoursSetting {
    Off,
    Daily(QuietHours),
}

impl QuietHoursSetting {
    /// `off` (any case) or `HH:MM-HH:MM` with two different times.
    pub fn parse(text: &str) -> Option<Self> {
        if text.trim().eq_ignore_ascii_case("off") {
            return Some(Self::Off);
        }
        QuietHours::parse(text).map(Self::Daily)
    }

    /// The window in effect, if any.
    pub fn hours(self) -> Option<QuietHours> {
        match self {
            Self::Off => None,
            Self::Daily(hours) => Some(hours),
        }
    }
}

impl TryFrom<String> for QuietHoursSetting {
    type Error = String;

    /// As the API and the events write it, exactly (no spaces, two digits each).
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
            .filter(|setting| String::from(*setting).eq_ignore_ascii_case(&text))
            .ok_or_else(|| {
                format!(
                    "quiet hours are `HH:MM-HH:MM` (two different times) or `off`, not {text:?}"
                )
            })
    }
}

impl From<QuietHoursSetting> for String {
    fn from(setting: QuietHoursSetting) -> Self {
        match setting {
            QuietHoursSetting::Off => "off".to_owned(),
            QuietHoursSetting::Daily(hours) => hours.to_string(),
        }
    }
}

impl utoipa::PartialSchema for QuietHoursSetting {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(
                "^([Oo][Ff][Ff]|([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9])$",
            ))
            .description(Some(
                "`HH:MM-HH:MM` in each patient's zone (it may run past midnight), or `off`",
            ))
            .examples(["21:00-08:00"])
            .into()
    }
}

impl utoipa::ToSchema for QuietHoursSetting {}
event!(PractitionerPolicyChanged, subjects::PRACTITIONER_POLICY_CHANGED, practitioner_id, ordered by practitioner_id);

/// A patient's notification preferences changed, through the API or a link in an email.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatientPreferencesChanged {
    pub patient_id: Uuid,
    /// Availability email on or off.
    pub email: bool,
    /// In-app notifications on or off.
    pub inapp: bool,
    /// Text messages on or off: on only with the patient's consent, given through `via`.
    #[serde(default)]
    pub sms: bool,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
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
