//! The confirmation written with each booking, move and cancellation, and the links it holds:
//! the appointment's page (a GET never cancels, a POST does) and its calendar entry.

use std::time::Duration;

use async_nats::jetstream::consumer::pull;
use futures::StreamExt;
use serde_json::Value;
use slotcast_links::OfferSigner;
use uuid::Uuid;

use crate::helpers::{PUBLIC_BASE_URL, SECRET, TestApp, assert_problem, id_of, spawn_app};

/// The confirmations written so far, waiting up to 10 s for at least `n`, each checked against
/// its schema.
async fn confirmations(app: &TestApp, n: usize) -> Vec<Value> {
    let stream = app.js.get_stream("SLOTCAST_NOTIFY").await.unwrap();
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: "slotcast.notify.appointment".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while events.len() < n {
        let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, messages.next()).await else {
            break;
        };
        let value: Value = serde_json::from_slice(&m.payload).unwrap();
        slotcast_contract::validate_event("slotcast.notify.appointment", &value).unwrap();
        m.ack().await.unwrap();
        events.push(value);
    }
    events
}

/// The path of a link of the test app (its public address is not where it listens).
fn path_of(url: &str) -> String {
    url.strip_prefix(PUBLIC_BASE_URL)
        .expect("a link of this app")
        .to_owned()
}

async fn booked(app: &TestApp) -> (Uuid, Uuid) {
    let dr = app.create_practitioner().await;
    let patient = app.create_patient("Ada").await;
    let slot = app.create_slots(dr, &[(30, 31)]).await[0];
    let res = app.book(patient, slot).await;
    assert_eq!(res.status(), 201);
    (id_of(res).await, patient)
}

#[tokio::test]
async fn a_booking_and_its_cancellation_are_confirmed_with_links_to_the_same_appointment() {
    let app = spawn_app().await;
    let (appointment, patient) = booked(&app).await;
    let first = confirmations(&app, 1).await;
    assert_eq!(first.len(), 1);
    let data = &first[0]["data"];
    assert_eq!(data["kind"], "booked");
    assert_eq!(data["sequence"], 0);
    assert_eq!(data["appointment_id"], appointment.to_string());
    assert_eq!(data["patient"]["id"], patient.to_string());
    assert_eq!(data["channels"]["email"], true);
    assert_eq!(first[0]["id"], data["confirmation_id"]);
    let manage = path_of(data["manage_url"].as_str().unwrap());

    // Reading the page changes nothing.
    let res = app.get(&manage, None).await;
    assert_eq!(res.status(), 200);
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["status"], "booked");
    assert_eq!(view["sequence"], 0);
    assert!(view["cancel_url"].is_string(), "{view}");
    let page = app.page(&manage).await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sha256-")
    );
    let ics = app
        .get(&path_of(data["calendar_url"].as_str().unwrap()), None)
        .await;
    assert_eq!(ics.status(), 200);
    let text = ics.text().await.unwrap();
    assert!(
        text.contains(&format!("UID:{appointment}@slotcast")),
        "{text}"
    );
    assert!(text.contains("SEQUENCE:0"), "{text}");

    // Cancelling through the API confirms it with the next sequence.
    let res = app
        .post(
            &format!("/v1/appointments/{appointment}/cancel"),
            Some(&app.staff),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let both = confirmations(&app, 2).await;
    assert_eq!(both.len(), 2);
    assert_eq!(both[1]["data"]["kind"], "cancelled");
    assert_eq!(both[1]["data"]["sequence"], 1);
    assert_eq!(both[1]["data"]["appointment_id"], appointment.to_string());
    let view: Value = app.get(&manage, None).await.json().await.unwrap();
    assert_eq!(view["status"], "cancelled");
    assert!(view.get("cancel_url").is_none(), "{view}");
    let res = app
        .post(&format!("{manage}/cancel"), None, Value::Null)
        .await;
    assert_eq!(res.status(), 200, "cancelling again changes nothing");
    assert_eq!(confirmations(&app, 3).await.len(), 2);
}

#[tokio::test]
async fn a_bad_expired_or_someone_elses_appointment_link_is_a_4xx_never_a_5xx() {
    let app = spawn_app().await;
    let (appointment, patient) = booked(&app).await;
    let signer = OfferSigner::new(SECRET);
    let long_ago = chrono::Utc::now() - chrono::Duration::days(60);
    let expired = signer
        .sign_appointment(appointment, patient, long_ago)
        .unwrap();
    let in_a_day = chrono::Utc::now() + chrono::Duration::days(1);
    let someone_else = signer
        .sign_appointment(appointment, Uuid::now_v7(), in_a_day)
        .unwrap();
    let unknown = signer
        .sign_appointment(Uuid::now_v7(), patient, in_a_day)
        .unwrap();
    let offer_token = signer
        .sign(
            Uuid::now_v7(),
            patient,
            Uuid::now_v7(),
            &[Uuid::now_v7()],
            in_a_day,
        )
        .unwrap();
    for (token, status) in [
        ("not-a-token".to_owned(), 401),
        (offer_token, 401),
        (expired, 410),
        (someone_else, 404),
        (unknown, 404),
    ] {
        let base = format!("/v1/appointment-links/{token}");
        assert_problem(app.get(&base, None).await, status).await;
        assert_problem(app.get(&format!("{base}/calendar.ics"), None).await, status).await;
        assert_problem(
            app.post(&format!("{base}/cancel"), None, Value::Null).await,
            status,
        )
        .await;
        let page = app.page(&base).await;
        assert_eq!(page.status(), status);
        assert!(
            page.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    let view: Value = app
        .get(&format!("/v1/appointments/{appointment}"), Some(&app.staff))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["status"], "booked");
}
