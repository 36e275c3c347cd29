//! The identity provider's signing keys, cached by `kid` so that a token is checked without a
//! call to the provider, and fetched again at most once per interval so that tokens with
//! made-up `kid`s cannot turn slotcast into a flood of requests to the provider.

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse},
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{AuthError, JwksSettings};
use crate::retry::Backoff;

/// The largest key set read; real ones are a few kilobytes.
const MAX_BODY: usize = 1 << 20;

/// A public key of the provider and the one algorithm it verifies.
#[derive(Clone)]
pub(super) struct PublicKey {
    pub alg: Algorithm,
    pub key: DecodingKey,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, PublicKey>,
    /// Whether a fetch has ever succeeded.
    loaded: bool,
}

/// Why a fetch of the key set failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the request failed: {0}")]
    Request(#[from] reqwest::Error),
    #[error("the provider answered HTTP {0}")]
    Status(reqwest::StatusCode),
    #[error("the answer is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("the answer is not a JWK set: {0}")]
    NotAKeySet(String),
    #[error("the set has no RS256 or ES256 signing key with a kid")]
    NoUsableKey,
}

/// The cached key set of one provider.
pub(super) struct KeySet {
    url: reqwest::Url,
    client: reqwest::Client,
    min_interval: Duration,
    refresh_every: Duration,
    retry: Backoff,
    cache: RwLock<Cache>,
    /// When the last fetch started; held during a fetch so that fetches never overlap.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl KeySet {
    pub fn new(settings: &JwksSettings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .build()?;
        Ok(Self {
            url: settings.url.clone(),
            client,
            min_interval: settings.min_refresh_interval,
            refresh_every: settings.refresh_every,
            retry: settings.retry,
            cache: RwLock::default(),
            last_fetch: tokio::sync::Mutex::new(None),
        })
    }

    /// The key published as `kid`, fetching the set again first if `kid` is unknown and the
    /// last fetch is older than the minimum interval.
    pub async fn key(&self, kid: &str) -> Result<PublicKey, AuthError> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        self.refresh_if_due().await;
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        if self.loaded() {
            Err(AuthError::UnknownKid)
        } else {
            Err(AuthError::KeysUnavailable)
        }
    }

    /// Fetches the set now (unless a fetch is under way, whose result is then taken), then
    /// every `refresh_every`; after a failure again with backoff, keeping the keys it had.
    pub async fn keep_fresh(&self, shutdown: CancellationToken) {
        let mut failures = self.retry.attempts();
        loop {
            // A fetch in hand is dropped at shutdown rather than awaited for its timeout.
            let fetched = tokio::select! {
                () = shutdown.cancelled() => return,
                fetched = self.refresh() => fetched,
            };
            let pause = match fetched {
                Ok(()) => {
                    failures.reset();
                    self.refresh_every
                }
                Err(()) => failures.next_delay(),
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    fn cached(&self, kid: &str) -> Option<PublicKey> {
        self.cache.read().ok()?.keys.get(kid).cloned()
    }

    fn loaded(&self) -> bool {
        self.cache.read().map(|c| c.loaded).unwrap_or(false)
    }

    async fn refresh_if_due(&self) {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.min_interval) {
            return;
        }
        *last = Some(Instant::now());
        let _ = self.fetch_and_store().await;
    }

    async fn refresh(&self) -> Result<(), ()> {
        let mut last = self.last_fetch.lock().await;
        *last = Some(Instant::now());
        self.fetch_and_store().await
    }

    async fn fetch_and_store(&self) -> Result<(), ()> {
        match self.fetch().await {
            Ok(keys) => {
                tracing::debug!(url = %self.url, keys = keys.len(), "identity provider keys fetched");
                if let Ok(mut cache) = self.cache.write() {
                    *cache = Cache { keys, loaded: true };
                }
                Ok(())
            }
            Err(error) => {
                tracing::warn!(url = %self.url, error = %error, "identity provider keys not fetched; keeping the keys held");
                Err(())
            }
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, PublicKey>, FetchError> {
        let mut response = self
            .client
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let keys = parse(&body)?;
        if keys.is_empty() {
            return Err(FetchError::NoUsableKey);
        }
        Ok(keys)
    }
}

/// The usable keys of a JWK set; keys this service cannot use (encryption keys, other
/// algorithms, no `kid`) are skipped rather than failing the whole set.
fn parse(body: &[u8]) -> Result<HashMap<String, PublicKey>, FetchError> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<Value>,
    }
    let set: Set =
        serde_json::from_slice(body).map_err(|e| FetchError::NotAKeySet(e.to_string()))?;
    Ok(set
        .keys
        .into_iter()
        .filter_map(|v| serde_json::from_value::<Jwk>(v).ok())
        .filter_map(|jwk| usable(&jwk))
        .collect())
}

fn usable(jwk: &Jwk) -> Option<(String, PublicKey)> {
    let kid = jwk.common.key_id.clone()?;
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
            if ec.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, PublicKey { alg, key }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_rs256_and_es256_signing_keys_with_a_kid_are_kept() {
        let rsa = json!({"kty": "RSA", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"});
        let ec = json!({"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRjmeZc5RBNyVxY-gZf0TSDo-xSuc4m8wq6wnb0"});
        let with = |key: &Value, extra: Value| {
            let mut k = key.as_object().unwrap().clone();
            k.extend(extra.as_object().unwrap().clone());
            Value::Object(k)
        };
        let set = json!({"keys": [
            with(&rsa, json!({"kid": "rsa", "use": "sig", "alg": "RS256"})),
            with(&rsa, json!({"kid": "rsa-no-alg"})),
            with(&ec, json!({"kid": "ec", "alg": "ES256"})),
            with(&rsa, json!({"kid": "rsa-enc", "use": "enc"})),
            with(&rsa, json!({"kid": "rsa-384", "alg": "RS384"})),
            with(&rsa, json!({"kid": "rsa-as-es", "alg": "ES256"})),
            with(&rsa, json!({})),
            json!({"kid": "secret", "kty": "oct", "k": "c2VjcmV0"}),
            json!({"kid": "odd", "kty": "XYZ"}),
        ]});
        let keys = parse(set.to_string().as_bytes()).unwrap();
        let mut kept: Vec<(&str, Algorithm)> =
            keys.iter().map(|(k, v)| (k.as_str(), v.alg)).collect();
        kept.sort_by_key(|(k, _)| *k);
        assert_eq!(
            kept,
            [
                ("ec", Algorithm::ES256),
                ("rsa", Algorithm::RS256),
                ("rsa-no-alg", Algorithm::RS256)
            ]
        );
        assert!(matches!(
            parse(b"{\"not\": \"keys\"}"),
            Err(FetchError::NotAKeySet(_))
        ));
    }
}
