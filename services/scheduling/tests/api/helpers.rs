use std::{net::SocketAddr, time::Duration};

use async_nats::jetstream::{self, consumer::pull};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use scheduling::{Application, Config, Policy};
use serde_json::{Value, json};
use slotcast_kit::{
    auth::{AuthSettings, Role},
    config::Common,
    limits::LimitsConfig,
};
use slotcast_test_support::{NatsServer, TestDatabase};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const SECRET: &str = "test-only-jwt-secret";
pub const PUBLIC_BASE_URL: &str = "http://scheduling.test";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub staff: String,
    pub js: jetstream::Context,
    shutdown: CancellationToken,
    // Kept alive for the test's duration.
    _nats: NatsServer,
    _db: TestDatabase,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_on(TestDatabase::postgres().await.expect("postgres")).await
}

pub async fn spawn_app_on(db: TestDatabase) -> TestApp {
    spawn_app_with(db, Policy::default()).await
}

/// An app with these notification-policy settings.
pub async fn spawn_app_with(db: TestDatabase, policy: Policy) -> TestApp {
    spawn(db, policy, AuthSettings::default(), LimitsConfig::default()).await
}

/// An app with these policy settings and abuse limits.
pub async fn spawn_app_limited(db: TestDatabase, policy: Policy, limits: LimitsConfig) -> TestApp {
    spawn(db, policy, AuthSettings::default(), limits).await
}

/// An app that also takes an identity provider's tokens, as `auth` says.
pub async fn spawn_app_with_auth(auth: AuthSettings) -> TestApp {
    let db = TestDatabase::postgres().await.expect("postgres");
    spawn(db, Policy::default(), auth, LimitsConfig::default()).await
}

async fn spawn(
    db: TestDatabase,
    policy: Policy,
    auth: AuthSettings,
    limits: LimitsConfig,
) -> TestApp {
    slotcast_test_support::init_tracing();
    let nats = NatsServer::start().await.expect("nats-server");
    let config = Config {
        common: Common {
            nats_url: nats.url(),
            database_url: db.url(),
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stream_replicas: 1,
            db_max_connections: 4,
            limits,
        },
        jwt_secret: SECRET.to_owned(),
        auth,
        offer_keys: None,
        public_base_url: PUBLIC_BASE_URL.to_owned(),
        policy,
    };
    let app = Application::build(config)
        .await
        .expect("application builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let client = async_nats::connect(nats.url()).await.expect("nats client");
    TestApp {
        base,
        client: reqwest::Client::new(),
        staff: token(Uuid::now_v7(), Role::Staff),
        js: jetstream::new(client),
        shutdown,
        _nats: nats,
        _db: db,
    }
}

pub fn token(sub: Uuid, role: Role) -> String {
    slotcast_kit::auth::mint(SECRET, sub, role, chrono::Duration::minutes(30)).unwrap()
}

pub fn hours(h: i64) -> DateTime<Utc> {
    // Whole seconds, so times compare equal after a round trip through the API.
    let now = Utc::now().timestamp();
    DateTime::from_timestamp(now - now % 60 + h * 3600 + 3600, 0).unwrap()
}

pub fn slot_body(windows: &[(i64, i64)]) -> Value {
    json!({"slots": windows.iter().map(|(a, b)| json!({"starts_at": hours(*a), "ends_at": hours(*b)})).collect::<Vec<_>>()})
}

impl TestApp {
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request sent")
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    /// `GET path` as a browser asks for it (`Accept: text/html`), with no token.
    pub async fn page(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> reqwest::Response {
        self.send(reqwest::Method::PATCH, path, token, Some(body))
            .await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> reqwest::Response {
        self.send(reqwest::Method::PUT, path, token, Some(body))
            .await
    }

    /// A slot as `GET /v1/slots/{id}` shows it.
    pub async fn slot(&self, id: Uuid) -> Value {
        let res = self
            .get(&format!("/v1/slots/{id}"), Some(&self.staff))
            .await;
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// Polls (every 200 ms, up to 30 s) until the slot shows `status`.
    pub async fn wait_for_slot_status(&self, id: Uuid, status: &str) -> Value {
        for _ in 0..150 {
            let s = self.slot(id).await;
            if s["status"] == status {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("slot {id} never became {status}");
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        self.send(reqwest::Method::DELETE, path, token, None).await
    }

    pub async fn create_practitioner(&self) -> Uuid {
        let body = json!({"name": "Dr Ada Lovelace", "specialty": "General practice", "timezone": "Europe/Paris", "consultation_fee": 30});
        let res = self
            .post("/v1/practitioners", Some(&self.staff), body)
            .await;
        assert_eq!(res.status(), 201);
        id_of(res).await
    }

    pub async fn create_patient(&self, name: &str) -> Uuid {
        self.create_patient_with(json!({"name": name, "email": format!("{}@patients.example", name.to_lowercase()), "locale": "en"}))
            .await
    }

    /// A patient registered with `body` as staff (a phone number, a language).
    pub async fn create_patient_with(&self, body: Value) -> Uuid {
        let res = self.post("/v1/patients", Some(&self.staff), body).await;
        assert_eq!(res.status(), 201);
        id_of(res).await
    }

    /// `patient` joins `practitioner`'s waiting list for a first appointment; returns the entry.
    pub async fn joins(&self, patient: Uuid, practitioner: Uuid) -> Uuid {
        let body = json!({"patient_id": patient, "practitioner_id": practitioner, "kind": "new"});
        let res = self.post("/v1/waitlist", Some(&self.staff), body).await;
        assert_eq!(res.status(), 201);
        id_of(res).await
    }

    /// Posts slots as staff and returns their ids.
    pub async fn create_slots(&self, practitioner: Uuid, windows: &[(i64, i64)]) -> Vec<Uuid> {
        let res = self
            .post(
                &format!("/v1/practitioners/{practitioner}/slots"),
                Some(&self.staff),
                slot_body(windows),
            )
            .await;
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        body["slots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().parse().unwrap())
            .collect()
    }

    pub async fn book(&self, patient: Uuid, slot: Uuid) -> reqwest::Response {
        self.post(
            "/v1/appointments",
            Some(&self.staff),
            json!({"patient_id": patient, "slot_id": slot}),
        )
        .await
    }

    /// The events published on `subject` so far, waiting up to 10 s for at least `n`. Each is
    /// checked against its JSON Schema.
    pub async fn events(&self, subject: &str, n: usize) -> Vec<Value> {
        let stream = self
            .js
            .get_stream("SLOTCAST_SCHEDULING")
            .await
            .expect("stream exists");
        let consumer = stream
            .create_consumer(pull::Config {
                filter_subject: subject.to_owned(),
                ..Default::default()
            })
            .await
            .expect("ephemeral consumer");
        let mut messages = consumer.messages().await.unwrap();
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while events.len() < n {
            let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, messages.next()).await else {
                break;
            };
            let value: Value = serde_json::from_slice(&m.payload).unwrap();
            slotcast_contract::validate_event(subject, &value)
                .unwrap_or_else(|e| panic!("{subject}: {e}"));
            let msg_id = m
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.to_string());
            assert_eq!(
                msg_id.as_deref(),
                value["id"].as_str(),
                "Nats-Msg-Id is the CloudEvent id"
            );
            m.ack().await.unwrap();
            events.push(value);
        }
        events
    }
}

pub async fn id_of(res: reqwest::Response) -> Uuid {
    let body: Value = res.json().await.unwrap();
    body["id"].as_str().expect("an id").parse().unwrap()
}

/// Asserts a problem+json response with `status`, and returns its body.
pub async fn assert_problem(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status(), status, "status");
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(ct.as_deref(), Some("application/problem+json"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], status);
    body
}
