//! The read side: a patient's feed as the HTTP API (and the stream) shows it, and marking a
//! notification read.
//!
//! Whether a slot is still available, and whether all of a notification's slots are gone, is
//! derived when the feed is read, from each slot's state in `slot_states` (kept once per slot)
//! and the time.

use std::collections::HashMap;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait, sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    entities::{notification, notification_slot, slot_state},
    feed_log::{self, ChangeKind},
    slots::{SlotState, SlotStatus},
};

/// How many notifications a feed page holds unless the client asks otherwise.
pub const DEFAULT_LIMIT: u64 = 50;
/// The most a client may ask for.
pub const MAX_LIMIT: u64 = 200;

/// The practitioner a notification is about, as stored (JSON) and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Practitioner {
    pub id: Uuid,
    pub name: String,
    pub specialty: String,
    /// IANA time zone of the practice, to show the times in.
    pub timezone: String,
    pub fee: Option<Fee>,
}

/// A consultation fee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// What a confirmation is about: the appointment, its calendar entry and its page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Confirmation {
    /// `booked`, `moved` or `cancelled`.
    pub kind: String,
    pub appointment_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// For a move: the time the appointment had before.
    pub replaced_starts_at: Option<DateTime<Utc>>,
    pub replaced_ends_at: Option<DateTime<Utc>>,
    /// The calendar entry (`text/calendar`; its `UID` is the appointment, its `SEQUENCE` this).
    pub calendar_url: String,
    pub sequence: u32,
    /// The appointment's page, where a booked appointment can be cancelled.
    pub manage_url: String,
}

impl From<&slotcast_events::AppointmentConfirmation> for Confirmation {
    fn from(c: &slotcast_events::AppointmentConfirmation) -> Self {
        Self {
            kind: c.kind.as_str().to_owned(),
            appointment_id: c.appointment_id,
            starts_at: c.starts_at,
            ends_at: c.ends_at,
            replaced_starts_at: c.replaced.map(|r| r.starts_at),
            replaced_ends_at: c.replaced.map(|r| r.ends_at),
            calendar_url: c.calendar_url.clone(),
            sequence: c.sequence,
            manage_url: c.manage_url.clone(),
        }
    }
}

/// A notification in the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: Uuid,
    pub title: String,
    pub body: String,
    /// `new` or `move_up` (times to book); `booked`, `moved` or `cancelled` (a confirmation).
    pub reason: String,
    pub practitioner: Practitioner,
    /// In the order they start.
    pub slots: Vec<Slot>,
    /// None of the slots it offered is available any more (booked, withdrawn or started).
    pub all_taken: bool,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
    /// For a confirmation (no slots): the appointment, with its calendar entry and page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<Confirmation>,
}

/// A slot offered by a notification, with its current availability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Slot {
    pub slot_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// `status` is `available`: not booked, not withdrawn, not started.
    pub available: bool,
    pub status: SlotStatus,
    pub booking_url: String,
}

/// The feed page: `{ "notifications": [...] }`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
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

/// `patient_id`'s notifications among `ids`, by id (for the stream, which sends them one by one).
pub async fn by_ids<C: ConnectionTrait>(
    db: &C,
    patient_id: Uuid,
    ids: &[Uuid],
) -> anyhow::Result<HashMap<Uuid, Notification>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = notification::Entity::find()
        .filter(notification::Column::PatientId.eq(patient_id))
        .filter(notification::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await
        .context("cannot read the notifications")?;
    Ok(with_slots(db, rows)
        .await?
        .into_iter()
        .map(|n| (n.id, n))
        .collect())
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

/// A notification marked read.
#[derive(Debug, Clone)]
pub struct MarkedRead {
    pub notification: Notification,
    /// Read now, not before: `notification.updated` was logged for it.
    pub first_time: bool,
}

/// Marks `notification_id` of `patient_id` read, once: a second call keeps the first time. The
/// first time, `notification.updated` goes to the patient's feed log in the same transaction.
pub async fn mark_read(
    db: &DatabaseConnection,
    patient_id: Uuid,
    notification_id: Uuid,
) -> Result<MarkedRead, MarkReadError> {
    let now = Utc::now();
    let txn = db.begin().await.context("cannot begin a transaction")?;
    // The `read_at IS NULL` guard keeps the first time if two calls race.
    let updated = notification::Entity::update_many()
        .col_expr(notification::Column::ReadAt, Expr::value(now))
        .filter(notification::Column::Id.eq(notification_id))
        .filter(notification::Column::PatientId.eq(patient_id))
        .filter(notification::Column::ReadAt.is_null())
        .exec(&txn)
        .await
        .context("cannot mark the notification read")?;
    let first_time = updated.rows_affected > 0;
    if first_time {
        feed_log::append(
            &txn,
            patient_id,
            ChangeKind::NotificationUpdated,
            notification_id,
            now,
        )
        .await?;
        txn.commit().await.context("cannot commit the read mark")?;
    } else {
        txn.rollback().await.context("cannot end the transaction")?;
    }
    // Read after the transaction ended: SQLite has one connection.
    let row = find(db, patient_id, notification_id)
        .await?
        .ok_or(MarkReadError::NotFound)?;
    let mut shown = with_slots(db, vec![row]).await?;
    let notification = shown.pop().ok_or(MarkReadError::NotFound)?;
    Ok(MarkedRead {
        notification,
        first_time,
    })
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

/// Loads the slots of `rows` and their states (one query each) and puts each notification
/// together.
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
    let mut slot_ids: Vec<Uuid> = slots.iter().map(|s| s.slot_id).collect();
    slot_ids.sort_unstable();
    slot_ids.dedup();
    let states: HashMap<Uuid, SlotState> = slot_state::Entity::find()
        .filter(slot_state::Column::SlotId.is_in(slot_ids))
        .all(db)
        .await
        .context("cannot read the slots' states")?
        .into_iter()
        .filter_map(|s| {
            let state = SlotState::from_row(&s.status, s.booked_by);
            if state.is_none() {
                tracing::warn!(slot_id = %s.slot_id, status = %s.status, "unknown slot status, shown as available");
            }
            Some((s.slot_id, state?))
        })
        .collect();
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
            present(row, slots, &states, now)
        })
        .collect()
}

fn present(
    row: notification::Model,
    slots: Vec<notification_slot::Model>,
    states: &HashMap<Uuid, SlotState>,
    now: DateTime<Utc>,
) -> anyhow::Result<Notification> {
    let practitioner: Practitioner =
        serde_json::from_str(&row.practitioner).with_context(|| {
            format!(
                "the practitioner of notification {} is not readable",
                row.id
            )
        })?;
    let slots: Vec<Slot> = slots
        .into_iter()
        .map(|s| {
            let status = SlotStatus::shown(
                states.get(&s.slot_id).copied(),
                row.patient_id,
                s.starts_at,
                now,
            );
            Slot {
                slot_id: s.slot_id,
                starts_at: s.starts_at,
                ends_at: s.ends_at,
                available: status.is_available(),
                status,
                booking_url: s.booking_url,
            }
        })
        .collect();
    let all_taken = !slots.is_empty() && slots.iter().all(|s| !s.available);
    let confirmation = match &row.confirmation {
        Some(json) => Some(serde_json::from_str(json).with_context(|| {
            format!(
                "the confirmation of notification {} is not readable",
                row.id
            )
        })?),
        None => None,
    };
    Ok(Notification {
        id: row.id,
        title: row.title,
        body: row.body,
        reason: row.reason,
        practitioner,
        slots,
        all_taken,
        created_at: row.created_at,
        read_at: row.read_at,
        confirmation,
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

    fn slot(start_in_hours: i64) -> notification_slot::Model {
        let starts_at = Utc::now() + chrono::Duration::hours(start_in_hours);
        notification_slot::Model {
            notification_id: Uuid::nil(),
            slot_id: Uuid::now_v7(),
            starts_at,
            ends_at: starts_at + chrono::Duration::minutes(30),
            booking_url: "https://example.test/o/x".to_owned(),
            taken_at: None,
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
            confirmation: None,
        }
    }

    fn statuses(shown: &Notification) -> Vec<(bool, SlotStatus)> {
        shown
            .slots
            .iter()
            .map(|s| (s.available, s.status))
            .collect()
    }

    #[test]
    fn each_slot_shows_its_state_and_all_taken_needs_every_slot_gone() {
        let row = row();
        let me = row.patient_id;
        let (booked, open, mine, withdrawn, past) = (slot(2), slot(3), slot(4), slot(5), slot(-1));
        let states = HashMap::from([
            (
                booked.slot_id,
                SlotState::Booked {
                    by: Some(Uuid::now_v7()),
                },
            ),
            (mine.slot_id, SlotState::Booked { by: Some(me) }),
            (withdrawn.slot_id, SlotState::Withdrawn),
        ]);
        let shown = present(
            row.clone(),
            vec![
                booked.clone(),
                open.clone(),
                mine.clone(),
                withdrawn.clone(),
                past.clone(),
            ],
            &states,
            Utc::now(),
        )
        .unwrap();
        assert_eq!(
            statuses(&shown),
            [
                (false, SlotStatus::Taken),
                (true, SlotStatus::Available),
                (false, SlotStatus::BookedByYou),
                (false, SlotStatus::Withdrawn),
                (false, SlotStatus::Started),
            ]
        );
        assert!(!shown.all_taken);
        let shown = present(
            row,
            vec![booked, mine, withdrawn, past],
            &states,
            Utc::now(),
        )
        .unwrap();
        assert!(shown.all_taken);
    }

    #[test]
    fn a_slot_shows_its_status_next_to_available_in_the_json() {
        let s = slot(2);
        let shown = present(row(), vec![s], &HashMap::new(), Utc::now()).unwrap();
        let json = serde_json::to_value(&shown).unwrap();
        assert_eq!(json["slots"][0]["available"], true);
        assert_eq!(json["slots"][0]["status"], "available");
        assert_eq!(json["all_taken"], false);
    }
}
