//! The service's settings, from the environment.

use std::{path::PathBuf, time::Duration};

use slotcast_kit::{
    config::{Common, ConfigError, parse_or, var},
    retry::Backoff,
};

use crate::gateway::GatewayUrl;

/// The service name: durable consumer, NATS client name, default SQLite file.
pub const SERVICE: &str = "sms-notifier";
/// `LISTEN_ADDR` when unset: `127.0.0.1:8084`.
pub const DEFAULT_PORT: u16 = 8084;

/// The service's settings.
#[derive(Clone)]
pub struct Config {
    pub common: Common,
    /// `SMS_URL`: the gateway (`kannel://user:password@host:port`, or
    /// `twilio://AccountSid:AuthToken@api.twilio.com`); unset, texts are written as files into
    /// `SMS_DIR` (default `var/sms`).
    pub gateway: GatewayUrl,
    /// `SMS_FROM`: the sender the gateway shows (default `slotcast`).
    pub from: String,
    /// `SMS_REPORT_URL`: this service's address as the gateway reaches it, for delivery
    /// reports (default: `http://` and the address it listens on).
    pub report_base_url: Option<String>,
    /// `SMS_LINK_BASE_URL`: where patients reach this service's short links, `<base>/s/<id>`
    /// (default: as `SMS_REPORT_URL`); behind a proxy, the public address that routes `/s/` here.
    pub link_base_url: Option<String>,
    /// `SMS_INBOUND_URL`: this service's address as the gateway reaches it with patients' texts
    /// (default: as `SMS_REPORT_URL`); Twilio signs `<it>/v1/sms/inbound/<key>`.
    pub inbound_base_url: Option<String>,
    /// `SMS_INBOUND_KEY` (or `SMS_INBOUND_KEY_FILE`): the secret in the address the gateway
    /// hands patients' texts to, `/v1/sms/inbound/<key>`; unset, texts from patients are not
    /// taken.
    pub inbound_key: Option<String>,
    /// `SCHEDULING_URL` (default `PUBLIC_BASE_URL`): scheduling's API, which replies book
    /// through and STOP and START change preferences in.
    pub scheduling_url: String,
    /// `JWT_SECRET` (or `JWT_SECRET_FILE`): signs the calls to scheduling that STOP and START
    /// make; needed with `SMS_INBOUND_KEY`.
    pub jwt_secret: Option<String>,
    /// `SMS_CONCURRENCY`: texts handed to the gateway at once (default 8).
    pub concurrency: usize,
    /// `SMS_RETRY_BASE_MS` (default 5 s), `SMS_RETRY_MAX_MS` (default 15 min) and
    /// `SMS_RETRY_HORIZON_SECS` (default 2 h: an offer is stale after that).
    pub retry: Retry,
}

/// When a text the gateway could not take is tried again, and until when.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub delays: Backoff,
    /// Retries end this long after the first attempt.
    pub horizon: Duration,
}

impl Config {
    /// Reads the settings from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let common = Common::from_env(SERVICE, DEFAULT_PORT)?;
        let gateway = match var("SMS_URL") {
            Some(url) => GatewayUrl::parse(&url).map_err(|reason| ConfigError::Invalid {
                name: "SMS_URL",
                reason,
            })?,
            None => GatewayUrl::Folder(PathBuf::from(
                var("SMS_DIR").unwrap_or_else(|| "var/sms".to_owned()),
            )),
        };
        let concurrency = match parse_or("SMS_CONCURRENCY", 8usize)? {
            0 => {
                return Err(ConfigError::Invalid {
                    name: "SMS_CONCURRENCY",
                    reason: "must be at least 1".to_owned(),
                });
            }
            n => n,
        };
        let inbound_key = secret("SMS_INBOUND_KEY")?;
        if inbound_key.as_ref().is_some_and(|k| k.len() < 16) {
            return Err(ConfigError::Invalid {
                name: "SMS_INBOUND_KEY",
                reason: "must be at least 16 characters".to_owned(),
            });
        }
        let jwt_secret = secret("JWT_SECRET")?;
        if inbound_key.is_some() && jwt_secret.is_none() {
            return Err(ConfigError::Invalid {
                name: "JWT_SECRET",
                reason: "is needed with SMS_INBOUND_KEY, to turn texts off on a STOP".to_owned(),
            });
        }
        let report_base_url = var("SMS_REPORT_URL").map(|u| u.trim_end_matches('/').to_owned());
        Ok(Self {
            common,
            gateway,
            from: var("SMS_FROM").unwrap_or_else(|| "slotcast".to_owned()),
            report_base_url,
            link_base_url: var("SMS_LINK_BASE_URL").map(|u| u.trim_end_matches('/').to_owned()),
            inbound_base_url: var("SMS_INBOUND_URL").map(|u| u.trim_end_matches('/').to_owned()),
            inbound_key,
            scheduling_url: var("SCHEDULING_URL")
                .unwrap_or_else(slotcast_kit::config::public_base_url)
                .trim_end_matches('/')
                .to_owned(),
            jwt_secret,
            concurrency,
            retry: Retry {
                delays: Backoff::new(
                    Duration::from_millis(parse_or("SMS_RETRY_BASE_MS", 5_000)?),
                    Duration::from_millis(parse_or("SMS_RETRY_MAX_MS", 15 * 60 * 1000)?),
                ),
                horizon: Duration::from_secs(parse_or("SMS_RETRY_HORIZON_SECS", 2 * 3600)?),
            },
        })
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The gateway URL carries a password: only its kind is shown.
        f.debug_struct("Config")
            .field("common", &self.common)
            .field("gateway", &self.gateway.kind())
            .field("from", &self.from)
            .field("report_base_url", &self.report_base_url)
            .field("link_base_url", &self.link_base_url)
            .field("inbound_base_url", &self.inbound_base_url)
            .field("inbound_key", &self.inbound_key.as_ref().map(|_| "<set>"))
            .field("scheduling_url", &self.scheduling_url)
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "<set>"))
            .field("concurrency", &self.concurrency)
            .field("retry", &self.retry)
            .finish()
    }
}

/// A secret from `name`, or from the file `name_FILE` names (a mounted secret).
fn secret(name: &'static str) -> Result<Option<String>, ConfigError> {
    if let Some(value) = var(name) {
        return Ok(Some(value));
    }
    let Some(path) = var(&format!("{name}_FILE")) else {
        return Ok(None);
    };
    std::fs::read_to_string(&path)
        .map(|s| Some(s.trim().to_owned()))
        .map_err(|e| ConfigError::Invalid {
            name,
            reason: format!("cannot read the file {name}_FILE names: {e}"),
        })
}
