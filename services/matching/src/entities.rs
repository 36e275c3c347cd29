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
        /// The practitioner's own quiet hours (`HH:MM-HH:MM` or `off`); `None`: `QUIET_HOURS`.
        pub quiet_hours: Option<String>,
        /// Whether email and in-app messages also wait out the quiet hours.
        pub quiet_all_channels: bool,
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
        /// Availability email wanted (preferences; on by default).
        pub email_enabled: bool,
        /// In-app notifications wanted (preferences; on by default).
        pub inapp_enabled: bool,
        /// Text messages wanted (preferences; off until the patient consents).
        pub sms_enabled: bool,
        /// E.164.
        pub phone: Option<String>,
    }
    impl Model {
        /// Text messages go only to a patient with a number who turned them on.
        pub fn texts(&self) -> bool {
            self.sms_enabled && self.phone.is_some()
        }
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
        pub status: crate::vocabulary::SlotStatus,
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
        /// `broadcast` or `waves`, as scheduling said when the slots opened.
        pub policy: String,
        /// A broadcast opening with all its slots in: when the dispatcher decides and sends it
        /// (the coalescing window's end).
        pub due_at: Option<DateTimeUtc>,
        /// The trace its offers continue (JSON headers).
        pub trace: String,
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
        /// `urgent` or `routine`.
        pub priority: String,
        /// Never offered anything after this.
        pub expires_at: Option<DateTimeUtc>,
    }
    slotcast_kit::no_relations!();
}

/// Who was told about which slot, in which notification, with the decision that told them (the
/// decisions view reads it here, and the daily cap counts its notifications). The primary key is
/// what makes a patient never hear twice about one slot.
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
        /// The patient's place in the order when the opening was decided (1 is first).
        pub rank: i32,
        /// The entry's priority then.
        pub priority: String,
        pub wave: Option<i32>,
        /// For a patient who wants texts: whether the message was texted now, deferred to the
        /// end of their quiet hours (`text_at`), or not texted.
        pub texted: Option<crate::vocabulary::Texted>,
        pub text_at: Option<DateTimeUtc>,
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
        pub kind: crate::vocabulary::HistoryKind,
        pub patient_id: Option<Uuid>,
        pub notification_id: Option<Uuid>,
        pub reason: Option<String>,
    }
    slotcast_kit::no_relations!();
}

/// An offer decided and waiting to go out: a wave's offer (due at once), an offer to a patient
/// matching does not know yet (due again a moment later), or one of a broadcast opening too big
/// for one pass of the dispatcher. Everything due for a patient and practitioner goes out as
/// one message when the first is due. The key keeps one row per patient and slot.
pub mod pending {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pending")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub patient_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub slot_id: Uuid,
        pub practitioner_id: Uuid,
        pub entry_id: Uuid,
        pub batch_id: Uuid,
        /// `new` or `move_up`.
        pub reason: String,
        /// The patient's place in the order when the opening was decided (1 is first).
        pub rank: i32,
        /// The entry's priority then.
        pub priority: String,
        pub wave: Option<i32>,
        pub held_until: Option<DateTimeUtc>,
        pub due_at: DateTimeUtc,
        /// The W3C trace context of the decision (JSON headers), so the message continues it.
        pub trace: String,
        /// When it was decided.
        pub decided_at: Option<DateTimeUtc>,
        /// Why it waits until `due_at`, past the coalescing window: `quiet_hours`.
        pub waits_for: Option<crate::vocabulary::Reason>,
    }
    slotcast_kit::no_relations!();
}

/// An opening offered in waves: its timer. `due_at` is when the next wave goes (the end of the
/// current hold).
pub mod wave {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "waves")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub batch_id: Uuid,
        pub practitioner_id: Uuid,
        pub next_wave: i32,
        pub due_at: DateTimeUtc,
        /// The hold placed for the last wave sent.
        pub hold_id: Option<Uuid>,
        pub status: crate::vocabulary::WaveStatus,
        /// Failed attempts at the next wave in a row (scheduling unreachable): the backoff.
        pub attempts: i32,
        /// The W3C trace context of the opening (JSON headers): every wave continues it.
        pub trace: String,
    }
    slotcast_kit::no_relations!();
}

/// Who each wave of an opening told.
pub mod wave_member {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "wave_members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub batch_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub patient_id: Uuid,
        pub wave: i32,
    }
    slotcast_kit::no_relations!();
}

/// The decisions about a slot and a patient whose entry fits it that `pending` and `told` do not
/// record: their place in the order and what came of it (waiting, skipped, not reached). The
/// decisions view puts the three together.
pub mod considered {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "considered")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub slot_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub patient_id: Uuid,
        pub entry_id: Uuid,
        pub rank: i32,
        pub priority: String,
        pub outcome: crate::vocabulary::Outcome,
        pub reason: Option<crate::vocabulary::Reason>,
        pub wave: Option<i32>,
        pub notification_id: Option<Uuid>,
        pub at: DateTimeUtc,
    }
    slotcast_kit::no_relations!();
}

/// The number of the last event applied for each order key: the fence that applies one
/// practitioner's (or patient's) events in order ([`crate::fence`]).
pub mod order_progress {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "order_progress")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: Uuid,
        pub applied: i64,
    }
    slotcast_kit::no_relations!();
}
