use std::time::Duration;

use slotcast_events::{ReleaseReason, SlotBooked, SlotReleased, WaitKind, subjects};
use slotcast_links::OfferSigner;
use slotcast_test_support::TestDatabase;
use uuid::Uuid;

use crate::helpers::{
    BASE, SECRET, hours, patients_of, slots_of, spawn_matching, spawn_matching_on,
};

const SETTLE: Duration = Duration::from_millis(700);

#[tokio::test]
async fn a_batch_reaches_each_fitting_patient_once_listing_every_slot_that_fits_them() {
    let m = spawn_matching().await;
    let dr = m.practitioner().await;
    let other = m.practitioner().await;
    let (alice, bob, carol, dave) = (
        m.patient().await,
        m.patient().await,
        m.patient().await,
        m.patient().await,
    );
    m.waits(alice, dr, WaitKind::New, None).await;
    m.waits(bob, other, WaitKind::New, None).await;
    // Holds an appointment at +25 h: only the +10 h slot is earlier.
    m.waits(carol, dr, WaitKind::MoveUp, Some(hours(25))).await;
    // Holds an appointment at +5 h: neither slot is earlier.
    m.waits(dave, dr, WaitKind::MoveUp, Some(hours(5))).await;

    let slots = m.batch(dr, &[10, 30]).await;
    let told = m.notifications(2, SETTLE).await;
    let mut expected = vec![alice.to_string(), carol.to_string()];
    expected.sort();
    assert_eq!(patients_of(&told), expected);
    for n in &told {
        let for_alice = n["data"]["patient"]["id"] == alice.to_string();
        let want: Vec<String> = if for_alice {
            slots.iter().map(|s| s.slot_id.to_string()).collect()
        } else {
            vec![slots[0].slot_id.to_string()]
        };
        assert_eq!(slots_of(n), want);
        assert_eq!(
            n["data"]["reason"],
            if for_alice { "new" } else { "move_up" }
        );
        assert_eq!(n["data"]["practitioner"]["name"], "Dr Who");
        assert_eq!(
            n["id"], n["data"]["notification_id"],
            "the CloudEvent id is the notification id"
        );
    }
}

#[tokio::test]
async fn booking_links_carry_a_signed_offer_token_for_that_patient_and_those_slots() {
    let m = spawn_matching().await;
    let dr = m.practitioner().await;
    let alice = m.patient().await;
    m.waits(alice, dr, WaitKind::New, None).await;
    let slots = m.batch(dr, &[10]).await;
    let told = m.notifications(1, SETTLE).await;
    let url = told[0]["data"]["slots"][0]["booking_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let rest = url
        .strip_prefix(&format!("{BASE}/v1/offers/"))
        .expect("under PUBLIC_BASE_URL");
    let (token, query) = rest.split_once('?').unwrap();
    assert_eq!(query, format!("slot_id={}", slots[0].slot_id));
    let claims = OfferSigner::new(SECRET).verify(token).unwrap();
    assert_eq!(claims.sub, alice);
    assert_eq!(claims.slots, vec![slots[0].slot_id]);
    assert_eq!(
        claims.nid.to_string(),
        told[0]["data"]["notification_id"].as_str().unwrap()
    );
}

#[tokio::test]
async fn a_redelivered_slot_event_tells_nobody_twice() {
    let m = spawn_matching().await;
    let dr = m.practitioner().await;
    let alice = m.patient().await;
    m.waits(alice, dr, WaitKind::New, None).await;
    let slots = m.batch(dr, &[10]).await;
    assert_eq!(m.notifications(1, SETTLE).await.len(), 1);
    // The same event again, under a new message id: the stream keeps it, matching ignores it.
    m.publish(slots[0].clone()).await;
    assert_eq!(m.notifications(1, SETTLE).await.len(), 1);
}

#[tokio::test]
async fn a_released_slot_goes_to_the_next_patients_never_back_to_who_released_it_nor_twice() {
    let m = spawn_matching().await;
    let dr = m.practitioner().await;
    let (alice, bob, carol) = (m.patient().await, m.patient().await, m.patient().await);
    m.waits(alice, dr, WaitKind::New, None).await;
    let slots = m.batch(dr, &[10]).await;
    assert_eq!(m.notifications(1, SETTLE).await.len(), 1);
    let slot = &slots[0];
    m.publish(SlotBooked {
        slot_id: slot.slot_id,
        practitioner_id: dr,
        patient_id: carol,
        appointment_id: Uuid::now_v7(),
        starts_at: slot.starts_at,
    })
    .await;
    m.waits(bob, dr, WaitKind::New, None).await;
    m.waits(carol, dr, WaitKind::New, None).await;
    m.publish(SlotReleased {
        slot_id: slot.slot_id,
        practitioner_id: dr,
        starts_at: slot.starts_at,
        ends_at: slot.ends_at,
        batch_id: Uuid::now_v7(),
        batch_size: 1,
        reason: ReleaseReason::Cancelled,
        released_by: Some(carol),
        offer_policy: Default::default(),
    })
    .await;
    let told = m.notifications(2, SETTLE).await;
    // Alice was told already, Carol released it: only Bob hears of it now.
    assert_eq!(told.len(), 2, "{told:?}");
    assert_eq!(told[1]["data"]["patient"]["id"], bob.to_string());
}

#[tokio::test]
async fn a_batch_is_decided_only_once_all_its_slots_are_in() {
    let m = spawn_matching().await;
    let dr = m.practitioner().await;
    let alice = m.patient().await;
    m.waits(alice, dr, WaitKind::New, None).await;
    let slots = m.batch(dr, &[10, 11, 12]).await;
    let told = m.notifications(1, SETTLE).await;
    assert_eq!(told.len(), 1);
    assert_eq!(slots_of(&told[0]).len(), slots.len());
}

#[tokio::test]
async fn a_malformed_event_is_dead_lettered_and_the_consumer_goes_on() {
    let m = spawn_matching().await;
    slotcast_bus::publish(
        &m.js,
        subjects::SLOT_CREATED,
        "poison-1",
        b"{not json".to_vec(),
    )
    .await
    .unwrap();
    let dr = m.practitioner().await;
    let alice = m.patient().await;
    m.waits(alice, dr, WaitKind::New, None).await;
    m.batch(dr, &[10]).await;
    assert_eq!(m.notifications(1, SETTLE).await.len(), 1);
    let dead = m.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["consumer"], "matching");
    assert_eq!(dead[0]["original_subject"], subjects::SLOT_CREATED);
}

#[tokio::test]
async fn matching_runs_on_sqlite() {
    let m = spawn_matching_on(TestDatabase::sqlite().unwrap()).await;
    let dr = m.practitioner().await;
    let alice = m.patient().await;
    m.waits(alice, dr, WaitKind::New, None).await;
    m.batch(dr, &[10, 12]).await;
    let told = m.notifications(1, SETTLE).await;
    assert_eq!(told.len(), 1);
    assert_eq!(slots_of(&told[0]).len(), 2);
}

/// More patients than one lookup statement carries (`rows::IDS_PER_STATEMENT`, 400) and than one
/// dispatcher pass takes (500): the runs of ids and the passes still tell each patient once,
/// with every slot that fits.
async fn a_fan_out_wider_than_a_lookup_tells_each_patient_once(db: TestDatabase) {
    const PATIENTS: usize = 650;
    let m = spawn_matching_on(db).await;
    let dr = m.practitioner().await;
    let mut expected = Vec::with_capacity(PATIENTS);
    for _ in 0..PATIENTS {
        let p = m.patient().await;
        m.waits(p, dr, WaitKind::New, None).await;
        expected.push(p.to_string());
    }
    expected.sort();
    let slots = m.batch(dr, &[10, 12]).await;
    let told = m.notifications(PATIENTS, SETTLE).await;
    assert_eq!(patients_of(&told), expected, "each patient told once");
    let want: Vec<String> = slots.iter().map(|s| s.slot_id.to_string()).collect();
    for n in &told {
        assert_eq!(slots_of(n), want);
    }
}

#[tokio::test]
async fn a_fan_out_wider_than_a_lookup_on_postgres() {
    a_fan_out_wider_than_a_lookup_tells_each_patient_once(TestDatabase::postgres().await.unwrap())
        .await;
}

#[tokio::test]
async fn a_fan_out_wider_than_a_lookup_on_sqlite() {
    a_fan_out_wider_than_a_lookup_tells_each_patient_once(TestDatabase::sqlite().unwrap()).await;
}
