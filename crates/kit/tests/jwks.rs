//! Bearer tokens of an identity provider, checked against a real JWKS endpoint started per test.

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use slotcast_kit::{
    auth::{AuthError, AuthSettings, Authenticator, JwksSettings, Role},
    retry::Backoff,
};
use slotcast_test_support::{JwksServer, SigningKey, eventually};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const SECRET: &str = "test-only-jwt-secret";
/// The minimum interval between fetches on an unknown `kid`, short for tests.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// An RSA key takes seconds to generate unoptimised: one per test binary is enough.
fn rsa_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::rs256("rsa-1"))
}

fn jwks_settings(url: &str) -> JwksSettings {
    JwksSettings {
        refresh_every: Duration::from_secs(3600),
        min_refresh_interval: MIN_INTERVAL,
        connect_timeout: Duration::from_millis(300),
        timeout: Duration::from_millis(600),
        retry: Backoff::new(Duration::from_millis(50), Duration::from_millis(200)),
        ..JwksSettings::new(url.parse().unwrap())
    }
}

fn settings(url: &str) -> AuthSettings {
    AuthSettings {
        jwks: Some(jwks_settings(url)),
        ..AuthSettings::default()
    }
}

fn authenticator(settings: &AuthSettings) -> Arc<Authenticator> {
    slotcast_test_support::init_tracing();
    Authenticator::new(SECRET, settings).unwrap()
}

/// Fetches the keys in the background until the returned token is dropped.
fn keep_fresh(auth: &Arc<Authenticator>) -> tokio_util::sync::DropGuard {
    let stop = CancellationToken::new();
    tokio::spawn(auth.clone().keep_keys_fresh(stop.clone()));
    stop.drop_guard()
}

fn claims(sub: impl Into<Value>, role: &str) -> Value {
    json!({"sub": sub.into(), "role": role, "exp": chrono::Utc::now().timestamp() + 600})
}

#[tokio::test]
async fn an_rs256_and_an_es256_token_of_the_provider_are_accepted() {
    let rsa = &rsa_key();
    let ec = SigningKey::es256("ec-1");
    let provider = JwksServer::start(&[rsa, &ec]).await.unwrap();
    let auth = authenticator(&settings(&provider.url()));
    let (staff, patient) = (Uuid::now_v7(), Uuid::now_v7());

    let by_rsa = auth
        .verify(&rsa.sign(&claims(staff.to_string(), "staff")))
        .await;
    let by_ec = auth
        .verify(&ec.sign(&claims(patient.to_string(), "patient")))
        .await;

    let by_rsa = by_rsa.unwrap();
    assert_eq!((by_rsa.sub, by_rsa.role), (staff, Role::Staff));
    let by_ec = by_ec.unwrap();
    assert_eq!((by_ec.sub, by_ec.role), (patient, Role::Patient));
    assert_eq!(
        provider.fetches(),
        1,
        "the second token used the cached set"
    );
}

#[tokio::test]
async fn hs256_tokens_stay_accepted_beside_the_key_set_and_never_meet_its_keys() {
    let ec = SigningKey::es256("ec-1");
    let provider = JwksServer::start(&[rsa_key(), &ec]).await.unwrap();
    let auth = authenticator(&settings(&provider.url()));
    let id = Uuid::now_v7();

    let minted = slotcast_kit::auth::mint(SECRET, id, Role::Staff, chrono::Duration::minutes(5));
    assert_eq!(auth.verify(&minted.unwrap()).await.unwrap().sub, id);

    // The classic confusion: HS256 signed with a public key the attacker can read.
    let public = serde_json::to_vec(&rsa_key().public_jwk()).unwrap();
    for kid in ["rsa-1", "ec-1"] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.to_owned());
        let forged = jsonwebtoken::encode(
            &header,
            &claims(id.to_string(), "staff"),
            &EncodingKey::from_secret(&public),
        )
        .unwrap();
        assert!(matches!(
            auth.verify(&forged).await,
            Err(AuthError::BadSignature)
        ));
    }
    assert_eq!(
        provider.fetches(),
        0,
        "HS256 tokens never touch the key set"
    );
}

#[tokio::test]
async fn a_token_whose_alg_is_not_its_keys_or_is_none_is_refused() {
    let ec = SigningKey::es256("ec-1");
    let provider = JwksServer::start(&[rsa_key(), &ec]).await.unwrap();
    let auth = authenticator(&settings(&provider.url()));
    let token = claims(Uuid::now_v7().to_string(), "staff");

    // An RSA-signed token that names the EC key's kid.
    let mismatched = rsa_key().with_kid("ec-1").sign(&token);
    assert!(matches!(
        auth.verify(&mismatched).await,
        Err(AuthError::AlgorithmMismatch)
    ));
    let b64 = |v: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": "ec-1"})),
        b64(&token)
    );
    assert!(matches!(
        auth.verify(&unsigned).await,
        Err(AuthError::Malformed)
    ));
    let no_kid = format!("{}.{}.c2ln", b64(&json!({"alg": "ES256"})), b64(&token));
    assert!(matches!(
        auth.verify(&no_kid).await,
        Err(AuthError::MissingKid)
    ));
    let hs384 = format!("{}.{}.c2ln", b64(&json!({"alg": "HS384"})), b64(&token));
    assert!(matches!(
        auth.verify(&hs384).await,
        Err(AuthError::UnsupportedAlgorithm(Algorithm::HS384))
    ));
}

#[tokio::test]
async fn a_token_signed_by_a_key_not_in_the_set_is_refused() {
    let published = SigningKey::es256("ec-1");
    let provider = JwksServer::start(&[&published]).await.unwrap();
    let auth = authenticator(&settings(&provider.url()));
    let impostor = SigningKey::es256("ec-1");

    let forged = auth
        .verify(&impostor.sign(&claims(Uuid::now_v7().to_string(), "staff")))
        .await;

    assert!(matches!(forged, Err(AuthError::BadSignature)), "{forged:?}");
}

#[tokio::test]
async fn a_rotated_key_set_is_fetched_when_a_token_with_a_new_kid_arrives() {
    let (old, new) = (SigningKey::es256("2026-01"), SigningKey::es256("2026-02"));
    let provider = JwksServer::start(&[&old]).await.unwrap();
    let auth = authenticator(&settings(&provider.url()));
    let token = claims(Uuid::now_v7().to_string(), "practitioner");
    auth.verify(&old.sign(&token)).await.unwrap();

    provider.publish(&[&new]);
    tokio::time::sleep(MIN_INTERVAL).await;
    let rotated = auth.verify(&new.sign(&token)).await;

    assert_eq!(rotated.unwrap().role, Role::Practitioner);
    assert_eq!(provider.fetches(), 2);
    assert!(matches!(
        auth.verify(&old.sign(&token)).await,
        Err(AuthError::UnknownKid)
    ));
}

#[tokio::test]
async fn a_kid_still_unknown_after_a_refresh_is_refused() {
    let key = SigningKey::es256("ec-1");
    let provider = JwksServer::start(&[&key]).await.unwrap();
    let auth = authenticator(&settings(&provider.url()));

    let unknown = auth
        .verify(
            &key.with_kid("nobody-published-this")
                .sign(&claims(Uuid::now_v7().to_string(), "staff")),
        )
        .await;

    assert!(matches!(unknown, Err(AuthError::UnknownKid)), "{unknown:?}");
    assert_eq!(provider.fetches(), 1, "the unknown kid fetched the set");
}

#[tokio::test]
async fn unknown_kids_fetch_the_set_at_most_once_per_interval() {
    let key = SigningKey::es256("ec-1");
    let provider = JwksServer::start(&[&key]).await.unwrap();
    let auth = authenticator(&settings(&provider.url()));
    let token = claims(Uuid::now_v7().to_string(), "staff");
    auth.verify(&key.sign(&token)).await.unwrap();
    tokio::time::sleep(MIN_INTERVAL).await;

    let flood = (0..50).map(|i| {
        let (auth, forged) = (
            auth.clone(),
            key.with_kid(&format!("made-up-{i}")).sign(&token),
        );
        async move { auth.verify(&forged).await }
    });
    let refused = futures::future::join_all(flood).await;

    assert!(
        refused
            .iter()
            .all(|r| matches!(r, Err(AuthError::UnknownKid)))
    );
    assert_eq!(provider.fetches(), 2, "one fetch for fifty unknown kids");
    tokio::time::sleep(MIN_INTERVAL).await;
    let again = auth
        .verify(&key.with_kid("made-up-again").sign(&token))
        .await;
    assert!(matches!(again, Err(AuthError::UnknownKid)));
    assert_eq!(provider.fetches(), 3, "the next interval allows one more");
}

#[tokio::test]
async fn a_provider_down_at_start_gives_401_until_it_comes_up() {
    let key = SigningKey::es256("ec-1");
    let mut provider = JwksServer::down(&[&key]).unwrap();
    let auth = authenticator(&settings(&provider.url()));
    let token = key.sign(&claims(Uuid::now_v7().to_string(), "staff"));

    let while_down = auth.verify(&token).await;
    assert!(
        matches!(while_down, Err(AuthError::KeysUnavailable)),
        "{while_down:?}"
    );
    provider.resume().await.unwrap();
    tokio::time::sleep(MIN_INTERVAL).await;

    assert_eq!(auth.verify(&token).await.unwrap().role, Role::Staff);
}

#[tokio::test]
async fn the_background_refresh_retries_a_provider_down_at_start_with_backoff() {
    let key = SigningKey::es256("ec-1");
    let mut provider = JwksServer::down(&[&key]).unwrap();
    let mut settings = settings(&provider.url());
    // Only the background task may fetch here.
    settings.jwks.as_mut().unwrap().min_refresh_interval = Duration::from_secs(3600);
    let auth = authenticator(&settings);
    let _refreshing = keep_fresh(&auth);
    let token = key.sign(&claims(Uuid::now_v7().to_string(), "staff"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(
        auth.verify(&token).await,
        Err(AuthError::KeysUnavailable)
    ));

    provider.resume().await.unwrap();

    eventually(
        Duration::from_secs(5),
        "the keys fetched once the provider is up",
        || {
            let auth = auth.clone();
            let token = token.clone();
            async move { auth.verify(&token).await.ok() }
        },
    )
    .await;
    assert_eq!(provider.fetches(), 1);
}

#[tokio::test]
async fn cached_keys_keep_working_while_the_provider_is_down() {
    let key = SigningKey::es256("ec-1");
    let mut provider = JwksServer::start(&[&key]).await.unwrap();
    let mut settings = settings(&provider.url());
    settings.jwks.as_mut().unwrap().refresh_every = Duration::from_millis(100);
    let auth = authenticator(&settings);
    let _refreshing = keep_fresh(&auth);
    let token = key.sign(&claims(Uuid::now_v7().to_string(), "staff"));
    auth.verify(&token).await.unwrap();

    provider.stop().await;
    // Several background refreshes fail meanwhile.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let unknown = auth
        .verify(
            &key.with_kid("new")
                .sign(&claims(Uuid::now_v7().to_string(), "staff")),
        )
        .await;

    assert!(matches!(unknown, Err(AuthError::UnknownKid)), "{unknown:?}");
    assert_eq!(auth.verify(&token).await.unwrap().role, Role::Staff);
}

#[tokio::test]
async fn a_key_dropped_from_the_set_is_refused_after_the_background_refresh() {
    let (old, new) = (SigningKey::es256("old"), SigningKey::es256("new"));
    let provider = JwksServer::start(&[&old, &new]).await.unwrap();
    let mut settings = settings(&provider.url());
    let jwks = settings.jwks.as_mut().unwrap();
    jwks.refresh_every = Duration::from_millis(100);
    jwks.min_refresh_interval = Duration::from_secs(3600);
    let auth = authenticator(&settings);
    let _refreshing = keep_fresh(&auth);
    let token = old.sign(&claims(Uuid::now_v7().to_string(), "staff"));
    eventually(Duration::from_secs(5), "the first fetch", || {
        let (auth, token) = (auth.clone(), token.clone());
        async move { auth.verify(&token).await.ok() }
    })
    .await;

    provider.publish(&[&new]);

    eventually(Duration::from_secs(5), "the dropped key refused", || {
        let (auth, token) = (auth.clone(), token.clone());
        async move { matches!(auth.verify(&token).await, Err(AuthError::UnknownKid)).then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn a_provider_that_never_answers_is_given_up_on_at_the_timeout() {
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let auth = authenticator(&settings(&url));
    let token = SigningKey::es256("ec-1").sign(&claims(Uuid::now_v7().to_string(), "staff"));

    let started = std::time::Instant::now();
    let refused = auth.verify(&token).await;

    assert!(
        matches!(refused, Err(AuthError::KeysUnavailable)),
        "{refused:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    held.abort();
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let key = SigningKey::es256("ec-1");
    let provider = JwksServer::start(&[&key]).await.unwrap();
    let auth = authenticator(&AuthSettings {
        issuer: Some("https://idp.example/realms/clinic".to_owned()),
        audience: Some("slotcast".to_owned()),
        ..settings(&provider.url())
    });
    let with = |extra: Value| {
        let mut c = claims(Uuid::now_v7().to_string(), "staff");
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        key.sign(&c)
    };

    let good =
        with(json!({"iss": "https://idp.example/realms/clinic", "aud": ["account", "slotcast"]}));
    let other_issuer = with(json!({"iss": "https://evil.example/", "aud": "slotcast"}));
    let other_audience =
        with(json!({"iss": "https://idp.example/realms/clinic", "aud": "account"}));
    let no_issuer = with(json!({"aud": "slotcast"}));
    let no_audience = with(json!({"iss": "https://idp.example/realms/clinic"}));

    assert_eq!(auth.verify(&good).await.unwrap().role, Role::Staff);
    assert!(matches!(
        auth.verify(&other_issuer).await,
        Err(AuthError::WrongIssuer)
    ));
    assert!(matches!(
        auth.verify(&other_audience).await,
        Err(AuthError::WrongAudience)
    ));
    for (missing, claim) in [(no_issuer, "iss"), (no_audience, "aud")] {
        let refused = auth.verify(&missing).await;
        assert!(
            matches!(&refused, Err(AuthError::MissingClaim(c)) if c == claim),
            "{refused:?}"
        );
    }
}

#[tokio::test]
async fn the_role_and_the_subject_come_from_the_configured_claims() {
    let key = SigningKey::es256("ec-1");
    let provider = JwksServer::start(&[&key]).await.unwrap();
    let auth = authenticator(&AuthSettings {
        role_claim: "realm_access.roles".parse().unwrap(),
        subject_claim: "slotcast_id".parse().unwrap(),
        ..settings(&provider.url())
    });
    let id = Uuid::now_v7();
    let exp = chrono::Utc::now().timestamp() + 600;
    let token = |c: Value| key.sign(&c);

    let keycloak = token(json!({
        "sub": "f81d4fae-not-ours", "slotcast_id": id, "exp": exp,
        "realm_access": {"roles": ["offline_access", "practitioner", "uma_authorization"]},
    }));
    let caller = auth.verify(&keycloak).await.unwrap();
    assert_eq!((caller.sub, caller.role), (id, Role::Practitioner));

    let several = token(
        json!({"slotcast_id": id, "exp": exp, "realm_access": {"roles": ["patient", "staff"]}}),
    );
    assert_eq!(auth.verify(&several).await.unwrap().role, Role::Staff);

    let top_level_only = token(json!({"slotcast_id": id, "exp": exp, "role": "staff"}));
    assert!(matches!(
        auth.verify(&top_level_only).await,
        Err(AuthError::NoRole { .. })
    ));

    let opaque_patient = token(
        json!({"slotcast_id": "auth0|123", "exp": exp, "realm_access": {"roles": ["patient"]}}),
    );
    assert!(matches!(
        auth.verify(&opaque_patient).await,
        Err(AuthError::SubjectNotAnId { .. })
    ));
    let no_subject = token(json!({"sub": id, "exp": exp, "realm_access": {"roles": ["staff"]}}));
    assert!(matches!(
        auth.verify(&no_subject).await,
        Err(AuthError::NoSubject { .. })
    ));
}
