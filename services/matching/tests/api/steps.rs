//! The workers pumped one step at a time, with no loop running: the projector's batch, then
//! the dispatcher's pass.

use std::time::Duration;

use matching::{
    dispatch::{Dispatched, Dispatcher},
    passes::Wakers,
    projector::Projector,
};
use slotcast_bus::{
    consumer::{BatchHandler, Delivery, Outcome},
    order::OrderStamp,
};
use slotcast_events::{
    CloudEvent, Event, PatientRegistered, PractitionerRegistered, SlotCreated, WaitKind,
    WaitlistJoined,
};
use slotcast_kit::offer::OfferSigner;
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

#[tokio::test]
async fn an_offer_to_a_patient_not_known_yet_goes_out_once_they_are() {
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
        policy: policy(),
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
    let (dr, alice) = (Uuid::now_v7(), Uuid::now_v7());
    let mut events = Events::default();
    // Her entry and the slot come before her registration, as two order keys allow.
    let before = vec![
        events.delivery(PractitionerRegistered {
            practitioner_id: dr,
            name: "Dr Who".into(),
            specialty: "Time".into(),
            timezone: "Europe/London".into(),
            consultation_fee_cents: None,
            currency: "GBP".into(),
            offer_policy: None,
        }),
        events.delivery(WaitlistJoined {
            entry_id: Uuid::now_v7(),
            patient_id: alice,
            practitioner_id: dr,
            kind: WaitKind::New,
            appointment_id: None,
            held_starts_at: None,
            earliest: None,
            latest: None,
            joined_at: chrono::Utc::now(),
            priority: Default::default(),
            expires_at: None,
        }),
        events.delivery(SlotCreated {
            slot_id: Uuid::now_v7(),
            practitioner_id: dr,
            starts_at: hours(10),
            ends_at: hours(10) + chrono::Duration::minutes(30),
            batch_id: Uuid::now_v7(),
            batch_size: 1,
            offer_policy: Default::default(),
        }),
    ];
    let done = vec![Outcome::Done; 3];
    assert_eq!(projector.handle_batch(&before).await, done);
    assert_eq!(
        dispatcher.run_once().await.unwrap(),
        Dispatched { groups: 1, sent: 0 },
        "held back, not dropped"
    );

    let registered = events.delivery(PatientRegistered {
        patient_id: alice,
        name: "Alice".into(),
        email: "alice@patients.example".into(),
        locale: "en".into(),
        timezone: None,
    });
    assert_eq!(projector.handle_batch(&[registered]).await, [Outcome::Done]);
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
