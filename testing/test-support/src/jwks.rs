//! An identity provider's key set for tests: [`SigningKey`]s made at test time (no private key
//! is ever committed) and a [`JwksServer`] that serves their public halves over HTTP, counts
//! the fetches, and can be stopped and started again on the same port.

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use anyhow::Context as _;
use axum::{Json, Router, extract::State, routing::get};
use jsonwebtoken::{
    Algorithm, EncodingKey, Header,
    jwk::{Jwk, PublicKeyUse},
};
use serde_json::Value;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

/// A private key of an identity provider, with the `kid` it publishes it under.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Jwk,
}

impl SigningKey {
    /// A fresh 2048-bit RSA key for RS256.
    pub fn rs256(kid: &str) -> Self {
        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key");
        let der = key.to_pkcs1_der().expect("PKCS#1 DER");
        Self::new(
            kid,
            Algorithm::RS256,
            EncodingKey::from_rsa_der(der.as_bytes()),
        )
    }

    /// A fresh P-256 key for ES256.
    pub fn es256(kid: &str) -> Self {
        use p256::pkcs8::EncodePrivateKey as _;
        let key = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let der = key.to_pkcs8_der().expect("PKCS#8 DER");
        Self::new(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_der(der.as_bytes()),
        )
    }

    fn new(kid: &str, alg: Algorithm, encoding: EncodingKey) -> Self {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).expect("public JWK");
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Self {
            kid: kid.to_owned(),
            alg,
            encoding,
            jwk,
        }
    }

    /// The same key published under another `kid`.
    pub fn with_kid(&self, kid: &str) -> Self {
        let mut key = self.clone();
        key.kid = kid.to_owned();
        key.jwk.common.key_id = Some(kid.to_owned());
        key
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as the provider publishes it.
    pub fn public_jwk(&self) -> Value {
        serde_json::to_value(&self.jwk).expect("JWK serialises")
    }

    /// A token with these claims, its header naming this key's algorithm and `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("token signs")
    }
}

/// A JWKS endpoint on 127.0.0.1, serving the set it was last given.
pub struct JwksServer {
    addr: SocketAddr,
    keys: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
    running: Option<(CancellationToken, JoinHandle<()>)>,
}

impl JwksServer {
    /// Serves the public halves of `keys` on a free port.
    pub async fn start(keys: &[&SigningKey]) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let mut server = Self {
            addr: listener.local_addr()?,
            keys: Arc::new(Mutex::new(key_set(keys))),
            fetches: Arc::default(),
            running: None,
        };
        server.serve_on(listener);
        Ok(server)
    }

    /// A provider that is down: its URL is known, nothing answers there until [`Self::resume`].
    pub fn down(keys: &[&SigningKey]) -> anyhow::Result<Self> {
        Ok(Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, crate::try_free_port()?)),
            keys: Arc::new(Mutex::new(key_set(keys))),
            fetches: Arc::default(),
            running: None,
        })
    }

    /// The key set's URL, as `JWT_JWKS_URL` takes it.
    pub fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.addr)
    }

    /// Publishes `keys` in place of the set served so far.
    pub fn publish(&self, keys: &[&SigningKey]) {
        *self.keys.lock().expect("key set lock") = key_set(keys);
    }

    /// How many times the set has been fetched.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Stops answering: connections are refused until [`Self::resume`].
    pub async fn stop(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            stop.cancel();
            let _ = task.await;
        }
    }

    /// Answers again on the same port.
    pub async fn resume(&mut self) -> anyhow::Result<()> {
        if self.running.is_none() {
            let listener = TcpListener::bind(self.addr)
                .await
                .with_context(|| format!("rebinding the key set's port {}", self.addr))?;
            self.serve_on(listener);
        }
        Ok(())
    }

    fn serve_on(&mut self, listener: TcpListener) {
        let state = (self.keys.clone(), self.fetches.clone());
        let router = Router::new()
            .route("/.well-known/jwks.json", get(serve_keys))
            .with_state(state);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(stopped.cancelled_owned())
                .await;
        });
        self.running = Some((stop, task));
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        if let Some((stop, _)) = &self.running {
            stop.cancel();
        }
    }
}

type ServerState = (Arc<Mutex<Value>>, Arc<AtomicUsize>);

async fn serve_keys(State((keys, fetches)): State<ServerState>) -> Json<Value> {
    fetches.fetch_add(1, Ordering::SeqCst);
    Json(keys.lock().expect("key set lock").clone())
}

fn key_set(keys: &[&SigningKey]) -> Value {
    serde_json::json!({ "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() })
}
