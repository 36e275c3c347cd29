//! Offer tokens: what a booking link carries. A token is bound to one notification, one patient
//! and the slots it offers, expires, and is signed (HS256) so it cannot be altered. It is the
//! only thing a link needs: no login.
//!
//! Keys rotate: every token names the key that signed it (`kid`), the first key signs and every
//! key verifies. To rotate, put a new key first and keep the old one until the last link it
//! signed has expired (a link lives until its latest slot starts).

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
    /// The waiting-list entry it answers: the claim books for that entry only while it is
    /// active (a second link cannot book a second appointment).
    pub eid: Uuid,
    pub slots: Vec<Uuid>,
    pub exp: i64,
    pub iat: i64,
}

/// The `typ` of a preferences token: what the preferences and one-click unsubscribe links of an
/// email carry. It names a patient and nothing else, and is never accepted as an offer.
pub const PREFERENCES_TYPE: &str = "slotcast-preferences";

/// How long a preferences link works: unsubscribing from an old email must still work
/// (RFC 8058 asks for links that keep working), but not forever.
pub const PREFERENCES_LINK_DAYS: i64 = 400;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PreferencesClaims {
    typ: String,
    sub: Uuid,
    exp: i64,
    iat: i64,
}

/// The `typ` of an appointment token: what the links of a confirmation carry (the appointment's
/// page, where it can be cancelled, and its calendar entry). Never accepted as anything else.
pub const APPOINTMENT_TYPE: &str = "slotcast-appointment";

/// How long after the appointment ends its links still work: the page then only says how it
/// ended, and the calendar entry can still be downloaded.
pub const APPOINTMENT_LINK_DAYS_AFTER: i64 = 30;

/// What an appointment link names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentClaims {
    pub typ: String,
    /// The patient the confirmation was sent to.
    pub sub: Uuid,
    /// The appointment.
    pub aid: Uuid,
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

/// `OFFER_KEYS`, or the contents of the file named by `OFFER_KEYS_FILE`: `kid=secret` entries
/// separated by whitespace, the first signing. `None` when neither is set.
pub fn keys_from_env() -> Result<Option<String>, slotcast_kit::config::ConfigError> {
    use slotcast_kit::config::{ConfigError, var};
    if let Some(list) = var("OFFER_KEYS") {
        return Ok(Some(list));
    }
    match var("OFFER_KEYS_FILE") {
        Some(path) => std::fs::read_to_string(&path)
            .map(Some)
            .map_err(|e| ConfigError::Invalid {
                name: "OFFER_KEYS_FILE",
                reason: e.to_string(),
            }),
        None => Ok(None),
    }
}

/// The key id of `JWT_SECRET` used as the offer key.
const DEFAULT_KID: &str = "default";

/// Signs with the first key, checks with any.
#[derive(Clone)]
pub struct OfferSigner {
    signing_kid: String,
    encoding: EncodingKey,
    decoding: Vec<(String, DecodingKey)>,
}

/// Why an offer key list cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferKeysError {
    #[error("the offer key list is empty")]
    Empty,
    #[error("an offer key is `kid=secret` with a non-empty kid and a secret of 32 bytes or more")]
    Malformed,
    #[error("the key id {0:?} is listed twice")]
    Duplicate(String),
}

impl OfferSigner {
    /// One key, named `default`.
    pub fn new(secret: &str) -> Self {
        Self::from_keys(vec![(DEFAULT_KID.to_owned(), secret.to_owned())])
            .expect("one key is a valid list")
    }

    /// Reads `kid=secret` entries separated by whitespace; the first signs.
    pub fn parse(list: &str) -> Result<Self, OfferKeysError> {
        let mut keys = Vec::new();
        for item in list.split_whitespace() {
            let (kid, secret) = item.split_once('=').ok_or(OfferKeysError::Malformed)?;
            if kid.is_empty() || secret.len() < 32 {
                return Err(OfferKeysError::Malformed);
            }
            keys.push((kid.to_owned(), secret.to_owned()));
        }
        Self::from_keys(keys)
    }

    fn from_keys(keys: Vec<(String, String)>) -> Result<Self, OfferKeysError> {
        let (signing_kid, signing_secret) = keys.first().cloned().ok_or(OfferKeysError::Empty)?;
        let mut decoding: Vec<(String, DecodingKey)> = Vec::with_capacity(keys.len());
        for (kid, secret) in keys {
            if decoding.iter().any(|(k, _)| *k == kid) {
                return Err(OfferKeysError::Duplicate(kid));
            }
            decoding.push((kid, DecodingKey::from_secret(secret.as_bytes())));
        }
        Ok(Self {
            signing_kid,
            encoding: EncodingKey::from_secret(signing_secret.as_bytes()),
            decoding,
        })
    }

    /// The key list when one is configured, else `jwt_secret` as the one key. With a list,
    /// `jwt_secret` still verifies (as key `default`, and for links without a key id) what was
    /// signed before the list was set, unless the list names a `default` key itself.
    pub fn from_config(keys: Option<&str>, jwt_secret: &str) -> Result<Self, OfferKeysError> {
        let Some(list) = keys else {
            return Ok(Self::new(jwt_secret));
        };
        let mut signer = Self::parse(list)?;
        if !signer.decoding.iter().any(|(kid, _)| kid == DEFAULT_KID) {
            signer.decoding.push((
                DEFAULT_KID.to_owned(),
                DecodingKey::from_secret(jwt_secret.as_bytes()),
            ));
        }
        Ok(signer)
    }

    /// A token for `patient`'s waiting-list `entry` about `slots` of notification `nid`, valid
    /// until `expires`.
    pub fn sign(
        &self,
        nid: Uuid,
        patient: Uuid,
        entry: Uuid,
        slots: &[Uuid],
        expires: chrono::DateTime<chrono::Utc>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = OfferClaims {
            typ: OFFER_TYPE.to_owned(),
            nid,
            sub: patient,
            eid: entry,
            slots: slots.to_vec(),
            exp: expires.timestamp(),
            iat: chrono::Utc::now().timestamp(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.signing_kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
    }

    /// The claims of an untampered, unexpired offer token.
    pub fn verify(&self, token: &str) -> Result<OfferClaims, OfferError> {
        let claims: OfferClaims = self.decode(token)?;
        if claims.typ != OFFER_TYPE {
            return Err(OfferError::Invalid);
        }
        Ok(claims)
    }

    /// A token for `patient`'s preferences and one-click unsubscribe links.
    pub fn sign_preferences(&self, patient: Uuid) -> Result<String, jsonwebtoken::errors::Error> {
        let now = chrono::Utc::now();
        let claims = PreferencesClaims {
            typ: PREFERENCES_TYPE.to_owned(),
            sub: patient,
            exp: (now + chrono::Duration::days(PREFERENCES_LINK_DAYS)).timestamp(),
            iat: now.timestamp(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.signing_kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
    }

    /// The patient an untampered, unexpired preferences token names.
    pub fn verify_preferences(&self, token: &str) -> Result<Uuid, OfferError> {
        let claims: PreferencesClaims = self.decode(token)?;
        if claims.typ != PREFERENCES_TYPE {
            return Err(OfferError::Invalid);
        }
        Ok(claims.sub)
    }

    /// A token for `patient`'s links to `appointment`, valid until
    /// [`APPOINTMENT_LINK_DAYS_AFTER`] days after `ends_at`.
    pub fn sign_appointment(
        &self,
        appointment: Uuid,
        patient: Uuid,
        ends_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = AppointmentClaims {
            typ: APPOINTMENT_TYPE.to_owned(),
            sub: patient,
            aid: appointment,
            exp: (ends_at + chrono::Duration::days(APPOINTMENT_LINK_DAYS_AFTER)).timestamp(),
            iat: chrono::Utc::now().timestamp(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.signing_kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
    }

    /// The claims of an untampered, unexpired appointment token.
    pub fn verify_appointment(&self, token: &str) -> Result<AppointmentClaims, OfferError> {
        let claims: AppointmentClaims = self.decode(token)?;
        if claims.typ != APPOINTMENT_TYPE {
            return Err(OfferError::Invalid);
        }
        Ok(claims)
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, token: &str) -> Result<T, OfferError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 0;
        validation.validate_aud = false;
        let header = jsonwebtoken::decode_header(token).map_err(|_| OfferError::Invalid)?;
        // A link without a key id predates key ids: it was signed with the `default` key.
        let kid = header.kid.as_deref().unwrap_or(DEFAULT_KID);
        let key = self
            .decoding
            .iter()
            .find(|(k, _)| k == kid)
            .map(|(_, key)| key)
            .ok_or(OfferError::Invalid)?;
        jsonwebtoken::decode::<T>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => OfferError::Expired,
                _ => OfferError::Invalid,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_appointment_token_names_its_appointment_and_is_nothing_else() {
        let signer = OfferSigner::new("test-secret");
        let (appointment, patient) = (Uuid::now_v7(), Uuid::now_v7());
        let ends_at = chrono::Utc::now() + chrono::Duration::hours(2);
        let token = signer
            .sign_appointment(appointment, patient, ends_at)
            .unwrap();
        let claims = signer.verify_appointment(&token).unwrap();
        assert_eq!((claims.aid, claims.sub), (appointment, patient));
        assert_eq!(
            claims.exp,
            (ends_at + chrono::Duration::days(APPOINTMENT_LINK_DAYS_AFTER)).timestamp()
        );
        assert_eq!(signer.verify(&token), Err(OfferError::Invalid));
        assert_eq!(signer.verify_preferences(&token), Err(OfferError::Invalid));
        let preferences = signer.sign_preferences(patient).unwrap();
        assert_eq!(
            signer.verify_appointment(&preferences),
            Err(OfferError::Invalid)
        );
        let long_ago = chrono::Utc::now() - chrono::Duration::days(APPOINTMENT_LINK_DAYS_AFTER + 1);
        let expired = signer
            .sign_appointment(appointment, patient, long_ago)
            .unwrap();
        assert_eq!(
            signer.verify_appointment(&expired),
            Err(OfferError::Expired)
        );
    }

    #[test]
    fn a_preferences_token_names_its_patient_and_is_never_an_offer() {
        let signer = OfferSigner::new("test-secret");
        let patient = Uuid::now_v7();
        let token = signer.sign_preferences(patient).unwrap();
        assert_eq!(signer.verify_preferences(&token), Ok(patient));
        assert_eq!(signer.verify(&token), Err(OfferError::Invalid));
        let offer = signer
            .sign(
                Uuid::now_v7(),
                patient,
                Uuid::now_v7(),
                &[Uuid::now_v7()],
                chrono::Utc::now() + chrono::Duration::hours(1),
            )
            .unwrap();
        assert_eq!(signer.verify_preferences(&offer), Err(OfferError::Invalid));
        let mut tampered = token.clone();
        tampered.pop();
        assert_eq!(
            signer.verify_preferences(&tampered),
            Err(OfferError::Invalid)
        );
        assert_eq!(
            OfferSigner::new("another-secret").verify_preferences(&token),
            Err(OfferError::Invalid)
        );
    }

    #[test]
    fn an_offer_token_round_trips_and_tampering_or_expiry_is_told_apart() {
        let signer = OfferSigner::new("test-secret");
        let (nid, patient, slot) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let token = signer
            .sign(
                nid,
                patient,
                Uuid::now_v7(),
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
                Uuid::now_v7(),
                &[slot],
                chrono::Utc::now() - chrono::Duration::hours(1),
            )
            .unwrap();
        assert_eq!(signer.verify(&old), Err(OfferError::Expired));
    }

    #[test]
    fn a_rotated_key_still_verifies_what_it_signed_and_the_new_one_signs() {
        let a = "a".repeat(32);
        let b = "b".repeat(32);
        let old = OfferSigner::parse(&format!("k1={a}")).unwrap();
        let rotated = OfferSigner::parse(&format!("k2={b}\n k1={a}")).unwrap();
        let later = chrono::Utc::now() + chrono::Duration::hours(1);
        let (nid, p, s) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let by_old = old.sign(nid, p, Uuid::now_v7(), &[s], later).unwrap();
        let by_new = rotated.sign(nid, p, Uuid::now_v7(), &[s], later).unwrap();
        assert_eq!(rotated.verify(&by_old).unwrap().nid, nid);
        assert_eq!(rotated.verify(&by_new).unwrap().nid, nid);
        assert_eq!(old.verify(&by_new), Err(OfferError::Invalid));
        let retired = OfferSigner::parse(&format!("k2={b}")).unwrap();
        assert_eq!(retired.verify(&by_old), Err(OfferError::Invalid));
    }

    #[test]
    fn setting_a_key_list_keeps_the_links_signed_with_the_jwt_secret_working() {
        let jwt = "the-jwt-secret";
        let later = chrono::Utc::now() + chrono::Duration::hours(1);
        let (nid, p, s) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let before = OfferSigner::from_config(None, jwt)
            .unwrap()
            .sign(nid, p, Uuid::now_v7(), &[s], later)
            .unwrap();
        let list = format!("k1={}", "a".repeat(32));
        let after = OfferSigner::from_config(Some(&list), jwt).unwrap();
        assert_eq!(after.verify(&before).unwrap().nid, nid);
        let retired = format!("k1={} default={}", "a".repeat(32), "b".repeat(32));
        let retired = OfferSigner::from_config(Some(&retired), jwt).unwrap();
        assert_eq!(retired.verify(&before), Err(OfferError::Invalid));
    }

    #[test]
    fn a_bad_key_list_is_refused() {
        let a = "a".repeat(32);
        assert_eq!(OfferSigner::parse(" ").err(), Some(OfferKeysError::Empty));
        assert_eq!(
            OfferSigner::parse("k1=short").err(),
            Some(OfferKeysError::Malformed)
        );
        assert_eq!(
            OfferSigner::parse(&a).err(),
            Some(OfferKeysError::Malformed)
        );
        assert_eq!(
            OfferSigner::parse(&format!("k={a} k={a}")).err(),
            Some(OfferKeysError::Duplicate("k".to_owned()))
        );
    }
}
