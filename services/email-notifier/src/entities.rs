//! The delivery log: one `email_deliveries` row per notification.

use sea_orm::entity::prelude::*;

/// Where a notification's email stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Status {
    /// An attempt was made or is being made; not known to have arrived.
    #[sea_orm(string_value = "sending")]
    Sending,
    /// The SMTP server (or the mail folder) took it.
    #[sea_orm(string_value = "sent")]
    Sent,
    /// Given up on: refused for good, or out of retries.
    #[sea_orm(string_value = "failed")]
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub notification_id: Uuid,
    pub patient_id: Uuid,
    pub status: Status,
    /// Attempts claimed so far, the one in flight included.
    pub attempts: i32,
    /// An attempt was claimed and its outcome is not written yet.
    pub in_flight: bool,
    /// The last SMTP reply or error, with addresses taken out.
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    /// The `Message-ID` header, `<notification_id@slotcast>`.
    pub message_id: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
