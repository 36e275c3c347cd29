//! The write side: storing a notification from a `NotifyPatient` event, and applying what a
//! scheduling event says about a slot. Both are idempotent, so a redelivered event changes
//! nothing twice, and each appends to the feed log what the patients should see change.
//!
//! Both lock the `slot_states` rows of the slots they touch (in slot id order), then the
//! patients' feed cursors (in patient id order): a notification and a change to one of its
//! slots are never written at the same time, so the change either finds the notification (and
//! logs `notification.updated` for it) or is committed before it (and the notification, read
//! when its `notification` event is sent, shows it). A notification takes the rows in share
//! mode (`FOR SHARE`) and a change exclusively (`FOR UPDATE`): the thousands of notifications
//! about one opening are stored side by side, and a change to the slot waits for them (and
//! they for it).

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, Set, TransactionTrait,
    sea_query::{Expr, OnConflict},
};
use slotcast_bus::rows;
use slotcast_events::{
    AppointmentConfirmation, CloudEvent, ID_NAMESPACE, InappStored, NotifyPatient, OfferedSlot,
};
use slotcast_i18n::Locale;
use uuid::Uuid;

use crate::{
    entities::{notification, notification_slot, slot_state},
    feed::{Confirmation, Practitioner},
    feed_log::{self, ChangeKind},
    slots::{SlotChange, SlotState},
    wording,
};

/// The `source` of the events this service publishes.
pub const EVENT_SOURCE: &str = slotcast_events::sources::INAPP_NOTIFIER;

/// A notification to store, read from a `NotifyPatient` event.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    pub id: Uuid,
    pub patient_id: Uuid,
    /// `new` or `move_up`; for a confirmation, its kind.
    pub reason: &'static str,
    pub title: String,
    pub body: String,
    pub practitioner: Practitioner,
    /// The event's time.
    pub created_at: DateTime<Utc>,
    /// At least one, each slot once.
    pub slots: Vec<OfferedSlot>,
    /// The trace context of the message it came in (W3C headers; empty: the current span's),
    /// which its `InappStored` event continues.
    pub trace: HashMap<String, String>,
    /// For a confirmation (which offers no slot): the appointment.
    pub confirmation: Option<Confirmation>,
}

/// Why a `NotifyPatient` event cannot become a notification.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidNotification {
    #[error("the notification offers no slot")]
    NoSlots,
}

impl NewNotification {
    /// Reads the event; a slot listed twice is kept once.
    pub fn from_event(event: CloudEvent<NotifyPatient>) -> Result<Self, InvalidNotification> {
        let data = event.data;
        let mut slots: Vec<OfferedSlot> = Vec::with_capacity(data.slots.len());
        for slot in data.slots {
            if !slots.iter().any(|s| s.slot_id == slot.slot_id) {
                slots.push(slot);
            }
        }
        if slots.is_empty() {
            return Err(InvalidNotification::NoSlots);
        }
        let locale = Locale::negotiate(&data.patient.locale);
        Ok(Self {
            id: data.notification_id,
            patient_id: data.patient.id,
            reason: data.reason.as_str(),
            title: wording::title(&locale, data.reason, &data.practitioner.name),
            body: wording::body(&locale, slots.len()),
            practitioner: Practitioner::from(&data.practitioner),
            created_at: event.time,
            slots,
            trace: HashMap::new(),
            confirmation: None,
        })
    }

    /// Reads a confirmation: an item without slots, keyed on the confirmation id, its words in
    /// the patient's language.
    pub fn from_confirmation(event: CloudEvent<AppointmentConfirmation>) -> Self {
        let data = event.data;
        let locale = Locale::negotiate(&data.patient.locale);
        Self {
            id: data.confirmation_id,
            patient_id: data.patient.id,
            reason: data.kind.as_str(),
            title: wording::confirmation_title(&locale, data.kind, &data.practitioner.name),
            body: wording::confirmation_body(&locale, &data),
            practitioner: Practitioner::from(&data.practitioner),
            created_at: event.time,
            slots: Vec::new(),
            trace: HashMap::new(),
            confirmation: Some(Confirmation::from(&data)),
        }
    }
}

/// What storing a notification did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Stored now, with its `InappStored` event in the outbox.
    New,
    /// It was there already (a redelivery): nothing changed.
    AlreadyThere,
}

/// The id of the `InappStored` event for `notification_id`, the same on every redelivery.
pub fn stored_event_id(notification_id: Uuid) -> Uuid {
    Uuid::new_v5(
        &ID_NAMESPACE,
        format!("inapp.stored:{notification_id}").as_bytes(),
    )
}

/// Stores a batch of notifications in one transaction (group commit): for each, the notification
/// and its slots, `notification` appended to the patient's feed log and `InappStored` enqueued,
/// in a few multi-row statements for the whole batch instead of several for each. Returns what
/// happened to each, in the batch's order. A notification already stored (or listed twice) is
/// [`Stored::AlreadyThere`] and changes nothing.
///
/// The notifications are inserted in id order, and the slots' state rows and the patients' feed
/// cursors are taken in id order, as one notification takes them, so two batches (or a batch and
/// a slot change) never wait on each other in a circle.
pub async fn store_batch(
    db: &DatabaseConnection,
    batch: &[NewNotification],
) -> anyhow::Result<Vec<Stored>> {
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by_key(|&i| batch[i].id);
    order.dedup_by_key(|i| batch[*i].id);
    let mut rows = Vec::with_capacity(order.len());
    for &i in &order {
        let new = &batch[i];
        let practitioner =
            serde_json::to_string(&new.practitioner).context("cannot encode the practitioner")?;
        let confirmation = new
            .confirmation
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .context("cannot encode the confirmation")?;
        rows.push(notification::ActiveModel {
            id: Set(new.id),
            patient_id: Set(new.patient_id),
            reason: Set(new.reason.to_owned()),
            title: Set(new.title.clone()),
            body: Set(new.body.clone()),
            practitioner: Set(practitioner),
            created_at: Set(new.created_at),
            read_at: Set(None),
            confirmation: Set(confirmation),
        });
    }
    // Everything below runs on the transaction: with SQLite's single connection, a query on
    // `db` while it is open would wait for ever.
    let txn = db.begin().await.context("cannot begin a transaction")?;
    let mut inserted: HashSet<Uuid> = HashSet::with_capacity(rows.len());
    let row_bytes = |row: &notification::ActiveModel| {
        [&row.reason, &row.title, &row.body, &row.practitioner]
            .into_iter()
            .map(|v| match v {
                sea_orm::ActiveValue::Set(text) => text.len(),
                _ => 0,
            })
            .sum()
    };
    for chunk in rows::chunks(&rows, row_bytes) {
        let mut insert = notification::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::column(notification::Column::Id)
                    .do_nothing()
                    .to_owned(),
            )
            .into_query();
        insert.returning_col(notification::Column::Id);
        for row in txn
            .query_all(&insert)
            .await
            .context("cannot insert the notifications")?
        {
            inserted.insert(
                row.try_get("", "id")
                    .context("cannot read an inserted id")?,
            );
        }
    }
    // The first occurrence of each new id is the one stored; every other answer is "there".
    let mut answered: HashSet<Uuid> = HashSet::with_capacity(inserted.len());
    let stored: Vec<Stored> = batch
        .iter()
        .map(|new| {
            if inserted.contains(&new.id) && answered.insert(new.id) {
                Stored::New
            } else {
                Stored::AlreadyThere
            }
        })
        .collect();
    if inserted.is_empty() {
        txn.rollback().await.context("cannot end the transaction")?;
        return Ok(stored);
    }
    let fresh: Vec<&NewNotification> = order
        .iter()
        .map(|&i| &batch[i])
        .filter(|new| inserted.contains(&new.id))
        .collect();

    let mut slot_ids: Vec<Uuid> = fresh
        .iter()
        .flat_map(|new| new.slots.iter().map(|s| s.slot_id))
        .collect();
    slot_ids.sort_unstable();
    slot_ids.dedup();
    let first_at = fresh
        .iter()
        .map(|new| new.created_at)
        .min()
        .unwrap_or_else(Utc::now);
    lock_slot_states(&txn, &slot_ids, first_at, Lock::Shared).await?;

    let slots: Vec<notification_slot::ActiveModel> = fresh
        .iter()
        .flat_map(|new| {
            new.slots.iter().map(|s| notification_slot::ActiveModel {
                notification_id: Set(new.id),
                slot_id: Set(s.slot_id),
                starts_at: Set(s.starts_at),
                ends_at: Set(s.ends_at),
                booking_url: Set(s.booking_url.clone()),
                taken_at: Set(None),
            })
        })
        .collect();
    let slot_bytes = |row: &notification_slot::ActiveModel| match &row.booking_url {
        sea_orm::ActiveValue::Set(url) => url.len(),
        _ => 0,
    };
    for chunk in rows::chunks(&slots, slot_bytes) {
        notification_slot::Entity::insert_many(chunk.to_vec())
            .on_conflict_do_nothing_on([
                notification_slot::Column::NotificationId,
                notification_slot::Column::SlotId,
            ])
            .exec_without_returning(&txn)
            .await
            .context("cannot insert the notifications' slots")?;
    }
    // In the batch's order, so a patient's notifications are logged in the order they came.
    let logged: Vec<(Uuid, Uuid)> = batch
        .iter()
        .zip(&stored)
        .filter(|(_, s)| **s == Stored::New)
        .map(|(new, _)| (new.patient_id, new.id))
        .collect();
    feed_log::append_many(&txn, &logged, ChangeKind::Notification, Utc::now()).await?;
    let events: Vec<CloudEvent<InappStored>> = fresh
        .iter()
        .map(|new| {
            CloudEvent::with_id(
                stored_event_id(new.id),
                EVENT_SOURCE,
                InappStored {
                    notification_id: new.id,
                    patient_id: new.patient_id,
                },
            )
        })
        .collect();
    let traced: Vec<_> = events
        .iter()
        .zip(&fresh)
        .map(|(e, new)| (e, &new.trace))
        .collect();
    slotcast_bus::outbox::enqueue_traced(&txn, &traced)
        .await
        .context("cannot enqueue InappStored")?;
    txn.commit()
        .await
        .context("cannot commit the notifications")?;
    Ok(stored)
}

/// What applying a slot event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotApplied {
    /// A later event of this slot was applied already (or this one was): nothing changed.
    Stale,
    /// Newer, but the slot was already in that state: nothing to tell anyone.
    Unchanged,
    /// The state changed; `notification.updated` was logged for each notification that offered
    /// the slot, for these patients.
    Changed {
        notifications: usize,
        patients: Vec<Uuid>,
    },
}

/// Applies `change`, read from the event at `stream_seq` in the stream, unless the slot's state
/// comes from a later event already: whatever order events are handled in, the last one in
/// stream order wins.
pub async fn apply_slot_change(
    db: &DatabaseConnection,
    change: &SlotChange,
    stream_seq: u64,
) -> anyhow::Result<SlotApplied> {
    let seq = i64::try_from(stream_seq).context("the stream sequence is out of range")?;
    // Everything below runs on the transaction (SQLite has one connection).
    let txn = db.begin().await.context("cannot begin a transaction")?;
    let current = lock_slot_states(&txn, &[change.slot_id], change.at, Lock::Exclusive)
        .await?
        .pop()
        .context("the slot's state row is missing")?;
    if current.stream_seq >= seq {
        txn.rollback().await.context("cannot end the transaction")?;
        return Ok(SlotApplied::Stale);
    }
    slot_state::Entity::update_many()
        .col_expr(
            slot_state::Column::Status,
            Expr::value(change.state.status()),
        )
        .col_expr(
            slot_state::Column::BookedBy,
            Expr::value(change.state.booked_by()),
        )
        .col_expr(slot_state::Column::StreamSeq, Expr::value(seq))
        .col_expr(slot_state::Column::ChangedAt, Expr::value(change.at))
        .filter(slot_state::Column::SlotId.eq(change.slot_id))
        .filter(slot_state::Column::StreamSeq.lt(seq))
        .exec(&txn)
        .await
        .context("cannot update the slot's state")?;
    let before = SlotState::from_row(&current.status, current.booked_by);
    if before == Some(change.state) {
        txn.commit()
            .await
            .context("cannot commit the slot's state")?;
        return Ok(SlotApplied::Unchanged);
    }
    let offered: Vec<(Uuid, Uuid)> = notification::Entity::find()
        .inner_join(notification_slot::Entity)
        .filter(notification_slot::Column::SlotId.eq(change.slot_id))
        .select_only()
        .column(notification::Column::PatientId)
        .column(notification::Column::Id)
        .into_tuple()
        .all(&txn)
        .await
        .context("cannot find the notifications that offered the slot")?;
    let notifications = offered.len();
    let patients =
        feed_log::append_all(&txn, offered, ChangeKind::NotificationUpdated, Utc::now()).await?;
    txn.commit()
        .await
        .context("cannot commit the slot's state")?;
    Ok(SlotApplied::Changed {
        notifications,
        patients,
    })
}

/// How a transaction holds the `slot_states` rows it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lock {
    /// `FOR SHARE`: alongside other sharers, never alongside a change.
    Shared,
    /// `FOR UPDATE`: alone.
    Exclusive,
}

/// Makes sure `slot_ids` (sorted, each once) have a state row, and locks those rows until `txn` ends.
/// A missing row is created `available` at sequence 0, which is what an unknown slot is.
async fn lock_slot_states<C: ConnectionTrait>(
    txn: &C,
    slot_ids: &[Uuid],
    at: DateTime<Utc>,
    lock: Lock,
) -> anyhow::Result<Vec<slot_state::Model>> {
    let mut locked = Vec::with_capacity(slot_ids.len());
    // In chunks (a statement binds a bounded number of values), in slot id order throughout.
    for chunk in rows::chunks(slot_ids, |_| 0) {
        let unknown = chunk.iter().map(|&slot_id| slot_state::ActiveModel {
            slot_id: Set(slot_id),
            status: Set(SlotState::Available.status().to_owned()),
            booked_by: Set(None),
            stream_seq: Set(0),
            changed_at: Set(at),
        });
        slot_state::Entity::insert_many(unknown)
            .on_conflict_do_nothing_on([slot_state::Column::SlotId])
            .exec_without_returning(txn)
            .await
            .context("cannot create the slots' state rows")?;
        // FOR SHARE / FOR UPDATE on Postgres, rows locked in this order; SQLite has one writer
        // anyway.
        let rows = slot_state::Entity::find()
            .filter(slot_state::Column::SlotId.is_in(chunk.iter().copied()))
            .order_by_asc(slot_state::Column::SlotId);
        let rows = match lock {
            Lock::Shared => rows.lock_shared(),
            Lock::Exclusive => rows.lock_exclusive(),
        };
        locked.extend(
            rows.all(txn)
                .await
                .context("cannot lock the slots' state rows")?,
        );
    }
    Ok(locked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotcast_events::WaitKind;
    use slotcast_events::{PatientContact, PractitionerCard};

    fn event(slot_ids: &[Uuid]) -> CloudEvent<NotifyPatient> {
        let patient = Uuid::now_v7();
        let now = Utc::now();
        CloudEvent::new(
            "test",
            NotifyPatient {
                notification_id: NotifyPatient::derive_id(patient, slot_ids),
                patient: PatientContact {
                    id: patient,
                    name: "P".to_owned(),
                    email: "p@example.test".to_owned(),
                    locale: "en".to_owned(),
                    timezone: None,
                    phone: None,
                },
                practitioner: PractitionerCard {
                    id: Uuid::now_v7(),
                    name: "Ada Byron".to_owned(),
                    specialty: "GP".to_owned(),
                    timezone: "Europe/London".to_owned(),
                    consultation_fee_cents: Some(2500),
                    currency: "GBP".to_owned(),
                },
                slots: slot_ids
                    .iter()
                    .map(|&slot_id| OfferedSlot {
                        slot_id,
                        starts_at: now,
                        ends_at: now,
                        booking_url: format!("https://example.test/o/{slot_id}"),
                        held_until: None,
                    })
                    .collect(),
                reason: WaitKind::MoveUp,
                entry_id: Uuid::now_v7(),
                batch_id: Uuid::now_v7(),
                channels: Default::default(),
                wave: None,
                preferences_url: None,
                unsubscribe_url: None,
                sms_not_before: None,
            },
        )
    }

    #[test]
    fn a_slot_listed_twice_is_kept_once_and_the_words_follow_the_reason() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let new = NewNotification::from_event(event(&[a, b, a])).unwrap();
        assert_eq!(
            new.slots.iter().map(|s| s.slot_id).collect::<Vec<_>>(),
            [a, b]
        );
        assert_eq!(new.title, "Earlier appointment times with Dr Ada Byron");
        assert_eq!(new.body, "2 times are available. Book one in a click.");
        assert_eq!(
            new.practitioner.fee,
            Some(crate::feed::Fee {
                amount_cents: 2500,
                currency: "GBP".to_owned()
            })
        );
    }

    #[test]
    fn a_notification_without_slots_is_refused() {
        assert_eq!(
            NewNotification::from_event(event(&[])),
            Err(InvalidNotification::NoSlots)
        );
    }

    #[test]
    fn the_stored_event_id_is_derived_from_the_notification() {
        let id = Uuid::now_v7();
        assert_eq!(stored_event_id(id), stored_event_id(id));
        assert_ne!(stored_event_id(id), stored_event_id(Uuid::now_v7()));
    }
}
