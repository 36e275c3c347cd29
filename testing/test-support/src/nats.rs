//! A real `nats-server` with JetStream per test, single or as a cluster.
//!
//! The first start asks the server for random ports (`-p -1`, `-m -1`) and reads them from its
//! log; restarts reuse the same ports and store directory, so clients reconnect to the same URL
//! and find their streams again.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

/// How long a server may take to accept client connections after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a cluster may take to elect a JetStream meta leader. A follower notices a crashed
/// leader only after about ten seconds, so this is well above that.
const LEADER_TIMEOUT: Duration = Duration::from_secs(30);
const INSTALL_HINT: &str = "install it with `apt-get install -y nats-server` \
     (or set NATS_SERVER_BIN to the path of a nats-server binary)";
/// Debian installs nats-server to /usr/sbin, which is not on every user's PATH.
const FALLBACK_DIRS: &[&str] = &["/usr/sbin", "/usr/local/bin", "/usr/local/sbin"];
const LOG_TAIL_LINES: usize = 30;

/// One `nats-server -js` on 127.0.0.1 with its own temporary store directory.
///
/// Dropping it kills the process and removes the store directory.
#[derive(Debug)]
pub struct NatsServer {
    process: ServerProcess,
}

impl NatsServer {
    /// Starts a server on a random port and waits until it accepts client connections.
    ///
    /// The binary is `$NATS_SERVER_BIN` if set, else `nats-server` from `PATH` or `/usr/sbin`.
    pub async fn start() -> anyhow::Result<Self> {
        let bin = find_nats_server()?;
        let process =
            ServerProcess::launch(bin, "nats-server".to_owned(), Vec::new(), false).await?;
        Ok(Self { process })
    }

    /// The client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.process.url()
    }

    /// The client port; it stays the same across restarts.
    pub fn port(&self) -> u16 {
        self.process.client_port
    }

    /// The JetStream store directory; it stays the same across restarts.
    pub fn store_dir(&self) -> PathBuf {
        self.process.store_dir()
    }

    /// Kills the server with SIGKILL, like a crash. Does nothing if it is not running.
    pub fn kill(&self) {
        self.process.kill();
    }

    /// Whether the server process is alive.
    pub fn is_running(&self) -> bool {
        self.process.is_running()
    }

    /// The server's process id while it runs (for its CPU time).
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Starts the server again on the same port and store directory (killing it first if it
    /// still runs) and waits until it accepts client connections.
    pub async fn restart(&self) -> anyhow::Result<()> {
        self.process.restart().await
    }
}

/// A JetStream cluster of nats-servers on 127.0.0.1, each with its own store directory.
///
/// Node `i` is named `n<i>`. Dropping the cluster kills all nodes and removes their stores.
#[derive(Debug)]
pub struct NatsCluster {
    names: Vec<String>,
    nodes: Vec<ServerProcess>,
}

impl NatsCluster {
    /// Starts `size` nodes routed to each other and waits until they agree on a JetStream meta
    /// leader, so streams can be created right away.
    pub async fn start(size: usize) -> anyhow::Result<Self> {
        if size == 0 {
            bail!("a NATS cluster needs at least one node");
        }
        let bin = find_nats_server()?;
        let mut attempt = 1;
        loop {
            match Self::try_start(&bin, size).await {
                Ok(cluster) => return Ok(cluster),
                // The route ports are picked before the servers bind them, so another process
                // may take one in between; that is worth another try with fresh ports.
                Err(e) if attempt < 3 && format!("{e:#}").contains("address already in use") => {
                    tracing::warn!(error = %format!("{e:#}"), "NATS cluster port clash, retrying");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn try_start(bin: &Path, size: usize) -> anyhow::Result<Self> {
        let cluster_name = format!(
            "slotcast-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let mut route_ports: Vec<u16> = Vec::with_capacity(size);
        while route_ports.len() < size {
            let port = crate::try_free_port()?;
            if !route_ports.contains(&port) {
                route_ports.push(port);
            }
        }
        let routes = route_ports
            .iter()
            .map(|port| format!("nats://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut names = Vec::with_capacity(size);
        let mut nodes = Vec::with_capacity(size);
        for (i, route_port) in route_ports.iter().enumerate() {
            let name = format!("n{i}");
            let args = vec![
                "-n".to_owned(),
                name.clone(),
                "--cluster_name".to_owned(),
                cluster_name.clone(),
                "--cluster".to_owned(),
                format!("nats://127.0.0.1:{route_port}"),
                "--routes".to_owned(),
                routes.clone(),
            ];
            let label = format!("nats-server {name} of cluster {cluster_name}");
            nodes.push(ServerProcess::launch(bin.to_owned(), label, args, true).await?);
            names.push(name);
        }
        let cluster = Self { names, nodes };
        cluster.wait_for_meta_leader().await?;
        Ok(cluster)
    }

    /// The client URL of every node, in node order.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(ServerProcess::url).collect()
    }

    /// All client URLs joined by commas, as NATS clients accept them.
    pub fn url(&self) -> String {
        self.urls().join(",")
    }

    /// Kills node `i` with SIGKILL, like a crash.
    pub fn kill_node(&self, i: usize) -> anyhow::Result<()> {
        self.node(i)?.kill();
        Ok(())
    }

    /// Starts node `i` again on its ports and store directory (killing it first if it still
    /// runs), then waits until the running nodes agree on a meta leader.
    pub async fn restart_node(&self, i: usize) -> anyhow::Result<()> {
        self.node(i)?.restart().await?;
        self.wait_for_meta_leader().await?;
        Ok(())
    }

    /// Whether node `i`'s process is alive.
    pub fn is_node_running(&self, i: usize) -> anyhow::Result<bool> {
        Ok(self.node(i)?.is_running())
    }

    /// Waits until all running nodes name the same running node as JetStream meta leader, and
    /// returns that node's index. After the leader was killed this takes about ten seconds.
    pub async fn wait_for_meta_leader(&self) -> anyhow::Result<usize> {
        let deadline = Instant::now() + LEADER_TIMEOUT;
        loop {
            let last_problem = match self.agreed_meta_leader().await {
                Ok(leader) => return Ok(leader),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(last_problem.context(format!(
                    "the NATS cluster elected no JetStream meta leader within {LEADER_TIMEOUT:?}"
                )));
            }
            sleep(Duration::from_millis(100)).await;
        }
    }

    async fn agreed_meta_leader(&self) -> anyhow::Result<usize> {
        let mut agreed: Option<String> = None;
        for (name, node) in self.names.iter().zip(&self.nodes) {
            if !node.is_running() {
                continue;
            }
            let leader = node.meta_leader().await?;
            match &agreed {
                Some(previous) if *previous != leader => {
                    bail!("nodes disagree on the meta leader: {previous} and {leader} (at {name})")
                }
                _ => agreed = Some(leader),
            }
        }
        let leader = agreed.context("no node of the cluster is running")?;
        self.names
            .iter()
            .zip(&self.nodes)
            .position(|(name, node)| *name == leader && node.is_running())
            .ok_or_else(|| anyhow!("the nodes still name {leader} as meta leader, which is down"))
    }

    fn node(&self, i: usize) -> anyhow::Result<&ServerProcess> {
        self.nodes
            .get(i)
            .ok_or_else(|| anyhow!("no node {i} in a cluster of {}", self.nodes.len()))
    }
}

/// The process behind a server: ports, directories and the child process.
#[derive(Debug)]
struct ServerProcess {
    /// Names the server in error messages.
    label: String,
    bin: PathBuf,
    /// Holds `store/` and `server.log`; removed on drop.
    dir: TempDir,
    extra_args: Vec<String>,
    client_port: u16,
    monitor_port: Option<u16>,
    child: Mutex<Option<Child>>,
}

impl ServerProcess {
    /// Starts the server on random ports, learns them from the log and waits until it accepts
    /// client connections. With `monitor`, the HTTP monitoring endpoint is enabled too.
    async fn launch(
        bin: PathBuf,
        label: String,
        extra_args: Vec<String>,
        monitor: bool,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("slotcast-nats-")
            .tempdir()
            .context("cannot create a temporary directory for nats-server")?;
        let mut process = Self {
            label,
            bin,
            dir,
            extra_args,
            client_port: 0,
            monitor_port: None,
            child: Mutex::new(None),
        };
        let log_offset = process.spawn("-1", monitor.then_some("-1"))?;
        let (client_port, monitor_port) = process.ports_from_log(log_offset, monitor).await?;
        process.client_port = client_port;
        process.monitor_port = monitor_port;
        process.wait_accepting().await?;
        Ok(process)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spawns the process with its output appended to the log; returns where the log stood
    /// before, so the new run's lines can be told from earlier runs'.
    fn spawn(&self, port: &str, monitor_port: Option<&str>) -> anyhow::Result<u64> {
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let log_offset = log.metadata()?.len();
        let mut command = Command::new(&self.bin);
        command
            .args(["-js", "-a", "127.0.0.1", "-p", port, "--store_dir"])
            .arg(self.store_dir());
        if let Some(monitor_port) = monitor_port {
            command.args(["-m", monitor_port]);
        }
        command
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        let child = command
            .spawn()
            .with_context(|| format!("cannot run {}; {INSTALL_HINT}", self.bin.display()))?;
        *self.child() = Some(child);
        Ok(log_offset)
    }

    async fn ports_from_log(
        &self,
        log_offset: u64,
        monitor: bool,
    ) -> anyhow::Result<(u16, Option<u16>)> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let log = self.read_log(log_offset);
            let client_port = port_after(&log, "Listening for client connections on ");
            let monitor_port = port_after(&log, "Starting http monitor on ");
            if let Some(client_port) = client_port
                && (monitor_port.is_some() || !monitor)
            {
                return Ok((client_port, monitor_port));
            }
            self.ensure_alive()?;
            if Instant::now() >= deadline {
                return Err(self.failure(&format!(
                    "logged no listening port within {READY_TIMEOUT:?}"
                )));
            }
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until a client connection gets the server's `INFO` line.
    async fn wait_accepting(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            self.ensure_alive()?;
            if let Ok(Ok(_info)) =
                timeout(Duration::from_secs(1), read_info(self.client_port)).await
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.failure(&format!(
                    "did not accept client connections on 127.0.0.1:{} within {READY_TIMEOUT:?}",
                    self.client_port
                )));
            }
            sleep(Duration::from_millis(50)).await;
        }
    }

    fn ensure_alive(&self) -> anyhow::Result<()> {
        let status = match self.child().as_mut() {
            None => Err(anyhow!("is not running")),
            Some(child) => child.try_wait().context("cannot check the process"),
        };
        match status {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.failure(&format!("exited with {status}"))),
            Err(e) => Err(self.failure(&format!("{e:#}"))),
        }
    }

    fn is_running(&self) -> bool {
        matches!(self.child().as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    fn pid(&self) -> Option<u32> {
        self.child().as_ref().map(Child::id)
    }

    fn kill(&self) {
        if let Some(mut child) = self.child().take() {
            // Both fail only if the process is already gone, which is what we want.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn restart(&self) -> anyhow::Result<()> {
        self.kill();
        let port = self.client_port.to_string();
        let monitor_port = self.monitor_port.map(|port| port.to_string());
        self.spawn(&port, monitor_port.as_deref())?;
        self.wait_accepting().await
    }

    /// The meta leader's name as this node sees it, from the `/jsz` monitoring endpoint.
    async fn meta_leader(&self) -> anyhow::Result<String> {
        let port = self
            .monitor_port
            .with_context(|| format!("{} has no monitoring port", self.label))?;
        let jsz = timeout(Duration::from_secs(2), http_get_json(port, "/jsz"))
            .await
            .with_context(|| format!("{}: /jsz timed out", self.label))?
            .with_context(|| format!("{}: cannot read /jsz", self.label))?;
        let leader = jsz
            .pointer("/meta_cluster/leader")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        if leader.is_empty() {
            bail!("{} knows no meta leader yet", self.label);
        }
        Ok(leader.to_owned())
    }

    fn read_log(&self, offset: u64) -> String {
        let bytes = std::fs::read(self.log_path()).unwrap_or_default();
        let start = usize::try_from(offset).unwrap_or(0).min(bytes.len());
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    /// An error naming the server and showing the end of its log, which is deleted with it.
    fn failure(&self, what: &str) -> anyhow::Error {
        let log = self.read_log(0);
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
        anyhow!(
            "{} {what}\n--- last lines of {} ---\n{tail}",
            self.label,
            self.log_path().display()
        )
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Kill before the TempDir field is dropped, so the store is not in use when removed.
        self.kill();
    }
}

/// Connects to a NATS client port and returns the `INFO {...}` line the server greets with.
async fn read_info(port: u16) -> anyhow::Result<String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).await?;
    if !line.starts_with("INFO ") {
        bail!("expected an INFO line, got {line:?}");
    }
    Ok(line)
}

async fn http_get_json(port: u16, path: &str) -> anyhow::Result<serde_json::Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("{}", head.lines().next().unwrap_or_default());
    }
    Ok(serde_json::from_str(body)?)
}

/// The port at the end of `host:port` following `marker` in a log, from its last occurrence.
fn port_after(log: &str, marker: &str) -> Option<u16> {
    let line = log.lines().rev().find(|line| line.contains(marker))?;
    let (_, address) = line.rsplit_once(marker)?;
    let (_, port) = address.trim().rsplit_once(':')?;
    port.parse().ok()
}

fn find_nats_server() -> anyhow::Result<PathBuf> {
    let fallback: Vec<PathBuf> = FALLBACK_DIRS.iter().map(PathBuf::from).collect();
    find_binary(
        std::env::var_os("NATS_SERVER_BIN"),
        std::env::var_os("PATH"),
        &fallback,
    )
}

fn find_binary(
    explicit: Option<OsString>,
    path: Option<OsString>,
    fallback_dirs: &[PathBuf],
) -> anyhow::Result<PathBuf> {
    if let Some(explicit) = explicit {
        let explicit = PathBuf::from(explicit);
        if is_executable(&explicit) {
            return Ok(explicit);
        }
        bail!(
            "NATS_SERVER_BIN={} is not an executable file; {INSTALL_HINT}",
            explicit.display()
        );
    }
    let dirs = path
        .iter()
        .flat_map(std::env::split_paths)
        .chain(fallback_dirs.iter().cloned());
    for dir in dirs {
        let candidate = dir.join("nats-server");
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    bail!("nats-server was not found on PATH or in /usr/sbin; {INSTALL_HINT}")
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_port_is_read_from_the_log() {
        let log = "[1] 2026/01/01 00:00:00.000000 [INF] Starting http monitor on 127.0.0.1:8222\n\
                   [1] 2026/01/01 00:00:00.000000 [INF] Listening for client connections on 127.0.0.1:41234\n\
                   [1] 2026/01/01 00:00:00.000000 [INF] Server is ready\n";
        assert_eq!(
            port_after(log, "Listening for client connections on "),
            Some(41234)
        );
        assert_eq!(port_after(log, "Starting http monitor on "), Some(8222));
        assert_eq!(port_after("", "Starting http monitor on "), None);
    }

    #[test]
    fn a_missing_binary_says_how_to_install_it() {
        let error = find_binary(None, Some(OsString::new()), &[]).unwrap_err();
        assert!(
            error.to_string().contains("apt-get install -y nats-server"),
            "{error}"
        );

        let error = find_binary(Some("/nonexistent/nats-server".into()), None, &[]).unwrap_err();
        assert!(
            error.to_string().contains("apt-get install -y nats-server"),
            "{error}"
        );
    }

    #[test]
    fn the_binary_is_found_in_the_fallback_directories() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("nats-server");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let found = find_binary(None, None, &[dir.path().to_owned()]).unwrap();
        assert_eq!(found, bin);
    }
}
