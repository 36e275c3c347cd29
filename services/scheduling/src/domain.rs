//! Input parsed at the edge into domain values. Inside the service nothing re-validates.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Deserializer};
use slotcast_events::{OfferPolicy, Priority, WaitKind};
use uuid::Uuid;

/// Why an input was refused: the 422 detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid<T>(msg: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid(msg.into()))
}

/// The most slots one request may post.
pub const MAX_BATCH: usize = 200;
/// The longest a slot may be.
pub const MAX_SLOT_LENGTH: Duration = Duration::hours(12);

fn text(field: &str, value: &str, max: usize) -> Result<String, Invalid> {
    let v = value.trim();
    if v.is_empty() {
        return invalid(format!("{field} must not be empty"));
    }
    if v.chars().count() > max {
        return invalid(format!("{field} is longer than {max} characters"));
    }
    if v.chars().any(char::is_control) {
        return invalid(format!("{field} contains control characters"));
    }
    Ok(v.to_owned())
}

/// Whether `t` is a time the system can store and compare on every backend (years 2000 to 9999;
/// chrono accepts signed and five-digit years that Postgres and SQLite do not).
pub fn in_range(t: DateTime<Utc>) -> bool {
    (2000..=9999).contains(&chrono::Datelike::year(&t))
}

fn time(field: &str, t: DateTime<Utc>) -> Result<DateTime<Utc>, Invalid> {
    if in_range(t) {
        Ok(t)
    } else {
        invalid(format!("{field} must be between the years 2000 and 9999"))
    }
}

/// An IANA time zone name, checked against the tz database.
pub fn timezone(value: &str) -> Result<String, Invalid> {
    value
        .parse::<chrono_tz::Tz>()
        .map(|tz| tz.name().to_owned())
        .or_else(|_| {
            invalid(format!(
                "{value:?} is not an IANA time zone (for example Europe/Paris)"
            ))
        })
}

/// For `Option<Option<T>>` fields with `#[serde(default)]`: absent is `None`, `null` is
/// `Some(None)`, so a PATCH tells "leave it" from "clear it".
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPractitioner {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(min_length = 1, max_length = 200)]
    pub specialty: String,
    /// An IANA time zone, for example `Europe/Paris`.
    pub timezone: String,
    /// In major units of `currency`, for example 80 or 62.5.
    #[schema(minimum = 0, maximum = 1000000)]
    pub consultation_fee: Option<f64>,
    /// ISO 4217; `EUR` when absent.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    /// `null` or absent: follow the configured default.
    #[serde(default)]
    pub offer_policy: Option<OfferPolicy>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Practitioner {
    pub name: String,
    pub specialty: String,
    pub timezone: String,
    pub consultation_fee_cents: Option<i64>,
    pub currency: String,
    pub offer_policy: Option<OfferPolicy>,
}

impl NewPractitioner {
    pub fn parse(self) -> Result<Practitioner, Invalid> {
        let fee = match self.consultation_fee {
            None => None,
            Some(f) if !f.is_finite() || !(0.0..=1_000_000.0).contains(&f) => {
                return invalid("consultation_fee must be between 0 and 1000000");
            }
            Some(f) if ((f * 100.0).round() - f * 100.0).abs() > 1e-6 => {
                return invalid("consultation_fee has more than two decimals");
            }
            Some(f) => Some((f * 100.0).round() as i64),
        };
        let currency = self.currency.unwrap_or_else(|| "EUR".to_owned());
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
            return invalid("currency must be an ISO 4217 code such as EUR");
        }
        Ok(Practitioner {
            name: text("name", &self.name, 200)?,
            specialty: text("specialty", &self.specialty, 200)?,
            timezone: timezone(&self.timezone)?,
            consultation_fee_cents: fee,
            currency,
            offer_policy: self.offer_policy,
        })
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPatient {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(format = Email)]
    pub email: String,
    /// BCP 47, for example `fr-FR`; `en` when absent.
    pub locale: Option<String>,
    /// An IANA time zone, for example `Europe/Paris`.
    pub timezone: Option<String>,
    /// A phone number in international form (E.164, for example `+33612345678`; spaces and
    /// dashes are allowed and taken out).
    #[schema(example = "+33612345678")]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Patient {
    pub name: String,
    pub email: String,
    pub locale: String,
    pub timezone: Option<String>,
    /// E.164.
    pub phone: Option<String>,
}

impl NewPatient {
    pub fn parse(self) -> Result<Patient, Invalid> {
        let locale = self.locale.unwrap_or_else(|| "en".to_owned());
        let ok_locale = {
            let mut parts = locale.split('-');
            let lang = parts.next().unwrap_or_default();
            (2..=3).contains(&lang.len())
                && lang.chars().all(|c| c.is_ascii_alphabetic())
                && parts.all(|p| {
                    (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric())
                })
        };
        if !ok_locale {
            return invalid("locale must be a BCP 47 tag such as en or fr-FR");
        }
        Ok(Patient {
            name: text("name", &self.name, 200)?,
            email: email(&self.email)?,
            locale,
            timezone: self.timezone.as_deref().map(timezone).transpose()?,
            phone: self.phone.as_deref().map(phone).transpose()?,
        })
    }
}

/// A phone number in international form, valid for its country's numbering plan (the
/// `phonenumber` crate, Google's libphonenumber metadata), written as E.164.
pub fn phone(value: &str) -> Result<String, Invalid> {
    const FORM: &str = "phone must be a number in international form, such as +33612345678";
    // E.164 has at most 15 digits: room for spaces and dashes, no more.
    if !value.trim_start().starts_with('+') || value.len() > 40 {
        return invalid(FORM);
    }
    match phonenumber::parse(None, value) {
        // An extension cannot take a text message, and E.164 would drop it silently.
        Ok(number) if phonenumber::is_valid(&number) && number.extension().is_none() => {
            Ok(number.format().mode(phonenumber::Mode::E164).to_string())
        }
        _ => invalid(FORM),
    }
}

/// An address the email notifier can send to ([`slotcast_kit::email::address`]).
pub fn email(value: &str) -> Result<String, Invalid> {
    match slotcast_kit::email::address(value) {
        Some(address) => Ok(address.to_string()),
        None => invalid("email is not an address we can send to"),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSlots {
    #[schema(min_items = 1, max_items = 200)]
    pub slots: Vec<NewSlot>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSlot {
    #[serde(deserialize_with = "slotcast_kit::time::rfc3339")]
    pub starts_at: DateTime<Utc>,
    #[serde(deserialize_with = "slotcast_kit::time::rfc3339")]
    pub ends_at: DateTime<Utc>,
}

/// A slot's time, starting in the future and ending after it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotWindow {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

impl SlotWindow {
    pub fn new(
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Self, Invalid> {
        let (starts_at, ends_at) = (time("starts_at", starts_at)?, time("ends_at", ends_at)?);
        if ends_at <= starts_at {
            return invalid("ends_at must be after starts_at");
        }
        if starts_at <= now {
            return invalid("starts_at is in the past");
        }
        if ends_at - starts_at > MAX_SLOT_LENGTH {
            return invalid("a slot may last at most 12 hours");
        }
        Ok(Self { starts_at, ends_at })
    }

    pub fn overlaps(&self, other: &SlotWindow) -> bool {
        self.starts_at < other.ends_at && other.starts_at < self.ends_at
    }
}

impl NewSlots {
    /// A batch of 1 to [`MAX_BATCH`] valid slots that do not overlap each other.
    pub fn parse(self, now: DateTime<Utc>) -> Result<Vec<SlotWindow>, Invalid> {
        if self.slots.is_empty() {
            return invalid("slots must not be empty");
        }
        if self.slots.len() > MAX_BATCH {
            return invalid(format!("at most {MAX_BATCH} slots per request"));
        }
        let mut windows = Vec::with_capacity(self.slots.len());
        for (i, s) in self.slots.into_iter().enumerate() {
            let w = SlotWindow::new(s.starts_at, s.ends_at, now)
                .map_err(|e| Invalid(format!("slots[{i}]: {e}")))?;
            if let Some(j) = windows.iter().position(|o: &SlotWindow| o.overlaps(&w)) {
                return invalid(format!("slots[{i}] overlaps slots[{j}]"));
            }
            windows.push(w);
        }
        Ok(windows)
    }
}

/// The most slots one hold covers.
pub const MAX_HOLD_SLOTS: usize = MAX_BATCH;
/// The most patients one hold is for.
pub const MAX_HOLD_PATIENTS: usize = 10_000;

/// `PUT /v1/holds/{id}`: the slots to hold, for whom, until when.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHold {
    #[schema(min_items = 1, max_items = 200)]
    pub slot_ids: Vec<Uuid>,
    #[schema(max_items = 10000)]
    pub patient_ids: Vec<Uuid>,
    #[serde(deserialize_with = "slotcast_kit::time::rfc3339")]
    pub until: DateTime<Utc>,
}

/// A hold, checked: 1 to 200 distinct slots (as many as one request may post) (in the order given), up to 10,000 distinct
/// patients, ending in the future.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldRequest {
    pub slot_ids: Vec<Uuid>,
    pub patient_ids: Vec<Uuid>,
    pub until: DateTime<Utc>,
}

impl NewHold {
    pub fn parse(self, now: DateTime<Utc>) -> Result<HoldRequest, Invalid> {
        if self.slot_ids.is_empty() || self.slot_ids.len() > MAX_HOLD_SLOTS {
            return invalid(format!("slot_ids holds 1 to {MAX_HOLD_SLOTS} slots"));
        }
        if self.patient_ids.len() > MAX_HOLD_PATIENTS {
            return invalid(format!(
                "patient_ids holds at most {MAX_HOLD_PATIENTS} patients"
            ));
        }
        let until = time("until", self.until)?;
        if until <= now {
            return invalid("until must be in the future");
        }
        let mut slot_ids = Vec::with_capacity(self.slot_ids.len());
        for id in self.slot_ids {
            if !slot_ids.contains(&id) {
                slot_ids.push(id);
            }
        }
        let mut patient_ids = self.patient_ids;
        patient_ids.sort_unstable();
        patient_ids.dedup();
        Ok(HoldRequest {
            slot_ids,
            patient_ids,
            until,
        })
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWaitlistEntry {
    pub patient_id: Uuid,
    pub practitioner_id: Uuid,
    pub kind: WaitKind,
    pub appointment_id: Option<Uuid>,
    #[serde(default, deserialize_with = "slotcast_kit::time::rfc3339_option")]
    pub earliest: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "slotcast_kit::time::rfc3339_option")]
    pub latest: Option<DateTime<Utc>>,
    /// `routine` when absent; only staff may ask for `urgent`.
    pub priority: Option<Priority>,
    /// Must be in the future; now plus the configured time to live when absent.
    #[serde(default, deserialize_with = "slotcast_kit::time::rfc3339_option")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// What a waiting-list entry asks for, checked for consistency.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitRequest {
    pub patient_id: Uuid,
    pub practitioner_id: Uuid,
    pub kind: WaitKind,
    pub appointment_id: Option<Uuid>,
    pub earliest: Option<DateTime<Utc>>,
    pub latest: Option<DateTime<Utc>>,
    pub priority: Priority,
    pub expires_at: DateTime<Utc>,
}

/// An expiry time: in the future, and storable (whole microseconds, as the database keeps it, so
/// the event and the stored row agree).
pub fn expiry(t: DateTime<Utc>, now: DateTime<Utc>) -> Result<DateTime<Utc>, Invalid> {
    let t = chrono::SubsecRound::trunc_subsecs(time("expires_at", t)?, 6);
    if t <= now {
        return invalid("expires_at must be in the future");
    }
    Ok(t)
}

/// `PATCH /v1/waitlist/{id}`: what to change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitlistPatch {
    pub priority: Option<Priority>,
    #[serde(default, deserialize_with = "slotcast_kit::time::rfc3339_option")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewWaitlistEntry {
    /// `ttl` is how long the entry lasts when no `expires_at` is given.
    pub fn parse(self, now: DateTime<Utc>, ttl: Duration) -> Result<WaitRequest, Invalid> {
        match (self.kind, self.appointment_id) {
            (WaitKind::MoveUp, None) => return invalid("a move_up entry needs appointment_id"),
            (WaitKind::New, Some(_)) => return invalid("a new entry holds no appointment_id"),
            _ => {}
        }
        let earliest = self.earliest.map(|t| time("earliest", t)).transpose()?;
        let latest = self.latest.map(|t| time("latest", t)).transpose()?;
        if let (Some(e), Some(l)) = (earliest, latest)
            && l <= e
        {
            return invalid("latest must be after earliest");
        }
        Ok(WaitRequest {
            patient_id: self.patient_id,
            practitioner_id: self.practitioner_id,
            kind: self.kind,
            appointment_id: self.appointment_id,
            earliest,
            latest,
            priority: self.priority.unwrap_or_default(),
            expires_at: match self.expires_at {
                Some(t) => expiry(t, now)?,
                None => chrono::SubsecRound::trunc_subsecs(now + ttl, 6),
            },
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_phone_number_is_written_in_e164_or_refused() {
        assert_eq!(phone("+33 6 12 34 56 78").unwrap(), "+33612345678");
        assert_eq!(phone(" +44 20 7946 0958").unwrap(), "+442079460958");
        let long = format!("+33 6 12 34 56 78{}", " ".repeat(40));
        for bad in [
            "0612345678",
            "+33 6 12",
            "33612345678",
            "+",
            "phone",
            "+1 650 253 0000 ext. 5",
            &long,
        ] {
            assert!(phone(bad).is_err(), "{bad}");
        }
    }

    use super::*;

    fn at(h: i64) -> DateTime<Utc> {
        Utc::now() + Duration::hours(h)
    }

    #[test]
    fn a_slot_ending_before_it_starts_is_refused() {
        assert!(SlotWindow::new(at(2), at(1), Utc::now()).is_err());
        let t = at(1);
        assert!(SlotWindow::new(t, t, Utc::now()).is_err());
        assert!(SlotWindow::new(at(-2), at(-1), Utc::now()).is_err());
        assert!(SlotWindow::new(at(1), at(2), Utc::now()).is_ok());
    }

    #[test]
    fn a_batch_must_be_non_empty_bounded_and_free_of_inner_overlap() {
        let slot = |a, b| NewSlot {
            starts_at: at(a),
            ends_at: at(b),
        };
        assert!(NewSlots { slots: vec![] }.parse(Utc::now()).is_err());
        assert!(
            NewSlots {
                slots: vec![slot(1, 3), slot(2, 4)]
            }
            .parse(Utc::now())
            .is_err()
        );
        assert_eq!(
            NewSlots {
                slots: vec![slot(1, 2), slot(2, 3)]
            }
            .parse(Utc::now())
            .unwrap()
            .len(),
            2
        );
        let many = (0..=MAX_BATCH as i64).map(|i| slot(i + 1, i + 2)).collect();
        assert!(NewSlots { slots: many }.parse(Utc::now()).is_err());
    }

    #[test]
    fn emails_locales_zones_and_fees_are_checked() {
        assert!(email("a@b.example").is_ok());
        for bad in [
            "", "a", "a@b", "a b@c.d", "@c.d", "a@.d", "a@b.c,", "a..b@c.d",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(timezone("Europe/Paris").is_ok());
        assert!(timezone("Mars/Olympus").is_err());
        let p = |fee| NewPractitioner {
            name: "Dr A".into(),
            specialty: "GP".into(),
            timezone: "UTC".into(),
            consultation_fee: fee,
            currency: None,
            offer_policy: None,
        };
        assert_eq!(
            p(Some(62.5)).parse().unwrap().consultation_fee_cents,
            Some(6250)
        );
        assert!(p(Some(-1.0)).parse().is_err());
        assert!(p(Some(1.234)).parse().is_err());
        let patient = |locale: &str| NewPatient {
            name: "P".into(),
            email: "p@x.example".into(),
            locale: Some(locale.into()),
            timezone: None,
            phone: None,
        };
        assert!(patient("fr-FR").parse().is_ok());
        assert!(patient("not a locale").parse().is_err());
    }

    #[test]
    fn a_waitlist_entry_must_be_consistent() {
        let e = |kind, appointment_id, earliest, latest| NewWaitlistEntry {
            patient_id: Uuid::nil(),
            practitioner_id: Uuid::nil(),
            kind,
            appointment_id,
            earliest,
            latest,
            priority: None,
            expires_at: None,
        };
        let parse = |e: NewWaitlistEntry| e.parse(Utc::now(), Duration::days(90));
        assert!(parse(e(WaitKind::MoveUp, None, None, None)).is_err());
        assert!(parse(e(WaitKind::New, Some(Uuid::nil()), None, None)).is_err());
        assert!(parse(e(WaitKind::New, None, Some(at(2)), Some(at(1)))).is_err());
        let ok = parse(e(WaitKind::New, None, Some(at(1)), Some(at(2)))).unwrap();
        assert_eq!(ok.priority, Priority::Routine);
        assert!(ok.expires_at > at(24 * 89));
        let past = NewWaitlistEntry {
            expires_at: Some(at(-1)),
            ..e(WaitKind::New, None, None, None)
        };
        assert!(parse(past).is_err());
    }
}
