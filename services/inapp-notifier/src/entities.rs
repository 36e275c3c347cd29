//! The feed's tables as sea-orm entities.

/// One notification in a patient's feed.
pub mod notification {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "notifications")]
    pub struct Model {
        /// The `notification_id` of the `NotifyPatient` event.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub patient_id: Uuid,
        /// `new` or `move_up`; for a confirmation `booked`, `moved` or `cancelled`.
        pub reason: String,
        #[sea_orm(column_type = "Text")]
        pub title: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        /// The practitioner card as JSON (see `feed::Practitioner`).
        #[sea_orm(column_type = "Text")]
        pub practitioner: String,
        /// The time of the event that asked for the notification.
        pub created_at: DateTimeUtc,
        pub read_at: Option<DateTimeUtc>,
        /// For a confirmation: the appointment as JSON (see `feed::Confirmation`).
        #[sea_orm(column_type = "Text", nullable)]
        pub confirmation: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(has_many = "super::notification_slot::Entity")]
        Slots,
    }

    impl Related<super::notification_slot::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Slots.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// A slot a notification offers. Whether it is still available is in [`slot_state`].
pub mod notification_slot {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "notification_slots")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub notification_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub slot_id: Uuid,
        pub starts_at: DateTimeUtc,
        pub ends_at: DateTimeUtc,
        #[sea_orm(column_type = "Text")]
        pub booking_url: String,
        /// No longer written or read (availability comes from `slot_states`); kept so the first
        /// migration stays as it shipped.
        pub taken_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "super::notification::Entity",
            from = "Column::NotificationId",
            to = "super::notification::Column::Id"
        )]
        Notification,
    }

    impl Related<super::notification::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Notification.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// A slot's last known state, from the scheduling events. A slot without a row is available.
pub mod slot_state {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "slot_states")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub slot_id: Uuid,
        /// `available`, `booked` or `withdrawn` (see `slots::SlotState`).
        pub status: String,
        /// The patient who booked it, while it is booked.
        pub booked_by: Option<Uuid>,
        /// The stream sequence of the event that set this state: only a later one replaces it.
        pub stream_seq: i64,
        /// The time of that event.
        pub changed_at: DateTimeUtc,
    }

    slotcast_kit::no_relations!();
}

/// The last sequence number handed out in a patient's change log.
pub mod feed_cursor {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "feed_cursors")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub patient_id: Uuid,
        pub last_seq: i64,
    }

    slotcast_kit::no_relations!();
}

/// One change in a patient's feed: what the notification stream sends.
pub mod feed_event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "feed_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub patient_id: Uuid,
        /// 1, 2, 3, ... per patient, without gaps, in commit order: the SSE event id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub seq: i64,
        /// `notification` or `notification.updated` (see `feed_log::ChangeKind`).
        pub kind: String,
        pub notification_id: Uuid,
        pub created_at: DateTimeUtc,
    }

    slotcast_kit::no_relations!();
}
