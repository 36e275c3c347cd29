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
            Box::new(CreatePolicy),
            Box::new(DecisionsWithTheirOffers),
            Box::new(slotcast_bus::order::AddOrderStamp),
            Box::new(slotcast_bus::order::StampAtCommit),
            Box::new(CreateOrderProgress),
            Box::new(slotcast_bus::bundle::AddOutboxBundles),
            Box::new(DecideWhenDue),
            Box::new(PatientTexts),
            Box::new(TextsAtQuietHours),
            Box::new(PractitionerQuietHours),
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
    EmailEnabled,
    InappEnabled,
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
    Policy,
    DueAt,
    Trace,
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
    Priority,
    ExpiresAt,
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
    Rank,
    Priority,
    Wave,
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

#[derive(DeriveIden)]
enum Pending {
    Table,
    PatientId,
    SlotId,
    PractitionerId,
    EntryId,
    BatchId,
    Reason,
    Rank,
    Wave,
    HeldUntil,
    DueAt,
    Trace,
    Priority,
    DecidedAt,
}

#[derive(DeriveIden)]
enum Waves {
    Table,
    BatchId,
    PractitionerId,
    NextWave,
    DueAt,
    HoldId,
    Status,
    Attempts,
    Trace,
}

#[derive(DeriveIden)]
enum WaveMembers {
    Table,
    BatchId,
    PatientId,
    Wave,
}

#[derive(DeriveIden)]
enum Considered {
    Table,
    SlotId,
    PatientId,
    EntryId,
    Rank,
    Priority,
    Outcome,
    Reason,
    Wave,
    NotificationId,
    At,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    NotificationId,
    PatientId,
    SentAt,
}

/// The notification policy (issue 6): entry priority and expiry, patient preferences, each
/// opening's policy; `pending` (offers waiting out the coalescing window), `waves` and
/// `wave_members` (the timers of the `waves` policy and who each wave told), `considered` (every
/// decision about a slot and a patient, for staff) and `messages` (what each patient was sent,
/// for the daily cap).
pub struct CreatePolicy;

impl MigrationName for CreatePolicy {
    fn name(&self) -> &str {
        "m0004_create_policy"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreatePolicy {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for col in [
            ColumnDef::new(WaitlistEntries::Priority)
                .string()
                .not_null()
                .default("routine")
                .to_owned(),
            ColumnDef::new(WaitlistEntries::ExpiresAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        ] {
            m.alter_table(
                Table::alter()
                    .table(WaitlistEntries::Table)
                    .add_column(col)
                    .to_owned(),
            )
            .await?;
        }
        for col in [
            ColumnDef::new(Patients::EmailEnabled)
                .boolean()
                .not_null()
                .default(true)
                .to_owned(),
            ColumnDef::new(Patients::InappEnabled)
                .boolean()
                .not_null()
                .default(true)
                .to_owned(),
        ] {
            m.alter_table(
                Table::alter()
                    .table(Patients::Table)
                    .add_column(col)
                    .to_owned(),
            )
            .await?;
        }
        m.alter_table(
            Table::alter()
                .table(Openings::Table)
                .add_column(
                    ColumnDef::new(Openings::Policy)
                        .string()
                        .not_null()
                        .default("broadcast"),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Pending::Table)
                .if_not_exists()
                .col(uuid(Pending::PatientId))
                .col(uuid(Pending::SlotId))
                .col(uuid(Pending::PractitionerId))
                .col(uuid(Pending::EntryId))
                .col(uuid(Pending::BatchId))
                .col(string(Pending::Reason))
                .col(integer(Pending::Rank))
                .col(integer_null(Pending::Wave))
                .col(timestamp_with_time_zone_null(Pending::HeldUntil))
                .col(timestamp_with_time_zone(Pending::DueAt))
                .col(text(Pending::Trace).default("{}"))
                .primary_key(Index::create().col(Pending::PatientId).col(Pending::SlotId))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("pending_due_at")
                .table(Pending::Table)
                .col(Pending::DueAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("pending_slot_id")
                .table(Pending::Table)
                .col(Pending::SlotId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Waves::Table)
                .if_not_exists()
                .col(pk_uuid(Waves::BatchId))
                .col(uuid(Waves::PractitionerId))
                .col(integer(Waves::NextWave))
                .col(timestamp_with_time_zone(Waves::DueAt))
                .col(uuid_null(Waves::HoldId))
                .col(string(Waves::Status))
                .col(integer(Waves::Attempts).default(0))
                .col(text(Waves::Trace).default("{}"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("waves_status_due_at")
                .table(Waves::Table)
                .col(Waves::Status)
                .col(Waves::DueAt)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(WaveMembers::Table)
                .if_not_exists()
                .col(uuid(WaveMembers::BatchId))
                .col(uuid(WaveMembers::PatientId))
                .col(integer(WaveMembers::Wave))
                .primary_key(
                    Index::create()
                        .col(WaveMembers::BatchId)
                        .col(WaveMembers::PatientId),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Considered::Table)
                .if_not_exists()
                .col(uuid(Considered::SlotId))
                .col(uuid(Considered::PatientId))
                .col(uuid(Considered::EntryId))
                .col(integer(Considered::Rank))
                .col(string(Considered::Priority))
                .col(string(Considered::Outcome))
                .col(string_null(Considered::Reason))
                .col(integer_null(Considered::Wave))
                .col(uuid_null(Considered::NotificationId))
                .col(timestamp_with_time_zone(Considered::At))
                .primary_key(
                    Index::create()
                        .col(Considered::SlotId)
                        .col(Considered::PatientId),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Messages::Table)
                .if_not_exists()
                .col(pk_uuid(Messages::NotificationId))
                .col(uuid(Messages::PatientId))
                .col(timestamp_with_time_zone(Messages::SentAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("messages_patient_sent_at")
                .table(Messages::Table)
                .col(Messages::PatientId)
                .col(Messages::SentAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Messages::Table.into_iden(),
            Considered::Table.into_iden(),
            WaveMembers::Table.into_iden(),
            Waves::Table.into_iden(),
            Pending::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        m.alter_table(
            Table::alter()
                .table(Openings::Table)
                .drop_column(Openings::Policy)
                .to_owned(),
        )
        .await?;
        for col in [Patients::EmailEnabled, Patients::InappEnabled] {
            m.alter_table(
                Table::alter()
                    .table(Patients::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        for col in [WaitlistEntries::Priority, WaitlistEntries::ExpiresAt] {
            m.alter_table(
                Table::alter()
                    .table(WaitlistEntries::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

/// Fewer rows per notification: `told` and `pending` carry their decision (rank, priority,
/// wave; when it was decided), so `considered` keeps only the outcomes they do not record, and
/// the daily cap counts the notifications in `told` (by patient and time, indexed), so
/// `messages` goes.
pub struct DecisionsWithTheirOffers;

impl MigrationName for DecisionsWithTheirOffers {
    fn name(&self) -> &str {
        "m0005_decisions_with_their_offers"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for DecisionsWithTheirOffers {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for col in [
            ColumnDef::new(Told::Rank)
                .integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(Told::Priority)
                .string()
                .not_null()
                .default("")
                .to_owned(),
            ColumnDef::new(Told::Wave).integer().null().to_owned(),
        ] {
            m.alter_table(Table::alter().table(Told::Table).add_column(col).to_owned())
                .await?;
        }
        for col in [
            ColumnDef::new(Pending::Priority)
                .string()
                .not_null()
                .default("")
                .to_owned(),
            ColumnDef::new(Pending::DecidedAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        ] {
            m.alter_table(
                Table::alter()
                    .table(Pending::Table)
                    .add_column(col)
                    .to_owned(),
            )
            .await?;
        }
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("told_patient_told_at")
                .table(Told::Table)
                .col(Told::PatientId)
                .col(Told::ToldAt)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(Messages::Table).if_exists().to_owned())
            .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Messages::Table)
                .if_not_exists()
                .col(pk_uuid(Messages::NotificationId))
                .col(uuid(Messages::PatientId))
                .col(timestamp_with_time_zone(Messages::SentAt))
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .if_exists()
                .name("told_patient_told_at")
                .table(Told::Table)
                .to_owned(),
        )
        .await?;
        for col in [Pending::Priority, Pending::DecidedAt] {
            m.alter_table(
                Table::alter()
                    .table(Pending::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        for col in [Told::Rank, Told::Priority, Told::Wave] {
            m.alter_table(
                Table::alter()
                    .table(Told::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum OrderProgress {
    Table,
    Key,
    Applied,
}

/// `order_progress`: the number of the last event applied for each order key
/// ([`crate::fence`]).
pub struct CreateOrderProgress;

impl MigrationName for CreateOrderProgress {
    fn name(&self) -> &str {
        "m0006_create_order_progress"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateOrderProgress {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(OrderProgress::Table)
                .if_not_exists()
                .col(pk_uuid(OrderProgress::Key))
                .col(big_integer(OrderProgress::Applied))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(OrderProgress::Table).to_owned())
            .await
    }
}

/// A broadcast opening is decided when its coalescing window ends, by the dispatcher that sends
/// it: `due_at` says when, and `trace` is the trace its offers continue.
pub struct DecideWhenDue;

impl MigrationName for DecideWhenDue {
    fn name(&self) -> &str {
        "m0007_decide_when_due"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for DecideWhenDue {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for col in [
            ColumnDef::new(Openings::DueAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            ColumnDef::new(Openings::Trace)
                .text()
                .not_null()
                .default("{}")
                .to_owned(),
        ] {
            m.alter_table(
                Table::alter()
                    .table(Openings::Table)
                    .add_column(col)
                    .to_owned(),
            )
            .await?;
        }
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("openings_due_at")
                .table(Openings::Table)
                .col(Openings::DueAt)
                .to_owned(),
        )
        .await?;
        // A practitioner's openings waiting out their window, decided with the one due.
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("openings_practitioner_due_at")
                .table(Openings::Table)
                .col(Openings::PractitionerId)
                .col(Openings::DueAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for name in ["openings_due_at", "openings_practitioner_due_at"] {
            m.drop_index(
                Index::drop()
                    .if_exists()
                    .name(name)
                    .table(Openings::Table)
                    .to_owned(),
            )
            .await?;
        }
        for col in [Openings::DueAt, Openings::Trace] {
            m.alter_table(
                Table::alter()
                    .table(Openings::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

/// A patient's phone number and whether they consented to text messages.
pub struct PatientTexts;

impl MigrationName for PatientTexts {
    fn name(&self) -> &str {
        "m0008_patient_texts"
    }
}

#[derive(DeriveIden)]
enum PatientTextsColumns {
    SmsEnabled,
    Phone,
}

#[async_trait::async_trait]
impl MigrationTrait for PatientTexts {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let columns = vec![
            boolean(PatientTextsColumns::SmsEnabled)
                .default(false)
                .to_owned(),
            string_null(PatientTextsColumns::Phone),
        ];
        slotcast_kit::db::add_columns(m, Patients::Table.into_iden(), columns).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let columns = vec![
            PatientTextsColumns::SmsEnabled.into_iden(),
            PatientTextsColumns::Phone.into_iden(),
        ];
        slotcast_kit::db::drop_columns(m, Patients::Table.into_iden(), columns).await
    }
}

/// What became of each told message's text: now, deferred past the quiet hours, or skipped.
pub struct TextsAtQuietHours;

impl MigrationName for TextsAtQuietHours {
    fn name(&self) -> &str {
        "m0009_texts_at_quiet_hours"
    }
}

#[derive(DeriveIden)]
enum TextsColumns {
    Told,
    Texted,
    TextAt,
}

#[async_trait::async_trait]
impl MigrationTrait for TextsAtQuietHours {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let columns = vec![
            string_len_null(TextsColumns::Texted, 16),
            timestamp_with_time_zone_null(TextsColumns::TextAt),
        ];
        slotcast_kit::db::add_columns(m, TextsColumns::Told.into_iden(), columns).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let columns = vec![
            TextsColumns::Texted.into_iden(),
            TextsColumns::TextAt.into_iden(),
        ];
        slotcast_kit::db::drop_columns(m, TextsColumns::Told.into_iden(), columns).await
    }
}

/// A practitioner's own quiet hours, whether every channel keeps them, and why an offer waits.
pub struct PractitionerQuietHours;

impl MigrationName for PractitionerQuietHours {
    fn name(&self) -> &str {
        "m0010_practitioner_quiet_hours"
    }
}

#[derive(DeriveIden)]
enum QuietHoursColumns {
    QuietHours,
    QuietAllChannels,
    Pending,
    WaitsFor,
}

#[async_trait::async_trait]
impl MigrationTrait for PractitionerQuietHours {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let columns = vec![
            string_len_null(QuietHoursColumns::QuietHours, 16),
            boolean(QuietHoursColumns::QuietAllChannels)
                .default(false)
                .to_owned(),
        ];
        slotcast_kit::db::add_columns(m, Practitioners::Table.into_iden(), columns).await?;
        let columns = vec![string_len_null(QuietHoursColumns::WaitsFor, 16)];
        slotcast_kit::db::add_columns(m, QuietHoursColumns::Pending.into_iden(), columns).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let columns = vec![QuietHoursColumns::WaitsFor.into_iden()];
        slotcast_kit::db::drop_columns(m, QuietHoursColumns::Pending.into_iden(), columns).await?;
        let columns = vec![
            QuietHoursColumns::QuietHours.into_iden(),
            QuietHoursColumns::QuietAllChannels.into_iden(),
        ];
        slotcast_kit::db::drop_columns(m, Practitioners::Table.into_iden(), columns).await
    }
}
