//! The service's schema: the outbox (from the bus crate), the feed tables, then the slots'
//! states and the feed's change log.

use sea_orm_migration::{prelude::*, schema::*};
use slotcast_bus::outbox::CreateOutbox;

/// Runs every migration of this service, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateOutbox),
            Box::new(CreateFeed),
            Box::new(CreateSlotStatesAndFeedLog),
            Box::new(slotcast_bus::order::AddOrderStamp),
            Box::new(slotcast_bus::order::StampAtCommit),
            Box::new(slotcast_bus::bundle::AddOutboxBundles),
            Box::new(AddConfirmations),
        ]
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

/// `slot_states` (each slot's last known state, from the scheduling events), and the feed's
/// change log: `feed_cursors` and `feed_events`.
pub struct CreateSlotStatesAndFeedLog;

impl MigrationName for CreateSlotStatesAndFeedLog {
    fn name(&self) -> &str {
        "m0002_slot_states_and_feed_log"
    }
}

#[derive(DeriveIden)]
enum SlotStates {
    Table,
    SlotId,
    Status,
    BookedBy,
    StreamSeq,
    ChangedAt,
}

#[derive(DeriveIden)]
enum FeedCursors {
    Table,
    PatientId,
    LastSeq,
}

#[derive(DeriveIden)]
enum FeedEvents {
    Table,
    PatientId,
    Seq,
    Kind,
    NotificationId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSlotStatesAndFeedLog {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SlotStates::Table)
                    .if_not_exists()
                    .col(pk_uuid(SlotStates::SlotId))
                    .col(string(SlotStates::Status))
                    .col(uuid_null(SlotStates::BookedBy))
                    .col(big_integer(SlotStates::StreamSeq))
                    .col(timestamp_with_time_zone(SlotStates::ChangedAt))
                    .to_owned(),
            )
            .await?;
        // Slots marked taken before this version stay taken, at sequence 0 so that any slot
        // event still in the stream (the new consumer replays them all) takes over.
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO slot_states (slot_id, status, booked_by, stream_seq, changed_at) \
                 SELECT slot_id, 'booked', NULL, 0, MIN(taken_at) FROM notification_slots \
                 WHERE taken_at IS NOT NULL GROUP BY slot_id",
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FeedCursors::Table)
                    .if_not_exists()
                    .col(pk_uuid(FeedCursors::PatientId))
                    .col(big_integer(FeedCursors::LastSeq))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FeedEvents::Table)
                    .if_not_exists()
                    .col(uuid(FeedEvents::PatientId))
                    .col(big_integer(FeedEvents::Seq))
                    .col(string(FeedEvents::Kind))
                    .col(uuid(FeedEvents::NotificationId))
                    .col(timestamp_with_time_zone(FeedEvents::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(FeedEvents::PatientId)
                            .col(FeedEvents::Seq),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(FeedEvents::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(FeedCursors::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(SlotStates::Table).to_owned())
            .await
    }
}

/// `notifications.confirmation`: the appointment a confirmation is about (JSON), null for an
/// availability notification.
pub struct AddConfirmations;

impl MigrationName for AddConfirmations {
    fn name(&self) -> &str {
        "m0004_add_confirmations"
    }
}

#[derive(DeriveIden)]
enum ConfirmationColumns {
    Confirmation,
}

#[async_trait::async_trait]
impl MigrationTrait for AddConfirmations {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Notifications::Table)
                    .add_column(text_null(ConfirmationColumns::Confirmation))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Notifications::Table)
                    .drop_column(ConfirmationColumns::Confirmation)
                    .to_owned(),
            )
            .await
    }
}
