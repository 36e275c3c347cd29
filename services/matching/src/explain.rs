//! `GET /v1/slots/{id}/decisions` (staff): why each patient was or was not told about a slot.
//!
//! - `openings`: each time the slot opened (published, released), with the policy it was
//!   offered under, and for `waves` who each wave told;
//! - `considered`: every patient whose entry fitted the slot when it was decided, in the fair
//!   order (`rank`), with what came of it: `told` (in which wave, in which notification),
//!   `pending` (waiting out the coalescing window), `waiting` (a later wave), `not_reached`
//!   (the slot was taken, or the waves stopped, first) or `skipped` with the reason (`expired`,
//!   `opted_out`, `capped`, `taken`, `gone`, `no_longer_waiting`);
//! - `not_considered`: the practitioner's other active entries, as they stand now, and why the
//!   slot is not for them (`outside_window`, `not_earlier`, `gave_it_up`, `expired`),
//!   `joined_after` when they joined after the slot was decided, or `not_decided` while its
//!   opening waits for the rest of its slots.

use std::collections::{BTreeMap, HashSet};

use axum::{Router, extract::State, routing::get};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;
use slotcast_events::{Priority, WaitKind};
use slotcast_kit::{ApiJson, Problem, auth::Caller, problem::ApiPath};
use uuid::Uuid;

use crate::{
    eligibility::{self, Fit},
    entities::{considered, entry, opening, opening_slot, slot, told, wave_member},
    fit::{OpenSlot, Waiting},
    history::HistoryState,
    vocabulary::{Outcome, Reason, SlotStatus},
};

pub fn router(state: HistoryState) -> Router {
    Router::new()
        .route("/v1/slots/{id}/decisions", get(decisions))
        .with_state(state)
}

#[derive(Debug, Serialize)]
pub struct Wave {
    pub wave: i32,
    pub patient_ids: Vec<Uuid>,
}

#[derive(Debug, Serialize)]
pub struct OpeningView {
    pub batch_id: Uuid,
    /// `broadcast` or `waves`.
    pub policy: String,
    pub decided_at: Option<DateTime<Utc>>,
    /// `waves` only: who each wave told, first wave first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<Wave>,
}

#[derive(Debug, Serialize)]
pub struct ConsideredView {
    pub rank: i32,
    pub patient_id: Uuid,
    pub entry_id: Uuid,
    pub priority: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wave: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

/// Shown for an entry the slot fits that joined after the slot was decided.
const JOINED_AFTER: &str = "joined_after";
/// Shown for an entry the slot fits while its opening waits for the rest of its slots.
const NOT_DECIDED: &str = "not_decided";

#[derive(Debug, Serialize)]
pub struct NotConsidered {
    pub patient_id: Uuid,
    pub entry_id: Uuid,
    pub reason: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Decisions {
    pub slot_id: Uuid,
    pub practitioner_id: Uuid,
    /// As matching last heard.
    pub status: SlotStatus,
    pub openings: Vec<OpeningView>,
    pub considered: Vec<ConsideredView>,
    pub not_considered: Vec<NotConsidered>,
}

async fn decisions(
    caller: Caller,
    State(state): State<HistoryState>,
    ApiPath(slot_id): ApiPath<Uuid>,
) -> Result<ApiJson<Decisions>, Problem> {
    caller.require_staff()?;
    let internal = |e: sea_orm::DbErr| Problem::internal(&e.into());
    // One snapshot: the openings, waves, offers and outcomes of one moment.
    let txn = slotcast_kit::db::snapshot(&state.db)
        .await
        .map_err(internal)?;
    let db = &txn;
    let s = slot::Entity::find_by_id(slot_id)
        .one(db)
        .await
        .map_err(internal)?
        .ok_or_else(|| Problem::not_found("matching has heard of no such slot"))?;
    let batch_ids: Vec<Uuid> = opening_slot::Entity::find()
        .filter(opening_slot::Column::SlotId.eq(slot_id))
        .all(db)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|o| o.batch_id)
        .collect();
    let told_here: HashSet<Uuid> = told::Entity::find()
        .filter(told::Column::SlotId.eq(slot_id))
        .all(db)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|t| t.patient_id)
        .collect();
    let mut openings: Vec<OpeningView> = Vec::new();
    for o in opening::Entity::find()
        .filter(opening::Column::BatchId.is_in(batch_ids.clone()))
        .all(db)
        .await
        .map_err(internal)?
    {
        let mut waves: BTreeMap<i32, Vec<Uuid>> = BTreeMap::new();
        for m in wave_member::Entity::find()
            .filter(wave_member::Column::BatchId.eq(o.batch_id))
            .all(db)
            .await
            .map_err(internal)?
        {
            // Who the wave told about this slot (a member may have been told about another).
            if told_here.contains(&m.patient_id) {
                waves.entry(m.wave).or_default().push(m.patient_id);
            }
        }
        openings.push(OpeningView {
            batch_id: o.batch_id,
            policy: o.policy,
            decided_at: o.decided_at,
            waves: waves
                .into_iter()
                .map(|(wave, mut patient_ids)| {
                    patient_ids.sort();
                    Wave { wave, patient_ids }
                })
                .collect(),
        });
    }
    openings.sort_by_key(|o| o.decided_at);
    let considered: Vec<ConsideredView> = considered::Entity::find()
        .filter(considered::Column::SlotId.eq(slot_id))
        .order_by_asc(considered::Column::Rank)
        .order_by_asc(considered::Column::At)
        .all(db)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|c| ConsideredView {
            rank: c.rank,
            patient_id: c.patient_id,
            entry_id: c.entry_id,
            priority: c.priority,
            outcome: c.outcome,
            reason: c.reason,
            wave: c.wave,
            notification_id: c.notification_id,
            at: c.at,
        })
        .collect();
    let seen: HashSet<Uuid> = considered.iter().map(|c| c.patient_id).collect();
    let decided_at = openings.iter().filter_map(|o| o.decided_at).min();
    let open = OpenSlot {
        id: s.id,
        starts_at: s.starts_at,
        ends_at: s.ends_at,
        released_by: s.released_by,
    };
    let now = Utc::now();
    let mut not_considered: Vec<(Waiting, NotConsidered)> = Vec::new();
    for e in entry::Entity::find()
        .filter(entry::Column::PractitionerId.eq(s.practitioner_id))
        .filter(entry::Column::Active.eq(true))
        .all(db)
        .await
        .map_err(internal)?
    {
        if seen.contains(&e.patient_id) {
            continue;
        }
        let Some(kind) = WaitKind::parse(&e.kind) else {
            continue;
        };
        let w = Waiting {
            entry_id: e.id,
            patient_id: e.patient_id,
            kind,
            held_starts_at: e.held_starts_at,
            earliest: e.earliest,
            latest: e.latest,
            joined_at: e.joined_at,
            priority: Priority::parse(&e.priority).unwrap_or_default(),
        };
        // Why the slot is not for the entry itself, whatever has become of the slot since.
        let entry = eligibility::Entry {
            active: true,
            expires_at: e.expires_at,
        };
        let why = eligibility::why_not_for_entry(now, &open, Some(entry), Fit::Check(&w));
        let reason = match why {
            Some(why) => why.as_str(),
            None if decided_at.is_some_and(|d| e.joined_at > d) => JOINED_AFTER,
            None => NOT_DECIDED,
        };
        not_considered.push((
            w,
            NotConsidered {
                patient_id: e.patient_id,
                entry_id: e.id,
                reason,
            },
        ));
    }
    txn.commit().await.map_err(internal)?;
    not_considered.sort_by_key(|(w, _)| w.order_key());
    Ok(ApiJson(Decisions {
        slot_id,
        practitioner_id: s.practitioner_id,
        status: s.status,
        openings,
        considered,
        not_considered: not_considered.into_iter().map(|(_, n)| n).collect(),
    }))
}
