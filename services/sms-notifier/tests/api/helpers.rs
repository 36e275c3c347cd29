//! `spawn_app()`: the real application in-process on port 0, with its own nats-server, Postgres
//! database and Kannel gateway (or the Twilio stand-in, or a folder of texts), and a NATS
//! subscription that records what it publishes.

use std::{
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{TimeZone, Utc};
use sea_orm::DatabaseConnection;
use slotcast_bus::JetStream;
use slotcast_events::{
    Channels, CloudEvent, Event, NotifyPatient, OfferedSlot, PatientContact, PractitionerCard,
    WaitKind, streams,
};
use slotcast_kit::{config::Common, retry::Backoff};
use slotcast_test_support::{KannelGateway, NatsServer, TestDatabase, TwilioStandIn};
use sms_notifier::{
    Application, Config,
    config::Retry,
    deliveries::{self, Delivery},
    gateway::GatewayUrl,
};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The secret of the address patients' texts are handed to.
pub const INBOUND_KEY: &str = "test-only-inbound-key";

/// How long a test waits for an effect before it fails.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// Where the app sends texts.
pub enum Texts {
    /// A real Kannel with the fake SMSC.
    Kannel,
    /// Kannel, with a password it refuses.
    KannelRefusingUs,
    /// The stand-in for Twilio's Messages API.
    Twilio,
    /// No `SMS_URL`: files in a temporary folder.
    Folder,
}

/// What the app published: each message's subject and payload.
type Published = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

pub struct TestApp {
    pub port: u16,
    pub db: DatabaseConnection,
    pub js: JetStream,
    pub kannel: Option<KannelGateway>,
    pub twilio: Option<TwilioStandIn>,
    pub folder: TempDir,
    published: Published,
    shutdown: CancellationToken,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
    _database: TestDatabase,
    _nats: NatsServer,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Texts::Kannel).await
}

pub async fn spawn_app_with(texts: Texts) -> TestApp {
    slotcast_test_support::init_tracing();
    let (nats, database) = tokio::join!(NatsServer::start(), TestDatabase::postgres());
    let (nats, database) = (
        nats.expect("nats-server starts"),
        database.expect("a Postgres test database"),
    );
    let kannel = match texts {
        Texts::Kannel | Texts::KannelRefusingUs => {
            Some(KannelGateway::start().await.expect("Kannel starts"))
        }
        Texts::Twilio | Texts::Folder => None,
    };
    let twilio = match texts {
        Texts::Twilio => Some(
            TwilioStandIn::start()
                .await
                .expect("the Twilio stand-in starts"),
        ),
        _ => None,
    };
    let folder = tempfile::tempdir().expect("a folder for texts");
    let gateway = match (&texts, &kannel, &twilio) {
        (Texts::Kannel, Some(k), _) => GatewayUrl::parse(&k.url()).unwrap(),
        (Texts::KannelRefusingUs, Some(k), _) => {
            GatewayUrl::parse(&k.url_with_wrong_password()).unwrap()
        }
        (Texts::Twilio, _, Some(t)) => GatewayUrl::parse(&t.url()).unwrap(),
        _ => GatewayUrl::Folder(folder.path().to_owned()),
    };

    let client = async_nats::connect(nats.url())
        .await
        .expect("a NATS client");
    let published: Published = Arc::new(Mutex::new(Vec::new()));
    for subject in [streams::DELIVERY_SUBJECTS, streams::DEADLETTER_SUBJECTS] {
        let mut subscription = client.subscribe(subject).await.expect("subscribed");
        let published = published.clone();
        tokio::spawn(async move {
            use futures::StreamExt as _;
            while let Some(m) = subscription.next().await {
                published
                    .lock()
                    .unwrap()
                    .push((m.subject.to_string(), m.payload.to_vec()));
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
        gateway,
        from: "slotcast".to_owned(),
        report_base_url: None,
        link_base_url: None,
        inbound_base_url: None,
        inbound_key: Some(INBOUND_KEY.to_owned()),
        // No scheduling here: what needs it is tested end to end (testing/e2e/tests/texts.rs).
        scheduling_url: "http://127.0.0.1:9".to_owned(),
        jwt_secret: Some("test-only-jwt-secret".to_owned()),
        concurrency: 4,
        retry: Retry {
            delays: Backoff::new(Duration::from_millis(200), Duration::from_secs(1)),
            horizon: Duration::from_secs(3600),
        },
    };
    let app = Application::build(config).await.expect("the app builds");
    let port = app.port();
    let db = app.db();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp {
        port,
        db,
        js,
        kannel,
        twilio,
        folder,
        published,
        shutdown,
        running,
        _database: database,
        _nats: nats,
    }
}

impl TestApp {
    pub fn kannel(&self) -> &KannelGateway {
        self.kannel.as_ref().expect("this app sends through Kannel")
    }

    pub fn twilio(&self) -> &TwilioStandIn {
        self.twilio
            .as_ref()
            .expect("this app sends through the Twilio stand-in")
    }

    /// Publishes `event` on its subject with its id as `Nats-Msg-Id`.
    pub async fn publish<T: Event>(&self, event: &CloudEvent<T>) {
        let body = serde_json::to_vec(event).unwrap();
        slotcast_bus::publish(&self.js, T::SUBJECT, &event.id.to_string(), body)
            .await
            .expect("published");
    }

    /// The events of type `T` the app has published so far.
    pub fn events<T: Event>(&self) -> Vec<CloudEvent<T>> {
        self.published
            .lock()
            .unwrap()
            .iter()
            .filter(|(subject, _)| subject == T::SUBJECT)
            .map(|(_, payload)| slotcast_events::decode::<T>(payload).expect("a valid event"))
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

    /// Waits until the consumer has acknowledged everything on `slotcast.notify.patient`.
    pub async fn wait_until_all_notifications_are_handled(&self) {
        eventually("every notification acknowledged", || async {
            let stream = self.js.get_stream(streams::NOTIFY).await.ok()?;
            let last = stream.get_info().await.ok()?.state.last_sequence;
            let consumer = stream.consumer_info(sms_notifier::SERVICE).await.ok()?;
            (consumer.ack_floor.stream_sequence >= last && consumer.num_ack_pending == 0)
                .then_some(())
        })
        .await
    }

    /// The delivery log row of `notification_id`.
    pub async fn delivery(&self, notification_id: Uuid) -> Option<Delivery> {
        deliveries::find(&self.db, notification_id)
            .await
            .expect("the delivery log is readable")
    }

    /// Waits until the delivery of `notification_id` satisfies `check`.
    pub async fn wait_for_delivery(
        &self,
        notification_id: Uuid,
        what: &str,
        check: impl Fn(&Delivery) -> bool,
    ) -> Delivery {
        eventually(what, || async {
            self.delivery(notification_id).await.filter(|d| check(d))
        })
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::get(self.url(path)).await.expect("the app answers")
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

/// A notification for a patient at `phone` who consented to texts, about two slots of
/// Dr Ada Lovelace (Europe/Paris) on Tuesday 1 December 2026 at 09:30 and 14:00.
pub fn notification(phone: &str, locale: &str) -> CloudEvent<NotifyPatient> {
    let patient_id = Uuid::now_v7();
    let token = format!("tok{}", Uuid::new_v4().simple());
    let slot = |h: u32| {
        let slot_id = Uuid::now_v7();
        let starts_at = Utc.with_ymd_and_hms(2026, 12, 1, h, 30, 0).unwrap();
        OfferedSlot {
            slot_id,
            starts_at,
            ends_at: starts_at + chrono::Duration::minutes(30),
            booking_url: format!("http://127.0.0.1:8080/v1/offers/{token}?slot_id={slot_id}"),
            held_until: None,
        }
    };
    let slots = vec![slot(8), slot(13)];
    let ids: Vec<_> = slots.iter().map(|s| s.slot_id).collect();
    CloudEvent::new(
        "matching",
        NotifyPatient {
            notification_id: NotifyPatient::derive_id(patient_id, &ids),
            patient: PatientContact {
                id: patient_id,
                name: "Grace Hopper".to_owned(),
                email: format!("grace.{}@patients.example", patient_id.simple()),
                locale: locale.to_owned(),
                timezone: Some("Europe/Paris".to_owned()),
                phone: Some(phone.to_owned()),
            },
            practitioner: PractitionerCard {
                id: Uuid::now_v7(),
                name: "Dr Ada Lovelace".to_owned(),
                specialty: "Cardiology".to_owned(),
                timezone: "Europe/Paris".to_owned(),
                consultation_fee_cents: None,
                currency: "EUR".to_owned(),
            },
            slots,
            reason: WaitKind::New,
            entry_id: Uuid::now_v7(),
            batch_id: Uuid::now_v7(),
            channels: Channels {
                email: true,
                inapp: true,
                sms: true,
            },
            wave: None,
            preferences_url: None,
            unsubscribe_url: None,
            sms_not_before: None,
        },
    )
}

/// The offer page a text links to: the booking link without its slot.
pub fn offer_page(event: &CloudEvent<NotifyPatient>) -> String {
    let url = &event.data.slots[0].booking_url;
    url.split('?').next().unwrap().to_owned()
}
