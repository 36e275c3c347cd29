//! The patients, practices and slots of the previews: a Paris GP with a fee, a Berlin practice
//! holding its times for a wave of patients, a New York clinic offering an earlier time to a
//! US patient, a Madrid paediatrician with many times and long names, and a London surgeon
//! whose specialty has an `&`.

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use email_notifier::render::zone_of;
use scheduling::routes::patient_pages::{
    AppointmentLinkView, OfferView, OfferedSlotView, PractitionerView,
};
use slotcast_events::{
    AppointmentConfirmation, Channels, ConfirmationKind, NotifyPatient, OfferedSlot,
    PatientContact, PractitionerCard, TimeSpan, WaitKind,
};
use uuid::Uuid;

/// A slot in the practice's local time: year, month, day, hour, minute, length in minutes, and
/// its state on the booking page (`available`, `taken`...).
pub type SlotSpec = (i32, u32, u32, u32, u32, i64, &'static str);

/// One patient told about one practice's times.
#[derive(Debug)]
pub struct Scenario {
    /// In file names.
    pub key: &'static str,
    /// In the index.
    pub title: &'static str,
    pub patient_name: &'static str,
    /// The patient's BCP 47 tag.
    pub patient_locale: &'static str,
    pub practitioner_name: &'static str,
    pub specialty: &'static str,
    pub timezone: &'static str,
    pub fee_cents: Option<i64>,
    pub currency: &'static str,
    /// An earlier time for a patient who holds an appointment, rather than a new one.
    pub move_up: bool,
    /// Under the `waves` policy: how long the times are held for this patient's wave.
    pub held_for: Option<Duration>,
    pub slots: &'static [SlotSpec],
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        key: "paris-gp",
        title: "Paris GP with a fee, three times",
        patient_name: "Zoé Lefèvre",
        patient_locale: "fr-FR",
        practitioner_name: "Dr Camille Martin",
        specialty: "Médecine générale",
        timezone: "Europe/Paris",
        fee_cents: Some(3000),
        currency: "EUR",
        move_up: false,
        held_for: None,
        slots: &[
            (2027, 1, 12, 8, 30, 20, "available"),
            (2027, 1, 12, 11, 10, 20, "available"),
            (2027, 1, 13, 17, 45, 20, "available"),
        ],
    },
    Scenario {
        key: "berlin-wave",
        title: "Berlin practice holding its times for a wave",
        patient_name: "Jürgen Müller-Lüdenscheidt",
        patient_locale: "de-DE",
        practitioner_name: "Dr. med. Annegret Schwarzenberger-Hoffmann",
        specialty: "Allgemeinmedizin und Innere Medizin",
        timezone: "Europe/Berlin",
        fee_cents: None,
        currency: "EUR",
        move_up: false,
        held_for: Some(Duration::hours(2)),
        slots: &[
            (2027, 1, 14, 9, 0, 15, "available"),
            (2027, 1, 14, 9, 15, 15, "available"),
        ],
    },
    Scenario {
        key: "new-york-move-up",
        title: "New York clinic, an earlier time, fee in USD",
        patient_name: "Grace O'Connor",
        patient_locale: "en-US",
        practitioner_name: "Dr. Marcus Washington",
        specialty: "Family Medicine",
        timezone: "America/New_York",
        fee_cents: Some(15000),
        currency: "USD",
        move_up: true,
        held_for: None,
        slots: &[
            (2027, 1, 11, 7, 30, 30, "available"),
            (2027, 1, 11, 16, 0, 30, "available"),
        ],
    },
    Scenario {
        key: "madrid-many",
        title: "Madrid paediatrician, many times, long names",
        patient_name: "María de los Ángeles Fernández-Villaverde",
        patient_locale: "es-ES",
        practitioner_name: "Dra. Lucía Fernández García de la Vega",
        specialty: "Pediatría y Neonatología",
        timezone: "Europe/Madrid",
        fee_cents: Some(6000),
        currency: "EUR",
        move_up: false,
        held_for: None,
        slots: &[
            (2027, 1, 18, 9, 0, 30, "available"),
            (2027, 1, 18, 10, 30, 30, "available"),
            (2027, 1, 19, 12, 0, 30, "available"),
            (2027, 1, 20, 16, 30, 30, "available"),
            (2027, 1, 21, 19, 0, 45, "taken"),
        ],
    },
    Scenario {
        key: "london-surgeon",
        title: "London surgeon, fee in GBP, one time",
        patient_name: "Olusegun Adeyemi",
        patient_locale: "en-GB",
        practitioner_name: "Mr Rahul Chatterjee",
        specialty: "Trauma & Orthopaedic Surgery",
        timezone: "Europe/London",
        fee_cents: Some(25000),
        currency: "GBP",
        move_up: false,
        held_for: None,
        slots: &[(2027, 2, 1, 14, 0, 30, "available")],
    },
];

const BASE_URL: &str = "https://book.example-clinic.org";

impl Scenario {
    fn slot_times(&self) -> Vec<(Uuid, DateTime<Utc>, DateTime<Utc>, &'static str)> {
        let zone = zone_of(self.timezone);
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, &(y, mo, d, h, mi, len, status))| {
                let starts_at = zone
                    .with_ymd_and_hms(y, mo, d, h, mi, 0)
                    .single()?
                    .with_timezone(&Utc);
                let id = Uuid::from_u128(0x5107_0000 + i as u128);
                Some((id, starts_at, starts_at + Duration::minutes(len), status))
            })
            .collect()
    }

    /// The notification matching would publish for this patient, in `locale`.
    pub fn notify(&self, locale: &str) -> NotifyPatient {
        let slots: Vec<OfferedSlot> = self
            .slot_times()
            .into_iter()
            .filter(|(_, _, _, status)| *status == "available")
            .map(|(slot_id, starts_at, ends_at, _)| OfferedSlot {
                slot_id,
                starts_at,
                ends_at,
                booking_url: format!(
                    "{BASE_URL}/v1/offers/eyJhbGciOiJIUzI1NiJ9.{}?slot={slot_id}",
                    self.key
                ),
                // Sent two days ahead; the wave has `held_for` to book before the next is told.
                held_until: self
                    .held_for
                    .map(|held| first_start(self) - Duration::days(2) + held),
            })
            .collect();
        NotifyPatient {
            notification_id: Uuid::from_u128(1),
            patient: PatientContact {
                id: Uuid::from_u128(2),
                name: self.patient_name.to_owned(),
                email: "patient@example.org".to_owned(),
                locale: locale.to_owned(),
                timezone: None,
                phone: None,
            },
            practitioner: PractitionerCard {
                id: Uuid::from_u128(3),
                name: self.practitioner_name.to_owned(),
                specialty: self.specialty.to_owned(),
                timezone: self.timezone.to_owned(),
                consultation_fee_cents: self.fee_cents,
                currency: self.currency.to_owned(),
            },
            slots,
            reason: if self.move_up {
                WaitKind::MoveUp
            } else {
                WaitKind::New
            },
            entry_id: Uuid::from_u128(4),
            batch_id: Uuid::from_u128(5),
            channels: Channels::default(),
            wave: self.held_for.map(|_| 1),
            preferences_url: Some(format!("{BASE_URL}/v1/preferences/eyJhbGciOiJIUzI1NiJ9.p")),
            unsubscribe_url: Some(format!("{BASE_URL}/v1/unsubscribe/eyJhbGciOiJIUzI1NiJ9.u")),
            sms_not_before: None,
        }
    }

    /// The confirmation of booking the first open time (for a move-up scenario: moving to it
    /// from a time ten days later), or of cancelling it.
    pub fn confirmation(&self, locale: &str, cancelled: bool) -> AppointmentConfirmation {
        let notify = self.notify(locale);
        let first = &notify.slots[0];
        let kind = match (cancelled, self.move_up) {
            (true, _) => ConfirmationKind::Cancelled,
            (false, true) => ConfirmationKind::Moved,
            (false, false) => ConfirmationKind::Booked,
        };
        let sequence = u32::from(kind != ConfirmationKind::Booked);
        let appointment_id = Uuid::from_u128(6);
        let token = format!("{BASE_URL}/v1/appointment-links/eyJhbGciOiJIUzI1NiJ9.a");
        AppointmentConfirmation {
            confirmation_id: AppointmentConfirmation::derive_id(appointment_id, kind, sequence),
            kind,
            appointment_id,
            sequence,
            patient: notify.patient,
            practitioner: notify.practitioner,
            starts_at: first.starts_at,
            ends_at: first.ends_at,
            replaced: (kind == ConfirmationKind::Moved).then(|| TimeSpan {
                starts_at: first.starts_at + Duration::days(10),
                ends_at: first.ends_at + Duration::days(10),
            }),
            channels: Channels::default(),
            calendar_url: format!("{token}/calendar.ics"),
            manage_url: token,
        }
    }

    /// The page behind a confirmation's link, for the appointment of [`Self::confirmation`].
    pub fn appointment(&self, cancelled: bool) -> AppointmentLinkView {
        let c = self.confirmation("en", false);
        AppointmentLinkView {
            appointment_id: c.appointment_id,
            status: if cancelled { "cancelled" } else { "booked" }.to_owned(),
            starts_at: c.starts_at,
            ends_at: c.ends_at,
            practitioner_name: self.practitioner_name.to_owned(),
            specialty: self.specialty.to_owned(),
            timezone: self.timezone.to_owned(),
            sequence: c.sequence,
            cancel_url: (!cancelled).then(|| format!("{}/cancel", c.manage_url)),
            calendar_url: c.calendar_url,
        }
    }

    /// The booking page's view of the offer the email links to.
    pub fn offer(&self) -> OfferView {
        let slots = self
            .slot_times()
            .into_iter()
            .map(|(slot_id, starts_at, ends_at, status)| OfferedSlotView {
                slot_id,
                starts_at,
                ends_at,
                status,
                claim_url: (status == "available")
                    .then(|| format!("{BASE_URL}/v1/offers/eyJhbGciOiJIUzI1NiJ9.t/claim")),
            })
            .collect();
        OfferView {
            notification_id: Uuid::from_u128(1),
            expires_at: first_start(self),
            used: false,
            appointment_id: None,
            practitioner: PractitionerView {
                id: Uuid::from_u128(3),
                name: self.practitioner_name.to_owned(),
                specialty: self.specialty.to_owned(),
                timezone: self.timezone.to_owned(),
                consultation_fee_cents: self.fee_cents,
                currency: self.currency.to_owned(),
            },
            slots,
        }
    }
}

fn first_start(scenario: &Scenario) -> DateTime<Utc> {
    scenario.slot_times().first().map_or_else(Utc::now, |s| s.1)
}
