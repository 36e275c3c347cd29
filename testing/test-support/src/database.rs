//! A fresh database per test: a new Postgres database or a temporary SQLite file.

use std::time::Duration;

use anyhow::{Context as _, bail};
use sea_orm::{ConnectOptions, ConnectionTrait as _, Database, DatabaseConnection};
use tempfile::TempDir;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const START_HINT: &str = "If Postgres is not running, start it with \
     `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
     or point TEST_POSTGRES_URL at a server where the user may create databases.";

/// A database that belongs to one test.
///
/// For Postgres, dropping it drops the database (`WITH (FORCE)`, so open connections do not
/// keep it alive); for SQLite, dropping it removes the file.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Postgres { admin_url: String, name: String },
    Sqlite { _dir: TempDir },
}

impl TestDatabase {
    /// Creates `slotcast_test_<uuid>` on the server at `TEST_POSTGRES_URL` (default
    /// `postgres://postgres@127.0.0.1:5432/postgres`).
    pub async fn postgres() -> anyhow::Result<Self> {
        let admin_url =
            std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        Self::postgres_at(&admin_url).await
    }

    /// Creates a fresh database on the server that `admin_url` connects to.
    pub async fn postgres_at(admin_url: &str) -> anyhow::Result<Self> {
        let name = format!("slotcast_test_{}", uuid::Uuid::new_v4().simple());
        let url = with_database(admin_url, &name)?;
        let admin = connect_admin(admin_url).await?;
        let created = admin
            .execute_unprepared(&format!(r#"CREATE DATABASE "{name}""#))
            .await
            .with_context(|| format!("cannot create database {name}"));
        // Closing only returns the pool's connection; a failure there changes nothing.
        let _ = admin.close().await;
        created?;
        Ok(Self {
            url,
            kind: Kind::Postgres {
                admin_url: admin_url.to_owned(),
                name,
            },
        })
    }

    /// A SQLite database in a new temporary directory, created on first connect
    /// (`sqlite://<path>?mode=rwc`).
    pub fn sqlite() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("slotcast-sqlite-")
            .tempdir()
            .context("cannot create a temporary directory for SQLite")?;
        let path = dir.path().join("test.sqlite");
        let Some(path) = path.to_str() else {
            bail!("the temporary path {} is not UTF-8", path.display());
        };
        Ok(Self {
            url: format!("sqlite://{path}?mode=rwc"),
            kind: Kind::Sqlite { _dir: dir },
        })
    }

    /// The URL of this database, for the code under test.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The Postgres database name, or `None` for SQLite.
    pub fn postgres_name(&self) -> Option<&str> {
        match &self.kind {
            Kind::Postgres { name, .. } => Some(name),
            Kind::Sqlite { .. } => None,
        }
    }

    /// Connects to this database with sea-orm (SQL logging off).
    pub async fn connect(&self) -> anyhow::Result<DatabaseConnection> {
        let mut options = ConnectOptions::new(self.url.clone());
        options
            .connect_timeout(Duration::from_secs(5))
            .sqlx_logging(false);
        Database::connect(options)
            .await
            .with_context(|| format!("cannot connect to the test database {}", self.url))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Kind::Postgres { admin_url, name } = &self.kind else {
            return;
        };
        let admin_url = admin_url.clone();
        let name = name.clone();
        // Drop cannot await, and blocking on the test's own runtime could deadlock it, so the
        // database is dropped on a thread with its own runtime, and we wait for it.
        let dropper = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => return Err(anyhow::Error::new(e).context("cannot build a runtime")),
            };
            runtime.block_on(drop_database(&admin_url, &name))
        });
        match dropper.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "test database left behind"),
            Err(_) => tracing::warn!("dropping the test database panicked"),
        }
    }
}

async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let admin = connect_admin(admin_url).await?;
    let dropped = admin
        .execute_unprepared(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
        .await
        .with_context(|| format!("cannot drop database {name}"));
    let _ = admin.close().await;
    dropped.map(|_| ())
}

async fn connect_admin(admin_url: &str) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(admin_url.to_owned());
    options
        .max_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    Database::connect(options)
        .await
        .with_context(|| format!("cannot connect to Postgres at {admin_url}. {START_HINT}"))
}

/// `url` with its database (the path) replaced by `name`, keeping user, host and parameters.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        bail!("{url:?} is not a database URL like {DEFAULT_POSTGRES_URL}");
    };
    let (scheme, rest) = url.split_at(scheme_end);
    let (before_query, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
    let authority = before_query
        .split_once('/')
        .map_or(before_query, |(authority, _)| authority);
    Ok(format!("{scheme}{authority}/{name}{query}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_replaces_the_path_of_the_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1").unwrap(),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@db:5432/postgres?sslmode=disable", "t1").unwrap(),
            "postgres://u:p@db:5432/t1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@db", "t1").unwrap(),
            "postgres://u@db/t1"
        );
        assert!(with_database("not a url", "t1").is_err());
    }
}
