//! The system under test, as real processes: a nats-server of its own and a fresh Postgres
//! database per service (test-support's, as the tests use them), Postfix's `smtp-sink`, and the
//! four release binaries. Everything is stopped and dropped again by [`System::stop`] (or, on a
//! panic, by the processes' and test-support's `Drop`).

use std::{
    collections::HashMap,
    io::Read as _,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, bail};
use sea_orm::DatabaseConnection;
use slotcast_test_support::{NatsServer, TestDatabase, try_free_port};

/// The four services, in start order.
pub const SERVICES: [&str; 4] = ["scheduling", "matching", "email-notifier", "inapp-notifier"];

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Process {
    pub name: String,
    child: Child,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn spawn(name: &str, mut command: Command) -> anyhow::Result<Self> {
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name} ({command:?})"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
        })
    }

    /// SIGTERM, and SIGKILL if it has not exited within `patience`.
    pub fn stop(&mut self, patience: Duration) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + patience;
        while std::time::Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// A binary on `PATH` or in the sbin folders, where Debian puts smtp-sink.
pub fn find_binary(name: &str, env: &str) -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/usr/local/sbin", "/usr/local/bin"])
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("{name} not found (set {env}, or see `make bench-prerequisites`)"))
}

/// Postfix's `smtp-sink`: accepts every message and throws it away; `-c` makes it print
/// `sess=N quit=N mesg=N` on every change, which [`SmtpSink::accepted`] follows.
pub struct SmtpSink {
    pub process: Process,
    pub port: u16,
    accepted: Arc<AtomicU64>,
}

impl SmtpSink {
    pub fn start() -> anyhow::Result<Self> {
        let bin = find_binary("smtp-sink", "SMTP_SINK_BIN")?;
        let port = try_free_port()?;
        let mut command = Command::new(bin);
        // As root it must drop privileges; as anyone else `-u` is refused.
        if is_root() {
            command.args(["-u", "nobody"]);
        }
        command
            .args(["-c", &format!("127.0.0.1:{port}"), "1024"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut process = Process::spawn("smtp-sink", command)?;
        let mut stdout = process.child.stdout.take().context("smtp-sink stdout")?;
        let accepted = Arc::new(AtomicU64::new(0));
        let counter = accepted.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut line = Vec::new();
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                for &b in &buf[..n] {
                    if b == b'\r' || b == b'\n' {
                        if let Some(m) = parse_mesg(&line) {
                            counter.store(m, Ordering::Release);
                        }
                        line.clear();
                    } else {
                        line.push(b);
                    }
                }
            }
        });
        Ok(Self {
            process,
            port,
            accepted,
        })
    }

    /// Messages the sink has accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Acquire)
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }
}

fn parse_mesg(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?;
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("mesg="))
        .and_then(|n| n.parse().ok())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// The fresh Postgres databases of one run (test-support's: each is dropped with it).
pub struct Databases {
    databases: Vec<TestDatabase>,
}

impl Databases {
    pub async fn create(admin_url: &str, count: usize) -> anyhow::Result<Self> {
        let mut databases = Vec::with_capacity(count);
        for _ in 0..count {
            databases.push(TestDatabase::postgres_at(admin_url).await?);
        }
        Ok(Self { databases })
    }

    /// Their names, in the order created.
    pub fn names(&self) -> Vec<String> {
        let name = |d: &TestDatabase| d.postgres_name().unwrap_or_default().to_owned();
        self.databases.iter().map(name).collect()
    }

    fn get(&self, name: &str) -> anyhow::Result<&TestDatabase> {
        self.databases
            .iter()
            .find(|d| d.postgres_name() == Some(name))
            .with_context(|| format!("no bench database {name}"))
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> anyhow::Result<String> {
        Ok(self.get(name)?.url())
    }

    pub async fn connect(&self, name: &str) -> anyhow::Result<DatabaseConnection> {
        self.get(name)?.connect().await
    }
}

/// One running service.
pub struct Service {
    pub process: Process,
    pub port: u16,
    pub db: String,
}

impl Service {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Everything the benchmark runs.
pub struct System {
    pub dir: PathBuf,
    pub nats: NatsServer,
    pub nats_url: String,
    pub sink: SmtpSink,
    pub databases: Databases,
    pub services: Vec<Service>,
    /// Matching processes beyond the first (`matching-2`, …), on the same database and NATS.
    pub matching_replicas: Vec<Service>,
    pub jwt_secret: String,
    pub bin_dir: PathBuf,
    public_base_url: String,
    settings: Settings,
}

/// How the services are configured.
#[derive(Debug, Clone)]
pub struct Settings {
    pub email_concurrency: usize,
    /// `EMAIL_MAX_UNRECORDED`: the email crash window.
    pub email_max_unrecorded: usize,
    pub smtp_pool_size: usize,
    /// matching's `COALESCE_WINDOW_MS`: how long an offer waits for others to the same patient.
    pub coalesce_window_ms: usize,
    pub rust_log: String,
}

impl System {
    pub async fn start(dir: &Path, settings: &Settings) -> anyhow::Result<Self> {
        let bin_dir = std::env::current_exe()?
            .parent()
            .context("no folder for the bench binary")?
            .to_path_buf();
        for s in SERVICES {
            if !bin_dir.join(s).is_file() {
                bail!(
                    "{} is missing: build it with `cargo build --release -p {s}` (or run `make bench`)",
                    bin_dir.join(s).display()
                );
            }
        }
        std::fs::create_dir_all(dir.join("logs"))?;

        let nats = NatsServer::start().await?;
        let nats_url = nats.url();

        let sink = SmtpSink::start()?;
        wait_for_port(sink.port, Duration::from_secs(10)).await?;

        let admin_url = std::env::var("BENCH_POSTGRES_URL")
            .or_else(|_| std::env::var("TEST_POSTGRES_URL"))
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        // One per service, one for the raw publishing baseline, one for the sms-notifier.
        let databases = Databases::create(&admin_url, SERVICES.len() + 2).await?;

        // Generated for this run only, never written anywhere.
        let jwt_secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let scheduling_port = try_free_port()?;
        let mut system = Self {
            dir: dir.to_path_buf(),
            nats,
            nats_url,
            sink,
            databases,
            services: Vec::new(),
            matching_replicas: Vec::new(),
            jwt_secret,
            bin_dir,
            public_base_url: format!("http://127.0.0.1:{scheduling_port}"),
            settings: settings.clone(),
        };
        for (i, name) in SERVICES.iter().enumerate() {
            let port = if i == 0 {
                scheduling_port
            } else {
                try_free_port()?
            };
            let db = system.databases.names()[i].clone();
            let service = system.spawn(name, name, port, db)?;
            system.services.push(service);
        }
        for s in &mut system.services {
            wait_ready(s, Duration::from_secs(60)).await?;
        }
        Ok(system)
    }

    /// The command of service `name` as process `instance`: its bus, database, address and log
    /// level, its output to `logs/<instance>.log`, and nothing from the bench's environment.
    fn command(&self, name: &str, instance: &str, port: u16, db: &str) -> anyhow::Result<Command> {
        let log = std::fs::File::create(self.dir.join(format!("logs/{instance}.log")))?;
        let mut command = Command::new(self.bin_dir.join(name));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NATS_URL", &self.nats_url)
            .env("DATABASE_URL", self.databases.url(db)?)
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", &self.settings.rust_log)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        Ok(command)
    }

    /// Starts service `name` as process `instance` (its log is `logs/<instance>.log`),
    /// configured only through the documented variables.
    fn spawn(&self, name: &str, instance: &str, port: u16, db: String) -> anyhow::Result<Service> {
        let settings = &self.settings;
        let mut command = self.command(name, instance, port, &db)?;
        command
            .env("JWT_SECRET", &self.jwt_secret)
            .env("PUBLIC_BASE_URL", &self.public_base_url)
            .env("SMTP_URL", self.sink.url())
            .env("SMTP_POOL_SIZE", settings.smtp_pool_size.to_string())
            .env("EMAIL_CONCURRENCY", settings.email_concurrency.to_string())
            .env(
                "EMAIL_MAX_UNRECORDED",
                settings.email_max_unrecorded.to_string(),
            )
            .env(
                "COALESCE_WINDOW_MS",
                settings.coalesce_window_ms.to_string(),
            )
            // The bench runs at any hour: no text waits for the morning.
            .env("QUIET_HOURS", "off");
        let process = Process::spawn(instance, command)?;
        Ok(Service { process, port, db })
    }

    /// Starts or stops matching replicas until `count` matching processes run (at least one),
    /// each waited for until ready.
    pub async fn set_matching_replicas(&mut self, count: usize) -> anyhow::Result<()> {
        while self.matching_replicas.len() + 1 > count.max(1) {
            if let Some(mut replica) = self.matching_replicas.pop() {
                replica.process.stop(Duration::from_secs(10));
            }
        }
        while self.matching_replicas.len() + 1 < count {
            let instance = format!("matching-{}", self.matching_replicas.len() + 2);
            let db = self.service("matching").db.clone();
            let mut replica = self.spawn("matching", &instance, try_free_port()?, db)?;
            wait_ready(&mut replica, Duration::from_secs(60)).await?;
            self.matching_replicas.push(replica);
        }
        Ok(())
    }

    /// Starts the sms-notifier (release binary, its own database) texting through `sms_url`;
    /// returns once it is ready. Only the text scenario runs it, so it weighs on no other.
    pub async fn start_sms(&self, sms_url: &str) -> anyhow::Result<Service> {
        let name = "sms-notifier";
        if !self.bin_dir.join(name).is_file() {
            bail!(
                "{} is missing: build it with `cargo build --release -p {name}` (or run `make bench`)",
                self.bin_dir.join(name).display()
            );
        }
        let db = self
            .databases
            .names()
            .last()
            .context("no database for the sms-notifier")?
            .clone();
        let port = try_free_port()?;
        let mut command = self.command(name, name, port, &db)?;
        command
            .env("SMS_URL", sms_url)
            .env("SMS_FROM", "Clinic")
            .env(
                "SMS_CONCURRENCY",
                std::env::var("BENCH_SMS_CONCURRENCY").unwrap_or_else(|_| "8".to_owned()),
            );
        let mut service = Service {
            process: Process::spawn(name, command)?,
            port,
            db,
        };
        wait_ready(&mut service, Duration::from_secs(60)).await?;
        Ok(service)
    }

    /// Stops every matching process (SIGTERM), so that scheduling's events wait in the stream.
    pub fn stop_matching(&mut self) {
        for replica in &mut self.matching_replicas {
            replica.process.stop(Duration::from_secs(10));
        }
        self.matching_replicas.clear();
        let i = SERVICES.iter().position(|s| *s == "matching").unwrap_or(1);
        self.services[i].process.stop(Duration::from_secs(10));
    }

    /// Starts `count` matching processes again after [`System::stop_matching`], the first on
    /// its old port; returns once every one is ready.
    pub async fn start_matching(&mut self, count: usize) -> anyhow::Result<()> {
        let i = SERVICES.iter().position(|s| *s == "matching").unwrap_or(1);
        let (port, db) = (self.services[i].port, self.services[i].db.clone());
        let mut first = self.spawn("matching", "matching", port, db)?;
        wait_ready(&mut first, Duration::from_secs(60)).await?;
        self.services[i] = first;
        self.set_matching_replicas(count).await
    }

    /// Every service process: the four services, then the extra matching replicas.
    pub fn processes(&self) -> impl Iterator<Item = &Process> {
        self.services
            .iter()
            .chain(&self.matching_replicas)
            .map(|s| &s.process)
    }

    pub fn service(&self, name: &str) -> &Service {
        let i = SERVICES.iter().position(|s| *s == name).unwrap_or(0);
        &self.services[i]
    }

    /// A staff token, minted with the documented `scheduling mint-token`.
    pub fn staff_token(&self) -> anyhow::Result<String> {
        let out = Command::new(self.bin_dir.join("scheduling"))
            .args(["mint-token", "--role", "staff", "--hours", "24"])
            .env("JWT_SECRET", &self.jwt_secret)
            .output()?;
        if !out.status.success() {
            bail!(
                "mint-token failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    }

    /// Stops the services (SIGTERM: they drain), then NATS and the sink, and drops the databases.
    pub async fn stop(mut self) {
        for s in self.matching_replicas.iter_mut().rev() {
            s.process.stop(Duration::from_secs(10));
        }
        for s in self.services.iter_mut().rev() {
            s.process.stop(Duration::from_secs(10));
        }
        self.sink.process.stop(Duration::from_secs(2));
        // Dropping them stops nats-server and drops the databases.
    }
}

async fn wait_for_port(port: u16, patience: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("nothing listens on port {port} after {patience:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_ready(s: &mut Service, patience: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if s.process.exited() {
            bail!(
                "{} exited at start; see its log under var/bench/logs/",
                s.process.name
            );
        }
        if let Ok(r) = client.get(format!("{}/readyz", s.base())).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{} is not ready after {patience:?}", s.process.name);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Resident memory and CPU time of one process, from `/proc/<pid>/status` and `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStat {
    pub rss_kib: u64,
    pub hwm_kib: u64,
    /// user + system, in seconds.
    pub cpu_s: f64,
}

pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

pub fn proc_stat(pid: u32, ticks: f64) -> ProcStat {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    ProcStat {
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
        cpu_s: cpu_seconds(pid, ticks),
    }
}

fn cpu_seconds(pid: u32, ticks: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces, so split after its closing paren):
    // utime and stime are the 14th and 15th fields of the line.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (field(11), field(12)) {
        (Some(u), Some(s)) => (u + s) / ticks,
        _ => 0.0,
    }
}

/// Each process's peak `VmRSS`, sampled every 50 ms from [`PeakRss::start`] to [`PeakRss::stop`].
pub struct PeakRss {
    sampling: Arc<std::sync::atomic::AtomicBool>,
    sampler: tokio::task::JoinHandle<Vec<u64>>,
}

impl PeakRss {
    pub fn start(pids: Vec<u32>, ticks: f64) -> Self {
        let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let running = sampling.clone();
        let sampler = tokio::spawn(async move {
            let mut peak = vec![0u64; pids.len()];
            while running.load(Ordering::Relaxed) {
                for (i, pid) in pids.iter().enumerate() {
                    peak[i] = peak[i].max(proc_stat(*pid, ticks).rss_kib);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak
        });
        Self { sampling, sampler }
    }

    /// The peaks in KiB, in the order of the pids given.
    pub async fn stop(self) -> anyhow::Result<Vec<u64>> {
        self.sampling.store(false, Ordering::Relaxed);
        Ok(self.sampler.await?)
    }
}

/// CPU seconds so far of each Postgres process, by pid, with the database it serves: the
/// database word of a backend's title (`postgres: [<cluster>:] <user> <database> <client>
/// <state>`), or `(server)` for the server's own processes (WAL writer, checkpointer…).
pub fn postgres_cpu_by_pid(ticks: f64) -> HashMap<u32, (String, f64)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim_end() == "postgres")
        })
        .map(|pid| {
            let title = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            (pid, (backend_database(&title), cpu_seconds(pid, ticks)))
        })
        .collect()
}

/// The database of a backend from its process title, `(server)` for other processes.
fn backend_database(title: &[u8]) -> String {
    let title = String::from_utf8_lossy(title).replace('\0', " ");
    let mut words: Vec<&str> = title.split_whitespace().collect();
    // Debian names the cluster after `postgres:` (`postgres: 15/main: postgres mydb …`).
    if words.get(1).is_some_and(|w| w.ends_with(':')) {
        words.remove(1);
    }
    match words.as_slice() {
        ["postgres:", _user, database, client, ..]
            if client.contains('(') || *client == "[local]" =>
        {
            (*database).to_owned()
        }
        _ => "(server)".to_owned(),
    }
}

/// CPU seconds used by Postgres between two [`postgres_cpu_by_pid`] readings, by database.
pub fn postgres_cpu_between(
    before: &HashMap<u32, (String, f64)>,
    after: &HashMap<u32, (String, f64)>,
) -> HashMap<String, f64> {
    let mut by_database: HashMap<String, f64> = HashMap::new();
    for (pid, (database, cpu)) in after {
        let was = before.get(pid).map_or(0.0, |(_, cpu)| *cpu);
        *by_database.entry(database.clone()).or_default() += cpu - was;
    }
    by_database
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sink_counter_is_read_from_its_status_line() {
        assert_eq!(parse_mesg(b"sess=1 quit=0 mesg=42"), Some(42));
        assert_eq!(parse_mesg(b"garbage"), None);
    }

    #[test]
    fn a_backend_is_counted_under_its_database() {
        assert_eq!(
            backend_database(b"postgres: postgres slotcast_bench_matching_1 127.0.0.1(5040) idle"),
            "slotcast_bench_matching_1"
        );
        assert_eq!(
            backend_database(b"postgres: 15/main: postgres db_2 127.0.0.1(41938) idle"),
            "db_2"
        );
        assert_eq!(
            backend_database(b"postgres: 15/main: walwriter "),
            "(server)"
        );
        assert_eq!(
            backend_database(b"/usr/lib/postgresql/15/bin/postgres\0-D\0x"),
            "(server)"
        );
    }
}
