//! Confirmations, end to end: booking from a link, booking through the API, a move-up and a
//! cancellation each send the patient one email with a calendar entry (checked with an RFC 5545
//! parser) and one in-app item; the page behind the confirmation's link cancels only on a POST,
//! and the slot then goes to the waiting list; a redelivered confirmation sends nothing twice.

use std::time::Duration;

use chrono::{DateTime, Duration as Span, Utc};
use icalendar::{Calendar, CalendarComponent, Component, DatePerhapsTime};
use serde_json::{Value, json};
use slotcast_e2e::{CapturedMail, Stack};
use slotcast_events::{streams, subjects};
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(20);

/// `hours` hours after the top of the hour in which the tests started.
fn at(hours: i64) -> DateTime<Utc> {
    static TOP_OF_THE_HOUR: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let top = *TOP_OF_THE_HOUR.get_or_init(|| {
        let now = Utc::now().timestamp();
        now - now % 3600
    });
    DateTime::from_timestamp(top + hours * 3600, 0).unwrap()
}

async fn practitioner(stack: &Stack) -> anyhow::Result<Uuid> {
    stack
        .create(
            "/v1/practitioners",
            json!({"name": "Dr Ada Lovelace", "specialty": "Cardiology", "timezone": "Europe/Paris"}),
        )
        .await
}

async fn patient(stack: &Stack, name: &str, locale: &str) -> anyhow::Result<(Uuid, String)> {
    let email = format!("{}@patients.example", name.to_lowercase());
    let id = stack
        .create(
            "/v1/patients",
            json!({"name": name, "email": email, "locale": locale}),
        )
        .await?;
    Ok((id, email))
}

async fn slot(stack: &Stack, practitioner: Uuid, hours: i64) -> anyhow::Result<Uuid> {
    let (status, body) = stack
        .post(
            &format!("/v1/practitioners/{practitioner}/slots"),
            json!({"slots": [{"starts_at": at(hours), "ends_at": at(hours) + Span::minutes(30)}]}),
        )
        .await?;
    anyhow::ensure!(status == 201, "{body}");
    Ok(body["slots"][0]["id"].as_str().unwrap().parse()?)
}

/// Waits until `address` has `n` confirmation emails; returns them, oldest first.
async fn confirmations(
    stack: &Stack,
    address: &str,
    n: usize,
) -> anyhow::Result<Vec<CapturedMail>> {
    stack
        .eventually(
            WITHIN,
            &format!("confirmation {n} to {address}"),
            || async { Ok(stack.confirmations_mailed_to(address).len() >= n) },
        )
        .await?;
    let mails = stack.confirmations_mailed_to(address);
    anyhow::ensure!(mails.len() == n, "{address}: {} confirmations", mails.len());
    Ok(mails)
}

/// The calendar entry a confirmation email carries, parsed: the calendar and its one event.
/// The inline `text/calendar` part and the `.ics` attachment must be the same entry.
fn calendar_of(mail: &CapturedMail) -> (Calendar, icalendar::Event) {
    let parts = mail.parts();
    let inline = parts
        .iter()
        .find(|p| p.mime_type == "text/calendar")
        .expect("an inline text/calendar part");
    let attached = parts
        .iter()
        .find(|p| p.mime_type == "application/ics")
        .expect("an .ics attachment");
    assert_eq!(inline.text, attached.text);
    let parsed = parse(&inline.text);
    assert_eq!(
        inline.param("method"),
        parsed.0.property_value("METHOD"),
        "the part's method is the entry's"
    );
    parsed
}

fn parse(text: &str) -> (Calendar, icalendar::Event) {
    let calendar: Calendar = text.parse().expect("an RFC 5545 calendar");
    let events: Vec<icalendar::Event> = calendar
        .components
        .iter()
        .filter_map(|c| match c {
            CalendarComponent::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(events.len(), 1, "{text}");
    let event = events[0].clone();
    (calendar, event)
}

/// The first `{scheduling}/v1/appointment-links/<token>` in a mail.
fn manage_url(stack: &Stack, mail: &CapturedMail) -> String {
    let marker = format!("{}/v1/appointment-links/", stack.scheduling);
    let text = mail.body_text();
    let start = text.find(&marker).expect("a link to the appointment");
    let rest = &text[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .unwrap_or(rest.len());
    rest[..end].to_owned()
}

async fn appointment_status(stack: &Stack, id: Uuid) -> anyhow::Result<String> {
    let (status, body) = stack
        .get(
            &format!("{}/v1/appointments/{id}", stack.scheduling),
            &stack.staff,
        )
        .await?;
    anyhow::ensure!(status == 200, "{body}");
    Ok(body["status"].as_str().unwrap_or_default().to_owned())
}

/// The stream sequence of the last message on the stream.
async fn last_sequence(stack: &Stack, stream: &str) -> anyhow::Result<u64> {
    let mut s = stack.js.get_stream(stream).await?;
    Ok(s.info().await?.state.last_sequence)
}

/// Waits until both notifiers have handled every confirmation on the stream.
async fn notifiers_done(stack: &Stack) -> anyhow::Result<()> {
    let last = last_sequence(stack, streams::NOTIFY).await?;
    for durable in [
        "email-notifier-confirmations",
        "inapp-notifier-confirmations",
    ] {
        stack.consumer_done(streams::NOTIFY, durable, last).await?;
    }
    Ok(())
}

#[tokio::test]
async fn booking_from_a_link_sends_one_confirmation_email_with_a_calendar_request_and_one_in_app_item()
-> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let dr = practitioner(&stack).await?;
    let (zoe, zoe_mail) = patient(&stack, "Zoe", "fr").await?;
    stack
        .create(
            "/v1/waitlist",
            json!({"patient_id": zoe, "practitioner_id": dr, "kind": "new"}),
        )
        .await?;
    let slot = slot(&stack, dr, 30).await?;
    stack
        .eventually(WITHIN, "the offer", || async {
            Ok(!stack.links_mailed_to(&zoe_mail).is_empty())
        })
        .await?;
    let (token, _) = stack.links_mailed_to(&zoe_mail)[0][0].clone();
    let (status, booked) = stack.claim(&token, slot).await?;
    assert_eq!(status, 201, "{booked}");
    let appointment: Uuid = booked["id"].as_str().unwrap().parse()?;

    // One email, in French, with the time in the practice's zone and a calendar REQUEST.
    let mail = confirmations(&stack, &zoe_mail, 1).await?.remove(0);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Rendez-vous confirmé avec Dr Ada Lovelace")
    );
    let paris = at(30)
        .with_timezone(&chrono_tz::Europe::Paris)
        .format("%H:%M")
        .to_string();
    let text = mail.body_text();
    assert!(
        text.contains(&paris) && text.contains("(Europe/Paris)"),
        "{text}"
    );
    assert!(text.contains("Dr Ada Lovelace (Cardiology)"), "{text}");
    let (calendar, event) = calendar_of(&mail);
    assert_eq!(calendar.property_value("METHOD"), Some("REQUEST"));
    assert_eq!(
        event.get_uid(),
        Some(format!("{appointment}@slotcast").as_str())
    );
    assert_eq!(event.get_sequence(), Some(0));
    assert_eq!(event.get_start(), Some(DatePerhapsTime::from(at(30))));
    assert_eq!(
        event.get_end(),
        Some(DatePerhapsTime::from(at(30) + Span::minutes(30)))
    );
    assert_eq!(
        event.get_summary(),
        Some("Rendez-vous avec Dr Ada Lovelace")
    );
    assert_eq!(event.property_value("STATUS"), Some("CONFIRMED"));
    let attendees = event.get_attendees();
    assert_eq!(attendees.len(), 1);
    assert!(
        mail.parts().iter().any(|p| p
            .text
            .replace("\r\n ", "")
            .contains("mailto:zoe@patients.example")),
        "the patient is the attendee"
    );

    // One in-app item, linking to the same entry.
    stack
        .eventually(WITHIN, "the in-app confirmation", || async {
            Ok(!stack.confirmations_in_feed(zoe).await?.is_empty())
        })
        .await?;
    let items = stack.confirmations_in_feed(zoe).await?;
    assert_eq!(items.len(), 1, "{items:?}");
    let item = &items[0];
    assert_eq!(item["reason"], "booked");
    assert_eq!(item["title"], "Rendez-vous confirmé avec Dr Ada Lovelace");
    assert!(item["body"].as_str().unwrap().contains(&paris), "{item}");
    assert_eq!(
        item["confirmation"]["appointment_id"],
        appointment.to_string()
    );
    let ics = stack
        .http
        .get(item["confirmation"]["calendar_url"].as_str().unwrap())
        .send()
        .await?;
    assert_eq!(ics.status(), 200);
    assert!(
        ics.headers()["content-type"]
            .to_str()?
            .starts_with("text/calendar"),
        "{:?}",
        ics.headers()
    );
    let (served, served_event) = parse(&ics.text().await?);
    assert_eq!(served.property_value("METHOD"), Some("PUBLISH"));
    assert_eq!(served_event.get_uid(), event.get_uid());
    assert_eq!(served_event.get_sequence(), Some(0));
    assert_eq!(served_event.get_start(), event.get_start());

    // The confirmation travelled as an event that validates against its schema.
    let published = stack
        .events(streams::NOTIFY, Some(subjects::NOTIFY_APPOINTMENT))
        .await?;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].1["data"]["kind"], "booked");
    stack.stop().await
}

#[tokio::test]
async fn a_redelivered_confirmation_sends_no_second_email_and_stores_no_second_item()
-> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let dr = practitioner(&stack).await?;
    let (ann, ann_mail) = patient(&stack, "Ann", "en").await?;
    let slot = slot(&stack, dr, 40).await?;
    stack
        .create(
            "/v1/appointments",
            json!({"patient_id": ann, "slot_id": slot}),
        )
        .await?;
    confirmations(&stack, &ann_mail, 1).await?;
    notifiers_done(&stack).await?;

    // The same event again, under a new message id so the stream keeps it: both notifiers get
    // it a second time.
    let published = stack
        .messages(streams::NOTIFY, Some(subjects::NOTIFY_APPOINTMENT))
        .await?;
    assert_eq!(published.len(), 1);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", Uuid::now_v7().to_string().as_str());
    stack
        .js
        .publish_with_headers(
            subjects::NOTIFY_APPOINTMENT,
            headers,
            serde_json::to_vec(&published[0].event)?.into(),
        )
        .await?
        .await?;
    notifiers_done(&stack).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stack.confirmations_mailed_to(&ann_mail).len(), 1);
    assert_eq!(stack.confirmations_in_feed(ann).await?.len(), 1);
    stack.stop().await
}

#[tokio::test]
async fn a_move_up_confirms_the_new_time_and_the_one_it_replaces_with_the_same_uid_and_a_higher_sequence()
-> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let dr = practitioner(&stack).await?;
    let (bob, bob_mail) = patient(&stack, "Bob", "en").await?;
    let late = slot(&stack, dr, 200).await?;
    let appointment = stack
        .create(
            "/v1/appointments",
            json!({"patient_id": bob, "slot_id": late}),
        )
        .await?;
    let first = confirmations(&stack, &bob_mail, 1).await?.remove(0);
    let (_, booked) = calendar_of(&first);
    assert_eq!(booked.get_sequence(), Some(0));
    stack
        .create(
            "/v1/waitlist",
            json!({"patient_id": bob, "practitioner_id": dr, "kind": "move_up", "appointment_id": appointment}),
        )
        .await?;
    let early = slot(&stack, dr, 30).await?;
    stack
        .eventually(WITHIN, "the move-up offer", || async {
            Ok(!stack.links_mailed_to(&bob_mail).is_empty())
        })
        .await?;
    let (token, _) = stack.links_mailed_to(&bob_mail)[0][0].clone();
    let (status, moved) = stack.claim(&token, early).await?;
    assert_eq!(status, 201, "{moved}");
    assert_eq!(moved["id"], appointment.to_string());

    let mail = confirmations(&stack, &bob_mail, 2).await?.remove(1);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Your appointment with Dr Ada Lovelace has moved earlier")
    );
    let text = mail.body_text();
    let paris = |h: i64| {
        at(h)
            .with_timezone(&chrono_tz::Europe::Paris)
            .format("%H:%M")
            .to_string()
    };
    assert!(text.contains("has moved to an earlier time"), "{text}");
    let replaces = text
        .lines()
        .find(|l| l.starts_with("This replaces your appointment on"))
        .unwrap_or_else(|| panic!("the replaced time: {text}"));
    assert!(replaces.contains(&paris(200)), "{replaces}");
    let (calendar, event) = calendar_of(&mail);
    assert_eq!(calendar.property_value("METHOD"), Some("REQUEST"));
    assert_eq!(event.get_uid(), booked.get_uid(), "the same entry");
    assert_eq!(event.get_sequence(), Some(1), "a higher sequence");
    assert_eq!(event.get_start(), Some(DatePerhapsTime::from(at(30))));

    stack
        .eventually(WITHIN, "the in-app move", || async {
            Ok(stack
                .confirmations_in_feed(bob)
                .await?
                .iter()
                .any(|n| n["reason"] == "moved"))
        })
        .await?;
    let items = stack.confirmations_in_feed(bob).await?;
    assert_eq!(items.len(), 2, "{items:?}");
    let moved = &items[0];
    assert_eq!(moved["reason"], "moved");
    assert_eq!(moved["confirmation"]["replaced_starts_at"], json!(at(200)));
    assert_eq!(moved["confirmation"]["sequence"], 1);
    stack.stop().await
}

#[tokio::test]
async fn the_confirmation_page_asks_then_only_a_post_cancels_sends_a_cancel_and_reoffers_the_slot()
-> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let dr = practitioner(&stack).await?;
    let (erin, erin_mail) = patient(&stack, "Erin", "de").await?;
    let (dave, dave_mail) = patient(&stack, "Dave", "en").await?;
    let slot = slot(&stack, dr, 48).await?;
    let appointment = stack
        .create(
            "/v1/appointments",
            json!({"patient_id": erin, "slot_id": slot}),
        )
        .await?;
    stack
        .create(
            "/v1/waitlist",
            json!({"patient_id": dave, "practitioner_id": dr, "kind": "new"}),
        )
        .await?;
    let booked = confirmations(&stack, &erin_mail, 1).await?.remove(0);
    let (_, booked_event) = calendar_of(&booked);
    let url = manage_url(&stack, &booked);

    // A GET (a mail scanner, a preview) shows the appointment and the form, and cancels nothing.
    for _ in 0..2 {
        let page = stack
            .http
            .get(&url)
            .header("accept", "text/html")
            .send()
            .await?;
        assert_eq!(page.status(), 200);
        let html = page.text().await?;
        assert!(html.contains("<html lang=\"de\">"), "{html}");
        assert!(html.contains("Termin absagen"), "{html}");
        assert!(html.contains(&format!("action=\"{url}/cancel\"")), "{html}");
    }
    let (status, json) = stack.get(&url, "").await?;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["status"], "booked");
    assert_eq!(appointment_status(&stack, appointment).await?, "booked");

    // A link that is not valid is a 4xx page, never a 5xx.
    let tampered = format!("{}x", url);
    let page = stack
        .http
        .get(&tampered)
        .header("accept", "text/html")
        .send()
        .await?;
    assert_eq!(page.status(), 401);
    let res = stack.http.post(format!("{tampered}/cancel")).send().await?;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(appointment_status(&stack, appointment).await?, "booked");

    // The form's POST cancels.
    let res = stack
        .http
        .post(format!("{url}/cancel"))
        .header("accept", "text/html")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    assert!(res.text().await?.contains("Ihr Termin ist abgesagt"));
    assert_eq!(appointment_status(&stack, appointment).await?, "cancelled");

    // The patient is sent a CANCEL of the same entry, with a higher sequence.
    let cancel = confirmations(&stack, &erin_mail, 2).await?.remove(1);
    assert_eq!(
        cancel.header("Subject").as_deref(),
        Some("Termin bei Dr Ada Lovelace abgesagt")
    );
    let (calendar, event) = calendar_of(&cancel);
    assert_eq!(calendar.property_value("METHOD"), Some("CANCEL"));
    assert_eq!(event.get_uid(), booked_event.get_uid());
    assert_eq!(event.get_sequence(), Some(1));
    assert_eq!(event.property_value("STATUS"), Some("CANCELLED"));

    // The freed slot goes to the next patient waiting.
    stack
        .eventually(WITHIN, "the slot offered to Dave", || async {
            Ok(stack
                .links_mailed_to(&dave_mail)
                .iter()
                .flatten()
                .any(|(_, s)| *s == slot))
        })
        .await?;

    // Posting again changes nothing and sends nothing.
    let (status, again) = {
        let res = stack.http.post(format!("{url}/cancel")).send().await?;
        (res.status().as_u16(), res.json::<Value>().await?)
    };
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["status"], "cancelled");
    assert!(again.get("cancel_url").is_none(), "{again}");
    notifiers_done(&stack).await?;
    assert_eq!(stack.confirmations_mailed_to(&erin_mail).len(), 2);
    stack.stop().await
}

#[tokio::test]
async fn with_email_turned_off_a_confirmation_comes_in_the_app_only() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let dr = practitioner(&stack).await?;
    let (fay, fay_mail) = patient(&stack, "Fay", "es").await?;
    let res = stack
        .http
        .put(format!(
            "{}/v1/patients/{fay}/preferences",
            stack.scheduling
        ))
        .bearer_auth(&stack.staff)
        .json(&json!({"email": false}))
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let slot = slot(&stack, dr, 50).await?;
    stack
        .create(
            "/v1/appointments",
            json!({"patient_id": fay, "slot_id": slot}),
        )
        .await?;
    stack
        .eventually(WITHIN, "the in-app confirmation", || async {
            Ok(!stack.confirmations_in_feed(fay).await?.is_empty())
        })
        .await?;
    let items = stack.confirmations_in_feed(fay).await?;
    assert_eq!(items[0]["title"], "Cita confirmada con Dr Ada Lovelace");
    notifiers_done(&stack).await?;
    assert!(stack.confirmations_mailed_to(&fay_mail).is_empty());
    assert!(stack.smtp.messages().is_empty());
    stack.stop().await
}
