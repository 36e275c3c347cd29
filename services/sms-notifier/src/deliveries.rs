//! The delivery log: one row per notification in `sms_deliveries`, and its state changes.
//!
//! ```text
//!          claim (attempts+1, in_flight)        record_sent (+ SmsSent)        report: delivered
//!  (none) ───────────────────────────► sending ─────────────────────► sent ──────────────────► delivered
//!                                        │  ▲                            │          (+ SmsDelivered)
//!             record_transient           │  │ claim again                │ report: undelivered
//!             (in_flight = false) ◄──────┘  │ (redelivery)               ▼          (+ SmsFailed)
//!                                        └── record_failed (+ SmsFailed) ──────────────────► failed
//! ```
//!
//! Every change reads the row and writes it back only if its `revision` is still the one read,
//! so two replicas, or a report racing the send's own record, never both apply a change. A
//! report may arrive before the send is recorded (the gateway answers the report and the send
//! at nearly the same moment): it applies to the `sending` row, and the send's record then adds
//! only what it knows.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    Set, TransactionTrait,
};
use slotcast_events::{CloudEvent, Event, ID_NAMESPACE, SmsDelivered, SmsFailed, SmsSent};
use uuid::Uuid;

use crate::entities::delivery::{ActiveModel, Column, Entity};
pub use crate::entities::delivery::{Model as Delivery, Status};
use crate::text::Offered;

/// The `source` of the events this service publishes.
pub const SOURCE: &str = slotcast_events::sources::SMS_NOTIFIER;

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Already sent, delivered or failed: nothing more to do.
    Finished(Status),
    /// Another attempt is in flight and its lease has this long to run.
    Busy(Duration),
    /// This worker may send now.
    Attempt {
        /// The number of this attempt (1 for the first).
        attempt: i32,
        /// The previous attempt ended without its outcome written: it may have gone out.
        after_unknown: bool,
        /// When the first attempt was claimed: retries end after the retry horizon.
        first_tried: DateTime<Utc>,
        /// What the gateway's delivery reports for this text carry.
        report_key: String,
        /// The text's short link id.
        short_id: String,
    },
}

/// The notification whose delivery is being recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub notification_id: Uuid,
    pub patient_id: Uuid,
    /// The trace context of the message that asked for the text (W3C headers), which the
    /// events of its delivery continue.
    pub trace: HashMap<String, String>,
}

/// What the gateway reported of a text it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// On the patient's phone.
    Delivered,
    /// The network gave up on it.
    Undelivered,
}

/// What applying a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    /// The delivery changed, and its event is in the outbox.
    Applied,
    /// The delivery had this outcome already (a report repeated, or a later one first).
    Unchanged,
}

/// 128 bits from the operating system's generator.
fn random_128() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    // Without the system's generator nothing secret can be made: no process could go on.
    getrandom::fill(&mut bytes).expect("the operating system's random generator");
    bytes
}

/// A report key: 128 random bits, as hex.
fn new_report_key() -> String {
    random_128().iter().map(|b| format!("{b:02x}")).collect()
}

/// A short link id: 128 random bits, as 22 characters of base64url.
fn new_short_id() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_128())
}

/// What a text is, as its delivery row keeps it.
#[derive(Debug, Clone)]
pub struct NewText<'a> {
    /// E.164.
    pub phone: &'a str,
    pub offered: &'a Offered,
}

/// Claims an attempt for `key` before talking to the gateway: creates the row (`sending`,
/// attempt 1, with a short link to the offer's page) or counts one more attempt on a `sending`
/// row whose previous attempt is over or whose `lease` ran out.
pub async fn claim(
    db: &DatabaseConnection,
    key: &Key,
    text: &NewText<'_>,
    lease: Duration,
) -> Result<Claim, DbErr> {
    let offered = serde_json::to_string(text.offered).map_err(|e| DbErr::Custom(e.to_string()))?;
    let now = Utc::now();
    let report_key = new_report_key();
    let short_id = new_short_id();
    let inserted = Entity::insert(ActiveModel {
        notification_id: Set(key.notification_id),
        patient_id: Set(key.patient_id),
        status: Set(Status::Sending),
        attempts: Set(1),
        in_flight: Set(true),
        revision: Set(1),
        report_key: Set(report_key.clone()),
        short_id: Set(short_id.clone()),
        link_target: Set(text.offered.page.clone()),
        phone: Set(Some(text.phone.to_owned())),
        offered: Set(Some(offered)),
        sent_at: Set(None),
        gateway_id: Set(None),
        segments: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict_do_nothing_on([Column::NotificationId])
    .exec_without_returning(db)
    .await?;
    if matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0) {
        return Ok(Claim::Attempt {
            attempt: 1,
            after_unknown: false,
            first_tried: now,
            report_key,
            short_id,
        });
    }
    for _ in 0..3 {
        let current = find(db, key.notification_id)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound(format!("delivery {}", key.notification_id)))?;
        if current.status != Status::Sending {
            return Ok(Claim::Finished(current.status));
        }
        if current.in_flight {
            let held = slotcast_kit::time::lease_left(current.updated_at, lease, Utc::now());
            if !held.is_zero() {
                return Ok(Claim::Busy(held));
            }
        }
        let (attempt, after_unknown, first_tried, report_key, short_id) = (
            current.attempts + 1,
            current.in_flight,
            current.created_at,
            current.report_key.clone(),
            current.short_id.clone(),
        );
        let mut row = current.clone().into_active_model();
        row.attempts = Set(attempt);
        row.in_flight = Set(true);
        if write(db, &current, row).await? {
            return Ok(Claim::Attempt {
                attempt,
                after_unknown,
                first_tried,
                report_key,
                short_id,
            });
        }
    }
    Ok(Claim::Busy(Duration::from_secs(1)))
}

/// Writes `row` if the delivery is still at `read`'s revision, with the next revision; false if
/// someone changed it meanwhile.
async fn write<C: sea_orm::ConnectionTrait>(
    conn: &C,
    read: &Delivery,
    mut row: ActiveModel,
) -> Result<bool, DbErr> {
    row.revision = Set(read.revision + 1);
    row.updated_at = Set(Utc::now());
    let done = Entity::update_many()
        .set(row)
        .filter(Column::NotificationId.eq(read.notification_id))
        .filter(Column::Revision.eq(read.revision))
        .exec(conn)
        .await?;
    Ok(done.rows_affected == 1)
}

/// The event `data` of the delivery of `notification_id`, with an id derived from both, so a
/// repeated change publishes nothing twice.
fn event<T: Event>(kind: &str, notification_id: Uuid, data: T) -> CloudEvent<T> {
    let id = Uuid::new_v5(
        &ID_NAMESPACE,
        format!("sms.{kind}:{notification_id}").as_bytes(),
    );
    CloudEvent::with_id(id, SOURCE, data)
}

/// Applies `change` to the delivery of `notification_id` with its event, in one transaction,
/// retrying when someone changed the row meanwhile. `change` answers `None` for a row it leaves
/// alone.
async fn change<T: Event>(
    db: &DatabaseConnection,
    notification_id: Uuid,
    trace: &HashMap<String, String>,
    change: impl Fn(&Delivery) -> Option<(ActiveModel, Option<CloudEvent<T>>)>,
) -> Result<bool, DbErr> {
    for _ in 0..5 {
        let Some(current) = find(db, notification_id).await? else {
            return Ok(false);
        };
        let Some((row, event)) = change(&current) else {
            return Ok(false);
        };
        let txn = db.begin().await?;
        if !write(&txn, &current, row).await? {
            continue;
        }
        if let Some(event) = event {
            slotcast_bus::outbox::enqueue_traced(&txn, &[(&event, trace)]).await?;
        }
        txn.commit().await?;
        return Ok(true);
    }
    Err(DbErr::Custom(format!(
        "delivery {notification_id} kept changing under us"
    )))
}

/// Records that the gateway took the text: `sent` with `SmsSent`. After a delivered report that
/// got there first, only the send's details are added, and `SmsSent` still goes out once.
pub async fn record_sent(
    db: &DatabaseConnection,
    key: &Key,
    gateway_id: Option<String>,
    segments: u32,
) -> Result<(), DbErr> {
    change(db, key.notification_id, &key.trace, |d| {
        if d.sent_at.is_some() || d.status == Status::Failed {
            return None;
        }
        let mut row = d.clone().into_active_model();
        if d.status == Status::Sending {
            row.status = Set(Status::Sent);
        }
        row.in_flight = Set(false);
        row.sent_at = Set(Some(Utc::now()));
        row.gateway_id = Set(gateway_id.clone());
        row.segments = Set(Some(i32::try_from(segments).unwrap_or(i32::MAX)));
        let sent = SmsSent {
            notification_id: key.notification_id,
            patient_id: key.patient_id,
            gateway_id: gateway_id.clone(),
            segments,
        };
        Some((row, Some(event("sent", key.notification_id, sent))))
    })
    .await
    .map(drop)
}

/// Records that the text is given up on with `reason`: `failed` with `SmsFailed`.
pub async fn record_failed(
    db: &DatabaseConnection,
    key: &Key,
    reason: &str,
    permanent: bool,
) -> Result<(), DbErr> {
    change(db, key.notification_id, &key.trace, |d| {
        if d.status != Status::Sending {
            return None;
        }
        let mut row = d.clone().into_active_model();
        row.status = Set(Status::Failed);
        row.in_flight = Set(false);
        row.last_error = Set(Some(reason.to_owned()));
        let failed = SmsFailed {
            notification_id: key.notification_id,
            patient_id: key.patient_id,
            reason: reason.to_owned(),
            permanent,
        };
        Some((row, Some(event("failed", key.notification_id, failed))))
    })
    .await
    .map(drop)
}

/// Ends the attempt in flight with a transient `reason`; the row stays `sending`.
pub async fn record_transient(
    db: &DatabaseConnection,
    notification_id: Uuid,
    reason: &str,
) -> Result<(), DbErr> {
    change::<SmsSent>(db, notification_id, &HashMap::new(), |d| {
        if d.status != Status::Sending {
            return None;
        }
        let mut row = d.clone().into_active_model();
        row.in_flight = Set(false);
        row.last_error = Set(Some(reason.to_owned()));
        Some((row, None))
    })
    .await
    .map(drop)
}

/// Applies the gateway's report on the text of `notification_id`, if `report_key` is the one
/// the text was sent with; `None` when it is not (or there is no such delivery).
pub async fn record_report(
    db: &DatabaseConnection,
    notification_id: Uuid,
    report_key: &str,
    report: Report,
) -> Result<Option<Reported>, DbErr> {
    let Some(current) = find(db, notification_id).await? else {
        return Ok(None);
    };
    if !same_key(&current.report_key, report_key) {
        return Ok(None);
    }
    let patient_id = current.patient_id;
    let trace = HashMap::new();
    let applied = match report {
        Report::Delivered => {
            change(db, notification_id, &trace, |d| {
                if !matches!(d.status, Status::Sending | Status::Sent) {
                    return None;
                }
                let mut row = d.clone().into_active_model();
                row.status = Set(Status::Delivered);
                let delivered = SmsDelivered {
                    notification_id,
                    patient_id,
                };
                Some((row, Some(event("delivered", notification_id, delivered))))
            })
            .await?
        }
        Report::Undelivered => {
            change(db, notification_id, &trace, |d| {
                if !matches!(d.status, Status::Sending | Status::Sent) {
                    return None;
                }
                let reason = "delivery report: undelivered";
                let mut row = d.clone().into_active_model();
                row.status = Set(Status::Failed);
                row.last_error = Set(Some(reason.to_owned()));
                let failed = SmsFailed {
                    notification_id,
                    patient_id,
                    reason: reason.to_owned(),
                    permanent: true,
                };
                Some((row, Some(event("failed", notification_id, failed))))
            })
            .await?
        }
    };
    Ok(Some(if applied {
        Reported::Applied
    } else {
        Reported::Unchanged
    }))
}

/// Whether `given` is the delivery's report key, compared in time that does not depend on
/// where they differ.
pub fn same_key(key: &str, given: &str) -> bool {
    constant_time_eq(key.as_bytes(), given.as_bytes())
}

/// Compares two secrets in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The newest text sent to `phone` (taken by the gateway), with what it offered: what a reply
/// from that number answers.
pub async fn newest_sent_to(
    db: &DatabaseConnection,
    phone: &str,
) -> Result<Option<(Delivery, Offered)>, DbErr> {
    let newest = Entity::find()
        .filter(Column::Phone.eq(phone))
        .filter(Column::SentAt.is_not_null())
        .order_by_desc(Column::SentAt)
        .one(db)
        .await?;
    Ok(newest.and_then(|d| {
        let offered = serde_json::from_str(d.offered.as_deref()?).ok()?;
        Some((d, offered))
    }))
}

/// Where the short link `short_id` leads, if it is one of ours.
pub async fn link_target(db: &DatabaseConnection, short_id: &str) -> Result<Option<String>, DbErr> {
    Ok(Entity::find()
        .filter(Column::ShortId.eq(short_id))
        .one(db)
        .await?
        .map(|d| d.link_target))
}

/// The delivery row of a notification, if any.
pub async fn find(
    db: &DatabaseConnection,
    notification_id: Uuid,
) -> Result<Option<Delivery>, DbErr> {
    Entity::find_by_id(notification_id).one(db).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_are_22_characters_of_base64url() {
        let (a, b) = (new_short_id(), new_short_id());
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn report_keys_are_128_random_bits_and_compared_whole() {
        let (a, b) = (new_report_key(), new_report_key());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(constant_time_eq(a.as_bytes(), a.as_bytes()));
        assert!(!constant_time_eq(a.as_bytes(), b.as_bytes()));
        assert!(!constant_time_eq(a.as_bytes(), &a.as_bytes()[..31]));
    }
}
