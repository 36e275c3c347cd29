//! The workers pumped one step at a time, with no loop running: the projector's batch, then
//! the dispatcher's pass.

use std::time::Duration;

use matching::{
    dispatch::{Dispatched, Dispatcher},
    passes::Wakers,
    policy::PolicyConfig,
    projector::Projector,
};
use sea_orm::EntityTrait;
use slotcast_bus::{
    consumer::{BatchHandler, Delivery, Outcome},
    order::OrderStamp,
};
use slotcast_events::{
    CloudEvent, Event, PatientRegistered, PractitionerRegistered, SlotCreated, WaitKind,
    WaitlistJoined,
};
use slotcast_links::OfferSigner;
use slotcast_test_support::{NatsServer, TestDatabase};
use uuid::Uuid;

use crate::helpers::{BASE, SECRET, hours, policy};

/// Scheduling's events as the consumer hands them over, each key numbered from 1.
#[derive(Default)]
struct Events {
    last: std::collections::HashMap<Uuid, i64>,
    seq: u64,
}

impl Events {
    fn delivery<T: Event>(&mut self, data: T) -> Delivery {
        let order = data.order_key().map(|key| {
            let seq = self.last.entry(key).or_default();
            *seq += 1;
            OrderStamp { key, seq: *seq }
        });
        self.seq += 1;
        let event = CloudEvent::new(slotcast_events::sources::SCHEDULING, data);
        Delivery {
            subject: T::SUBJECT.to_owned(),
            payload: serde_json::to_vec(&event).unwrap().into(),
            deliveries: 1,
            stream_sequence: self.seq,
            trace: Default::default(),
            order,
        }
    }
}

/// A projector and a dispatcher on a fresh database and nats-server, with no loop running.
struct Pumped {
    projector: Projector,
    dispatcher: Dispatcher,
    conn: sea_orm::DatabaseConnection,
    _db: TestDatabase,
    _nats: NatsServer,
}

async fn pumped(coalesce_window: Duration) -> Pumped {
    let db = TestDatabase::postgres().await.unwrap();
    let conn = slotcast_kit::db::connect_and_migrate::<matching::migration::Migrator>(&db.url(), 2)
        .await
        .unwrap();
    let nats = NatsServer::start().await.unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    slotcast_bus::ensure_streams(&js, 1).await.unwrap();
    let wakers = Wakers::default();
    let projector = Projector {
        db: conn.clone(),
        policy: PolicyConfig {
            coalesce_window,
            ..policy()
        },
        wakers: wakers.clone(),
    };
    let dispatcher = Dispatcher::new(
        conn.clone(),
        slotcast_bus::outbox::Relay::new(conn.clone(), js),
        OfferSigner::new(SECRET),
        BASE.to_owned(),
        0,
        wakers,
    );
    Pumped {
        projector,
        dispatcher,
        conn,
        _db: db,
        _nats: nats,
    }
}

fn practitioner(id: Uuid) -> PractitionerRegistered {
    PractitionerRegistered {
        practitioner_id: id,
        name: "Dr Who".into(),
        specialty: "Time".into(),
        timezone: "Europe/London".into(),
        consultation_fee_cents: None,
        currency: "GBP".into(),
        offer_policy: None,
    }
}

fn registered(id: Uuid) -> PatientRegistered {
    PatientRegistered {
        patient_id: id,
        name: "A patient".into(),
        email: format!("{id}@patients.example"),
        locale: "en".into(),
        timezone: None,
        phone: None,
    }
}

fn joins(patient_id: Uuid, practitioner_id: Uuid) -> WaitlistJoined {
    WaitlistJoined {
        entry_id: Uuid::now_v7(),
        patient_id,
        practitioner_id,
        kind: WaitKind::New,
        appointment_id: None,
        held_starts_at: None,
        earliest: None,
        latest: None,
        joined_at: chrono::Utc::now(),
        priority: Default::default(),
        expires_at: None,
    }
}

fn slot(practitioner_id: Uuid) -> SlotCreated {
    SlotCreated {
        slot_id: Uuid::now_v7(),
        practitioner_id,
        starts_at: hours(10),
        ends_at: hours(10) + chrono::Duration::minutes(30),
        batch_id: Uuid::now_v7(),
        batch_size: 1,
        offer_policy: Default::default(),
    }
}

#[tokio::test]
async fn an_opening_too_big_for_one_pass_goes_out_over_the_next_passes_each_patient_once() {
    let m = pumped(Duration::ZERO).await;
    let dr = Uuid::now_v7();
    let mut events = Events::default();
    let mut all = vec![events.delivery(practitioner(dr))];
    for _ in 0..600 {
        let patient = Uuid::now_v7();
        all.push(events.delivery(registered(patient)));
        all.push(events.delivery(joins(patient, dr)));
    }
    all.push(events.delivery(slot(dr)));
    for batch in all.chunks(200) {
        let done = m.projector.handle_batch(batch).await;
        assert!(done.iter().all(|o| *o == Outcome::Done), "{done:?}");
    }
    // A pass sends at most 500 pairs: the opening's offers wait in `pending` for the next.
    assert_eq!(
        m.dispatcher.run_once().await.unwrap(),
        Dispatched {
            groups: 500,
            sent: 500
        }
    );
    assert_eq!(
        m.dispatcher.run_once().await.unwrap(),
        Dispatched {
            groups: 100,
            sent: 100
        }
    );
    assert_eq!(
        m.dispatcher.run_once().await.unwrap(),
        Dispatched::default()
    );
    let told = matching::entities::told::Entity::find()
        .all(&m.conn)
        .await
        .unwrap();
    let patients: std::collections::HashSet<Uuid> = told.iter().map(|t| t.patient_id).collect();
    assert_eq!((told.len(), patients.len()), (600, 600));
}

#[tokio::test]
async fn a_patient_who_joins_within_the_window_is_told_with_the_others() {
    let m = pumped(Duration::from_millis(400)).await;
    let (dr, alice, bob) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let mut events = Events::default();
    let before = [
        events.delivery(practitioner(dr)),
        events.delivery(registered(alice)),
        events.delivery(joins(alice, dr)),
        events.delivery(slot(dr)),
    ];
    assert_eq!(
        m.projector.handle_batch(&before).await,
        vec![Outcome::Done; 4]
    );
    // Bob joins after the slot opened, within its window.
    let after = [
        events.delivery(registered(bob)),
        events.delivery(joins(bob, dr)),
    ];
    assert_eq!(
        m.projector.handle_batch(&after).await,
        vec![Outcome::Done; 2]
    );
    assert_eq!(
        m.dispatcher.run_once().await.unwrap(),
        Dispatched::default(),
        "nothing goes before the window ends"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        m.dispatcher.run_once().await.unwrap(),
        Dispatched { groups: 2, sent: 2 }
    );
}

#[tokio::test]
async fn an_offer_to_a_patient_not_known_yet_goes_out_once_they_are() {
    // Bound by name, so the database and the server live as long as the test.
    let Pumped {
        projector,
        dispatcher,
        _db,
        _nats,
        ..
    } = pumped(Duration::ZERO).await;
    let (dr, alice) = (Uuid::now_v7(), Uuid::now_v7());
    let mut events = Events::default();
    // Her entry and the slot come before her registration, as two order keys allow.
    let before = vec![
        events.delivery(practitioner(dr)),
        events.delivery(joins(alice, dr)),
        events.delivery(slot(dr)),
    ];
    let done = vec![Outcome::Done; 3];
    assert_eq!(projector.handle_batch(&before).await, done);
    assert_eq!(
        dispatcher.run_once().await.unwrap(),
        Dispatched { groups: 1, sent: 0 },
        "held back, not dropped"
    );

    let registration = events.delivery(registered(alice));
    assert_eq!(
        projector.handle_batch(&[registration]).await,
        [Outcome::Done]
    );
    // The offer was put back a moment ahead.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        dispatcher.run_once().await.unwrap(),
        Dispatched { groups: 1, sent: 1 }
    );
    assert_eq!(
        dispatcher.run_once().await.unwrap(),
        Dispatched::default(),
        "told once"
    );
    // The same events again (a redelivery) change nothing.
    assert_eq!(projector.handle_batch(&before).await, done);
    assert_eq!(dispatcher.run_once().await.unwrap(), Dispatched::default());
}
