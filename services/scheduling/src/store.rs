//! What every use-case writes with: events into the outbox, and row locks.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, QuerySelect, Select};
use slotcast_bus::outbox;
use slotcast_events::{CloudEvent, Event};

use crate::SOURCE;

/// Writes `data` as an event into the outbox, inside the caller's transaction.
pub async fn emit<C: ConnectionTrait, T: Event>(conn: &C, data: T) -> Result<(), DbErr> {
    outbox::enqueue(conn, &CloudEvent::new(SOURCE, data)).await
}

/// `SELECT ... FOR UPDATE` on Postgres, so concurrent writers of one row wait for each other;
/// SQLite serialises writers already.
pub fn for_update<E: EntityTrait, C: ConnectionTrait>(select: Select<E>, conn: &C) -> Select<E> {
    if conn.get_database_backend() == DbBackend::Postgres {
        select.lock_exclusive()
    } else {
        select
    }
}
