//! `GET /v1/slots/{id}/decisions` (staff): why each patient was or was not told about a slot.
//!
//! - `openings`: each time the slot opened (published, released), with the policy it was
//!   offered under, and for `waves` who each wave told;
//! - `considered`: every patient whose entry fitted the slot when it was decided, in the fair
//!   order (`rank`), with what came of it: `told` (in which wave, in which notification),
//!   `pending` (waiting out the coalescing window; shown as it would be decided now; with
//!   `reason: quiet_hours` and `due_at` when the practitioner's quiet hours hold every message),
//!   `waiting` (a later wave), `not_reached` (the slot was taken, or the waves stopped, first)
//!   or `skipped` with the reason (`expired`, `opted_out`, `capped`, `taken`, `gone`,
//!   `no_longer_waiting`); for a patient told who wants texts, `text`: `now`, `deferred` to
//!   the end of their quiet hours, or `skipped` (`quiet_hours`: every slot starts before then);
//! - `not_considered`: the practitioner's other active entries, as they stand now, and why the
//!   slot is not for them (`outside_window`, `not_earlier`, `gave_it_up`, `expired`),
//!   `joined_after` when they joined after the slot was decided, or `not_decided` while its
//!   opening waits for the rest of its slots.

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::extract::State;
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TryIntoModel};
use serde::Serialize;
use slotcast_kit::{
    ApiJson, Problem,
    auth::Caller,
    openapi::{BadRequest, Forbidden, NotFound, ServerErrors, Unauthorized},
    problem::ApiPath,
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    eligibility::{self, Fit},
    entities::{considered, entry, opening, opening_slot, pending, slot, told, wave_member},
    fit::{OpenSlot, Waiting},
    history::HistoryState,
    projection::{self, Complete},
    vocabulary::{Outcome, Reason, SlotStatus, Texted},
};

pub fn api() -> OpenApiRouter<HistoryState> {
    OpenApiRouter::new().routes(routes!(decisions))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Wave {
    pub wave: i32,
    pub patient_ids: Vec<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpeningView {
    pub batch_id: Uuid,
    /// `broadcast` or `waves`.
    pub policy: String,
    pub decided_at: Option<DateTime<Utc>>,
    /// `waves` only: who each wave told, first wave first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<Wave>,
}

#[derive(Debug, Serialize, ToSchema)]
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
    /// For an offer pending past its window (`reason: quiet_hours`): when it goes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// For a patient told who wants texts: what became of the text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextView>,
}

/// What became of the text of a message, under the patient's quiet hours.
#[derive(Debug, Serialize, ToSchema)]
pub struct TextView {
    /// `now`, `deferred` (to `at`, the end of the quiet hours) or `skipped` (with `reason`).
    pub decision: Texted,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// Shown for an entry the slot fits that joined after the slot was decided.
const JOINED_AFTER: &str = "joined_after";
/// Shown for an entry the slot fits while its opening waits for the rest of its slots.
const NOT_DECIDED: &str = "not_decided";

#[derive(Debug, Serialize, ToSchema)]
pub struct NotConsidered {
    pub patient_id: Uuid,
    pub entry_id: Uuid,
    /// `outside_window`, `not_earlier`, `gave_it_up`, `expired`, `joined_after` or
    /// `not_decided`.
    #[schema(value_type = String)]
    pub reason: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Decisions {
    pub slot_id: Uuid,
    pub practitioner_id: Uuid,
    /// As matching last heard.
    pub status: SlotStatus,
    pub openings: Vec<OpeningView>,
    pub considered: Vec<ConsideredView>,
    pub not_considered: Vec<NotConsidered>,
}

/// Why each patient was or was not told about a slot (staff): its openings and waves, every
/// patient considered in the fair order with what came of it, and the practitioner's other
/// entries with why the slot is not for them.
#[utoipa::path(get, path = "/v1/slots/{id}/decisions", tag = "staff",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The slot's id")),
    responses(
        (status = 200, description = "The decisions about the slot", body = Decisions),
        BadRequest, Unauthorized, Forbidden, NotFound, ServerErrors,
    ))]
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
    let told_rows = told::Entity::find()
        .filter(told::Column::SlotId.eq(slot_id))
        .all(db)
        .await
        .map_err(internal)?;
    let told_here: HashSet<Uuid> = told_rows.iter().map(|t| t.patient_id).collect();
    let mut openings: Vec<OpeningView> = Vec::new();
    let mut waiting: Vec<Complete> = Vec::new();
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
        if o.due_at.is_some() {
            waiting.push(Complete {
                practitioner_id: o.practitioner_id,
                batch_id: o.batch_id,
                slot_ids: projection::slots_of(db, &[o.batch_id])
                    .await
                    .map_err(internal)?
                    .remove(&o.batch_id)
                    .unwrap_or_default(),
                policy: slotcast_events::OfferPolicy::Broadcast,
                trace: String::new(),
            });
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
    let mut recorded = considered::Entity::find()
        .filter(considered::Column::SlotId.eq(slot_id))
        .all(db)
        .await
        .map_err(internal)?;
    let mut pending_rows = pending::Entity::find()
        .filter(pending::Column::SlotId.eq(slot_id))
        .all(db)
        .await
        .map_err(internal)?;
    // An opening waiting out its window is decided when it goes: shown as it would be now.
    if let Some(o) = waiting.first() {
        let (offers, skipped) = projection::offers(db, std::slice::from_ref(o), Utc::now())
            .await
            .map_err(internal)?;
        pending_rows.extend(offers.into_iter().filter(|p| p.slot_id == slot_id));
        for (_, c) in skipped {
            let c = c.try_into_model().map_err(internal)?;
            if c.slot_id == slot_id {
                recorded.push(c);
            }
        }
    }
    let considered = decided(recorded, pending_rows, told_rows);
    let seen: HashSet<Uuid> = considered.iter().map(|c| c.patient_id).collect();
    let decided_at = openings.iter().filter_map(|o| o.decided_at).min();
    let open = OpenSlot::from(&s);
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
        let Some(w) = crate::projection::waiting_of(&e) else {
            continue;
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

/// Every decision about the slot, in the fair order: an offer pending or told is recorded in
/// `pending` or `told`, anything else in `considered`. Where both hold one patient (a later
/// wave told someone who was waiting, a slot opened again), the offer says what came of it,
/// and the first decision their place in the order (pure, unit-tested).
fn decided(
    recorded: Vec<considered::Model>,
    pending: Vec<pending::Model>,
    told: Vec<told::Model>,
) -> Vec<ConsideredView> {
    let mut by_patient: HashMap<Uuid, ConsideredView> = HashMap::new();
    for c in recorded {
        by_patient.insert(
            c.patient_id,
            ConsideredView {
                rank: c.rank,
                patient_id: c.patient_id,
                entry_id: c.entry_id,
                priority: c.priority,
                outcome: c.outcome,
                reason: c.reason,
                wave: c.wave,
                notification_id: c.notification_id,
                at: c.at,
                due_at: None,
                text: None,
            },
        );
    }
    let offers = pending
        .into_iter()
        .map(|p| ConsideredView {
            rank: p.rank,
            patient_id: p.patient_id,
            entry_id: p.entry_id,
            priority: p.priority,
            outcome: Outcome::Pending,
            reason: p.waits_for,
            wave: p.wave,
            notification_id: None,
            at: p.decided_at.unwrap_or(p.due_at),
            due_at: p.waits_for.map(|_| p.due_at),
            text: None,
        })
        .chain(told.into_iter().map(|t| ConsideredView {
            rank: t.rank,
            patient_id: t.patient_id,
            entry_id: t.entry_id,
            priority: t.priority,
            outcome: Outcome::Told,
            reason: None,
            wave: t.wave,
            notification_id: Some(t.notification_id),
            at: t.told_at,
            due_at: None,
            text: t.texted.map(|decision| TextView {
                decision,
                at: t.text_at,
                // Quiet hours are the one reason a text is skipped.
                reason: (decision == Texted::Skipped).then_some(Reason::QuietHours),
            }),
        }));
    // `told` last: a pair is never pending and told at once, but if it were, told wins.
    for offer in offers {
        match by_patient.get_mut(&offer.patient_id) {
            Some(first) => {
                *first = ConsideredView {
                    rank: first.rank,
                    priority: std::mem::take(&mut first.priority),
                    ..offer
                }
            }
            None => {
                by_patient.insert(offer.patient_id, offer);
            }
        }
    }
    let mut all: Vec<ConsideredView> = by_patient.into_values().collect();
    all.sort_by_key(|c| (c.rank, c.at, c.patient_id));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn recorded(patient: u128, rank: i32, outcome: Outcome) -> considered::Model {
        considered::Model {
            slot_id: Uuid::nil(),
            patient_id: Uuid::from_u128(patient),
            entry_id: Uuid::from_u128(patient + 100),
            rank,
            priority: "urgent".into(),
            outcome,
            reason: (outcome == Outcome::Skipped).then_some(Reason::Expired),
            wave: None,
            notification_id: None,
            at: at(0),
        }
    }

    fn pending_for(patient: u128, rank: i32) -> pending::Model {
        pending::Model {
            patient_id: Uuid::from_u128(patient),
            slot_id: Uuid::nil(),
            practitioner_id: Uuid::nil(),
            entry_id: Uuid::from_u128(patient + 100),
            batch_id: Uuid::nil(),
            reason: "new".into(),
            rank,
            priority: "routine".into(),
            wave: None,
            held_until: None,
            due_at: at(2),
            trace: "{}".into(),
            decided_at: Some(at(1)),
            waits_for: None,
        }
    }

    fn told_for(patient: u128, rank: i32, wave: Option<i32>) -> told::Model {
        told::Model {
            slot_id: Uuid::nil(),
            patient_id: Uuid::from_u128(patient),
            notification_id: Uuid::from_u128(patient + 200),
            entry_id: Uuid::from_u128(patient + 100),
            told_at: at(3),
            rank,
            priority: "routine".into(),
            wave,
            texted: None,
            text_at: None,
        }
    }

    #[test]
    fn offers_say_what_came_of_them_and_the_first_decision_keeps_the_place() {
        let shown = decided(
            vec![
                recorded(1, 2, Outcome::Skipped),
                // Waiting in wave 1, told in wave 2, ranked 1 among those left then.
                recorded(4, 4, Outcome::Waiting),
                recorded(5, 5, Outcome::Waiting),
            ],
            vec![pending_for(3, 3)],
            vec![told_for(2, 1, Some(1)), told_for(4, 1, Some(2))],
        );
        let rows: Vec<(u128, i32, Outcome, Option<i32>, &str)> = shown
            .iter()
            .map(|c| {
                (
                    c.patient_id.as_u128(),
                    c.rank,
                    c.outcome,
                    c.wave,
                    c.priority.as_str(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (2, 1, Outcome::Told, Some(1), "routine"),
                (1, 2, Outcome::Skipped, None, "urgent"),
                (3, 3, Outcome::Pending, None, "routine"),
                (4, 4, Outcome::Told, Some(2), "urgent"),
                (5, 5, Outcome::Waiting, None, "urgent"),
            ]
        );
        let told = &shown[0];
        assert_eq!(told.notification_id, Some(Uuid::from_u128(202)));
        assert_eq!(told.at, at(3));
        assert_eq!(
            shown[2].at,
            at(1),
            "a pending offer is shown when it was decided"
        );
        assert_eq!(shown[1].reason, Some(Reason::Expired));
    }
}
