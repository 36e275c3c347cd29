//! The headers of the HTML pages (booking link, preferences, unsubscribe) and of the JSON API.

use chrono::{Duration, Utc};
use slotcast_links::OfferSigner;
use uuid::Uuid;

use crate::helpers::{SECRET, spawn_app};

#[tokio::test]
async fn every_page_has_a_strict_policy_no_referrer_and_no_cache_and_json_is_not_sniffed() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let alice = app.create_patient("Alice").await;
    let entry = app.joins(alice, practitioner).await;
    let slots = app.create_slots(practitioner, &[(30, 31)]).await;
    let signer = OfferSigner::new(SECRET);
    let offer = signer
        .sign(
            Uuid::now_v7(),
            alice,
            entry,
            &slots,
            Utc::now() + Duration::days(1),
        )
        .unwrap();
    let preferences = signer.sign_preferences(alice).unwrap();
    let pages = [
        format!("/v1/offers/{offer}"),
        format!("/v1/preferences/{preferences}"),
        format!("/v1/unsubscribe/{preferences}"),
        // An error is a page too, for a browser.
        "/v1/offers/not-a-token".to_owned(),
    ];
    for path in pages {
        let res = app.page(&path).await;
        let header = |name: &str| {
            res.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        assert!(header("content-type").starts_with("text/html"), "{path}");
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header("cache-control"), "no-store", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        // The page's own style is what the policy allows, so it still shows styled.
        let body = res.text().await.unwrap();
        let served = scheduling::pages::policy(&[&body]);
        let hash = served
            .split([' ', ';'])
            .find(|p| p.starts_with("'sha256-"))
            .unwrap();
        assert!(csp.contains(hash), "{path}: {hash} not in {csp}");
    }

    let json = app.get(&format!("/v1/offers/{offer}"), None).await;
    assert!(
        json.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(json.headers()["x-content-type-options"], "nosniff");
    assert!(json.headers().get("content-security-policy").is_none());
}
