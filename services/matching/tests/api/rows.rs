//! How many Postgres rows matching writes per notification (inserted, updated or deleted), by
//! table, as `pg_stat_user_tables` counts them: the figure BENCHMARKS.md tracks. Run with
//! `cargo test -p matching --test api rows -- --ignored --nocapture`.

use std::{collections::BTreeMap, time::Duration};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use slotcast_events::WaitKind;

use crate::helpers::spawn_matching;

const PATIENTS: usize = 200;

/// Rows written so far, by table, once two readings a second apart agree (a backend reports
/// its statistics within about a second).
async fn settled(db: &DatabaseConnection) -> BTreeMap<String, i64> {
    let read = || async {
        db.query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT relname::text AS t, (n_tup_ins + n_tup_upd + n_tup_del)::bigint AS w \
             FROM pg_stat_user_tables",
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.try_get("", "t").unwrap(), r.try_get("", "w").unwrap()))
        .collect::<BTreeMap<String, i64>>()
    };
    let mut last = read().await;
    loop {
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let now = read().await;
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test]
#[ignore = "a measurement: run on its own"]
async fn rows_written_per_notification() {
    let m = spawn_matching().await;
    let dr = m.practitioner().await;
    for _ in 0..PATIENTS {
        let p = m.patient().await;
        m.waits(p, dr, WaitKind::New, None).await;
    }
    let db = m.database().connect().await.unwrap();
    // The projection settled: every patient and entry is in.
    let before = loop {
        let before = settled(&db).await;
        if before.get("waitlist_entries").copied().unwrap_or(0) >= PATIENTS as i64 {
            break before;
        }
    };
    m.batch(dr, &[10]).await;
    assert_eq!(
        m.notifications(PATIENTS, Duration::from_millis(500))
            .await
            .len(),
        PATIENTS
    );
    while slotcast_bus::outbox::unpublished(&db).await.unwrap() > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = settled(&db).await;
    let mut total = 0;
    for (table, rows) in &after {
        let written = rows - before.get(table).copied().unwrap_or(0);
        if written > 0 {
            total += written;
            println!(
                "{table:>16}: {:.2} rows per notification",
                written as f64 / PATIENTS as f64
            );
        }
    }
    println!(
        "{:>16}: {:.2} rows per notification",
        "all",
        total as f64 / PATIENTS as f64
    );
}
