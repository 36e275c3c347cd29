//! Patients see their booking and preferences pages in their own language; the patient API
//! says which language a `locale` gets.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use slotcast_links::OfferSigner;
use uuid::Uuid;

use crate::helpers::{SECRET, TestApp, id_of, spawn_app};

impl TestApp {
    async fn create_patient_speaking(&self, name: &str, locale: &str) -> Value {
        let body = json!({"name": name, "email": format!("{}@patients.example", name.to_lowercase()), "locale": locale});
        let res = self.post("/v1/patients", Some(&self.staff), body).await;
        assert_eq!(res.status(), 201, "{locale}");
        res.json().await.unwrap()
    }
}

#[tokio::test]
async fn an_unsupported_locale_is_accepted_and_the_patient_says_which_language_it_gets() {
    let app = spawn_app().await;
    for (locale, effective) in [
        ("fr-CA", "fr"),
        ("de", "de"),
        ("es-MX", "es"),
        ("pt-BR", "en"),
        ("en-US", "en"),
    ] {
        let created = app.create_patient_speaking("Zoe", locale).await;
        assert_eq!(created["locale"], locale);
        assert_eq!(created["effective_locale"], effective, "{locale}");
        let id = created["id"].as_str().unwrap();
        let read: Value = app
            .get(&format!("/v1/patients/{id}"), Some(&app.staff))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(read["locale"], locale);
        assert_eq!(read["effective_locale"], effective, "{locale}");
    }
}

#[tokio::test]
async fn a_german_patient_gets_the_booking_page_in_german() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/v1/practitioners",
            Some(&app.staff),
            json!({"name": "Dr. Clara Weber", "specialty": "Allgemeinmedizin",
                   "timezone": "Europe/Berlin", "consultation_fee": 45, "currency": "EUR"}),
        )
        .await;
    let practitioner = id_of(res).await;
    let patient: Uuid = app.create_patient_speaking("Jonas", "de-DE").await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let entry = {
        let body = json!({"patient_id": patient, "practitioner_id": practitioner, "kind": "new"});
        id_of(app.post("/v1/waitlist", Some(&app.staff), body).await).await
    };
    // Saturday 7 December 2030, 10:00–10:30 in Berlin.
    let body = json!({"slots": [
        {"starts_at": "2030-12-07T09:00:00Z", "ends_at": "2030-12-07T09:30:00Z"},
        {"starts_at": "2030-12-07T10:00:00Z", "ends_at": "2030-12-07T10:30:00Z"},
    ]});
    let res = app
        .post(
            &format!("/v1/practitioners/{practitioner}/slots"),
            Some(&app.staff),
            body,
        )
        .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let slots: Vec<Uuid> = created["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().parse().unwrap())
        .collect();
    let token = OfferSigner::new(SECRET)
        .sign(
            Uuid::now_v7(),
            patient,
            entry,
            &slots,
            Utc::now() + Duration::days(3),
        )
        .unwrap();

    let html = app
        .page(&format!("/v1/offers/{token}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("<html lang=\"de\">"), "{html}");
    assert!(
        html.contains("<title>Termin bei Dr. Clara Weber</title>"),
        "{html}"
    );
    assert!(
        html.contains("Wählen Sie einen Termin, um ihn zu buchen."),
        "{html}"
    );
    assert!(
        html.contains("Samstag, 7. Dezember 2030, 10:00–10:30 Uhr"),
        "{html}"
    );
    assert!(html.contains("45,00\u{a0}€"), "{html}");
    assert!(html.contains(">Buchen</button>"), "{html}");
    assert!(html.contains("Zeitzone Europe/Berlin"), "{html}");
    assert!(!html.contains("Book"), "{html}");

    // The answer to the form, and a claim that lost, are German too.
    let form = |slot: Uuid| {
        app.client
            .post(format!("{}/v1/offers/{token}/claim", app.base))
            .header("accept", "text/html")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("slot_id={slot}"))
            .send()
    };
    let res = form(slots[0]).await.unwrap();
    assert_eq!(res.status(), 201);
    let html = res.text().await.unwrap();
    assert!(html.contains("Gebucht. Bis bald!"), "{html}");
    assert!(html.contains("Für Sie gebucht"), "{html}");
    let res = form(slots[1]).await.unwrap();
    assert_eq!(res.status(), 410);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Mit diesem Link wurde bereits ein Termin gebucht."),
        "{html}"
    );

    // A link that is not valid names no patient: the browser's language decides.
    let res = app
        .client
        .get(format!("{}/v1/offers/{token}x", app.base))
        .header("accept", "text/html")
        .header("accept-language", "de-CH,de;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let html = res.text().await.unwrap();
    assert!(html.contains("Dieser Buchungslink ist ungültig."), "{html}");
}

#[tokio::test]
async fn a_german_patient_gets_the_preferences_and_unsubscribe_pages_in_german() {
    let app = spawn_app().await;
    let patient: Uuid = app.create_patient_speaking("Jonas", "de").await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let link = OfferSigner::new(SECRET).sign_preferences(patient).unwrap();

    let html = app
        .page(&format!("/v1/preferences/{link}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("<html lang=\"de\">"), "{html}");
    assert!(
        html.contains("<h1>Einstellungen für Benachrichtigungen</h1>"),
        "{html}"
    );
    assert!(html.contains("<legend>E-Mails zu freien Terminen</legend>"));
    assert!(html.contains("> An</label>") && html.contains("> Aus</label>"));
    assert!(html.contains(">Speichern</button>"), "{html}");

    let html = app
        .page(&format!("/v1/unsubscribe/{link}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Möchten Sie keine E-Mails zu freien Terminen mehr erhalten?"),
        "{html}"
    );
    let res = app
        .client
        .post(format!("{}/v1/unsubscribe/{link}", app.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Abbestellt: Sie erhalten keine E-Mails zu freien Terminen mehr."),
        "{html}"
    );
}
