//! The service's settings, from the environment.

use std::{path::PathBuf, time::Duration};

use lettre::message::Mailbox;
use slotcast_kit::config::{Common, ConfigError, parse_or, var};

use crate::{
    ACK_WAIT, DEFAULT_PORT, SERVICE,
    handler::{Retry, Sending},
    mailer,
};

/// The service's settings.
#[derive(Clone)]
pub struct Config {
    pub common: Common,
    /// `SMTP_URL`; `None` writes `.eml` files into `mail_dir`.
    pub smtp_url: Option<String>,
    /// `SMTP_POOL_SIZE`: idle SMTP connections kept open (default: `EMAIL_CONCURRENCY`).
    pub smtp_pool_size: u32,
    /// `MAIL_DIR`: where mail goes without `SMTP_URL` (default `var/mail`).
    pub mail_dir: PathBuf,
    /// `SMTP_FROM` (default `slotcast <no-reply@slotcast.localhost>`), `EMAIL_CONCURRENCY`
    /// (default 32), `EMAIL_MAX_UNRECORDED` (default 8), the retries (`EMAIL_RETRY_BASE_MS`, `EMAIL_RETRY_MAX_MS`,
    /// `EMAIL_RETRY_HORIZON_SECS`), and the lease (the consumer's ack wait).
    pub sending: Sending,
}

/// `EMAIL_CONCURRENCY` by default: SMTP transactions at once, enough to keep a fast server busy.
const DEFAULT_CONCURRENCY: usize = 32;
/// `EMAIL_MAX_UNRECORDED` by default: the most emails a crash can send twice.
const DEFAULT_MAX_UNRECORDED: usize = 8;

impl Config {
    /// Reads the settings from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let smtp_url = var("SMTP_URL");
        if let Some(url) = &smtp_url {
            lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url).map_err(|e| {
                ConfigError::Invalid {
                    name: "SMTP_URL",
                    reason: mailer::redact_addresses(&e.to_string()),
                }
            })?;
        }
        let smtp_from = var("SMTP_FROM")
            .unwrap_or_else(|| "slotcast <no-reply@slotcast.localhost>".to_owned())
            .parse::<Mailbox>()
            .map_err(|e| ConfigError::Invalid {
                name: "SMTP_FROM",
                reason: e.to_string(),
            })?;
        let concurrency = at_least_one("EMAIL_CONCURRENCY", DEFAULT_CONCURRENCY)?;
        let max_unrecorded = at_least_one("EMAIL_MAX_UNRECORDED", DEFAULT_MAX_UNRECORDED)?;
        Ok(Self {
            common: Common::from_env(SERVICE, DEFAULT_PORT)?,
            smtp_url,
            // As many idle connections as sends at once, so a busy sender never closes one only to
            // open another for the next email.
            smtp_pool_size: parse_or(
                "SMTP_POOL_SIZE",
                u32::try_from(concurrency).unwrap_or(u32::MAX),
            )?,
            mail_dir: PathBuf::from(var("MAIL_DIR").unwrap_or_else(|| "var/mail".to_owned())),
            sending: Sending {
                from: smtp_from,
                concurrency,
                max_unrecorded,
                retry: Retry {
                    delays: slotcast_kit::retry::Backoff::new(
                        Duration::from_millis(parse_or("EMAIL_RETRY_BASE_MS", 5_000)?),
                        Duration::from_millis(parse_or("EMAIL_RETRY_MAX_MS", 15 * 60 * 1000)?),
                    ),
                    horizon: Duration::from_secs(parse_or("EMAIL_RETRY_HORIZON_SECS", 12 * 3600)?),
                },
                lease: ACK_WAIT,
            },
        })
    }
}

/// A count from the environment that must be at least 1.
fn at_least_one(name: &'static str, default: usize) -> Result<usize, ConfigError> {
    match parse_or(name, default)? {
        0 => Err(ConfigError::Invalid {
            name,
            reason: "must be at least 1".to_owned(),
        }),
        n => Ok(n),
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SMTP_URL may carry a password.
        f.debug_struct("Config")
            .field("common", &self.common)
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "<set>"))
            .field("smtp_pool_size", &self.smtp_pool_size)
            .field("mail_dir", &self.mail_dir)
            .field("sending", &self.sending)
            .finish()
    }
}
