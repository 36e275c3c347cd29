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
    let status = run_until_ready_then_sigterm(env!("CARGO_BIN_EXE_scheduling"), &env, port)
        .await
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
}
