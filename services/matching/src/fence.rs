//! The order fence: one practitioner's (or patient's) events applied strictly in their order,
//! while the events of different keys are applied at once, by one replica or several.
//!
//! Scheduling numbers each key's events 1, 2, 3… ([`slotcast_bus::order`]). `order_progress`
//! holds, per key, the number of the last event applied; [`advance`] moves it by one inside the
//! transaction that applies the event, so a redelivered event finds its number passed and
//! changes nothing, and the next event of the key finds it not passed yet until that
//! transaction commits (it is then held and tried again).

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set, TryInsertResult,
    sea_query::Expr,
};
use slotcast_bus::order::OrderStamp;

use crate::entities::order_progress;

/// Where an event stands against its key's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// It is the next: applied in this transaction.
    Next,
    /// Applied before (a redelivery): nothing to do.
    Done,
    /// An earlier event of its key has not been applied yet (`applied` is the last that was).
    Early { applied: i64 },
}

/// Moves the key's progress to `stamp` if `stamp` is its next event, and says where it stood.
pub async fn advance<C: ConnectionTrait>(conn: &C, stamp: OrderStamp) -> Result<Gate, DbErr> {
    let moved = if stamp.seq == 1 {
        let inserted = order_progress::Entity::insert(order_progress::ActiveModel {
            key: Set(stamp.key),
            applied: Set(1),
        })
        .on_conflict_do_nothing_on([order_progress::Column::Key])
        .exec_without_returning(conn)
        .await?;
        match inserted {
            TryInsertResult::Inserted(n) => n,
            TryInsertResult::Conflicted | TryInsertResult::Empty => 0,
        }
    } else {
        order_progress::Entity::update_many()
            .col_expr(order_progress::Column::Applied, Expr::value(stamp.seq))
            .filter(order_progress::Column::Key.eq(stamp.key))
            .filter(order_progress::Column::Applied.eq(stamp.seq - 1))
            .exec(conn)
            .await?
            .rows_affected
    };
    if moved == 1 {
        return Ok(Gate::Next);
    }
    let applied = applied(conn, stamp).await?;
    Ok(if applied >= stamp.seq {
        Gate::Done
    } else {
        Gate::Early { applied }
    })
}

/// Moves the key's progress past `stamp` without applying it, for an event that will never be
/// applied (dead-lettered), once every earlier event of its key is applied; `false` while one is
/// not, so the caller keeps it instead.
pub async fn pass<C: ConnectionTrait>(conn: &C, stamp: OrderStamp) -> Result<bool, DbErr> {
    Ok(match advance(conn, stamp).await? {
        Gate::Next | Gate::Done => true,
        Gate::Early { .. } => false,
    })
}

/// Moves the key's progress to `stamp` whatever it was before: for an event whose earlier
/// events never came (the stream no longer holds them), so the key's later events go on.
pub async fn skip_to<C: ConnectionTrait>(conn: &C, stamp: OrderStamp) -> Result<(), DbErr> {
    order_progress::Entity::insert(order_progress::ActiveModel {
        key: Set(stamp.key),
        applied: Set(stamp.seq),
    })
    .on_conflict(
        sea_orm::sea_query::OnConflict::column(order_progress::Column::Key)
            .update_column(order_progress::Column::Applied)
            .action_and_where(order_progress::Column::Applied.lt(stamp.seq))
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

async fn applied<C: ConnectionTrait>(conn: &C, stamp: OrderStamp) -> Result<i64, DbErr> {
    Ok(order_progress::Entity::find_by_id(stamp.key)
        .one(conn)
        .await?
        .map_or(0, |p| p.applied))
}
