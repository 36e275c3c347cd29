//! The service's settings, from the environment: the common ones and the notification policy.

use slotcast_events::OfferPolicy;
use slotcast_kit::{
    auth::AuthSettings,
    config::{Common, ConfigError},
};

/// Settings from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub common: Common,
    pub jwt_secret: String,
    /// Issuer and audience checks, and the identity provider's key set.
    pub auth: AuthSettings,
    /// `OFFER_KEYS`: `kid=secret` entries checking booking links (the first one signs); `None`
    /// uses `jwt_secret`.
    pub offer_keys: Option<String>,
    /// `PUBLIC_BASE_URL`: where this service is reached, for the links it shows.
    pub public_base_url: String,
    /// The notification-policy settings.
    pub policy: Policy,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            common: Common::from_env("scheduling", 8080)?,
            jwt_secret: slotcast_kit::config::jwt_secret()?,
            auth: AuthSettings::from_env()?,
            offer_keys: slotcast_links::keys_from_env()?,
            public_base_url: slotcast_kit::config::public_base_url(),
            policy: Policy::from_env()?,
        })
    }
}

/// The notification-policy settings: `OFFER_POLICY`, `WAITLIST_DEFAULT_TTL_DAYS`,
/// `WAVES_FIRST_HOLD_SECS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The offering policy of practitioners without one of their own.
    pub offer_policy: OfferPolicy,
    /// How long a waiting-list entry lasts when it is joined without `expires_at`.
    pub waitlist_ttl: chrono::Duration,
    /// How long the pre-hold of a `waves` opening lasts if matching places no hold.
    pub first_hold: chrono::Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            offer_policy: OfferPolicy::Broadcast,
            waitlist_ttl: chrono::Duration::days(90),
            first_hold: chrono::Duration::seconds(120),
        }
    }
}

impl Policy {
    pub fn from_env() -> Result<Self, ConfigError> {
        use slotcast_kit::config::{parse_or, var};
        let offer_policy = match var("OFFER_POLICY") {
            None => OfferPolicy::Broadcast,
            Some(raw) => OfferPolicy::parse(raw.trim()).ok_or_else(|| ConfigError::Invalid {
                name: "OFFER_POLICY",
                reason: format!("{raw:?} is neither broadcast nor waves"),
            })?,
        };
        let ttl_days: i64 = parse_or("WAITLIST_DEFAULT_TTL_DAYS", 90)?;
        if !(1..=3650).contains(&ttl_days) {
            return Err(ConfigError::Invalid {
                name: "WAITLIST_DEFAULT_TTL_DAYS",
                reason: "between 1 and 3650 days".to_owned(),
            });
        }
        let hold_secs: i64 = parse_or("WAVES_FIRST_HOLD_SECS", 120)?;
        if !(1..=86_400).contains(&hold_secs) {
            return Err(ConfigError::Invalid {
                name: "WAVES_FIRST_HOLD_SECS",
                reason: "between 1 and 86400 seconds".to_owned(),
            });
        }
        Ok(Self {
            offer_policy,
            waitlist_ttl: chrono::Duration::days(ttl_days),
            first_hold: chrono::Duration::seconds(hold_secs),
        })
    }

    /// A practitioner's own policy, else the default.
    pub fn effective(&self, own: Option<OfferPolicy>) -> OfferPolicy {
        own.unwrap_or(self.offer_policy)
    }
}
