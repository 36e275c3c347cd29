//! The real binary: it creates its schema, streams and consumers from its environment alone,
//! becomes ready, and exits 0 on SIGTERM.

use slotcast_test_support::{NatsServer, TestDatabase, free_port, run_until_ready_then_sigterm};

#[tokio::test]
async fn the_binary_starts_on_its_environment_alone_and_exits_0_on_sigterm() {
    let nats = NatsServer::start().await.unwrap();
    let db = TestDatabase::postgres().await.unwrap();
    let port = free_port();
    let env = [
        ("NATS_URL", nats.url()),
        ("DATABASE_URL", db.url()),
        ("LISTEN_ADDR", format!("127.0.0.1:{port}")),
        ("JWT_SECRET", "test-only-jwt-secret".to_owned()),
    ];
    let status = run_until_ready_then_sigterm(env!("CARGO_BIN_EXE_inapp-notifier"), &env, port)
        .await
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn the_binary_exits_0_on_sigterm_promptly_with_a_notification_stream_open() {
    use std::time::Duration;

    use slotcast_kit::auth::{Role, mint};
    use uuid::Uuid;

    let nats = NatsServer::start().await.unwrap();
    let db = TestDatabase::postgres().await.unwrap();
    let port = free_port();
    let secret = "test-only-jwt-secret";
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_inapp-notifier"))
        .env("NATS_URL", nats.url())
        .env("DATABASE_URL", db.url())
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("JWT_SECRET", secret)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let address = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    crate::helpers::eventually("the binary to be ready", || async {
        let response = http.get(format!("{address}/readyz")).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;

    let patient = Uuid::now_v7();
    let token = mint(secret, patient, Role::Patient, chrono::Duration::minutes(5)).unwrap();
    let response =
        crate::helpers::open_stream(&http, &address, &patient.to_string(), Some(&token), None)
            .await;
    let mut stream = crate::helpers::EventStream::new(response);

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("an exit within 10 s of SIGTERM, stream open or not")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(stream.ends_within(Duration::from_secs(5)).await);
}
