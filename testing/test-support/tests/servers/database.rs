use anyhow::Context as _;
use sea_orm::{ConnectionTrait as _, Database, DbBackend, Statement};
use slotcast_test_support::{TestDatabase, free_port, init_tracing};

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| ADMIN_URL.to_owned())
}

async fn database_exists(name: &str) -> anyhow::Result<bool> {
    let admin = Database::connect(admin_url()).await?;
    let row = admin
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM pg_database WHERE datname = $1",
            [name.into()],
        ))
        .await?
        .context("no row")?;
    let count: i64 = row.try_get("", "n")?;
    admin.close().await?;
    Ok(count == 1)
}

#[tokio::test]
async fn a_postgres_test_database_is_created_fresh_and_dropped_with_force() -> anyhow::Result<()> {
    init_tracing();
    let database = TestDatabase::postgres().await?;
    let name = database.postgres_name().context("no name")?.to_owned();
    assert!(name.starts_with("slotcast_test_"), "{name}");
    assert!(
        database.url().ends_with(&format!("/{name}")),
        "{}",
        database.url()
    );
    assert!(database_exists(&name).await?);

    let db = database.connect().await?;
    db.execute_unprepared("CREATE TABLE slot (id int PRIMARY KEY)")
        .await?;
    db.execute_unprepared("INSERT INTO slot VALUES (1)").await?;

    // The open connection must not keep the database alive.
    drop(database);
    assert!(!database_exists(&name).await?, "{name} is left behind");
    assert!(db.execute_unprepared("SELECT 1").await.is_err());
    Ok(())
}

#[tokio::test]
async fn two_postgres_test_databases_are_separate() -> anyhow::Result<()> {
    let (a, b) = tokio::try_join!(TestDatabase::postgres(), TestDatabase::postgres())?;
    assert_ne!(a.url(), b.url());
    Ok(())
}

#[tokio::test]
async fn an_unreachable_postgres_says_how_to_start_it() -> anyhow::Result<()> {
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", free_port());
    let error = TestDatabase::postgres_at(&url)
        .await
        .err()
        .context("connected to a port where nothing listens")?;
    let message = format!("{error:#}");
    assert!(
        message
            .contains("pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"),
        "{message}"
    );
    Ok(())
}

#[tokio::test]
async fn a_sqlite_test_database_is_a_temporary_file() -> anyhow::Result<()> {
    let database = TestDatabase::sqlite()?;
    let url = database.url();
    assert!(
        url.starts_with("sqlite://") && url.ends_with("?mode=rwc"),
        "{url}"
    );
    assert_eq!(database.postgres_name(), None);
    let path = std::path::PathBuf::from(&url["sqlite://".len()..url.len() - "?mode=rwc".len()]);

    let db = database.connect().await?;
    db.execute_unprepared("CREATE TABLE slot (id integer PRIMARY KEY)")
        .await?;
    db.execute_unprepared("INSERT INTO slot VALUES (1)").await?;
    db.close().await?;
    assert!(path.exists());

    drop(database);
    assert!(!path.exists(), "{} is left behind", path.display());
    Ok(())
}
