//! `spawn_app()`: the real application in-process on port 0, with its own nats-server, database,
//! SMTP server (or mail folder), and a NATS subscription that records what it publishes.

use std::{
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{TimeZone, Utc};
use email_notifier::{
    Application, Config,
    handler::{Retry, Sending},
};
use futures::StreamExt;
use sea_orm::DatabaseConnection;
use slotcast_bus::JetStream;
use slotcast_events::{
    CloudEvent, DeadLetter, Event, NotifyPatient, OfferedSlot, PatientContact, PractitionerCard,
    WaitKind, streams, subjects,
};
use slotcast_kit::config::Common;
use slotcast_kit::retry::Backoff;
use slotcast_test_support::{NatsServer, SmtpServer, TestDatabase};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a test waits for an effect before it fails.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// Which database the app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Postgres,
    Sqlite,
}

/// Where the app sends mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mail {
    /// A real SMTP server (`SMTP_URL` set).
    Smtp,
    /// No `SMTP_URL`: `.eml` files in a temporary `MAIL_DIR`.
    Folder,
}

/// A message the app published, as seen by a core subscription.
#[derive(Debug, Clone)]
pub struct Published {
    pub subject: String,
    pub payload: Vec<u8>,
}

pub struct TestApp {
    pub port: u16,
    pub db: DatabaseConnection,
    pub js: JetStream,
    pub smtp: Option<SmtpServer>,
    pub mail_dir: TempDir,
    published: Arc<Mutex<Vec<Published>>>,
    shutdown: CancellationToken,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
    // Dropped last: the servers outlive the app's connections.
    _database: TestDatabase,
    _nats: NatsServer,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Db::Postgres, Mail::Smtp).await
}

pub async fn spawn_app_with(db: Db, mail: Mail) -> TestApp {
    spawn_app_retrying_for(db, mail, Duration::from_secs(3600)).await
}

/// An app that retries temporary SMTP failures for `horizon` after the first attempt.
pub async fn spawn_app_retrying_for(db: Db, mail: Mail, horizon: Duration) -> TestApp {
    slotcast_test_support::init_tracing();
    let nats = NatsServer::start().await.expect("nats-server starts");
    let database = match db {
        Db::Postgres => TestDatabase::postgres()
            .await
            .expect("a Postgres test database"),
        Db::Sqlite => TestDatabase::sqlite().expect("a SQLite test database"),
    };
    let smtp = match mail {
        Mail::Smtp => Some(SmtpServer::start().await.expect("the SMTP server starts")),
        Mail::Folder => None,
    };
    let mail_dir = tempfile::tempdir().expect("a mail folder");

    // Subscribed (and flushed) before anything is published, so nothing is missed.
    let client = async_nats::connect(nats.url())
        .await
        .expect("a NATS client");
    let published = Arc::new(Mutex::new(Vec::new()));
    for subject in [streams::DELIVERY_SUBJECTS, streams::DEADLETTER_SUBJECTS] {
        let mut subscription = client.subscribe(subject).await.expect("subscribed");
        let published = published.clone();
        tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                let seen = Published {
                    subject: message.subject.to_string(),
                    payload: message.payload.to_vec(),
                };
                published.lock().unwrap().push(seen);
            }
        });
    }
    client.flush().await.expect("subscriptions flushed");
    let js = async_nats::jetstream::new(client);
    slotcast_bus::ensure_streams(&js, 1).await.expect("streams");

    let config = Config {
        common: Common {
            nats_url: nats.url(),
            database_url: database.url(),
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stream_replicas: 1,
            db_max_connections: 5,
            limits: Default::default(),
        },
        smtp_url: smtp.as_ref().map(|s| s.url()),
        smtp_pool_size: 2,
        mail_dir: mail_dir.path().join("mail"),
        sending: Sending {
            from: "slotcast <no-reply@slotcast.localhost>".parse().unwrap(),
            concurrency: 4,
            max_unrecorded: 2,
            retry: Retry {
                delays: Backoff::new(Duration::from_millis(200), Duration::from_secs(1)),
                horizon,
            },
            lease: email_notifier::ACK_WAIT,
        },
    };
    let app = Application::build(config).await.expect("the app builds");
    let port = app.port();
    let app_db = app.db();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp {
        port,
        db: app_db,
        js,
        smtp,
        mail_dir,
        published,
        shutdown,
        running,
        _database: database,
        _nats: nats,
    }
}

impl TestApp {
    pub fn smtp(&self) -> &SmtpServer {
        self.smtp.as_ref().expect("this app sends through SMTP")
    }

    /// Publishes `event` on its subject with its id as `Nats-Msg-Id`.
    pub async fn publish<T: Event>(&self, event: &CloudEvent<T>) {
        let body = serde_json::to_vec(event).unwrap();
        slotcast_bus::publish(&self.js, T::SUBJECT, &event.id.to_string(), body)
            .await
            .expect("published");
    }

    /// Publishes raw bytes on `slotcast.notify.patient`.
    pub async fn publish_raw(&self, payload: &[u8]) {
        let id = Uuid::now_v7().to_string();
        slotcast_bus::publish(&self.js, subjects::NOTIFY_PATIENT, &id, payload.to_vec())
            .await
            .expect("published");
    }

    /// The events of type `T` the app has published so far.
    pub fn events<T: Event>(&self) -> Vec<CloudEvent<T>> {
        self.published
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.subject == T::SUBJECT)
            .map(|m| slotcast_events::decode::<T>(&m.payload).expect("a valid event"))
            .collect()
    }

    /// Waits until `n` events of type `T` have been published.
    pub async fn wait_for_events<T: Event>(&self, n: usize) -> Vec<CloudEvent<T>> {
        eventually(&format!("{n} event(s) on {}", T::SUBJECT), || async {
            let events = self.events::<T>();
            (events.len() >= n).then_some(events)
        })
        .await
    }

    /// Waits for a dead letter of the email-notifier.
    pub async fn wait_for_dead_letter(&self) -> DeadLetter {
        let subject = format!(
            "{}.{}",
            subjects::DEADLETTER_PREFIX,
            email_notifier::SERVICE
        );
        eventually("a dead letter", || async {
            let published = self.published.lock().unwrap();
            published
                .iter()
                .find(|m| m.subject == subject)
                .map(|m| serde_json::from_slice(&m.payload).expect("a dead letter"))
        })
        .await
    }

    /// Waits until the consumer has acknowledged everything on `slotcast.notify.patient`.
    pub async fn wait_until_all_notifications_are_handled(&self) {
        eventually("every notification acknowledged", || async {
            let stream = self.js.get_stream(streams::NOTIFY).await.ok()?;
            let last = stream.get_info().await.ok()?.state.last_sequence;
            let consumer = stream.consumer_info(email_notifier::SERVICE).await.ok()?;
            (consumer.ack_floor.stream_sequence >= last && consumer.num_ack_pending == 0)
                .then_some(())
        })
        .await
    }

    /// The delivery log row of `notification_id`.
    pub async fn delivery(
        &self,
        notification_id: Uuid,
    ) -> Option<email_notifier::deliveries::Delivery> {
        email_notifier::deliveries::find(&self.db, notification_id)
            .await
            .expect("the delivery log is readable")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.running.abort();
    }
}

/// Polls `probe` until it gives a value; panics after [`PATIENCE`], naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    slotcast_test_support::eventually(PATIENCE, what, probe).await
}

/// A notification for a patient about two slots of Dr Ada Lovelace (Europe/Paris) on
/// Tuesday 1 December 2026: 09:30–10:00 and 14:00–14:45 Paris time.
pub fn notification(reason: WaitKind) -> CloudEvent<NotifyPatient> {
    let patient_id = Uuid::now_v7();
    let slot = |h: u32, m: u32, minutes: i64| {
        let slot_id = Uuid::now_v7();
        let starts_at = Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0).unwrap();
        OfferedSlot {
            slot_id,
            starts_at,
            ends_at: starts_at + chrono::Duration::minutes(minutes),
            booking_url: format!(
                "http://127.0.0.1:8080/v1/offers/tok-{}?slot={slot_id}",
                Uuid::new_v4().simple()
            ),
            held_until: None,
        }
    };
    let slots = vec![slot(8, 30, 30), slot(13, 0, 45)];
    let ids: Vec<_> = slots.iter().map(|s| s.slot_id).collect();
    let data = NotifyPatient {
        notification_id: NotifyPatient::derive_id(patient_id, &ids),
        patient: PatientContact {
            id: patient_id,
            name: "Grace Hopper".to_owned(),
            email: format!("grace.{}@patients.example", patient_id.simple()),
            locale: "en".to_owned(),
            timezone: Some("America/New_York".to_owned()),
            phone: None,
        },
        practitioner: PractitionerCard {
            id: Uuid::now_v7(),
            name: "Dr Ada Lovelace".to_owned(),
            specialty: "Cardiology".to_owned(),
            timezone: "Europe/Paris".to_owned(),
            consultation_fee_cents: Some(8000),
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
    };
    CloudEvent::new("matching", data)
}

/// The same notification under a new event id (a second decision, or a re-publish after the
/// stream's duplicate window).
pub fn republished(event: &CloudEvent<NotifyPatient>) -> CloudEvent<NotifyPatient> {
    CloudEvent::new("matching", event.data.clone())
}
