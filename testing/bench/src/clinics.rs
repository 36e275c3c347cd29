//! The many-clinics scenario: many practitioners, each with a short waiting list, post a few
//! slots each, one slot a request, all at once; how fast matching absorbs the events, how fast
//! the notifications reach the patients, and how long each opening waits for its first
//! notification, with one matching replica and with more.

use std::time::Duration;

use futures::StreamExt as _;
use serde_json::json;
use tokio::time::Instant;
use uuid::Uuid;

use crate::{
    Bench, mib, pct,
    probe::{self, Metrics},
    seed::{self, Group, Practitioner},
    system,
};

/// The scheduling stream and matching's durable consumer on it, whose backlog tells when
/// matching has absorbed the events.
const STREAM: &str = "SLOTCAST_SCHEDULING";
const DURABLE: &str = "matching";

/// The numbered practitioners of run `r` are `r * RUN_BASE + 1` on, apart from every other
/// scenario's and from the other runs'.
const RUN_BASE: u64 = 1_000_000;

/// How the follower polls: often enough for a figure of a few seconds.
const TICK: Duration = Duration::from_millis(20);

/// One POST of the scenario, as answered.
struct Posted {
    /// The slot and its batch, when the POST got its 201.
    created: Option<(Uuid, Uuid)>,
    answered: Instant,
    latency: Duration,
}

impl Bench {
    /// The scenario once for each replica count of `clinic_replicas`, each run on practitioners
    /// and patients of its own; matching is back to one process afterwards.
    pub(crate) async fn many_clinics(&mut self) -> anyhow::Result<()> {
        let s = &self.scale;
        self.report.note(format!(
            "many clinics: {} practitioners × {} patients waiting (every one fitting), {} slots each in {} requests of one slot, \
             sent slot by slot across the practitioners (every practitioner's first slot, then every second one…) with {} requests in flight; \
             each replica count runs on practitioners and patients of its own in the same system, one after the other. \
             Its end to end rate is the scenario's notify.patient messages over the time from the first POST until the sink accepted as many emails \
             and in-app stored as many notifications, the fan-out's definition with the count of what went out in place of the patients; \
             the target compares it with the fan-out's median end to end rate of this run",
            s.clinics, s.clinic_patients, s.clinic_slots, s.clinic_slots, s.clinic_concurrency
        ));
        let counts = self.scale.clinic_replicas.clone();
        for (run, replicas) in (1u64..).zip(counts.iter().copied()) {
            self.sys.set_matching_replicas(replicas).await?;
            self.clinics_once(run, replicas).await?;
        }
        for (run, replicas) in (counts.len() as u64 + 1..).zip(counts) {
            self.clinics_backlog(run, replicas).await?;
        }
        self.sys.set_matching_replicas(1).await?;
        Ok(())
    }

    /// Seeds run `run`'s practitioners and waiting patients; returns the POSTs of its slots.
    async fn clinics_seed(
        &mut self,
        run: u64,
        label: &str,
    ) -> anyhow::Result<Vec<(String, serde_json::Value)>> {
        let (n, per, slots) = (
            self.scale.clinics,
            self.scale.clinic_patients,
            self.scale.clinic_slots,
        );
        let base = run * RUN_BASE;
        let tag = format!("c{run}");
        let seeded = Instant::now();
        seed::practitioners(&self.scheduling_db, &self.matching_db, base + 1, base + n).await?;
        seed::entries(
            &self.scheduling_db,
            &self.matching_db,
            Group {
                tag: &tag,
                practitioner: Practitioner::Numbered { per },
                from: base * per + 1,
                to: (base + n) * per,
                fits_every: 1,
            },
        )
        .await?;
        self.report.note(format!(
            "many clinics, {label}: {} entries on {n} practitioners seeded in {:.1} s",
            n * per,
            seeded.elapsed().as_secs_f64()
        ));
        self.quiet(Duration::from_secs(120)).await?;

        // Slot by slot across the practitioners, so a practitioner's slots arrive apart, as when
        // every clinic posts at the same time.
        let api = self.api();
        let mut requests = Vec::with_capacity(n as usize * slots);
        for _ in 0..slots {
            for k in 1..=n {
                let practitioner = seed::numbered_practitioner(base + k);
                let (s, e) = self.next_slot(practitioner);
                requests.push((
                    format!("{api}/v1/practitioners/{practitioner}/slots"),
                    json!({"slots": [{"starts_at": s, "ends_at": e}]}),
                ));
            }
        }
        Ok(requests)
    }

    /// Matching's own pace, apart from scheduling's: the same POSTs with every matching process
    /// stopped, so their events wait in the stream; then `replicas` matching processes start,
    /// and the figure is the events over the time from their start until the consumer is
    /// drained.
    async fn clinics_backlog(&mut self, run: u64, replicas: usize) -> anyhow::Result<()> {
        let label = if replicas == 1 {
            "1 matching replica".to_owned()
        } else {
            format!("{replicas} matching replicas")
        };
        let requests = self
            .clinics_seed(run, &format!("{label}, from a backlog"))
            .await?;
        self.sys.stop_matching();
        let (http, token) = (self.http.clone(), self.token.clone());
        let answers = futures::stream::iter(requests)
            .map(|(url, body)| post(&http, &token, url, body))
            .buffer_unordered(self.scale.clinic_concurrency)
            .collect::<Vec<Posted>>()
            .await;
        let created = answers.iter().filter(|p| p.created.is_some()).count();
        while slotcast_bus::outbox::unpublished(&self.scheduling_db).await? > 0 {
            tokio::time::sleep(TICK).await;
        }
        let (backlog, _) = probe::consumer_backlog(&self.js, STREAM, DURABLE).await?;
        let started = Instant::now();
        self.sys.start_matching(replicas).await?;
        let patience = Duration::from_secs(300);
        while probe::consumer_backlog(&self.js, STREAM, DURABLE).await? != (0, 0) {
            if started.elapsed() > patience {
                anyhow::bail!(
                    "many clinics, {label}: a backlog of {backlog} not drained within {patience:?}"
                );
            }
            tokio::time::sleep(TICK).await;
        }
        let took = started.elapsed().as_secs_f64();
        self.report.add(
            "clinics",
            format!(
                "scheduling events matching absorbs per second from a backlog, {label} ({backlog} waiting, {created} of them slot.created; matching started → drained)"
            ),
            format!("{:.0}/s ({took:.2} s)", backlog as f64 / took),
            "≥ 2,000/s",
            Some(backlog as f64 / took >= 2000.0),
        );
        self.quiet(Duration::from_secs(300)).await?;
        Ok(())
    }

    async fn clinics_once(&mut self, run: u64, replicas: usize) -> anyhow::Result<()> {
        let (n, per, in_flight) = (
            self.scale.clinics,
            self.scale.clinic_patients,
            self.scale.clinic_concurrency,
        );
        let label = if replicas == 1 {
            "1 matching replica".to_owned()
        } else {
            format!("{replicas} matching replicas")
        };
        let requests = self.clinics_seed(run, &label).await?;
        let total = requests.len();
        let inapp = self.sys.service("inapp-notifier").base();
        let stored_key = "slotcast_inapp_notifier_notifications_stored_total";
        let stored0 = Metrics::scrape(&self.http, &inapp).await?.get(stored_key);
        let sent0 = self.sys.sink.accepted();
        let names: Vec<String> = self.sys.processes().map(|p| p.name.clone()).collect();
        let pids = self.sys.processes().map(|p| p.pid()).collect();
        let sampler = system::PeakRss::start(pids, self.ticks);

        let (http, token) = (self.http.clone(), self.token.clone());
        let t0 = Instant::now();
        let mut driver = Some(tokio::spawn(async move {
            let answers = futures::stream::iter(requests)
                .map(|(url, body)| post(&http, &token, url, body))
                .buffer_unordered(in_flight)
                .collect::<Vec<Posted>>()
                .await;
            (answers, Instant::now())
        }));

        // Follows the run until every notification it caused is delivered (or patience ends).
        let patience = Duration::from_secs(300 + total as u64 / 10);
        let mut posted: Option<(Vec<Posted>, Instant)> = None;
        let mut batches: Vec<Uuid> = Vec::new();
        let mut absorbed = None;
        let (mut sent, mut stored) = (0u64, 0u64);
        let (mut email_last, mut inapp_last) = (None, None);
        let mut finished = false;
        for tick in 1u64.. {
            tokio::time::sleep(TICK).await;
            if t0.elapsed() > patience {
                break;
            }
            let now_sent = self.sys.sink.accepted() - sent0;
            if now_sent > sent {
                (sent, email_last) = (now_sent, Some(t0.elapsed()));
            }
            let now_stored =
                (Metrics::scrape(&self.http, &inapp).await?.get(stored_key) - stored0) as u64;
            if now_stored > stored {
                (stored, inapp_last) = (now_stored, Some(t0.elapsed()));
            }
            if let Some(done) = driver.take_if(|d| d.is_finished()) {
                let (answers, all_answered) = done.await?;
                batches = answers
                    .iter()
                    .filter_map(|p| p.created.map(|(_, b)| b))
                    .collect();
                posted = Some((answers, all_answered));
            }
            if posted.is_none() {
                continue;
            }
            if absorbed.is_none() {
                // Every event is in the stream once scheduling's outbox is empty; then the
                // consumer's backlog says whether matching has acked them all.
                if slotcast_bus::outbox::unpublished(&self.scheduling_db).await? == 0
                    && probe::consumer_backlog(&self.js, STREAM, DURABLE).await? == (0, 0)
                {
                    absorbed = Some(t0.elapsed());
                }
                continue;
            }
            if !tick.is_multiple_of(10) {
                continue;
            }
            let (notified, _) = self.watch.totals(&batches);
            if sent >= notified
                && stored >= notified
                && probe::is_quiet(&self.js, &self.outboxes, &self.matching_db).await?
            {
                finished = true;
                break;
            }
        }
        let peak = sampler.stop().await?;
        let Some((posted, all_answered)) = posted else {
            anyhow::bail!("many clinics, {label}: the POSTs did not finish within {patience:?}");
        };

        let mut latencies: Vec<Duration> = posted.iter().map(|p| p.latency).collect();
        latencies.sort();
        let created = posted.iter().filter(|p| p.created.is_some()).count();
        let errors = total - created;
        let (p50, p99, max) = (
            pct(&latencies, 50.0),
            pct(&latencies, 99.0),
            pct(&latencies, 100.0),
        );
        self.report.add(
            "clinics",
            format!(
                "POST a slot, many clinics, {label}: p50 / p99 (max), {total} requests, {in_flight} in flight"
            ),
            format!(
                "{p50:.1} ms / {p99:.1} ms ({max:.1} ms), all answered in {:.2} s ({:.0}/s){}",
                (all_answered - t0).as_secs_f64(),
                total as f64 / (all_answered - t0).as_secs_f64(),
                if errors > 0 {
                    format!(", {errors} errors")
                } else {
                    String::new()
                }
            ),
            "p99 < 10 ms",
            Some(p99 < 10.0 && errors == 0),
        );

        let secs = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64());
        let absorb_rate = created as f64 / secs(absorbed);
        self.report.add(
            "clinics",
            format!(
                "scheduling events absorbed by matching per second, {label} ({created} slot.created, first POST → consumer `{DURABLE}` drained)"
            ),
            match absorbed {
                Some(d) => format!("{absorb_rate:.0}/s ({:.2} s)", d.as_secs_f64()),
                None => format!("not drained within {patience:?}"),
            },
            "≥ 2,000/s",
            Some(absorbed.is_some() && absorb_rate >= 2000.0),
        );

        let (notified, offered) = self.watch.totals(&batches);
        let end = match (email_last, inapp_last) {
            (Some(a), Some(b)) if finished => Some(a.max(b)),
            _ => None,
        };
        let rate = notified as f64 / secs(end);
        let (figure, target, met) = match (end, self.fanout_rate) {
            (None, _) => (
                format!(
                    "did not finish within {patience:?} ({sent} emails, {stored} in-app of {notified})"
                ),
                "≥ 0.8 × the fan-out's".to_owned(),
                Some(false),
            ),
            (Some(d), Some(fanout)) => (
                format!(
                    "{rate:.0}/s ({notified} in {:.2} s) = {:.2} × the fan-out's {fanout:.0}/s",
                    d.as_secs_f64(),
                    rate / fanout
                ),
                format!("≥ 0.8 × the fan-out's = {:.0}/s", 0.8 * fanout),
                Some(rate >= 0.8 * fanout),
            ),
            (Some(d), None) => (
                format!("{rate:.0}/s ({notified} in {:.2} s)", d.as_secs_f64()),
                "≥ 0.8 × the fan-out's (no fan-out in this run)".to_owned(),
                None,
            ),
        };
        self.report.add(
            "clinics",
            format!(
                "notifications per second end to end, {label} (first POST → email and in-app both done)"
            ),
            figure,
            target,
            met,
        );
        let patients = n * per;
        self.report.add(
            "clinics",
            format!("notifications and slots offered, {label} ({patients} patients, {created} slots)"),
            format!(
                "{notified} notifications ({:.2} a patient), {offered} slots offered ({:.2} a notification)",
                notified as f64 / patients as f64,
                offered as f64 / notified.max(1) as f64
            ),
            "",
            None,
        );

        let mut to_first: Vec<Duration> = posted
            .iter()
            .filter_map(|p| {
                let (slot, _) = p.created?;
                Some(
                    self.watch
                        .slot_first(slot)?
                        .saturating_duration_since(p.answered),
                )
            })
            .collect();
        to_first.sort();
        self.report.add(
            "clinics",
            format!("POST answered → first notify.patient listing its slot, {label}: p50 / p99"),
            format!(
                "{:.0} ms / {:.0} ms ({} of {created} slots offered)",
                pct(&to_first, 50.0),
                pct(&to_first, 99.0),
                to_first.len()
            ),
            "",
            None,
        );

        let peaks: Vec<String> = names
            .iter()
            .zip(&peak)
            .map(|(name, kib)| format!("{name} {:.1}", mib(*kib)))
            .collect();
        let highest = peak.iter().copied().max().unwrap_or(0);
        self.report.add(
            "clinics",
            format!("resident at the peak, {label} (MiB)"),
            peaks.join(", "),
            "< 150 MiB each",
            Some(mib(highest) < 150.0),
        );
        self.quiet(Duration::from_secs(600)).await?;
        Ok(())
    }
}

/// One POST of one slot; its latency is from the send to the response's head.
async fn post(http: &reqwest::Client, token: &str, url: String, body: serde_json::Value) -> Posted {
    let sent = Instant::now();
    let response = http.post(url).bearer_auth(token).json(&body).send().await;
    let answered = Instant::now();
    let created = match response {
        Ok(r) if r.status().as_u16() == 201 => {
            r.json::<serde_json::Value>().await.ok().and_then(|v| {
                let slot = &v["slots"][0];
                Some((
                    slot["id"].as_str()?.parse().ok()?,
                    slot["batch_id"].as_str()?.parse().ok()?,
                ))
            })
        }
        _ => None,
    };
    Posted {
        created,
        answered,
        latency: answered - sent,
    }
}
