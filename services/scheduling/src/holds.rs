//! Holds for the `waves` policy: placing a hold on an opening's slots for a wave's patients,
//! and letting it go.
//!
//! A hold makes each listed slot that is available or held (by any hold, lapsed or not, or by a
//! pre-hold) `held` until its end; booked, withdrawn or started slots are not held. Its patient
//! set is replaced, and slots it held that are no longer listed are let go. Placing the same
//! hold twice gives the same state.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set, sea_query::Expr,
};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    availability::{AVAILABLE, HELD},
    domain::HoldRequest,
    entities::{hold, hold_patient, slot},
    store::for_update,
};

/// A slot a hold asked for and did not get.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotHeld {
    pub slot_id: Uuid,
    /// `booked`, `withdrawn` or `started`.
    pub status: String,
}

/// What a hold holds once placed, in the order asked.
#[derive(Debug)]
pub struct Placed {
    pub held: Vec<Uuid>,
    pub not_held: Vec<NotHeld>,
}

/// Places hold `id` as `h` asks, inside `conn`'s transaction; the slot ids that do not exist
/// instead (nothing is changed then).
pub async fn place<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    h: &HoldRequest,
    now: DateTime<Utc>,
) -> Result<Result<Placed, Vec<Uuid>>, DbErr> {
    // Locked in id order, so two holds on overlapping slots wait for each other, never deadlock.
    let slots = for_update(
        slot::Entity::find()
            .filter(slot::Column::Id.is_in(h.slot_ids.clone()))
            .order_by_asc(slot::Column::Id),
        conn,
    )
    .all(conn)
    .await?;
    let unknown: Vec<Uuid> = h
        .slot_ids
        .iter()
        .filter(|id| !slots.iter().any(|s| s.id == **id))
        .copied()
        .collect();
    if !unknown.is_empty() {
        return Ok(Err(unknown));
    }
    hold::Entity::insert(hold::ActiveModel {
        id: Set(id),
        until: Set(h.until),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict_do_nothing_on([hold::Column::Id])
    .exec_without_returning(conn)
    .await?;
    hold::Entity::update_many()
        .col_expr(hold::Column::Until, Expr::value(h.until))
        .col_expr(hold::Column::UpdatedAt, Expr::value(now))
        .filter(hold::Column::Id.eq(id))
        .exec(conn)
        .await?;
    hold_patient::Entity::delete_many()
        .filter(hold_patient::Column::HoldId.eq(id))
        .exec(conn)
        .await?;
    // Cut so each statement travels in one piece (`slotcast_bus::rows`).
    for chunk in slotcast_bus::rows::chunks(&h.patient_ids, |_| 0) {
        hold_patient::Entity::insert_many(chunk.iter().map(|p| hold_patient::ActiveModel {
            hold_id: Set(id),
            patient_id: Set(*p),
        }))
        .exec_without_returning(conn)
        .await?;
    }
    // Slots this hold had that are no longer listed are let go.
    let_go(id)
        .filter(slot::Column::Id.is_not_in(h.slot_ids.clone()))
        .exec(conn)
        .await?;
    let mut held = Vec::new();
    let mut not_held = Vec::new();
    for slot_id in &h.slot_ids {
        let Some(s) = slots.iter().find(|s| s.id == *slot_id) else {
            continue;
        };
        let open = s.status == AVAILABLE || s.status == HELD;
        if !open || s.starts_at <= now {
            let status = if open { "started" } else { s.status.as_str() };
            not_held.push(NotHeld {
                slot_id: s.id,
                status: status.to_owned(),
            });
            continue;
        }
        held.push(s.id);
    }
    if !held.is_empty() {
        slot::Entity::update_many()
            .col_expr(slot::Column::Status, Expr::value(HELD))
            .col_expr(slot::Column::HoldId, Expr::value(Some(id)))
            .col_expr(slot::Column::HeldUntil, Expr::value(Some(h.until)))
            .filter(slot::Column::Id.is_in(held.clone()))
            .exec(conn)
            .await?;
    }
    Ok(Ok(Placed { held, not_held }))
}

/// Lets hold `id` go: what it still holds becomes available; returns how many slots.
pub async fn release<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<u64, DbErr> {
    let freed = let_go(id).exec(conn).await?.rows_affected;
    hold_patient::Entity::delete_many()
        .filter(hold_patient::Column::HoldId.eq(id))
        .exec(conn)
        .await?;
    hold::Entity::delete_by_id(id).exec(conn).await?;
    Ok(freed)
}

/// Makes the slots hold `id` still holds available again (the caller may narrow it down).
fn let_go(id: Uuid) -> sea_orm::UpdateMany<slot::Entity> {
    slot::Entity::update_many()
        .col_expr(slot::Column::Status, Expr::value(AVAILABLE))
        .col_expr(slot::Column::HoldId, Expr::value(Option::<Uuid>::None))
        .col_expr(
            slot::Column::HeldUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(slot::Column::HoldId.eq(id))
        .filter(slot::Column::Status.eq(HELD))
}
