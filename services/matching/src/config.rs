//! The service's settings, from the environment.

use slotcast_kit::{
    auth::AuthSettings,
    config::{Common, ConfigError},
};

use crate::policy;

/// Matching's settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub common: Common,
    /// Signs the offer tokens in booking links.
    pub jwt_secret: String,
    /// How staff's bearer tokens are checked besides the secret.
    pub auth: AuthSettings,
    /// `OFFER_KEYS`: `kid=secret` entries, the first signing; `None` signs with `jwt_secret`.
    pub offer_keys: Option<String>,
    pub public_base_url: String,
    /// Coalescing window, daily cap, waves, and where scheduling takes holds.
    pub policy: policy::PolicyConfig,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let public_base_url = slotcast_kit::config::public_base_url();
        Ok(Self {
            common: Common::from_env("matching", 8081)?,
            jwt_secret: slotcast_kit::config::jwt_secret()?,
            auth: AuthSettings::from_env()?,
            offer_keys: slotcast_links::keys_from_env()?,
            policy: policy::PolicyConfig::from_env(&public_base_url)?,
            public_base_url,
        })
    }
}
