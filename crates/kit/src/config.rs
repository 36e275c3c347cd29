//! Typed settings from the environment. Every service reads the same names (see the README).

use std::{net::SocketAddr, str::FromStr};

/// A required or malformed environment variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {name} is required: {hint}")]
    Missing {
        name: &'static str,
        hint: &'static str,
    },
    #[error("environment variable {name} has an invalid value: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// The value of `name`, if set and not empty.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Parses `name` if set, else returns `default`.
pub fn parse_or<T>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(raw) => raw.parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            reason: e.to_string(),
        }),
    }
}

/// Settings every service has.
#[derive(Debug, Clone)]
pub struct Common {
    /// `NATS_URL`; `nats://127.0.0.1:4222` when unset.
    pub nats_url: String,
    /// `DATABASE_URL`; a SQLite file under `var/` named after the service when unset.
    pub database_url: String,
    /// `LISTEN_ADDR`; `127.0.0.1:<default port>` when unset.
    pub listen_addr: SocketAddr,
    /// `NATS_STREAM_REPLICAS`: 1 on one machine, 3 in a cluster.
    pub stream_replicas: usize,
    /// `DATABASE_MAX_CONNECTIONS`.
    pub db_max_connections: u32,
    /// `RATE_LIMIT_FAILED_AUTH`, `RATE_LIMIT_LINKS`, `TRUST_X_FORWARDED_FOR`.
    pub limits: crate::limits::LimitsConfig,
}

impl Common {
    /// Reads the common settings; `service` names the default SQLite file, `port` the default port.
    pub fn from_env(service: &str, port: u16) -> Result<Self, ConfigError> {
        Ok(Self {
            nats_url: var("NATS_URL").unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned()),
            database_url: var("DATABASE_URL")
                .unwrap_or_else(|| format!("sqlite://var/{service}.sqlite?mode=rwc")),
            listen_addr: parse_or("LISTEN_ADDR", SocketAddr::from(([127, 0, 0, 1], port)))?,
            stream_replicas: parse_or("NATS_STREAM_REPLICAS", 1)?,
            db_max_connections: parse_or("DATABASE_MAX_CONNECTIONS", 10)?,
            limits: limits()?,
        })
    }
}

/// The abuse limits: `RATE_LIMIT_FAILED_AUTH`, `RATE_LIMIT_LINKS`, `TRUST_X_FORWARDED_FOR`.
fn limits() -> Result<crate::limits::LimitsConfig, ConfigError> {
    let default = crate::limits::LimitsConfig::default();
    Ok(crate::limits::LimitsConfig {
        failed_auth_per_minute: parse_or("RATE_LIMIT_FAILED_AUTH", default.failed_auth_per_minute)?,
        links_per_minute: parse_or("RATE_LIMIT_LINKS", default.links_per_minute)?,
        trust_forwarded_for: parse_or("TRUST_X_FORWARDED_FOR", default.trust_forwarded_for)?,
    })
}

/// `JWT_SECRET`, or the contents of the file named by `JWT_SECRET_FILE` (a mounted secret).
pub fn jwt_secret() -> Result<String, ConfigError> {
    if let Some(v) = var("JWT_SECRET") {
        return Ok(v);
    }
    if let Some(path) = var("JWT_SECRET_FILE") {
        return std::fs::read_to_string(&path)
            .map(|s| s.trim().to_owned())
            .map_err(|e| ConfigError::Invalid {
                name: "JWT_SECRET_FILE",
                reason: e.to_string(),
            });
    }
    Err(ConfigError::Missing {
        name: "JWT_SECRET",
        hint: "set it to the HS256 secret shared by the services (`make run` generates a dev-only one)",
    })
}

/// `PUBLIC_BASE_URL` without a trailing slash; `http://127.0.0.1:8080` when unset.
pub fn public_base_url() -> String {
    var("PUBLIC_BASE_URL")
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned())
        .trim_end_matches('/')
        .to_owned()
}
