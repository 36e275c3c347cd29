//! The limits of the parts on this machine, measured in the same run against the same servers:
//! JetStream publish and consume, Postgres inserts, SMTP sends.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt as _;
use lettre::{
    AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
    transport::smtp::{PoolConfig, client::AsyncSmtpConnection, extension::ClientId},
};
use sea_orm::{ConnectionTrait as _, DatabaseConnection, TransactionTrait as _};
use tokio::time::Instant;

/// One measured limit: `count` operations in `elapsed`.
#[derive(Debug, Clone)]
pub struct Limit {
    pub what: String,
    pub count: usize,
    pub elapsed: Duration,
}

impl Limit {
    pub fn per_second(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }
}

/// A payload the size of a `notify.patient` event with one slot (about 1.3 KB).
fn payload(i: usize) -> Vec<u8> {
    let filler = "x".repeat(1200);
    format!(r#"{{"i":{i},"pad":"{filler}"}}"#).into_bytes()
}

/// Publishes `n` messages to a stream of its own (file storage, like ours), pipelined (all sent,
/// then every ack awaited) and one at a time; then consumes them with a durable pull consumer and
/// explicit acks, as our services do.
pub async fn jetstream(js: &jetstream::Context, n: usize) -> anyhow::Result<Vec<Limit>> {
    let stream = js
        .create_stream(stream::Config {
            name: "BENCH_RAW".to_owned(),
            subjects: vec!["bench.raw.>".to_owned()],
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .context("cannot create BENCH_RAW")?;
    let mut limits = Vec::new();

    // The client holds at most a few thousand acks in flight (and then makes `publish` wait),
    // so the pipeline is a window: at most `WINDOW` sent and not yet acknowledged.
    const WINDOW: usize = 1_000;
    let started = Instant::now();
    let mut acks = std::collections::VecDeque::with_capacity(WINDOW);
    for i in 0..n {
        if acks.len() == WINDOW
            && let Some(ack) = acks.pop_front()
        {
            ack.await?;
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!("p-{i}").as_str(),
        );
        acks.push_back(
            js.publish_with_headers("bench.raw.pipelined", headers, payload(i).into())
                .await?,
        );
    }
    for ack in acks {
        ack.await?;
    }
    limits.push(Limit {
        what: format!("JetStream publish, pipelined ({WINDOW} acks in flight)"),
        count: n,
        elapsed: started.elapsed(),
    });

    let one_by_one = n.min(2_000);
    let started = Instant::now();
    for i in 0..one_by_one {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!("s-{i}").as_str(),
        );
        js.publish_with_headers("bench.raw.sequential", headers, payload(i).into())
            .await?
            .await?;
    }
    limits.push(Limit {
        what: "JetStream publish, one at a time (await each ack)".to_owned(),
        count: one_by_one,
        elapsed: started.elapsed(),
    });

    let consumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("bench-raw".to_owned()),
            filter_subject: "bench.raw.pipelined".to_owned(),
            ack_policy: consumer::AckPolicy::Explicit,
            max_ack_pending: 1024,
            ..Default::default()
        })
        .await?;
    let started = Instant::now();
    let mut messages = consumer.messages().await?;
    let mut got = 0;
    while got < n {
        let m = messages
            .next()
            .await
            .context("the consumer ended")?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        m.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        got += 1;
    }
    limits.push(Limit {
        what: "JetStream consume (pull, explicit ack)".to_owned(),
        count: n,
        elapsed: started.elapsed(),
    });
    drop(messages);
    let _ = js.delete_stream("BENCH_RAW").await;
    Ok(limits)
}

/// Inserts `n` rows shaped like a stored notification: in batches of 1,000 rows per statement
/// in one transaction, then one row per transaction from 4 connections (as a handler that
/// commits per message would).
pub async fn postgres(db: &DatabaseConnection, n: usize) -> anyhow::Result<Vec<Limit>> {
    db.execute_unprepared(
        "CREATE TABLE raw_batched (id uuid PRIMARY KEY, patient_id uuid NOT NULL, title text NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL); \
         CREATE TABLE raw_single (LIKE raw_batched INCLUDING ALL);",
    )
    .await?;
    let row = |i: usize| {
        format!(
            "('{}', '{}', 'New appointment times with Dr Bench {i}', '1 time is available. Book it in a click.', now())",
            uuid::Uuid::now_v7(),
            uuid::Uuid::now_v7()
        )
    };
    let mut limits = Vec::new();

    let started = Instant::now();
    let txn = db.begin().await?;
    let mut i = 0;
    while i < n {
        let end = (i + 1000).min(n);
        let values: Vec<String> = (i..end).map(row).collect();
        txn.execute_unprepared(&format!(
            "INSERT INTO raw_batched (id, patient_id, title, body, created_at) VALUES {}",
            values.join(",")
        ))
        .await?;
        i = end;
    }
    txn.commit().await?;
    limits.push(Limit {
        what: "Postgres insert, 1,000 rows a statement, one commit".to_owned(),
        count: n,
        elapsed: started.elapsed(),
    });

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..4 {
        let db = db.clone();
        tasks.spawn(async move {
            for i in (w..n).step_by(4) {
                let txn = db.begin().await?;
                txn.execute_unprepared(&format!(
                    "INSERT INTO raw_single (id, patient_id, title, body, created_at) VALUES {}",
                    row(i)
                ))
                .await?;
                txn.commit().await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    limits.push(Limit {
        what: "Postgres insert, one row a transaction, 4 connections".to_owned(),
        count: n,
        elapsed: started.elapsed(),
    });
    Ok(limits)
}

fn email() -> anyhow::Result<Message> {
    let text = "New appointment times are available. ".repeat(20);
    let html = format!("<p>{}</p>", "New <b>appointment</b> times. ".repeat(60));
    Ok(Message::builder()
        .from("slotcast <no-reply@slotcast.localhost>".parse::<Mailbox>()?)
        .to("Patient <patient@bench.example>".parse::<Mailbox>()?)
        .subject("New appointment times with Dr Bench")
        .multipart(MultiPart::alternative_plain_html(text, html))?)
}

/// Sends `n` multipart messages the size of ours over `connections` connections of lettre's SMTP
/// client opened with `TCP_NODELAY` (what email-notifier does), one send at a time on each.
pub async fn smtp(port: u16, connections: usize, n: usize) -> anyhow::Result<Limit> {
    let message = email()?;
    let (envelope, bytes) = (message.envelope().clone(), message.formatted());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..connections {
        let (envelope, bytes) = (envelope.clone(), bytes.clone());
        tasks.spawn(async move {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            tcp.set_nodelay(true)?;
            let mut conn =
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &ClientId::default())
                    .await?;
            for _ in (w..n).step_by(connections) {
                conn.send(&envelope, &bytes).await?;
            }
            let _ = conn.quit().await;
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(Limit {
        what: format!("SMTP send to smtp-sink, {connections} connections (TCP_NODELAY)"),
        count: n,
        elapsed: started.elapsed(),
    })
}

/// The same with lettre's own pooled transport, whose sockets keep Nagle's algorithm on: each
/// message's last five bytes wait for the server's delayed ACK.
pub async fn smtp_stock_lettre(url: &str, connections: usize, n: usize) -> anyhow::Result<Limit> {
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
        .pool_config(PoolConfig::new().max_size(connections as u32))
        .build();
    let message = email()?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..connections {
        let (transport, message) = (transport.clone(), message.clone());
        tasks.spawn(async move {
            for _ in (w..n).step_by(connections) {
                transport.send(message.clone()).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(Limit {
        what: format!(
            "SMTP send to smtp-sink, {connections} connections, lettre's pool (Nagle on)"
        ),
        count: n,
        elapsed: started.elapsed(),
    })
}
