//! Bearer JWTs: HS256 with a shared secret, claims `sub`, `role`, `exp`.

use std::sync::Arc;

use axum::{
    extract::{FromRef, FromRequestParts},
    http::request::Parts,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::problem::Problem;

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

/// Verifies bearer tokens.
#[derive(Clone)]
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
}

impl Authenticator {
    /// HS256 with `secret`. `JWT_ISSUER` / `JWT_AUDIENCE` switch on those checks.
    pub fn hs256(secret: &str) -> Arc<Self> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 30;
        match crate::config::var("JWT_ISSUER") {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match crate::config::var("JWT_AUDIENCE") {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Arc::new(Self {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        })
    }

    /// The claims of a valid token.
    pub fn verify(&self, token: &str) -> Result<Claims, Problem> {
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| Problem::unauthorized(format!("invalid bearer token: {e}")))
    }
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
        auth.verify(token.trim()).map(Caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_verifies_and_a_tampered_one_does_not() {
        let id = Uuid::now_v7();
        let token = mint(
            "s3cret-for-tests",
            id,
            Role::Patient,
            chrono::Duration::minutes(5),
        )
        .unwrap();
        let claims = Authenticator::hs256("s3cret-for-tests")
            .verify(&token)
            .unwrap();
        assert_eq!((claims.sub, claims.role), (id, Role::Patient));
        assert!(Authenticator::hs256("another").verify(&token).is_err());
        let expired = mint(
            "s3cret-for-tests",
            id,
            Role::Staff,
            chrono::Duration::minutes(-5),
        )
        .unwrap();
        assert!(
            Authenticator::hs256("s3cret-for-tests")
                .verify(&expired)
                .is_err()
        );
    }
}
