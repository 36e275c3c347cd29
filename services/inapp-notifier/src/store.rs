//! The write side: storing a notification from a `NotifyPatient` event, and marking a booked
//! slot taken. Both are idempotent, so a redelivered event changes nothing twice.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait, TryInsertResult, sea_query::Expr,
};
use slotcast_events::{
    CloudEvent, ID_NAMESPACE, InappStored, NotifyPatient, OfferedSlot, WaitKind,
};
use uuid::Uuid;

use crate::{
    entities::{notification, notification_slot},
    feed::Practitioner,
    wording,
};

/// The `source` of the events this service publishes.
pub const EVENT_SOURCE: &str = "slotcast/inapp-notifier";

/// A notification to store, read from a `NotifyPatient` event.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub reason: WaitKind,
    pub title: String,
    pub body: String,
    pub practitioner: Practitioner,
    /// The event's time.
    pub created_at: DateTime<Utc>,
    /// At least one, each slot once.
    pub slots: Vec<OfferedSlot>,
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
        Ok(Self {
            id: data.notification_id,
            patient_id: data.patient.id,
            reason: data.reason,
            title: wording::title(data.reason, &data.practitioner.name),
            body: wording::body(slots.len()),
            practitioner: Practitioner::from(&data.practitioner),
            created_at: event.time,
            slots,
        })
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

/// Stores the notification and its slots, and enqueues `InappStored`, in one transaction.
pub async fn store(db: &DatabaseConnection, new: &NewNotification) -> anyhow::Result<Stored> {
    let practitioner =
        serde_json::to_string(&new.practitioner).context("cannot encode the practitioner")?;
    // Everything below runs on the transaction: with SQLite's single connection, a query on
    // `db` while it is open would wait for ever.
    let txn = db.begin().await.context("cannot begin a transaction")?;
    let row = notification::ActiveModel {
        id: Set(new.id),
        patient_id: Set(new.patient_id),
        reason: Set(new.reason.as_str().to_owned()),
        title: Set(new.title.clone()),
        body: Set(new.body.clone()),
        practitioner: Set(practitioner),
        created_at: Set(new.created_at),
        read_at: Set(None),
    };
    let inserted = notification::Entity::insert(row)
        .on_conflict_do_nothing_on([notification::Column::Id])
        .exec_without_returning(&txn)
        .await
        .context("cannot insert the notification")?;
    if !matches!(inserted, TryInsertResult::Inserted(n) if n > 0) {
        txn.rollback().await.context("cannot end the transaction")?;
        return Ok(Stored::AlreadyThere);
    }
    let slots = new.slots.iter().map(|s| notification_slot::ActiveModel {
        notification_id: Set(new.id),
        slot_id: Set(s.slot_id),
        starts_at: Set(s.starts_at),
        ends_at: Set(s.ends_at),
        booking_url: Set(s.booking_url.clone()),
        taken_at: Set(None),
    });
    notification_slot::Entity::insert_many(slots)
        .on_conflict_do_nothing_on([
            notification_slot::Column::NotificationId,
            notification_slot::Column::SlotId,
        ])
        .exec_without_returning(&txn)
        .await
        .context("cannot insert the notification's slots")?;
    let event = CloudEvent::with_id(
        stored_event_id(new.id),
        EVENT_SOURCE,
        InappStored {
            notification_id: new.id,
            patient_id: new.patient_id,
        },
    );
    slotcast_bus::outbox::enqueue(&txn, &event)
        .await
        .context("cannot enqueue InappStored")?;
    txn.commit()
        .await
        .context("cannot commit the notification")?;
    Ok(Stored::New)
}

/// Marks `slot_id` taken at `at` in every notification that offered it and does not show it
/// taken yet. Returns how many notifications changed (0 on a redelivery).
pub async fn mark_slot_taken<C: ConnectionTrait>(
    db: &C,
    slot_id: Uuid,
    at: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let result = notification_slot::Entity::update_many()
        .col_expr(notification_slot::Column::TakenAt, Expr::value(at))
        .filter(notification_slot::Column::SlotId.eq(slot_id))
        .filter(notification_slot::Column::TakenAt.is_null())
        .exec(db)
        .await
        .context("cannot mark the slot taken")?;
    Ok(result.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;
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
                    })
                    .collect(),
                reason: WaitKind::MoveUp,
                entry_id: Uuid::now_v7(),
                batch_id: Uuid::now_v7(),
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
