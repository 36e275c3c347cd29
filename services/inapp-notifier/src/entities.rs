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
        /// `new` or `move_up`.
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

/// A slot a notification offers, and whether it has been booked since.
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
        /// When the slot was booked (by anyone); `None` while it is open.
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
