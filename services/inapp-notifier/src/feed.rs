//! The read side: a patient's feed as the HTTP API shows it, and marking a notification read.
//!
//! Whether a slot is still available, and whether all of a notification's slots are taken, is
//! derived from `notification_slots.taken_at` when the feed is read; it is stored once.

use std::collections::HashMap;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::entities::{notification, notification_slot};

/// How many notifications a feed page holds unless the client asks otherwise.
pub const DEFAULT_LIMIT: u64 = 50;
/// The most a client may ask for.
pub const MAX_LIMIT: u64 = 200;

/// The practitioner a notification is about, as stored (JSON) and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Practitioner {
    pub id: Uuid,
    pub name: String,
    pub specialty: String,
    /// IANA time zone of the practice, to show the times in.
    pub timezone: String,
    pub fee: Option<Fee>,
}

/// A consultation fee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fee {
    /// In minor units (cents) of `currency`.
    pub amount_cents: i64,
    pub currency: String,
}

impl From<&slotcast_events::PractitionerCard> for Practitioner {
    fn from(card: &slotcast_events::PractitionerCard) -> Self {
        Self {
            id: card.id,
            name: card.name.clone(),
            specialty: card.specialty.clone(),
            timezone: card.timezone.clone(),
            fee: card.consultation_fee_cents.map(|amount_cents| Fee {
                amount_cents,
                currency: card.currency.clone(),
            }),
        }
    }
}

/// A notification in the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: Uuid,
    pub title: String,
    pub body: String,
    /// `new` or `move_up`.
    pub reason: String,
    pub practitioner: Practitioner,
    /// In the order they start.
    pub slots: Vec<Slot>,
    /// Every slot it offered has been booked (by anyone).
    pub all_taken: bool,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

/// A slot offered by a notification, with its current availability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub slot_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Not booked yet and not started yet.
    pub available: bool,
    pub booking_url: String,
}

/// The feed page: `{ "notifications": [...] }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Feed {
    pub notifications: Vec<Notification>,
}

/// Which notifications a feed page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedFilter {
    /// `Some(true)`: unread only; `Some(false)`: read only; `None`: all.
    pub unread: Option<bool>,
    pub limit: u64,
}

/// A feed query the API refuses.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("limit must be between 1 and {MAX_LIMIT}, got {0}")]
pub struct LimitOutOfRange(pub u64);

impl FeedFilter {
    pub fn new(unread: Option<bool>, limit: Option<u64>) -> Result<Self, LimitOutOfRange> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
            Some(n) => return Err(LimitOutOfRange(n)),
        };
        Ok(Self { unread, limit })
    }
}

/// `patient_id`'s notifications, newest first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    patient_id: Uuid,
    filter: FeedFilter,
) -> anyhow::Result<Vec<Notification>> {
    let mut query =
        notification::Entity::find().filter(notification::Column::PatientId.eq(patient_id));
    query = match filter.unread {
        Some(true) => query.filter(notification::Column::ReadAt.is_null()),
        Some(false) => query.filter(notification::Column::ReadAt.is_not_null()),
        None => query,
    };
    let rows = query
        .order_by_desc(notification::Column::CreatedAt)
        .order_by_desc(notification::Column::Id)
        .limit(filter.limit)
        .all(db)
        .await
        .context("cannot read the feed")?;
    with_slots(db, rows).await
}

/// Why a notification cannot be marked read.
#[derive(Debug, thiserror::Error)]
pub enum MarkReadError {
    /// No such notification in this patient's feed (it may be another patient's).
    #[error("no such notification")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Marks `notification_id` of `patient_id` read, once: a second call keeps the first time.
pub async fn mark_read<C: ConnectionTrait>(
    db: &C,
    patient_id: Uuid,
    notification_id: Uuid,
) -> Result<Notification, MarkReadError> {
    let row = find(db, patient_id, notification_id)
        .await?
        .ok_or(MarkReadError::NotFound)?;
    if row.read_at.is_none() {
        // The `read_at IS NULL` guard keeps the first time if two calls race.
        notification::Entity::update_many()
            .col_expr(notification::Column::ReadAt, Expr::value(Utc::now()))
            .filter(notification::Column::Id.eq(notification_id))
            .filter(notification::Column::ReadAt.is_null())
            .exec(db)
            .await
            .context("cannot mark the notification read")?;
    }
    let row = find(db, patient_id, notification_id)
        .await?
        .ok_or(MarkReadError::NotFound)?;
    let mut shown = with_slots(db, vec![row]).await?;
    shown.pop().ok_or(MarkReadError::NotFound)
}

async fn find<C: ConnectionTrait>(
    db: &C,
    patient_id: Uuid,
    notification_id: Uuid,
) -> anyhow::Result<Option<notification::Model>> {
    notification::Entity::find_by_id(notification_id)
        .filter(notification::Column::PatientId.eq(patient_id))
        .one(db)
        .await
        .context("cannot read the notification")
}

/// Loads the slots of `rows` in one query and puts each notification together.
async fn with_slots<C: ConnectionTrait>(
    db: &C,
    rows: Vec<notification::Model>,
) -> anyhow::Result<Vec<Notification>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = rows.iter().map(|n| n.id).collect();
    let slots = notification_slot::Entity::find()
        .filter(notification_slot::Column::NotificationId.is_in(ids))
        .order_by_asc(notification_slot::Column::StartsAt)
        .order_by_asc(notification_slot::Column::SlotId)
        .all(db)
        .await
        .context("cannot read the notifications' slots")?;
    let mut by_notification: HashMap<Uuid, Vec<notification_slot::Model>> = HashMap::new();
    for slot in slots {
        by_notification
            .entry(slot.notification_id)
            .or_default()
            .push(slot);
    }
    let now = Utc::now();
    rows.into_iter()
        .map(|row| {
            let slots = by_notification.remove(&row.id).unwrap_or_default();
            present(row, slots, now)
        })
        .collect()
}

fn present(
    row: notification::Model,
    slots: Vec<notification_slot::Model>,
    now: DateTime<Utc>,
) -> anyhow::Result<Notification> {
    let practitioner: Practitioner =
        serde_json::from_str(&row.practitioner).with_context(|| {
            format!(
                "the practitioner of notification {} is not readable",
                row.id
            )
        })?;
    let all_taken = !slots.is_empty() && slots.iter().all(|s| s.taken_at.is_some());
    Ok(Notification {
        id: row.id,
        title: row.title,
        body: row.body,
        reason: row.reason,
        practitioner,
        slots: slots
            .into_iter()
            .map(|s| Slot {
                slot_id: s.slot_id,
                starts_at: s.starts_at,
                ends_at: s.ends_at,
                available: s.taken_at.is_none() && s.starts_at > now,
                booking_url: s.booking_url,
            })
            .collect(),
        all_taken,
        created_at: row.created_at,
        read_at: row.read_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_defaults_to_50_and_must_be_between_1_and_200() {
        assert_eq!(FeedFilter::new(None, None).unwrap().limit, 50);
        assert_eq!(FeedFilter::new(Some(true), Some(200)).unwrap().limit, 200);
        assert_eq!(FeedFilter::new(None, Some(201)), Err(LimitOutOfRange(201)));
        assert_eq!(FeedFilter::new(None, Some(0)), Err(LimitOutOfRange(0)));
    }

    fn slot(start_in_hours: i64, taken: bool) -> notification_slot::Model {
        let starts_at = Utc::now() + chrono::Duration::hours(start_in_hours);
        notification_slot::Model {
            notification_id: Uuid::nil(),
            slot_id: Uuid::now_v7(),
            starts_at,
            ends_at: starts_at + chrono::Duration::minutes(30),
            booking_url: "https://example.test/o/x".to_owned(),
            taken_at: taken.then(Utc::now),
        }
    }

    fn row() -> notification::Model {
        notification::Model {
            id: Uuid::now_v7(),
            patient_id: Uuid::now_v7(),
            reason: "new".to_owned(),
            title: "t".to_owned(),
            body: "b".to_owned(),
            practitioner: r#"{"id":"00000000-0000-0000-0000-000000000001","name":"A","specialty":"GP","timezone":"Europe/Paris","fee":null}"#.to_owned(),
            created_at: Utc::now(),
            read_at: None,
        }
    }

    #[test]
    fn all_taken_needs_every_slot_booked_and_a_past_slot_is_not_available() {
        let shown = present(row(), vec![slot(2, true), slot(3, false)], Utc::now()).unwrap();
        assert!(!shown.all_taken);
        assert_eq!(
            shown.slots.iter().map(|s| s.available).collect::<Vec<_>>(),
            [false, true]
        );
        let shown = present(row(), vec![slot(2, true), slot(3, true)], Utc::now()).unwrap();
        assert!(shown.all_taken);
        let shown = present(row(), vec![slot(-1, false)], Utc::now()).unwrap();
        assert!(!shown.slots[0].available && !shown.all_taken);
    }
}
