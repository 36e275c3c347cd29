//! Database connections: Postgres in production, SQLite as the embedded default, one code path.

use std::time::Duration;

use sea_orm::{
    AccessMode, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, IsolationLevel, TransactionTrait,
};
use sea_orm_migration::{
    MigratorTrait, SchemaManager,
    prelude::{ColumnDef, DynIden, Table},
};

/// The Postgres advisory lock that lets one process at a time migrate a database.
const MIGRATION_LOCK: i64 = 0x5107_ca57_d8a7;

/// Adds `columns` to `table`, one statement each: SQLite adds only one column at a time.
pub async fn add_columns(
    m: &SchemaManager<'_>,
    table: DynIden,
    columns: Vec<ColumnDef>,
) -> Result<(), DbErr> {
    for mut column in columns {
        m.alter_table(
            Table::alter()
                .table(table.clone())
                .add_column(&mut column)
                .to_owned(),
        )
        .await?;
    }
    Ok(())
}

/// Drops `columns` from `table`, one statement each, as [`add_columns`] added them.
pub async fn drop_columns(
    m: &SchemaManager<'_>,
    table: DynIden,
    columns: Vec<DynIden>,
) -> Result<(), DbErr> {
    for column in columns {
        m.alter_table(
            Table::alter()
                .table(table.clone())
                .drop_column(column)
                .to_owned(),
        )
        .await?;
    }
    Ok(())
}

/// A read-only transaction whose reads all see one snapshot, for a response assembled from
/// several queries: without it, a write committed between two of them shows in one and not in
/// the other (a slot `booked` in the history and `open` in the status). SQLite's read
/// transaction is a snapshot already and takes no isolation level.
pub async fn snapshot(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    db.begin_with_config(
        postgres.then_some(IsolationLevel::RepeatableRead),
        postgres.then_some(AccessMode::ReadOnly),
    )
    .await
}

/// Takes the transaction-scoped advisory lock `key` on `conn` (a transaction) if it is free, and
/// says whether it did: one replica at a time does the work the lock guards, until the
/// transaction ends. SQLite is single-node: always `true`.
pub async fn try_xact_lock<C: ConnectionTrait>(conn: &C, key: i64) -> Result<bool, DbErr> {
    if conn.get_database_backend() != DbBackend::Postgres {
        return Ok(true);
    }
    let lock = sea_orm::Statement::from_string(
        DbBackend::Postgres,
        format!("SELECT pg_try_advisory_xact_lock({key}) AS locked"),
    );
    Ok(match conn.query_one_raw(lock).await? {
        Some(row) => row.try_get::<bool>("", "locked")?,
        None => false,
    })
}

/// Connects to `url` and brings the schema up to date with `M`'s migrations.
///
/// A SQLite file's folder is created if missing. SQLite gets a single connection (one writer at
/// a time, so no `SQLITE_BUSY` between our own transactions) and WAL journaling.
///
/// On Postgres, replicas starting together on a fresh database take turns: each migrates while
/// holding a session advisory lock on a connection of its own (released when it is done, or by
/// Postgres when the process dies), so the second finds the schema up to date instead of
/// failing on tables the first is creating.
pub async fn connect_and_migrate<M: MigratorTrait>(
    url: &str,
    max_connections: u32,
) -> anyhow::Result<DatabaseConnection> {
    let db = connect(url, max_connections).await?;
    let lock = if db.get_database_backend() == DbBackend::Postgres {
        let lock = connect(url, 1).await?;
        lock.execute_unprepared(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
            .await
            .map_err(|e| anyhow::anyhow!("cannot take the migration lock: {e}"))?;
        Some(lock)
    } else {
        None
    };
    let migrated = M::up(&db, None)
        .await
        .map_err(|e| anyhow::anyhow!("migrations failed: {e}"));
    if let Some(lock) = lock {
        // Closing the connection ends the session, which releases the lock.
        let _ = lock
            .execute_unprepared(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
            .await;
        let _ = lock.close().await;
    }
    migrated?;
    Ok(db)
}

/// Connects without migrating.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<DatabaseConnection> {
    let sqlite = url.starts_with("sqlite:");
    if sqlite && let Some(dir) = sqlite_dir(url) {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(if sqlite { 1 } else { max_connections })
        .min_connections(if sqlite { 1 } else { 0 })
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    let db = Database::connect(opts)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to the database: {e}"))?;
    if db.get_database_backend() == DbBackend::Sqlite {
        db.execute_unprepared("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;")
            .await?;
    }
    Ok(db)
}

fn sqlite_dir(url: &str) -> Option<&std::path::Path> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    std::path::Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
}

/// For a sea-orm entity module without relations: declares the empty `Relation` enum and the
/// default `ActiveModelBehavior`. Call it after `use sea_orm::entity::prelude::*`.
#[macro_export]
macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}
        impl ActiveModelBehavior for ActiveModel {}
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sqlite_folder_is_found_in_the_url() {
        assert_eq!(
            sqlite_dir("sqlite://var/x.sqlite?mode=rwc"),
            Some(std::path::Path::new("var"))
        );
        assert_eq!(sqlite_dir("sqlite::memory:"), None);
        assert_eq!(sqlite_dir("sqlite://x.sqlite"), None);
    }
}
