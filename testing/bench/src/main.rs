//! `bench` (run by `make bench`): the whole slotcast system on this machine, measured.
//!
//! It starts a nats-server of its own, a fresh Postgres database per service, Postfix's
//! `smtp-sink` and the four release binaries as real processes, seeds waiting lists by SQL,
//! drives the public HTTP API, and prints a table (also written to `var/bench/`). The method is
//! in `BENCHMARKS.md`. A benchmark, not a test: it asserts nothing; it reports figures against
//! the targets.
//!
//! `BENCH_SCALE=small` runs in about two minutes; the default (`full`) uses the sizes.
//! `BENCH_ONLY=many_clinics` (a comma-separated list of [`SCENARIOS`]) runs only those.
//!
//! # Layout
//! - [`system`]: the processes, the databases, `/proc` readings.
//! - [`seed`]: waiting lists written by SQL into scheduling's and matching's databases.
//! - [`probe`]: `/metrics`, the `notify.patient` events, the backlog of consumers and outboxes.
//! - [`raw`]: the limits of the parts (JetStream, Postgres, SMTP) on this machine.
//! - [`clinics`]: many practitioners posting a few slots each at once, with 1 and 2 matching
//!   replicas.
//! - this file: the scenarios and the report.

mod clinics;
mod probe;
mod raw;
mod seed;
mod system;

use std::{collections::HashMap, fmt::Write as _, time::Duration};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures::{StreamExt as _, TryStreamExt as _};
use sea_orm::DatabaseConnection;
use serde_json::json;
use tokio::time::Instant;
use uuid::Uuid;

use crate::{
    probe::{Metrics, NotifyWatch},
    seed::{Group, Practitioner},
    system::{ProcStat, SERVICES, Settings, System},
};

/// The sizes of a run.
#[derive(Debug, Clone)]
struct Scale {
    name: String,
    /// POSTs per second in the latency scenarios, and how many.
    post_rate: u32,
    post_count: usize,
    /// Entries on other practitioners (100 each), and on the practitioner posted to.
    other_waitlist: u64,
    same_waitlist: u64,
    /// Patients waiting for the one slot of the fan-out.
    fanout: u64,
    /// How many times the fan-out is run (each to patients of its own); the median counts.
    fanout_runs: u32,
    /// Entries (100 per practitioner) for the matching scenario, and slots posted there.
    matching_entries: u64,
    matching_posts: usize,
    /// Messages, rows and emails for the limits of the parts.
    raw: usize,
    /// Many clinics: practitioners, patients waiting on each, slots each posts (one a request),
    /// requests in flight, and the matching replica counts it runs with.
    clinics: u64,
    clinic_patients: u64,
    clinic_slots: usize,
    clinic_concurrency: usize,
    clinic_replicas: Vec<usize>,
    /// Patients texted in the text scenario (and texts sent straight to the gateway).
    texts: u64,
    /// The scenarios to run (`BENCH_ONLY`), all when empty.
    only: Vec<String>,
}

/// The scenarios `BENCH_ONLY` may name, in the order they run.
const SCENARIOS: [&str; 6] = [
    "limits",
    "latency",
    "fanout",
    "many_clinics",
    "matching",
    "texts",
];

const PER_PRACTITIONER: u64 = 100;

impl Scale {
    fn from_env() -> anyhow::Result<Self> {
        let name = std::env::var("BENCH_SCALE").unwrap_or_else(|_| "full".to_owned());
        let mut s = match name.as_str() {
            "full" => Self {
                name,
                post_rate: 100,
                post_count: 1_000,
                other_waitlist: 100_000,
                same_waitlist: 100_000,
                fanout: 10_000,
                fanout_runs: 3,
                matching_entries: 1_000_000,
                matching_posts: 100,
                raw: 10_000,
                clinics: 1_000,
                clinic_patients: 20,
                clinic_slots: 5,
                clinic_concurrency: 64,
                clinic_replicas: vec![1, 2],
                texts: 2_000,
                only: Vec::new(),
            },
            "small" => Self {
                name,
                post_rate: 50,
                post_count: 200,
                other_waitlist: 10_000,
                same_waitlist: 10_000,
                fanout: 1_000,
                fanout_runs: 3,
                matching_entries: 100_000,
                matching_posts: 30,
                raw: 2_000,
                clinics: 200,
                clinic_patients: 20,
                clinic_slots: 5,
                clinic_concurrency: 64,
                clinic_replicas: vec![1, 2],
                texts: 300,
                only: Vec::new(),
            },
            other => anyhow::bail!("BENCH_SCALE is full or small, not {other:?}"),
        };
        let num = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
        if let Some(v) = num("BENCH_FANOUT") {
            s.fanout = v;
        }
        if let Some(v) = num("BENCH_FANOUT_RUNS") {
            s.fanout_runs = (v as u32).max(1);
        }
        if let Some(v) = num("BENCH_POST_COUNT") {
            s.post_count = v as usize;
        }
        if let Some(v) = num("BENCH_POST_RATE") {
            s.post_rate = v as u32;
        }
        if let Some(v) = num("BENCH_TEXTS") {
            s.texts = v.max(1);
        }
        if let Some(v) = num("BENCH_CLINICS") {
            s.clinics = v.max(1);
        }
        if let Some(v) = num("BENCH_CLINIC_PATIENTS") {
            s.clinic_patients = v.max(1);
        }
        if let Some(v) = num("BENCH_CLINIC_SLOTS") {
            s.clinic_slots = (v as usize).max(1);
        }
        if let Some(v) = num("BENCH_CLINIC_CONCURRENCY") {
            s.clinic_concurrency = (v as usize).max(1);
        }
        if let Ok(v) = std::env::var("BENCH_CLINIC_REPLICAS") {
            s.clinic_replicas = list(&v)
                .map(|r| r.parse::<usize>().ok().filter(|r| *r >= 1))
                .collect::<Option<_>>()
                .with_context(|| {
                    format!("BENCH_CLINIC_REPLICAS is a list such as 1,2, not {v:?}")
                })?;
        }
        if let Ok(v) = std::env::var("BENCH_ONLY") {
            s.only = list(&v).map(str::to_owned).collect();
            if let Some(bad) = s.only.iter().find(|o| !SCENARIOS.contains(&o.as_str())) {
                anyhow::bail!("BENCH_ONLY names scenarios among {SCENARIOS:?}, not {bad:?}");
            }
        }
        s.other_waitlist = s.other_waitlist.min(s.matching_entries);
        Ok(s)
    }

    /// Whether scenario `name` (one of [`SCENARIOS`]) runs.
    fn runs(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }
}

/// The items of a comma-separated list, trimmed, empty ones left out.
fn list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|x| !x.is_empty())
}

/// One line of the table.
struct Row {
    section: &'static str,
    what: String,
    figure: String,
    target: String,
    met: Option<bool>,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Report {
    fn add(
        &mut self,
        section: &'static str,
        what: impl Into<String>,
        figure: impl Into<String>,
        target: impl Into<String>,
        met: Option<bool>,
    ) {
        let row = Row {
            section,
            what: what.into(),
            figure: figure.into(),
            target: target.into(),
            met,
        };
        println!(
            "  [{}] {}: {}{}",
            row.section,
            row.what,
            row.figure,
            match row.met {
                Some(true) => "  (target met)",
                Some(false) => "  (target NOT met)",
                None => "",
            }
        );
        self.rows.push(row);
    }

    fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        println!("  note: {note}");
        self.notes.push(note);
    }

    fn markdown(&self, scale: &Scale, machine: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "slotcast benchmark, scale `{}`, {}\n\n{machine}\n",
            scale.name,
            Utc::now().format("%Y-%m-%d %H:%M UTC")
        );
        let _ = writeln!(out, "| | measure | figure | target | met |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for r in &self.rows {
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {met} |",
                r.section, r.what, r.figure, r.target
            );
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out);
            for n in &self.notes {
                let _ = writeln!(out, "- {n}");
            }
        }
        out
    }
}

/// The median of `sorted`: the middle one, or the mean of the two middle ones (NaN if empty).
fn median(sorted: &[f64]) -> f64 {
    let mid = sorted.len() / 2;
    if sorted.is_empty() {
        f64::NAN
    } else if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// Percentile `p` (0–100) of sorted durations, in milliseconds.
fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The running benchmark: the system and the clients that look at it.
struct Bench {
    sys: System,
    scale: Scale,
    http: reqwest::Client,
    token: String,
    js: async_nats::jetstream::Context,
    watch: NotifyWatch,
    scheduling_db: DatabaseConnection,
    matching_db: DatabaseConnection,
    /// Every service's database, for the outbox backlog.
    outboxes: Vec<DatabaseConnection>,
    ticks: f64,
    report: Report,
    /// Where the next posted slot starts, per practitioner, so no two overlap.
    next_start: HashMap<Uuid, DateTime<Utc>>,
    /// Notifications per second end to end, once the fan-out ran.
    fanout_rate: Option<f64>,
    /// Each service's peak resident memory over the fan-out runs so far (KiB).
    fanout_peak: Vec<u64>,
}

impl Bench {
    fn api(&self) -> String {
        self.sys.service("scheduling").base()
    }

    fn stats(&self) -> Vec<ProcStat> {
        self.sys
            .services
            .iter()
            .map(|s| system::proc_stat(s.process.pid(), self.ticks))
            .collect()
    }

    async fn practitioner(&self, name: &str) -> anyhow::Result<Uuid> {
        let r = self
            .http
            .post(format!("{}/v1/practitioners", self.api()))
            .bearer_auth(&self.token)
            .json(&json!({"name": name, "specialty": "General practice", "timezone": "Europe/Paris", "consultation_fee": 45}))
            .send()
            .await?;
        anyhow::ensure!(
            r.status().is_success(),
            "POST /v1/practitioners: {}",
            r.status()
        );
        let v: serde_json::Value = r.json().await?;
        v["id"].as_str().context("no id")?.parse().context("bad id")
    }

    /// The start of the next free 30-minute slot of `practitioner`, from tomorrow on.
    fn next_slot(&mut self, practitioner: Uuid) -> (DateTime<Utc>, DateTime<Utc>) {
        let tomorrow = (Utc::now() + chrono::Duration::days(1))
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc())
            .unwrap_or_else(Utc::now);
        let start = self.next_start.entry(practitioner).or_insert(tomorrow);
        let s = *start;
        *start = s + chrono::Duration::minutes(30);
        (s, s + chrono::Duration::minutes(30))
    }

    /// Waits until every consumer and outbox is empty.
    async fn quiet(&self, patience: Duration) -> anyhow::Result<Duration> {
        probe::wait_quiet(&self.js, &self.outboxes, &self.matching_db, patience).await
    }

    async fn matching_metrics(&self) -> anyhow::Result<Metrics> {
        Metrics::scrape(&self.http, &self.sys.service("matching").base()).await
    }

    /// POSTs one slot per request at `rate` a second, open loop (each request is sent at its
    /// time whether or not the earlier ones have answered); returns the sorted latencies.
    async fn post_load(
        &mut self,
        practitioner: Uuid,
        rate: u32,
        count: usize,
    ) -> anyhow::Result<(Vec<Duration>, usize)> {
        let url = format!("{}/v1/practitioners/{practitioner}/slots", self.api());
        let bodies: Vec<serde_json::Value> = (0..count)
            .map(|_| {
                let (s, e) = self.next_slot(practitioner);
                json!({"slots": [{"starts_at": s, "ends_at": e}]})
            })
            .collect();
        let started = Instant::now();
        let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for (i, body) in bodies.into_iter().enumerate() {
            tokio::time::sleep_until(started + period * i as u32).await;
            let (http, url, token) = (self.http.clone(), url.clone(), self.token.clone());
            tasks.spawn(async move {
                let sent = Instant::now();
                let r = http.post(url).bearer_auth(token).json(&body).send().await;
                let ok = matches!(&r, Ok(r) if r.status().as_u16() == 201);
                (sent.elapsed(), ok)
            });
        }
        let mut latencies = Vec::with_capacity(count);
        let mut errors = 0;
        while let Some(r) = tasks.join_next().await {
            let (d, ok) = r?;
            latencies.push(d);
            if !ok {
                errors += 1;
            }
        }
        latencies.sort();
        Ok((latencies, errors))
    }

    /// POSTs one slot for `practitioner`; returns the latency and the batch id.
    async fn post_one(&mut self, practitioner: Uuid) -> anyhow::Result<(Duration, Uuid, Instant)> {
        let (s, e) = self.next_slot(practitioner);
        let sent = Instant::now();
        let r = self
            .http
            .post(format!(
                "{}/v1/practitioners/{practitioner}/slots",
                self.api()
            ))
            .bearer_auth(&self.token)
            .json(&json!({"slots": [{"starts_at": s, "ends_at": e}]}))
            .send()
            .await?;
        let latency = sent.elapsed();
        anyhow::ensure!(r.status().as_u16() == 201, "POST slots: {}", r.status());
        let v: serde_json::Value = r.json().await?;
        let batch = v["slots"][0]["batch_id"]
            .as_str()
            .context("no batch_id")?
            .parse()?;
        Ok((latency, batch, sent))
    }

    async fn latency_scenario(&mut self, label: &str, practitioner: Uuid) -> anyhow::Result<()> {
        let (rate, count) = (self.scale.post_rate, self.scale.post_count);
        let before = self.matching_metrics().await?;
        let (lat, errors) = self.post_load(practitioner, rate, count).await?;
        let (p50, p99, max) = (pct(&lat, 50.0), pct(&lat, 99.0), pct(&lat, 100.0));
        self.report.add(
            "POST",
            format!("POST a slot, {label}: p50 / p99 (max) at {rate}/s, {count} requests"),
            format!(
                "{p50:.1} ms / {p99:.1} ms ({max:.1} ms){}",
                if errors > 0 {
                    format!(", {errors} errors")
                } else {
                    String::new()
                }
            ),
            "p99 < 10 ms",
            Some(p99 < 10.0 && errors == 0),
        );
        let drained = self.quiet(Duration::from_secs(900)).await?;
        let after = self.matching_metrics().await?;
        let n = after.get("slotcast_matching_decide_seconds_count")
            - before.get("slotcast_matching_decide_seconds_count");
        let sum = after.get("slotcast_matching_decide_seconds_sum")
            - before.get("slotcast_matching_decide_seconds_sum");
        if n > 0.0 {
            self.report.add(
                "matching",
                format!("decide, {label}: mean over {n} openings"),
                format!("{:.2} ms", sum / n * 1000.0),
                "",
                None,
            );
        }
        self.report.note(format!(
            "{label}: the system was idle again {:.1} s after the last POST",
            drained.as_secs_f64()
        ));
        Ok(())
    }

    /// Every service database's [`probe::table_stats`], once two readings a second apart agree:
    /// an idle backend reports its statistics up to 10 s after its last transaction.
    async fn settled_table_stats(&self) -> anyhow::Result<Vec<HashMap<String, probe::TableStats>>> {
        let read = || async {
            let mut all = Vec::new();
            for db in &self.outboxes {
                all.push(probe::table_stats(db).await?);
            }
            anyhow::Ok(all)
        };
        let mut last = read().await?;
        for _ in 0..15 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = read().await?;
            if now == last {
                break;
            }
            last = now;
        }
        Ok(last)
    }

    /// Rows written, and rows read by sequential scans, in Postgres per notification during the
    /// fan-out, by service and table: where the database's share of the CPU goes.
    async fn table_rows(
        &mut self,
        n: u64,
        before: &[HashMap<String, probe::TableStats>],
    ) -> anyhow::Result<()> {
        let after = self.settled_table_stats().await?;
        type Measure = fn(&probe::TableStats) -> i64;
        let lines: [(&str, Measure); 2] = [
            (
                "Postgres rows inserted, updated or deleted per notification, by service and table",
                |s| s.written,
            ),
            (
                "Postgres rows read by sequential scans per notification, by service and table",
                |s| s.scanned,
            ),
        ];
        for (title, measure) in lines {
            let mut parts = Vec::new();
            let mut total = 0.0;
            for ((service, after), before) in self.sys.services.iter().zip(&after).zip(before) {
                let mut tables: Vec<(String, f64)> = after
                    .iter()
                    .map(|(t, v)| {
                        let was = before.get(t).map_or(0, measure);
                        (t.clone(), (measure(v) - was) as f64 / n as f64)
                    })
                    .filter(|(_, per)| *per >= 0.01)
                    .collect();
                tables.sort_by(|a, b| b.1.total_cmp(&a.1));
                let sum: f64 = tables.iter().map(|(_, v)| v).sum();
                total += sum;
                if sum > 0.0 {
                    let detail: Vec<String> =
                        tables.iter().map(|(t, v)| format!("{t} {v:.2}")).collect();
                    parts.push(format!(
                        "{} {sum:.2} ({})",
                        service.process.name,
                        detail.join(", ")
                    ));
                }
            }
            self.report.add(
                "fan-out",
                title,
                format!("{total:.1}: {}", parts.join("; ")),
                "",
                None,
            );
        }
        Ok(())
    }

    /// Postgres's CPU seconds by the service whose database it served, then its own processes
    /// and anything else (another client of the same server).
    fn postgres_split(&self, by_database: &HashMap<String, f64>) -> String {
        let names = self.sys.databases.names();
        let rest: f64 = by_database
            .iter()
            .filter(|(database, _)| *database != "(server)" && !names.contains(database))
            .map(|(_, cpu)| cpu)
            .sum();
        let mut parts = Vec::new();
        for (service, database) in self.sys.services.iter().zip(&names) {
            let cpu = by_database.get(database).copied().unwrap_or(0.0);
            parts.push(format!("{} {cpu:.2}", service.process.name));
        }
        let server = by_database.get("(server)").copied().unwrap_or(0.0);
        parts.push(format!("its own processes {server:.2}"));
        if rest >= 0.01 {
            parts.push(format!("other databases {rest:.2}"));
        }
        parts.join(", ")
    }

    /// The fan-out, `fanout_runs` times, each to patients of its own: the machine's run-to-run
    /// spread is several per cent, so the end to end figure (and the target) is the median run's;
    /// the detailed rows (times, memory, CPU, rows) are the last run's.
    async fn fanout(&mut self) -> anyhow::Result<()> {
        let runs = self.scale.fanout_runs;
        let mut rates: Vec<Option<f64>> = Vec::new();
        for run in 1..=runs {
            // Only the last run's rows go into the report.
            let kept = (run < runs).then(|| std::mem::take(&mut self.report));
            let rate = self.fanout_once(run).await;
            if let Some(kept) = kept {
                self.report = kept;
            }
            rates.push(rate?);
        }
        let n = self.scale.fanout;
        let mut finished: Vec<f64> = rates.iter().flatten().copied().collect();
        finished.sort_by(f64::total_cmp);
        let median = (finished.len() == rates.len()).then(|| median(&finished));
        let each: Vec<String> = rates
            .iter()
            .map(|r| r.map_or_else(|| "did not finish".to_owned(), |r| format!("{r:.0}/s")))
            .collect();
        self.report.add(
            "fan-out",
            format!(
                "notifications per second end to end, {n} patients: median of {runs} runs (each run)"
            ),
            match median {
                Some(m) => format!("{m:.0}/s ({})", each.join(", ")),
                None => format!("not every run finished ({})", each.join(", ")),
            },
            "≥ 2,000/s (aim 5,000/s)",
            Some(median.is_some_and(|m| m >= 2000.0)),
        );
        self.fanout_rate = median;
        Ok(())
    }

    /// Texts: a real Kannel (bearerbox, smsbox, the fake SMSC), first on its own (`texts` texts
    /// sent straight to `sendsms`, 8 at once as the sms-notifier does), then behind slotcast (one
    /// slot to `texts` patients with numbers and consent, the sms-notifier texting them).
    async fn texts(&mut self) -> anyhow::Result<()> {
        let n = self.scale.texts;
        let kannel = slotcast_test_support::KannelGateway::start().await?;
        let patience = Duration::from_secs(60 + n / 10);

        let sendsms = kannel.sendsms_url();
        let started = Instant::now();
        futures::stream::iter(0..n)
            .map(|i| {
                let url = format!(
                    "{sendsms}&from=Clinic&to=%2B3362{i:07}&text=Dr+Bench%3A+a+time+is+free+on+Tue+1+Dec+09%3A30.+Reply+YES+to+book+it%2C+or+see+https%3A%2F%2Fclinic.example%2Fs%2FAAAAAAAAAAAAAAAAAAAAAA"
                );
                let http = self.http.clone();
                async move { http.get(url).send().await.map(|r| r.status().is_success()) }
            })
            .buffer_unordered(8)
            .try_collect::<Vec<bool>>()
            .await?;
        let alone = wait_for_texts(&kannel, n as usize, patience)
            .await
            .map(|_| n as f64 / started.elapsed().as_secs_f64());

        let sms = self.sys.start_sms(&kannel.url()).await?;
        let dr = self.practitioner("Dr Texts").await?;
        let group = Group {
            tag: "t",
            practitioner: Practitioner::Fixed(dr),
            from: 1,
            to: n,
            fits_every: 1,
        };
        seed::entries(&self.scheduling_db, &self.matching_db, group).await?;
        seed::texting(&self.scheduling_db, &self.matching_db, group).await?;
        self.quiet(Duration::from_secs(120)).await?;
        let before = kannel.messages().len();
        let (_, _, t0) = self.post_one(dr).await?;
        let through = wait_for_texts(&kannel, before + n as usize, patience)
            .await
            .map(|_| n as f64 / t0.elapsed().as_secs_f64());
        let mut sms = sms;
        sms.process.stop(Duration::from_secs(10));

        let rate =
            |r: Option<f64>| r.map_or_else(|| "did not finish".to_owned(), |r| format!("{r:.0}/s"));
        self.report.add(
            "texts",
            format!("{n} texts straight to Kannel's sendsms, 8 at once: the gateway's own limit"),
            rate(alone),
            "–",
            None,
        );
        self.report.add(
            "texts",
            format!("texts per second end to end, one slot to {n} patients who consented"),
            match (through, alone) {
                (Some(t), Some(a)) => format!("{t:.0}/s ({:.0} % of the gateway's)", 100.0 * t / a),
                _ => rate(through),
            },
            "near the gateway's",
            None,
        );
        Ok(())
    }

    /// One fan-out to `fanout` patients of its own (run `run`); its end to end rate, if it
    /// finished.
    async fn fanout_once(&mut self, run: u32) -> anyhow::Result<Option<f64>> {
        let n = self.scale.fanout;
        let f = self.practitioner(&format!("Dr Fan Out {run}")).await?;
        let tag = format!("f{run}");
        let seeded = Instant::now();
        seed::entries(
            &self.scheduling_db,
            &self.matching_db,
            Group {
                tag: &tag,
                practitioner: Practitioner::Fixed(f),
                from: 1,
                to: n,
                fits_every: 1,
            },
        )
        .await?;
        self.report.note(format!(
            "fan-out: {n} entries seeded in {:.1} s",
            seeded.elapsed().as_secs_f64()
        ));
        self.quiet(Duration::from_secs(120)).await?;
        let inapp = self.sys.service("inapp-notifier").base();
        let stored_key = "slotcast_inapp_notifier_notifications_stored_total";
        let stored0 = Metrics::scrape(&self.http, &inapp).await?.get(stored_key);
        let sent0 = self.sys.sink.accepted();

        let pids: Vec<u32> = self.sys.services.iter().map(|s| s.process.pid()).collect();
        let ticks = self.ticks;
        let sampler = system::PeakRss::start(pids, ticks);
        let tables0 = self.settled_table_stats().await?;
        let cpu0: Vec<f64> = self.stats().iter().map(|s| s.cpu_s).collect();
        let nats0 = self
            .sys
            .nats
            .pid()
            .map_or(0.0, |pid| system::proc_stat(pid, ticks).cpu_s);
        let pg0 = system::postgres_cpu_by_pid(ticks);

        // BENCH_PERF=<file>: the whole machine's CPU profile of the fan-out, for `perf report`.
        let profiler = std::env::var("BENCH_PERF")
            .ok()
            .map(|out| Profiler::start(&out))
            .transpose()?;
        let (post_latency, batch, t0) = self.post_one(f).await?;
        let patience = Duration::from_secs(120 + n / 50);
        let (mut email_done, mut inapp_done) = (None, None);
        while email_done.is_none() || inapp_done.is_none() {
            if t0.elapsed() > patience {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            if email_done.is_none() && self.sys.sink.accepted() - sent0 >= n {
                email_done = Some(t0.elapsed());
            }
            if inapp_done.is_none() {
                let stored = Metrics::scrape(&self.http, &inapp).await?.get(stored_key);
                if stored - stored0 >= n as f64 {
                    inapp_done = Some(t0.elapsed());
                }
            }
        }
        let mut peak = sampler.stop().await?;
        if let Some(profiler) = profiler {
            let out = profiler.stop()?;
            self.report.note(format!(
                "fan-out profiled with perf into {out} (`perf report -i {out}`)"
            ));
        }
        // The memory rows hold the highest peak of every run so far.
        for (p, before) in peak.iter_mut().zip(&self.fanout_peak) {
            *p = (*p).max(*before);
        }
        self.fanout_peak = peak.clone();
        let cpu1: Vec<f64> = self.stats().iter().map(|s| s.cpu_s).collect();
        let nats_cpu = self
            .sys
            .nats
            .pid()
            .map_or(0.0, |pid| system::proc_stat(pid, ticks).cpu_s)
            - nats0;
        let pg_split = system::postgres_cpu_between(&pg0, &system::postgres_cpu_by_pid(ticks));
        let pg_cpu: f64 = pg_split.values().sum();
        self.table_rows(n, &tables0).await?;
        let seen = self.watch.batch(batch);
        let secs = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64());

        self.report.add(
            "fan-out",
            format!("POST of the slot with {n} waiting"),
            format!("{:.1} ms", post_latency.as_secs_f64() * 1000.0),
            "",
            None,
        );
        if let Some(seen) = seen {
            self.report.add(
                "fan-out",
                "POST → first / last notify.patient published (matching + outboxes)",
                format!(
                    "{:.3} s / {:.3} s ({} events)",
                    (seen.first - t0).as_secs_f64(),
                    (seen.last - t0).as_secs_f64(),
                    seen.count
                ),
                "",
                None,
            );
        }
        self.report.add(
            "fan-out",
            format!("POST → every email accepted by the SMTP server ({n})"),
            format!(
                "{:.2} s ({:.0} emails/s)",
                secs(email_done),
                n as f64 / secs(email_done)
            ),
            "",
            None,
        );
        self.report.add(
            "fan-out",
            format!("POST → every in-app notification stored ({n})"),
            format!(
                "{:.2} s ({:.0} notifications/s)",
                secs(inapp_done),
                n as f64 / secs(inapp_done)
            ),
            "",
            None,
        );
        let total = match (email_done, inapp_done) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        let rate = n as f64 / secs(total);
        self.report.add(
            "fan-out",
            "notifications per second end to end (email and in-app both done), last run",
            if total.is_some() {
                format!("{rate:.0}/s")
            } else {
                format!("did not finish within {patience:?}")
            },
            "",
            None,
        );
        for (i, name) in SERVICES.iter().enumerate() {
            self.report.add(
                "memory",
                format!("{name}: resident at the peak of the fan-out (every run)"),
                format!("{:.1} MiB", mib(peak[i])),
                "< 150 MiB",
                Some(mib(peak[i]) < 150.0),
            );
        }
        let ours: f64 = cpu1.iter().zip(&cpu0).map(|(a, b)| a - b).sum();
        let per_service: Vec<String> = SERVICES
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{s} {:.2}", cpu1[i] - cpu0[i]))
            .collect();
        self.report.add(
            "CPU",
            "CPU seconds per notification, the four services (email + in-app)",
            format!(
                "{:.3} ms ({:.2} s in all: {})",
                ours / n as f64 * 1000.0,
                ours,
                per_service.join(", ")
            ),
            "",
            None,
        );
        self.report.add(
            "CPU",
            "CPU seconds per notification, nats-server and Postgres",
            format!(
                "{:.3} ms ({:.2} s nats-server, {:.2} s Postgres: {})",
                (nats_cpu + pg_cpu) / n as f64 * 1000.0,
                nats_cpu,
                pg_cpu,
                self.postgres_split(&pg_split)
            ),
            "",
            None,
        );
        // The same, counted from when the offers were due: the coalescing window is a wait the
        // policy asks for (offers to one patient merged), not work.
        let window = Duration::from_millis(settings().coalesce_window_ms as u64);
        if let Some(total) = total.filter(|t| *t > window) {
            let due_rate = n as f64 / (total - window).as_secs_f64();
            self.report.add(
                "fan-out",
                format!(
                    "notifications per second from when they were due (after the {} ms coalescing window)",
                    window.as_millis()
                ),
                format!("{due_rate:.0}/s"),
                "",
                None,
            );
        }
        self.quiet(Duration::from_secs(600)).await?;
        Ok(total.map(|_| rate))
    }
}

impl Bench {
    /// Decisions for practitioners with `PER_PRACTITIONER` entries each, the waiting list
    /// holding `matching_entries` in all.
    async fn matching(&mut self) -> anyhow::Result<()> {
        let (total, posts) = (self.scale.matching_entries, self.scale.matching_posts);
        let practitioners = total / PER_PRACTITIONER;
        let seeded = Instant::now();
        let from = self.scale.other_waitlist / PER_PRACTITIONER + 1;
        if from <= practitioners {
            seed::practitioners(&self.scheduling_db, &self.matching_db, from, practitioners)
                .await?;
            seed::entries(
                &self.scheduling_db,
                &self.matching_db,
                Group {
                    tag: "m",
                    practitioner: Practitioner::Numbered {
                        per: PER_PRACTITIONER,
                    },
                    from: self.scale.other_waitlist + 1,
                    to: total,
                    fits_every: 10,
                },
            )
            .await?;
        }
        self.report.note(format!(
            "matching: {total} entries over {practitioners} practitioners in place ({:.1} s to seed the rest)",
            seeded.elapsed().as_secs_f64()
        ));
        self.quiet(Duration::from_secs(120)).await?;
        let before = self.matching_metrics().await?;
        let mut to_first = Vec::with_capacity(posts);
        let mut told = 0u64;
        for i in 0..posts {
            // Distinct practitioners spread over the list (7919 is prime, so coprime with it).
            let k = 1 + (i as u64 * 7919) % practitioners;
            let (_, batch, t0) = self.post_one(seed::numbered_practitioner(k)).await?;
            let deadline = t0 + Duration::from_secs(10);
            loop {
                if let Some(seen) = self.watch.batch(batch) {
                    to_first.push(seen.first - t0);
                    break;
                }
                if Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        self.quiet(Duration::from_secs(120)).await?;
        let after = self.matching_metrics().await?;
        let n = after.get("slotcast_matching_decide_seconds_count")
            - before.get("slotcast_matching_decide_seconds_count");
        let sum = after.get("slotcast_matching_decide_seconds_sum")
            - before.get("slotcast_matching_decide_seconds_sum");
        let mean = sum / n * 1000.0;
        told += after.get("slotcast_matching_notifications_total") as u64
            - before.get("slotcast_matching_notifications_total") as u64;
        self.report.add(
            "matching",
            format!(
                "decide who gets a slot, {total} entries over {practitioners} practitioners: mean over {n} openings"
            ),
            format!("{mean:.2} ms"),
            "< 5 ms",
            Some(mean < 5.0),
        );
        to_first.sort();
        self.report.add(
            "matching",
            "POST → first notify.patient published: p50 / p99",
            format!(
                "{:.1} ms / {:.1} ms ({} of {posts} seen, {told} patients told)",
                pct(&to_first, 50.0),
                pct(&to_first, 99.0),
                to_first.len()
            ),
            "",
            None,
        );
        Ok(())
    }

    async fn limits(&mut self) -> anyhow::Result<Vec<raw::Limit>> {
        let n = self.scale.raw;
        let mut limits = raw::jetstream(&self.js, n).await?;
        let raw_name = self.sys.databases.names()[SERVICES.len()].clone();
        let raw_db = self.sys.databases.connect(&raw_name).await?;
        limits.extend(raw::postgres(&raw_db, n).await?);
        let _ = raw_db.close().await;
        let connections = settings().email_concurrency;
        limits.push(raw::smtp(self.sys.sink.port, connections, n).await?);
        // Nagle-bound: 40 ms a message per connection, so a fifth of the messages is plenty.
        limits.push(raw::smtp_stock_lettre(&self.sys.sink.url(), connections, n / 5).await?);
        for l in &limits {
            self.report.add(
                "limits",
                format!("{} ({})", l.what, l.count),
                format!("{:.0}/s ({:.2} s)", l.per_second(), l.elapsed.as_secs_f64()),
                "",
                None,
            );
        }
        Ok(limits)
    }
}

fn settings() -> Settings {
    let num = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    Settings {
        // The email-notifier's defaults.
        email_concurrency: num("BENCH_EMAIL_CONCURRENCY", 32),
        email_max_unrecorded: num("BENCH_EMAIL_MAX_UNRECORDED", 8),
        smtp_pool_size: num("BENCH_SMTP_POOL_SIZE", 32),
        // The product's default: the fan-out is measured with the policy delay in it.
        coalesce_window_ms: num("BENCH_COALESCE_WINDOW_MS", 2000),
        rust_log: std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    format!(
        "Machine: {cores} cores ({cpu}), {:.0} GiB memory.",
        mem as f64 / 1024.0 / 1024.0
    )
}

/// POST latency with nobody waiting, with entries on other practitioners, and with entries on
/// the practitioner posted to.
async fn latency(bench: &mut Bench) -> anyhow::Result<()> {
    println!("POST latency with nobody waiting...");
    let a = bench.practitioner("Dr Empty").await?;
    bench.latency_scenario("0 waiting", a).await?;

    let other = bench.scale.other_waitlist;
    println!("seeding {other} entries on other practitioners...");
    let seeded = Instant::now();
    let (sdb, mdb) = (bench.scheduling_db.clone(), bench.matching_db.clone());
    seed::practitioners(&sdb, &mdb, 1, other / PER_PRACTITIONER).await?;
    seed::entries(
        &sdb,
        &mdb,
        Group {
            tag: "m",
            practitioner: Practitioner::Numbered {
                per: PER_PRACTITIONER,
            },
            from: 1,
            to: other,
            fits_every: 10,
        },
    )
    .await?;
    bench.report.note(format!(
        "{other} entries on {} other practitioners seeded in {:.1} s",
        other / PER_PRACTITIONER,
        seeded.elapsed().as_secs_f64()
    ));
    let b = bench.practitioner("Dr Nobody Waits").await?;
    bench
        .latency_scenario(&format!("{other} waiting on other practitioners"), b)
        .await?;

    let same = bench.scale.same_waitlist;
    println!("seeding {same} entries on the practitioner posted to...");
    let c = bench.practitioner("Dr Long List").await?;
    let seeded = Instant::now();
    seed::entries(
        &sdb,
        &mdb,
        Group {
            tag: "s",
            practitioner: Practitioner::Fixed(c),
            from: 1,
            to: same,
            fits_every: 0,
        },
    )
    .await?;
    bench.report.note(format!(
        "{same} entries on one practitioner (none fitting the posted slots) seeded in {:.1} s",
        seeded.elapsed().as_secs_f64()
    ));
    bench
        .latency_scenario(&format!("{same} waiting on the same practitioner"), c)
        .await?;
    Ok(())
}

async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    // Idle: after start, before any load.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (name, st) in SERVICES.iter().zip(bench.stats()) {
        let idle = mib(st.rss_kib);
        bench.report.add(
            "memory",
            format!("{name}: resident when idle"),
            format!("{idle:.1} MiB"),
            "< 30 MiB",
            Some(idle < 30.0),
        );
    }

    let mut limits = Vec::new();
    if bench.scale.runs("limits") {
        println!("limits of the parts...");
        limits = bench.limits().await?;
    }

    if bench.scale.runs("latency") {
        latency(bench).await?;
    } else {
        // The matching scenario then seeds its whole waiting list itself.
        bench.scale.other_waitlist = 0;
    }

    if bench.scale.runs("fanout") {
        println!("fan-out of one slot to {} patients...", bench.scale.fanout);
        bench.fanout().await?;
    }

    if bench.scale.runs("many_clinics") {
        println!(
            "many clinics: {} practitioners × {} patients, {} slots each...",
            bench.scale.clinics, bench.scale.clinic_patients, bench.scale.clinic_slots
        );
        bench.many_clinics().await?;
    }

    if bench.scale.runs("matching") {
        println!("matching with {} entries...", bench.scale.matching_entries);
        bench.matching().await?;
    }

    if bench.scale.runs("texts") {
        println!(
            "texts: {} through Kannel, straight and through slotcast...",
            bench.scale.texts
        );
        bench.texts().await?;
    }

    if let Some(rate) = bench.fanout_rate {
        let slowest = limits
            .iter()
            .filter(|l| {
                !l.what.contains("one at a time")
                    && !l.what.contains("one row a")
                    && !l.what.contains("Nagle")
            })
            .min_by(|a, b| a.per_second().total_cmp(&b.per_second()));
        if let Some(slowest) = slowest {
            bench.report.add(
                "limits",
                format!(
                    "our fan-out as a fraction of the slowest part ({})",
                    slowest.what
                ),
                format!(
                    "{:.0}/s of {:.0}/s = {:.0} %",
                    rate,
                    slowest.per_second(),
                    rate / slowest.per_second() * 100.0
                ),
                "",
                None,
            );
        }
    }
    for (name, st) in SERVICES.iter().zip(bench.stats()) {
        bench.report.add(
            "memory",
            format!("{name}: peak resident over the whole run (VmHWM), now"),
            format!("{:.1} MiB, {:.1} MiB", mib(st.hwm_kib), mib(st.rss_kib)),
            "",
            None,
        );
    }
    Ok(())
}

/// `perf record` of every CPU, with call graphs, while it runs.
struct Profiler {
    child: std::process::Child,
    out: String,
}

impl Profiler {
    fn start(out: &str) -> anyhow::Result<Self> {
        let child = std::process::Command::new("perf")
            .args(["record", "-a", "-g", "-F", "499", "-o", out, "-q"])
            .stdin(std::process::Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("BENCH_PERF is set but perf cannot start: {e}"))?;
        // perf takes a moment to set up its buffers on every CPU.
        std::thread::sleep(Duration::from_millis(500));
        Ok(Self {
            child,
            out: out.to_owned(),
        })
    }

    /// Stops the recording (SIGINT, so perf writes its file) and waits for it.
    fn stop(mut self) -> anyhow::Result<String> {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        self.child.wait()?;
        Ok(self.out)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let scale = Scale::from_env()?;
    let root = std::env::var("BENCH_DIR").unwrap_or_else(|_| "var/bench".to_owned());
    let dir = std::path::PathBuf::from(root);
    println!(
        "slotcast bench, scale {:?}; logs in {}/logs",
        scale.name,
        dir.display()
    );
    let settings = settings();
    let sys = System::start(&dir, &settings).await?;
    let outcome = async {
        let nats = async_nats::connect(&sys.nats_url).await?;
        let js = async_nats::jetstream::new(nats.clone());
        let watch = NotifyWatch::start(&nats).await?;
        let mut outboxes = Vec::new();
        for s in &sys.services {
            outboxes.push(sys.databases.connect(&s.db).await?);
        }
        let mut bench = Bench {
            token: sys.staff_token()?,
            http: reqwest::Client::new(),
            js,
            watch,
            scheduling_db: outboxes[0].clone(),
            matching_db: outboxes[1].clone(),
            outboxes,
            ticks: system::clock_ticks(),
            report: Report::default(),
            next_start: HashMap::new(),
            fanout_rate: None,
            fanout_peak: Vec::new(),
            scale: scale.clone(),
            sys,
        };
        let result = tokio::select! {
            r = run(&mut bench) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        anyhow::Ok((bench, result))
    }
    .await;
    let (bench, result) = match outcome {
        Ok(v) => v,
        Err(e) => return Err(e),
    };
    let md = bench.report.markdown(&scale, &machine());
    for db in &bench.outboxes {
        let _ = db.clone().close().await;
    }
    bench.sys.stop().await;
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(format!(
        "results-{}-{}.md",
        scale.name,
        Utc::now().format("%Y%m%dT%H%M%S")
    ));
    std::fs::write(&file, &md)?;
    std::fs::write(dir.join("latest.md"), &md)?;
    println!("\n{md}\nwritten to {}", file.display());
    result
}

/// Waits until the fake SMSC has received `n` texts; `None` after `patience`.
async fn wait_for_texts(
    kannel: &slotcast_test_support::KannelGateway,
    n: usize,
    patience: Duration,
) -> Option<()> {
    kannel.wait_for_messages(n, patience).await.ok().map(drop)
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), 3.0);
        assert_eq!(median(&[5.0]), 5.0);
        assert!(median(&[]).is_nan());
    }
}
