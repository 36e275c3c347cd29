//! Faults injected for real while an opening fans out to hundreds of waiting patients. Each case
//! asserts that every patient got exactly one email and one in-app notification per posting
//! (email duplicates only inside the documented crash window, and counted), that nothing was
//! lost, and that every service is still serving.
//!
//! The cases run one at a time (they share the machine's two cores) and write one line each to
//! `<target>/chaos-report.txt`.

use std::{future::Future, io::Write as _, pin::Pin, time::Duration};

use anyhow::ensure;
use sea_orm::{ConnectionTrait as _, DbBackend, Statement};
use slotcast_chaos::{Options, Seeded, Service, System, patients};
use slotcast_test_support::ReplyMode;
use tokio::time::Instant;

/// Long enough for every redelivery after a crash (the longest `ack_wait` is 60 s) and a
/// patient email retried a few times.
const SETTLE: Duration = Duration::from_secs(240);

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
}

impl Outcome {
    fn new(postings: usize, faults: String) -> Self {
        Self {
            postings,
            faults,
            refused: Vec::new(),
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
                Ok(Outcome::new(1, format!("killed at [{at}]")))
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
                ))
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
