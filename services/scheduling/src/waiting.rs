//! Closing waiting-list entries: an entry is `active` until it is fulfilled (its patient
//! booked) or left, and it expires by itself.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};
use slotcast_events::{CloseReason, WaitlistClosed};

use crate::{entities::waitlist_entry, store::emit};

pub const ACTIVE: &str = "active";
pub const FULFILLED: &str = "fulfilled";
pub const LEFT: &str = "left";

/// Whether `e` has expired at `now`.
pub fn expired(e: &waitlist_entry::Model, now: DateTime<Utc>) -> bool {
    e.expires_at.is_some_and(|t| t <= now)
}

/// Closes `entries` with `reason` and says so on the bus, inside the caller's transaction.
pub async fn close_entries<C: ConnectionTrait>(
    conn: &C,
    entries: Vec<waitlist_entry::Model>,
    reason: CloseReason,
) -> Result<(), DbErr> {
    let status = if reason == CloseReason::Fulfilled {
        FULFILLED
    } else {
        LEFT
    };
    for e in entries {
        let (id, patient_id, practitioner_id) = (e.id, e.patient_id, e.practitioner_id);
        let mut m: waitlist_entry::ActiveModel = e.into();
        m.status = Set(status.to_owned());
        m.closed_at = Set(Some(Utc::now()));
        m.update(conn).await?;
        emit(
            conn,
            WaitlistClosed {
                entry_id: id,
                patient_id,
                practitioner_id,
                reason,
            },
        )
        .await?;
    }
    Ok(())
}
