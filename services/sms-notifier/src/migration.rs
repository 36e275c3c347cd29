//! The migrations of this service's database: the outbox, then the delivery log.

use sea_orm_migration::{prelude::*, schema::*};

/// The migrations of this service's database.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(slotcast_bus::outbox::CreateOutbox),
            Box::new(slotcast_bus::order::AddOrderStamp),
            Box::new(slotcast_bus::order::StampAtCommit),
            Box::new(slotcast_bus::bundle::AddOutboxBundles),
            Box::new(CreateSmsDeliveries),
            Box::new(Replies),
        ]
    }
}

/// Creates `sms_deliveries`.
pub struct CreateSmsDeliveries;

impl MigrationName for CreateSmsDeliveries {
    fn name(&self) -> &str {
        "m0001_create_sms_deliveries"
    }
}

#[derive(DeriveIden)]
enum SmsDeliveries {
    Table,
    NotificationId,
    PatientId,
    Status,
    Attempts,
    InFlight,
    Revision,
    ReportKey,
    ShortId,
    LinkTarget,
    SentAt,
    GatewayId,
    Segments,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSmsDeliveries {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SmsDeliveries::Table)
                    .if_not_exists()
                    .col(pk_uuid(SmsDeliveries::NotificationId))
                    .col(uuid(SmsDeliveries::PatientId))
                    .col(string_len(SmsDeliveries::Status, 16))
                    .col(integer(SmsDeliveries::Attempts))
                    .col(boolean(SmsDeliveries::InFlight))
                    .col(integer(SmsDeliveries::Revision))
                    .col(string(SmsDeliveries::ReportKey))
                    .col(string_uniq(SmsDeliveries::ShortId))
                    .col(text(SmsDeliveries::LinkTarget))
                    .col(timestamp_with_time_zone_null(SmsDeliveries::SentAt))
                    .col(string_null(SmsDeliveries::GatewayId))
                    .col(integer_null(SmsDeliveries::Segments))
                    .col(text_null(SmsDeliveries::LastError))
                    .col(timestamp_with_time_zone(SmsDeliveries::CreatedAt))
                    .col(timestamp_with_time_zone(SmsDeliveries::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("sms_deliveries_patient")
                    .table(SmsDeliveries::Table)
                    .col(SmsDeliveries::PatientId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SmsDeliveries::Table).to_owned())
            .await
    }
}

/// What replies need: the number and the offer of each text, the texts received, and the
/// numbers that texted STOP.
pub struct Replies;

impl MigrationName for Replies {
    fn name(&self) -> &str {
        "m0002_replies"
    }
}

#[derive(DeriveIden)]
enum RepliesColumns {
    Phone,
    Offered,
    SentAt,
}

#[derive(DeriveIden)]
enum SmsInbound {
    Table,
    GatewayId,
    Phone,
    Asked,
    Outcome,
    Reply,
    ReceivedAt,
    AnsweredAt,
}

#[derive(DeriveIden)]
enum SmsOptOuts {
    Table,
    Phone,
    StoppedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Replies {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let columns = vec![
            string_null(RepliesColumns::Phone),
            text_null(RepliesColumns::Offered),
        ];
        slotcast_kit::db::add_columns(m, SmsDeliveries::Table.into_iden(), columns).await?;
        // A reply is matched to the newest text sent to its number.
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("sms_deliveries_phone_sent_at")
                .table(SmsDeliveries::Table)
                .col(RepliesColumns::Phone)
                .col(RepliesColumns::SentAt)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SmsInbound::Table)
                .if_not_exists()
                .col(string(SmsInbound::GatewayId).primary_key())
                .col(string(SmsInbound::Phone))
                .col(string_len(SmsInbound::Asked, 16))
                .col(string_len_null(SmsInbound::Outcome, 32))
                .col(text_null(SmsInbound::Reply))
                .col(timestamp_with_time_zone(SmsInbound::ReceivedAt))
                .col(timestamp_with_time_zone_null(SmsInbound::AnsweredAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SmsOptOuts::Table)
                .if_not_exists()
                .col(string(SmsOptOuts::Phone).primary_key())
                .col(timestamp_with_time_zone(SmsOptOuts::StoppedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [SmsInbound::Table.into_iden(), SmsOptOuts::Table.into_iden()] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        m.drop_index(
            Index::drop()
                .if_exists()
                .name("sms_deliveries_phone_sent_at")
                .table(SmsDeliveries::Table)
                .to_owned(),
        )
        .await?;
        let columns = vec![
            RepliesColumns::Phone.into_iden(),
            RepliesColumns::Offered.into_iden(),
        ];
        slotcast_kit::db::drop_columns(m, SmsDeliveries::Table.into_iden(), columns).await
    }
}
