//! SMTP connections of our own, kept in a pool: lettre's protocol client on sockets with Nagle's
//! algorithm off.
//!
//! lettre 0.11.23 writes a message's body and its closing `\r\n.\r\n` as two writes on a socket
//! with Nagle on, so the five-byte terminator waits for the server's delayed ACK: 40 ms on Linux,
//! on every message (about 180 messages a second over 8 connections to an SMTP server that
//! answers at once; lettre fixed it upstream in pull request 1159, not released yet). We open the
//! TCP connection ourselves with `TCP_NODELAY` and hand it to lettre's
//! [`AsyncSmtpConnection::connect_with_transport`], which speaks EHLO, STARTTLS, AUTH and the
//! mail transaction as before.
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
        extension::ClientId,
    },
};
use tokio::{net::TcpStream, time::Instant};

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

/// Why no connection could be had.
#[derive(Debug)]
pub enum ConnectError {
    /// The TCP connection failed or timed out.
    Io(std::io::Error),
    /// The server refused the greeting, STARTTLS or AUTH.
    Smtp(lettre::transport::smtp::Error),
    /// The pool was shut down.
    Closed,
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

    /// Sends `email` to the envelope's recipients on a pooled connection (or a new one).
    pub async fn send(
        &self,
        envelope: &Envelope,
        email: &[u8],
    ) -> Result<(), Result<lettre::transport::smtp::Error, ConnectError>> {
        let mut connection = self.checkout().await.map_err(Err)?;
        let sent = connection.send(envelope, email).await;
        if connection.has_broken() {
            connection.abort().await;
        } else {
            self.checkin(connection).await;
        }
        sent.map(|_| ()).map_err(Ok)
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

    async fn checkout(&self) -> Result<AsyncSmtpConnection, ConnectError> {
        loop {
            let parked = match self.lock().as_mut() {
                None => return Err(ConnectError::Closed),
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

    async fn connect(&self) -> Result<AsyncSmtpConnection, ConnectError> {
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
            .map_err(ConnectError::Smtp)?,
            security => {
                let tcp = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    TcpStream::connect((t.host.as_str(), t.port)),
                )
                .await
                .map_err(|_| {
                    ConnectError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "connection timed out",
                    ))
                })?
                .map_err(ConnectError::Io)?;
                // The point of this module: see the module docs.
                tcp.set_nodelay(true).map_err(ConnectError::Io)?;
                let mut connection =
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &t.hello)
                        .await
                        .map_err(ConnectError::Smtp)?;
                match security {
                    Security::StartTls(params) => connection
                        .starttls(params.clone(), &t.hello)
                        .await
                        .map_err(ConnectError::Smtp)?,
                    Security::Opportunistic(params) if connection.can_starttls() => connection
                        .starttls(params.clone(), &t.hello)
                        .await
                        .map_err(ConnectError::Smtp)?,
                    _ => {}
                }
                connection
            }
        };
        if let Some(credentials) = &t.credentials {
            connection
                .auth(DEFAULT_MECHANISMS, credentials)
                .await
                .map_err(ConnectError::Smtp)?;
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
