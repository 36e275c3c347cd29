use std::time::Duration;

use anyhow::{Context as _, bail};
use slotcast_test_support::{NatsCluster, NatsServer, init_tracing};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::{Instant, sleep, timeout};

/// Just enough of the NATS text protocol to make JetStream API requests; the crate keeps no
/// NATS client dependency.
struct RawNats {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    info: String,
}

impl RawNats {
    async fn connect(url: &str) -> anyhow::Result<Self> {
        let address = url.strip_prefix("nats://").context("not a nats:// URL")?;
        let (reader, writer) = TcpStream::connect(address).await?.into_split();
        let mut client = Self {
            reader: BufReader::new(reader),
            writer,
            info: String::new(),
        };
        client.info = client.line().await?;
        if !client.info.starts_with("INFO ") {
            bail!("expected INFO, got {:?}", client.info);
        }
        client
            .send(
                "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\
                 \"no_responders\":true,\"protocol\":1}\r\nPING\r\n",
            )
            .await?;
        loop {
            match client.line().await?.as_str() {
                "PONG" => return Ok(client),
                line if line.starts_with("-ERR") => bail!("{line}"),
                _ => {}
            }
        }
    }

    /// Sends `payload` to `subject` and returns the reply's payload.
    async fn request(&mut self, subject: &str, payload: &str) -> anyhow::Result<String> {
        let inbox = format!("_INBOX.{}", uuid::Uuid::new_v4().simple());
        self.send(&format!(
            "SUB {inbox} 1\r\nUNSUB 1 1\r\nPUB {subject} {inbox} {}\r\n{payload}\r\n",
            payload.len()
        ))
        .await?;
        timeout(Duration::from_secs(5), self.reply(&inbox))
            .await
            .with_context(|| format!("no reply to {subject}"))?
    }

    async fn reply(&mut self, inbox: &str) -> anyhow::Result<String> {
        loop {
            let line = self.line().await?;
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.first().copied() {
                Some("PING") => self.send("PONG\r\n").await?,
                Some("MSG") | Some("HMSG") if fields.get(1) == Some(&inbox) => {
                    let length: usize = fields.last().context("no length")?.parse()?;
                    let mut payload = vec![0; length + 2];
                    self.reader.read_exact(&mut payload).await?;
                    payload.truncate(length);
                    let payload = String::from_utf8(payload)?;
                    if fields[0] == "HMSG" {
                        // Only status messages (like 503 no responders) carry headers here.
                        bail!("status reply: {payload:?}");
                    }
                    return Ok(payload);
                }
                Some(word) if word.starts_with("-ERR") => bail!("{line}"),
                _ => {}
            }
        }
    }

    async fn send(&mut self, text: &str) -> anyhow::Result<()> {
        self.writer.write_all(text.as_bytes()).await?;
        Ok(())
    }

    async fn line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).await? == 0 {
            bail!("connection closed");
        }
        Ok(line.trim_end().to_owned())
    }
}

/// Retries a JetStream API request until its reply has no `error` (a new cluster or a new
/// stream needs a moment to elect leaders).
async fn js_request(url: &str, subject: &str, payload: &str) -> anyhow::Result<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let outcome = async {
            let reply = RawNats::connect(url)
                .await?
                .request(subject, payload)
                .await?;
            let reply: serde_json::Value = serde_json::from_str(&reply)?;
            if reply.get("error").is_some() {
                bail!("{reply}");
            }
            Ok(reply)
        }
        .await;
        match outcome {
            Ok(reply) => return Ok(reply),
            Err(e) if Instant::now() >= deadline => return Err(e.context(subject.to_owned())),
            Err(_) => sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn create_orders_stream(url: &str, replicas: u32) -> anyhow::Result<()> {
    let config = format!(
        r#"{{"name":"ORDERS","subjects":["orders.>"],"storage":"file","num_replicas":{replicas}}}"#
    );
    js_request(url, "$JS.API.STREAM.CREATE.ORDERS", &config).await?;
    let ack = js_request(url, "orders.placed", "order 1").await?;
    assert_eq!(ack["stream"], "ORDERS", "{ack}");
    Ok(())
}

async fn orders_in_stream(url: &str) -> anyhow::Result<u64> {
    let info = js_request(url, "$JS.API.STREAM.INFO.ORDERS", "").await?;
    info["state"]["messages"]
        .as_u64()
        .with_context(|| format!("no message count in {info}"))
}

#[tokio::test]
async fn a_nats_server_starts_with_jetstream_and_greets_clients() -> anyhow::Result<()> {
    init_tracing();
    let server = NatsServer::start().await?;

    assert_eq!(server.url(), format!("nats://127.0.0.1:{}", server.port()));
    let client = RawNats::connect(&server.url()).await?;
    assert!(
        client.info.contains(r#""jetstream":true"#),
        "{}",
        client.info
    );
    assert!(server.is_running());
    Ok(())
}

#[tokio::test]
async fn a_killed_server_restarts_on_the_same_port_with_its_streams() -> anyhow::Result<()> {
    init_tracing();
    let server = NatsServer::start().await?;
    let port = server.port();
    create_orders_stream(&server.url(), 1).await?;

    server.kill();
    assert!(!server.is_running());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).await.is_err(),
        "a killed server still accepts connections"
    );

    server.restart().await?;
    assert_eq!(server.port(), port);
    assert_eq!(orders_in_stream(&server.url()).await?, 1);
    Ok(())
}

#[tokio::test]
async fn a_dropped_server_is_gone_with_its_store() -> anyhow::Result<()> {
    init_tracing();
    let server = NatsServer::start().await?;
    let port = server.port();
    let store = server.store_dir();
    assert!(store.exists());

    drop(server);

    assert!(!store.exists(), "{} is left behind", store.display());
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
    Ok(())
}

#[tokio::test]
async fn two_servers_run_side_by_side_on_their_own_ports() -> anyhow::Result<()> {
    let (a, b) = tokio::try_join!(NatsServer::start(), NatsServer::start())?;
    assert_ne!(a.port(), b.port());
    assert_ne!(a.store_dir(), b.store_dir());
    Ok(())
}

#[tokio::test]
async fn a_three_node_cluster_survives_losing_its_meta_leader() -> anyhow::Result<()> {
    init_tracing();
    let cluster = NatsCluster::start(3).await?;
    let urls = cluster.urls();
    assert_eq!(urls.len(), 3);
    assert_eq!(cluster.url(), urls.join(","));
    for url in &urls {
        let client = RawNats::connect(url).await?;
        assert!(
            client.info.contains(r#""jetstream":true"#),
            "{}",
            client.info
        );
    }
    create_orders_stream(&urls[0], 3).await?;

    let leader = cluster.wait_for_meta_leader().await?;
    cluster.kill_node(leader)?;
    assert!(!cluster.is_node_running(leader)?);
    let new_leader = cluster.wait_for_meta_leader().await?;
    assert_ne!(new_leader, leader);
    let survivor = &urls[(leader + 1) % 3];
    assert_eq!(orders_in_stream(survivor).await?, 1);

    cluster.restart_node(leader).await?;
    assert!(cluster.is_node_running(leader)?);
    assert_eq!(cluster.urls()[leader], urls[leader]);
    assert_eq!(orders_in_stream(&urls[leader]).await?, 1);
    assert!(cluster.kill_node(3).is_err());
    Ok(())
}
