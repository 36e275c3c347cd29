//! Booking from the emailed link, end to end: the first claim wins, the others see the slot
//! gone, a move-up frees the old slot for the next in line, a cancellation re-offers its slot.

use std::time::Duration;

use chrono::{DateTime, Duration as Span, Utc};
use serde_json::{Value, json};
use slotcast_e2e::{Stack, token};
use slotcast_kit::auth::Role;
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(20);

/// `hours` hours after the top of the hour in which the tests started: the same instant however
/// often it is asked, even when a test runs across the top of an hour.
fn at(hours: i64) -> DateTime<Utc> {
    static TOP_OF_THE_HOUR: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let top = *TOP_OF_THE_HOUR.get_or_init(|| {
        let now = Utc::now().timestamp();
        now - now % 3600
    });
    DateTime::from_timestamp(top + hours * 3600, 0).unwrap()
}

async fn patient(stack: &Stack, name: &str) -> anyhow::Result<(Uuid, String)> {
    let email = format!("{}@patients.example", name.to_lowercase());
    let id = stack
        .create("/v1/patients", json!({"name": name, "email": email}))
        .await?;
    Ok((id, email))
}

async fn slots(stack: &Stack, practitioner: Uuid, hours: &[i64]) -> anyhow::Result<Vec<Uuid>> {
    let windows: Vec<Value> = hours
        .iter()
        .map(|h| json!({"starts_at": at(*h), "ends_at": at(*h) + Span::minutes(30)}))
        .collect();
    let (status, body) = stack
        .post(
            &format!("/v1/practitioners/{practitioner}/slots"),
            json!({ "slots": windows }),
        )
        .await?;
    anyhow::ensure!(status == 201, "{body}");
    Ok(body["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().parse().unwrap())
        .collect())
}

/// Waits until `address` has received `n` emails; returns the links of the newest.
async fn nth_mail(stack: &Stack, address: &str, n: usize) -> anyhow::Result<Vec<(String, Uuid)>> {
    stack
        .eventually(WITHIN, &format!("mail {n} to {address}"), || async {
            Ok(stack.links_mailed_to(address).len() >= n)
        })
        .await?;
    let mails = stack.links_mailed_to(address);
    anyhow::ensure!(
        mails.len() == n,
        "{address} got {} mails, not {n}",
        mails.len()
    );
    Ok(mails[n - 1].clone())
}

fn link_for(links: &[(String, Uuid)], slot: Uuid) -> String {
    links
        .iter()
        .find(|(_, s)| *s == slot)
        .map(|(t, _)| t.clone())
        .unwrap_or_else(|| panic!("no link for {slot} in {links:?}"))
}

/// The status the patient's feed shows for `slot` in every notification that offered it.
async fn feed_status(stack: &Stack, patient: Uuid, slot: Uuid) -> anyhow::Result<Vec<Value>> {
    Ok(stack
        .feed(patient)
        .await?
        .iter()
        .flat_map(|n| n["slots"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["slot_id"] == slot.to_string())
        .map(|s| s["available"].clone())
        .collect())
}

#[tokio::test]
async fn an_emailed_link_books_first_claim_wins_and_a_move_up_offers_the_old_slot_to_the_next()
-> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let dr = stack
        .create(
            "/v1/practitioners",
            json!({"name": "Dr Mary Jackson", "specialty": "GP", "timezone": "America/New_York"}),
        )
        .await?;
    // Bob holds an appointment at +200 h and wants an earlier one.
    let (bob, bob_mail) = patient(&stack, "Bob").await?;
    let late = slots(&stack, dr, &[200]).await?[0];
    let bob_appointment = stack
        .create(
            "/v1/appointments",
            json!({"patient_id": bob, "slot_id": late}),
        )
        .await?;
    wait(&stack, json!({"patient_id": bob, "practitioner_id": dr, "kind": "move_up", "appointment_id": bob_appointment})).await?;
    let (alice, alice_mail) = patient(&stack, "Alice").await?;
    let (carol, carol_mail) = patient(&stack, "Carol").await?;
    for p in [alice, carol] {
        wait(
            &stack,
            json!({"patient_id": p, "practitioner_id": dr, "kind": "new"}),
        )
        .await?;
    }

    let early = slots(&stack, dr, &[24]).await?[0];
    let bob_links = nth_mail(&stack, &bob_mail, 1).await?;
    let alice_links = nth_mail(&stack, &alice_mail, 1).await?;
    let carol_links = nth_mail(&stack, &carol_mail, 1).await?;

    // The link itself says what it offers, without a session.
    let res = stack
        .http
        .get(format!(
            "{}/v1/offers/{}",
            stack.scheduling,
            link_for(&bob_links, early)
        ))
        .header("accept", "application/json")
        .send()
        .await?;
    anyhow::ensure!(res.status() == 200, "offer: {}", res.status());
    let offer: Value = res.json().await?;
    assert_eq!(offer["slots"][0]["status"], "available");

    // Carol keeps her feed open.
    let mut carol_live = stack.feed_stream(carol).await?;

    // Bob moves up from his emailed link: one swap.
    let (status, moved) = stack.claim(&link_for(&bob_links, early), early).await?;
    assert_eq!(status, 201, "{moved}");
    assert_eq!(moved["id"], bob_appointment.to_string());
    assert_eq!(moved["moved_from_slot_id"], late.to_string());

    // Alice and Carol lose at once, and are told nothing else is open in that offer.
    let (alice_early, carol_early) = (link_for(&alice_links, early), link_for(&carol_links, early));
    let (a, c) = tokio::join!(
        stack.claim(&alice_early, early),
        stack.claim(&carol_early, early)
    );
    for (status, body) in [a?, c?] {
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["other_slots"], json!([]));
    }

    // Carol's open feed hears at once that the slot is taken.
    // (The first event may be the notification itself, if the feed stored it after the stream
    // opened; it is sent as it stands then.)
    let update = loop {
        let event = carol_live.next(WITHIN).await?;
        if event.data["slots"][0]["status"] == "taken" {
            break event;
        }
    };
    assert!(["notification.updated", "notification"].contains(&update.kind.as_str()));
    assert_eq!(update.data["slots"][0]["slot_id"], early.to_string());
    assert_eq!(update.data["slots"][0]["status"], "taken");
    assert_eq!(update.data["all_taken"], true);

    // Their feeds show the slot taken.
    for p in [alice, carol] {
        stack
            .eventually(WITHIN, "the slot shown taken", || async {
                Ok(feed_status(&stack, p, early).await? == [json!(false)])
            })
            .await?;
    }

    // The slot Bob left goes to the next in line: Alice and Carol, never Bob.
    let alice_second = nth_mail(&stack, &alice_mail, 2).await?;
    let carol_second = nth_mail(&stack, &carol_mail, 2).await?;
    assert_eq!(alice_second.iter().map(|l| l.1).collect::<Vec<_>>(), [late]);
    assert_eq!(carol_second.iter().map(|l| l.1).collect::<Vec<_>>(), [late]);

    // Both claim it at once: exactly one wins.
    let (alice_late, carol_late) = (link_for(&alice_second, late), link_for(&carol_second, late));
    let (a, c) = tokio::join!(
        stack.claim(&alice_late, late),
        stack.claim(&carol_late, late)
    );
    let (a, c) = (a?, c?);
    let mut statuses = [a.0, c.0];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{a:?} {c:?}");
    let (winner, loser) = if a.0 == 201 {
        (alice, carol)
    } else {
        (carol, alice)
    };

    // A link that booked does not book again.
    let winner_links = if winner == alice {
        &alice_second
    } else {
        &carol_second
    };
    let (status, _) = stack.claim(&link_for(winner_links, late), late).await?;
    assert_eq!(status, 410);

    // Staff can read who was offered the early slot, who won and who lost.
    let staff = token(Uuid::now_v7(), Role::Staff);
    let url = format!("{}/v1/slots/{early}/offers", stack.matching);
    stack
        .eventually(WITHIN, "the early slot's history", || async {
            let (status, body) = stack.get(&url, &staff).await?;
            Ok(status == 200
                && body["history"]
                    .as_array()
                    .is_some_and(|h| h.iter().filter(|e| e["kind"] == "lost").count() == 2))
        })
        .await?;
    let (_, history) = stack.get(&url, &staff).await?;
    let outcome = |p: Uuid| {
        history["offered"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["patient_id"] == p.to_string())
            .map(|o| o["outcome"].as_str().unwrap().to_owned())
    };
    assert_eq!(outcome(bob).as_deref(), Some("claimed"));
    assert_eq!(outcome(alice).as_deref(), Some("lost"));
    assert_eq!(outcome(carol).as_deref(), Some("lost"));

    // In the end: each patient was told once per slot; Bob once in all.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stack.links_mailed_to(&bob_mail).len(), 1);
    assert_eq!(stack.links_mailed_to(&alice_mail).len(), 2);
    assert_eq!(stack.links_mailed_to(&carol_mail).len(), 2);
    stack
        .eventually(
            WITHIN,
            "the loser's feed shows the late slot taken",
            || async { Ok(feed_status(&stack, loser, late).await? == [json!(false)]) },
        )
        .await?;
    stack.stop().await
}

async fn wait(stack: &Stack, body: Value) -> anyhow::Result<Uuid> {
    stack.create("/v1/waitlist", body).await
}

#[tokio::test]
async fn a_cancellation_offers_the_slot_to_the_waiting_list_but_not_to_the_canceller()
-> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let dr = stack
        .create(
            "/v1/practitioners",
            json!({"name": "Dr Dorothy Vaughan", "specialty": "GP", "timezone": "Europe/London"}),
        )
        .await?;
    let (erin, erin_mail) = patient(&stack, "Erin").await?;
    let slot = slots(&stack, dr, &[48]).await?[0];
    let appointment = stack
        .create(
            "/v1/appointments",
            json!({"patient_id": erin, "slot_id": slot}),
        )
        .await?;
    // Erin also waits for this practitioner (say, for a second appointment).
    wait(
        &stack,
        json!({"patient_id": erin, "practitioner_id": dr, "kind": "new"}),
    )
    .await?;
    let (dave, dave_mail) = patient(&stack, "Dave").await?;
    wait(
        &stack,
        json!({"patient_id": dave, "practitioner_id": dr, "kind": "new"}),
    )
    .await?;

    let (status, body) = stack
        .post(&format!("/v1/appointments/{appointment}/cancel"), json!({}))
        .await?;
    assert_eq!(status, 200, "{body}");

    let links = nth_mail(&stack, &dave_mail, 1).await?;
    assert_eq!(links.iter().map(|l| l.1).collect::<Vec<_>>(), [slot]);
    let (status, booked) = stack.claim(&links[0].0, slot).await?;
    assert_eq!(status, 201, "{booked}");
    assert_eq!(booked["patient_id"], dave.to_string());

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        stack.links_mailed_to(&erin_mail).is_empty(),
        "the canceller is not offered the slot she left"
    );
    // (Her feed holds only the confirmations of her booking and its cancellation.)
    assert!(stack.feed(erin).await?.is_empty());
    stack.stop().await
}
