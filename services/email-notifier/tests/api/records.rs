//! The delivery log's `sent` records on a real database: the state change and its `EmailSent`
//! event are written together, once, and only for deliveries still being sent.

use std::{collections::HashMap, time::Duration};

use email_notifier::{
    Migrator,
    deliveries::{self, Key, Status},
};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use sea_orm_migration::MigratorTrait;
use slotcast_test_support::TestDatabase;
use uuid::Uuid;

fn key() -> Key {
    let id = Uuid::now_v7();
    Key {
        notification_id: id,
        patient_id: Uuid::now_v7(),
        message_id: format!("<{id}@slotcast>"),
        trace: HashMap::from([(
            "traceparent".to_owned(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
        )]),
    }
}

async fn outbox_rows(db: &DatabaseConnection) -> Vec<(String, String, String)> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT subject, payload, trace FROM outbox ORDER BY seq",
    ))
    .await
    .unwrap()
    .into_iter()
    .map(|r| {
        (
            r.try_get("", "subject").unwrap(),
            r.try_get("", "payload").unwrap(),
            r.try_get("", "trace").unwrap(),
        )
    })
    .collect()
}

async fn status_of(db: &DatabaseConnection, id: Uuid) -> (Status, bool) {
    let row = deliveries::find(db, id)
        .await
        .unwrap()
        .expect("a delivery row");
    (row.status, row.in_flight)
}

async fn sent_records_are_written_once_with_their_events(db: TestDatabase) {
    let db = db.connect().await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    let lease = Duration::from_secs(30);
    let (a, b, gone) = (key(), key(), key());
    for k in [&a, &b, &gone] {
        deliveries::claim(&db, k, lease).await.unwrap();
    }
    deliveries::record_failed(&db, &gone, "550 no such user", true)
        .await
        .unwrap();
    let failed_events = outbox_rows(&db).await.len();

    // `a` twice in the group, and `gone`, which failed meanwhile.
    let group = [a.clone(), gone.clone(), b.clone(), a.clone()];
    deliveries::record_sent_many(&db, &group).await.unwrap();
    let rows = outbox_rows(&db).await;
    let sent: Vec<&(String, String, String)> = rows[failed_events..].iter().collect();
    assert_eq!(
        sent.len(),
        2,
        "one EmailSent for each of a and b: {sent:#?}"
    );
    for k in [&a, &b] {
        let id = k.notification_id.to_string();
        let mine: Vec<_> = sent.iter().filter(|(_, p, _)| p.contains(&id)).collect();
        assert_eq!(mine.len(), 1, "{id}: {sent:#?}");
        let (subject, _, trace) = mine[0];
        assert_eq!(subject, slotcast_events::subjects::EMAIL_SENT);
        assert!(
            trace.contains("0af7651916cd43dd8448eb211c80319c"),
            "{trace}"
        );
    }
    assert_eq!(
        status_of(&db, a.notification_id).await,
        (Status::Sent, false)
    );
    assert_eq!(
        status_of(&db, b.notification_id).await,
        (Status::Sent, false)
    );
    assert_eq!(status_of(&db, gone.notification_id).await.0, Status::Failed);

    // Recorded again (a retry after an error whose commit did go through): nothing changes.
    deliveries::record_sent_many(&db, &group).await.unwrap();
    assert_eq!(outbox_rows(&db).await.len(), rows.len());
}

#[tokio::test]
async fn sent_records_on_postgres() {
    sent_records_are_written_once_with_their_events(TestDatabase::postgres().await.unwrap()).await;
}

#[tokio::test]
async fn sent_records_on_sqlite() {
    sent_records_are_written_once_with_their_events(TestDatabase::sqlite().unwrap()).await;
}

/// A claim renewed before its send: only the attempt in flight may renew it, so an attempt that
/// another took over after its lease ran out (or that was finished) does not send.
async fn only_the_attempt_in_flight_renews_its_claim(db: TestDatabase) {
    let db = db.connect().await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    let k = key();
    let id = k.notification_id;
    deliveries::claim(&db, &k, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        deliveries::renew(&db, id, 1).await.unwrap(),
        "attempt 1 is in flight"
    );
    // Its lease runs out (a lease of nothing) and a copy claims attempt 2.
    let taken = deliveries::claim(&db, &k, Duration::ZERO).await.unwrap();
    assert!(
        matches!(
            taken,
            deliveries::Claim::Attempt {
                attempt: 2,
                after_unknown: true,
                ..
            }
        ),
        "{taken:?}"
    );
    assert!(
        !deliveries::renew(&db, id, 1).await.unwrap(),
        "attempt 1 was taken over"
    );
    assert!(deliveries::renew(&db, id, 2).await.unwrap());
    deliveries::record_sent(&db, &k).await.unwrap();
    assert!(
        !deliveries::renew(&db, id, 2).await.unwrap(),
        "sent: nothing to renew"
    );
    assert_eq!(status_of(&db, id).await, (Status::Sent, false));
}

#[tokio::test]
async fn renewing_a_claim_on_postgres() {
    only_the_attempt_in_flight_renews_its_claim(TestDatabase::postgres().await.unwrap()).await;
}

#[tokio::test]
async fn renewing_a_claim_on_sqlite() {
    only_the_attempt_in_flight_renews_its_claim(TestDatabase::sqlite().unwrap()).await;
}

/// More claims at once than one statement carries: written together (one transaction), each
/// answered as the first attempt, and a second claim of the same finds them in flight.
async fn a_large_claim_is_written_whole(db: TestDatabase) {
    let db = db.connect().await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    let lease = Duration::from_secs(60);
    let keys: Vec<Key> = (0..300).map(|_| key()).collect();
    let claims = deliveries::claim_many(&db, &keys, lease).await.unwrap();
    assert_eq!(claims.len(), keys.len());
    for claim in claims {
        assert!(
            matches!(claim, Ok(deliveries::Claim::Attempt { attempt: 1, .. })),
            "{claim:?}"
        );
    }
    for k in keys.iter().step_by(37) {
        assert_eq!(
            status_of(&db, k.notification_id).await,
            (Status::Sending, true)
        );
    }
    let again = deliveries::claim_many(&db, &keys[..3], lease)
        .await
        .unwrap();
    assert!(
        again
            .iter()
            .all(|c| matches!(c, Ok(deliveries::Claim::Busy(_)))),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_large_claim_on_postgres() {
    a_large_claim_is_written_whole(TestDatabase::postgres().await.unwrap()).await;
}

#[tokio::test]
async fn a_large_claim_on_sqlite() {
    a_large_claim_is_written_whole(TestDatabase::sqlite().unwrap()).await;
}
