//! Booking links: what a link shows, claiming from it, the race, single use, move-up.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use slotcast_kit::auth::Role;
use slotcast_links::OfferSigner;
use uuid::Uuid;

use crate::helpers::{PUBLIC_BASE_URL, SECRET, TestApp, assert_problem, spawn_app, token};

/// A link for `patient`'s waiting-list `entry` offering `slots`, signed as matching signs them.
fn link(patient: Uuid, entry: Uuid, slots: &[Uuid]) -> (Uuid, String) {
    let nid = Uuid::now_v7();
    let token = OfferSigner::new(SECRET)
        .sign(nid, patient, entry, slots, Utc::now() + Duration::days(3))
        .unwrap();
    (nid, token)
}

impl TestApp {
    async fn claim(&self, token: &str, slot: Uuid) -> reqwest::Response {
        self.post(
            &format!("/v1/offers/{token}/claim"),
            None,
            json!({ "slot_id": slot }),
        )
        .await
    }

    async fn offer(&self, token: &str) -> Value {
        let res = self.get(&format!("/v1/offers/{token}"), None).await;
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }
}

fn statuses(offer: &Value) -> Vec<(String, String)> {
    offer["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["slot_id"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_link_books_in_one_claim_fulfils_the_entry_and_books_only_once() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let alice = app.create_patient("Alice").await;
    let entry = app
        .post(
            "/v1/waitlist",
            Some(&app.staff),
            json!({"patient_id": alice, "practitioner_id": practitioner, "kind": "new"}),
        )
        .await;
    assert_eq!(entry.status(), 201);
    let entry = crate::helpers::id_of(entry).await;
    let slots = app.create_slots(practitioner, &[(30, 31), (50, 51)]).await;
    let (nid, token) = link(alice, entry, &slots);
    // A later batch, another link for the same entry.
    let later = app.create_slots(practitioner, &[(70, 71)]).await;
    let (_, second) = link(alice, entry, &later);

    let offer = app.offer(&token).await;
    assert_eq!(offer["notification_id"], nid.to_string());
    assert_eq!(offer["used"], false);
    assert_eq!(offer["practitioner"]["id"], practitioner.to_string());
    let claim_url = format!("{PUBLIC_BASE_URL}/v1/offers/{token}/claim");
    for s in offer["slots"].as_array().unwrap() {
        assert_eq!(s["status"], "available");
        assert_eq!(s["claim_url"], claim_url.as_str());
    }
    assert!(
        offer.get("patient").is_none() && !offer.to_string().contains("Alice"),
        "a link shows no patient data: {offer}"
    );

    let res = app.claim(&token, slots[0]).await;
    assert_eq!(res.status(), 201);
    let booked: Value = res.json().await.unwrap();
    assert_eq!(booked["patient_id"], alice.to_string());
    assert_eq!(booked["slot_id"], slots[0].to_string());
    assert_eq!(booked["notification_id"], nid.to_string());

    let offer = app.offer(&token).await;
    assert_eq!(offer["used"], true);
    assert_eq!(offer["appointment_id"], booked["id"]);
    assert_eq!(
        statuses(&offer),
        [
            (slots[0].to_string(), "yours".to_owned()),
            (slots[1].to_string(), "available".to_owned())
        ]
    );
    assert!(
        offer["slots"][1].get("claim_url").is_none(),
        "a used link offers no claim"
    );

    // Re-use, for the other slot or the same one: 410, nothing booked.
    for slot in [slots[1], slots[0]] {
        let body = assert_problem(app.claim(&token, slot).await, 410).await;
        assert_eq!(body["appointment_id"], booked["id"]);
    }
    // The entry is fulfilled: the other link books nothing more.
    assert_problem(app.claim(&second, later[0]).await, 410).await;
    let entries: Value = app
        .get(
            &format!("/v1/waitlist?patient_id={alice}&status=fulfilled"),
            Some(&app.staff),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(entries["entries"].as_array().unwrap().len(), 1);

    let claimed = app.events("slotcast.scheduling.offer.claimed", 1).await;
    assert_eq!(claimed[0]["data"]["notification_id"], nid.to_string());
    assert_eq!(claimed[0]["data"]["appointment_id"], booked["id"]);
    assert!(claimed[0]["data"]["moved_from_slot_id"].is_null());
    let booked_events = app.events("slotcast.scheduling.slot.booked", 2).await;
    assert_eq!(booked_events.len(), 1, "one booking, whatever the re-use");
}

#[tokio::test]
async fn many_concurrent_claims_on_one_slot_have_exactly_one_winner() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let slots = app.create_slots(practitioner, &[(30, 31), (50, 51)]).await;
    let mut links = Vec::new();
    for i in 0..24 {
        let patient = app.create_patient(&format!("P{i}")).await;
        let entry = app.joins(patient, practitioner).await;
        links.push((patient, link(patient, entry, &slots).1));
    }
    let claims = links.iter().map(|(_, token)| app.claim(token, slots[0]));
    let answers = futures::future::join_all(claims).await;
    let mut winners = Vec::new();
    let mut losers = 0;
    for (res, (patient, _)) in answers.into_iter().zip(&links) {
        match res.status().as_u16() {
            201 => winners.push(*patient),
            409 => {
                let body = assert_problem(res, 409).await;
                let open: Vec<&str> = body["other_slots"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["slot_id"].as_str().unwrap())
                    .collect();
                assert_eq!(open, [slots[1].to_string()], "the offer's slot still open");
                losers += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((winners.len(), losers), (1, 23));
    let booked = app.events("slotcast.scheduling.slot.booked", 2).await;
    assert_eq!(booked.len(), 1);
    assert_eq!(booked[0]["data"]["patient_id"], winners[0].to_string());
    let lost = app.events("slotcast.scheduling.offer.lost", 23).await;
    assert_eq!(lost.len(), 23);
    assert!(lost.iter().all(|e| e["data"]["reason"] == "taken"));

    // A loser's link still books the offer's other slot.
    let loser = links.iter().find(|(p, _)| *p != winners[0]).unwrap();
    assert_eq!(app.claim(&loser.1, slots[1]).await.status(), 201);
}

#[tokio::test]
async fn tampered_expired_and_foreign_links_are_refused() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let alice = app.create_patient("Alice").await;
    let entry = app.joins(alice, practitioner).await;
    let slots = app.create_slots(practitioner, &[(30, 31), (50, 51)]).await;
    let (_, token) = link(alice, entry, &slots[..1]);

    let mut tampered = token.clone();
    tampered.insert(tampered.len() - 5, 'x');
    assert_problem(app.get(&format!("/v1/offers/{tampered}"), None).await, 401).await;
    assert_problem(app.claim(&tampered, slots[0]).await, 401).await;
    let other_key = OfferSigner::new("another-secret")
        .sign(
            Uuid::now_v7(),
            alice,
            Uuid::now_v7(),
            &slots,
            Utc::now() + Duration::days(1),
        )
        .unwrap();
    assert_problem(app.claim(&other_key, slots[0]).await, 401).await;
    let session = token_for_alice(alice);
    assert_problem(app.claim(&session, slots[0]).await, 401).await;
    assert_problem(app.claim("not-a-token", slots[0]).await, 401).await;

    let expired = OfferSigner::new(SECRET)
        .sign(
            Uuid::now_v7(),
            alice,
            Uuid::now_v7(),
            &slots,
            Utc::now() - Duration::minutes(1),
        )
        .unwrap();
    assert_problem(app.get(&format!("/v1/offers/{expired}"), None).await, 410).await;
    assert_problem(app.claim(&expired, slots[0]).await, 410).await;

    // A slot the link does not offer, and bodies that are not a claim.
    assert_problem(app.claim(&token, slots[1]).await, 422).await;
    let path = format!("/v1/offers/{token}/claim");
    assert_problem(app.post(&path, None, json!({"slot": slots[0]})).await, 422).await;
    assert_problem(app.post(&path, None, json!({"slot_id": "nope"})).await, 422).await;
    let res = app
        .client
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_problem(res, 400).await;

    // Nothing of the above booked anything: the slot is still there for the link.
    assert_eq!(app.claim(&token, slots[0]).await.status(), 201);
}

fn token_for_alice(alice: Uuid) -> String {
    token(alice, Role::Patient)
}

#[tokio::test]
async fn moving_up_is_one_swap_that_frees_the_old_slot() {
    let app = spawn_app().await;
    let practitioner = app.create_practitioner().await;
    let bob = app.create_patient("Bob").await;
    let late = app.create_slots(practitioner, &[(200, 201)]).await[0];
    let res = app.book(bob, late).await;
    assert_eq!(res.status(), 201);
    let appointment: Value = res.json().await.unwrap();
    let res = app
        .post(
            "/v1/waitlist",
            Some(&app.staff),
            json!({"patient_id": bob, "practitioner_id": practitioner, "kind": "move_up",
                   "appointment_id": appointment["id"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let entry: Value = res.json().await.unwrap();
    let slots = app
        .create_slots(practitioner, &[(30, 31), (300, 301)])
        .await;
    let (early, later) = (slots[0], slots[1]);

    let entry_id: Uuid = entry["id"].as_str().unwrap().parse().unwrap();
    // A time later than the one held is not a move up.
    let (_, token) = link(bob, entry_id, &[later]);
    let body = assert_problem(app.claim(&token, later).await, 409).await;
    assert!(body["detail"].as_str().unwrap().contains("earlier"));

    // Two notifications for the same entry, claimed at the same moment: one moves the
    // appointment, the other finds the entry fulfilled. Never a second appointment.
    let also_early = app.create_slots(practitioner, &[(40, 41)]).await[0];
    let (nid_a, token_a) = link(bob, entry_id, &[early]);
    let (nid_b, token_b) = link(bob, entry_id, &[also_early]);
    let (a, b) = tokio::join!(app.claim(&token_a, early), app.claim(&token_b, also_early));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [201, 410]);
    let (res, early, unused, nid) = if a.status() == 201 {
        (a, early, also_early, nid_a)
    } else {
        (b, also_early, early, nid_b)
    };
    let moved: Value = res.json().await.unwrap();
    assert_eq!(moved["id"], appointment["id"], "the same appointment moved");
    assert_eq!(moved["slot_id"], early.to_string());
    assert_eq!(moved["moved_from_slot_id"], late.to_string());

    let listed: Value = app
        .get(
            &format!("/v1/practitioners/{practitioner}/slots"),
            Some(&app.staff),
        )
        .await
        .json()
        .await
        .unwrap();
    let status_of = |id: Uuid| {
        listed["slots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id.to_string())
            .map(|s| s["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(status_of(early).as_deref(), Some("booked"));
    assert_eq!(status_of(unused).as_deref(), Some("available"));
    assert_eq!(status_of(late).as_deref(), Some("available"));

    let released = app.events("slotcast.scheduling.slot.released", 1).await;
    assert_eq!(released[0]["data"]["slot_id"], late.to_string());
    assert_eq!(released[0]["data"]["reason"], "moved_up");
    assert_eq!(released[0]["data"]["released_by"], bob.to_string());
    let moved_events = app.events("slotcast.scheduling.appointment.moved", 1).await;
    assert_eq!(moved_events[0]["data"]["from_slot_id"], late.to_string());
    assert_eq!(moved_events[0]["data"]["to_slot_id"], early.to_string());
    let closed = app.events("slotcast.scheduling.waitlist.closed", 1).await;
    assert_eq!(closed[0]["data"]["entry_id"], entry["id"]);
    assert_eq!(closed[0]["data"]["reason"], "fulfilled");
    let claimed = app.events("slotcast.scheduling.offer.claimed", 1).await;
    assert_eq!(claimed[0]["data"]["notification_id"], nid.to_string());
    assert_eq!(claimed[0]["data"]["moved_from_slot_id"], late.to_string());

    // The freed slot can be booked by someone else at once.
    let carol = app.create_patient("Carol").await;
    assert_eq!(app.book(carol, late).await.status(), 201);
}

#[tokio::test]
async fn a_browser_gets_a_page_whose_form_books() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/v1/practitioners",
            Some(&app.staff),
            json!({"name": "Dr <b>Who</b>", "specialty": "GP", "timezone": "Europe/Paris",
                   "consultation_fee": 25, "currency": "EUR"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let practitioner = crate::helpers::id_of(res).await;
    let alice = app.create_patient("Alice").await;
    let entry = app.joins(alice, practitioner).await;
    let slots = app.create_slots(practitioner, &[(30, 31), (50, 51)]).await;
    let (_, token) = link(alice, entry, &slots);
    let page = |path: String| {
        app.client
            .get(format!("{}{path}", app.base))
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .send()
    };
    let res = page(format!("/v1/offers/{token}?slot_id={}", slots[1]))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Dr &lt;b&gt;Who&lt;/b&gt;"),
        "escaped: {html}"
    );
    assert!(!html.contains("<b>Who"));
    assert!(html.contains(r#"name="viewport""#));
    assert!(html.contains("€25.00"), "{html}");
    assert_eq!(html.matches("<form").count(), 2);
    assert!(html.contains(&format!(r#"value="{}""#, slots[1])));
    assert!(
        html.find(&slots[1].to_string()) < html.find(&slots[0].to_string()),
        "the followed slot comes first"
    );

    let res = app
        .client
        .post(format!("{}/v1/offers/{token}/claim", app.base))
        .header("accept", "text/html")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("slot_id={}", slots[1]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let html = res.text().await.unwrap();
    assert!(html.contains("Booked"), "{html}");
    assert!(
        !html.contains("<form"),
        "a used link offers no more buttons"
    );

    // Errors are pages too, for a browser.
    let res = page(format!("/v1/offers/{token}x")).await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("not valid"));
}
