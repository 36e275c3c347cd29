//! The `/v1` API, one module per resource.
//!
//! - `practitioners`, `patients`, `slots`, `appointments`, `waitlist`: the resources.
//! - `offers`: booking links (no login; the signed token is the credential).
//! - `holds`: the exclusive holds matching places on slots under the `waves` policy.
//! - `preferences`: a patient's notification preferences, through the API and through the
//!   signed preferences and one-click unsubscribe links of an email.

mod appointments;
mod holds;
mod offers;
mod patients;
mod practitioners;
mod preferences;
mod slots;
mod waitlist;

use axum::Router;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, QuerySelect, Select};
use slotcast_bus::outbox;
use slotcast_events::{CloudEvent, Event};

use crate::{AppState, SOURCE};

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(practitioners::router())
        .merge(patients::router())
        .merge(slots::router())
        .merge(appointments::router())
        .merge(waitlist::router())
        .merge(offers::router())
        .merge(preferences::router())
        .with_state(state)
}

/// The hold routes, layered on their own (a larger body limit); merge them after the common
/// layers are applied to [`router`].
pub fn holds_router(state: AppState) -> Router {
    holds::router(state)
}

/// Writes `data` as an event into the outbox, inside the caller's transaction.
async fn emit<C: ConnectionTrait, T: Event>(conn: &C, data: T) -> Result<(), DbErr> {
    outbox::enqueue(conn, &CloudEvent::new(SOURCE, data)).await
}

/// `SELECT ... FOR UPDATE` on Postgres, so concurrent writers of one row wait for each other;
/// SQLite serialises writers already.
fn for_update<E: EntityTrait, C: ConnectionTrait>(select: Select<E>, conn: &C) -> Select<E> {
    if conn.get_database_backend() == DbBackend::Postgres {
        select.lock_exclusive()
    } else {
        select
    }
}
