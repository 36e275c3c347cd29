//! Text messages end to end, through a real Kannel: a patient who consented gets one text when
//! a slot opens, and books by its link or by replying; STOP stops, START resumes, and an
//! unclear reply gets help, never a booking.

use std::time::Duration;

use chrono::{Duration as Span, Utc};
use serde_json::{Value, json};
use slotcast_e2e::{INBOUND_KEY, Stack};
use slotcast_test_support::Sms;
use uuid::Uuid;

/// The gateway's own number, which patients reply to.
const GATEWAY_NUMBER: &str = "12345";

/// A patient with `phone` waiting for `dr`, who consented to texts if `texts`.
async fn patient(
    stack: &Stack,
    dr: Uuid,
    name: &str,
    phone: &str,
    texts: bool,
) -> anyhow::Result<Uuid> {
    let id = stack
        .create(
            "/v1/patients",
            json!({"name": name, "email": format!("{}@patients.example", name.to_lowercase()), "phone": phone}),
        )
        .await?;
    stack
        .create(
            "/v1/waitlist",
            json!({"patient_id": id, "practitioner_id": dr, "kind": "new"}),
        )
        .await?;
    if texts {
        preferences(stack, id, json!({"sms": true})).await?;
    }
    Ok(id)
}

async fn preferences(stack: &Stack, patient: Uuid, body: Value) -> anyhow::Result<Value> {
    let res = stack
        .http
        .put(format!(
            "{}/v1/patients/{patient}/preferences",
            stack.scheduling
        ))
        .bearer_auth(&stack.staff)
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(res.status() == 200, "{}", res.text().await?);
    Ok(res.json().await?)
}

async fn practitioner(stack: &Stack) -> anyhow::Result<Uuid> {
    stack
        .create(
            "/v1/practitioners",
            json!({"name": "Dr Ada Lovelace", "specialty": "Cardiology", "timezone": "Europe/Paris"}),
        )
        .await
}

/// Posts slots starting `days` from now, `hours` apart; their ids.
async fn open(stack: &Stack, dr: Uuid, days: i64, count: i64) -> anyhow::Result<Vec<String>> {
    let first = Utc::now() + Span::days(days);
    let slots: Vec<Value> = (0..count)
        .map(|i| {
            let starts_at = first + Span::hours(i);
            json!({"starts_at": starts_at, "ends_at": starts_at + Span::minutes(30)})
        })
        .collect();
    let (status, body) = stack
        .post(
            &format!("/v1/practitioners/{dr}/slots"),
            json!({ "slots": slots }),
        )
        .await?;
    anyhow::ensure!(status == 201, "{body}");
    Ok(body["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect())
}

/// Waits for the `n`th text to `to`, counting from the first.
async fn nth_text_to(stack: &Stack, to: &str, n: usize) -> anyhow::Result<Sms> {
    let kannel = stack.kannel.as_ref().expect("a texting stack");
    let mut found = None;
    stack
        .eventually(
            Duration::from_secs(20),
            &format!("text {n} to {to}"),
            || {
                let texts: Vec<Sms> = kannel
                    .messages()
                    .into_iter()
                    .filter(|m| m.to == to)
                    .collect();
                found = texts.get(n - 1).cloned();
                let done = found.is_some();
                async move { Ok(done) }
            },
        )
        .await?;
    Ok(found.unwrap())
}

fn texts_to(stack: &Stack, to: &str) -> Vec<Sms> {
    let kannel = stack.kannel.as_ref().expect("a texting stack");
    kannel
        .messages()
        .into_iter()
        .filter(|m| m.to == to)
        .collect()
}

async fn reply(stack: &Stack, from: &str, text: &str) -> anyhow::Result<()> {
    let kannel = stack.kannel.as_ref().expect("a texting stack");
    kannel.send_from_phone(from, GATEWAY_NUMBER, text).await
}

async fn appointments_of(stack: &Stack, slot: &str) -> anyhow::Result<Vec<Value>> {
    let events = stack
        .events(
            "SLOTCAST_SCHEDULING",
            Some("slotcast.scheduling.slot.booked"),
        )
        .await?;
    Ok(events
        .into_iter()
        .map(|(_, e)| e["data"].clone())
        .filter(|d| d["slot_id"] == slot)
        .collect())
}

#[tokio::test]
async fn a_slot_opens_and_only_the_consenting_patient_gets_one_text_whose_link_books()
-> anyhow::Result<()> {
    let stack = Stack::start_texting().await?;
    let dr = practitioner(&stack).await?;
    patient(&stack, dr, "Ann", "+33 6 12 34 56 78", true).await?;
    patient(&stack, dr, "Bob", "+33 6 98 76 54 32", false).await?;
    let slot = open(&stack, dr, 2, 1).await?.remove(0);

    let text = nth_text_to(&stack, "+33612345678", 1).await?;
    assert_eq!(text.segments.len(), 1, "one SMS: {}", text.text);
    assert!(text.text.contains("Reply YES to book it"), "{}", text.text);
    // The short link leads to the offer's page, whose token books.
    let link = text.text.rsplit(' ').next().unwrap();
    let res = stack
        .http
        .get(link)
        .header("accept", "application/json")
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let page = res.url().clone();
    let offer: Value = res.json().await?;
    let marker = format!("{}/v1/offers/", stack.scheduling);
    let token = page
        .as_str()
        .strip_prefix(&marker)
        .unwrap_or_else(|| panic!("{link} led to {page}"))
        .to_owned();
    assert_eq!(offer["slots"][0]["slot_id"], Value::String(slot.clone()));
    let (status, booked) = stack.claim(&token, slot.parse()?).await?;
    assert_eq!(status, 201, "{booked}");

    // Bob consented to nothing: both notifiers' work is done and no second text went out.
    stack
        .eventually(Duration::from_secs(10), "Bob's email", || async {
            Ok(stack
                .smtp
                .messages()
                .iter()
                .any(|m| m.to.iter().any(|t| t == "bob@patients.example")))
        })
        .await?;
    stack
        .consumer_done("SLOTCAST_NOTIFY", "sms-notifier", 1)
        .await?;
    assert!(texts_to(&stack, "+33698765432").is_empty());
    stack.stop().await
}

#[tokio::test]
async fn a_reply_books_the_slot_of_that_number_and_a_second_patient_is_told_it_is_taken()
-> anyhow::Result<()> {
    let stack = Stack::start_texting().await?;
    let dr = practitioner(&stack).await?;
    let ann = patient(&stack, dr, "Ann", "+33612345678", true).await?;
    let bob = patient(&stack, dr, "Bob", "+33698765432", true).await?;
    let slots = open(&stack, dr, 3, 2).await?;

    let to_ann = nth_text_to(&stack, "+33612345678", 1).await?;
    assert!(to_ann.text.contains("1) "), "{}", to_ann.text);
    assert!(to_ann.text.contains("2) "), "{}", to_ann.text);
    nth_text_to(&stack, "+33698765432", 1).await?;

    // Ann replies 2 first: the second slot is hers. Bob replies 2 after: taken, and told the
    // first is still free; he replies 1 and gets it.
    reply(&stack, "+33612345678", "2").await?;
    let booked = nth_text_to(&stack, "+33612345678", 2).await?;
    assert!(
        booked.text.starts_with("Booked: Dr Ada Lovelace"),
        "{}",
        booked.text
    );
    let to_ann_booked = appointments_of(&stack, &slots[1]).await?;
    assert_eq!(to_ann_booked.len(), 1);
    assert_eq!(to_ann_booked[0]["patient_id"], ann.to_string());

    reply(&stack, "+33698765432", "2").await?;
    let taken = nth_text_to(&stack, "+33698765432", 2).await?;
    assert!(
        taken
            .text
            .starts_with("Sorry, that time was just taken. Still free: 1) "),
        "{}",
        taken.text
    );
    reply(&stack, "+33698765432", "yes").await?;
    let booked = nth_text_to(&stack, "+33698765432", 3).await?;
    assert!(booked.text.starts_with("Booked:"), "{}", booked.text);
    let first = appointments_of(&stack, &slots[0]).await?;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["patient_id"], bob.to_string());
    stack.stop().await
}

#[tokio::test]
async fn an_unclear_reply_gets_help_and_books_nothing_and_a_redelivered_one_is_answered_once()
-> anyhow::Result<()> {
    let stack = Stack::start_texting().await?;
    let dr = practitioner(&stack).await?;
    patient(&stack, dr, "Ann", "+33612345678", true).await?;
    let slot = open(&stack, dr, 2, 1).await?.remove(0);
    nth_text_to(&stack, "+33612345678", 1).await?;

    reply(&stack, "+33612345678", "yeah, I'll take it").await?;
    let help = nth_text_to(&stack, "+33612345678", 2).await?;
    assert!(
        help.text.starts_with("Texts about free appointment times."),
        "{}",
        help.text
    );
    reply(&stack, "+33612345678", "7").await?;
    let pick = nth_text_to(&stack, "+33612345678", 3).await?;
    assert!(pick.text.contains("from 1 to 1"), "{}", pick.text);
    assert!(appointments_of(&stack, &slot).await?.is_empty());

    // The gateway hands the same text over twice: one booking, one answer.
    let sms = stack.sms.as_ref().unwrap();
    let inbound = format!(
        "{sms}/v1/sms/inbound/{INBOUND_KEY}?from=%2B33612345678&to={GATEWAY_NUMBER}&text=YES&id=same-message"
    );
    for _ in 0..2 {
        let res = stack.http.get(&inbound).send().await?;
        assert_eq!(res.status(), 204);
    }
    nth_text_to(&stack, "+33612345678", 4).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(texts_to(&stack, "+33612345678").len(), 4);
    assert_eq!(appointments_of(&stack, &slot).await?.len(), 1);
    let wrong_key = stack
        .http
        .get(inbound.replace(INBOUND_KEY, "not-the-key-at-all"))
        .send()
        .await?;
    assert_eq!(wrong_key.status(), 404);
    stack.stop().await
}

#[tokio::test]
async fn stop_stops_at_once_is_confirmed_once_and_start_resumes() -> anyhow::Result<()> {
    let stack = Stack::start_texting().await?;
    let dr = practitioner(&stack).await?;
    let ann = patient(&stack, dr, "Ann", "+33612345678", true).await?;
    open(&stack, dr, 2, 1).await?;
    nth_text_to(&stack, "+33612345678", 1).await?;

    reply(&stack, "+33612345678", "STOP").await?;
    let stopped = nth_text_to(&stack, "+33612345678", 2).await?;
    assert!(
        stopped.text.starts_with("You will get no more texts"),
        "{}",
        stopped.text
    );
    reply(&stack, "+33612345678", "stop").await?;
    stack
        .eventually(
            Duration::from_secs(10),
            "texts off in scheduling",
            || async {
                let prefs: Value = stack
                    .get(
                        &format!("{}/v1/patients/{ann}/preferences", stack.scheduling),
                        &stack.staff,
                    )
                    .await?
                    .1;
                Ok(prefs["sms"] == false)
            },
        )
        .await?;
    // A new opening reaches Ann by email, not by text.
    open(&stack, dr, 4, 1).await?;
    stack
        .eventually(Duration::from_secs(15), "Ann's second email", || async {
            Ok(stack
                .smtp
                .messages()
                .iter()
                .filter(|m| m.to.iter().any(|t| t == "ann@patients.example"))
                .count()
                >= 2)
        })
        .await?;
    stack
        .consumer_done("SLOTCAST_NOTIFY", "sms-notifier", 2)
        .await?;
    assert_eq!(
        texts_to(&stack, "+33612345678").len(),
        2,
        "confirmed once, nothing after"
    );

    reply(&stack, "+33612345678", "START").await?;
    let started = nth_text_to(&stack, "+33612345678", 3).await?;
    assert!(
        started.text.starts_with("You will get texts"),
        "{}",
        started.text
    );
    let prefs = preferences(&stack, ann, json!({})).await?;
    assert_eq!(prefs["sms"], true);
    assert_eq!(prefs["sms_consent"]["via"], "sms");
    open(&stack, dr, 5, 1).await?;
    let again = nth_text_to(&stack, "+33612345678", 4).await?;
    assert!(again.text.contains("a time is free"), "{}", again.text);
    stack.stop().await
}

#[tokio::test]
async fn a_practice_keeping_quiet_hours_on_every_channel_holds_its_offer_until_they_end()
-> anyhow::Result<()> {
    let stack = Stack::start_texting().await?;
    let (quiet_dr, open_dr) = (practitioner(&stack).await?, practitioner(&stack).await?);
    // Quiet hours around now in the practice's zone (the patients have none of their own).
    let now = Utc::now().with_timezone(&chrono_tz::Europe::Paris);
    let quiet = format!(
        "{}-{}",
        (now - Span::hours(1)).format("%H:%M"),
        (now + Span::hours(2)).format("%H:%M")
    );
    let res = stack
        .http
        .patch(format!("{}/v1/practitioners/{quiet_dr}", stack.scheduling))
        .bearer_auth(&stack.staff)
        .json(&json!({"quiet_hours": quiet, "quiet_hours_all_channels": true}))
        .send()
        .await?;
    anyhow::ensure!(res.status() == 200, "{}", res.text().await?);
    patient(&stack, quiet_dr, "Ann", "+33612345678", true).await?;
    patient(&stack, open_dr, "Bob", "+33698765432", true).await?;
    let held: Uuid = open(&stack, quiet_dr, 2, 1).await?.remove(0).parse()?;
    open(&stack, open_dr, 2, 1).await?;

    // Bob's practice keeps no quiet hours: his text and email go at once.
    nth_text_to(&stack, "+33698765432", 1).await?;
    let url = format!("{}/v1/slots/{held}/decisions", stack.matching);
    stack
        .eventually(Duration::from_secs(10), "Ann's offer held", || async {
            let (status, body) = stack.get(&url, &stack.staff).await?;
            Ok(status == 200 && body["considered"][0]["reason"] == "quiet_hours")
        })
        .await?;
    let (_, decisions) = stack.get(&url, &stack.staff).await?;
    let ann = &decisions["considered"][0];
    assert_eq!(ann["outcome"], "pending", "{decisions:#}");
    let due: chrono::DateTime<Utc> = ann["due_at"].as_str().unwrap().parse()?;
    let end = now.with_timezone(&Utc) + Span::hours(2);
    assert!(
        due > end - Span::minutes(2) && due <= end,
        "{due} for {quiet}"
    );
    // Ann hears nothing meanwhile, on any channel.
    stack
        .consumer_done("SLOTCAST_NOTIFY", "email-notifier", 1)
        .await?;
    assert!(texts_to(&stack, "+33612345678").is_empty());
    assert!(
        !stack
            .smtp
            .messages()
            .iter()
            .any(|m| m.to.iter().any(|t| t == "ann@patients.example"))
    );
    stack.stop().await
}
