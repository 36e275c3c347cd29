//! The scheduling service's tables (sea-orm entities).

pub mod practitioner {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "practitioners")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub name: String,
        pub specialty: String,
        pub timezone: String,
        pub consultation_fee_cents: Option<i64>,
        pub currency: String,
        pub created_at: DateTimeUtc,
        /// `broadcast`, `waves`, or `None` to follow the configured default.
        pub offer_policy: Option<String>,
        /// `HH:MM-HH:MM`, `off`, or `None` for matching's configured quiet hours.
        pub quiet_hours: Option<String>,
        /// Whether email and in-app messages also wait out the quiet hours.
        pub quiet_hours_all_channels: bool,
    }
    slotcast_kit::no_relations!();
}

pub mod patient {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "patients")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub name: String,
        pub email: String,
        pub locale: String,
        pub timezone: Option<String>,
        pub created_at: DateTimeUtc,
        /// Availability emails on or off.
        pub notify_email: bool,
        /// In-app availability notifications on or off.
        pub notify_inapp: bool,
        pub preferences_updated_at: Option<DateTimeUtc>,
        /// E.164, for example `+33612345678`.
        pub phone: Option<String>,
        /// Text messages on or off: on only with the patient's consent.
        pub notify_sms: bool,
        /// When the patient last consented to text messages.
        pub sms_consent_at: Option<DateTimeUtc>,
        /// How they consented: `api` (patient or staff), `link` (the preferences page) or `sms`
        /// (START texted from their number).
        pub sms_consent_via: Option<String>,
    }
    slotcast_kit::no_relations!();
}

pub mod slot {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "slots")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub practitioner_id: Uuid,
        pub starts_at: DateTimeUtc,
        pub ends_at: DateTimeUtc,
        /// `available`, `held`, `booked` or `withdrawn`.
        pub status: String,
        pub batch_id: Uuid,
        pub created_at: DateTimeUtc,
        /// While `held`: the hold (`None` for the pre-hold of a `waves` opening).
        pub hold_id: Option<Uuid>,
        /// While `held`: when the hold lapses; from then on the slot counts as available.
        pub held_until: Option<DateTimeUtc>,
    }
    slotcast_kit::no_relations!();
}

pub mod appointment {
    use sea_orm::entity::prelude::*;

    /// `status` of an appointment that holds its slot.
    pub const BOOKED: &str = "booked";
    /// `status` of an appointment given up.
    pub const CANCELLED: &str = "cancelled";

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "appointments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub patient_id: Uuid,
        pub practitioner_id: Uuid,
        pub slot_id: Uuid,
        /// `booked` or `cancelled`.
        pub status: String,
        pub created_at: DateTimeUtc,
        pub cancelled_at: Option<DateTimeUtc>,
        /// The calendar entry's `SEQUENCE`: 0 when booked, one more at each move and at the
        /// cancellation.
        pub sequence: i32,
    }
    slotcast_kit::no_relations!();
}

pub mod waitlist_entry {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "waitlist_entries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub patient_id: Uuid,
        pub practitioner_id: Uuid,
        /// `new` or `move_up`.
        pub kind: String,
        pub appointment_id: Option<Uuid>,
        pub earliest: Option<DateTimeUtc>,
        pub latest: Option<DateTimeUtc>,
        /// `active`, `fulfilled` or `left`.
        pub status: String,
        pub created_at: DateTimeUtc,
        pub closed_at: Option<DateTimeUtc>,
        /// `urgent` or `routine`.
        pub priority: String,
        /// After this the entry is never offered anything (`None`: it does not expire).
        pub expires_at: Option<DateTimeUtc>,
    }
    slotcast_kit::no_relations!();
}

/// A booking link that has been claimed from; `used_at` is set by the claim that booked.
pub mod offer {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "offers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub notification_id: Uuid,
        pub patient_id: Uuid,
        pub issued_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
        pub first_claimed_at: DateTimeUtc,
        pub used_at: Option<DateTimeUtc>,
        pub slot_id: Option<Uuid>,
        pub appointment_id: Option<Uuid>,
    }
    slotcast_kit::no_relations!();
}

/// An exclusive hold on slots for a set of patients (the `waves` policy), placed by matching.
pub mod hold {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "holds")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub until: DateTimeUtc,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }
    slotcast_kit::no_relations!();
}

/// The patients a hold is for: only they may book its slots while it lasts.
pub mod hold_patient {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "hold_patients")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub hold_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub patient_id: Uuid,
    }
    slotcast_kit::no_relations!();
}
