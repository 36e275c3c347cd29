//! Schema migrations, the same on Postgres and SQLite.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(slotcast_bus::outbox::CreateOutbox),
            Box::new(CreateScheduling),
            Box::new(CreateOffers),
            Box::new(NotificationPolicy),
            Box::new(slotcast_bus::order::AddOrderStamp),
            Box::new(slotcast_bus::order::StampAtCommit),
            Box::new(slotcast_bus::bundle::AddOutboxBundles),
            Box::new(AppointmentSequence),
            Box::new(PatientPhone),
            Box::new(SmsConsent),
            Box::new(IndexPatientsByPhone),
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
    CreatedAt,
}

#[derive(DeriveIden)]
enum Patients {
    Table,
    Id,
    Name,
    Email,
    Locale,
    Timezone,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Slots {
    Table,
    Id,
    PractitionerId,
    StartsAt,
    EndsAt,
    Status,
    BatchId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Appointments {
    Table,
    Id,
    PatientId,
    PractitionerId,
    SlotId,
    Status,
    CreatedAt,
    CancelledAt,
}

#[derive(DeriveIden)]
enum WaitlistEntries {
    Table,
    Id,
    PatientId,
    PractitionerId,
    Kind,
    AppointmentId,
    Earliest,
    Latest,
    Status,
    CreatedAt,
    ClosedAt,
}

struct CreateScheduling;

impl MigrationName for CreateScheduling {
    fn name(&self) -> &str {
        "m0001_create_scheduling"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateScheduling {
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
                .col(timestamp_with_time_zone(Practitioners::CreatedAt))
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
                .col(timestamp_with_time_zone(Patients::CreatedAt))
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
                .col(uuid(Slots::BatchId))
                .col(timestamp_with_time_zone(Slots::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Slots::Table, Slots::PractitionerId)
                        .to(Practitioners::Table, Practitioners::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("slots_practitioner_time")
                .table(Slots::Table)
                .col(Slots::PractitionerId)
                .col(Slots::StartsAt)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Appointments::Table)
                .if_not_exists()
                .col(pk_uuid(Appointments::Id))
                .col(uuid(Appointments::PatientId))
                .col(uuid(Appointments::PractitionerId))
                .col(uuid(Appointments::SlotId))
                .col(string(Appointments::Status))
                .col(timestamp_with_time_zone(Appointments::CreatedAt))
                .col(timestamp_with_time_zone_null(Appointments::CancelledAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Appointments::Table, Appointments::PatientId)
                        .to(Patients::Table, Patients::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Appointments::Table, Appointments::SlotId)
                        .to(Slots::Table, Slots::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("appointments_patient")
                .table(Appointments::Table)
                .col(Appointments::PatientId)
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
                .col(uuid_null(WaitlistEntries::AppointmentId))
                .col(timestamp_with_time_zone_null(WaitlistEntries::Earliest))
                .col(timestamp_with_time_zone_null(WaitlistEntries::Latest))
                .col(string(WaitlistEntries::Status))
                .col(timestamp_with_time_zone(WaitlistEntries::CreatedAt))
                .col(timestamp_with_time_zone_null(WaitlistEntries::ClosedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(WaitlistEntries::Table, WaitlistEntries::PatientId)
                        .to(Patients::Table, Patients::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(WaitlistEntries::Table, WaitlistEntries::PractitionerId)
                        .to(Practitioners::Table, Practitioners::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("waitlist_practitioner_status")
                .table(WaitlistEntries::Table)
                .col(WaitlistEntries::PractitionerId)
                .col(WaitlistEntries::Status)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("waitlist_patient")
                .table(WaitlistEntries::Table)
                .col(WaitlistEntries::PatientId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            WaitlistEntries::Table.into_iden(),
            Appointments::Table.into_iden(),
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
enum Offers {
    Table,
    NotificationId,
    PatientId,
    IssuedAt,
    ExpiresAt,
    FirstClaimedAt,
    UsedAt,
    SlotId,
    AppointmentId,
}

/// `offers`: one row per booking link that has been claimed from, so a link books once.
pub struct CreateOffers;

impl MigrationName for CreateOffers {
    fn name(&self) -> &str {
        "m0002_create_offers"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateOffers {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Offers::Table)
                .if_not_exists()
                .col(pk_uuid(Offers::NotificationId))
                .col(uuid(Offers::PatientId))
                .col(timestamp_with_time_zone(Offers::IssuedAt))
                .col(timestamp_with_time_zone(Offers::ExpiresAt))
                .col(timestamp_with_time_zone(Offers::FirstClaimedAt))
                .col(timestamp_with_time_zone_null(Offers::UsedAt))
                .col(uuid_null(Offers::SlotId))
                .col(uuid_null(Offers::AppointmentId))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Offers::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Holds {
    Table,
    Id,
    Until,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum HoldPatients {
    Table,
    HoldId,
    PatientId,
}

#[derive(DeriveIden)]
enum PolicyColumns {
    OfferPolicy,
    HoldId,
    HeldUntil,
    Priority,
    ExpiresAt,
    NotifyEmail,
    NotifyInapp,
    PreferencesUpdatedAt,
}

/// Issue 6, notification policy: a practitioner's `offer_policy`, a slot's hold (`hold_id`,
/// `held_until`), a waiting-list entry's `priority` and `expires_at`, a patient's notification
/// preferences, and the `holds` with their patient sets. One column per `ALTER TABLE`, as SQLite
/// wants it.
pub struct NotificationPolicy;

impl MigrationName for NotificationPolicy {
    fn name(&self) -> &str {
        "m0003_notification_policy"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for NotificationPolicy {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let add =
            |table: DynIden, col: ColumnDef| Table::alter().table(table).add_column(col).to_owned();
        for statement in [
            add(
                Practitioners::Table.into_iden(),
                string_null(PolicyColumns::OfferPolicy),
            ),
            add(Slots::Table.into_iden(), uuid_null(PolicyColumns::HoldId)),
            add(
                Slots::Table.into_iden(),
                timestamp_with_time_zone_null(PolicyColumns::HeldUntil),
            ),
            add(
                WaitlistEntries::Table.into_iden(),
                string(PolicyColumns::Priority)
                    .default("routine")
                    .to_owned(),
            ),
            add(
                WaitlistEntries::Table.into_iden(),
                timestamp_with_time_zone_null(PolicyColumns::ExpiresAt),
            ),
            add(
                Patients::Table.into_iden(),
                boolean(PolicyColumns::NotifyEmail).default(true).to_owned(),
            ),
            add(
                Patients::Table.into_iden(),
                boolean(PolicyColumns::NotifyInapp).default(true).to_owned(),
            ),
            add(
                Patients::Table.into_iden(),
                timestamp_with_time_zone_null(PolicyColumns::PreferencesUpdatedAt),
            ),
        ] {
            m.alter_table(statement).await?;
        }
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("slots_hold")
                .table(Slots::Table)
                .col(PolicyColumns::HoldId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Holds::Table)
                .if_not_exists()
                .col(pk_uuid(Holds::Id))
                .col(timestamp_with_time_zone(Holds::Until))
                .col(timestamp_with_time_zone(Holds::CreatedAt))
                .col(timestamp_with_time_zone(Holds::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(HoldPatients::Table)
                .if_not_exists()
                .col(uuid(HoldPatients::HoldId))
                .col(uuid(HoldPatients::PatientId))
                .primary_key(
                    Index::create()
                        .col(HoldPatients::HoldId)
                        .col(HoldPatients::PatientId),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [HoldPatients::Table.into_iden(), Holds::Table.into_iden()] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}

/// The calendar entry's `SEQUENCE` of each appointment: one more at each move and at the
/// cancellation, so a patient's calendar applies the confirmations in order.
pub struct AppointmentSequence;

impl MigrationName for AppointmentSequence {
    fn name(&self) -> &str {
        "m0004_appointment_sequence"
    }
}

#[derive(DeriveIden)]
enum AppointmentSequenceColumns {
    Sequence,
}

#[async_trait::async_trait]
impl MigrationTrait for AppointmentSequence {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Appointments::Table)
                .add_column(
                    integer(AppointmentSequenceColumns::Sequence)
                        .default(0)
                        .to_owned(),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Appointments::Table)
                .drop_column(AppointmentSequenceColumns::Sequence)
                .to_owned(),
        )
        .await
    }
}

/// A patient's mobile number (E.164), for the text messages to come.
pub struct PatientPhone;

impl MigrationName for PatientPhone {
    fn name(&self) -> &str {
        "m0005_patient_phone"
    }
}

#[derive(DeriveIden)]
enum PatientPhoneColumns {
    Phone,
}

#[async_trait::async_trait]
impl MigrationTrait for PatientPhone {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Patients::Table)
                .add_column(string_null(PatientPhoneColumns::Phone))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Patients::Table)
                .drop_column(PatientPhoneColumns::Phone)
                .to_owned(),
        )
        .await
    }
}

/// Text messages: off until the patient consents, and the consent's time and source.
pub struct SmsConsent;

impl MigrationName for SmsConsent {
    fn name(&self) -> &str {
        "m0006_sms_consent"
    }
}

#[derive(DeriveIden)]
enum SmsConsentColumns {
    NotifySms,
    SmsConsentAt,
    SmsConsentVia,
}

#[async_trait::async_trait]
impl MigrationTrait for SmsConsent {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let columns = vec![
            boolean(SmsConsentColumns::NotifySms)
                .default(false)
                .to_owned(),
            timestamp_with_time_zone_null(SmsConsentColumns::SmsConsentAt),
            string_null(SmsConsentColumns::SmsConsentVia),
        ];
        slotcast_kit::db::add_columns(m, Patients::Table.into_iden(), columns).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let columns = vec![
            SmsConsentColumns::NotifySms.into_iden(),
            SmsConsentColumns::SmsConsentAt.into_iden(),
            SmsConsentColumns::SmsConsentVia.into_iden(),
        ];
        slotcast_kit::db::drop_columns(m, Patients::Table.into_iden(), columns).await
    }
}

/// Patients found by their number, for a STOP or START texted from it.
pub struct IndexPatientsByPhone;

impl MigrationName for IndexPatientsByPhone {
    fn name(&self) -> &str {
        "m0007_index_patients_by_phone"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for IndexPatientsByPhone {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("patients_phone")
                .table(Patients::Table)
                .col(PatientPhoneColumns::Phone)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .if_exists()
                .name("patients_phone")
                .table(Patients::Table)
                .to_owned(),
        )
        .await
    }
}

/// A practitioner's own quiet hours, and whether every channel keeps them.
pub struct PractitionerQuietHours;

impl MigrationName for PractitionerQuietHours {
    fn name(&self) -> &str {
        "m0008_practitioner_quiet_hours"
    }
}

#[derive(DeriveIden)]
enum QuietHoursColumns {
    QuietHours,
    QuietHoursAllChannels,
}

#[async_trait::async_trait]
impl MigrationTrait for PractitionerQuietHours {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let columns = vec![
            string_len_null(QuietHoursColumns::QuietHours, 16),
            boolean(QuietHoursColumns::QuietHoursAllChannels)
                .default(false)
                .to_owned(),
        ];
        slotcast_kit::db::add_columns(m, Practitioners::Table.into_iden(), columns).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let columns = vec![
            QuietHoursColumns::QuietHours.into_iden(),
            QuietHoursColumns::QuietHoursAllChannels.into_iden(),
        ];
        slotcast_kit::db::drop_columns(m, Practitioners::Table.into_iden(), columns).await
    }
}
