//! `GET /v1/slots/{id}/offers` (staff): a slot's offer history. Who was told about it, in which
//! notification and when; who claimed it from their link, who lost the race and why; and every
//! change of the slot (published, booked, released, withdrawn), in order.
//!
//! Matching serves it because matching made the offers; scheduling's claim outcomes reach it as
//! `offer.claimed` and `offer.lost` events.

use std::sync::Arc;

use axum::extract::State;
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;
use slotcast_kit::{
    ApiJson, Problem,
    auth::{Authenticator, Caller},
    openapi::{BadRequest, Forbidden, NotFound, ServerErrors, Unauthorized},
    problem::ApiPath,
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    entities::{history, slot, told},
    vocabulary::{HistoryKind, SlotStatus},
};

#[derive(Clone)]
pub struct HistoryState {
    pub db: DatabaseConnection,
    pub auth: Arc<Authenticator>,
}

impl axum::extract::FromRef<HistoryState> for Arc<Authenticator> {
    fn from_ref(state: &HistoryState) -> Self {
        state.auth.clone()
    }
}

pub fn api() -> OpenApiRouter<HistoryState> {
    OpenApiRouter::new().routes(routes!(slot_offers))
}

/// One patient told about the slot, and what came of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Offered {
    pub patient_id: Uuid,
    pub notification_id: Uuid,
    pub entry_id: Uuid,
    pub told_at: DateTime<Utc>,
    /// `claimed` (booked it from the link), `lost` (claimed, did not get it) or `none`.
    #[schema(value_type = String)]
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_reason: Option<String>,
}

/// One thing that happened to the slot.
#[derive(Debug, Serialize, ToSchema)]
pub struct Happened {
    pub at: DateTime<Utc>,
    /// `published`, `offered`, `claimed`, `lost`, `booked`, `released` or `withdrawn`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlotOffers {
    pub slot_id: Uuid,
    /// As matching last heard.
    pub status: Option<SlotStatus>,
    /// In the order they were told.
    pub offered: Vec<Offered>,
    /// Oldest first.
    pub history: Vec<Happened>,
}

/// A slot's offer history (staff): who was told about it, in which notification and when, what
/// came of each offer, and every change of the slot in order.
#[utoipa::path(get, path = "/v1/slots/{id}/offers", tag = "staff",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The slot's id")),
    responses(
        (status = 200, description = "The slot's offers and history", body = SlotOffers),
        BadRequest, Unauthorized, Forbidden, NotFound, ServerErrors,
    ))]
async fn slot_offers(
    caller: Caller,
    State(state): State<HistoryState>,
    ApiPath(slot_id): ApiPath<Uuid>,
) -> Result<ApiJson<SlotOffers>, Problem> {
    caller.require_staff()?;
    let internal = |e: sea_orm::DbErr| Problem::internal(&e.into());
    // One snapshot: a `slot.booked` committed between the reads would otherwise show in the
    // history while the status still says `open`.
    let txn = slotcast_kit::db::snapshot(&state.db)
        .await
        .map_err(internal)?;
    let status = slot::Entity::find_by_id(slot_id)
        .one(&txn)
        .await
        .map_err(internal)?
        .map(|s| s.status);
    let told = told::Entity::find()
        .filter(told::Column::SlotId.eq(slot_id))
        .order_by_asc(told::Column::ToldAt)
        .order_by_asc(told::Column::PatientId)
        .all(&txn)
        .await
        .map_err(internal)?;
    let events = history::Entity::find()
        .filter(history::Column::SlotId.eq(slot_id))
        .order_by_asc(history::Column::At)
        .order_by_asc(history::Column::EventId)
        .all(&txn)
        .await
        .map_err(internal)?;
    txn.commit().await.map_err(internal)?;
    if status.is_none() && told.is_empty() && events.is_empty() {
        return Err(Problem::not_found("matching has heard of no such slot"));
    }
    Ok(ApiJson(assemble(slot_id, status, told, events)))
}

/// Puts the offers and the events together (pure, unit-tested).
fn assemble(
    slot_id: Uuid,
    status: Option<SlotStatus>,
    told: Vec<told::Model>,
    events: Vec<history::Model>,
) -> SlotOffers {
    let offered = told
        .iter()
        .map(|t| {
            let mine = |kind: HistoryKind| {
                events.iter().rev().find(|e| {
                    e.kind == kind
                        && e.patient_id == Some(t.patient_id)
                        && e.notification_id == Some(t.notification_id)
                })
            };
            let (outcome, lost_reason) = if mine(HistoryKind::Claimed).is_some() {
                ("claimed", None)
            } else if let Some(lost) = mine(HistoryKind::Lost) {
                ("lost", lost.reason.clone())
            } else {
                ("none", None)
            };
            Offered {
                patient_id: t.patient_id,
                notification_id: t.notification_id,
                entry_id: t.entry_id,
                told_at: t.told_at,
                outcome,
                lost_reason,
            }
        })
        .collect();
    let mut history: Vec<Happened> = told
        .into_iter()
        .map(|t| Happened {
            at: t.told_at,
            kind: "offered".to_owned(),
            patient_id: Some(t.patient_id),
            notification_id: Some(t.notification_id),
            reason: None,
        })
        .chain(events.into_iter().map(|e| Happened {
            at: e.at,
            kind: e.kind.as_str().to_owned(),
            patient_id: e.patient_id,
            notification_id: e.notification_id,
            reason: e.reason,
        }))
        .collect();
    // Stable: at one instant, the order above (offers before what came of them) holds.
    history.sort_by_key(|h| h.at);
    SlotOffers {
        slot_id,
        status,
        offered,
        history,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn event(
        s: i64,
        kind: HistoryKind,
        patient: Option<Uuid>,
        nid: Option<Uuid>,
    ) -> history::Model {
        history::Model {
            event_id: Uuid::now_v7(),
            slot_id: Uuid::nil(),
            at: at(s),
            kind,
            patient_id: patient,
            notification_id: nid,
            reason: (kind == HistoryKind::Lost).then(|| "taken".to_owned()),
        }
    }

    #[test]
    fn each_offer_says_what_came_of_it_and_the_history_is_in_order() {
        let (ann, bob, cid) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let (n1, n2, n3) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let told = [(ann, n1), (bob, n2), (cid, n3)]
            .into_iter()
            .map(|(patient_id, notification_id)| told::Model {
                slot_id: Uuid::nil(),
                patient_id,
                notification_id,
                entry_id: Uuid::now_v7(),
                told_at: at(1),
                rank: 1,
                priority: "routine".into(),
                wave: None,
                texted: None,
                text_at: None,
            })
            .collect();
        let events = vec![
            event(0, HistoryKind::Published, None, None),
            event(5, HistoryKind::Booked, Some(bob), None),
            event(5, HistoryKind::Claimed, Some(bob), Some(n2)),
            event(6, HistoryKind::Lost, Some(ann), Some(n1)),
        ];
        let shown = assemble(Uuid::nil(), Some(SlotStatus::Booked), told, events);
        let outcomes: Vec<_> = shown.offered.iter().map(|o| o.outcome).collect();
        assert_eq!(outcomes, ["lost", "claimed", "none"]);
        assert_eq!(shown.offered[0].lost_reason.as_deref(), Some("taken"));
        let kinds: Vec<_> = shown.history.iter().map(|h| h.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "published",
                "offered",
                "offered",
                "offered",
                "booked",
                "claimed",
                "lost"
            ]
        );
    }
}
