//! The whole slotcast system in one process, against real servers: a nats-server of its own, a
//! fresh Postgres database per service, an SMTP server that captures mail and, with
//! [`Stack::start_texting`], a Kannel SMS gateway whose fake SMSC records every text.
//!
//! [`Stack::start`] builds the four services exactly as their binaries do (same `Application`,
//! same migrations, streams and consumers) on port 0, and [`Stack`] offers an HTTP client for
//! both APIs and readers for the streams.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer::pull};
use futures::StreamExt;
use serde_json::Value;
use slotcast_kit::{auth::Role, config::Common, limits::LimitsConfig};
pub use slotcast_test_support::CapturedMail;
use slotcast_test_support::{KannelGateway, NatsServer, SmtpServer, TestDatabase};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The JWT secret of the test stack (never used outside tests).
pub const TEST_SECRET: &str = "test-only-jwt-secret";
/// The secret of the sms-notifier's address for patients' texts, in a texting stack.
pub const INBOUND_KEY: &str = "test-only-inbound-key";

pub struct Stack {
    pub nats: NatsServer,
    pub smtp: SmtpServer,
    /// The SMS gateway the sms-notifier sends through, when the stack texts.
    pub kannel: Option<KannelGateway>,
    pub js: jetstream::Context,
    pub http: reqwest::Client,
    pub scheduling: String,
    /// Matching's HTTP address (a slot's offer history).
    pub matching: String,
    pub inapp: String,
    /// The sms-notifier's HTTP address, when the stack texts.
    pub sms: Option<String>,
    pub staff: String,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dbs: Vec<TestDatabase>,
    _mail_dir: tempfile::TempDir,
}

fn common(nats: &NatsServer, db: &TestDatabase, limits: LimitsConfig) -> Common {
    Common {
        nats_url: nats.url(),
        database_url: db.url(),
        listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        stream_replicas: 1,
        db_max_connections: 4,
        limits,
    }
}

impl Stack {
    /// Starts the four services on fresh Postgres databases, with the default policy.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// Starts the four services, matching's policy (coalescing window, cap, waves) changed by
    /// `tune` from the defaults.
    pub async fn start_with(
        tune: impl FnOnce(&mut matching::policy::PolicyConfig),
    ) -> anyhow::Result<Self> {
        Self::start_limited(tune, LimitsConfig::default(), false).await
    }

    /// Starts the four services and the sms-notifier, which texts through a real Kannel, with
    /// no quiet hours (the tests run at any hour).
    pub async fn start_texting() -> anyhow::Result<Self> {
        Self::start_limited(|p| p.quiet_hours = None, LimitsConfig::default(), true).await
    }

    /// Starts the four services and the sms-notifier (through Kannel) with no abuse limit, for
    /// a client that fails authentication on purpose and often from one address (a fuzzer).
    pub async fn start_unlimited() -> anyhow::Result<Self> {
        let off = LimitsConfig {
            failed_auth_per_minute: 0,
            links_per_minute: 0,
            ..LimitsConfig::default()
        };
        Self::start_limited(|_| {}, off, true).await
    }

    async fn start_limited(
        tune: impl FnOnce(&mut matching::policy::PolicyConfig),
        limits: LimitsConfig,
        texting: bool,
    ) -> anyhow::Result<Self> {
        slotcast_kit::telemetry::init_for_tests("slotcast-e2e");
        let nats = NatsServer::start().await?;
        let smtp = SmtpServer::start().await?;
        let mut dbs = Vec::new();
        for _ in 0..if texting { 5 } else { 4 } {
            dbs.push(TestDatabase::postgres().await?);
        }
        let mail_dir = tempfile::tempdir()?;
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();

        // Its address is known before it starts: the booking links it shows point at itself.
        let port = slotcast_test_support::free_port();
        let scheduling_url = format!("http://127.0.0.1:{port}");
        let scheduling = scheduling::Application::build(scheduling::Config {
            common: Common {
                listen_addr: SocketAddr::from(([127, 0, 0, 1], port)),
                ..common(&nats, &dbs[0], limits)
            },
            jwt_secret: TEST_SECRET.to_owned(),
            auth: slotcast_kit::auth::AuthSettings::default(),
            offer_keys: None,
            public_base_url: scheduling_url.clone(),
            policy: scheduling::Policy::default(),
        })
        .await
        .context("scheduling")?;
        tasks.push(tokio::spawn(scheduling.run_until_stopped(shutdown.clone())));

        let mut policy = matching::policy::PolicyConfig::defaults(&scheduling_url);
        tune(&mut policy);
        let matching = matching::Application::build(matching::Config {
            common: common(&nats, &dbs[1], limits),
            jwt_secret: TEST_SECRET.to_owned(),
            auth: slotcast_kit::auth::AuthSettings::default(),
            offer_keys: None,
            public_base_url: scheduling_url.clone(),
            policy,
        })
        .await
        .context("matching")?;
        let matching_url = format!("http://127.0.0.1:{}", matching.port());
        tasks.push(tokio::spawn(matching.run_until_stopped(shutdown.clone())));

        let email = email_notifier::Application::build(email_notifier::Config {
            common: common(&nats, &dbs[2], limits),
            smtp_url: Some(smtp.url()),
            smtp_pool_size: 2,
            mail_dir: mail_dir.path().to_owned(),
            sending: email_notifier::handler::Sending {
                from: "Clinic <no-reply@clinic.example>".parse()?,
                concurrency: 4,
                max_unrecorded: 2,
                retry: email_notifier::handler::Retry {
                    delays: slotcast_kit::retry::Backoff::new(
                        Duration::from_millis(200),
                        Duration::from_secs(2),
                    ),
                    horizon: Duration::from_secs(3600),
                },
                lease: email_notifier::ACK_WAIT,
            },
        })
        .await
        .context("email-notifier")?;
        tasks.push(tokio::spawn(email.run_until_stopped(shutdown.clone())));

        let inapp = inapp_notifier::Application::build(inapp_notifier::Config {
            common: common(&nats, &dbs[3], limits),
            jwt_secret: TEST_SECRET.to_owned(),
            auth: slotcast_kit::auth::AuthSettings::default(),
        })
        .await
        .context("inapp-notifier")?;
        let inapp_url = format!("http://127.0.0.1:{}", inapp.port());
        tasks.push(tokio::spawn(inapp.run_until_stopped(shutdown.clone())));

        let kannel = if texting {
            // Its address is known before Kannel starts: Kannel hands it patients' texts.
            let sms_port = slotcast_test_support::free_port();
            let inbound = format!(
                "http://127.0.0.1:{sms_port}/v1/sms/inbound/{INBOUND_KEY}?from=%p&to=%P&text=%a&id=%I"
            );
            let kannel = KannelGateway::start_with_inbound(Some(&inbound)).await?;
            let sms = sms_notifier::Application::build(sms_notifier::Config {
                common: Common {
                    listen_addr: SocketAddr::from(([127, 0, 0, 1], sms_port)),
                    ..common(&nats, &dbs[4], limits)
                },
                gateway: sms_notifier::gateway::GatewayUrl::parse(&kannel.url())
                    .map_err(anyhow::Error::msg)?,
                from: "Clinic".to_owned(),
                report_base_url: None,
                link_base_url: None,
                inbound_base_url: None,
                inbound_key: Some(INBOUND_KEY.to_owned()),
                scheduling_url: scheduling_url.clone(),
                jwt_secret: Some(TEST_SECRET.to_owned()),
                concurrency: 4,
                retry: sms_notifier::config::Retry {
                    delays: slotcast_kit::retry::Backoff::new(
                        Duration::from_millis(200),
                        Duration::from_secs(2),
                    ),
                    horizon: Duration::from_secs(3600),
                },
            })
            .await
            .context("sms-notifier")?;
            tasks.push(tokio::spawn(sms.run_until_stopped(shutdown.clone())));
            Some((kannel, format!("http://127.0.0.1:{sms_port}")))
        } else {
            None
        };
        let (kannel, sms) = kannel.unzip();

        let js = jetstream::new(async_nats::connect(nats.url()).await?);
        Ok(Self {
            nats,
            smtp,
            kannel,
            js,
            http: reqwest::Client::new(),
            scheduling: scheduling_url,
            matching: matching_url,
            inapp: inapp_url,
            sms,
            staff: token(Uuid::now_v7(), Role::Staff),
            shutdown,
            tasks,
            _dbs: dbs,
            _mail_dir: mail_dir,
        })
    }

    /// Stops every service (as SIGTERM would) and reports how each ended.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        for task in self.tasks.drain(..) {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .context("a service did not stop")???;
        }
        Ok(())
    }

    /// POSTs JSON to scheduling as staff; returns status and body.
    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        let res = self
            .http
            .post(format!("{}{path}", self.scheduling))
            .bearer_auth(&self.staff)
            .json(&body)
            .send()
            .await?;
        let status = res.status().as_u16();
        Ok((status, res.json().await.unwrap_or(Value::Null)))
    }

    /// POSTs and expects 201; returns the body's `id`.
    pub async fn create(&self, path: &str, body: Value) -> anyhow::Result<Uuid> {
        let (status, body) = self.post(path, body).await?;
        anyhow::ensure!(status == 201, "POST {path}: {status} {body}");
        Ok(body["id"].as_str().context("id")?.parse()?)
    }

    /// A patient's in-app items about times to book (confirmations left out), read with the
    /// patient's own token.
    pub async fn feed(&self, patient: Uuid) -> anyhow::Result<Vec<Value>> {
        Ok(self
            .feed_all(patient)
            .await?
            .into_iter()
            .filter(|n| n.get("confirmation").is_none())
            .collect())
    }

    /// A patient's confirmations in the in-app feed, newest first.
    pub async fn confirmations_in_feed(&self, patient: Uuid) -> anyhow::Result<Vec<Value>> {
        Ok(self
            .feed_all(patient)
            .await?
            .into_iter()
            .filter(|n| n.get("confirmation").is_some())
            .collect())
    }

    /// Every item of a patient's in-app feed, read with the patient's own token.
    pub async fn feed_all(&self, patient: Uuid) -> anyhow::Result<Vec<Value>> {
        let res = self
            .http
            .get(format!(
                "{}/v1/patients/{patient}/notifications",
                self.inapp
            ))
            .bearer_auth(token(patient, Role::Patient))
            .send()
            .await?;
        anyhow::ensure!(res.status() == 200, "feed: {}", res.status());
        let body: Value = res.json().await?;
        Ok(body["notifications"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Opens the patient's live feed (Server-Sent Events) where their feed page left off.
    pub async fn feed_stream(&self, patient: Uuid) -> anyhow::Result<FeedStream> {
        let url = format!("{}/v1/patients/{patient}/notifications", self.inapp);
        let page = self
            .http
            .get(&url)
            .bearer_auth(token(patient, Role::Patient))
            .send()
            .await?;
        let last = page
            .headers()
            .get("feed-last-event-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("0")
            .to_owned();
        let response = self
            .http
            .get(format!("{url}/stream"))
            .bearer_auth(token(patient, Role::Patient))
            .header("Last-Event-ID", last)
            .send()
            .await?;
        anyhow::ensure!(response.status() == 200, "stream: {}", response.status());
        Ok(FeedStream {
            response,
            buffer: String::new(),
        })
    }

    /// GETs `url` with `token`; returns status and JSON body.
    pub async fn get(&self, url: &str, token: &str) -> anyhow::Result<(u16, Value)> {
        let res = self.http.get(url).bearer_auth(token).send().await?;
        let status = res.status().as_u16();
        Ok((status, res.json().await.unwrap_or(Value::Null)))
    }

    /// The confirmations (emails with a calendar entry) captured for `address`, oldest first.
    pub fn confirmations_mailed_to(&self, address: &str) -> Vec<CapturedMail> {
        self.smtp
            .messages()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == address) && is_confirmation(m))
            .collect()
    }

    /// Waits until the durable consumer `durable` of `stream` has nothing pending and nothing
    /// unacknowledged, and has been handed at least up to `sequence` of the stream.
    pub async fn consumer_done(
        &self,
        stream: &str,
        durable: &str,
        sequence: u64,
    ) -> anyhow::Result<()> {
        let stream = self.js.get_stream(stream).await?;
        self.eventually(Duration::from_secs(20), durable, || {
            let stream = stream.clone();
            async move {
                let info = stream.consumer_info(durable).await?;
                Ok(info.num_pending == 0
                    && info.num_ack_pending == 0
                    && info.delivered.stream_sequence >= sequence)
            }
        })
        .await
    }

    /// The booking links in the mail captured for `address` so far, oldest mail first; each
    /// as (the link's offer token, the slot it points at). Confirmations are left out.
    pub fn links_mailed_to(&self, address: &str) -> Vec<Vec<(String, Uuid)>> {
        let marker = format!("{}/v1/offers/", self.scheduling);
        self.smtp
            .messages()
            .iter()
            .filter(|m| m.to.iter().any(|t| t == address) && !is_confirmation(m))
            .map(|m| {
                let text = m.body_text();
                let mut links = Vec::new();
                for (start, _) in text.match_indices(&marker) {
                    let rest = &text[start + marker.len()..];
                    let end = rest
                        .find(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>')
                        .unwrap_or(rest.len());
                    let Some((token, query)) = rest[..end].split_once("?slot_id=") else {
                        continue;
                    };
                    let Ok(slot) = query.parse() else { continue };
                    let link = (token.to_owned(), slot);
                    if !links.contains(&link) {
                        links.push(link);
                    }
                }
                links
            })
            .collect()
    }

    /// Claims `slot` with a link's `token`, as a patient's browser would without a session.
    pub async fn claim(&self, token: &str, slot: Uuid) -> anyhow::Result<(u16, Value)> {
        let res = self
            .http
            .post(format!("{}/v1/offers/{token}/claim", self.scheduling))
            .json(&serde_json::json!({ "slot_id": slot }))
            .send()
            .await?;
        let status = res.status().as_u16();
        Ok((status, res.json().await.unwrap_or(Value::Null)))
    }

    /// Every event on `stream` (optionally only `subject`) published so far, each checked
    /// against its JSON Schema.
    pub async fn events(
        &self,
        stream: &str,
        subject: Option<&str>,
    ) -> anyhow::Result<Vec<(String, Value)>> {
        Ok(self
            .messages(stream, subject)
            .await?
            .into_iter()
            .map(|m| (m.subject, m.event))
            .collect())
    }

    /// Like [`Stack::events`], with each message's headers.
    pub async fn messages(
        &self,
        stream: &str,
        subject: Option<&str>,
    ) -> anyhow::Result<Vec<Published>> {
        let stream = self.js.get_stream(stream).await?;
        let config = pull::Config {
            filter_subject: subject.unwrap_or_default().to_owned(),
            ..Default::default()
        };
        let consumer = stream.create_consumer(config).await?;
        let mut out = Vec::new();
        loop {
            let mut batch = consumer
                .fetch()
                .max_messages(500)
                .expires(Duration::from_millis(300))
                .messages()
                .await?;
            let mut got = 0;
            while let Some(m) = batch.next().await {
                let m = m.map_err(|e| anyhow::anyhow!("{e}"))?;
                let event: Value = serde_json::from_slice(&m.payload)?;
                slotcast_contract::validate_event(&m.subject, &event)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let header = |name: &str| {
                    m.headers
                        .as_ref()
                        .and_then(|h| h.get(name))
                        .map(|v| v.to_string())
                };
                out.push(Published {
                    subject: m.subject.to_string(),
                    msg_id: header("Nats-Msg-Id"),
                    traceparent: header("traceparent"),
                    event,
                });
                m.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
                got += 1;
            }
            if got == 0 {
                return Ok(out);
            }
        }
    }

    /// Waits until `check` holds, polling, for up to `within`.
    pub async fn eventually<F, Fut>(
        &self,
        within: Duration,
        what: &str,
        mut check: F,
    ) -> anyhow::Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<bool>>,
    {
        slotcast_test_support::poll(within, what, || {
            let checked = check();
            async move { Ok(checked.await?.then_some(())) }
        })
        .await
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A patient's open live feed.
pub struct FeedStream {
    response: reqwest::Response,
    buffer: String,
}

/// One Server-Sent Event: `id`, `event` and the JSON `data`.
#[derive(Debug, Clone)]
pub struct FeedEvent {
    pub id: String,
    pub kind: String,
    pub data: Value,
}

impl FeedStream {
    /// The next event within `within`, keep-alive comments skipped.
    pub async fn next(&mut self, within: Duration) -> anyhow::Result<FeedEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut kind, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim_start().to_owned();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        kind = v.trim_start().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Ok(FeedEvent {
                    id,
                    kind,
                    data: serde_json::from_str(&data)?,
                });
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .context("no feed event in time")??
                .context("the feed stream ended")?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// A message read back from a stream.
#[derive(Debug, Clone)]
pub struct Published {
    pub subject: String,
    pub event: Value,
    pub msg_id: Option<String>,
    pub traceparent: Option<String>,
}

impl Published {
    /// The trace id of its `traceparent` header.
    pub fn trace_id(&self) -> Option<&str> {
        self.traceparent.as_deref()?.split('-').nth(1)
    }
}

/// Whether `mail` confirms an appointment: it carries a calendar entry.
pub fn is_confirmation(mail: &CapturedMail) -> bool {
    mail.parts().iter().any(|p| p.mime_type == "text/calendar")
}

/// A session token of the test stack.
pub fn token(sub: Uuid, role: Role) -> String {
    slotcast_kit::auth::mint(TEST_SECRET, sub, role, chrono::Duration::hours(1)).unwrap_or_default()
}
