//! The migrations of this service's database: the outbox, then the delivery log.

use sea_orm_migration::{prelude::*, schema::*};

/// The migrations of this service's database: the outbox, then the delivery log.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(slotcast_bus::outbox::CreateOutbox),
            Box::new(CreateEmailDeliveries),
            Box::new(slotcast_bus::order::AddOrderStamp),
            Box::new(slotcast_bus::order::StampAtCommit),
            Box::new(slotcast_bus::bundle::AddOutboxBundles),
        ]
    }
}

/// Creates `email_deliveries`.
pub struct CreateEmailDeliveries;

impl MigrationName for CreateEmailDeliveries {
    fn name(&self) -> &str {
        "m0001_create_email_deliveries"
    }
}

#[derive(DeriveIden)]
enum EmailDeliveries {
    Table,
    NotificationId,
    PatientId,
    Status,
    Attempts,
    InFlight,
    LastError,
    MessageId,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateEmailDeliveries {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EmailDeliveries::Table)
                    .if_not_exists()
                    .col(pk_uuid(EmailDeliveries::NotificationId))
                    .col(uuid(EmailDeliveries::PatientId))
                    .col(string_len(EmailDeliveries::Status, 16))
                    .col(integer(EmailDeliveries::Attempts))
                    .col(boolean(EmailDeliveries::InFlight))
                    .col(text_null(EmailDeliveries::LastError))
                    .col(string(EmailDeliveries::MessageId))
                    .col(timestamp_with_time_zone(EmailDeliveries::CreatedAt))
                    .col(timestamp_with_time_zone(EmailDeliveries::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("email_deliveries_patient")
                    .table(EmailDeliveries::Table)
                    .col(EmailDeliveries::PatientId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EmailDeliveries::Table).to_owned())
            .await
    }
}
