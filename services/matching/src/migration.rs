//! Schema migrations, the same on Postgres and SQLite.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(slotcast_bus::outbox::CreateOutbox),
            Box::new(CreateProjection),
            Box::new(CreateSlotHistory),
            Box::new(IndexEntriesByWindow),
        ]
    }
}

#[derive(DeriveIden)]
enum Practitioners {
    Table,
    Id,
    Name,
    Specialty,
    Timezone,
    ConsultationFeeCents,
    Currency,
}

#[derive(DeriveIden)]
enum Patients {
    Table,
    Id,
    Name,
    Email,
    Locale,
    Timezone,
}

#[derive(DeriveIden)]
enum Slots {
    Table,
    Id,
    PractitionerId,
    StartsAt,
    EndsAt,
    Status,
    ReleasedBy,
}

#[derive(DeriveIden)]
enum Openings {
    Table,
    BatchId,
    PractitionerId,
    Expected,
    DecidedAt,
}

#[derive(DeriveIden)]
enum OpeningSlots {
    Table,
    BatchId,
    SlotId,
}

#[derive(DeriveIden)]
enum WaitlistEntries {
    Table,
    Id,
    PatientId,
    PractitionerId,
    Kind,
    HeldStartsAt,
    Earliest,
    Latest,
    Active,
    JoinedAt,
}

// The table is `told`, and its column `told_at` says when.
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden)]
enum Told {
    Table,
    SlotId,
    PatientId,
    NotificationId,
    EntryId,
    ToldAt,
}

struct CreateProjection;

impl MigrationName for CreateProjection {
    fn name(&self) -> &str {
        "m0001_create_projection"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateProjection {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Practitioners::Table)
                .if_not_exists()
                .col(pk_uuid(Practitioners::Id))
                .col(string(Practitioners::Name))
                .col(string(Practitioners::Specialty))
                .col(string(Practitioners::Timezone))
                .col(big_integer_null(Practitioners::ConsultationFeeCents))
                .col(string_len(Practitioners::Currency, 3))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Patients::Table)
                .if_not_exists()
                .col(pk_uuid(Patients::Id))
                .col(string(Patients::Name))
                .col(string(Patients::Email))
                .col(string(Patients::Locale))
                .col(string_null(Patients::Timezone))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Slots::Table)
                .if_not_exists()
                .col(pk_uuid(Slots::Id))
                .col(uuid(Slots::PractitionerId))
                .col(timestamp_with_time_zone(Slots::StartsAt))
                .col(timestamp_with_time_zone(Slots::EndsAt))
                .col(string(Slots::Status))
                .col(uuid_null(Slots::ReleasedBy))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Openings::Table)
                .if_not_exists()
                .col(pk_uuid(Openings::BatchId))
                .col(uuid(Openings::PractitionerId))
                .col(integer(Openings::Expected))
                .col(timestamp_with_time_zone_null(Openings::DecidedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(OpeningSlots::Table)
                .if_not_exists()
                .col(uuid(OpeningSlots::BatchId))
                .col(uuid(OpeningSlots::SlotId))
                .primary_key(
                    Index::create()
                        .col(OpeningSlots::BatchId)
                        .col(OpeningSlots::SlotId),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(WaitlistEntries::Table)
                .if_not_exists()
                .col(pk_uuid(WaitlistEntries::Id))
                .col(uuid(WaitlistEntries::PatientId))
                .col(uuid(WaitlistEntries::PractitionerId))
                .col(string(WaitlistEntries::Kind))
                .col(timestamp_with_time_zone_null(WaitlistEntries::HeldStartsAt))
                .col(timestamp_with_time_zone_null(WaitlistEntries::Earliest))
                .col(timestamp_with_time_zone_null(WaitlistEntries::Latest))
                .col(boolean(WaitlistEntries::Active))
                .col(timestamp_with_time_zone(WaitlistEntries::JoinedAt))
                .to_owned(),
        )
        .await?;
        // The matching query: the active entries of one practitioner.
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("entries_practitioner_active")
                .table(WaitlistEntries::Table)
                .col(WaitlistEntries::PractitionerId)
                .col(WaitlistEntries::Active)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Told::Table)
                .if_not_exists()
                .col(uuid(Told::SlotId))
                .col(uuid(Told::PatientId))
                .col(uuid(Told::NotificationId))
                .col(uuid(Told::EntryId))
                .col(timestamp_with_time_zone(Told::ToldAt))
                .primary_key(Index::create().col(Told::SlotId).col(Told::PatientId))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            Told::Table.into_iden(),
            WaitlistEntries::Table.into_iden(),
            OpeningSlots::Table.into_iden(),
            Openings::Table.into_iden(),
            Slots::Table.into_iden(),
            Patients::Table.into_iden(),
            Practitioners::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum SlotHistory {
    Table,
    EventId,
    SlotId,
    At,
    Kind,
    PatientId,
    NotificationId,
    Reason,
}

/// `slot_history`: what happened to each slot, one row per scheduling event about it (keyed by
/// the event id, so a redelivery adds nothing). Who was told is in `told`.
pub struct CreateSlotHistory;

impl MigrationName for CreateSlotHistory {
    fn name(&self) -> &str {
        "m0002_create_slot_history"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSlotHistory {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(SlotHistory::Table)
                .if_not_exists()
                .col(pk_uuid(SlotHistory::EventId))
                .col(uuid(SlotHistory::SlotId))
                .col(timestamp_with_time_zone(SlotHistory::At))
                .col(string(SlotHistory::Kind))
                .col(uuid_null(SlotHistory::PatientId))
                .col(uuid_null(SlotHistory::NotificationId))
                .col(string_null(SlotHistory::Reason))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("slot_history_slot_at")
                .table(SlotHistory::Table)
                .col(SlotHistory::SlotId)
                .col(SlotHistory::At)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(SlotHistory::Table).to_owned())
            .await
    }
}

/// The matching query asks for a practitioner's active entries whose window can hold the
/// opening (`earliest` null or before its last slot): an index on `(practitioner_id, active,
/// earliest)` answers that without reading the entries waiting for other times. It replaces
/// `entries_practitioner_active`, its prefix.
pub struct IndexEntriesByWindow;

impl MigrationName for IndexEntriesByWindow {
    fn name(&self) -> &str {
        "m0003_index_entries_by_window"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for IndexEntriesByWindow {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("entries_practitioner_active_earliest")
                .table(WaitlistEntries::Table)
                .col(WaitlistEntries::PractitionerId)
                .col(WaitlistEntries::Active)
                .col(WaitlistEntries::Earliest)
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .if_exists()
                .name("entries_practitioner_active")
                .table(WaitlistEntries::Table)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("entries_practitioner_active")
                .table(WaitlistEntries::Table)
                .col(WaitlistEntries::PractitionerId)
                .col(WaitlistEntries::Active)
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .if_exists()
                .name("entries_practitioner_active_earliest")
                .table(WaitlistEntries::Table)
                .to_owned(),
        )
        .await
    }
}
