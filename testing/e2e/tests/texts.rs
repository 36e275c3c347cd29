//! Text messages end to end: a patient who consented gets one text through a real Kannel when
//! a slot opens, and its link books; a patient who did not gets none.

use std::time::Duration;

use chrono::{Duration as Span, Utc};
use serde_json::{Value, json};
use slotcast_e2e::Stack;

#[tokio::test]
async fn a_slot_opens_and_only_the_consenting_patient_gets_one_text_whose_link_books()
-> anyhow::Result<()> {
    let stack = Stack::start_texting().await?;
    let kannel = stack.kannel.as_ref().expect("a texting stack");
    let dr = stack
        .create(
            "/v1/practitioners",
            json!({"name": "Dr Ada Lovelace", "specialty": "Cardiology", "timezone": "Europe/Paris"}),
        )
        .await?;
    let mut patients = Vec::new();
    for (name, phone) in [("Ann", "+33 6 12 34 56 78"), ("Bob", "+33 6 98 76 54 32")] {
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
        patients.push(id);
    }
    let ann = patients[0];
    let res = stack
        .http
        .put(format!(
            "{}/v1/patients/{ann}/preferences",
            stack.scheduling
        ))
        .bearer_auth(&stack.staff)
        .json(&json!({"sms": true}))
        .send()
        .await?;
    anyhow::ensure!(res.status() == 200, "{}", res.text().await?);

    let starts_at = Utc::now() + Span::days(2);
    let (status, body) = stack
        .post(
            &format!("/v1/practitioners/{dr}/slots"),
            json!({"slots": [{"starts_at": starts_at, "ends_at": starts_at + Span::minutes(30)}]}),
        )
        .await?;
    anyhow::ensure!(status == 201, "{body}");
    let slot = body["slots"][0]["id"].as_str().unwrap().to_owned();

    let texts = kannel.wait_for_messages(1, Duration::from_secs(20)).await?;
    assert_eq!(texts[0].to, "+33612345678");
    assert_eq!(texts[0].segments.len(), 1, "one SMS: {}", texts[0].text);
    // The short link leads to the offer's page, whose token books.
    let link = texts[0].text.rsplit(' ').next().unwrap();
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
    assert!(status == 200 || status == 201, "{status}: {booked}");

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
    assert_eq!(kannel.messages().len(), 1, "{:?}", kannel.messages());
    stack.stop().await
}
