//! Bearer JWTs: HS256 tokens slotcast mints with `JWT_SECRET` (claims `sub`, `role`, `exp`),
//! and, when `JWT_JWKS_URL` is set, RS256 and ES256 tokens of an identity provider, whose role
//! and subject are read from configurable claims.
//!
//! The header's `alg` alone chooses the path: HS256 is only ever checked with the secret, RS256
//! and ES256 only with the provider's key of that `kid` and that algorithm, so no key of one
//! kind can verify a token of the other.
//!
//! # Layout
//! - `claims.rs`: where a provider's token carries the role and the subject.
//! - `jwks.rs`: the provider's key set, cached by `kid` and fetched again when needed.

mod claims;
mod jwks;

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{FromRef, FromRequestParts},
    http::request::Parts,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use self::claims::ClaimPath;
pub use self::jwks::FetchError;
use crate::{
    config::{ConfigError, parse_or, var},
    problem::Problem,
    retry::Backoff,
};

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Staff,
    Practitioner,
    Patient,
}

/// The claims slotcast reads. No other claim is required.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// Why a bearer token was refused; every one is a 401.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the token is not a JWT, or its header names no supported alg (HS256, RS256, ES256)")]
    Malformed,
    #[error("{0:?} tokens are not accepted (HS256, and RS256 or ES256 when JWT_JWKS_URL is set)")]
    UnsupportedAlgorithm(Algorithm),
    #[error("the token's header has no kid, so no key of the identity provider can check it")]
    MissingKid,
    #[error("the token's kid is not in the identity provider's key set")]
    UnknownKid,
    #[error("the key of the token's kid is not for its alg")]
    AlgorithmMismatch,
    #[error("the identity provider's keys could not be fetched yet; try again shortly")]
    KeysUnavailable,
    #[error("the token has expired")]
    Expired,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has no {0} claim")]
    MissingClaim(String),
    #[error("the token's iss is not the expected issuer")]
    WrongIssuer,
    #[error("the token's aud is not the expected audience")]
    WrongAudience,
    #[error("the claim {claim} names no slotcast role (staff, practitioner or patient)")]
    NoRole { claim: String },
    #[error("the token has no string claim {claim} for the subject")]
    NoSubject { claim: String },
    #[error("the claim {claim} is not a slotcast id (a UUID), as patients and practitioners need")]
    SubjectNotAnId { claim: String },
    #[error("the token is invalid: {0}")]
    Invalid(String),
}

impl From<jsonwebtoken::errors::Error> for AuthError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        match e.kind() {
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::InvalidSignature => Self::BadSignature,
            ErrorKind::InvalidIssuer => Self::WrongIssuer,
            ErrorKind::InvalidAudience => Self::WrongAudience,
            ErrorKind::MissingRequiredClaim(claim) => Self::MissingClaim(claim.clone()),
            ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => Self::Malformed,
            _ => Self::Invalid(e.to_string()),
        }
    }
}

impl From<AuthError> for Problem {
    fn from(e: AuthError) -> Self {
        Problem::unauthorized(format!("invalid bearer token: {e}"))
    }
}

/// How bearer tokens are checked besides the HS256 secret, from the environment.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `JWT_ISSUER`: when set, every token's `iss` must be it.
    pub issuer: Option<String>,
    /// `JWT_AUDIENCE`: when set, every token's `aud` must be or contain it.
    pub audience: Option<String>,
    /// `JWT_JWKS_URL` and its timings: an identity provider's RS256 and ES256 tokens.
    pub jwks: Option<JwksSettings>,
    /// `JWT_ROLE_CLAIM`: where provider tokens carry the role (`role` when unset).
    pub role_claim: ClaimPath,
    /// `JWT_SUBJECT_CLAIM`: where provider tokens carry the slotcast id (`sub` when unset).
    pub subject_claim: ClaimPath,
}

impl Default for AuthSettings {
    /// HS256 only, no issuer or audience check.
    fn default() -> Self {
        Self {
            issuer: None,
            audience: None,
            jwks: None,
            role_claim: ClaimPath::claim("role"),
            subject_claim: ClaimPath::claim("sub"),
        }
    }
}

/// Where an identity provider publishes its keys, and how often they are fetched.
#[derive(Debug, Clone)]
pub struct JwksSettings {
    /// `JWT_JWKS_URL`.
    pub url: reqwest::Url,
    /// `JWT_JWKS_REFRESH_SECS`: the set is fetched again this often in the background.
    pub refresh_every: Duration,
    /// `JWT_JWKS_MIN_REFRESH_SECS`: an unknown `kid` fetches the set at most this often.
    pub min_refresh_interval: Duration,
    /// `JWT_JWKS_CONNECT_TIMEOUT_MS`.
    pub connect_timeout: Duration,
    /// `JWT_JWKS_TIMEOUT_MS`: the whole fetch, connection included.
    pub timeout: Duration,
    /// The pauses between fetches while the provider cannot be reached.
    pub retry: Backoff,
}

impl JwksSettings {
    /// The defaults for `url`: refreshed every 5 minutes, at most every 10 s on an unknown
    /// `kid`, 2 s to connect and 5 s in all, retried from 1 s to 1 min while unreachable.
    pub fn new(url: reqwest::Url) -> Self {
        Self {
            url,
            refresh_every: Duration::from_secs(300),
            min_refresh_interval: Duration::from_secs(10),
            connect_timeout: Duration::from_millis(2000),
            timeout: Duration::from_millis(5000),
            retry: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
        }
    }
}

impl AuthSettings {
    /// Reads `JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_JWKS_URL` (and its `JWT_JWKS_*` timings),
    /// `JWT_ROLE_CLAIM` and `JWT_SUBJECT_CLAIM`.
    pub fn from_env() -> Result<Self, ConfigError> {
        let claim = |name: &'static str, default: &str| {
            var(name)
                .unwrap_or_else(|| default.to_owned())
                .parse::<ClaimPath>()
                .map_err(|reason| ConfigError::Invalid { name, reason })
        };
        let jwks = match var("JWT_JWKS_URL") {
            None => None,
            Some(raw) => {
                let url = reqwest::Url::parse(raw.trim()).map_err(|e| ConfigError::Invalid {
                    name: "JWT_JWKS_URL",
                    reason: e.to_string(),
                })?;
                if !matches!(url.scheme(), "https" | "http") {
                    return Err(ConfigError::Invalid {
                        name: "JWT_JWKS_URL",
                        reason: "an http or https URL".to_owned(),
                    });
                }
                let defaults = JwksSettings::new(url);
                let secs = |name, default: Duration| {
                    parse_or(name, default.as_secs()).map(Duration::from_secs)
                };
                let millis = |name, default: Duration| {
                    parse_or(name, default.as_millis() as u64).map(Duration::from_millis)
                };
                let settings = JwksSettings {
                    refresh_every: secs("JWT_JWKS_REFRESH_SECS", defaults.refresh_every)?,
                    min_refresh_interval: secs(
                        "JWT_JWKS_MIN_REFRESH_SECS",
                        defaults.min_refresh_interval,
                    )?,
                    connect_timeout: millis(
                        "JWT_JWKS_CONNECT_TIMEOUT_MS",
                        defaults.connect_timeout,
                    )?,
                    timeout: millis("JWT_JWKS_TIMEOUT_MS", defaults.timeout)?,
                    ..defaults
                };
                for (name, value) in [
                    ("JWT_JWKS_REFRESH_SECS", settings.refresh_every),
                    ("JWT_JWKS_CONNECT_TIMEOUT_MS", settings.connect_timeout),
                    ("JWT_JWKS_TIMEOUT_MS", settings.timeout),
                ] {
                    if value.is_zero() {
                        return Err(ConfigError::Invalid {
                            name,
                            reason: "more than 0".to_owned(),
                        });
                    }
                }
                Some(settings)
            }
        };
        Ok(Self {
            issuer: var("JWT_ISSUER"),
            audience: var("JWT_AUDIENCE"),
            jwks,
            role_claim: claim("JWT_ROLE_CLAIM", "role")?,
            subject_claim: claim("JWT_SUBJECT_CLAIM", "sub")?,
        })
    }
}

/// An identity provider's keys and where its tokens carry what slotcast reads.
struct Provider {
    keys: jwks::KeySet,
    validation: Validation,
    role_claim: ClaimPath,
    subject_claim: ClaimPath,
}

/// Verifies bearer tokens.
pub struct Authenticator {
    secret: DecodingKey,
    hs256: Validation,
    provider: Option<Provider>,
}

impl Authenticator {
    /// HS256 with `secret` only, and no issuer or audience check.
    pub fn hs256(secret: &str) -> Arc<Self> {
        Arc::new(Self {
            secret: DecodingKey::from_secret(secret.as_bytes()),
            hs256: validation(Algorithm::HS256, &AuthSettings::default()),
            provider: None,
        })
    }

    /// HS256 with `secret`, and the identity provider of `settings` when it has one. Nothing is
    /// fetched here: [`Authenticator::keep_keys_fresh`] does it, so a provider that is down
    /// does not stop the start.
    pub fn new(secret: &str, settings: &AuthSettings) -> Result<Arc<Self>, ConfigError> {
        let provider = match &settings.jwks {
            None => None,
            Some(jwks) => Some(Provider {
                keys: jwks::KeySet::new(jwks).map_err(|e| ConfigError::Invalid {
                    name: "JWT_JWKS_URL",
                    reason: format!("no HTTP client for it: {e}"),
                })?,
                validation: validation(Algorithm::RS256, settings),
                role_claim: settings.role_claim.clone(),
                subject_claim: settings.subject_claim.clone(),
            }),
        };
        Ok(Arc::new(Self {
            secret: DecodingKey::from_secret(secret.as_bytes()),
            hs256: validation(Algorithm::HS256, settings),
            provider,
        }))
    }

    /// Fetches the identity provider's keys at once and then periodically (with backoff while
    /// it is down) until `shutdown`; returns at once without a provider.
    pub async fn keep_keys_fresh(self: Arc<Self>, shutdown: CancellationToken) {
        if let Some(provider) = &self.provider {
            provider.keys.keep_fresh(shutdown).await;
        }
    }

    /// The claims of a valid token.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        match (header.alg, &self.provider) {
            (Algorithm::HS256, _) => {
                Ok(jsonwebtoken::decode::<Claims>(token, &self.secret, &self.hs256)?.claims)
            }
            (Algorithm::RS256 | Algorithm::ES256, Some(provider)) => {
                let kid = header.kid.ok_or(AuthError::MissingKid)?;
                let key = provider.keys.key(&kid).await?;
                if key.alg != header.alg {
                    return Err(AuthError::AlgorithmMismatch);
                }
                let mut validation = provider.validation.clone();
                validation.algorithms = vec![key.alg];
                let claims = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
                    token,
                    &key.key,
                    &validation,
                )?
                .claims;
                provider.claims(claims)
            }
            (alg, _) => Err(AuthError::UnsupportedAlgorithm(alg)),
        }
    }
}

impl Provider {
    fn claims(
        &self,
        claims: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Claims, AuthError> {
        let role = claims::role(&claims, &self.role_claim)?;
        let sub = claims::subject(&claims, &self.subject_claim, role)?;
        let text = |name: &str| claims.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        Ok(Claims {
            sub,
            role,
            // Some providers write `exp` as a float; jsonwebtoken has checked it already.
            exp: claims
                .get("exp")
                .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
                .unwrap_or_default(),
            iss: text("iss"),
            aud: text("aud"),
        })
    }
}

/// The checks every token gets: `exp` (30 s leeway), and `iss` / `aud` when configured.
fn validation(alg: Algorithm, settings: &AuthSettings) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = 30;
    // A provider's subject may sit in another claim than `sub`.
    let mut required = vec!["exp"];
    if alg == Algorithm::HS256 {
        required.push("sub");
    }
    // jsonwebtoken checks `iss` and `aud` only when they are present, unless required.
    match &settings.issuer {
        Some(iss) => {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        None => validation.iss = None,
    }
    match &settings.audience {
        Some(aud) => {
            validation.set_audience(&[aud]);
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    validation
}

/// Mints a token (development, tests): `sub` with `role`, valid for `ttl`.
pub fn mint(secret: &str, sub: Uuid, role: Role, ttl: chrono::Duration) -> anyhow::Result<String> {
    let claims = Claims {
        sub,
        role,
        exp: (chrono::Utc::now() + ttl).timestamp(),
        iss: crate::config::var("JWT_ISSUER"),
        aud: crate::config::var("JWT_AUDIENCE"),
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// The authenticated caller, extracted from `Authorization: Bearer`.
#[derive(Debug, Clone)]
pub struct Caller(pub Claims);

impl Caller {
    pub fn is_staff(&self) -> bool {
        self.0.role == Role::Staff
    }

    /// Staff, or the patient `patient_id` themself.
    pub fn may_act_for_patient(&self, patient_id: Uuid) -> bool {
        self.is_staff() || (self.0.role == Role::Patient && self.0.sub == patient_id)
    }

    /// Staff, or the practitioner `practitioner_id` themself.
    pub fn may_act_for_practitioner(&self, practitioner_id: Uuid) -> bool {
        self.is_staff() || (self.0.role == Role::Practitioner && self.0.sub == practitioner_id)
    }

    /// 403 unless staff.
    pub fn require_staff(&self) -> Result<(), Problem> {
        if self.is_staff() {
            Ok(())
        } else {
            Err(Problem::forbidden("staff only"))
        }
    }
}

impl<S> FromRequestParts<S> for Caller
where
    Arc<Authenticator>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Arc::<Authenticator>::from_ref(state);
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Problem::unauthorized("missing bearer token"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| {
                Problem::unauthorized("the Authorization header is not a bearer token")
            })?;
        Ok(Caller(auth.verify(token.trim()).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_minted_token_verifies_and_a_tampered_one_does_not() {
        let id = Uuid::now_v7();
        let token = mint(
            "s3cret-for-tests",
            id,
            Role::Patient,
            chrono::Duration::minutes(5),
        )
        .unwrap();
        let auth = Authenticator::hs256("s3cret-for-tests");
        let claims = auth.verify(&token).await.unwrap();
        assert_eq!((claims.sub, claims.role), (id, Role::Patient));
        assert!(matches!(
            Authenticator::hs256("another").verify(&token).await,
            Err(AuthError::BadSignature)
        ));
        let expired = mint(
            "s3cret-for-tests",
            id,
            Role::Staff,
            chrono::Duration::minutes(-5),
        )
        .unwrap();
        assert!(matches!(
            auth.verify(&expired).await,
            Err(AuthError::Expired)
        ));
    }

    #[tokio::test]
    async fn without_a_key_set_only_hs256_is_accepted() {
        let rs256 = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.e30.c2ln";
        assert!(matches!(
            Authenticator::hs256("s3cret-for-tests").verify(rs256).await,
            Err(AuthError::UnsupportedAlgorithm(Algorithm::RS256))
        ));
        for junk in ["", "abc", "a.b.c", "eyJhbGciOiJub25lIn0.e30."] {
            assert!(matches!(
                Authenticator::hs256("s3cret-for-tests").verify(junk).await,
                Err(AuthError::Malformed)
            ));
        }
    }
}
