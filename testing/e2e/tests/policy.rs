//! The notification policy end to end: offer waves with holds (scheduling refuses everyone
//! outside the wave while it holds a slot), the coalescing window, the daily cap, one-click
//! unsubscribe from an email, waiting-list expiry and the fair order.

use std::time::Duration;

use chrono::{DateTime, Duration as Span, Utc};
use serde_json::{Value, json};
use slotcast_e2e::Stack;
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(30);

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
    let email = format!(
        "{}.{}@patients.example",
        name.to_lowercase(),
        &Uuid::new_v4().simple().to_string()[..6]
    );
    let id = stack
        .create("/v1/patients", json!({"name": name, "email": email}))
        .await?;
    Ok((id, email))
}

async fn practitioner(stack: &Stack, policy: &str) -> anyhow::Result<Uuid> {
    stack
        .create(
            "/v1/practitioners",
            json!({"name": "Dr Wave", "specialty": "GP", "timezone": "UTC", "offer_policy": policy}),
        )
        .await
}

async fn waits(stack: &Stack, patient: Uuid, dr: Uuid, extra: Value) -> anyhow::Result<Uuid> {
    let mut body = json!({"patient_id": patient, "practitioner_id": dr, "kind": "new"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    stack.create("/v1/waitlist", body).await
}

async fn slot(stack: &Stack, dr: Uuid, hours: i64) -> anyhow::Result<Uuid> {
    let (status, body) = stack
        .post(
            &format!("/v1/practitioners/{dr}/slots"),
            json!({"slots": [{"starts_at": at(hours), "ends_at": at(hours) + Span::minutes(30)}]}),
        )
        .await?;
    anyhow::ensure!(status == 201, "{body}");
    Ok(body["slots"][0]["id"].as_str().unwrap().parse()?)
}

fn mails_to(stack: &Stack, address: &str) -> usize {
    stack
        .smtp
        .messages()
        .iter()
        .filter(|m| m.to.iter().any(|t| t == address) && !slotcast_e2e::is_confirmation(m))
        .count()
}

async fn mailed(stack: &Stack, address: &str, n: usize) -> anyhow::Result<()> {
    stack
        .eventually(WITHIN, &format!("{n} mail(s) to {address}"), || async {
            Ok(mails_to(stack, address) >= n)
        })
        .await
}

/// The waves told so far (`notify.patient` events with a wave), as (wave, patient id).
async fn waves(stack: &Stack) -> anyhow::Result<Vec<(u64, String)>> {
    let mut out: Vec<(u64, String)> = stack
        .events("SLOTCAST_NOTIFY", None)
        .await?
        .into_iter()
        .filter_map(|(_, e)| {
            Some((
                e["data"]["wave"].as_u64()?,
                e["data"]["patient"]["id"].as_str()?.to_owned(),
            ))
        })
        .collect();
    out.sort();
    Ok(out)
}

async fn decisions(stack: &Stack, slot: Uuid) -> anyhow::Result<Value> {
    let (status, body) = stack
        .get(
            &format!("{}/v1/slots/{slot}/decisions", stack.matching),
            &stack.staff,
        )
        .await?;
    anyhow::ensure!(status == 200, "{status} {body}");
    Ok(body)
}

async fn slot_status(stack: &Stack, dr: Uuid, slot: Uuid) -> anyhow::Result<String> {
    let (status, body) = stack
        .get(
            &format!("{}/v1/practitioners/{dr}/slots", stack.scheduling),
            &stack.staff,
        )
        .await?;
    anyhow::ensure!(status == 200, "{status} {body}");
    Ok(body["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == slot.to_string())
        .map(|s| s["status"].as_str().unwrap().to_owned())
        .unwrap_or_default())
}

/// Waves of one patient, holds of `hold` seconds.
async fn waves_stack(hold: u64) -> anyhow::Result<Stack> {
    Stack::start_with(|p| {
        p.wave_size = 1;
        p.hold_min = Duration::from_secs(hold);
        p.hold_max = Duration::from_secs(hold);
    })
    .await
}

#[tokio::test]
async fn unclaimed_waves_advance_to_the_next_patients_in_the_fair_order() -> anyhow::Result<()> {
    let stack = waves_stack(2).await?;
    let dr = practitioner(&stack, "waves").await?;
    let (first, a) = patient(&stack, "First").await?;
    let (second, b) = patient(&stack, "Second").await?;
    let (urgent, u) = patient(&stack, "Urgent").await?;
    waits(&stack, first, dr, json!({})).await?;
    waits(&stack, second, dr, json!({})).await?;
    waits(&stack, urgent, dr, json!({"priority": "urgent"})).await?;
    let s = slot(&stack, dr, 48).await?;

    // Urgent first, then longest waiting; one wave per hold.
    mailed(&stack, &u, 1).await?;
    mailed(&stack, &a, 1).await?;
    mailed(&stack, &b, 1).await?;
    let told = waves(&stack).await?;
    assert_eq!(
        told,
        [
            (1, urgent.to_string()),
            (2, first.to_string()),
            (3, second.to_string())
        ]
    );
    // Nobody is left: the waves stop, the last hold is released, the slot is open to all.
    stack
        .eventually(WITHIN, "the slot open to all", || async {
            Ok(slot_status(&stack, dr, s).await? == "available")
        })
        .await?;
    let explained = decisions(&stack, s).await?;
    let waves: Vec<&Value> = explained["openings"][0]["waves"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(waves.len(), 3, "{explained:#}");
    assert_eq!(explained["openings"][0]["policy"], "waves");
    for m in [&u, &a, &b] {
        assert_eq!(mails_to(&stack, m), 1, "{m} told once");
    }
    stack.stop().await
}

#[tokio::test]
async fn a_claim_inside_the_hold_wins_and_the_next_wave_is_never_sent() -> anyhow::Result<()> {
    // A hold long enough that the claim, after wave 1's email went all the way round, lands
    // inside it on a busy machine.
    let stack = waves_stack(10).await?;
    let dr = practitioner(&stack, "waves").await?;
    let (first, a) = patient(&stack, "First").await?;
    let (_second, b) = patient(&stack, "Second").await?;
    waits(&stack, first, dr, json!({})).await?;
    waits(&stack, _second, dr, json!({})).await?;
    let s = slot(&stack, dr, 48).await?;
    mailed(&stack, &a, 1).await?;
    assert_eq!(slot_status(&stack, dr, s).await?, "held");
    let links = stack.links_mailed_to(&a);
    let (token, _) = links[0]
        .iter()
        .find(|(_, slot)| *slot == s)
        .cloned()
        .expect("a link for the slot");
    let (status, body) = stack.claim(&token, s).await?;
    assert_eq!(status, 201, "{body}");
    // Once the hold is over, the second patient is recorded as not reached, and never hears.
    stack
        .eventually(
            Duration::from_secs(30),
            "the second patient not reached",
            || async {
                Ok(decisions(&stack, s).await?["considered"][1]["outcome"] == "not_reached")
            },
        )
        .await?;
    assert_eq!(mails_to(&stack, &b), 0, "the next wave was sent");
    assert_eq!(waves(&stack).await?.len(), 1);
    let explained = decisions(&stack, s).await?;
    let outcomes: Vec<(&str, &str)> = explained["considered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["outcome"].as_str().unwrap(),
                c["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [("told", ""), ("not_reached", "slot_gone")],
        "{explained:#}"
    );
    stack.stop().await
}

#[tokio::test]
async fn during_a_hold_nobody_outside_the_wave_can_book_the_slot() -> anyhow::Result<()> {
    let stack = waves_stack(20).await?;
    let dr = practitioner(&stack, "waves").await?;
    let (first, a) = patient(&stack, "First").await?;
    let (outsider, _) = patient(&stack, "Outsider").await?;
    waits(&stack, first, dr, json!({})).await?;
    waits(&stack, outsider, dr, json!({})).await?;
    let s = slot(&stack, dr, 48).await?;
    mailed(&stack, &a, 1).await?;
    // Not in the wave: refused, even when staff books for them.
    let (status, body) = stack
        .post(
            "/v1/appointments",
            json!({"patient_id": outsider, "slot_id": s}),
        )
        .await?;
    assert_eq!(status, 409, "{body}");
    assert!(body["held_until"].is_string(), "{body}");
    // In the wave: booked.
    let (status, body) = stack
        .post(
            "/v1/appointments",
            json!({"patient_id": first, "slot_id": s}),
        )
        .await?;
    assert_eq!(status, 201, "{body}");
    stack.stop().await
}

#[tokio::test]
async fn two_requests_within_the_window_reach_a_patient_as_one_email() -> anyhow::Result<()> {
    // A window long enough that a busy machine decides the second slot inside it.
    let stack = Stack::start_with(|p| p.coalesce_window = Duration::from_secs(5)).await?;
    let dr = practitioner(&stack, "broadcast").await?;
    let (alice, a) = patient(&stack, "Alice").await?;
    waits(&stack, alice, dr, json!({})).await?;
    let first = slot(&stack, dr, 30).await?;
    let second = slot(&stack, dr, 31).await?;
    mailed(&stack, &a, 1).await?;
    stack
        .eventually(WITHIN, "the in-app notification", || async {
            Ok(!stack.feed(alice).await?.is_empty())
        })
        .await?;
    // Longer than the window: nothing else follows.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(mails_to(&stack, &a), 1);
    let links = stack.links_mailed_to(&a);
    let mut offered: Vec<Uuid> = links[0].iter().map(|(_, s)| *s).collect();
    offered.sort();
    let mut want = vec![first, second];
    want.sort();
    assert_eq!(offered, want);
    assert_eq!(
        stack.feed(alice).await?.len(),
        1,
        "one in-app notification too"
    );
    stack.stop().await
}

#[tokio::test]
async fn the_daily_cap_stops_availability_email_after_the_configured_number() -> anyhow::Result<()>
{
    let stack = Stack::start_with(|p| {
        p.coalesce_window = Duration::ZERO;
        p.daily_cap = 2;
    })
    .await?;
    let dr = practitioner(&stack, "broadcast").await?;
    let (alice, a) = patient(&stack, "Alice").await?;
    waits(&stack, alice, dr, json!({})).await?;
    let mut slots = Vec::new();
    for (i, h) in [30, 40, 50].into_iter().enumerate() {
        slots.push(slot(&stack, dr, h).await?);
        if i < 2 {
            mailed(&stack, &a, i + 1).await?;
        }
    }
    stack
        .eventually(WITHIN, "the third slot decided", || async {
            Ok(decisions(&stack, slots[2])
                .await
                .is_ok_and(|d| d["considered"][0]["outcome"] == "skipped"))
        })
        .await?;
    assert_eq!(
        decisions(&stack, slots[2]).await?["considered"][0]["reason"],
        "capped"
    );
    assert_eq!(mails_to(&stack, &a), 2);
    stack.stop().await
}

#[tokio::test]
async fn one_click_unsubscribe_from_an_email_turns_availability_email_off() -> anyhow::Result<()> {
    let stack = Stack::start_with(|p| p.coalesce_window = Duration::ZERO).await?;
    let dr = practitioner(&stack, "broadcast").await?;
    let (alice, a) = patient(&stack, "Alice").await?;
    waits(&stack, alice, dr, json!({})).await?;
    slot(&stack, dr, 30).await?;
    mailed(&stack, &a, 1).await?;
    let mail = stack
        .smtp
        .messages()
        .into_iter()
        .find(|m| m.to.contains(&a))
        .unwrap();
    let header = mail.header("List-Unsubscribe").expect("List-Unsubscribe");
    assert_eq!(
        mail.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let url = header.trim_start_matches('<').trim_end_matches('>');
    assert!(url.starts_with(&format!("{}/v1/unsubscribe/", stack.scheduling)));
    // What a mail client does (RFC 8058): a POST, no login, no cookie.
    let res = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await?;
    assert!(res.status().is_success(), "{}", res.status());
    // The next opening reaches the app only.
    let s = slot(&stack, dr, 40).await?;
    stack
        .eventually(WITHIN, "the second notification in the feed", || async {
            Ok(stack.feed(alice).await?.len() == 2)
        })
        .await?;
    stack
        .eventually(WITHIN, "the slot decided", || async {
            Ok(decisions(&stack, s)
                .await
                .is_ok_and(|d| d["considered"][0]["outcome"] == "told"))
        })
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(mails_to(&stack, &a), 1, "no email after unsubscribing");
    stack.stop().await
}

#[tokio::test]
async fn an_expired_waiting_list_entry_is_offered_nothing() -> anyhow::Result<()> {
    let stack = Stack::start_with(|p| p.coalesce_window = Duration::ZERO).await?;
    let dr = practitioner(&stack, "broadcast").await?;
    let (alice, a) = patient(&stack, "Alice").await?;
    let (bob, b) = patient(&stack, "Bob").await?;
    let soon = Utc::now() + Span::seconds(2);
    waits(&stack, alice, dr, json!({"expires_at": soon})).await?;
    waits(&stack, bob, dr, json!({})).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s = slot(&stack, dr, 30).await?;
    mailed(&stack, &b, 1).await?;
    stack
        .eventually(WITHIN, "the slot decided", || async {
            Ok(decisions(&stack, s).await.is_ok_and(|d| {
                d["considered"]
                    .as_array()
                    .is_some_and(|c| c.len() == 2 && c.iter().all(|c| c["outcome"] != "pending"))
            }))
        })
        .await?;
    let explained = decisions(&stack, s).await?;
    let alice_row = explained["considered"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["patient_id"] == alice.to_string())
        .cloned()
        .unwrap();
    assert_eq!(alice_row["reason"], "expired", "{explained:#}");
    assert_eq!(mails_to(&stack, &a), 0);
    assert!(stack.feed(alice).await?.is_empty());
    stack.stop().await
}

#[tokio::test]
async fn a_waves_slot_nobody_waits_for_is_open_to_all_at_once() -> anyhow::Result<()> {
    let stack = waves_stack(5).await?;
    let dr = practitioner(&stack, "waves").await?;
    let s = slot(&stack, dr, 48).await?;
    // Pre-held for matching's first wave (2 minutes at most by default); with nobody to tell,
    // matching lets it go at once.
    stack
        .eventually(WITHIN, "the slot open to all", || async {
            Ok(slot_status(&stack, dr, s).await? == "available")
        })
        .await?;
    stack.stop().await
}

#[tokio::test]
async fn each_slot_of_a_waves_opening_gets_its_own_first_patients() -> anyhow::Result<()> {
    let stack = waves_stack(20).await?;
    let dr = practitioner(&stack, "waves").await?;
    let (monday, m) = patient(&stack, "Monday").await?;
    let (friday, f) = patient(&stack, "Friday").await?;
    // Monday waits longer but only for the early slot; Friday only for the late one.
    waits(&stack, monday, dr, json!({"latest": at(40)})).await?;
    waits(&stack, friday, dr, json!({"earliest": at(60)})).await?;
    let windows = json!({"slots": [
        {"starts_at": at(30), "ends_at": at(30) + Span::minutes(30)},
        {"starts_at": at(70), "ends_at": at(70) + Span::minutes(30)},
    ]});
    let (status, body) = stack
        .post(&format!("/v1/practitioners/{dr}/slots"), windows)
        .await?;
    assert_eq!(status, 201, "{body}");
    // One wave of one patient a slot: both are told at once, each about their own slot.
    mailed(&stack, &m, 1).await?;
    mailed(&stack, &f, 1).await?;
    assert_eq!(
        waves(&stack).await?,
        [(1, monday.to_string()), (1, friday.to_string())]
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(stack.links_mailed_to(&m)[0].len(), 1);
    assert_eq!(stack.links_mailed_to(&f)[0].len(), 1);
    stack.stop().await
}
