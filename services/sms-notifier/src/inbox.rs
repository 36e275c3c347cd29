//! The texts patients send: each received once by its gateway id, its answer decided once and
//! sent once; and the numbers that texted STOP.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
    sea_query::OnConflict,
};

use crate::entities::{inbound, opt_out};

/// Where a received text stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// New, or received before without an answer decided: decide one.
    Undecided,
    /// Its answer was decided but not sent (the gateway failed): send this.
    Decided(String),
    /// Answered already: nothing more to do.
    Answered,
}

/// Records the text `gateway_id` from `phone` asking `asked`, once; says where it stands.
pub async fn receive(
    db: &DatabaseConnection,
    gateway_id: &str,
    phone: &str,
    asked: &str,
) -> Result<Received, DbErr> {
    inbound::Entity::insert(inbound::ActiveModel {
        gateway_id: Set(gateway_id.to_owned()),
        phone: Set(phone.to_owned()),
        asked: Set(asked.to_owned()),
        outcome: Set(None),
        reply: Set(None),
        received_at: Set(Utc::now()),
        answered_at: Set(None),
    })
    .on_conflict(
        OnConflict::column(inbound::Column::GatewayId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    let row = inbound::Entity::find_by_id(gateway_id.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("inbound text {gateway_id}")))?;
    Ok(match (row.answered_at, row.reply) {
        (Some(_), _) => Received::Answered,
        (None, Some(reply)) => Received::Decided(reply),
        (None, None) => Received::Undecided,
    })
}

/// Records what came of the text and the answer to send.
pub async fn decide(
    db: &DatabaseConnection,
    gateway_id: &str,
    outcome: &str,
    reply: &str,
) -> Result<(), DbErr> {
    inbound::ActiveModel {
        gateway_id: Set(gateway_id.to_owned()),
        outcome: Set(Some(outcome.to_owned())),
        reply: Set(Some(reply.to_owned())),
        ..Default::default()
    }
    .update(db)
    .await
    .map(drop)
}

/// Records the answer sent.
pub async fn answered(db: &DatabaseConnection, gateway_id: &str) -> Result<(), DbErr> {
    inbound::ActiveModel {
        gateway_id: Set(gateway_id.to_owned()),
        answered_at: Set(Some(Utc::now())),
        ..Default::default()
    }
    .update(db)
    .await
    .map(drop)
}

/// Records that `phone` texted STOP; true if it had not already.
pub async fn stop(db: &DatabaseConnection, phone: &str) -> Result<bool, DbErr> {
    let inserted = opt_out::Entity::insert(opt_out::ActiveModel {
        phone: Set(phone.to_owned()),
        stopped_at: Set(Utc::now()),
    })
    .on_conflict_do_nothing_on([opt_out::Column::Phone])
    .exec_without_returning(db)
    .await?;
    Ok(matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0))
}

/// Records that `phone` texted START; true if it had texted STOP.
pub async fn start(db: &DatabaseConnection, phone: &str) -> Result<bool, DbErr> {
    let removed = opt_out::Entity::delete_many()
        .filter(opt_out::Column::Phone.eq(phone))
        .exec(db)
        .await?;
    Ok(removed.rows_affected > 0)
}

/// Whether `phone` texted STOP (and not START since).
pub async fn is_stopped(db: &DatabaseConnection, phone: &str) -> Result<bool, DbErr> {
    Ok(opt_out::Entity::find_by_id(phone.to_owned())
        .one(db)
        .await?
        .is_some())
}
