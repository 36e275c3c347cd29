//! `spawn_app()` and what the tests do with it.

use std::{future::Future, time::Duration};

use chrono::{DateTime, SubsecRound, Utc};
use inapp_notifier::{Application, Config, consumers};
use reqwest::{Response, StatusCode};
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};
use serde_json::Value;
use slotcast_bus::JetStream;
use slotcast_events::{
    CloudEvent, Event, NotifyPatient, OfferedSlot, PatientContact, PractitionerCard, ReleaseReason,
    SlotBooked, SlotReleased, SlotWithdrawn, WaitKind, streams, subjects,
};
use slotcast_kit::auth::{Role, mint};
use slotcast_test_support::{NatsServer, TestDatabase};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const SECRET: &str = "inapp-notifier-tests-only-secret";
/// How long a test waits for an effect before it fails.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// The running application and what a test needs around it.
pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub js: JetStream,
    /// The application's own database connection.
    pub db: DatabaseConnection,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    database: TestDatabase,
    nats: NatsServer,
}

/// A second replica of the application, on the same database and NATS as a [`TestApp`].
pub struct Replica {
    pub address: String,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The application on a fresh Postgres database and its own nats-server.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(
        TestDatabase::postgres()
            .await
            .expect("a Postgres test database"),
    )
    .await
}

/// The application on a fresh SQLite file and its own nats-server.
pub async fn spawn_app_on_sqlite() -> TestApp {
    spawn_app_on(TestDatabase::sqlite().expect("a SQLite test database")).await
}

async fn spawn_app_on(database: TestDatabase) -> TestApp {
    let nats = NatsServer::start().await.expect("nats-server");
    spawn_app_with(database, nats).await
}

/// The application on `database` and `nats`, as they are.
pub async fn spawn_app_with(database: TestDatabase, nats: NatsServer) -> TestApp {
    slotcast_test_support::init_tracing();
    let (port, db, shutdown, task) = start(&database, &nats).await;
    let address = format!("http://127.0.0.1:{port}");
    let client = slotcast_bus::connect(&nats.url(), "inapp-notifier-tests", Duration::from_secs(5))
        .await
        .expect("a test NATS client");
    let js = async_nats::jetstream::new(client);
    slotcast_bus::ensure_streams(&js, 1).await.expect("streams");
    TestApp {
        address,
        http: reqwest::Client::new(),
        js,
        db,
        shutdown,
        task: Some(task),
        database,
        nats,
    }
}

/// Builds the application on `database` and `nats` and runs it; returns its port and its
/// database connection.
async fn start(
    database: &TestDatabase,
    nats: &NatsServer,
) -> (
    u16,
    DatabaseConnection,
    CancellationToken,
    JoinHandle<anyhow::Result<()>>,
) {
    let config = Config {
        common: slotcast_kit::config::Common {
            nats_url: nats.url(),
            database_url: database.url(),
            listen_addr: "127.0.0.1:0".parse().unwrap(),
            stream_replicas: 1,
            db_max_connections: 5,
            limits: Default::default(),
        },
        jwt_secret: SECRET.to_owned(),
        auth: slotcast_kit::auth::AuthSettings::default(),
    };
    let app = Application::build(config)
        .await
        .expect("the application builds");
    let port = app.port();
    let db = app.db().clone();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    (port, db, shutdown, task)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub fn patient_token(patient_id: Uuid) -> String {
    mint(
        SECRET,
        patient_id,
        Role::Patient,
        chrono::Duration::minutes(10),
    )
    .unwrap()
}

pub fn staff_token() -> String {
    mint(
        SECRET,
        Uuid::now_v7(),
        Role::Staff,
        chrono::Duration::minutes(10),
    )
    .unwrap()
}

impl TestApp {
    /// Starts a second replica on the same database and NATS.
    pub async fn replica(&self) -> Replica {
        let (port, _db, shutdown, task) = start(&self.database, &self.nats).await;
        Replica {
            address: format!("http://127.0.0.1:{port}"),
            shutdown,
            task: Some(task),
        }
    }

    /// Stops the application as SIGTERM would, and waits (at most `within`) until it is done.
    pub async fn stop(&mut self, within: Duration) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let task = self.task.take().expect("the application is running");
        tokio::time::timeout(within, task)
            .await
            .map_err(|_| anyhow::anyhow!("the application did not stop within {within:?}"))?
            .expect("the application task does not panic")
    }

    /// `GET /v1/patients/{patient}/notifications/stream` on this replica.
    pub async fn open_stream(
        &self,
        patient: &str,
        token: Option<&str>,
        last_event_id: Option<&str>,
    ) -> Response {
        open_stream(&self.http, &self.address, patient, token, last_event_id).await
    }

    /// The patient's own stream, checked to be open.
    pub async fn stream(&self, patient_id: Uuid, last_event_id: Option<&str>) -> EventStream {
        let response = self
            .open_stream(
                &patient_id.to_string(),
                Some(&patient_token(patient_id)),
                last_event_id,
            )
            .await;
        EventStream::new(response)
    }

    /// `GET /v1/patients/{patient}/notifications{query}`, with `token` if given.
    pub async fn get_feed(&self, patient: &str, query: &str, token: Option<&str>) -> Response {
        let mut request = self.http.get(format!(
            "{}/v1/patients/{patient}/notifications{query}",
            self.address
        ));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the feed request")
    }

    /// The feed's notifications, read as the patient themself.
    pub async fn feed(&self, patient_id: Uuid, query: &str) -> Vec<Value> {
        let response = self
            .get_feed(
                &patient_id.to_string(),
                query,
                Some(&patient_token(patient_id)),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["notifications"]
            .as_array()
            .expect("a notifications array")
            .clone()
    }

    /// `POST /v1/patients/{patient}/notifications/{notification}/read`.
    pub async fn mark_read(&self, patient: &str, notification: &str, token: &str) -> Response {
        self.http
            .post(format!(
                "{}/v1/patients/{patient}/notifications/{notification}/read",
                self.address
            ))
            .bearer_auth(token)
            .send()
            .await
            .expect("the mark-read request")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap()
    }

    /// Publishes a `NotifyPatient` with its event id as `Nats-Msg-Id`.
    pub async fn publish_notify(&self, event: &CloudEvent<NotifyPatient>) {
        let msg_id = event.id.to_string();
        self.publish_with_msg_id(
            subjects::NOTIFY_PATIENT,
            &msg_id,
            serde_json::to_vec(event).unwrap(),
        )
        .await;
    }

    /// Publishes a `SlotBooked` for `slot_id` by some other patient, and returns it.
    pub async fn publish_booked(&self, slot_id: Uuid) -> CloudEvent<SlotBooked> {
        self.publish_booked_by(slot_id, Uuid::now_v7()).await.0
    }

    /// Publishes a `SlotBooked` for `slot_id` by `patient_id`; returns it and its stream
    /// sequence.
    pub async fn publish_booked_by(
        &self,
        slot_id: Uuid,
        patient_id: Uuid,
    ) -> (CloudEvent<SlotBooked>, u64) {
        let mut event = CloudEvent::new(
            "slotcast/scheduling",
            SlotBooked {
                slot_id,
                practitioner_id: Uuid::now_v7(),
                patient_id,
                appointment_id: Uuid::now_v7(),
                starts_at: Utc::now(),
            },
        );
        event.time = event.time.trunc_subsecs(6);
        let seq = self.publish_event(&event).await;
        (event, seq)
    }

    /// Publishes a `SlotReleased` (a cancellation) for `slot_id`; returns its stream sequence.
    pub async fn publish_released(&self, slot_id: Uuid) -> u64 {
        let now = Utc::now();
        let event = CloudEvent::new(
            "slotcast/scheduling",
            SlotReleased {
                slot_id,
                practitioner_id: Uuid::now_v7(),
                starts_at: now + chrono::Duration::days(1),
                ends_at: now + chrono::Duration::days(1) + chrono::Duration::minutes(30),
                batch_id: Uuid::now_v7(),
                batch_size: 1,
                reason: ReleaseReason::Cancelled,
                released_by: None,
                offer_policy: Default::default(),
            },
        );
        self.publish_event(&event).await
    }

    /// Publishes a `SlotWithdrawn` for `slot_id`; returns its stream sequence.
    pub async fn publish_withdrawn(&self, slot_id: Uuid) -> u64 {
        let event = CloudEvent::new(
            "slotcast/scheduling",
            SlotWithdrawn {
                slot_id,
                practitioner_id: Uuid::now_v7(),
            },
        );
        self.publish_event(&event).await
    }

    /// Publishes `event` on its subject with its id as `Nats-Msg-Id`; returns its stream
    /// sequence.
    pub async fn publish_event<T: Event>(&self, event: &CloudEvent<T>) -> u64 {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, event.id.to_string());
        self.js
            .publish_with_headers(
                T::SUBJECT,
                headers,
                serde_json::to_vec(event).unwrap().into(),
            )
            .await
            .expect("the event is sent")
            .await
            .expect("the stream acknowledges the event")
            .sequence
    }

    pub async fn publish_with_msg_id(&self, subject: &str, msg_id: &str, payload: Vec<u8>) {
        slotcast_bus::publish(&self.js, subject, msg_id, payload)
            .await
            .expect("the stream acknowledges the message");
    }

    /// Waits until the consumer `durable` has acknowledged everything it was given.
    pub async fn wait_until_consumed(&self, stream: &str, durable: &str) {
        let stream = self.js.get_stream(stream).await.unwrap();
        eventually(&format!("{durable} to catch up"), || async {
            let info = stream.consumer_info(durable).await.ok()?;
            (info.num_pending == 0
                && info.num_ack_pending == 0
                && info.delivered.stream_sequence > 0)
                .then_some(())
        })
        .await;
    }

    pub async fn wait_until_notifications_consumed(&self) {
        self.wait_until_consumed(streams::NOTIFY, consumers::NOTIFY_DURABLE)
            .await;
    }

    pub async fn wait_until_slot_events_consumed(&self) {
        self.wait_until_consumed(streams::SCHEDULING, consumers::SLOTS_DURABLE)
            .await;
    }

    /// Waits until the patient's feed holds `n` notifications, and returns them.
    pub async fn wait_for_feed(&self, patient_id: Uuid, n: usize) -> Vec<Value> {
        eventually(&format!("{n} notifications in the feed"), || async {
            let feed = self.feed(patient_id, "").await;
            (feed.len() == n).then_some(feed)
        })
        .await
    }

    /// Waits until the feed satisfies `done`, and returns it.
    pub async fn wait_for_feed_where(
        &self,
        patient_id: Uuid,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        eventually(what, || async {
            let feed = self.feed(patient_id, "").await;
            done(&feed).then_some(feed)
        })
        .await
    }

    /// Rows in the outbox, published or not.
    pub async fn outbox_rows(&self) -> u64 {
        slotcast_bus::outbox::entity::Entity::find()
            .count(&self.db)
            .await
            .unwrap()
    }
}

/// Polls `check` until it gives a value, or fails the test after a deadline.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    slotcast_test_support::eventually(PATIENCE, what, check).await
}

/// A `NotifyPatient` telling `patient_id` about `slots` new slots with Dr Ada Byron, starting
/// tomorrow.
pub fn notify_event(patient_id: Uuid, slots: usize, reason: WaitKind) -> CloudEvent<NotifyPatient> {
    // Postgres keeps microseconds: times with more would not read back equal.
    let now = Utc::now().trunc_subsecs(6);
    let tomorrow = now + chrono::Duration::days(1);
    let slots: Vec<OfferedSlot> = (0..slots)
        .map(|i| {
            let slot_id = Uuid::now_v7();
            let starts_at = tomorrow + chrono::Duration::hours(i as i64);
            OfferedSlot {
                slot_id,
                starts_at,
                ends_at: starts_at + chrono::Duration::minutes(30),
                booking_url: format!("http://127.0.0.1:8080/v1/offers/token-{slot_id}"),
                held_until: None,
            }
        })
        .collect();
    let slot_ids: Vec<Uuid> = slots.iter().map(|s| s.slot_id).collect();
    let event = CloudEvent::new(
        "slotcast/matching",
        NotifyPatient {
            notification_id: NotifyPatient::derive_id(patient_id, &slot_ids),
            patient: PatientContact {
                id: patient_id,
                name: "Grace Hopper".to_owned(),
                email: "grace@example.test".to_owned(),
                locale: "en".to_owned(),
                timezone: Some("Europe/Paris".to_owned()),
                phone: None,
            },
            practitioner: PractitionerCard {
                id: Uuid::now_v7(),
                name: "Ada Byron".to_owned(),
                specialty: "general practice".to_owned(),
                timezone: "Europe/Paris".to_owned(),
                consultation_fee_cents: Some(2500),
                currency: "EUR".to_owned(),
            },
            slots,
            reason,
            entry_id: Uuid::now_v7(),
            batch_id: Uuid::now_v7(),
            channels: Default::default(),
            wave: None,
            preferences_url: None,
            unsubscribe_url: None,
            sms_not_before: None,
        },
    );
    at(event, now)
}

/// The event with its time set to `time` (the feed is ordered by event time).
pub fn at(mut event: CloudEvent<NotifyPatient>, time: DateTime<Utc>) -> CloudEvent<NotifyPatient> {
    event.time = time.trunc_subsecs(6);
    event
}

/// Whether a problem+json response says so.
pub fn is_problem(response: &Response) -> bool {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/problem+json"))
}

/// `GET {address}/v1/patients/{patient}/notifications/stream`.
pub async fn open_stream(
    http: &reqwest::Client,
    address: &str,
    patient: &str,
    token: Option<&str>,
    last_event_id: Option<&str>,
) -> Response {
    let mut request = http.get(format!(
        "{address}/v1/patients/{patient}/notifications/stream"
    ));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    request.send().await.expect("the stream request")
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: String,
    pub event: String,
    pub data: Value,
}

/// An open notification stream, read event by event.
pub struct EventStream {
    response: Response,
    buffer: Vec<u8>,
}

impl EventStream {
    /// Checks that `response` is an open event stream.
    pub fn new(response: Response) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Self {
            response,
            buffer: Vec::new(),
        }
    }

    /// The next event; fails the test if none comes in time.
    pub async fn next(&mut self) -> SseEvent {
        self.next_within(PATIENCE)
            .await
            .expect("an event on the stream in time")
    }

    /// The next event, or `None` if none comes within `wait`. Keep-alive comments are skipped.
    pub async fn next_within(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let frame: Vec<u8> = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse_event(&String::from_utf8(frame).unwrap()) {
                    return Some(event);
                }
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return None,
                Ok(Ok(Some(bytes))) => self.buffer.extend_from_slice(&bytes),
                Ok(Ok(None)) => panic!("the stream ended"),
                Ok(Err(e)) => panic!("the stream failed: {e}"),
            }
        }
    }

    /// Whether the server ends the stream within `wait` (events before the end are skipped).
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return false,
                Ok(Ok(Some(_))) => continue,
                Ok(Ok(None)) | Ok(Err(_)) => return true,
            }
        }
    }
}

/// An event from its lines; `None` for a frame of comments only.
fn parse_event(frame: &str) -> Option<SseEvent> {
    let (mut id, mut event, mut data) = (None, None, Vec::new());
    for line in frame.lines() {
        if line.starts_with(':') || line.is_empty() {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value.to_owned()),
            "event" => event = Some(value.to_owned()),
            "data" => data.push(value),
            other => panic!("unexpected SSE field {other:?}"),
        }
    }
    if data.is_empty() {
        return None;
    }
    Some(SseEvent {
        id: id.expect("every event has an id"),
        event: event.expect("every event has a name"),
        data: serde_json::from_str(&data.join("\n")).expect("JSON data"),
    })
}
