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
