//! Handing a finished message over: to an SMTP server, or as a file into a folder.
//!
//! Errors are sorted into [`SendError::Permanent`] (the server said 5xx: sending again cannot
//! help) and [`SendError::Transient`] (a 4xx or 53x reply, a dropped connection, a timeout, a
//! full disk: it may work later). Their text never holds an email address.
//!
//! `SMTP_URL` gives the TLS mode as lettre's `from_url` reads it: `smtps://user:pass@host:465`
//! (implicit TLS, recommended), `smtp://…:587?tls=required` (STARTTLS or fail),
//! `?tls=opportunistic` (STARTTLS when offered), or plain `smtp://host:25` for a trusted relay.
//! Credentials are percent-encoded; certificates are checked against the webpki roots. Without
//! `SMTP_URL`, each message is written under a hidden name and renamed to
//! `<MAIL_DIR>/<notification_id>.eml`, so a reader never sees half a file.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use lettre::{
    Message,
    address::Envelope,
    transport::smtp::response::{Category, Code, Severity},
};
use uuid::Uuid;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::smtp_pool::{Failure, SmtpPool};

/// How long a whole send (a new connection included) may take; well under the consumer's ack wait, so a message is never
/// redelivered to another worker while this one is still talking to the server.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(40);

/// Where messages go.
#[derive(Clone)]
pub enum Mailer {
    /// An SMTP relay, with a pool of connections.
    Smtp(Arc<SmtpPool>),
    /// A folder that receives one `<notification_id>.eml` per message (the embedded default).
    Folder(PathBuf),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The transport's debug output would show the URL's credentials.
            Mailer::Smtp(_) => f.write_str("Mailer::Smtp"),
            Mailer::Folder(dir) => f.debug_tuple("Mailer::Folder").field(dir).finish(),
        }
    }
}

/// Why a message was not handed over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Refused for good (an SMTP 5xx reply).
    #[error("permanent: {0}")]
    Permanent(String),
    /// May work later (a 4xx reply, a network failure, a timeout, an I/O error).
    #[error("transient: {0}")]
    Transient(String),
}

impl SendError {
    /// The reason, without the classification.
    pub fn reason(&self) -> &str {
        match self {
            SendError::Permanent(r) | SendError::Transient(r) => r,
        }
    }
}

impl Mailer {
    /// An SMTP mailer for `url` (see the crate docs for the TLS modes) with at most `pool_size`
    /// idle connections kept open.
    pub fn smtp(url: &str, pool_size: u32) -> anyhow::Result<Self> {
        let pool = SmtpPool::new(url, pool_size as usize)
            .map_err(|e| anyhow::anyhow!("SMTP_URL is not usable: {}", redact_addresses(&e)))?;
        Ok(Mailer::Smtp(Arc::new(pool)))
    }

    /// A mailer that writes into `dir`, which is created if missing.
    pub async fn folder(dir: PathBuf) -> anyhow::Result<Self> {
        tokio::fs::create_dir_all(&dir)
            .await
            .with_context(|| format!("cannot create the mail folder {}", dir.display()))?;
        Ok(Mailer::Folder(dir))
    }

    /// Hands `message` over. `id` names the file in folder mode. The last step, after which the
    /// message may be delivered, waits for a permit of `accepted`; the permit comes back with
    /// the success, for the caller to hold until the outcome is recorded.
    pub async fn send<'a>(
        &self,
        id: Uuid,
        message: &Outgoing,
        accepted: &'a Semaphore,
    ) -> Result<SemaphorePermit<'a>, SendError> {
        match self {
            Mailer::Smtp(pool) => {
                match tokio::time::timeout(
                    SEND_TIMEOUT,
                    pool.send(&message.envelope, &message.bytes, accepted),
                )
                .await
                {
                    Ok(Ok(permit)) => Ok(permit),
                    Ok(Err(Failure::Smtp(e))) => Err(classify(&e)),
                    Ok(Err(Failure::Io(e))) => Err(SendError::Transient(redact_addresses(
                        &format!("cannot connect to the SMTP server: {e}"),
                    ))),
                    Ok(Err(Failure::Unsupported(reason))) => {
                        Err(SendError::Permanent(reason.to_owned()))
                    }
                    Ok(Err(Failure::Closed)) => Err(SendError::Transient(
                        "the SMTP connections are shut down".to_owned(),
                    )),
                    Err(_) => Err(SendError::Transient(format!(
                        "no answer from the SMTP server within {SEND_TIMEOUT:?}"
                    ))),
                }
            }
            Mailer::Folder(dir) => write_atomically(dir, id, &message.bytes, accepted)
                .await
                .map_err(|e| SendError::Transient(redact_addresses(&format!("{e:#}")))),
        }
    }
}

/// A message ready to go: its envelope and its bytes, formatted (MIME, encodings) before a send
/// permit is taken, so the permit is held only while talking to the server.
pub struct Outgoing {
    envelope: Envelope,
    bytes: Vec<u8>,
}

impl From<&Message> for Outgoing {
    fn from(message: &Message) -> Self {
        Self {
            envelope: message.envelope().clone(),
            bytes: message.formatted(),
        }
    }
}

/// 5xx is permanent; everything else (4xx, network, TLS, timeouts, a shut-down pool) may pass.
///
/// One exception: a 53x reply (RFC 4954: 530 authentication required, 534, 535 credentials
/// invalid, 538 encryption required) refuses this service, not this message. Failing every
/// notification for good over a wrong password would lose them all, so it is retried while an
/// operator fixes the configuration.
fn classify(err: &lettre::transport::smtp::Error) -> SendError {
    let reason = redact_addresses(&err.to_string());
    let refuses_us = err.status().is_some_and(refuses_the_sender);
    if err.is_permanent() && !refuses_us {
        SendError::Permanent(reason)
    } else {
        SendError::Transient(reason)
    }
}

fn refuses_the_sender(code: Code) -> bool {
    code.severity == Severity::PermanentNegativeCompletion
        && code.category == Category::Unspecified3
}

/// Writes `<dir>/<id>.eml` through a hidden temporary file and a rename (after a permit of
/// `accepted`), so a reader sees the whole file or none; writing the same id again replaces it
/// whole.
async fn write_atomically<'a>(
    dir: &std::path::Path,
    id: Uuid,
    bytes: &[u8],
    accepted: &'a Semaphore,
) -> anyhow::Result<SemaphorePermit<'a>> {
    use tokio::io::AsyncWriteExt as _;

    let target = dir.join(format!("{id}.eml"));
    let temp = dir.join(format!(".{id}.{}.tmp", Uuid::new_v4().simple()));
    let written = async {
        let mut file = tokio::fs::File::create(&temp).await?;
        file.write_all(bytes).await?;
        file.sync_all().await?;
        let permit = accepted
            .acquire()
            .await
            .map_err(|_| std::io::Error::other("the mailer is shut down"))?;
        tokio::fs::rename(&temp, &target).await?;
        Ok::<_, std::io::Error>(permit)
    }
    .await;
    match written {
        Ok(permit) => Ok(permit),
        Err(e) => {
            let _ = tokio::fs::remove_file(&temp).await;
            Err(anyhow::Error::new(e).context(format!("cannot write {}", target.display())))
        }
    }
}

/// `text` with every word that holds an `@` (an address, say in `550 <a@b>: rejected`)
/// replaced by `[address]`.
pub fn redact_addresses(text: &str) -> String {
    let is_boundary = |c: char| c.is_whitespace() || "<>\"'(),;[]".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains('@') {
            out.push_str("[address]");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if is_boundary(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_taken_out_of_error_text() {
        assert_eq!(
            redact_addresses(
                "permanent error (550): 5.1.1 <Bob.Smith@example.com>: Recipient address rejected"
            ),
            "permanent error (550): 5.1.1 <[address]>: Recipient address rejected"
        );
        assert_eq!(redact_addresses("to bob@x.org, then"), "to [address], then");
        assert_eq!(
            redact_addresses("451 4.3.0 try again later"),
            "451 4.3.0 try again later"
        );
    }

    #[test]
    fn an_authentication_refusal_is_not_a_verdict_on_the_message() {
        use lettre::transport::smtp::response::Detail;
        let code = |severity, category, detail| Code::new(severity, category, detail);
        let perm = Severity::PermanentNegativeCompletion;
        assert!(refuses_the_sender(code(
            perm,
            Category::Unspecified3,
            Detail::Five
        )));
        assert!(refuses_the_sender(code(
            perm,
            Category::Unspecified3,
            Detail::Zero
        )));
        assert!(!refuses_the_sender(code(
            perm,
            Category::MailSystem,
            Detail::Zero
        )));
        let temp = Severity::TransientNegativeCompletion;
        assert!(!refuses_the_sender(code(
            temp,
            Category::Unspecified3,
            Detail::Zero
        )));
    }

    #[tokio::test]
    async fn a_message_file_appears_whole_under_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let id = Uuid::now_v7();
        let accepted = Semaphore::new(1);
        drop(
            write_atomically(dir.path(), id, b"first", &accepted)
                .await
                .unwrap(),
        );
        let held = write_atomically(dir.path(), id, b"second", &accepted)
            .await
            .unwrap();
        // The permit is held by the caller until it has recorded the outcome.
        assert_eq!(accepted.available_permits(), 0);
        drop(held);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![format!("{id}.eml")]);
        assert_eq!(
            std::fs::read(dir.path().join(format!("{id}.eml"))).unwrap(),
            b"second"
        );
    }
}
