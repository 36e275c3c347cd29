//! Offer tokens: what a booking link carries. A token is bound to one notification, one patient
//! and the slots it offers, expires, and is signed (HS256) so it cannot be altered. It is the
//! only thing a link needs: no login.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The token's `typ` claim; a session token is never accepted as an offer, nor the reverse.
pub const OFFER_TYPE: &str = "slotcast-offer";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferClaims {
    pub typ: String,
    /// The notification the link came in.
    pub nid: Uuid,
    /// The patient it was sent to.
    pub sub: Uuid,
    pub slots: Vec<Uuid>,
    pub exp: i64,
    pub iat: i64,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    #[error("the offer link has expired")]
    Expired,
    #[error("the offer link is not valid")]
    Invalid,
}

/// Signs and checks offer tokens with a secret.
#[derive(Clone)]
pub struct OfferSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl OfferSigner {
    pub fn new(secret: &str) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
        }
    }

    /// A token for `patient` about `slots` of notification `nid`, valid until `expires`.
    pub fn sign(
        &self,
        nid: Uuid,
        patient: Uuid,
        slots: &[Uuid],
        expires: chrono::DateTime<chrono::Utc>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = OfferClaims {
            typ: OFFER_TYPE.to_owned(),
            nid,
            sub: patient,
            slots: slots.to_vec(),
            exp: expires.timestamp(),
            iat: chrono::Utc::now().timestamp(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The claims of an untampered, unexpired offer token.
    pub fn verify(&self, token: &str) -> Result<OfferClaims, OfferError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 0;
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<OfferClaims>(token, &self.decoding, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => OfferError::Expired,
                _ => OfferError::Invalid,
            })?;
        if claims.claims.typ != OFFER_TYPE {
            return Err(OfferError::Invalid);
        }
        Ok(claims.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offer_token_round_trips_and_tampering_or_expiry_is_told_apart() {
        let signer = OfferSigner::new("test-secret");
        let (nid, patient, slot) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let token = signer
            .sign(
                nid,
                patient,
                &[slot],
                chrono::Utc::now() + chrono::Duration::hours(1),
            )
            .unwrap();
        let claims = signer.verify(&token).unwrap();
        assert_eq!(
            (claims.nid, claims.sub, claims.slots),
            (nid, patient, vec![slot])
        );
        let mut tampered = token.clone();
        tampered.insert(tampered.len() - 3, 'x');
        assert_eq!(signer.verify(&tampered), Err(OfferError::Invalid));
        assert_eq!(
            OfferSigner::new("other").verify(&token),
            Err(OfferError::Invalid)
        );
        let old = signer
            .sign(
                nid,
                patient,
                &[slot],
                chrono::Utc::now() - chrono::Duration::hours(1),
            )
            .unwrap();
        assert_eq!(signer.verify(&old), Err(OfferError::Expired));
    }
}
