//! A small SMTP server (RFC 5321) that captures mail, for tests of code that sends email.
//!
//! It speaks what an SMTP client such as lettre needs: EHLO/HELO, MAIL, RCPT, DATA with
//! dot-stuffing, RSET, NOOP and QUIT, several messages per connection and pipelined commands.
//! It offers neither STARTTLS nor AUTH, so clients must connect in plain text.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// Messages larger than this are refused, so a runaway client cannot fill the memory.
const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

/// A message the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedMail {
    /// The envelope sender (`MAIL FROM`), without angle brackets; empty for a bounce.
    pub from: String,
    /// The accepted envelope recipients (`RCPT TO`), without angle brackets.
    pub to: Vec<String>,
    /// The raw RFC 5322 message with CRLF line endings, dot-stuffing undone.
    pub data: String,
}

impl CapturedMail {
    /// The first header called `name` (case-insensitive), unfolded, with RFC 2047 encoded
    /// words (`=?utf-8?b?...?=`) decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        crate::mime::header(&self.data, name)
    }

    /// The decoded text of all `text/*` parts (quoted-printable and base64 undone), joined by
    /// newlines, with LF line endings. Best effort: what cannot be decoded is kept as it is.
    pub fn body_text(&self) -> String {
        crate::mime::body_text(&self.data)
    }

    /// Every leaf part (text, HTML, calendar, attachments), decoded.
    pub fn parts(&self) -> Vec<crate::mime::Part> {
        crate::mime::parts(&self.data)
    }
}

/// How the server answers new mail transactions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ReplyMode {
    /// Accept and capture every message.
    #[default]
    Accept,
    /// Answer `451 4.3.0 try again later` after the message data, so the client has sent the
    /// whole message and still must retry. Nothing is captured.
    TempFail,
    /// Answer `550 5.1.1` to `RCPT TO` for this address (case-insensitive); other recipients
    /// are accepted.
    RejectRecipient(String),
}

#[derive(Debug, Default)]
struct Shared {
    messages: Mutex<Vec<CapturedMail>>,
    arrived: Notify,
    reply: Mutex<ReplyMode>,
}

impl Shared {
    fn messages(&self) -> MutexGuard<'_, Vec<CapturedMail>> {
        self.messages.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reply(&self) -> MutexGuard<'_, ReplyMode> {
        self.reply.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An SMTP server on 127.0.0.1 that captures mail; it stops when dropped.
#[derive(Debug)]
pub struct SmtpServer {
    port: u16,
    shared: Arc<Shared>,
    acceptor: JoinHandle<()>,
}

impl SmtpServer {
    /// Starts the server on a random port of 127.0.0.1. Needs a tokio runtime.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("cannot bind the SMTP server to 127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared::default());
        let acceptor = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(Self {
            port,
            shared,
            acceptor,
        })
    }

    /// `smtp://127.0.0.1:<port>`: plain SMTP, no TLS, no authentication.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The messages accepted so far, oldest first.
    pub fn messages(&self) -> Vec<CapturedMail> {
        self.shared.messages().clone()
    }

    /// Waits until at least `n` messages have arrived and returns all of them; fails after
    /// `timeout`, saying how many arrived.
    pub async fn wait_for_messages(
        &self,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<CapturedMail>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register for the notification before looking, so an arrival in between is seen.
            let arrived = self.shared.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let messages = self.messages();
            if messages.len() >= n {
                return Ok(messages);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                bail!(
                    "expected {n} mail message(s) within {timeout:?}, but {} arrived",
                    self.messages().len()
                );
            }
        }
    }

    /// Changes how the server answers; applies to transactions that start afterwards.
    pub fn set_reply(&self, mode: ReplyMode) {
        *self.shared.reply() = mode;
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        // The accept loop owns the connection tasks; aborting it ends them too.
        self.acceptor.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve(stream, Arc::clone(&shared)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "SMTP accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            // Reap finished connections so the set does not grow over a long test.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let (reader, writer) = stream.into_split();
    let mut session = Session {
        reader: BufReader::new(reader),
        writer,
        shared,
    };
    if let Err(e) = session.run().await {
        tracing::debug!(error = %format!("{e:#}"), "SMTP connection ended");
    }
}

/// The envelope of the mail transaction in progress.
struct Transaction {
    from: String,
    to: Vec<String>,
    mode: ReplyMode,
}

struct Session {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    shared: Arc<Shared>,
}

impl Session {
    async fn run(&mut self) -> anyhow::Result<()> {
        self.reply("220 127.0.0.1 ESMTP slotcast-test-support ready")
            .await?;
        let mut transaction: Option<Transaction> = None;
        while let Some(line) = self.read_line().await? {
            let line = String::from_utf8_lossy(&line).into_owned();
            let (verb, argument) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            let argument = argument.trim();
            match verb.to_ascii_uppercase().as_str() {
                "EHLO" => {
                    transaction = None;
                    self.reply(&format!(
                        "250-127.0.0.1 greets {argument}\r\n250-PIPELINING\r\n\
                         250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8"
                    ))
                    .await?;
                }
                "HELO" => {
                    transaction = None;
                    self.reply("250 127.0.0.1").await?;
                }
                "MAIL" => {
                    let reply = match (&transaction, path_after(argument, "FROM:")) {
                        (Some(_), _) => "503 5.5.1 Nested MAIL command",
                        (None, None) => "501 5.5.4 Syntax: MAIL FROM:<address>",
                        (None, Some(from)) => {
                            let mode = self.shared.reply().clone();
                            transaction = Some(Transaction {
                                from,
                                to: Vec::new(),
                                mode,
                            });
                            "250 2.1.0 OK"
                        }
                    };
                    self.reply(reply).await?;
                }
                "RCPT" => {
                    let reply = match (&mut transaction, path_after(argument, "TO:")) {
                        (None, _) => "503 5.5.1 Need MAIL before RCPT".to_owned(),
                        (Some(_), None) => "501 5.5.4 Syntax: RCPT TO:<address>".to_owned(),
                        (Some(_), Some(to)) if to.is_empty() => {
                            "501 5.1.3 Empty recipient".to_owned()
                        }
                        (Some(transaction), Some(to)) => match &transaction.mode {
                            ReplyMode::RejectRecipient(rejected)
                                if rejected.eq_ignore_ascii_case(&to) =>
                            {
                                format!("550 5.1.1 <{to}>: Recipient address rejected")
                            }
                            _ => {
                                transaction.to.push(to);
                                "250 2.1.5 OK".to_owned()
                            }
                        },
                    };
                    self.reply(&reply).await?;
                }
                "DATA" => match transaction.take() {
                    None => self.reply("503 5.5.1 Need MAIL before DATA").await?,
                    Some(t) if t.to.is_empty() => {
                        self.reply("554 5.5.1 No valid recipients").await?;
                    }
                    Some(t) => self.receive_data(t).await?,
                },
                "RSET" => {
                    transaction = None;
                    self.reply("250 2.0.0 OK").await?;
                }
                "NOOP" => self.reply("250 2.0.0 OK").await?,
                "VRFY" => self.reply("252 2.5.2 Cannot VRFY user").await?,
                "QUIT" => {
                    self.reply("221 2.0.0 Bye").await?;
                    return Ok(());
                }
                "STARTTLS" | "AUTH" => self.reply("502 5.5.1 Not implemented").await?,
                _ => self.reply("500 5.5.2 Command not recognized").await?,
            }
        }
        Ok(())
    }

    /// Reads the message after DATA up to the lone `.` line and answers for it.
    async fn receive_data(&mut self, transaction: Transaction) -> anyhow::Result<()> {
        self.reply("354 End data with <CR><LF>.<CR><LF>").await?;
        let mut data = Vec::new();
        let mut too_large = false;
        loop {
            let Some(line) = self.read_line().await? else {
                bail!("the client closed the connection during DATA");
            };
            if line == b"." {
                break;
            }
            // A leading dot was doubled by the client (RFC 5321 section 4.5.2).
            let line = line.strip_prefix(b".").unwrap_or(&line);
            if data.len() + line.len() + 2 > MAX_MESSAGE_BYTES {
                too_large = true;
                continue;
            }
            data.extend_from_slice(line);
            data.extend_from_slice(b"\r\n");
        }
        if too_large {
            return self.reply("552 5.3.4 Message too big").await;
        }
        if transaction.mode == ReplyMode::TempFail {
            return self.reply("451 4.3.0 try again later").await;
        }
        let mail = CapturedMail {
            from: transaction.from,
            to: transaction.to,
            data: String::from_utf8_lossy(&data).into_owned(),
        };
        let number = {
            let mut messages = self.shared.messages();
            messages.push(mail);
            messages.len()
        };
        self.shared.arrived.notify_waiters();
        self.reply(&format!("250 2.0.0 OK queued as {number}"))
            .await
    }

    /// One line without its line ending (CRLF, or a bare LF from a sloppy client); `None` at
    /// the end of the stream.
    async fn read_line(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        if self.reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(None);
        }
        if line.ends_with(b"\n") {
            line.pop();
            if line.ends_with(b"\r") {
                line.pop();
            }
        }
        Ok(Some(line))
    }

    async fn reply(&mut self, reply: &str) -> anyhow::Result<()> {
        self.writer.write_all(reply.as_bytes()).await?;
        self.writer.write_all(b"\r\n").await?;
        self.writer.flush().await?;
        Ok(())
    }
}

/// The address in `FROM:<a@b> PARAMS` or `TO:<a@b>` after `keyword` (case-insensitive),
/// without the angle brackets; `None` if the keyword is missing.
fn path_after(argument: &str, keyword: &str) -> Option<String> {
    let head = argument.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = argument[keyword.len()..].trim_start();
    let address = match rest.strip_prefix('<') {
        Some(bracketed) => bracketed.split_once('>')?.0,
        None => rest.split_whitespace().next().unwrap_or_default(),
    };
    Some(address.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_taken_from_the_path() {
        assert_eq!(
            path_after("FROM:<a@example.com> BODY=8BITMIME", "FROM:").as_deref(),
            Some("a@example.com")
        );
        assert_eq!(
            path_after("to: <b@example.com>", "TO:").as_deref(),
            Some("b@example.com")
        );
        assert_eq!(path_after("FROM:<>", "FROM:").as_deref(), Some(""));
        assert_eq!(
            path_after("FROM:c@example.com", "FROM:").as_deref(),
            Some("c@example.com")
        );
        assert_eq!(path_after("<a@example.com>", "FROM:"), None);
        assert_eq!(path_after("FROM:<a@example.com", "FROM:"), None);
    }
}
