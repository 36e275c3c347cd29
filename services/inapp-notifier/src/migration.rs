//! The service's schema: the outbox (from the bus crate), then the feed tables.

use sea_orm_migration::{prelude::*, schema::*};
use slotcast_bus::outbox::CreateOutbox;

/// Runs every migration of this service, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateOutbox), Box::new(CreateFeed)]
    }
}

/// `notifications` and `notification_slots`.
pub struct CreateFeed;

impl MigrationName for CreateFeed {
    fn name(&self) -> &str {
        "m0001_create_feed"
    }
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    PatientId,
    Reason,
    Title,
    Body,
    Practitioner,
    CreatedAt,
    ReadAt,
}

#[derive(DeriveIden)]
enum NotificationSlots {
    Table,
    NotificationId,
    SlotId,
    StartsAt,
    EndsAt,
    BookingUrl,
    TakenAt,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateFeed {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .if_not_exists()
                    .col(pk_uuid(Notifications::Id))
                    .col(uuid(Notifications::PatientId))
                    .col(string(Notifications::Reason))
                    .col(text(Notifications::Title))
                    .col(text(Notifications::Body))
                    .col(text(Notifications::Practitioner))
                    .col(timestamp_with_time_zone(Notifications::CreatedAt))
                    .col(timestamp_with_time_zone_null(Notifications::ReadAt))
                    .to_owned(),
            )
            .await?;
        // The feed query: one patient's notifications, newest first.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("notifications_patient_created")
                    .table(Notifications::Table)
                    .col(Notifications::PatientId)
                    .col(Notifications::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(NotificationSlots::Table)
                    .if_not_exists()
                    .col(uuid(NotificationSlots::NotificationId))
                    .col(uuid(NotificationSlots::SlotId))
                    .col(timestamp_with_time_zone(NotificationSlots::StartsAt))
                    .col(timestamp_with_time_zone(NotificationSlots::EndsAt))
                    .col(text(NotificationSlots::BookingUrl))
                    .col(timestamp_with_time_zone_null(NotificationSlots::TakenAt))
                    .primary_key(
                        Index::create()
                            .col(NotificationSlots::NotificationId)
                            .col(NotificationSlots::SlotId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("notification_slots_notification")
                            .from(NotificationSlots::Table, NotificationSlots::NotificationId)
                            .to(Notifications::Table, Notifications::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A booked slot is looked up in every notification that offered it.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("notification_slots_slot")
                    .table(NotificationSlots::Table)
                    .col(NotificationSlots::SlotId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(NotificationSlots::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Notifications::Table).to_owned())
            .await
    }
}
