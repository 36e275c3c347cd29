//! SMTP connections of our own, kept in a pool: lettre's protocol client on sockets with Nagle's
//! algorithm off.
//!
//! lettre 0.11.23 writes a message's body and its closing `\r\n.\r\n` as two writes on a socket
//! with Nagle on, so the five-byte terminator waits for the server's delayed ACK: 40 ms on Linux,
//! on every message (about 180 messages a second over 8 connections to an SMTP server that
//! answers at once; lettre fixed it upstream in pull request 1159, not released yet). We open the
//! TCP connection ourselves with `TCP_NODELAY` and hand it to lettre's
//! [`AsyncSmtpConnection::connect_with_transport`], which speaks EHLO, STARTTLS and AUTH as
//! before. The mail transaction is lettre's commands in lettre's order, with one wait added
//! before the message for the caller's permit (see [`SmtpPool::send`]).
//!
//! The pool keeps at most `max_idle` connections between sends; how many sends run at once is
//! bounded by the caller (the consumer's concurrency). A connection is reused without a `NOOP`
//! round trip while it was idle for less than [`CHECK_AFTER_IDLE`], checked with one after that,
//! and closed after [`MAX_IDLE`]. A connection that saw an error is closed, never reused.
//!
//! `smtps://` (TLS from the first byte) still connects through lettre's own
//! [`AsyncSmtpConnection::connect_tokio1`], which gives no hook to set `TCP_NODELAY`.

use std::{borrow::Cow, sync::Mutex, time::Duration};

use lettre::{
    address::Envelope,
    transport::smtp::{
        authentication::{Credentials, DEFAULT_MECHANISMS},
        client::{AsyncSmtpConnection, TlsParameters},
        commands::{Data, Mail, Rcpt},
        extension::{ClientId, Extension, MailBodyParameter, MailParameter},
    },
};
use tokio::{
    net::TcpStream,
    sync::{Semaphore, SemaphorePermit},
    time::Instant,
};

/// A connection idle for longer than this is checked with a `NOOP` before it is reused.
pub const CHECK_AFTER_IDLE: Duration = Duration::from_secs(5);
/// A connection idle for longer than this is closed instead of reused (servers drop idle clients
/// after a few minutes).
pub const MAX_IDLE: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a connection is secured, from `SMTP_URL` (the same rules as lettre's `from_url`).
#[derive(Clone)]
enum Security {
    /// `smtp://host` without `tls`: plain text.
    None,
    /// `?tls=required`: STARTTLS, or fail.
    StartTls(TlsParameters),
    /// `?tls=opportunistic`: STARTTLS when the server offers it.
    Opportunistic(TlsParameters),
    /// `smtps://`: TLS from the first byte.
    Wrapper(TlsParameters),
}

/// Where and how to connect.
#[derive(Clone)]
struct Target {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
}

impl Target {
    fn parse(url: &str) -> Result<Self, String> {
        let url = url::Url::parse(url).map_err(|e| e.to_string())?;
        let host = url.host_str().ok_or("the SMTP URL has no host")?.to_owned();
        let tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let params = || TlsParameters::new(host.clone()).map_err(|e| e.to_string());
        let (security, default_port) = match (url.scheme(), tls.as_deref()) {
            ("smtp", None) => (Security::None, 25),
            ("smtp", Some("required")) => (Security::StartTls(params()?), 587),
            ("smtp", Some("opportunistic")) => (Security::Opportunistic(params()?), 587),
            ("smtps", _) => (Security::Wrapper(params()?), 465),
            (scheme, tls) => {
                return Err(format!(
                    "unknown scheme {scheme:?} or tls parameter {tls:?}"
                ));
            }
        };
        let hello = match url.path().trim_matches('/') {
            "" => ClientId::default(),
            name => ClientId::Domain(name.to_owned()),
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(Cow::into_owned)
                .map_err(|e| e.to_string())
        };
        let credentials = match url.password() {
            Some(password) => Some(Credentials::new(decode(url.username())?, decode(password)?)),
            None => None,
        };
        Ok(Self {
            port: url.port().unwrap_or(default_port),
            host,
            security,
            credentials,
            hello,
        })
    }
}

/// Why a message was not handed over.
#[derive(Debug)]
pub enum Failure {
    /// The TCP connection failed or timed out.
    Io(std::io::Error),
    /// The server refused the greeting, STARTTLS, AUTH or the mail transaction.
    Smtp(lettre::transport::smtp::Error),
    /// The message needs an extension the server does not offer.
    Unsupported(&'static str),
    /// The pool (or the permits of accepted messages) was shut down.
    Closed,
}

/// One mail transaction on `connection`, as lettre's `AsyncSmtpConnection::send` makes it, with a
/// permit of `accepted` taken between `DATA` and the message.
async fn transaction<'a>(
    connection: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    email: &[u8],
    accepted: &'a Semaphore,
) -> Result<SemaphorePermit<'a>, Failure> {
    let mut options = vec![];
    let non_ascii = |a: &lettre::Address| !AsRef::<str>::as_ref(a).is_ascii();
    if envelope.from().is_some_and(non_ascii) || envelope.to().iter().any(non_ascii) {
        if !connection
            .server_info()
            .supports_feature(Extension::SmtpUtfEight)
        {
            return Err(Failure::Unsupported(
                "an address is not ASCII and the SMTP server does not offer SMTPUTF8",
            ));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !email.is_ascii() {
        if !connection
            .server_info()
            .supports_feature(Extension::EightBitMime)
        {
            return Err(Failure::Unsupported(
                "the message is not ASCII and the SMTP server does not offer 8BITMIME",
            ));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let sent = async {
        connection
            .command(Mail::new(envelope.from().cloned(), options))
            .await
            .map_err(Failure::Smtp)?;
        for to in envelope.to() {
            connection
                .command(Rcpt::new(to.clone(), vec![]))
                .await
                .map_err(Failure::Smtp)?;
        }
        connection.command(Data).await.map_err(Failure::Smtp)?;
        let permit = accepted.acquire().await.map_err(|_| Failure::Closed)?;
        connection.message(email).await.map_err(Failure::Smtp)?;
        Ok(permit)
    }
    .await;
    if sent.is_err() {
        // A refusal leaves the transaction open on the server: the connection is not reused.
        connection.abort().await;
    }
    sent
}

struct Idle {
    connection: AsyncSmtpConnection,
    since: Instant,
}

/// A pool of SMTP connections to one server.
pub struct SmtpPool {
    target: Target,
    max_idle: usize,
    /// `None` once shut down.
    idle: Mutex<Option<Vec<Idle>>>,
}

impl SmtpPool {
    /// A pool for `url` (see the crate docs for the forms) keeping at most `max_idle`
    /// connections between sends. Connects lazily.
    pub fn new(url: &str, max_idle: usize) -> Result<Self, String> {
        Ok(Self {
            target: Target::parse(url)?,
            max_idle: max_idle.max(1),
            idle: Mutex::new(Some(Vec::new())),
        })
    }

    /// Sends `email` to the envelope's recipients on a pooled connection (or a new one). The
    /// envelope and `DATA` go first; the message itself, whose last line is the point after which
    /// the server may have accepted it, waits for a permit of `accepted`, which is returned with
    /// the server's acceptance so that the caller holds it until the outcome is recorded.
    pub async fn send<'a>(
        &self,
        envelope: &Envelope,
        email: &[u8],
        accepted: &'a Semaphore,
    ) -> Result<SemaphorePermit<'a>, Failure> {
        let mut connection = self.checkout().await?;
        let sent = transaction(&mut connection, envelope, email, accepted).await;
        if connection.has_broken() {
            connection.abort().await;
        } else {
            self.checkin(connection).await;
        }
        sent
    }

    /// Closes the idle connections (QUIT) and refuses further sends.
    pub async fn shutdown(&self) {
        let idle = self.lock().take().unwrap_or_default();
        for mut i in idle {
            let _ = i.connection.quit().await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<Idle>>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn checkout(&self) -> Result<AsyncSmtpConnection, Failure> {
        loop {
            let parked = match self.lock().as_mut() {
                None => return Err(Failure::Closed),
                Some(idle) => idle.pop(),
            };
            let Some(Idle {
                mut connection,
                since,
            }) = parked
            else {
                return self.connect().await;
            };
            let idle_for = since.elapsed();
            if idle_for > MAX_IDLE {
                connection.abort().await;
                continue;
            }
            if idle_for > CHECK_AFTER_IDLE && !connection.test_connected().await {
                connection.abort().await;
                continue;
            }
            return Ok(connection);
        }
    }

    async fn checkin(&self, connection: AsyncSmtpConnection) {
        let surplus = {
            let mut guard = self.lock();
            match guard.as_mut() {
                Some(idle) if idle.len() < self.max_idle => {
                    idle.push(Idle {
                        connection,
                        since: Instant::now(),
                    });
                    None
                }
                _ => Some(connection),
            }
        };
        if let Some(mut connection) = surplus {
            let _ = connection.quit().await;
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, Failure> {
        let t = &self.target;
        let mut connection = match &t.security {
            Security::Wrapper(params) => AsyncSmtpConnection::connect_tokio1(
                (t.host.as_str(), t.port),
                Some(CONNECT_TIMEOUT),
                &t.hello,
                Some(params.clone()),
                None,
            )
            .await
            .map_err(Failure::Smtp)?,
            security => {
                let tcp = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    TcpStream::connect((t.host.as_str(), t.port)),
                )
                .await
                .map_err(|_| {
                    Failure::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "connection timed out",
                    ))
                })?
                .map_err(Failure::Io)?;
                // The point of this module: see the module docs.
                tcp.set_nodelay(true).map_err(Failure::Io)?;
                let mut connection =
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &t.hello)
                        .await
                        .map_err(Failure::Smtp)?;
                match security {
                    Security::StartTls(params) => connection
                        .starttls(params.clone(), &t.hello)
                        .await
                        .map_err(Failure::Smtp)?,
                    Security::Opportunistic(params) if connection.can_starttls() => connection
                        .starttls(params.clone(), &t.hello)
                        .await
                        .map_err(Failure::Smtp)?,
                    _ => {}
                }
                connection
            }
        };
        if let Some(credentials) = &t.credentials {
            connection
                .auth(DEFAULT_MECHANISMS, credentials)
                .await
                .map_err(Failure::Smtp)?;
        }
        Ok(connection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_gives_the_port_security_and_credentials() {
        let t = Target::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 2525));
        assert!(matches!(t.security, Security::None) && t.credentials.is_none());

        let t = Target::parse("smtp://u%40x:p%2Fw@mail.example.org?tls=required").unwrap();
        assert_eq!(t.port, 587);
        assert!(matches!(t.security, Security::StartTls(_)));
        assert!(t.credentials.is_some());

        let t = Target::parse("smtp://mail.example.org?tls=opportunistic").unwrap();
        assert!(matches!(t.security, Security::Opportunistic(_)));
        let t = Target::parse("smtps://mail.example.org").unwrap();
        assert_eq!(t.port, 465);
        assert!(matches!(t.security, Security::Wrapper(_)));

        assert!(Target::parse("http://mail.example.org").is_err());
        assert!(Target::parse("smtp://mail.example.org?tls=sometimes").is_err());
    }
}
