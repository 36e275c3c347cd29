//! Faults injected for real while an opening fans out to hundreds of waiting patients. Each case
//! asserts that every patient got exactly one email and one in-app notification per posting
//! (and, in the cases that text, one text), duplicates only inside the documented crash windows
//! and counted, that nothing was lost, and that every service is still serving. The cases of many practitioners at once
//! (issue 14) check slot by slot instead: each patient told once about each slot that fits them.
//!
//! The cases run one at a time (they share the machine's two cores) and write one line each to
//! `<target>/chaos-report.txt`.

use std::{
    collections::BTreeSet,
    future::Future,
    io::Write as _,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use anyhow::ensure;
use futures::{StreamExt as _, TryStreamExt as _};
use sea_orm::{ConnectionTrait as _, DbBackend, Statement};
use slotcast_chaos::{
    Clinics, Entry, Options, Seeded, Service, Slot, System, patients, practitioners,
};
use slotcast_test_support::ReplyMode;
use tokio::time::Instant;
use uuid::Uuid;

/// Long enough for every redelivery after a crash (the longest `ack_wait` is 60 s) and a
/// patient email retried a few times.
const SETTLE: Duration = Duration::from_secs(240);

/// Patients on each practitioner's list of its own in the many-practitioner case.
const OWN_PATIENTS: usize = 4;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

type Case = for<'a> fn(
    &'a mut System,
    &'a Seeded,
) -> Pin<Box<dyn Future<Output = anyhow::Result<Outcome>> + 'a>>;

/// What a case reports: how many postings each patient should have heard of, and what it did.
struct Outcome {
    postings: usize,
    faults: String,
    /// Addresses the SMTP server refused for good: they get no email, and one failed delivery.
    refused: Vec<String>,
    /// Email-notifier processes killed -9: each may send again at most
    /// [`EMAIL_MAX_UNRECORDED`] emails.
    email_crashes: usize,
    /// Sms-notifier processes killed -9: each may send again at most [`SMS_CONCURRENCY`] texts
    /// (those the gateway took whose record was not written yet).
    sms_crashes: usize,
}

/// The sms-notifier's default `SMS_CONCURRENCY`, which the chaos processes run with.
const SMS_CONCURRENCY: usize = 8;

/// The email-notifier's default `EMAIL_MAX_UNRECORDED`, which the chaos processes run with.
const EMAIL_MAX_UNRECORDED: usize = 8;

impl Outcome {
    fn new(postings: usize, faults: String) -> Self {
        Self {
            postings,
            faults,
            refused: Vec::new(),
            email_crashes: 0,
            sms_crashes: 0,
        }
    }

    fn sms_crashes(self, crashes: usize) -> Self {
        Self {
            sms_crashes: crashes,
            ..self
        }
    }

    fn email_crashes(self, crashes: usize) -> Self {
        Self {
            email_crashes: crashes,
            ..self
        }
    }
}

async fn run(name: &str, options: Options, case: Case) -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let started = Instant::now();
    let mut system = System::start(options).await?;
    let seeded = system.seed(patients()).await?;
    let outcome = case(&mut system, &seeded).await?;
    let settled = system.settle(SETTLE).await?;
    let report = system
        .verify_except(&seeded, outcome.postings, &outcome.refused)
        .await?;
    let line = format!(
        "{name}: {} | {report} | settled {:.1} s after the last step, case {:.0} s in all",
        outcome.faults,
        settled.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    println!("{line}");
    record(&line);
    let checked = async {
        report.assert_exactly_once()?;
        // Only a crash bounds the re-sends: a database cut can hold a `sent` record back too,
        // and those re-sends are counted as well.
        let window = outcome.email_crashes * EMAIL_MAX_UNRECORDED;
        ensure!(
            outcome.email_crashes == 0 || report.email.duplicates <= window,
            "{} emails sent twice after {} crashes of the email-notifier, more than {window}: \
             {report}",
            report.email.duplicates,
            outcome.email_crashes
        );
        let texted_twice = report.sms.as_ref().map_or(0, |t| t.duplicates);
        let sms_window = outcome.sms_crashes * SMS_CONCURRENCY;
        ensure!(
            texted_twice <= sms_window,
            "{texted_twice} texts sent twice after {} crashes of the sms-notifier, more than \
             {sms_window}: {report}",
            outcome.sms_crashes
        );
        system.assert_serving().await
    }
    .await;
    if let Err(e) = checked {
        anyhow::bail!("{name}: {e:#}\n{}", system.logs());
    }
    Ok(())
}

fn record(line: &str) {
    let Ok(dir) = slotcast_chaos::bin_dir() else {
        return;
    };
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("chaos-report.txt"))
    {
        let _ = writeln!(file, "{line}");
    }
}

fn part(n: usize, fraction: usize) -> usize {
    (n / fraction).max(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_scheduling_with_events_in_its_outbox() -> anyhow::Result<()> {
    run(
        "kill -9 scheduling",
        Options::default(),
        |system, seeded| {
            Box::pin(async move {
                let n = seeded.patients.len();
                // Mid-fan-out of the first slot, then again the instant a second slot is accepted,
                // while its events may still sit in the outbox.
                system.post_slot(seeded.practitioner, 24).await?;
                let first = system
                    .wait_for(Duration::from_secs(60), |p| p.emailed >= part(n, 4))
                    .await?;
                system
                    .kill9_and_restart(Service::Scheduling, 0, Duration::ZERO)
                    .await?;
                system.post_slot(seeded.practitioner, 48).await?;
                system.kill9(Service::Scheduling, 0);
                let second = system.progress().await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
                system.restart(Service::Scheduling, 0).await?;
                Ok(Outcome::new(
                    2,
                    format!(
                        "killed at [{first}] and right after the second slot's 201 at [{second}]"
                    ),
                ))
            })
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_matching_while_it_decides_and_while_it_publishes() -> anyhow::Result<()> {
    run("kill -9 matching", Options::default(), |system, seeded| {
        Box::pin(async move {
            let n = seeded.patients.len() as u64;
            system.post_slot(seeded.practitioner, 24).await?;
            let first = system.progress().await?;
            system
                .kill9_and_restart(Service::Matching, 0, Duration::ZERO)
                .await?;
            system
                .wait_for(Duration::from_secs(120), |p| p.notified >= n)
                .await?;
            system.post_slot(seeded.practitioner, 48).await?;
            let second = system
                .wait_for(Duration::from_secs(60), |p| p.notified > n)
                .await?;
            system
                .kill9_and_restart(Service::Matching, 0, Duration::ZERO)
                .await?;
            Ok(Outcome::new(2, format!(
                    "killed as the first slot was accepted at [{first}], and as the second's notifications went out at [{second}]"
                )))
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_email_notifier_while_it_sends() -> anyhow::Result<()> {
    run(
        "kill -9 email-notifier",
        Options::default(),
        |system, seeded| {
            Box::pin(async move {
                let n = seeded.patients.len();
                system.post_slot(seeded.practitioner, 24).await?;
                let at = system
                    .wait_for(Duration::from_secs(60), |p| p.emailed >= part(n, 3))
                    .await?;
                system
                    .kill9_and_restart(Service::EmailNotifier, 0, Duration::from_secs(1))
                    .await?;
                Ok(Outcome::new(1, format!("killed at [{at}]")).email_crashes(1))
            })
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_of_two_sms_notifiers_while_they_text() -> anyhow::Result<()> {
    run(
        "kill -9 one of two sms-notifiers",
        Options {
            texts: true,
            sms_replicas: Some(2),
            ..Options::default()
        },
        |system, seeded| {
            Box::pin(async move {
                let n = seeded.patients.len();
                system.post_slot(seeded.practitioner, 24).await?;
                let at = system
                    .wait_for(Duration::from_secs(60), |p| p.texted >= part(n, 3))
                    .await?;
                system
                    .kill9_and_restart(Service::SmsNotifier, 0, Duration::from_secs(1))
                    .await?;
                let shared = system.work_split().await?;
                Ok(Outcome::new(1, format!("killed at [{at}]; {shared}")).sms_crashes(1))
            })
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sms_gateway_down_for_a_while_and_its_delivery_reports_repeated() -> anyhow::Result<()>
{
    run(
        "SMS gateway down, reports repeated",
        Options {
            texts: true,
            ..Options::default()
        },
        |system, seeded| {
            Box::pin(async move {
                let n = seeded.patients.len();
                system.post_slot(seeded.practitioner, 24).await?;
                let at = system
                    .wait_for(Duration::from_secs(60), |p| p.texted >= part(n, 4))
                    .await?;
                let kannel = system.kannel.as_mut().expect("a texting system");
                kannel.kill_smsbox().await;
                tokio::time::sleep(Duration::from_secs(3)).await;
                kannel.restart_smsbox().await?;
                let retried = system
                    .metric(Service::SmsNotifier, "slotcast_sms_retried_total")
                    .await?;
                system
                    .wait_for(Duration::from_secs(120), |p| p.texted >= n)
                    .await?;
                system.settle(SETTLE).await?;
                // Every text reported delivered twice more, as a gateway that repeats itself
                // would: each is recorded delivered once, whatever reached it before.
                let repeated = system.repeat_delivery_reports(2).await?;
                system.settle(SETTLE).await?;
                let delivered = system.texts_reported_delivered().await?;
                ensure!(
                    delivered == n,
                    "{delivered} texts reported delivered, {n} sent, after {repeated} repeated \
                     reports"
                );
                Ok(Outcome::new(
                    1,
                    format!(
                        "smsbox killed for 3 s at [{at}], {retried} retries; {repeated} reports \
                         repeated, {delivered} delivered once each"
                    ),
                ))
            })
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_inapp_notifier_while_it_stores() -> anyhow::Result<()> {
    run(
        "kill -9 inapp-notifier",
        Options::default(),
        |system, seeded| {
            Box::pin(async move {
                let n = seeded.patients.len() as u64;
                system.post_slot(seeded.practitioner, 24).await?;
                let at = system
                    .wait_for(Duration::from_secs(60), |p| p.stored >= (n / 3).max(1))
                    .await?;
                system
                    .kill9_and_restart(Service::InappNotifier, 0, Duration::from_secs(1))
                    .await?;
                Ok(Outcome::new(1, format!("killed at [{at}]")))
            })
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_nats_server_and_a_restart_on_the_same_store() -> anyhow::Result<()> {
    run("kill -9 nats-server", Options::default(), |system, seeded| {
        Box::pin(async move {
            let n = seeded.patients.len();
            system.post_slot(seeded.practitioner, 24).await?;
            let at = system
                .wait_for(Duration::from_secs(60), |p| p.emailed >= part(n, 4))
                .await?;
            let slotcast_chaos::Nats::Single(nats) = &system.nats else {
                anyhow::bail!("a single server was asked for");
            };
            nats.kill();
            tokio::time::sleep(Duration::from_secs(3)).await;
            // While NATS is down every service says so, and a slot posted now waits in the outbox.
            let mut unready = 0;
            for service in Service::ALL {
                let url = system.proc_url(service, 0);
                let status = system
                    .http
                    .get(format!("{url}/readyz"))
                    .send()
                    .await?
                    .status();
                if status == 503 {
                    unready += 1;
                }
            }
            ensure!(unready == 4, "only {unready} of 4 services said NATS was down");
            system.post_slot(seeded.practitioner, 48).await?;
            nats.restart().await?;
            Ok(Outcome::new(2, format!(
                    "killed at [{at}] for 3 s, a slot posted while it was down, {unready} of 4 services answered /readyz 503 meanwhile"
                )))
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_a_three_node_cluster_killed_mid_run() -> anyhow::Result<()> {
    let options = Options {
        cluster: true,
        ..Options::default()
    };
    run("cluster node killed", options, |system, seeded| {
        Box::pin(async move {
            let n = seeded.patients.len();
            system.post_slot(seeded.practitioner, 24).await?;
            let at = system
                .wait_for(Duration::from_secs(60), |p| p.emailed >= part(n, 4))
                .await?;
            let leader = system.stream_leader(slotcast_events::streams::NOTIFY).await?;
            let slotcast_chaos::Nats::Cluster(cluster) = &system.nats else {
                anyhow::bail!("a cluster was asked for");
            };
            cluster.kill_node(leader)?;
            // The run goes on on two nodes: a second slot is posted and fans out meanwhile.
            system.post_slot(seeded.practitioner, 48).await?;
            system
                .wait_for(Duration::from_secs(180), |p| p.emailed >= 2 * n)
                .await?;
            let slotcast_chaos::Nats::Cluster(cluster) = &system.nats else {
                anyhow::bail!("a cluster was asked for");
            };
            cluster.restart_node(leader).await?;
            Ok(Outcome::new(2, format!(
                    "killed node n{leader} (leader of SLOTCAST_NOTIFY) at [{at}], second slot fanned out on two nodes, node restarted"
                )))
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_answers_451_for_a_while_then_550_for_one_recipient() -> anyhow::Result<()> {
    run("SMTP 451 then 550", Options::default(), |system, seeded| {
        Box::pin(async move {
            let refused = seeded.patients[0].1.clone();
            system.smtp.set_reply(ReplyMode::TempFail);
            system.post_slot(seeded.practitioner, 24).await?;
            let started = Instant::now();
            // Long enough that most notifications were tried and refused at least once.
            tokio::time::sleep(Duration::from_secs(5)).await;
            let retried = system
                .metric(Service::EmailNotifier, "slotcast_email_retried_total")
                .await?;
            ensure!(retried > 0.0, "no email was retried after a 451");
            system
                .smtp
                .set_reply(ReplyMode::RejectRecipient(refused.clone()));
            let failed = system
                .wait_for_failed_deliveries(1, Duration::from_secs(120))
                .await?;
            ensure!(failed == 1, "{failed} deliveries failed, not 1");
            // The counter moves just after the `failed` row commits: give it a moment.
            let mut permanent = 0.0;
            for _ in 0..50 {
                permanent = system
                    .metric(Service::EmailNotifier, "slotcast_email_failed_total")
                    .await?;
                if permanent >= 1.0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            ensure!(permanent == 1.0, "{permanent} failures counted, not 1");
            Ok(Outcome {
                postings: 1,
                faults: format!(
                    "451 to everyone for {:.0} s ({retried} temporary failures retried), then 550 for one recipient (1 delivery failed for good, never retried)",
                    started.elapsed().as_secs_f64()
                ),
                refused: vec![refused],
                email_crashes: 0,
                sms_crashes: 0,
            })
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_terminated_during_the_fan_out() -> anyhow::Result<()> {
    run("pg_terminate_backend", Options::default(), |system, seeded| {
        Box::pin(async move {
            let names = system
                .database_names()
                .iter()
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(",");
            let sql = format!(
                "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
                 WHERE datname IN ({names}) AND pid <> pg_backend_pid()"
            );
            system.post_slot(seeded.practitioner, 24).await?;
            let mut terminated = 0i64;
            let mut rounds = 0;
            let until = Instant::now() + Duration::from_secs(6);
            while Instant::now() < until {
                let row = system
                    .db(Service::Scheduling)
                    .query_one_raw(Statement::from_string(DbBackend::Postgres, sql.clone()))
                    .await?;
                terminated += row.map_or(Ok(0), |r| r.try_get::<i64>("", "n"))?;
                rounds += 1;
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            // A slot posted right after the last cut.
            system.post_slot(seeded.practitioner, 48).await?;
            Ok(Outcome::new(2, format!(
                    "{terminated} connections of the four services terminated in {rounds} rounds over 6 s"
                )))
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_of_every_service_one_of_each_killed() -> anyhow::Result<()> {
    let options = Options {
        replicas: 2,
        ..Options::default()
    };
    run(
        "two replicas each, one killed",
        options,
        |system, seeded| {
            Box::pin(async move {
                let n = seeded.patients.len();
                system.post_slot(seeded.practitioner, 24).await?;
                // The second slot once the first is decided: two openings due in the same pass
                // go to each patient as one message, and this case counts a message per slot.
                system
                    .wait_for(Duration::from_secs(60), |p| p.notified >= n as u64)
                    .await?;
                system.post_slot(seeded.practitioner, 48).await?;
                let at = system
                    .wait_for(Duration::from_secs(60), |p| p.emailed >= part(n, 2))
                    .await?;
                let shared = system.work_split().await?;
                for service in Service::ALL {
                    system.kill9(service, 1);
                }
                // The survivors finish the work (the killed replicas' messages come back after their
                // ack wait); then the replicas come back.
                system
                    .wait_for(Duration::from_secs(180), |p| {
                        p.emailed >= 2 * n && p.stored >= 2 * n as u64
                    })
                    .await?;
                for service in Service::ALL {
                    system.restart(service, 1).await?;
                }
                Ok(Outcome::new(
                    2,
                    format!("replica 1 of each service killed at [{at}]; {shared}"),
                )
                .email_crashes(1))
            })
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_message_on_every_subject() -> anyhow::Result<()> {
    run("malformed messages", Options::default(), |system, seeded| {
        Box::pin(async move {
            let published = system.publish_poison().await?;
            system.post_slot(seeded.practitioner, 24).await?;
            system.settle(SETTLE).await?;
            let counted = system.dead_letters_counted().await?;
            let letters = system.dead_letters_in_stream().await?;
            ensure!(letters > 0, "no message was dead-lettered");
            ensure!(
                counted == letters as f64,
                "{counted} dead letters counted in /metrics, {letters} in the stream"
            );
            Ok(Outcome::new(1, format!(
                    "{published} malformed messages on {} subjects (the catalogue and one unknown subject per stream); {letters} copies dead-lettered, each by a consumer that parses that subject, and all counted in /metrics; subjects a consumer does not use are skipped unparsed",
                    slotcast_events::CATALOGUE.len() + 3
                )))
        })
    })
    .await
}

/// The `waves` policy's timers live in matching's database: with two matching replicas, both
/// killed -9 after the first wave and restarted after its hold ended, the next waves still go
/// out, each once, none skipped, and every patient hears of the slot exactly once.
#[tokio::test]
async fn wave_timers_survive_kill_9_of_every_matching_replica() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let started = Instant::now();
    let hold = Duration::from_secs(3);
    let mut system = System::start(Options {
        replicas: 2,
        matching_env: vec![
            ("WAVE_SIZE", "2".to_owned()),
            ("WAVE_HOLD_MIN_SECS", hold.as_secs().to_string()),
            ("WAVE_HOLD_MAX_SECS", hold.as_secs().to_string()),
        ],
        ..Options::default()
    })
    .await?;
    let seeded = system.seed_with(6, "waves").await?;
    system.post_slot(seeded.practitioner, 48).await?;
    let first = system
        .wait_for(Duration::from_secs(60), |p| p.emailed >= 2)
        .await?;
    for replica in 0..2 {
        system.kill9(Service::Matching, replica);
    }
    // The first wave's hold ends while no matching runs.
    tokio::time::sleep(hold + Duration::from_secs(1)).await;
    for replica in 0..2 {
        system.restart(Service::Matching, replica).await?;
    }
    system
        .wait_for(Duration::from_secs(120), |p| {
            p.notified >= 6 && p.emailed >= 6 && p.stored >= 6
        })
        .await?;
    let settled = system.settle(SETTLE).await?;
    // Nobody is told twice: the waves after the restart are exactly the two left.
    tokio::time::sleep(hold).await;
    let done = system.progress().await?;
    ensure!(
        done.notified == 6 && done.stored == 6,
        "6 patients, 3 waves of 2: {done}"
    );
    for (_, address) in &seeded.patients {
        let n = system.emails_to(address);
        ensure!(n == 1, "{address} got {n} emails");
    }
    system.assert_serving().await?;
    record(&format!(
        "wave timers, 2 matching replicas killed -9 after wave 1 ({first}) and restarted after its {} s hold: waves 2 and 3 sent once each, 6/6 patients told once | settled {:.1} s after, case {:.0} s in all",
        hold.as_secs(),
        settled.as_secs_f64(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// The next full hour a day from now: every slot of the many-practitioner cases starts a few
/// hours after it.
fn tomorrow() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now().timestamp();
    chrono::DateTime::from_timestamp(now - now % 3600 + 25 * 3600, 0).unwrap_or_default()
}

fn hours(n: i64) -> chrono::Duration {
    chrono::Duration::hours(n)
}

/// Three matching replicas on many practitioners at once (issue 14): each practitioner's
/// patients wait on it (the first of them on the next practitioner too, the last only for a
/// window), every practitioner posts slots in separate requests concurrently, withdraws two at
/// once, books one for an outsider and cancels it later, while two replicas and then the third
/// are killed -9 with scheduling events in hand. Once settled: every patient was told exactly
/// once about each slot that fits them and is open, at most once about a withdrawn one, about
/// nothing of another practitioner or outside their window; and matching's view of every slot
/// is scheduling's (a practitioner's events applied out of order, a withdrawal before its
/// creation or a booking after its release, leave a slot open or booked in matching only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_matching_replicas_on_many_practitioners_tell_each_patient_once_through_kill_9()
-> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let started = Instant::now();
    let n = practitioners();
    let mut system = System::start(Options {
        matching_replicas: Some(3),
        ..Options::default()
    })
    .await?;
    let base = tomorrow();
    let practitioners = system.add_practitioners(n, "broadcast").await?;
    let patients = system.add_patients(OWN_PATIENTS * n).await?;
    let bookers = system.add_patients(n).await?;
    let mut entries = Vec::new();
    for (i, &practitioner) in practitioners.iter().enumerate() {
        for j in 0..OWN_PATIENTS {
            let patient = patients[i * OWN_PATIENTS + j].0;
            // The last patient only from the second slot to the fourth (W1, B, R).
            let window = (j == OWN_PATIENTS - 1).then(|| {
                (
                    base + hours(1),
                    base + hours(3) + chrono::Duration::minutes(20),
                )
            });
            entries.push(Entry {
                patient,
                practitioner,
                earliest: window.map(|w| w.0),
                latest: window.map(|w| w.1),
            });
            if j == 0 {
                entries.push(Entry {
                    patient,
                    practitioner: practitioners[(i + 1) % n],
                    earliest: None,
                    latest: None,
                });
            }
        }
    }
    system.join(&entries).await?;
    // Everyone is on the lists before the first slot: who is due what does not hang on timing.
    system.settle(SETTLE).await?;
    let seeded = started.elapsed();
    let clinics = Clinics {
        practitioners: practitioners.clone(),
        patients,
        entries,
    };

    // Round 1, every practitioner at once: A, W1 withdrawn at once, B, R booked by an outsider.
    let api = system.scheduling_api();
    let round1 = tokio::spawn({
        let (api, practitioners) = (api.clone(), practitioners.clone());
        let bookers: Vec<Uuid> = bookers.iter().map(|b| b.0).collect();
        async move {
            futures::stream::iter(practitioners.into_iter().zip(bookers))
                .map(|(d, booker)| {
                    let api = api.clone();
                    async move {
                        let a = api.post_slot_at(d, base).await?;
                        let w1 = api.post_slot_at(d, base + hours(1)).await?;
                        api.withdraw(w1.id).await?;
                        let b = api.post_slot_at(d, base + hours(2)).await?;
                        let r = api.post_slot_at(d, base + hours(3)).await?;
                        let appointment = api.book(booker, r.id).await?;
                        anyhow::Ok((vec![a, w1, b, r], appointment))
                    }
                })
                .buffer_unordered(n)
                .try_collect::<Vec<_>>()
                .await
        }
    });
    let first = system
        .wait_until(Duration::from_secs(120), "a backlog mid-run", || async {
            let p = system.progress().await?;
            let backlog = system.matching_backlog().await?;
            Ok((p.notified >= n as u64 && backlog > 0).then_some((p, backlog)))
        })
        .await?;
    system.kill9(Service::Matching, 0);
    system.kill9(Service::Matching, 1);
    system.restart(Service::Matching, 0).await?;
    system.restart(Service::Matching, 1).await?;
    let round1 = round1.await??;

    // Round 2: C, R's appointment cancelled (R released), W2 withdrawn at once.
    let posted = Arc::new(AtomicUsize::new(0));
    let round2 = tokio::spawn({
        let posted = posted.clone();
        let plan: Vec<(Uuid, Uuid)> = practitioners
            .iter()
            .copied()
            .zip(round1.iter().map(|r| r.1))
            .collect();
        async move {
            futures::stream::iter(plan)
                .map(|(d, appointment)| {
                    let (api, posted) = (api.clone(), posted.clone());
                    async move {
                        let c = api.post_slot_at(d, base + hours(4)).await?;
                        api.cancel(appointment).await?;
                        let w2 = api.post_slot_at(d, base + hours(5)).await?;
                        api.withdraw(w2.id).await?;
                        posted.fetch_add(1, Ordering::SeqCst);
                        anyhow::Ok(vec![c, w2])
                    }
                })
                .buffer_unordered(n)
                .try_collect::<Vec<_>>()
                .await
        }
    });
    let second = system
        .wait_until(Duration::from_secs(120), "a backlog in round 2", || async {
            let backlog = system.matching_backlog().await?;
            let half = posted.load(Ordering::SeqCst) >= n / 2;
            Ok((half && backlog > 0).then_some((system.progress().await?, backlog)))
        })
        .await?;
    system.kill9(Service::Matching, 2);
    system.restart(Service::Matching, 2).await?;
    let round2 = round2.await??;
    let slots: Vec<Slot> = round1
        .into_iter()
        .flat_map(|r| r.0)
        .chain(round2.into_iter().flatten())
        .collect();

    let settled = system.settle(SETTLE).await?;
    let statuses = system.slot_statuses(&practitioners).await?;
    let open: BTreeSet<Uuid> = statuses
        .iter()
        .filter(|(_, s)| *s == "available")
        .map(|(id, _)| *id)
        .collect();
    ensure!(
        open.len() == 4 * n && statuses.len() == 6 * n,
        "scheduling has {} of {} slots open, 4 a practitioner expected",
        open.len(),
        statuses.len()
    );
    let due = clinics.due(&slots, &open);
    let report = system.verify_due(&due).await?;
    let withdrawn_told = system
        .notify_events()
        .await?
        .iter()
        .flat_map(|(_, e)| &e.slots)
        .filter(|s| !open.contains(&s.slot_id))
        .count();
    // Nothing more is told once settled (a late redelivery deciding again, say).
    let quiet = system.progress().await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = system.progress().await?;
    let disagree = system.matching_disagrees(&statuses).await?;
    let redelivered = system.matching_redeliveries().await?;
    let split = system.work_split().await?;
    let line = format!(
        "3 matching replicas, {n} practitioners × {} slots ({} patients, {} entries, seeded in \
         {:.0} s): replicas 0 and 1 killed -9 at [{}] with {} events unacknowledged, replica 2 at \
         [{}] with {}; {redelivered} scheduling events redelivered to matching; withdrawn slots \
         offered {withdrawn_told} times (decided before their withdrawal applied) | {report} | \
         {split} | settled {:.1} s after the last step, case {:.0} s in all",
        slots.len() / n,
        clinics.patients.len(),
        clinics.entries.len(),
        seeded.as_secs_f64(),
        first.0,
        first.1,
        second.0,
        second.1,
        settled.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    println!("{line}");
    record(&line);
    let checked = async {
        report.assert_exactly_once()?;
        ensure!(
            quiet == later,
            "told more once settled: [{quiet}], then [{later}]"
        );
        ensure!(
            disagree.is_empty(),
            "matching's view of {} slots is not scheduling's:\n{}",
            disagree.len(),
            disagree.join("\n")
        );
        system.assert_serving().await
    }
    .await;
    if let Err(e) = checked {
        anyhow::bail!("{e:#}\n{}", system.logs());
    }
    Ok(())
}

/// The `waves` policy with three matching replicas on several practitioners at once, two
/// openings each: two replicas killed -9 after the first wave, all three after the second,
/// each time until the hold ended. Every wave still goes out once, none skipped: wave 1, 2, 3
/// of every slot each tell exactly `WAVE_SIZE` new patients, the next ones in the fair order,
/// and every patient hears of each slot once on every channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waves_of_many_openings_survive_kill_9_of_matching_replicas_between_waves()
-> anyhow::Result<()> {
    const WAVE_SIZE: usize = 2;
    const WAITING: usize = 3 * WAVE_SIZE;
    let _serial = ONE_AT_A_TIME.lock().await;
    let started = Instant::now();
    let n = (practitioners() / 5).max(2);
    let hold = Duration::from_secs(3);
    let mut system = System::start(Options {
        matching_replicas: Some(3),
        matching_env: vec![
            ("WAVE_SIZE", WAVE_SIZE.to_string()),
            ("WAVE_HOLD_MIN_SECS", hold.as_secs().to_string()),
            ("WAVE_HOLD_MAX_SECS", hold.as_secs().to_string()),
        ],
        ..Options::default()
    })
    .await?;
    let base = tomorrow();
    let practitioners = system.add_practitioners(n, "waves").await?;
    let patients = system.add_patients(WAITING * n).await?;
    let entries: Vec<Entry> = patients
        .iter()
        .enumerate()
        .map(|(k, (patient, _))| Entry {
            patient: *patient,
            practitioner: practitioners[k / WAITING],
            earliest: None,
            latest: None,
        })
        .collect();
    system.join(&entries).await?;
    system.settle(SETTLE).await?;
    let clinics = Clinics {
        practitioners: practitioners.clone(),
        patients,
        entries,
    };
    let api = system.scheduling_api();
    let slots: Vec<Slot> =
        futures::stream::iter(practitioners.iter().flat_map(|d| [(*d, 0), (*d, 2)]))
            .map(|(d, h)| {
                let api = api.clone();
                async move { api.post_slot_at(d, base + hours(h)).await }
            })
            .buffer_unordered(2 * n)
            .try_collect()
            .await?;

    system
        .wait_until(Duration::from_secs(60), "wave 1 of every slot", || {
            waves_told(&system, &slots, 1)
        })
        .await?;
    // The later slot of every other practitioner is withdrawn during its first wave's hold.
    let (withdrawn, kept): (Vec<Slot>, Vec<Slot>) = slots.iter().partition(|s| {
        s.starts_at > base
            && practitioners
                .iter()
                .position(|d| *d == s.practitioner)
                .unwrap_or(0)
                % 2
                == 1
    });
    for slot in &withdrawn {
        api.withdraw(slot.id).await?;
    }
    // Once matching shows them withdrawn with nothing decided and unsent, no later wave may
    // offer them, whatever the design.
    let applied = system
        .wait_until(
            Duration::from_secs(90),
            "the withdrawals applied",
            || async {
                let statuses = withdrawn
                    .iter()
                    .map(|s| (s.id, "withdrawn".to_owned()))
                    .collect();
                let pending = system.matching_disagrees(&statuses).await?;
                let last = system.notify_events().await?.last().map_or(0, |e| e.0);
                Ok((pending.is_empty() && system.calm().await?).then_some(last))
            },
        )
        .await?;
    let first = system.progress().await?;
    system.kill9(Service::Matching, 0);
    system.kill9(Service::Matching, 1);
    tokio::time::sleep(hold + Duration::from_secs(1)).await;
    system.restart(Service::Matching, 0).await?;
    system.restart(Service::Matching, 1).await?;
    system
        .wait_until(Duration::from_secs(60), "wave 2 of every slot", || {
            waves_told(&system, &kept, 2)
        })
        .await?;
    let second = system.progress().await?;
    for replica in 0..3 {
        system.kill9(Service::Matching, replica);
    }
    tokio::time::sleep(hold + Duration::from_secs(1)).await;
    for replica in 0..3 {
        system.restart(Service::Matching, replica).await?;
    }
    system
        .wait_until(Duration::from_secs(60), "wave 3 of every slot", || {
            waves_told(&system, &kept, 3)
        })
        .await?;
    let settled = system.settle(SETTLE).await?;
    // Long enough for a fourth wave, or a wave sent again, to show.
    tokio::time::sleep(2 * hold).await;

    let told = system.told_by_wave().await?;
    let mut wrong = Vec::new();
    for d in &practitioners {
        let positions = system.positions(*d).await?;
        for slot in slots.iter().filter(|s| s.practitioner == *d) {
            let waves = told.get(&slot.id).cloned().unwrap_or_default();
            let numbers: Vec<u32> = waves.keys().copied().collect();
            // A withdrawn slot stops after the waves decided before its withdrawal applied.
            let gone = withdrawn.contains(slot);
            let last = if gone { numbers.len() as u32 } else { 3 };
            if numbers != (1..=last).collect::<Vec<_>>() || numbers.is_empty() {
                wrong.push(format!(
                    "slot {}: waves {numbers:?}, not 1 to {last}",
                    slot.id
                ));
            }
            for (k, members) in &waves {
                let mut places: Vec<u32> = members
                    .iter()
                    .map(|p| positions.get(p).copied().unwrap_or(0))
                    .collect();
                places.sort_unstable();
                let fair: Vec<u32> = (1..=WAVE_SIZE as u32)
                    .map(|i| (k - 1) * WAVE_SIZE as u32 + i)
                    .collect();
                if places != fair {
                    wrong.push(format!(
                        "slot {} wave {k}: places {places:?} told, not {fair:?}",
                        slot.id
                    ));
                }
            }
        }
    }
    let late: Vec<String> = system
        .notify_events()
        .await?
        .into_iter()
        .filter(|(seq, e)| {
            *seq > applied
                && e.slots
                    .iter()
                    .any(|s| withdrawn.iter().any(|w| w.id == s.slot_id))
        })
        .map(|(seq, e)| {
            format!(
                "notify.patient #{seq} to {} offers a slot withdrawn before",
                e.patient.id
            )
        })
        .collect();
    wrong.extend(late);
    let open: BTreeSet<Uuid> = kept.iter().map(|s| s.id).collect();
    let report = system.verify_due(&clinics.due(&slots, &open)).await?;
    let redelivered = system.matching_redeliveries().await?;
    let split = system.work_split().await?;
    let line = format!(
        "waves, 3 matching replicas, {n} practitioners × 2 openings × {WAITING} patients, \
         waves of {WAVE_SIZE} held {} s: {} slots withdrawn in wave 1's hold and offered no more \
         once applied; replicas 0 and 1 killed -9 after wave 1 ({first}), all three after wave \
         2 ({second}), each until the hold ended: {} slots × waves 1, 2, 3 in the fair \
         order{}; {redelivered} scheduling events redelivered to matching | {report} | {split} \
         | settled {:.1} s after, case {:.0} s in all",
        hold.as_secs(),
        withdrawn.len(),
        kept.len(),
        if wrong.is_empty() {
            ""
        } else {
            " (NOT: see the failure)"
        },
        settled.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    println!("{line}");
    record(&line);
    let checked = async {
        ensure!(wrong.is_empty(), "waves wrong:\n{}", wrong.join("\n"));
        report.assert_exactly_once()?;
        system.assert_serving().await
    }
    .await;
    if let Err(e) = checked {
        anyhow::bail!("{e:#}\n{}", system.logs());
    }
    Ok(())
}

/// Whether every slot has had waves 1 to `waves` told.
async fn waves_told(system: &System, slots: &[Slot], waves: u32) -> anyhow::Result<Option<()>> {
    let told = system.told_by_wave().await?;
    let all = slots.iter().all(|s| {
        told.get(&s.id)
            .is_some_and(|w| (1..=waves).all(|k| w.contains_key(&k)))
    });
    Ok(all.then_some(()))
}
