//! Matching's own projection of the scheduling events, and its record of who was told what.

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
        /// `open`, `booked` or `withdrawn`.
        pub status: String,
        pub released_by: Option<Uuid>,
    }
    slotcast_kit::no_relations!();
}

/// A set of slots that became available together (a posted batch, or a released slot).
pub mod opening {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "openings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub batch_id: Uuid,
        pub practitioner_id: Uuid,
        /// How many slots the batch has; it is decided once all arrived.
        pub expected: i32,
        pub decided_at: Option<DateTimeUtc>,
    }
    slotcast_kit::no_relations!();
}

pub mod opening_slot {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "opening_slots")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub batch_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub slot_id: Uuid,
    }
    slotcast_kit::no_relations!();
}

pub mod entry {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "waitlist_entries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub patient_id: Uuid,
        pub practitioner_id: Uuid,
        pub kind: String,
        pub held_starts_at: Option<DateTimeUtc>,
        pub earliest: Option<DateTimeUtc>,
        pub latest: Option<DateTimeUtc>,
        pub active: bool,
        pub joined_at: DateTimeUtc,
    }
    slotcast_kit::no_relations!();
}

/// Who was told about which slot, in which notification. The primary key is what makes a
/// patient never hear twice about one slot.
pub mod told {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "told")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub slot_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub patient_id: Uuid,
        pub notification_id: Uuid,
        pub entry_id: Uuid,
        pub told_at: DateTimeUtc,
    }
    slotcast_kit::no_relations!();
}

/// What happened to a slot, one row per scheduling event about it.
pub mod history {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "slot_history")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: Uuid,
        pub slot_id: Uuid,
        pub at: DateTimeUtc,
        /// `published`, `released`, `claimed`, `lost`, `booked` or `withdrawn`.
        pub kind: String,
        pub patient_id: Option<Uuid>,
        pub notification_id: Option<Uuid>,
        pub reason: Option<String>,
    }
    slotcast_kit::no_relations!();
}
