//! Settings from the environment.

use slotcast_kit::{
    auth::AuthSettings,
    config::{Common, ConfigError},
};

/// The service's name: the default SQLite file, the NATS connection name, the durable consumer.
pub const SERVICE: &str = "inapp-notifier";
/// `LISTEN_ADDR` defaults to `127.0.0.1:8083`.
pub const DEFAULT_PORT: u16 = 8083;

/// Everything the service reads at start.
#[derive(Debug, Clone)]
pub struct Config {
    pub common: Common,
    /// The HS256 secret that patients' and staff's bearer tokens are signed with.
    pub jwt_secret: String,
    /// Issuer and audience checks, and the identity provider's key set.
    pub auth: AuthSettings,
}

impl Config {
    /// Reads `NATS_URL`, `DATABASE_URL`, `LISTEN_ADDR`, `JWT_SECRET` (or `JWT_SECRET_FILE`), the
    /// other `JWT_*` settings and the other common settings.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            common: Common::from_env(SERVICE, DEFAULT_PORT)?,
            jwt_secret: slotcast_kit::config::jwt_secret()?,
            auth: AuthSettings::from_env()?,
        })
    }
}
