//! Notification preferences: through the API, the preferences link and RFC 8058 one-click.

use serde_json::{Value, json};
use slotcast_kit::auth::Role;
use slotcast_links::OfferSigner;

use crate::helpers::{SECRET, assert_problem, spawn_app, token};

#[tokio::test]
async fn preferences_are_read_and_changed_by_that_patient_or_staff_only() {
    let app = spawn_app().await;
    let (alice, bob) = (
        app.create_patient("Alice").await,
        app.create_patient("Bob").await,
    );
    let path = format!("/v1/patients/{alice}/preferences");
    let as_alice = token(alice, Role::Patient);
    let as_bob = token(bob, Role::Patient);
    let prefs: Value = app.get(&path, Some(&as_alice)).await.json().await.unwrap();
    assert_eq!(
        (prefs["email"].as_bool(), prefs["inapp"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(prefs["patient_id"], alice.to_string());
    assert!(prefs["updated_at"].is_string());
    assert_problem(app.get(&path, Some(&as_bob)).await, 403).await;
    assert_problem(
        app.put(&path, Some(&as_bob), json!({"email": false})).await,
        403,
    )
    .await;
    assert_problem(
        app.put(&path, Some(&as_alice), json!({"email": "no"}))
            .await,
        422,
    )
    .await;

    for _ in 0..2 {
        let res = app
            .put(&path, Some(&as_alice), json!({"inapp": false}))
            .await;
        assert_eq!(res.status(), 200);
        let prefs: Value = res.json().await.unwrap();
        assert_eq!(
            (prefs["email"].as_bool(), prefs["inapp"].as_bool()),
            (Some(true), Some(false))
        );
    }
    let res = app
        .put(
            &path,
            Some(&app.staff),
            json!({"inapp": true, "email": false}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let changed = app
        .events("slotcast.scheduling.patient.preferences_changed", 3)
        .await;
    assert_eq!(changed.len(), 2, "only changes are published");
    assert_eq!(changed[0]["data"]["via"], "api");
    assert_eq!(changed[0]["data"]["inapp"], false);
    assert_eq!(changed[1]["data"]["email"], false);
}

#[tokio::test]
async fn one_click_unsubscribe_works_without_login_and_a_get_changes_nothing() {
    let app = spawn_app().await;
    let alice = app.create_patient("Alice").await;
    let link = OfferSigner::new(SECRET).sign_preferences(alice).unwrap();
    let url = format!("{}/v1/unsubscribe/{link}", app.base);
    let prefs = || async {
        let v: Value = app
            .get(
                &format!("/v1/patients/{alice}/preferences"),
                Some(&app.staff),
            )
            .await
            .json()
            .await
            .unwrap();
        v["email"].as_bool().unwrap()
    };

    // What a mail scanner does: follow the link. It gets a page with a button, nothing changes.
    let res = app
        .client
        .get(&url)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"method="post""#), "{html}");
    assert!(
        !html.contains("Alice") && !html.contains("alice@"),
        "no personal data: {html}"
    );
    assert!(prefs().await, "a GET changes nothing");

    // What a mail client does (RFC 8058): POST the one-click body, no Authorization.
    let res = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(!prefs().await);
    // Again, with an empty body: still 200, nothing more published.
    let res = app.client.post(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (body["email"].as_bool(), body["inapp"].as_bool()),
        (Some(false), Some(true))
    );
    let changed = app
        .events("slotcast.scheduling.patient.preferences_changed", 2)
        .await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["data"]["via"], "one_click");
    assert_eq!(changed[0]["data"]["email"], false);
    assert_eq!(changed[0]["data"]["patient_id"], alice.to_string());

    // Tampered, or another kind of token: 401, on every route.
    let mut tampered = link.clone();
    tampered.insert(tampered.len() - 4, 'x');
    let session = token(alice, Role::Patient);
    for bad in [tampered, session] {
        assert_problem(
            app.post(&format!("/v1/unsubscribe/{bad}"), None, json!({}))
                .await,
            401,
        )
        .await;
        assert_problem(app.get(&format!("/v1/unsubscribe/{bad}"), None).await, 401).await;
        assert_problem(app.get(&format!("/v1/preferences/{bad}"), None).await, 401).await;
    }
}

#[tokio::test]
async fn the_preferences_link_shows_a_form_that_saves() {
    let app = spawn_app().await;
    let alice = app.create_patient("Alice").await;
    let link = OfferSigner::new(SECRET).sign_preferences(alice).unwrap();
    let path = format!("/v1/preferences/{link}");
    let json: Value = app.get(&path, None).await.json().await.unwrap();
    assert_eq!(
        (json["email"].as_bool(), json["inapp"].as_bool()),
        (Some(true), Some(true))
    );

    let res = app.page(&path).await;
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"name="email" value="false""#), "{html}");
    assert!(!html.contains("Alice"));

    let res = app
        .client
        .post(format!("{}{path}", app.base))
        .header("accept", "text/html")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=true&inapp=false")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Saved"));
    let res = app.post(&path, None, json!({"email": false})).await;
    assert_eq!(res.status(), 200);
    let prefs: Value = res.json().await.unwrap();
    assert_eq!(
        (prefs["email"].as_bool(), prefs["inapp"].as_bool()),
        (Some(false), Some(false))
    );
    let changed = app
        .events("slotcast.scheduling.patient.preferences_changed", 2)
        .await;
    assert!(changed.iter().all(|e| e["data"]["via"] == "link"));
    assert_eq!(changed.len(), 2);
}

#[tokio::test]
async fn text_messages_need_a_number_and_turning_them_on_records_the_consent() {
    let app = spawn_app().await;
    let body =
        json!({"name": "Ada", "email": "ada@patients.example", "phone": "+33 6 12 34 56 78"});
    let ada = app.create_patient_with(body).await;
    let grace = app.create_patient("Grace").await;

    let path = format!("/v1/patients/{ada}/preferences");
    let as_ada = token(ada, Role::Patient);
    let prefs: Value = app.get(&path, Some(&as_ada)).await.json().await.unwrap();
    assert_eq!(prefs["sms"], false, "off until the patient consents");
    assert_eq!(prefs["has_phone"], true);
    assert_eq!(prefs["sms_consent"], Value::Null);
    let registered = app
        .events("slotcast.scheduling.patient.registered", 2)
        .await;
    assert!(
        registered
            .iter()
            .any(|e| e["data"]["phone"] == "+33612345678")
    );

    let before = chrono::Utc::now();
    let res = app.put(&path, Some(&as_ada), json!({"sms": true})).await;
    assert_eq!(res.status(), 200);
    let prefs: Value = res.json().await.unwrap();
    assert_eq!(prefs["sms"], true);
    assert_eq!(prefs["sms_consent"]["via"], "api");
    let at: chrono::DateTime<chrono::Utc> = prefs["sms_consent"]["at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(at >= before - chrono::Duration::seconds(1));

    // Turning them off keeps the record of the consent; the event says what changed.
    let res = app.put(&path, Some(&as_ada), json!({"sms": false})).await;
    let prefs: Value = res.json().await.unwrap();
    assert_eq!(prefs["sms"], false);
    assert_eq!(prefs["sms_consent"]["via"], "api");
    let changed = app
        .events("slotcast.scheduling.patient.preferences_changed", 2)
        .await;
    assert_eq!(changed.len(), 2);
    assert_eq!(changed[0]["data"]["sms"], true);
    assert_eq!(changed[1]["data"]["sms"], false);

    // Without a number there is nothing to text: refused, and nothing changes.
    let grace_path = format!("/v1/patients/{grace}/preferences");
    let problem = assert_problem(
        app.put(
            &grace_path,
            Some(&app.staff),
            json!({"sms": true, "email": false}),
        )
        .await,
        422,
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("phone"));
    let prefs: Value = app
        .get(&grace_path, Some(&app.staff))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (prefs["sms"].as_bool(), prefs["email"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(prefs["has_phone"], false);
}

#[tokio::test]
async fn the_preferences_page_offers_text_messages_only_to_a_patient_with_a_number() {
    let app = spawn_app().await;
    let body = json!({"name": "Ada", "email": "ada@patients.example", "phone": "+33612345678", "locale": "fr"});
    let ada = app.create_patient_with(body).await;
    let grace = app.create_patient("Grace").await;
    let signer = OfferSigner::new(SECRET);

    let grace_page = app
        .page(&format!(
            "/v1/preferences/{}",
            signer.sign_preferences(grace).unwrap()
        ))
        .await
        .text()
        .await
        .unwrap();
    assert!(!grace_page.contains(r#"name="sms""#), "{grace_page}");

    let path = format!("/v1/preferences/{}", signer.sign_preferences(ada).unwrap());
    let page = app.page(&path).await.text().await.unwrap();
    assert!(page.contains(r#"name="sms" value="true""#), "{page}");
    assert!(page.contains("j’accepte de recevoir des SMS"), "{page}");
    let res = app
        .client
        .post(format!("{}{path}", app.base))
        .header("accept", "text/html")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=true&inapp=true&sms=true")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let prefs: Value = app
        .get(&format!("/v1/patients/{ada}/preferences"), Some(&app.staff))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(prefs["sms"], true);
    assert_eq!(prefs["sms_consent"]["via"], "link");
}

#[tokio::test]
async fn a_stop_or_start_from_a_number_changes_every_patient_with_it_and_only_staff_may() {
    let app = spawn_app().await;
    let mut family = Vec::new();
    for (name, phone) in [
        ("Ada", "+33 6 12 34 56 78"),
        ("Tom", "+33612345678"),
        ("Eve", "+33698765432"),
    ] {
        let body =
            json!({"name": name, "email": format!("{name}@patients.example"), "phone": phone});
        let id = app.create_patient_with(body).await;
        family.push(id);
    }
    let (ada, tom, eve) = (family[0], family[1], family[2]);
    let stop = json!({"phone": "+33 6 12 34 56 78", "sms": false});
    assert_problem(
        app.put(
            "/v1/phone-preferences",
            Some(&token(ada, Role::Patient)),
            stop.clone(),
        )
        .await,
        403,
    )
    .await;

    // START from the number is consent for both patients who share it, and for no one else.
    let res = app
        .put(
            "/v1/phone-preferences",
            Some(&app.staff),
            json!({"phone": "+33612345678", "sms": true}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["changed"], 2);
    assert_eq!(answer["phone"], "+33612345678");
    for (who, texts) in [(ada, true), (tom, true), (eve, false)] {
        let prefs: Value = app
            .get(&format!("/v1/patients/{who}/preferences"), Some(&app.staff))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(prefs["sms"], texts, "{who}");
        if texts {
            assert_eq!(prefs["sms_consent"]["via"], "sms");
        }
    }
    // STOP turns them off; again, it changes nothing.
    for changed in [2, 0] {
        let res = app
            .put("/v1/phone-preferences", Some(&app.staff), stop.clone())
            .await;
        assert_eq!(res.json::<Value>().await.unwrap()["changed"], changed);
    }
    let events = app
        .events("slotcast.scheduling.patient.preferences_changed", 5)
        .await;
    assert_eq!(events.len(), 4);
    assert!(events.iter().all(|e| e["data"]["via"] == "api"));

    // A number nobody has changes nothing; one that is not a number is refused.
    let res = app
        .put(
            "/v1/phone-preferences",
            Some(&app.staff),
            json!({"phone": "+4915123456789", "sms": false}),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["patient_ids"], json!([]));
    assert_problem(
        app.put(
            "/v1/phone-preferences",
            Some(&app.staff),
            json!({"phone": "0612", "sms": false}),
        )
        .await,
        422,
    )
    .await;
}
