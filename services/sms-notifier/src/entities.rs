//! The service's tables: the delivery log, the texts received, and the numbers that texted
//! STOP.

/// The delivery log: one `sms_deliveries` row per notification.
pub mod delivery {
    use sea_orm::entity::prelude::*;

    /// Where a notification's text stands.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
    #[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
    pub enum Status {
        /// An attempt was made or is being made; the gateway has not taken it yet.
        #[sea_orm(string_value = "sending")]
        Sending,
        /// The gateway took it.
        #[sea_orm(string_value = "sent")]
        Sent,
        /// The network reported it on the patient's phone.
        #[sea_orm(string_value = "delivered")]
        Delivered,
        /// Given up on: refused for good, out of retries, or reported undelivered.
        #[sea_orm(string_value = "failed")]
        Failed,
    }

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sms_deliveries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub notification_id: Uuid,
        pub patient_id: Uuid,
        pub status: Status,
        /// Attempts claimed so far, the one in flight included.
        pub attempts: i32,
        /// An attempt was claimed and its outcome is not written yet.
        pub in_flight: bool,
        /// Counts every change, so that an update applies only to the row as it was read.
        pub revision: i32,
        /// The secret the gateway's delivery reports for this text carry (128 random bits, hex).
        pub report_key: String,
        /// The text's short link, `/s/<short_id>` (128 random bits, 22 characters of base64url).
        #[sea_orm(unique)]
        pub short_id: String,
        /// Where the short link leads: the offer's page.
        #[sea_orm(column_type = "Text")]
        pub link_target: String,
        /// The number texted (E.164), which a reply comes from.
        pub phone: Option<String>,
        /// What the text offered, as a reply needs it ([`crate::replies::Offered`], JSON).
        #[sea_orm(column_type = "Text", nullable)]
        pub offered: Option<String>,
        /// When the gateway took it.
        pub sent_at: Option<DateTimeUtc>,
        /// The gateway's reference, where it gives one.
        pub gateway_id: Option<String>,
        /// Its length in SMS segments, once sent.
        pub segments: Option<i32>,
        /// The last gateway answer or report, without the phone number.
        #[sea_orm(column_type = "Text", nullable)]
        pub last_error: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Texts received from patients' phones: one row per gateway message id, so a message the
/// gateway hands over twice is answered once.
pub mod inbound {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sms_inbound")]
    pub struct Model {
        /// The gateway's id for the message.
        #[sea_orm(primary_key, auto_increment = false)]
        pub gateway_id: String,
        /// E.164.
        pub phone: String,
        /// What the text asked: `stop`, `start`, `help`, `book` or `unclear`.
        pub asked: String,
        /// What came of it (`booked`, `taken`, `expired`, `stopped`, ...), once decided.
        pub outcome: Option<String>,
        /// The answer decided on, sent once `answered_at` is set.
        #[sea_orm(column_type = "Text", nullable)]
        pub reply: Option<String>,
        pub received_at: DateTimeUtc,
        pub answered_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The numbers that texted STOP (and not START since): nothing more is texted to them, from
/// the moment the STOP arrives.
pub mod opt_out {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sms_opt_outs")]
    pub struct Model {
        /// E.164.
        #[sea_orm(primary_key, auto_increment = false)]
        pub phone: String,
        pub stopped_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
