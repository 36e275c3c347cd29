//! The delivery log: one row per notification in `email_deliveries`, and its state changes.
//!
//! ```text
//!            claim (attempts+1, in_flight)          record_sent (+ EmailSent in the outbox)
//!  (none) ─────────────────────────────► sending ──────────────────────────────────► sent
//!                                          │  ▲
//!               record_transient           │  │ claim again (redelivery)
//!               (in_flight = false) ◄──────┘  │
//!                                          │
//!                                          └── record_failed (+ EmailFailed) ─────────► failed
//! ```
//!
//! `in_flight` is true from the moment an attempt is claimed until its outcome is written. A
//! claim that finds it still true after the lease ran out is a resend whose previous attempt
//! ended without a word (a crash, or the database was down after the send): that message may
//! have gone out already. While the lease runs, another worker is sending, and the claim waits.

use std::{collections::HashSet, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    QueryFilter, QueryTrait, Set, TransactionTrait,
    sea_query::{Expr, ExprTrait, OnConflict},
};
use slotcast_events::{CloudEvent, EmailFailed, EmailSent, ID_NAMESPACE};
use uuid::Uuid;

/// The `source` of the events this service publishes.
pub const SOURCE: &str = slotcast_events::sources::EMAIL_NOTIFIER;

pub use crate::entities as entity;
use crate::entities::{ActiveModel, Column, Entity};
pub use crate::entities::{Model as Delivery, Status};

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Already sent or failed: nothing more to do.
    Finished(Status),
    /// Another attempt is in flight and its lease has this long to run.
    Busy(Duration),
    /// This worker may send now.
    Attempt {
        /// The number of this attempt (1 for the first).
        attempt: i32,
        /// The previous attempt ended without its outcome written: it may have been delivered.
        after_unknown: bool,
        /// When the first attempt was claimed: retries end after the retry horizon.
        first_tried: DateTime<Utc>,
    },
}

/// The notification whose delivery is being recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub notification_id: Uuid,
    pub patient_id: Uuid,
    pub message_id: String,
    /// The trace context of the message that asked for the email (W3C headers; empty: the
    /// current span's), which its `EmailSent` event continues.
    pub trace: std::collections::HashMap<String, String>,
}

/// Claims an attempt for each of `keys`, as [`claim`] does, in one statement for the
/// notifications seen for the first time (the usual case: one multi-row insert, one commit) and
/// one `claim_existing` each for the others. Answers each key in order; only a failure of the shared
/// insert fails them all.
pub async fn claim_many(
    db: &DatabaseConnection,
    keys: &[Key],
    lease: Duration,
) -> Result<Vec<Result<Claim, DbErr>>, DbErr> {
    let now = Utc::now();
    let mut firsts: Vec<&Key> = keys.iter().collect();
    firsts.sort_by_key(|k| k.notification_id);
    firsts.dedup_by_key(|k| k.notification_id);
    let rows: Vec<ActiveModel> = firsts.iter().map(|key| first_attempt(key, now)).collect();
    let chunks: Vec<&[ActiveModel]> = slotcast_bus::rows::chunks(&rows, |_| 64).collect();
    let inserted = if chunks.len() > 1 {
        // All or nothing: rows committed by a first statement and answered with the error of a
        // second would stay in flight, unsent, until their lease ran out.
        let txn = db.begin().await?;
        let inserted = insert_first_attempts(&txn, &chunks).await?;
        txn.commit().await?;
        inserted
    } else {
        insert_first_attempts(db, &chunks).await?
    };
    let mut claimed: HashSet<Uuid> = HashSet::with_capacity(inserted.len());
    let mut claims = Vec::with_capacity(keys.len());
    for key in keys {
        if inserted.contains(&key.notification_id) && claimed.insert(key.notification_id) {
            claims.push(Ok(Claim::Attempt {
                attempt: 1,
                after_unknown: false,
                first_tried: now,
            }));
        } else {
            // Seen before (a redelivery, a retry, or twice in this group): the row is there.
            claims.push(claim_existing(db, key, lease).await);
        }
    }
    Ok(claims)
}

/// Inserts the first-attempt rows of `chunks` (a statement each), skipping notifications that
/// have a row already; returns the notifications inserted.
async fn insert_first_attempts<C: ConnectionTrait>(
    conn: &C,
    chunks: &[&[ActiveModel]],
) -> Result<HashSet<Uuid>, DbErr> {
    let mut inserted = HashSet::new();
    for chunk in chunks {
        let mut insert = Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::column(Column::NotificationId)
                    .do_nothing()
                    .to_owned(),
            )
            .into_query();
        insert.returning_col(Column::NotificationId);
        for row in conn.query_all(&insert).await? {
            inserted.insert(row.try_get("", "notification_id")?);
        }
    }
    Ok(inserted)
}

/// The row of a delivery's first attempt: `sending`, attempt 1, in flight.
fn first_attempt(key: &Key, now: DateTime<Utc>) -> ActiveModel {
    ActiveModel {
        notification_id: Set(key.notification_id),
        patient_id: Set(key.patient_id),
        status: Set(Status::Sending),
        attempts: Set(1),
        in_flight: Set(true),
        last_error: Set(None),
        message_id: Set(key.message_id.clone()),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// Claims an attempt for `key`, before talking to SMTP: creates the row (`sending`, attempt 1)
/// or counts one more attempt on a `sending` row whose previous attempt is over or whose
/// `lease` ran out.
pub async fn claim(db: &DatabaseConnection, key: &Key, lease: Duration) -> Result<Claim, DbErr> {
    let now = Utc::now();
    let inserted = Entity::insert(first_attempt(key, now))
        .on_conflict_do_nothing_on([Column::NotificationId])
        .exec_without_returning(db)
        .await?;
    if matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0) {
        return Ok(Claim::Attempt {
            attempt: 1,
            after_unknown: false,
            first_tried: now,
        });
    }
    claim_existing(db, key, lease).await
}

/// [`claim`] for a delivery whose row exists: counts one more attempt on a `sending` row whose
/// previous attempt is over or whose `lease` ran out.
async fn claim_existing(
    db: &DatabaseConnection,
    key: &Key,
    lease: Duration,
) -> Result<Claim, DbErr> {
    // Someone may change the row between our read and our update; the update only applies to
    // the row as read (same attempt count), and a lost race reads again.
    for _ in 0..3 {
        let Some(current) = Entity::find_by_id(key.notification_id).one(db).await? else {
            return Err(DbErr::RecordNotFound(format!(
                "delivery {} vanished",
                key.notification_id
            )));
        };
        if current.status != Status::Sending {
            return Ok(Claim::Finished(current.status));
        }
        if current.in_flight {
            let held = slotcast_kit::time::lease_left(current.updated_at, lease, Utc::now());
            if !held.is_zero() {
                return Ok(Claim::Busy(held));
            }
        }
        let updated = Entity::update_many()
            .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
            .col_expr(Column::InFlight, Expr::value(true))
            .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(Column::NotificationId.eq(key.notification_id))
            .filter(Column::Status.eq(Status::Sending))
            .filter(Column::Attempts.eq(current.attempts))
            .exec(db)
            .await?;
        if updated.rows_affected == 1 {
            return Ok(Claim::Attempt {
                attempt: current.attempts + 1,
                after_unknown: current.in_flight,
                first_tried: current.created_at,
            });
        }
    }
    Ok(Claim::Busy(Duration::from_secs(1)))
}

/// Renews the lease of attempt `attempt` of a delivery still being sent, just before its send:
/// false if the attempt is no longer the one in flight (another took it over after its lease ran
/// out, or the delivery is finished), and this one must not send.
pub async fn renew(
    db: &DatabaseConnection,
    notification_id: Uuid,
    attempt: i32,
) -> Result<bool, DbErr> {
    let updated = Entity::update_many()
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(Column::NotificationId.eq(notification_id))
        .filter(Column::Status.eq(Status::Sending))
        .filter(Column::Attempts.eq(attempt))
        .filter(Column::InFlight.eq(true))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// The `EmailSent` event of a delivery; its id is derived from the notification.
fn sent_event(key: &Key) -> CloudEvent<EmailSent> {
    CloudEvent::with_id(
        Uuid::new_v5(
            &ID_NAMESPACE,
            format!("email.sent:{}", key.notification_id).as_bytes(),
        ),
        SOURCE,
        EmailSent {
            notification_id: key.notification_id,
            patient_id: key.patient_id,
            message_id: key.message_id.clone(),
        },
    )
}

/// Marks the delivery `sent` and puts `EmailSent` into the outbox, in one transaction.
pub async fn record_sent(db: &DatabaseConnection, key: &Key) -> Result<(), DbErr> {
    record_sent_many(db, std::slice::from_ref(key)).await
}

/// Marks each delivery of `keys` `sent` and puts their `EmailSent` events into the outbox: for
/// each delivery, both or neither. A delivery that is no longer `sending` (someone finished it) is left alone,
/// without an event.
///
/// On Postgres it is one statement (a data-modifying `WITH`: the update's `RETURNING` chooses
/// the events to insert), so one round trip and one commit instead of four: the sends waiting for
/// it hold their permits for less. On SQLite, a transaction of two statements.
pub async fn record_sent_many(db: &DatabaseConnection, keys: &[Key]) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        return record_sent_in_one_statement(db, keys).await;
    }
    let mut ids: Vec<Uuid> = keys.iter().map(|k| k.notification_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let txn = db.begin().await?;
    let mut finished: HashSet<Uuid> = HashSet::with_capacity(ids.len());
    for chunk in slotcast_bus::rows::chunks(&ids, |_| 0) {
        let rows = Entity::update_many()
            .col_expr(Column::Status, Expr::value(Status::Sent))
            .col_expr(Column::InFlight, Expr::value(false))
            .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(Column::NotificationId.is_in(chunk.iter().copied()))
            .filter(Column::Status.eq(Status::Sending))
            .exec_with_returning(&txn)
            .await?;
        finished.extend(rows.into_iter().map(|r| r.notification_id));
    }
    let sent: Vec<(&Key, CloudEvent<EmailSent>)> = keys
        .iter()
        .filter(|k| finished.remove(&k.notification_id))
        .map(|k| (k, sent_event(k)))
        .collect();
    let traced: Vec<_> = sent.iter().map(|(k, e)| (e, &k.trace)).collect();
    slotcast_bus::outbox::enqueue_traced(&txn, &traced).await?;
    txn.commit().await
}

/// [`record_sent_many`] on Postgres: per chunk of keys, one autocommitted statement, the update
/// of the deliveries with their events ([`slotcast_bus::outbox::with_events`]).
async fn record_sent_in_one_statement(db: &DatabaseConnection, keys: &[Key]) -> Result<(), DbErr> {
    let mut seen: HashSet<Uuid> = HashSet::with_capacity(keys.len());
    let keys: Vec<&Key> = keys
        .iter()
        .filter(|k| seen.insert(k.notification_id))
        .collect();
    let events: Vec<CloudEvent<EmailSent>> = keys.iter().map(|k| sent_event(k)).collect();
    let traced: Vec<_> = events
        .iter()
        .zip(&keys)
        .map(|(e, k)| (e, &k.trace))
        .collect();
    let rows: Vec<(Uuid, slotcast_bus::outbox::EncodedRow)> = keys
        .iter()
        .map(|k| k.notification_id)
        .zip(slotcast_bus::outbox::encode_traced(&traced)?)
        .collect();
    let now = Utc::now();
    for chunk in slotcast_bus::rows::chunks(&rows, |(_, row)| row.size()) {
        let mut values: Vec<sea_orm::Value> = vec![Status::Sent.to_value().into(), now.into()];
        let mut ids = Vec::with_capacity(chunk.len());
        for (id, _) in chunk {
            values.push((*id).into());
            ids.push(format!("${}", values.len()));
        }
        let change = format!(
            "UPDATE email_deliveries SET status = $1, in_flight = FALSE, updated_at = $2 \
             WHERE status = 'sending' AND notification_id IN ({}) \
             RETURNING notification_id AS key",
            ids.join(", ")
        );
        db.execute_raw(slotcast_bus::outbox::with_events(&change, values, chunk))
            .await?;
    }
    Ok(())
}

/// Marks the delivery `failed` with `reason` and puts `EmailFailed` into the outbox, in one
/// transaction.
pub async fn record_failed(
    db: &DatabaseConnection,
    key: &Key,
    reason: &str,
    permanent: bool,
) -> Result<(), DbErr> {
    let event = CloudEvent::with_id(
        Uuid::new_v5(
            &ID_NAMESPACE,
            format!("email.failed:{}", key.notification_id).as_bytes(),
        ),
        SOURCE,
        EmailFailed {
            notification_id: key.notification_id,
            patient_id: key.patient_id,
            reason: reason.to_owned(),
            permanent,
        },
    );
    let txn = db.begin().await?;
    if finish(&txn, key.notification_id, Status::Failed, Some(reason)).await? {
        slotcast_bus::outbox::enqueue(&txn, &event).await?;
    }
    txn.commit().await
}

/// Ends the attempt in flight with a transient `reason`; the row stays `sending`.
pub async fn record_transient(
    db: &DatabaseConnection,
    notification_id: Uuid,
    reason: &str,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::InFlight, Expr::value(false))
        .col_expr(Column::LastError, Expr::value(reason))
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(Column::NotificationId.eq(notification_id))
        .filter(Column::Status.eq(Status::Sending))
        .exec(db)
        .await?;
    Ok(())
}

/// Moves a `sending` row to `status`; false if it was not `sending` (someone finished it).
async fn finish<C: ConnectionTrait>(
    conn: &C,
    notification_id: Uuid,
    status: Status,
    last_error: Option<&str>,
) -> Result<bool, DbErr> {
    let mut update = Entity::update_many()
        .col_expr(Column::Status, Expr::value(status))
        .col_expr(Column::InFlight, Expr::value(false))
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()));
    if let Some(reason) = last_error {
        update = update.col_expr(Column::LastError, Expr::value(reason));
    }
    let done = update
        .filter(Column::NotificationId.eq(notification_id))
        .filter(Column::Status.eq(Status::Sending))
        .exec(conn)
        .await?;
    Ok(done.rows_affected == 1)
}

/// The delivery row of a notification, if any.
pub async fn find(
    db: &DatabaseConnection,
    notification_id: Uuid,
) -> Result<Option<Delivery>, DbErr> {
    Entity::find_by_id(notification_id).one(db).await
}
