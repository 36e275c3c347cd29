//! Running a service's real binary: wait until it is ready, stop it with SIGTERM.

use std::{process::ExitStatus, time::Duration};

use anyhow::Context as _;
use tokio::{io::AsyncReadExt as _, io::AsyncWriteExt as _, net::TcpStream};

/// Starts `binary` with `env` (it must listen on `127.0.0.1:port`), waits until `/readyz`
/// answers 200, sends SIGTERM, and returns how the process ended (within 15 s).
pub async fn run_until_ready_then_sigterm(
    binary: &str,
    env: &[(&str, String)],
    port: u16,
) -> anyhow::Result<ExitStatus> {
    let mut child = tokio::process::Command::new(binary)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {binary}"))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !ready(port).await {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{binary} did not become ready on port {port}"
        );
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("{binary} exited before it was ready: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = child.id().context("the process has no pid")?.to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()?;
    anyhow::ensure!(killed.success(), "kill -TERM {pid} failed");
    Ok(tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .context("no exit within 15 s of SIGTERM")??)
}

async fn ready(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if stream
        .write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.is_ok() && head.ends_with(b"200")
}
