//! One practitioner's events are applied in their order (their order stamps), whatever order
//! their messages arrive in; other practitioners' do not wait for them.

use std::time::Duration;

use slotcast_events::{SlotBooked, SlotCreated, WaitKind};
use slotcast_test_support::TestDatabase;
use uuid::Uuid;

use crate::helpers::{
    TestMatching, hours, patients_of, policy, slots_of, spawn_matching_on, spawn_matching_with,
};

const SETTLE: Duration = Duration::from_millis(700);

fn slot(practitioner: Uuid, h: i64) -> SlotCreated {
    SlotCreated {
        slot_id: Uuid::now_v7(),
        practitioner_id: practitioner,
        starts_at: hours(h),
        ends_at: hours(h) + chrono::Duration::minutes(30),
        batch_id: Uuid::now_v7(),
        batch_size: 1,
        offer_policy: Default::default(),
    }
}

#[tokio::test]
async fn a_booking_that_arrives_before_its_slot_is_applied_after_it_and_nobody_is_told() {
    // A window, so the offer waits long enough for the booking to be applied behind it.
    let m = spawn_matching_with(
        TestDatabase::postgres().await.unwrap(),
        matching::policy::PolicyConfig {
            coalesce_window: Duration::from_millis(1500),
            ..policy()
        },
    )
    .await;
    let dr = m.practitioner().await;
    let alice = m.patient().await;
    m.waits(alice, dr, WaitKind::New, None).await;
    let created = slot(dr, 10);
    let (first, second) = (m.stamp(dr), m.stamp(dr));
    m.publish_stamped(
        SlotBooked {
            slot_id: created.slot_id,
            practitioner_id: dr,
            patient_id: Uuid::now_v7(),
            appointment_id: Uuid::now_v7(),
            starts_at: created.starts_at,
        },
        Some(second),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    m.publish_stamped(created, Some(first)).await;
    assert!(
        m.notifications(1, Duration::from_secs(2)).await.is_empty(),
        "a booked slot was offered"
    );
}

#[tokio::test]
async fn an_order_number_applied_before_changes_nothing() {
    let m = spawn_matching_on(TestDatabase::postgres().await.unwrap()).await;
    let dr = m.practitioner().await;
    let alice = m.patient().await;
    m.waits(alice, dr, WaitKind::New, None).await;
    let applied = m.stamp(dr);
    m.publish_stamped(slot(dr, 10), Some(applied)).await;
    assert_eq!(m.notifications(1, SETTLE).await.len(), 1);
    // Another event under the same number (a producer's redelivery with a new id) is the same.
    m.publish_stamped(slot(dr, 11), Some(applied)).await;
    assert_eq!(m.notifications(2, SETTLE).await.len(), 1);
}

async fn a_gap_holds_back_only_its_practitioner_until_it_is_filled(m: TestMatching) {
    let (x, y) = (m.practitioner().await, m.practitioner().await);
    let (alice, bob) = (m.patient().await, m.patient().await);
    m.waits(alice, x, WaitKind::New, None).await;
    m.waits(bob, y, WaitKind::New, None).await;
    let (early, late) = (slot(x, 10), slot(x, 12));
    let (third, fourth) = (m.stamp(x), m.stamp(x));
    m.publish_stamped(late.clone(), Some(fourth)).await;
    m.publish(slot(y, 10)).await;
    let told = m.notifications(1, SETTLE).await;
    assert_eq!(patients_of(&told), [bob.to_string()], "only y's patient");

    m.publish_stamped(early.clone(), Some(third)).await;
    let told = m.notifications(3, SETTLE).await;
    let mut alice_slots: Vec<String> = told
        .iter()
        .filter(|n| n["data"]["patient"]["id"] == alice.to_string())
        .flat_map(slots_of)
        .collect();
    alice_slots.sort();
    let mut want = vec![early.slot_id.to_string(), late.slot_id.to_string()];
    want.sort();
    assert_eq!(alice_slots, want, "both of x's slots, each once");
}

#[tokio::test]
async fn a_gap_holds_back_only_its_practitioner_until_it_is_filled_on_postgres() {
    a_gap_holds_back_only_its_practitioner_until_it_is_filled(
        spawn_matching_on(TestDatabase::postgres().await.unwrap()).await,
    )
    .await;
}

#[tokio::test]
async fn a_gap_holds_back_only_its_practitioner_until_it_is_filled_on_sqlite() {
    a_gap_holds_back_only_its_practitioner_until_it_is_filled(
        spawn_matching_on(TestDatabase::sqlite().unwrap()).await,
    )
    .await;
}
