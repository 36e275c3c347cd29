//! A slot's availability: its stored status, a hold that lapses by itself, and how a slot that
//! opens starts under each offering policy.
//!
//! A slot's stored status is `available`, `held`, `booked` or `withdrawn`. A `held` slot has a
//! `held_until`; once that has passed the slot *is* available (in listings, in the `status=`
//! filter, for booking and for claims) without anything rewriting the row. Under the `waves`
//! policy a new slot starts held by a pre-hold (no hold id) for `WAVES_FIRST_HOLD_SECS`.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait};
use slotcast_events::OfferPolicy;
use uuid::Uuid;

use crate::{
    Policy,
    entities::{practitioner, slot},
};

pub const AVAILABLE: &str = "available";
pub const HELD: &str = "held";
pub const BOOKED: &str = "booked";
pub const WITHDRAWN: &str = "withdrawn";

/// The status a slot has at `now`: a lapsed hold is available.
pub fn status_at(s: &slot::Model, now: DateTime<Utc>) -> &str {
    match s.status.as_str() {
        HELD if s.held_until.is_none_or(|until| until <= now) => AVAILABLE,
        other => other,
    }
}

/// Whether the slot is held at `now` (by a hold or a pre-hold), and until when.
pub fn held_until(s: &slot::Model, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (s.status == HELD)
        .then_some(s.held_until)
        .flatten()
        .filter(|until| *until > now)
}

/// Slots whose status is `status` at `now`, as a query condition.
pub fn status_is(status: &str, now: DateTime<Utc>) -> Condition {
    let lapsed = Condition::all().add(slot::Column::Status.eq(HELD)).add(
        Condition::any()
            .add(slot::Column::HeldUntil.is_null())
            .add(slot::Column::HeldUntil.lte(now)),
    );
    match status {
        AVAILABLE => Condition::any()
            .add(slot::Column::Status.eq(AVAILABLE))
            .add(lapsed),
        HELD => Condition::all()
            .add(slot::Column::Status.eq(HELD))
            .add(slot::Column::HeldUntil.gt(now)),
        other => Condition::all().add(slot::Column::Status.eq(other)),
    }
}

/// How a slot that opens now (published, or freed) starts: `available`, or under `waves` held
/// by a pre-hold until matching places the first wave's hold.
pub fn opening(
    policy: OfferPolicy,
    settings: &Policy,
    now: DateTime<Utc>,
) -> (&'static str, Option<DateTime<Utc>>) {
    match policy {
        OfferPolicy::Broadcast => (AVAILABLE, None),
        OfferPolicy::Waves => (HELD, Some(now + settings.first_hold)),
    }
}

/// The effective offering policy of a practitioner's openings now.
pub async fn policy_of<C: ConnectionTrait>(
    conn: &C,
    practitioner_id: Uuid,
    settings: &Policy,
) -> Result<OfferPolicy, DbErr> {
    let own = practitioner::Entity::find_by_id(practitioner_id)
        .one(conn)
        .await?
        .as_ref()
        .and_then(own_policy);
    Ok(settings.effective(own))
}

/// A practitioner's own offering policy as stored (an unknown value reads as none).
pub fn own_policy(m: &practitioner::Model) -> Option<OfferPolicy> {
    m.offer_policy.as_deref().and_then(OfferPolicy::parse)
}
