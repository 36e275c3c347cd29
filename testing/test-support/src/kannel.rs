//! A real Kannel SMS gateway per test: `bearerbox` and `smsbox` from Debian's `kannel` package,
//! with Kannel's fake SMSC standing in for the mobile network.
//!
//! Kannel's fake SMSC is a line protocol over TCP (`sender receiver type data`): bearerbox
//! listens, and a client plays the network. Here that client is this harness (as Kannel's own
//! `fakesmsc` would be): it records each text bearerbox hands to the network, and the fake
//! SMSC reports each one delivered, so smsbox calls the text's `dlr-url` with 8 (taken by the
//! SMSC) and then 1 (delivered), as far as the text's `dlr-mask` asks.
//!
//! Everything lives in a temporary directory: the configuration, the logs and the store.

use std::{
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context as _, bail};
use tempfile::TempDir;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    process::{Child, Command},
    sync::Mutex as AsyncMutex,
};

use crate::try_free_port;

const INSTALL_HINT: &str = "install it with `apt-get install -y kannel`";
/// Where Debian installs the boxes, not on every user's PATH.
const DIRS: &[&str] = &["/usr/sbin", "/usr/local/sbin", "/usr/bin"];
/// How long the boxes may take to start and connect; they take under a second here.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// The numbers the gateway's `sendsms` user may not send to: a test's way to make Kannel
/// refuse a text for good (400).
pub const DENIED_PREFIX: &str = "+999";

/// A text as the fake mobile network received it from Kannel, its segments joined as a phone
/// joins them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sms {
    /// The sender Kannel put on it.
    pub from: String,
    pub to: String,
    /// Decoded: raw for GSM-7 (Kannel shows what GSM-7 lacks as `?`), from UTF-16 for UCS-2.
    pub text: String,
    /// `text` or `data` (GSM-7), `ucs-2`.
    pub coding: String,
    /// Each segment's text, in order (one for a text that fits one SMS).
    pub segments: Vec<String>,
}

/// `bearerbox`, `smsbox` and the fake SMSC, on free ports of 127.0.0.1. Dropping it kills the
/// boxes and removes their directory.
pub struct KannelGateway {
    dir: TempDir,
    sendsms_port: u16,
    admin_port: u16,
    password: String,
    received: Arc<Mutex<Vec<Sms>>>,
    network: Arc<AsyncMutex<Option<tokio::net::tcp::OwnedWriteHalf>>>,
    bearerbox: Child,
    smsbox: Option<Child>,
    smsbox_bin: PathBuf,
    config: PathBuf,
}

impl KannelGateway {
    /// Starts both boxes and connects the fake SMSC; returns once a text can be sent.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with_inbound(None).await
    }

    /// [`KannelGateway::start`], handing every text a phone sends to `inbound` (smsbox's
    /// `get-url`, with Kannel's escapes: `%p` the sender, `%P` the receiver, `%a` the text,
    /// `%I` the message id), and retrying it when it fails.
    pub async fn start_with_inbound(inbound: Option<&str>) -> anyhow::Result<Self> {
        let bearerbox_bin = find("bearerbox")?;
        let smsbox_bin = find("smsbox")?;
        let dir = tempfile::tempdir().context("a directory for Kannel")?;
        let (admin_port, box_port, smsc_port, sendsms_port) = (
            try_free_port()?,
            try_free_port()?,
            try_free_port()?,
            try_free_port()?,
        );
        let password = uuid::Uuid::new_v4().simple().to_string();
        let config = dir.path().join("kannel.conf");
        std::fs::write(
            &config,
            configuration(
                &dir.path().to_string_lossy(),
                admin_port,
                box_port,
                smsc_port,
                sendsms_port,
                &password,
                inbound,
            ),
        )?;
        let bearerbox = spawn(&bearerbox_bin, &dir, &config, "bearerbox")?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let network = Arc::new(AsyncMutex::new(None));
        let stream = connect_with_patience(smsc_port).await?;
        let (reader, writer) = stream.into_split();
        *network.lock().await = Some(writer);
        tokio::spawn(play_network(reader, received.clone()));
        let smsbox = spawn(&smsbox_bin, &dir, &config, "smsbox")?;
        let gateway = Self {
            dir,
            sendsms_port,
            admin_port,
            password,
            received,
            network,
            bearerbox,
            smsbox: Some(smsbox),
            smsbox_bin,
            config,
        };
        gateway.wait_until_ready().await?;
        Ok(gateway)
    }

    /// `SMS_URL` for this gateway.
    pub fn url(&self) -> String {
        format!(
            "kannel://slotcast:{}@127.0.0.1:{}",
            self.password, self.sendsms_port
        )
    }

    /// Kannel's `sendsms` address with the user's credentials, for texts sent straight to it.
    pub fn sendsms_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/cgi-bin/sendsms?username=slotcast&password={}",
            self.sendsms_port, self.password
        )
    }

    /// `SMS_URL` with a wrong password.
    pub fn url_with_wrong_password(&self) -> String {
        format!("kannel://slotcast:wrong@127.0.0.1:{}", self.sendsms_port)
    }

    /// The texts the network received so far, in order.
    pub fn messages(&self) -> Vec<Sms> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until the network has received at least `n` texts; returns them all.
    pub async fn wait_for_messages(&self, n: usize, within: Duration) -> anyhow::Result<Vec<Sms>> {
        crate::poll(within, &format!("{n} text(s) at the fake SMSC"), || async {
            let got = self.messages();
            Ok((got.len() >= n).then_some(got))
        })
        .await
    }

    /// Sends a text from a patient's phone (`from`) to the gateway's number `to`, as the mobile
    /// network would.
    pub async fn send_from_phone(&self, from: &str, to: &str, text: &str) -> anyhow::Result<()> {
        let mut network = self.network.lock().await;
        let writer = network.as_mut().context("the fake SMSC is disconnected")?;
        writer
            .write_all(format!("{from} {to} text {text}\n").as_bytes())
            .await?;
        Ok(())
    }

    /// Kills smsbox, like a crash: `sendsms` refuses connections until [`Self::restart_smsbox`].
    pub async fn kill_smsbox(&mut self) {
        if let Some(mut smsbox) = self.smsbox.take() {
            let _ = smsbox.kill().await;
        }
    }

    /// Starts smsbox again and waits until a text can be sent.
    pub async fn restart_smsbox(&mut self) -> anyhow::Result<()> {
        self.kill_smsbox().await;
        // A box killed -9 leaves its pid file, which a new one refuses to overwrite.
        let _ = std::fs::remove_file(self.dir.path().join("smsbox.pid"));
        self.smsbox = Some(spawn(&self.smsbox_bin, &self.dir, &self.config, "smsbox")?);
        self.wait_until_ready().await
    }

    /// The logs of both boxes, for a failing test's message.
    pub fn logs(&self) -> String {
        ["bearerbox.log", "smsbox.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    async fn wait_until_ready(&self) -> anyhow::Result<()> {
        let status = format!(
            "http://127.0.0.1:{}/status.txt?password={}",
            self.admin_port, self.password
        );
        let sendsms = format!("http://127.0.0.1:{}/cgi-bin/sendsms", self.sendsms_port);
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            let online = http_get(&status)
                .await
                .is_ok_and(|(_, body)| body.contains("(online"));
            // smsbox answers an unauthenticated sendsms with 403 once it is up.
            let answering = http_get(&sendsms).await.is_ok();
            if online && answering {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("Kannel did not become ready:\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for KannelGateway {
    fn drop(&mut self) {
        if let Some(smsbox) = self.smsbox.as_mut() {
            let _ = smsbox.start_kill();
        }
        let _ = self.bearerbox.start_kill();
    }
}

/// The configuration: one fake SMSC, one smsbox, one `sendsms` user, everything on 127.0.0.1
/// and under `dir`.
fn configuration(
    dir: &str,
    admin_port: u16,
    box_port: u16,
    smsc_port: u16,
    sendsms_port: u16,
    password: &str,
    inbound: Option<&str>,
) -> String {
    // Each text a phone sends goes to `inbound`; the answer goes out as a text of its own, so the
    // body of the response is never texted back (`max-messages = 0`).
    let service = match inbound {
        Some(url) => format!(
            "group = sms-service\nkeyword = default\ncatch-all = true\nget-url = \"{url}\"\nmax-messages = 0\nomit-empty = true\n"
        ),
        None => String::new(),
    };
    format!(
        r#"group = core
admin-port = {admin_port}
admin-password = {password}
status-password = {password}
admin-interface = 127.0.0.1
admin-allow-ip = 127.0.0.1
smsbox-port = {box_port}
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
log-file = "{dir}/bearerbox.log"
log-level = 1
access-log = "{dir}/access.log"
store-type = file
store-location = "{dir}/kannel.store"
dlr-storage = internal

group = smsc
smsc = fake
smsc-id = fake
host = 127.0.0.1
port = {smsc_port}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {box_port}
sendsms-port = {sendsms_port}
sendsms-interface = 127.0.0.1
log-file = "{dir}/smsbox.log"
log-level = 1
access-log = "{dir}/smsbox-access.log"
mo-recode = true
http-request-retry = 5
http-queue-delay = 1

group = sendsms-user
username = slotcast
password = {password}
max-messages = 10
concatenation = true
black-list-regex = "^\{DENIED_PREFIX}"

{service}"#
    )
}

/// Reads what bearerbox sends the network, a line each: `sender receiver type data`, or for a
/// segment of a longer text `sender receiver udh <header> type data`.
async fn play_network(reader: tokio::net::tcp::OwnedReadHalf, received: Arc<Mutex<Vec<Sms>>>) {
    let mut lines = BufReader::new(reader).lines();
    // Segments waiting for the rest of their text, by sender, receiver and reference.
    let mut partial: std::collections::HashMap<(String, String, u8), Vec<Option<String>>> =
        Default::default();
    while let Ok(Some(line)) = lines.next_line().await {
        let Some(segment) = Segment::parse(&line) else {
            continue;
        };
        let Some((reference, total, number)) = segment.concatenation else {
            received.lock().unwrap().push(Sms {
                segments: vec![segment.text.clone()],
                from: segment.from,
                to: segment.to,
                text: segment.text,
                coding: segment.coding,
            });
            continue;
        };
        let key = (segment.from.clone(), segment.to.clone(), reference);
        let parts = partial
            .entry(key.clone())
            .or_insert_with(|| vec![None; usize::from(total.max(1))]);
        if let Some(slot) = parts.get_mut(usize::from(number.max(1) - 1)) {
            *slot = Some(segment.text);
        }
        if parts.iter().all(Option::is_some) {
            let segments: Vec<String> = partial
                .remove(&key)
                .unwrap_or_default()
                .into_iter()
                .flatten()
                .collect();
            received.lock().unwrap().push(Sms {
                from: segment.from,
                to: segment.to,
                text: segments.concat(),
                coding: segment.coding,
                segments,
            });
        }
    }
}

/// One line from bearerbox.
struct Segment {
    from: String,
    to: String,
    coding: String,
    text: String,
    /// From the user data header: reference, segments in all, this one's number (from 1).
    concatenation: Option<(u8, u8, u8)>,
}

impl Segment {
    fn parse(line: &str) -> Option<Self> {
        let mut parts = line.splitn(4, ' ');
        let (from, to, kind, rest) = (parts.next()?, parts.next()?, parts.next()?, parts.next());
        let rest = rest.unwrap_or_default();
        let (concatenation, coding, data) = if kind == "udh" {
            let mut parts = rest.splitn(3, ' ');
            let (header, coding, data) = (parts.next()?, parts.next()?, parts.next());
            let header = percent_decode(header);
            // IEI 0 (concatenated, 8-bit reference): 05 00 03 ref total number.
            let concatenation = match header.as_slice() {
                [5, 0, 3, reference, total, number] => Some((*reference, *total, *number)),
                _ => None,
            };
            (concatenation, coding, data.unwrap_or_default())
        } else {
            (None, kind, rest)
        };
        let text = match coding {
            "ucs-2" => decode_ucs2(data),
            "data" => String::from_utf8_lossy(&percent_decode(data)).into_owned(),
            _ => data.to_owned(),
        };
        Some(Self {
            from: from.to_owned(),
            to: to.to_owned(),
            coding: coding.to_owned(),
            text,
            concatenation,
        })
    }
}

/// The fake SMSC's UCS-2: UTF-16BE, URL-encoded, with `+` for a 0x20 byte.
fn decode_ucs2(data: &str) -> String {
    let bytes = percent_decode(data);
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// URL-decoding as the fake SMSC encodes: `%XX` for a byte, `+` for a space.
fn percent_decode(data: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(data.len());
    let raw = data.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => {
                bytes.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < raw.len() => {
                let hex = std::str::from_utf8(&raw[i + 1..i + 3]).unwrap_or("");
                bytes.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b => {
                bytes.push(b);
                i += 1;
            }
        }
    }
    bytes
}

/// A GET over HTTP/1.0, enough for the boxes' status pages: status and body.
async fn http_get(url: &str) -> anyhow::Result<(u16, String)> {
    let url = url.strip_prefix("http://").context("an http URL")?;
    let (host, path) = url.split_once('/').unwrap_or((url, ""));
    let mut stream = TcpStream::connect(host).await?;
    stream
        .write_all(format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut response).await?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("an HTTP status line")?;
    Ok((status, response))
}

fn spawn(bin: &PathBuf, dir: &TempDir, config: &PathBuf, name: &str) -> anyhow::Result<Child> {
    Command::new(bin)
        .arg("-v")
        .arg("1")
        .arg("--pid-file")
        .arg(dir.path().join(format!("{name}.pid")))
        .arg(config)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {name}"))
}

/// Connects to bearerbox's fake SMSC port, once bearerbox listens on it.
async fn connect_with_patience(port: u16) -> anyhow::Result<TcpStream> {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    loop {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(stream) => return Ok(stream),
            Err(e) if tokio::time::Instant::now() > deadline => {
                return Err(e).context("bearerbox's fake SMSC port never opened");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
}

fn find(name: &str) -> anyhow::Result<PathBuf> {
    DIRS.iter()
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("{name} not found; {INSTALL_HINT}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_of_a_longer_text_carries_its_place() {
        let s = Segment::parse("Clinic +336 udh %05%00%03%07%02%01 data Dr+Ada%3A").unwrap();
        assert_eq!(s.concatenation, Some((7, 2, 1)));
        assert_eq!((s.coding.as_str(), s.text.as_str()), ("data", "Dr Ada:"));
        let s = Segment::parse("Clinic +336 text Dr Ada: free").unwrap();
        assert_eq!((s.concatenation, s.text.as_str()), (None, "Dr Ada: free"));
    }

    #[test]
    fn ucs2_from_the_fake_smsc_decodes() {
        // "héllo €" as bearerbox writes it.
        assert_eq!(decode_ucs2("%00h%00%E9%00l%00l%00o%00+%20%AC"), "héllo €");
    }
}
