//! Applying one scheduling event to matching's projection: one function per event.

use std::collections::BTreeMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
    sea_query::{Expr, OnConflict},
};
use slotcast_events::{
    CloudEvent, OfferClaimed, OfferLost, OfferPolicy, PatientPreferencesChanged, PatientRegistered,
    PractitionerPolicyChanged, PractitionerRegistered, ReleaseReason, SlotBooked, SlotCreated,
    SlotReleased, SlotWithdrawn, WaitlistClosed, WaitlistJoined, WaitlistUpdated,
};
use uuid::Uuid;

use crate::{
    entities::{entry, history, opening, opening_slot, patient, pending, practitioner, slot},
    inbox::Input,
    policy::PolicyConfig,
    projection::{self, Complete, insert_new, settle},
    vocabulary::{HistoryKind, Reason, SlotStatus},
};

/// Applies one event on `txn`; returns how many openings it settled.
pub async fn apply<C: ConnectionTrait>(
    txn: &C,
    policy: &PolicyConfig,
    input: Input,
) -> Result<usize, DbErr> {
    match input {
        Input::PractitionerRegistered(ev) => practitioner_registered(txn, ev).await,
        Input::PractitionerPolicyChanged(ev) => practitioner_policy_changed(txn, ev).await,
        Input::PatientRegistered(ev) => patient_registered(txn, ev).await,
        Input::PatientPreferencesChanged(ev) => patient_preferences_changed(txn, ev).await,
        Input::WaitlistUpdated(ev) => waitlist_updated(txn, ev).await,
        Input::WaitlistJoined(ev) => waitlist_joined(txn, ev).await,
        Input::WaitlistClosed(ev) => waitlist_closed(txn, ev).await,
        Input::SlotCreated(ev) => slot_created(txn, policy, ev).await,
        Input::SlotReleased(ev) => slot_released(txn, policy, ev).await,
        Input::SlotBooked(ev) => slot_booked(txn, ev).await,
        Input::SlotWithdrawn(ev) => slot_withdrawn(txn, ev).await,
        Input::OfferClaimed(ev) => offer_claimed(txn, ev).await,
        Input::OfferLost(ev) => offer_lost(txn, ev).await,
        Input::Ignored => Ok(0),
    }
}

/// A practitioner's quiet hours (the offering policy comes with each slot event); offers waiting
/// for their old quiet hours fall due now. Registration comes first in the practitioner's
/// order, so the row is there.
async fn practitioner_policy_changed<C: ConnectionTrait>(
    txn: &C,
    ev: CloudEvent<PractitionerPolicyChanged>,
) -> Result<usize, DbErr> {
    let e = ev.data;
    practitioner::Entity::update_many()
        .col_expr(
            practitioner::Column::QuietHours,
            Expr::value(e.quiet_hours.map(String::from)),
        )
        .col_expr(
            practitioner::Column::QuietAllChannels,
            Expr::value(e.quiet_hours_all_channels),
        )
        .filter(practitioner::Column::Id.eq(e.practitioner_id))
        .exec(txn)
        .await?;
    // What waits for the old quiet hours is judged again at once under the new ones.
    pending::Entity::update_many()
        .col_expr(pending::Column::DueAt, Expr::value(chrono::Utc::now()))
        .filter(pending::Column::PractitionerId.eq(e.practitioner_id))
        .filter(pending::Column::WaitsFor.eq(Reason::QuietHours))
        .exec(txn)
        .await?;
    Ok(0)
}

/// A practitioner's card, the newest registration winning.
async fn practitioner_registered<C: ConnectionTrait>(
    txn: &C,
    ev: CloudEvent<PractitionerRegistered>,
) -> Result<usize, DbErr> {
    let e = ev.data;
    practitioner::Entity::insert(practitioner::ActiveModel {
        id: Set(e.practitioner_id),
        name: Set(e.name),
        specialty: Set(e.specialty),
        timezone: Set(e.timezone),
        consultation_fee_cents: Set(e.consultation_fee_cents),
        currency: Set(e.currency),
        quiet_hours: Set(None),
        quiet_all_channels: Set(false),
    })
    .on_conflict(upsert(
        [practitioner::Column::Id],
        [
            practitioner::Column::Name,
            practitioner::Column::Specialty,
            practitioner::Column::Timezone,
            practitioner::Column::ConsultationFeeCents,
            practitioner::Column::Currency,
        ],
    ))
    .exec_without_returning(txn)
    .await?;
    Ok(0)
}

/// A patient's contact, the newest registration winning; preferences stay.
async fn patient_registered<C: ConnectionTrait>(
    txn: &C,
    ev: CloudEvent<PatientRegistered>,
) -> Result<usize, DbErr> {
    let e = ev.data;
    patient::Entity::insert(patient::ActiveModel {
        id: Set(e.patient_id),
        name: Set(e.name),
        email: Set(e.email),
        locale: Set(e.locale),
        timezone: Set(e.timezone),
        email_enabled: Set(true),
        inapp_enabled: Set(true),
        sms_enabled: Set(false),
        phone: Set(e.phone),
    })
    .on_conflict(upsert(
        [patient::Column::Id],
        [
            patient::Column::Name,
            patient::Column::Email,
            patient::Column::Locale,
            patient::Column::Timezone,
            patient::Column::Phone,
        ],
    ))
    .exec_without_returning(txn)
    .await?;
    Ok(0)
}

/// The channels a patient wants.
async fn patient_preferences_changed<C: ConnectionTrait>(
    txn: &C,
    ev: CloudEvent<PatientPreferencesChanged>,
) -> Result<usize, DbErr> {
    let e = ev.data;
    patient::Entity::update_many()
        .col_expr(patient::Column::EmailEnabled, Expr::value(e.email))
        .col_expr(patient::Column::InappEnabled, Expr::value(e.inapp))
        .col_expr(patient::Column::SmsEnabled, Expr::value(e.sms))
        .filter(patient::Column::Id.eq(e.patient_id))
        .exec(txn)
        .await?;
    Ok(0)
}

/// An entry's priority and expiry, as they are now.
async fn waitlist_updated<C: ConnectionTrait>(
    txn: &C,
    ev: CloudEvent<WaitlistUpdated>,
) -> Result<usize, DbErr> {
    let e = ev.data;
    entry::Entity::update_many()
        .col_expr(entry::Column::Priority, Expr::value(e.priority.as_str()))
        .col_expr(entry::Column::ExpiresAt, Expr::value(e.expires_at))
        .filter(entry::Column::Id.eq(e.entry_id))
        .exec(txn)
        .await?;
    Ok(0)
}

/// A new entry; a redelivered one stays as it is.
async fn waitlist_joined<C: ConnectionTrait>(
    txn: &C,
    ev: CloudEvent<WaitlistJoined>,
) -> Result<usize, DbErr> {
    let e = ev.data;
    entry::Entity::insert(entry::ActiveModel {
        id: Set(e.entry_id),
        patient_id: Set(e.patient_id),
        practitioner_id: Set(e.practitioner_id),
        kind: Set(e.kind.as_str().to_owned()),
        held_starts_at: Set(e.held_starts_at),
        earliest: Set(e.earliest),
        latest: Set(e.latest),
        active: Set(true),
        joined_at: Set(e.joined_at),
        priority: Set(e.priority.as_str().to_owned()),
        expires_at: Set(e.expires_at),
    })
    .on_conflict_do_nothing_on([entry::Column::Id])
    .exec_without_returning(txn)
    .await?;
    Ok(0)
}

/// An entry stops waiting.
async fn waitlist_closed<C: ConnectionTrait>(
    txn: &C,
    ev: CloudEvent<WaitlistClosed>,
) -> Result<usize, DbErr> {
    let e = ev.data;
    entry::Entity::update_many()
        .col_expr(entry::Column::Active, Expr::value(false))
        .filter(entry::Column::Id.eq(e.entry_id))
        .exec(txn)
        .await?;
    Ok(0)
}

/// A published slot, open, in its opening (decided once all its slots are in).
async fn slot_created<C: ConnectionTrait>(
    txn: &C,
    policy: &PolicyConfig,
    ev: CloudEvent<SlotCreated>,
) -> Result<usize, DbErr> {
    let trace = crate::projection::current_trace();
    slots_created(txn, policy, vec![(ev, trace)]).await
}

/// Published slots, each open in its opening, with a statement per kind of row for them all
/// (not one per slot); each with the trace its offers continue. The slots are new and of keys
/// whose events in between, if any, do not touch them, so applying them together is applying
/// them one after the other.
pub async fn slots_created<C: ConnectionTrait>(
    txn: &C,
    policy: &PolicyConfig,
    events: Vec<(CloudEvent<SlotCreated>, String)>,
) -> Result<usize, DbErr> {
    let history: Vec<history::ActiveModel> = events
        .iter()
        .map(|(ev, _)| {
            history_row(
                ev,
                ev.data.slot_id,
                HistoryKind::Published,
                None,
                None,
                None,
            )
        })
        .collect();
    insert_new(txn, &history, &[history::Column::EventId]).await?;
    // A redelivered `created` must not reopen a slot booked since: insert only.
    let slots: Vec<slot::ActiveModel> = events
        .iter()
        .map(|(ev, _)| {
            let e = &ev.data;
            slot::ActiveModel {
                id: Set(e.slot_id),
                practitioner_id: Set(e.practitioner_id),
                starts_at: Set(e.starts_at),
                ends_at: Set(e.ends_at),
                status: Set(SlotStatus::Open),
                released_by: Set(None),
            }
        })
        .collect();
    insert_new(txn, &slots, &[slot::Column::Id]).await?;
    let added: Vec<(Opening, Uuid)> = events
        .into_iter()
        .map(|(ev, trace)| {
            let e = ev.data;
            let opening = Opening {
                batch_id: e.batch_id,
                practitioner_id: e.practitioner_id,
                size: e.batch_size,
                policy: e.offer_policy,
                trace,
            };
            (opening, e.slot_id)
        })
        .collect();
    add_to_openings(txn, policy, &added).await
}

/// A booked slot open again, never offered back to who gave it up, in its opening.
async fn slot_released<C: ConnectionTrait>(
    txn: &C,
    policy: &PolicyConfig,
    ev: CloudEvent<SlotReleased>,
) -> Result<usize, DbErr> {
    let reason = match ev.data.reason {
        ReleaseReason::Cancelled => "cancelled",
        ReleaseReason::MovedUp => "moved_up",
    };
    let (slot_id, by) = (ev.data.slot_id, ev.data.released_by);
    record(
        txn,
        &ev,
        slot_id,
        HistoryKind::Released,
        by,
        None,
        Some(reason),
    )
    .await?;
    let e = ev.data;
    slot::Entity::insert(slot::ActiveModel {
        id: Set(e.slot_id),
        practitioner_id: Set(e.practitioner_id),
        starts_at: Set(e.starts_at),
        ends_at: Set(e.ends_at),
        status: Set(SlotStatus::Open),
        released_by: Set(e.released_by),
    })
    .on_conflict(upsert(
        [slot::Column::Id],
        [slot::Column::Status, slot::Column::ReleasedBy],
    ))
    .exec_without_returning(txn)
    .await?;
    let opening = Opening {
        batch_id: e.batch_id,
        practitioner_id: e.practitioner_id,
        size: e.batch_size,
        policy: e.offer_policy,
        trace: crate::projection::current_trace(),
    };
    add_to_openings(txn, policy, &[(opening, e.slot_id)]).await
}

/// A slot booked: nobody is told of it any more.
async fn slot_booked<C: ConnectionTrait>(
    txn: &C,
    ev: CloudEvent<SlotBooked>,
) -> Result<usize, DbErr> {
    let (slot_id, by) = (ev.data.slot_id, Some(ev.data.patient_id));
    record(txn, &ev, slot_id, HistoryKind::Booked, by, None, None).await?;
    let e = ev.data;
    set_slot_status(txn, e.slot_id, SlotStatus::Booked).await?;
    Ok(0)
}

/// A slot withdrawn: nobody is told of it any more.
async fn slot_withdrawn<C: ConnectionTrait>(
    txn: &C,
    ev: CloudEvent<SlotWithdrawn>,
) -> Result<usize, DbErr> {
    let slot_id = ev.data.slot_id;
    record(txn, &ev, slot_id, HistoryKind::Withdrawn, None, None, None).await?;
    let e = ev.data;
    set_slot_status(txn, e.slot_id, SlotStatus::Withdrawn).await?;
    Ok(0)
}

/// A booking link that won its slot, in the slot's history.
async fn offer_claimed<C: ConnectionTrait>(
    txn: &C,
    ev: CloudEvent<OfferClaimed>,
) -> Result<usize, DbErr> {
    let e = &ev.data;
    let (slot_id, patient, nid) = (e.slot_id, e.patient_id, e.notification_id);
    let (patient, nid) = (Some(patient), Some(nid));
    record(txn, &ev, slot_id, HistoryKind::Claimed, patient, nid, None).await?;
    Ok(0)
}

/// A booking link that lost its slot, in the slot's history.
async fn offer_lost<C: ConnectionTrait>(
    txn: &C,
    ev: CloudEvent<OfferLost>,
) -> Result<usize, DbErr> {
    let e = &ev.data;
    let (slot_id, patient, nid) = (e.slot_id, e.patient_id, e.notification_id);
    let reason = Some(e.reason.as_str());
    let (patient, nid) = (Some(patient), Some(nid));
    record(txn, &ev, slot_id, HistoryKind::Lost, patient, nid, reason).await?;
    Ok(0)
}

/// `ON CONFLICT (columns) DO UPDATE SET update...`: the newest registration wins.
fn upsert<C: sea_orm::sea_query::IntoIden>(
    columns: impl IntoIterator<Item = C>,
    update: impl IntoIterator<Item = C>,
) -> OnConflict {
    OnConflict::columns(columns)
        .update_columns(update)
        .to_owned()
}

/// Records that each slot belongs to its opening; settles the openings whose slots are then all
/// in ([`settle`]). The opening rows are locked first (in one order), so two replicas handling
/// slots of one batch at once neither both settle nor both miss the last slot.
async fn add_to_openings<C: ConnectionTrait>(
    conn: &C,
    policy: &PolicyConfig,
    added: &[(Opening, Uuid)],
) -> Result<usize, DbErr> {
    let mut openings: BTreeMap<Uuid, &Opening> = BTreeMap::new();
    for (o, _) in added {
        openings.entry(o.batch_id).or_insert(o);
    }
    let rows: Vec<opening::ActiveModel> = openings
        .values()
        .map(|o| opening::ActiveModel {
            batch_id: Set(o.batch_id),
            practitioner_id: Set(o.practitioner_id),
            expected: Set(i32::try_from(o.size).unwrap_or(i32::MAX)),
            decided_at: Set(None),
            policy: Set(o.policy.as_str().to_owned()),
            due_at: Set(None),
            trace: Set(o.trace.clone()),
        })
        .collect();
    insert_new(conn, &rows, &[opening::Column::BatchId]).await?;
    let batch_ids: Vec<Uuid> = openings.keys().copied().collect();
    let mut open: Vec<opening::Model> = Vec::with_capacity(batch_ids.len());
    for run in slotcast_bus::rows::ids(&batch_ids) {
        let mut lock = opening::Entity::find()
            .filter(opening::Column::BatchId.is_in(run.iter().copied()))
            .order_by_asc(opening::Column::BatchId);
        if conn.get_database_backend() == DbBackend::Postgres {
            lock = lock.lock_exclusive();
        }
        open.extend(lock.all(conn).await?);
    }
    if open.len() < batch_ids.len() {
        return Err(DbErr::RecordNotFound(format!(
            "{} of openings {batch_ids:?}",
            batch_ids.len() - open.len()
        )));
    }
    // A settled opening only gains the slot: its offers go out with the slots it had.
    open.retain(|o| o.decided_at.is_none() && o.due_at.is_none());
    let members: Vec<opening_slot::ActiveModel> = added
        .iter()
        .map(|(o, slot_id)| opening_slot::ActiveModel {
            batch_id: Set(o.batch_id),
            slot_id: Set(*slot_id),
        })
        .collect();
    insert_new(
        conn,
        &members,
        &[opening_slot::Column::BatchId, opening_slot::Column::SlotId],
    )
    .await?;
    let undecided: Vec<Uuid> = open.iter().map(|o| o.batch_id).collect();
    let mut slots_of = projection::slots_of(conn, &undecided).await?;
    let complete: Vec<Complete> = open
        .iter()
        .filter_map(|o| {
            let slot_ids = slots_of.remove(&o.batch_id).unwrap_or_default();
            if (slot_ids.len() as i64) < i64::from(o.expected) {
                return None;
            }
            Some(Complete {
                practitioner_id: o.practitioner_id,
                batch_id: o.batch_id,
                slot_ids,
                policy: OfferPolicy::parse(&o.policy).unwrap_or_default(),
                trace: o.trace.clone(),
            })
        })
        .collect();
    if complete.is_empty() {
        return Ok(0);
    }
    settle(conn, policy, &complete).await
}

/// An opening as a slot event describes it.
struct Opening {
    batch_id: Uuid,
    practitioner_id: Uuid,
    size: u32,
    policy: OfferPolicy,
    /// The trace of the event that brought the slot: the opening's offers continue it.
    trace: String,
}

/// Adds `event` to the history of `slot_id`, once (keyed by the event id).
async fn record<C: ConnectionTrait, T>(
    conn: &C,
    event: &CloudEvent<T>,
    slot_id: Uuid,
    kind: HistoryKind,
    patient_id: Option<Uuid>,
    notification_id: Option<Uuid>,
    reason: Option<&str>,
) -> Result<(), DbErr> {
    let row = history_row(event, slot_id, kind, patient_id, notification_id, reason);
    insert_new(conn, &[row], &[history::Column::EventId]).await
}

/// The history row of `event` about `slot_id`.
fn history_row<T>(
    event: &CloudEvent<T>,
    slot_id: Uuid,
    kind: HistoryKind,
    patient_id: Option<Uuid>,
    notification_id: Option<Uuid>,
    reason: Option<&str>,
) -> history::ActiveModel {
    history::ActiveModel {
        event_id: Set(event.id),
        slot_id: Set(slot_id),
        at: Set(event.time),
        kind: Set(kind),
        patient_id: Set(patient_id),
        notification_id: Set(notification_id),
        reason: Set(reason.map(str::to_owned)),
    }
}

async fn set_slot_status<C: ConnectionTrait>(
    conn: &C,
    slot_id: Uuid,
    status: SlotStatus,
) -> Result<(), DbErr> {
    slot::Entity::update_many()
        .col_expr(slot::Column::Status, Expr::value(status))
        .filter(slot::Column::Id.eq(slot_id))
        .exec(conn)
        .await?;
    Ok(())
}
