//! `GET /v1/slots/{id}/offers`: who was offered a slot, who claimed it, who lost the race.

use std::time::Duration;

use serde_json::Value;
use slotcast_events::{LostReason, OfferClaimed, OfferLost, SlotBooked, WaitKind};
use slotcast_kit::auth::{Role, mint};
use uuid::Uuid;

use crate::helpers::{SECRET, TestMatching, spawn_matching};

fn token(role: Role) -> String {
    mint(SECRET, Uuid::now_v7(), role, chrono::Duration::minutes(10)).unwrap()
}

impl TestMatching {
    async fn slot_offers(&self, slot: Uuid, token: Option<&str>) -> reqwest::Response {
        let mut req = reqwest::Client::new().get(format!("{}/v1/slots/{slot}/offers", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// The history once it has at least `kinds` entries, polling up to 10 s.
    async fn history_with(&self, slot: Uuid, kinds: usize) -> Value {
        let staff = token(Role::Staff);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut last = Value::Null;
        while tokio::time::Instant::now() < deadline {
            let res = self.slot_offers(slot, Some(&staff)).await;
            if res.status() == 200 {
                last = res.json().await.unwrap();
                if last["history"].as_array().unwrap().len() >= kinds {
                    return last;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("fewer than {kinds} history entries after 10 s: {last}");
    }
}

#[tokio::test]
async fn staff_see_who_was_offered_a_slot_who_won_and_who_lost() {
    let m = spawn_matching().await;
    let dr = m.practitioner().await;
    let (ann, bob) = (m.patient().await, m.patient().await);
    m.waits(ann, dr, WaitKind::New, None).await;
    m.waits(bob, dr, WaitKind::New, None).await;
    let slot = m.batch(dr, &[10]).await.remove(0);
    let told = m.notifications(2, Duration::from_millis(300)).await;
    let nid_of = |p: Uuid| -> Uuid {
        told.iter()
            .find(|n| n["data"]["patient"]["id"] == p.to_string())
            .unwrap()["data"]["notification_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let appointment_id = Uuid::now_v7();
    m.publish(SlotBooked {
        slot_id: slot.slot_id,
        practitioner_id: dr,
        patient_id: bob,
        appointment_id,
        starts_at: slot.starts_at,
    })
    .await;
    m.publish(OfferClaimed {
        notification_id: nid_of(bob),
        patient_id: bob,
        slot_id: slot.slot_id,
        appointment_id,
        moved_from_slot_id: None,
    })
    .await;
    m.publish(OfferLost {
        notification_id: nid_of(ann),
        patient_id: ann,
        slot_id: slot.slot_id,
        reason: LostReason::Taken,
    })
    .await;

    // published, 2 offered, booked, claimed, lost
    let body = m.history_with(slot.slot_id, 6).await;
    assert_eq!(body["status"], "booked");
    let outcome = |p: Uuid| {
        body["offered"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["patient_id"] == p.to_string())
            .map(|o| (o["outcome"].clone(), o["lost_reason"].clone()))
            .unwrap()
    };
    assert_eq!(outcome(bob), ("claimed".into(), Value::Null));
    assert_eq!(outcome(ann), ("lost".into(), "taken".into()));
    let kinds: Vec<&str> = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"published"));
    assert_eq!(kinds.iter().filter(|k| **k == "offered").count(), 2);
    assert_eq!(&kinds[3..], ["booked", "claimed", "lost"]);
    assert!(
        !body.to_string().contains("@patients.example"),
        "ids only, no contact data"
    );

    // Staff only; an unknown slot is 404.
    assert_eq!(m.slot_offers(slot.slot_id, None).await.status(), 401);
    let patient = token(Role::Patient);
    assert_eq!(
        m.slot_offers(slot.slot_id, Some(&patient)).await.status(),
        403
    );
    let staff = token(Role::Staff);
    assert_eq!(
        m.slot_offers(Uuid::now_v7(), Some(&staff)).await.status(),
        404
    );
}
