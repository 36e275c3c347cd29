use std::{net::SocketAddr, time::Duration};

use async_nats::jetstream::{self, consumer::pull};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use matching::{Application, Config, policy::PolicyConfig};
use serde_json::Value;
use slotcast_bus::order::OrderStamp;
use slotcast_events::{
    CloudEvent, Event, PatientRegistered, PractitionerRegistered, SlotCreated, WaitKind,
    WaitlistJoined,
};
use slotcast_kit::config::Common;
use slotcast_test_support::{NatsServer, TestDatabase};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const SECRET: &str = "test-only-jwt-secret";
pub const BASE: &str = "https://clinic.example";

pub struct TestMatching {
    pub js: jetstream::Context,
    /// The last order number given to each order key, as scheduling's outbox keeps it.
    order: std::sync::Mutex<std::collections::HashMap<Uuid, i64>>,
    /// Where its HTTP server listens.
    pub base: String,
    shutdown: CancellationToken,
    _nats: NatsServer,
    _db: TestDatabase,
}

impl Drop for TestMatching {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn spawn_matching() -> TestMatching {
    spawn_matching_on(TestDatabase::postgres().await.unwrap()).await
}

/// The policy of these tests: offers go out at once (no coalescing window) and uncapped, unless
/// a test says otherwise. No scheduling runs here: the `waves` policy is tested end to end.
pub fn policy() -> PolicyConfig {
    PolicyConfig {
        coalesce_window: Duration::ZERO,
        daily_cap: 0,
        // Whatever the hour the tests run at; the quiet hours have tests of their own.
        quiet_hours: None,
        ..PolicyConfig::defaults("http://127.0.0.1:9")
    }
}

pub async fn spawn_matching_on(db: TestDatabase) -> TestMatching {
    spawn_matching_with(db, policy()).await
}

pub async fn spawn_matching_with(db: TestDatabase, policy: PolicyConfig) -> TestMatching {
    slotcast_test_support::init_tracing();
    let nats = NatsServer::start().await.unwrap();
    let app = Application::build(Config {
        common: Common {
            nats_url: nats.url(),
            database_url: db.url(),
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stream_replicas: 1,
            db_max_connections: 4,
            limits: Default::default(),
        },
        jwt_secret: SECRET.to_owned(),
        auth: slotcast_kit::auth::AuthSettings::default(),
        offer_keys: None,
        public_base_url: BASE.to_owned(),
        policy,
    })
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    TestMatching {
        js,
        order: Default::default(),
        base,
        shutdown,
        _nats: nats,
        _db: db,
    }
}

/// `h` hours after the top of the hour in which the tests started: the same instant however
/// often it is asked, even when a test runs across the top of an hour.
pub fn hours(h: i64) -> DateTime<Utc> {
    static TOP_OF_THE_HOUR: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let top = *TOP_OF_THE_HOUR.get_or_init(|| {
        let now = Utc::now().timestamp();
        now - now % 3600
    });
    DateTime::from_timestamp(top + h * 3600, 0).unwrap()
}

impl TestMatching {
    /// Matching's database.
    pub fn database(&self) -> &TestDatabase {
        &self._db
    }

    /// Publishes `data` as scheduling would: a fresh CloudEvent id each time, and the next
    /// order number of its order key.
    pub async fn publish<T: Event>(&self, data: T) {
        let stamp = data.order_key().map(|key| self.stamp(key));
        self.publish_stamped(data, stamp).await;
    }

    /// Waits until matching has applied every event published so far: events of different
    /// order keys (a patient's preferences, a practitioner's slots) are applied concurrently,
    /// so a test that needs one before the other waits for it.
    pub async fn applied(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let stream = self.js.get_stream("SLOTCAST_SCHEDULING").await.unwrap();
            let last = stream.get_info().await.unwrap().state.last_sequence;
            let consumer = stream.consumer_info(matching::DURABLE).await.unwrap();
            if consumer.ack_floor.stream_sequence >= last && consumer.num_ack_pending == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "matching never applied the events"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The next order number of `key`, taken as if scheduling had written an event about it.
    pub fn stamp(&self, key: Uuid) -> OrderStamp {
        let mut last = self.order.lock().unwrap();
        let seq = last.entry(key).or_default();
        *seq += 1;
        OrderStamp { key, seq: *seq }
    }

    /// Publishes `data` with the order stamp given (or none).
    pub async fn publish_stamped<T: Event>(&self, data: T, stamp: Option<OrderStamp>) {
        let event = CloudEvent::new(slotcast_events::sources::SCHEDULING, data);
        let mut headers = slotcast_bus::headers(&event.id.to_string(), &Default::default());
        if let Some(stamp) = stamp {
            stamp.insert_into(&mut headers);
        }
        self.js
            .publish_with_headers(
                T::SUBJECT,
                headers,
                serde_json::to_vec(&event).unwrap().into(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    pub async fn practitioner(&self) -> Uuid {
        let id = Uuid::now_v7();
        self.publish(PractitionerRegistered {
            practitioner_id: id,
            name: "Dr Who".into(),
            specialty: "Time".into(),
            timezone: "Europe/London".into(),
            consultation_fee_cents: Some(5000),
            currency: "GBP".into(),
            offer_policy: None,
        })
        .await;
        id
    }

    pub async fn patient(&self) -> Uuid {
        self.patient_with_phone(None).await
    }

    /// A patient registered with `phone` (E.164), if any.
    pub async fn patient_with_phone(&self, phone: Option<&str>) -> Uuid {
        let id = Uuid::now_v7();
        self.publish(PatientRegistered {
            patient_id: id,
            name: "Pat".into(),
            email: format!("{id}@patients.example"),
            locale: "en".into(),
            timezone: None,
            phone: phone.map(str::to_owned),
        })
        .await;
        id
    }

    pub async fn waits(
        &self,
        patient: Uuid,
        practitioner: Uuid,
        kind: WaitKind,
        held: Option<DateTime<Utc>>,
    ) {
        self.publish(WaitlistJoined {
            entry_id: Uuid::now_v7(),
            patient_id: patient,
            practitioner_id: practitioner,
            kind,
            appointment_id: held.map(|_| Uuid::now_v7()),
            held_starts_at: held,
            earliest: None,
            latest: None,
            joined_at: Utc::now(),
            priority: Default::default(),
            expires_at: None,
        })
        .await;
    }

    /// Publishes a batch of slots (one `slot.created` each); returns the events.
    pub async fn batch(&self, practitioner: Uuid, starts: &[i64]) -> Vec<SlotCreated> {
        let batch_id = Uuid::now_v7();
        let mut out = Vec::new();
        for h in starts {
            let e = SlotCreated {
                slot_id: Uuid::now_v7(),
                practitioner_id: practitioner,
                starts_at: hours(*h),
                ends_at: hours(*h) + chrono::Duration::minutes(30),
                batch_id,
                batch_size: starts.len() as u32,
                offer_policy: Default::default(),
            };
            self.publish(e.clone()).await;
            out.push(e);
        }
        out
    }

    /// The `notify.patient` events so far, after waiting `settle` for stragglers; each is
    /// checked against its schema.
    pub async fn notifications(&self, at_least: usize, settle: Duration) -> Vec<Value> {
        let stream = self.js.get_stream("SLOTCAST_NOTIFY").await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let info = stream.get_info().await.unwrap();
            if info.state.messages as usize >= at_least || tokio::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(settle).await;
        let consumer = stream
            .create_consumer(pull::Config::default())
            .await
            .unwrap();
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .unwrap();
        let mut out = Vec::new();
        while let Some(Ok(m)) = batch.next().await {
            let v: Value = serde_json::from_slice(&m.payload).unwrap();
            slotcast_contract::validate_event(&m.subject, &v).unwrap();
            out.push(v);
        }
        out
    }

    /// Dead letters of the matching consumer so far.
    pub async fn dead_letters(&self) -> Vec<Value> {
        let Ok(stream) = self.js.get_stream("SLOTCAST_DEADLETTER").await else {
            return vec![];
        };
        let consumer = stream
            .create_consumer(pull::Config::default())
            .await
            .unwrap();
        let mut batch = consumer
            .fetch()
            .max_messages(100)
            .expires(Duration::from_millis(300))
            .messages()
            .await
            .unwrap();
        let mut out = Vec::new();
        while let Some(Ok(m)) = batch.next().await {
            out.push(serde_json::from_slice(&m.payload).unwrap());
        }
        out
    }
}

pub fn patients_of(notifications: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = notifications
        .iter()
        .map(|n| n["data"]["patient"]["id"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

pub fn slots_of(notification: &Value) -> Vec<String> {
    notification["data"]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["slot_id"].as_str().unwrap().to_owned())
        .collect()
}
