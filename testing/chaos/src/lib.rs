//! The fault-injection harness: the four services as real processes (their release or debug
//! binaries from the cargo target directory), a nats-server of their own (single, or a
//! three-node cluster), a fresh Postgres database per service, and an SMTP server that captures
//! mail and can be told to fail. With [`Options::texts`], the sms-notifier too, sending through a
//! real Kannel whose fake SMSC records every text; every seeded patient then has a number and
//! consented, and the texts are counted like the emails.
//!
//! A case seeds a practitioner and a few hundred waiting patients, posts slots, injects its
//! fault while the fan-out runs ([`System::kill_when`]), waits until the system has settled
//! ([`System::settle`]: every durable consumer has nothing pending or unacknowledged and every
//! outbox is published), then counts ([`System::verify`]) what each patient got: emails at the
//! SMTP server, notifications in their in-app feed, `notify.patient` messages in the stream.
//!
//! The binaries must be built first (`cargo build --workspace --bins`; `make test` and
//! `make chaos` do). `CHAOS_BIN_DIR` points elsewhere; `CHAOS_PATIENTS` changes the size of the
//! fan-out (default 300), `CHAOS_PRACTITIONERS` the number of practitioners of the cases of many
//! practitioners at once (default 40; see the `clinics` module). Each process writes its log to a file; a failed case prints the tail
//! of every log.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs::OpenOptions,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, bail, ensure};
use async_nats::jetstream;
use futures::{StreamExt as _, TryStreamExt as _};
use sea_orm::{ConnectionTrait as _, DatabaseConnection, DbBackend, Statement};
use serde_json::{Value, json};
use slotcast_events::streams;
use slotcast_kit::auth::Role;
use slotcast_test_support::{KannelGateway, NatsCluster, NatsServer, SmtpServer, TestDatabase};
use tokio::time::Instant;
use uuid::Uuid;

mod clinics;

pub use clinics::{Clinics, Due, Entry, Scheduling, Slot};

/// The JWT secret of the chaos systems (never used outside these tests).
pub const SECRET: &str = "chaos-test-only-jwt-secret";

/// One of the services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    Scheduling,
    Matching,
    EmailNotifier,
    InappNotifier,
    /// Only with [`Options::texts`].
    SmsNotifier,
}

impl Service {
    pub const ALL: [Service; 4] = [
        Service::Scheduling,
        Service::Matching,
        Service::EmailNotifier,
        Service::InappNotifier,
    ];

    /// The binary's (and the package's) name.
    pub fn binary(self) -> &'static str {
        match self {
            Service::Scheduling => "scheduling",
            Service::Matching => "matching",
            Service::EmailNotifier => "email-notifier",
            Service::InappNotifier => "inapp-notifier",
            Service::SmsNotifier => "sms-notifier",
        }
    }
}

/// The folder holding the service binaries: `CHAOS_BIN_DIR`, else the profile folder this test
/// binary was built into (`target/debug/deps/..`).
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CHAOS_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe()?;
    let deps = exe.parent().context("test binary without a folder")?;
    Ok(deps.parent().unwrap_or(deps).to_owned())
}

fn binary(service: Service) -> anyhow::Result<PathBuf> {
    let path = bin_dir()?.join(service.binary());
    ensure!(
        path.is_file(),
        "{} is missing: build the services first (`cargo build --workspace --bins`, which `make \
         test` and `make chaos` do), or set CHAOS_BIN_DIR",
        path.display()
    );
    Ok(path)
}

/// How many waiting patients a fan-out reaches: `CHAOS_PATIENTS`, default 300.
pub fn patients() -> usize {
    std::env::var("CHAOS_PATIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(300)
}

/// How many practitioners the cases of many practitioners at once run: `CHAOS_PRACTITIONERS`,
/// default 40 (at least 2, so a patient can wait on two).
pub fn practitioners() -> usize {
    std::env::var("CHAOS_PRACTITIONERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40usize)
        .max(2)
}

/// The shape of a system under test.
#[derive(Debug, Clone)]
pub struct Options {
    /// Processes per service, all on the service's one database and durable consumers.
    pub replicas: usize,
    /// Processes of matching, when not `replicas`.
    pub matching_replicas: Option<usize>,
    /// A three-node JetStream cluster (streams R3) instead of one server.
    pub cluster: bool,
    /// Extra environment of matching (its policy: waves, holds).
    pub matching_env: Vec<(&'static str, String)>,
    /// The sms-notifier too, through a real Kannel; seeded patients have numbers and consent.
    pub texts: bool,
    /// Processes of the sms-notifier, when not `replicas`.
    pub sms_replicas: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            replicas: 1,
            matching_replicas: None,
            cluster: false,
            matching_env: Vec::new(),
            texts: false,
            sms_replicas: None,
        }
    }
}

/// The NATS the system runs on.
pub enum Nats {
    Single(NatsServer),
    Cluster(NatsCluster),
}

impl Nats {
    pub fn url(&self) -> String {
        match self {
            Nats::Single(s) => s.url(),
            Nats::Cluster(c) => c.url(),
        }
    }
}

/// One running (or killed) service process.
pub struct Proc {
    pub service: Service,
    pub replica: usize,
    pub port: u16,
    env: Vec<(String, String)>,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(binary(self.service)?)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", self.service.binary()))?;
        self.child = Some(child);
        Ok(())
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, like a crash or the OOM killer: nothing is finished or handed back.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.as_mut().map(Child::try_wait) {
            None => Some("killed".to_owned()),
            Some(Ok(None)) => None,
            Some(Ok(Some(status))) => Some(status.to_string()),
            Some(Err(e)) => Some(e.to_string()),
        }
    }

    fn name(&self) -> String {
        format!("{}#{}", self.service.binary(), self.replica)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// What a fan-out has reached so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// `notify.patient` messages in the stream (matching's decisions, published).
    pub notified: u64,
    /// Emails the SMTP server accepted.
    pub emailed: usize,
    /// Notifications stored in the in-app feeds.
    pub stored: u64,
    /// Texts the fake SMSC received.
    pub texted: usize,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} notify.patient published, {} emails accepted, {} in-app stored, {} texted",
            self.notified, self.emailed, self.stored, self.texted
        )
    }
}

/// The practitioner and the waiting patients of a case.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub practitioner: Uuid,
    /// Each patient's id and email address.
    pub patients: Vec<(Uuid, String)>,
    /// Each patient's number, when the system texts.
    pub phones: BTreeMap<Uuid, String>,
}

/// What one channel (email, in-app, the `notify.patient` stream) brought the patients, counted
/// in offers (a patient and a slot), not in messages: a dispatcher that fell behind (a database
/// cut, a restart) rightly sends the slots then pending for a patient as one message.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub messages: usize,
    /// Distinct (patient, slot) pairs offered.
    pub offers: usize,
    /// Messages identical to an earlier one to the same patient (same slots): a re-send.
    pub duplicates: usize,
    /// Offers of a slot to a patient who had it in another, different message: told twice.
    pub told_twice: usize,
    /// Offers short of the expected, summed over patients.
    pub missing: usize,
    /// Distinct slots beyond the expected (to a patient who should have had none, say).
    pub unexpected: usize,
}

impl Tally {
    /// Adds one patient's messages (each the set of slots it offered), of which `expected`
    /// distinct slots were due.
    fn add(&mut self, messages: &[BTreeSet<Uuid>], expected: usize) {
        let distinct: BTreeSet<&BTreeSet<Uuid>> = messages.iter().collect();
        let offered: BTreeSet<Uuid> = distinct.iter().flat_map(|m| m.iter().copied()).collect();
        self.messages += messages.len();
        self.offers += offered.len();
        self.duplicates += messages.len() - distinct.len();
        self.told_twice += distinct.iter().map(|m| m.len()).sum::<usize>() - offered.len();
        self.missing += expected.saturating_sub(offered.len());
        self.unexpected += offered.len().saturating_sub(expected);
    }

    /// Adds one patient's messages, where every slot of `must` was due once and a slot of
    /// `may` could be told once or not at all (withdrawn while it was being offered).
    pub fn add_sets(
        &mut self,
        messages: &[BTreeSet<Uuid>],
        must: &BTreeSet<Uuid>,
        may: &BTreeSet<Uuid>,
    ) {
        let distinct: BTreeSet<&BTreeSet<Uuid>> = messages.iter().collect();
        let offered: BTreeSet<Uuid> = distinct.iter().flat_map(|m| m.iter().copied()).collect();
        self.messages += messages.len();
        self.offers += offered.len();
        self.duplicates += messages.len() - distinct.len();
        self.told_twice += distinct.iter().map(|m| m.len()).sum::<usize>() - offered.len();
        self.missing += must.difference(&offered).count();
        self.unexpected += offered
            .iter()
            .filter(|s| !must.contains(s) && !may.contains(s))
            .count();
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} offers in {} messages (duplicates {}, told twice {}, missing {}, unexpected {})",
            self.offers,
            self.messages,
            self.duplicates,
            self.told_twice,
            self.missing,
            self.unexpected
        )
    }
}

/// What every patient got, counted after the system settled.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub patients: usize,
    /// Slots each patient should have been offered, once each (one slot per posting); 0 when
    /// each patient had slots of their own ([`Report::due_offers`]).
    pub expected_each: usize,
    /// Offers due in all, summed over patients.
    pub due_offers: usize,
    pub email: Tally,
    pub inapp: Tally,
    /// What matching published.
    pub notify: Tally,
    /// What the fake SMSC received, when the system texts.
    pub sms: Option<Tally>,
    /// Texts re-sent after an attempt whose outcome was unknown, as the running sms-notifier
    /// processes counted them.
    pub sms_resent_after_unknown: u64,
    /// Re-sends after an attempt whose outcome was unknown (the documented crash window), as
    /// counted by the running email-notifier processes.
    pub resent_after_unknown: u64,
    /// Dead letters in the dead-letter stream.
    pub dead_letters: u64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.expected_each > 0 {
            write!(
                f,
                "{} patients × {} slots",
                self.patients, self.expected_each
            )?;
        } else {
            write!(
                f,
                "{} patients, {} offers due",
                self.patients, self.due_offers
            )?;
        }
        write!(
            f,
            ": email {} (re-sent after unknown outcome {}), in-app {}, notify.patient {}, dead \
             letters {}",
            self.email, self.resent_after_unknown, self.inapp, self.notify, self.dead_letters,
        )?;
        if let Some(sms) = &self.sms {
            write!(
                f,
                ", sms {sms} (re-sent after unknown outcome {})",
                self.sms_resent_after_unknown
            )?;
        }
        Ok(())
    }
}

impl Report {
    /// Everyone was offered every slot exactly once, on every channel, but for email re-sends
    /// inside the documented crash window (each one counted by the email-notifier as a re-send
    /// after an unknown outcome).
    pub fn assert_exactly_once(&self) -> anyhow::Result<()> {
        ensure!(self.email.missing == 0, "emails lost: {self}");
        ensure!(self.inapp.missing == 0, "in-app notifications lost: {self}");
        ensure!(
            self.inapp.duplicates == 0 && self.inapp.told_twice == 0,
            "in-app duplicates: {self}"
        );
        ensure!(
            self.notify.missing == 0 && self.notify.duplicates == 0 && self.notify.told_twice == 0,
            "matching told patients a wrong number of times: {self}"
        );
        ensure!(self.email.told_twice == 0, "a slot emailed twice: {self}");
        ensure!(
            self.email.unexpected + self.inapp.unexpected + self.notify.unexpected == 0,
            "offers nobody expected: {self}"
        );
        ensure!(
            self.email.duplicates as u64 <= self.resent_after_unknown,
            "email duplicates outside the crash window: {self}"
        );
        if let Some(sms) = &self.sms {
            ensure!(sms.missing == 0, "texts lost: {self}");
            ensure!(
                sms.told_twice == 0 && sms.unexpected == 0,
                "a slot texted twice, or to someone who should not have it: {self}"
            );
            ensure!(
                sms.duplicates as u64 <= self.sms_resent_after_unknown,
                "texts sent twice outside the crash window: {self}"
            );
        }
        Ok(())
    }
}

/// The whole system as processes.
pub struct System {
    pub nats: Nats,
    pub smtp: SmtpServer,
    pub js: jetstream::Context,
    pub http: reqwest::Client,
    pub staff: String,
    pub procs: Vec<Proc>,
    /// The SMS gateway, when the system texts.
    pub kannel: Option<KannelGateway>,
    /// The services running, each with its database.
    pub services: Vec<Service>,
    dbs: BTreeMap<Service, (TestDatabase, DatabaseConnection)>,
    logs: tempfile::TempDir,
}

impl System {
    /// Starts NATS, SMTP, the databases and `replicas` processes of every service, and waits
    /// until every process answers `/readyz`.
    pub async fn start(options: Options) -> anyhow::Result<Self> {
        slotcast_test_support::init_tracing();
        let nats = if options.cluster {
            Nats::Cluster(NatsCluster::start(3).await?)
        } else {
            Nats::Single(NatsServer::start().await?)
        };
        let smtp = SmtpServer::start().await?;
        let kannel = if options.texts {
            Some(KannelGateway::start().await?)
        } else {
            None
        };
        let mut services = Service::ALL.to_vec();
        if options.texts {
            services.push(Service::SmsNotifier);
        }
        let mut dbs = BTreeMap::new();
        for &service in &services {
            let db = TestDatabase::postgres().await?;
            let conn = db.connect().await?;
            dbs.insert(service, (db, conn));
        }
        let logs = tempfile::tempdir()?;
        let stream_replicas = if options.cluster { "3" } else { "1" };

        let mut procs = Vec::new();
        let mut public_base_url = None;
        for &service in &services {
            let replicas = match (service, options.matching_replicas, options.sms_replicas) {
                (Service::Matching, Some(n), _) | (Service::SmsNotifier, _, Some(n)) => n,
                _ => options.replicas,
            };
            for replica in 0..replicas.max(1) {
                let port = slotcast_test_support::free_port();
                let url = format!("http://127.0.0.1:{port}");
                if service == Service::Scheduling && public_base_url.is_none() {
                    public_base_url = Some(url.clone());
                }
                let mut env = vec![
                    ("NATS_URL", nats.url()),
                    ("DATABASE_URL", dbs[&service].0.url()),
                    ("LISTEN_ADDR", format!("127.0.0.1:{port}")),
                    ("JWT_SECRET", SECRET.to_owned()),
                    ("NATS_STREAM_REPLICAS", stream_replicas.to_owned()),
                    ("DATABASE_MAX_CONNECTIONS", "4".to_owned()),
                    ("RUST_LOG", "info".to_owned()),
                    ("PUBLIC_BASE_URL", public_base_url.clone().unwrap_or(url)),
                ];
                if service == Service::Matching {
                    // Each posting is its own message (the counts below rely on it), and no
                    // patient reaches the daily cap in these cases.
                    env.extend([
                        ("COALESCE_WINDOW_MS", "0".to_owned()),
                        ("DAILY_MESSAGE_CAP", "0".to_owned()),
                    ]);
                    env.extend(options.matching_env.iter().cloned());
                    if options.texts {
                        // The cases run at any hour: no text waits for the morning.
                        env.push(("QUIET_HOURS", "off".to_owned()));
                    }
                }
                if service == Service::EmailNotifier {
                    env.extend([
                        ("SMTP_URL", smtp.url()),
                        ("SMTP_FROM", "Clinic <no-reply@clinic.example>".to_owned()),
                        ("EMAIL_RETRY_BASE_MS", "200".to_owned()),
                        ("EMAIL_RETRY_MAX_MS", "2000".to_owned()),
                    ]);
                }
                if let (Service::SmsNotifier, Some(kannel)) = (service, &kannel) {
                    env.extend([
                        ("SMS_URL", kannel.url()),
                        ("SMS_FROM", "Clinic".to_owned()),
                        ("SMS_RETRY_BASE_MS", "200".to_owned()),
                        ("SMS_RETRY_MAX_MS", "2000".to_owned()),
                    ]);
                }
                let mut proc = Proc {
                    service,
                    replica,
                    port,
                    env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                    child: None,
                    log: logs
                        .path()
                        .join(format!("{}-{replica}.log", service.binary())),
                };
                proc.spawn()?;
                procs.push(proc);
            }
        }
        let js = jetstream::new(
            slotcast_bus::connect(&nats.url(), "chaos", Duration::from_secs(20))
                .await
                .context("the test's own NATS client")?,
        );
        let system = Self {
            nats,
            smtp,
            js,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            staff: token(Uuid::now_v7(), Role::Staff),
            procs,
            kannel,
            services,
            dbs,
            logs,
        };
        system.wait_ready(Duration::from_secs(60)).await?;
        Ok(system)
    }

    /// The first scheduling process's address.
    pub fn scheduling(&self) -> String {
        self.proc(Service::Scheduling, 0).url()
    }

    /// The first inapp-notifier process's address.
    pub fn inapp(&self) -> String {
        self.proc(Service::InappNotifier, 0).url()
    }

    fn proc(&self, service: Service, replica: usize) -> &Proc {
        self.procs
            .iter()
            .find(|p| p.service == service && p.replica == replica)
            .expect("no such process")
    }

    fn proc_mut(&mut self, service: Service, replica: usize) -> &mut Proc {
        self.procs
            .iter_mut()
            .find(|p| p.service == service && p.replica == replica)
            .expect("no such process")
    }

    /// The database of `service` (a pooled connection of the test's own).
    pub fn db(&self, service: Service) -> &DatabaseConnection {
        &self.dbs[&service].1
    }

    /// The Postgres name of each service's database.
    pub fn database_names(&self) -> Vec<String> {
        self.dbs
            .values()
            .filter_map(|(db, _)| db.postgres_name().map(str::to_owned))
            .collect()
    }

    /// Waits until every process that runs (was not killed) answers `/readyz` with 200.
    pub async fn wait_ready(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        for proc in self.procs.iter().filter(|p| p.child.is_some()) {
            loop {
                if self.answers(proc, "/readyz").await {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "{} not ready within {within:?}\n{}",
                        proc.name(),
                        self.logs()
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    async fn answers(&self, proc: &Proc, path: &str) -> bool {
        match self.http.get(format!("{}{path}", proc.url())).send().await {
            Ok(res) => res.status().is_success(),
            Err(_) => false,
        }
    }

    /// Fails unless every process is alive and answers `/readyz` and `/healthz` right now.
    pub async fn assert_serving(&mut self) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        for i in 0..self.procs.len() {
            if let Some(how) = self.procs[i].exited() {
                problems.push(format!("{} exited: {how}", self.procs[i].name()));
                continue;
            }
            for path in ["/healthz", "/readyz"] {
                if !self.answers(&self.procs[i], path).await {
                    problems.push(format!("{} does not answer {path}", self.procs[i].name()));
                }
            }
        }
        ensure!(
            problems.is_empty(),
            "{}\n{}",
            problems.join("\n"),
            self.logs()
        );
        Ok(())
    }

    /// kill -9 of one process.
    pub fn kill9(&mut self, service: Service, replica: usize) {
        self.proc_mut(service, replica).kill9();
    }

    /// Starts a killed process again (same port, database and environment) and waits until it
    /// is ready.
    pub async fn restart(&mut self, service: Service, replica: usize) -> anyhow::Result<()> {
        let proc = self.proc_mut(service, replica);
        proc.kill9();
        proc.spawn()?;
        self.wait_ready(Duration::from_secs(60)).await
    }

    /// The last lines of every process's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for proc in &self.procs {
            let text = std::fs::read_to_string(&proc.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(15)..];
            out.push_str(&format!(
                "--- {} (last {} lines)\n{}\n",
                proc.name(),
                tail.len(),
                tail.join("\n")
            ));
        }
        out
    }

    /// Where the process logs are.
    pub fn log_dir(&self) -> &Path {
        self.logs.path()
    }

    /// POSTs JSON to scheduling as staff; returns status and body.
    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        let res = self
            .http
            .post(format!("{}{path}", self.scheduling()))
            .bearer_auth(&self.staff)
            .json(&body)
            .send()
            .await?;
        let status = res.status().as_u16();
        Ok((status, res.json().await.unwrap_or(Value::Null)))
    }

    async fn create(&self, path: &str, body: Value) -> anyhow::Result<Uuid> {
        let (status, body) = self.post(path, body).await?;
        ensure!(status == 201, "POST {path}: {status} {body}");
        Ok(body["id"].as_str().context("no id")?.parse()?)
    }

    /// A practitioner and `n` patients waiting for a first appointment with them, at any time.
    pub async fn seed(&self, n: usize) -> anyhow::Result<Seeded> {
        self.seed_with(n, "broadcast").await
    }

    /// Like [`System::seed`], the practitioner offering openings by `offer_policy`.
    pub async fn seed_with(&self, n: usize, offer_policy: &str) -> anyhow::Result<Seeded> {
        let practitioner = self
            .create(
                "/v1/practitioners",
                json!({"name": "Dr Chaos", "specialty": "General practice", "timezone": "UTC", "offer_policy": offer_policy}),
            )
            .await?;
        let run = &Uuid::new_v4().simple().to_string()[..8];
        let seeded: Vec<(Uuid, String, Option<String>)> = futures::stream::iter(0..n)
            .map(|i| async move {
                let email = format!("patient-{i}-{run}@patients.example");
                let phone = self.kannel.as_ref().map(|_| phone_of(i));
                let id = self
                    .create(
                        "/v1/patients",
                        json!({"name": format!("Patient {i}"), "email": email, "phone": phone}),
                    )
                    .await?;
                if phone.is_some() {
                    self.consent_to_texts(id).await?;
                }
                self.create(
                    "/v1/waitlist",
                    json!({"patient_id": id, "practitioner_id": practitioner, "kind": "new"}),
                )
                .await?;
                anyhow::Ok((id, email, phone))
            })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        Ok(Seeded {
            practitioner,
            patients: seeded
                .iter()
                .map(|(id, email, _)| (*id, email.clone()))
                .collect(),
            phones: seeded
                .into_iter()
                .filter_map(|(id, _, phone)| Some((id, phone?)))
                .collect(),
        })
    }

    /// Records `patient`'s consent to texts.
    async fn consent_to_texts(&self, patient: Uuid) -> anyhow::Result<()> {
        let res = self
            .http
            .put(format!(
                "{}/v1/patients/{patient}/preferences",
                self.scheduling()
            ))
            .bearer_auth(&self.staff)
            .json(&json!({"sms": true}))
            .send()
            .await?;
        ensure!(
            res.status() == 200,
            "consent of {patient}: {}",
            res.status()
        );
        Ok(())
    }

    /// Posts one slot starting `hours` from the next full hour; returns its id.
    pub async fn post_slot(&self, practitioner: Uuid, hours: i64) -> anyhow::Result<Uuid> {
        let now = chrono::Utc::now().timestamp();
        let start = chrono::DateTime::from_timestamp(now - now % 3600 + (hours + 1) * 3600, 0)
            .context("time out of range")?;
        let (status, body) = self
            .post(
                &format!("/v1/practitioners/{practitioner}/slots"),
                json!({"slots": [{"starts_at": start, "ends_at": start + chrono::Duration::minutes(20)}]}),
            )
            .await?;
        ensure!(status == 201, "posting a slot: {status} {body}");
        Ok(body["slots"][0]["id"]
            .as_str()
            .context("no slot id")?
            .parse()?)
    }

    /// How far the fan-out has got.
    pub async fn progress(&self) -> anyhow::Result<Progress> {
        let notified = self.stream_messages(streams::NOTIFY).await.unwrap_or(0);
        // Confirmations of bookings are not part of the fan-out.
        let stored = count(
            self.db(Service::InappNotifier),
            "SELECT count(*) AS n FROM notifications WHERE confirmation IS NULL",
        )
        .await
        .unwrap_or(0);
        Ok(Progress {
            notified,
            texted: self.kannel.as_ref().map_or(0, |k| k.messages().len()),
            emailed: self
                .smtp
                .messages()
                .iter()
                .filter(|m| !is_confirmation(m))
                .count(),
            stored,
        })
    }

    async fn stream_info(&self, stream: &str) -> anyhow::Result<jetstream::stream::Info> {
        self.js
            .get_stream(stream)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .get_info()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    async fn stream_messages(&self, stream: &str) -> anyhow::Result<u64> {
        Ok(self.stream_info(stream).await?.state.messages)
    }

    /// Polls the fan-out until `when` holds (or `within` passes), and returns what it had
    /// reached at that moment. The caller injects its fault right after.
    pub async fn wait_for<F>(&self, within: Duration, mut when: F) -> anyhow::Result<Progress>
    where
        F: FnMut(&Progress) -> bool,
    {
        let deadline = Instant::now() + within;
        loop {
            let progress = self.progress().await?;
            if when(&progress) {
                return Ok(progress);
            }
            ensure!(
                Instant::now() < deadline,
                "the fan-out never reached the point of the fault ({progress})\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until the system has settled: every durable consumer on every stream has nothing
    /// pending and nothing unacknowledged, and every service's outbox is published, twice in a
    /// row a second apart. Returns how long that took.
    pub async fn settle(&self, within: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let mut calm = 0;
        loop {
            let busy = self.busy().await;
            match &busy {
                Ok(None) => calm += 1,
                _ => calm = 0,
            }
            if calm >= 2 {
                return Ok(started.elapsed() - Duration::from_secs(1));
            }
            ensure!(
                started.elapsed() < within,
                "the system did not settle within {within:?}: {}\n{}",
                match busy {
                    Ok(Some(what)) => what,
                    Ok(None) => "calm only once".to_owned(),
                    Err(e) => format!("{e:#}"),
                },
                self.logs()
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// What is still in flight, if anything: messages, outboxes, and offers or openings
    /// matching has not sent yet (the coalescing window, a wave due).
    async fn busy(&self) -> anyhow::Result<Option<String>> {
        if let Some(what) = slotcast_test_support::in_flight(
            &self.js,
            self.dbs
                .iter()
                .map(|(service, (_, db))| (service.binary(), db)),
        )
        .await?
        {
            return Ok(Some(what));
        }
        let pending = count(
            self.db(Service::Matching),
            "SELECT (SELECT count(*) FROM pending) \
             + (SELECT count(*) FROM openings WHERE due_at IS NOT NULL) AS n",
        )
        .await?;
        Ok((pending > 0).then(|| format!("matching has {pending} offers or openings to send")))
    }

    /// How many availability emails each address received (confirmations left out).
    pub fn emails_to(&self, address: &str) -> usize {
        self.smtp
            .messages()
            .iter()
            .filter(|m| m.to.iter().any(|t| t == address) && !is_confirmation(m))
            .count()
    }

    /// Counts what each patient got for `postings` separate postings of slots.
    pub async fn verify(&self, seeded: &Seeded, postings: usize) -> anyhow::Result<Report> {
        self.verify_except(seeded, postings, &[]).await
    }

    /// Like [`System::verify`], where the addresses `refused` (by the SMTP server, for good)
    /// should have had no email at all.
    pub async fn verify_except(
        &self,
        seeded: &Seeded,
        postings: usize,
        refused: &[String],
    ) -> anyhow::Result<Report> {
        let mut report = Report {
            patients: seeded.patients.len(),
            expected_each: postings,
            due_offers: seeded.patients.len() * postings,
            ..Report::default()
        };
        let mut mailed: BTreeMap<String, Vec<BTreeSet<Uuid>>> = BTreeMap::new();
        for mail in self.smtp.messages().iter().filter(|m| !is_confirmation(m)) {
            let slots = booked_slots(&mail.body_text());
            for to in &mail.to {
                mailed
                    .entry(to.to_lowercase())
                    .or_default()
                    .push(slots.clone());
            }
        }
        let feeds: Vec<Vec<BTreeSet<Uuid>>> = futures::stream::iter(&seeded.patients)
            .map(|(id, _)| self.feed(*id))
            .buffered(16)
            .try_collect()
            .await?;
        let mut told = self.notified().await?;
        let mut texted = self.texted().await?;
        let mut sms = self.kannel.as_ref().map(|_| Tally::default());
        for ((id, email), feed) in seeded.patients.iter().zip(feeds) {
            if let Some(sms) = sms.as_mut() {
                let texts = seeded.phones.get(id).and_then(|p| texted.remove(p));
                sms.add(&texts.unwrap_or_default(), postings);
            }
            let expected = if refused.contains(email) { 0 } else { postings };
            let emails = mailed.remove(&email.to_lowercase()).unwrap_or_default();
            report.email.add(&emails, expected);
            report.inapp.add(&feed, postings);
            report
                .notify
                .add(&told.remove(id).unwrap_or_default(), postings);
        }
        report.sms = sms;
        if self.kannel.is_some() {
            report.sms_resent_after_unknown = self
                .metric(
                    Service::SmsNotifier,
                    "slotcast_sms_resend_after_unknown_total",
                )
                .await? as u64;
        }
        report.dead_letters = self.stream_messages(streams::DEADLETTER).await?;
        report.resent_after_unknown = self
            .metric(
                Service::EmailNotifier,
                "slotcast_email_resend_after_unknown_total",
            )
            .await? as u64;
        Ok(report)
    }

    /// The slots of each text the fake SMSC received, by number: a text's short link names its
    /// delivery, whose row keeps what it offered.
    async fn texted(&self) -> anyhow::Result<BTreeMap<String, Vec<BTreeSet<Uuid>>>> {
        let Some(kannel) = &self.kannel else {
            return Ok(BTreeMap::new());
        };
        let rows = self
            .db(Service::SmsNotifier)
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT short_id, offered FROM sms_deliveries",
            ))
            .await?;
        let mut offered: BTreeMap<String, BTreeSet<Uuid>> = BTreeMap::new();
        for row in rows {
            let short_id: String = row.try_get("", "short_id")?;
            let json: Option<String> = row.try_get("", "offered")?;
            let slots: BTreeSet<Uuid> = json
                .and_then(|j| serde_json::from_str::<Value>(&j).ok())
                .and_then(|v| {
                    v["slots"].as_array().map(|slots| {
                        slots
                            .iter()
                            .filter_map(|s| s[0].as_str()?.parse().ok())
                            .collect()
                    })
                })
                .unwrap_or_default();
            offered.insert(short_id, slots);
        }
        let mut texted: BTreeMap<String, Vec<BTreeSet<Uuid>>> = BTreeMap::new();
        for text in kannel.messages() {
            let short_id = text.text.rsplit("/s/").next().unwrap_or_default().trim();
            let slots = offered.get(short_id).cloned().unwrap_or_default();
            texted.entry(text.to).or_default().push(slots);
        }
        Ok(texted)
    }

    /// Asks for every text's delivery report again, as a gateway that repeats itself would:
    /// `reports` times each, with Kannel's code for delivered.
    pub async fn repeat_delivery_reports(&self, reports: usize) -> anyhow::Result<usize> {
        let rows = self
            .db(Service::SmsNotifier)
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT notification_id, report_key FROM sms_deliveries",
            ))
            .await?;
        let base = self.proc_url(Service::SmsNotifier, 0);
        let mut sent = 0;
        for row in &rows {
            let id: Uuid = row.try_get("", "notification_id")?;
            let key: String = row.try_get("", "report_key")?;
            for _ in 0..reports {
                let res = self
                    .http
                    .get(format!("{base}/v1/sms/reports/{id}/{key}?status=1"))
                    .send()
                    .await?;
                ensure!(res.status() == 200, "report for {id}: {}", res.status());
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// `slotcast.delivery.sms.delivered` events in the stream.
    pub async fn texts_reported_delivered(&self) -> anyhow::Result<usize> {
        let stream = self
            .js
            .get_stream(streams::DELIVERY)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let state = self.stream_info(streams::DELIVERY).await?.state;
        let mut delivered = 0;
        for seq in state.first_sequence..=state.last_sequence {
            let Ok(message) = stream.get_raw_message(seq).await else {
                continue;
            };
            if message.subject.as_str() == slotcast_events::subjects::SMS_DELIVERED {
                delivered += 1;
            }
        }
        Ok(delivered)
    }

    /// The slots of each notification in `patient`'s in-app feed.
    async fn feed(&self, patient: Uuid) -> anyhow::Result<Vec<BTreeSet<Uuid>>> {
        let res = self
            .http
            .get(format!(
                "{}/v1/patients/{patient}/notifications",
                self.inapp()
            ))
            .bearer_auth(token(patient, Role::Patient))
            .send()
            .await?;
        ensure!(res.status() == 200, "feed of {patient}: {}", res.status());
        let body: Value = res.json().await?;
        Ok(body["notifications"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|n| {
                        n["slots"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|s| s["slot_id"].as_str()?.parse().ok())
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The slots of each `notify.patient` message in the stream, by patient (malformed
    /// messages, such as the poison a case publishes, left out).
    async fn notified(&self) -> anyhow::Result<BTreeMap<Uuid, Vec<BTreeSet<Uuid>>>> {
        let mut told: BTreeMap<Uuid, Vec<BTreeSet<Uuid>>> = BTreeMap::new();
        for (_, event) in self.notify_events().await? {
            told.entry(event.patient.id)
                .or_default()
                .push(event.slots.iter().map(|s| s.slot_id).collect());
        }
        Ok(told)
    }

    /// Every well-formed `notify.patient` event in the stream with its stream sequence, in
    /// stream order.
    pub async fn notify_events(
        &self,
    ) -> anyhow::Result<Vec<(u64, slotcast_events::NotifyPatient)>> {
        let stream = self
            .js
            .get_stream(streams::NOTIFY)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let state = self.stream_info(streams::NOTIFY).await?.state;
        let mut events = Vec::new();
        for seq in state.first_sequence..=state.last_sequence {
            let Ok(message) = stream.get_raw_message(seq).await else {
                continue;
            };
            let Ok(event) = serde_json::from_slice::<
                slotcast_events::CloudEvent<slotcast_events::NotifyPatient>,
            >(&message.payload) else {
                continue;
            };
            events.push((seq, event.data));
        }
        Ok(events)
    }

    async fn metrics_of(&self, proc: &Proc) -> anyhow::Result<String> {
        Ok(self
            .http
            .get(format!("{}/metrics", proc.url()))
            .send()
            .await?
            .text()
            .await?)
    }

    /// Kills one process with SIGKILL, waits `down`, and starts it again.
    pub async fn kill9_and_restart(
        &mut self,
        service: Service,
        replica: usize,
        down: Duration,
    ) -> anyhow::Result<()> {
        self.kill9(service, replica);
        tokio::time::sleep(down).await;
        self.restart(service, replica).await
    }

    /// The sum of a counter over the running processes of `service` (every label set).
    pub async fn metric(&self, service: Service, name: &str) -> anyhow::Result<f64> {
        let mut total = 0.0;
        for proc in self.procs.iter().filter(|p| p.service == service) {
            if proc.child.is_none() {
                continue;
            }
            total += sum_metric(&self.metrics_of(proc).await?, name);
        }
        Ok(total)
    }
}

impl System {
    /// The address of one process.
    pub fn proc_url(&self, service: Service, replica: usize) -> String {
        self.proc(service, replica).url()
    }

    /// The index of the cluster node leading `stream` (nodes are named `n<i>`).
    pub async fn stream_leader(&self, stream: &str) -> anyhow::Result<usize> {
        let leader = self
            .stream_info(stream)
            .await?
            .cluster
            .and_then(|c| c.leader)
            .context("the stream has no leader")?;
        leader
            .strip_prefix('n')
            .and_then(|i| i.parse().ok())
            .with_context(|| format!("unexpected node name {leader}"))
    }

    /// Waits until at least `k` email deliveries are recorded `failed`; returns how many are.
    pub async fn wait_for_failed_deliveries(
        &self,
        k: u64,
        within: Duration,
    ) -> anyhow::Result<u64> {
        let deadline = Instant::now() + within;
        loop {
            let failed = count(
                self.db(Service::EmailNotifier),
                "SELECT count(*) AS n FROM email_deliveries WHERE status = 'failed'",
            )
            .await?;
            if failed >= k {
                return Ok(failed);
            }
            ensure!(
                Instant::now() < deadline,
                "only {failed} failed deliveries within {within:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// How the consumed messages were shared out among the replicas of each notifier, so far.
    pub async fn work_split(&self) -> anyhow::Result<String> {
        let mut parts = Vec::new();
        for &service in self.services.iter().filter(|s| **s != Service::Scheduling) {
            let mut counts = Vec::new();
            for proc in self.procs.iter().filter(|p| p.service == service) {
                let text = self.metrics_of(proc).await?;
                counts.push(format!(
                    "{}",
                    sum_metric(&text, "slotcast_messages_total") as u64
                ));
            }
            parts.push(format!("{} {}", service.binary(), counts.join("/")));
        }
        Ok(format!(
            "messages handled per replica: {}",
            parts.join(", ")
        ))
    }

    /// Publishes two malformed messages on every subject of the catalogue (one not JSON, one a
    /// CloudEvent whose data is wrong) and one on an unknown subject of each stream; returns
    /// how many.
    pub async fn publish_poison(&self) -> anyhow::Result<usize> {
        let mut subjects: Vec<String> = slotcast_events::CATALOGUE
            .iter()
            .map(|(subject, _)| (*subject).to_owned())
            .collect();
        subjects.extend([
            "slotcast.scheduling.nothing.known".to_owned(),
            "slotcast.notify.nobody".to_owned(),
            "slotcast.delivery.pigeon.sent".to_owned(),
        ]);
        let mut published = 0;
        for subject in &subjects {
            let envelope = json!({
                "specversion": "1.0",
                "id": Uuid::now_v7(),
                "source": "/chaos",
                "type": format!("{subject}.v1"),
                "time": chrono::Utc::now(),
                "subject": "poison",
                "datacontenttype": "application/json",
                "data": {"unexpected": true},
            });
            for body in [b"{not json".to_vec(), serde_json::to_vec(&envelope)?] {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(
                    async_nats::header::NATS_MESSAGE_ID,
                    Uuid::now_v7().to_string().as_str(),
                );
                self.js
                    .publish_with_headers(subject.clone(), headers, body.into())
                    .await?
                    .await?;
                published += 1;
            }
        }
        Ok(published)
    }

    /// Dead letters as counted by every running process (`slotcast_dead_letters_total`).
    pub async fn dead_letters_counted(&self) -> anyhow::Result<f64> {
        let mut total = 0.0;
        for &service in &self.services {
            total += self.metric(service, "slotcast_dead_letters_total").await?;
        }
        Ok(total)
    }

    /// Messages in the dead-letter stream.
    pub async fn dead_letters_in_stream(&self) -> anyhow::Result<u64> {
        self.stream_messages(streams::DEADLETTER).await
    }
}

/// The sum of every sample of `name` in a Prometheus text exposition.
pub fn sum_metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn count(db: &DatabaseConnection, sql: &str) -> anyhow::Result<u64> {
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await?
        .context("no row")?;
    Ok(row.try_get::<i64>("", "n")? as u64)
}

/// The number of the `i`th seeded patient, when the system texts: French mobiles, one each.
pub fn phone_of(i: usize) -> String {
    format!("+3361{i:07}")
}

/// A session token for the chaos systems.
pub fn token(sub: Uuid, role: Role) -> String {
    slotcast_kit::auth::mint(SECRET, sub, role, chrono::Duration::hours(2)).unwrap_or_default()
}

/// Whether `mail` confirms an appointment (it carries a calendar entry) rather than offering
/// times: the fan-out's counts leave confirmations out.
pub fn is_confirmation(mail: &slotcast_test_support::CapturedMail) -> bool {
    mail.parts().iter().any(|p| p.mime_type == "text/calendar")
}

/// The slots an email offers: the `slot_id` of each booking link in its text.
fn booked_slots(text: &str) -> BTreeSet<Uuid> {
    text.split("slot_id=")
        .skip(1)
        .filter_map(|rest| rest.get(..36)?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_is_summed_over_its_label_sets() {
        let text = "# TYPE x counter\nx_total{a=\"1\"} 2\nx_total{a=\"2\"} 3\nx_total_other 9\nx_total 1\n";
        assert_eq!(sum_metric(text, "x_total"), 6.0);
        assert_eq!(sum_metric(text, "nope"), 0.0);
    }

    #[test]
    fn the_slots_of_an_email_are_those_of_its_booking_links() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let text = format!(
            "Book: https://x/v1/offers/t?slot_id={a}\nBook: https://x/v1/offers/t?slot_id={b}\n\
             <a href=\"https://x/v1/offers/t?slot_id={a}\">Book</a> slot_id=broken"
        );
        assert_eq!(booked_slots(&text), BTreeSet::from([a, b]));
    }

    #[test]
    fn a_tally_counts_offers_not_messages() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut tally = Tally::default();
        // Both slots in one message (a dispatcher behind), then the same message re-sent.
        tally.add(&[BTreeSet::from([a, b]), BTreeSet::from([a, b])], 2);
        assert_eq!(
            (
                tally.messages,
                tally.offers,
                tally.duplicates,
                tally.told_twice,
                tally.missing
            ),
            (2, 2, 1, 0, 0)
        );
        // One slot in two different messages: told twice; the other never: missing.
        let mut tally = Tally::default();
        tally.add(&[BTreeSet::from([a]), BTreeSet::from([a, b])], 3);
        // A patient who should have had nothing.
        tally.add(&[BTreeSet::from([a])], 0);
        assert_eq!(tally.unexpected, 1);
        assert_eq!(
            (tally.duplicates, tally.told_twice, tally.missing),
            (0, 1, 1)
        );
    }
}
