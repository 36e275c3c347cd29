//! The notification policy in matching: the coalescing window, the daily cap, preferences,
//! expiry, a slot taken before its message goes out, the fair order, and the explanation of
//! every decision (`GET /v1/slots/{id}/decisions`). The `waves` policy needs scheduling's holds:
//! it is tested end to end (`testing/e2e`).

use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use slotcast_events::{
    PatientPreferencesChanged, PractitionerPolicyChanged, Priority, QuietHoursSetting, SlotBooked,
    WaitKind, WaitlistJoined, WaitlistUpdated,
};
use slotcast_kit::auth::{Role, mint};
use slotcast_links::OfferSigner;
use slotcast_test_support::TestDatabase;
use uuid::Uuid;

use crate::helpers::{SECRET, TestMatching, patients_of, policy, slots_of, spawn_matching_with};

const SETTLE: Duration = Duration::from_millis(700);

async fn spawn(window_ms: u64, cap: u32) -> TestMatching {
    let mut p = policy();
    p.coalesce_window = Duration::from_millis(window_ms);
    p.daily_cap = cap;
    spawn_matching_with(TestDatabase::postgres().await.unwrap(), p).await
}

impl TestMatching {
    /// Joins with a priority and an expiry; returns the entry id.
    async fn joins(
        &self,
        patient: Uuid,
        practitioner: Uuid,
        priority: Priority,
        expires_in: Option<chrono::Duration>,
    ) -> Uuid {
        let entry_id = Uuid::now_v7();
        self.publish(WaitlistJoined {
            entry_id,
            patient_id: patient,
            practitioner_id: practitioner,
            kind: WaitKind::New,
            appointment_id: None,
            held_starts_at: None,
            earliest: None,
            latest: None,
            joined_at: Utc::now(),
            priority,
            expires_at: expires_in.map(|d| Utc::now() + d),
        })
        .await;
        entry_id
    }

    /// The patient turns texts on (their consent, through `via`), email and in-app as given.
    async fn texts_on(&self, patient: Uuid, email: bool, inapp: bool, via: &str) {
        self.publish(PatientPreferencesChanged {
            patient_id: patient,
            email,
            inapp,
            sms: true,
            via: via.into(),
        })
        .await;
    }

    /// The explanation of `slot` once `ready` holds for it, polling up to 10 s.
    async fn decisions(&self, slot: Uuid, ready: impl Fn(&Value) -> bool) -> Value {
        let staff = mint(
            SECRET,
            Uuid::now_v7(),
            Role::Staff,
            chrono::Duration::minutes(5),
        )
        .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let res = reqwest::Client::new()
                .get(format!("{}/v1/slots/{slot}/decisions", self.base))
                .bearer_auth(&staff)
                .send()
                .await
                .unwrap();
            if res.status() == 200 {
                let body: Value = res.json().await.unwrap();
                if ready(&body) {
                    return body;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "explanation never ready: {body:#}"
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no explanation in time"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Quiet hours from an hour ago to two hours from now in London, the tests' practitioners' zone
/// (their patients have none of their own), and the instant they end.
fn quiet_around_now() -> (String, chrono::DateTime<Utc>) {
    let now = Utc::now().with_timezone(&chrono_tz::Europe::London);
    let quiet = format!(
        "{}-{}",
        (now - chrono::Duration::hours(1)).format("%H:%M"),
        (now + chrono::Duration::hours(2)).format("%H:%M")
    );
    (quiet, now.with_timezone(&Utc) + chrono::Duration::hours(2))
}

/// `at` is when `quiet` ends: `end`, to the minute the hours are written in.
fn assert_ends_at(at: chrono::DateTime<Utc>, end: chrono::DateTime<Utc>, quiet: &str) {
    assert!(
        at > end - chrono::Duration::minutes(2) && at <= end,
        "{at} is not the end of {quiet}"
    );
}

/// Matching with `QUIET_HOURS` (`None`: off) and a daily cap.
async fn spawn_quiet(quiet: Option<&str>, cap: u32) -> TestMatching {
    let mut p = policy();
    p.quiet_hours = quiet.and_then(matching::eligibility::QuietHours::parse);
    p.daily_cap = cap;
    spawn_matching_with(TestDatabase::postgres().await.unwrap(), p).await
}

fn outcomes(decisions: &Value) -> Vec<(String, String, Option<String>)> {
    decisions["considered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["patient_id"].as_str().unwrap().to_owned(),
                c["outcome"].as_str().unwrap().to_owned(),
                c["reason"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

#[tokio::test]
async fn slots_published_in_separate_requests_within_the_window_reach_a_patient_as_one_message() {
    // A window long enough that a busy machine still decides the second slot inside it.
    let m = spawn(4_000, 0).await;
    let dr = m.practitioner().await;
    let alice = m.patient().await;
    m.waits(alice, dr, WaitKind::New, None).await;
    let first = m.batch(dr, &[10]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = m.batch(dr, &[11]).await;
    let told = m.notifications(1, Duration::from_millis(4_500)).await;
    assert_eq!(told.len(), 1, "one message for both requests: {told:#?}");
    let mut want = vec![first[0].slot_id.to_string(), second[0].slot_id.to_string()];
    want.sort();
    let mut got = slots_of(&told[0]);
    got.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_patient_gets_at_most_the_daily_cap_of_messages_and_the_rest_is_explained() {
    let m = spawn(0, 2).await;
    let dr = m.practitioner().await;
    let alice = m.patient().await;
    m.waits(alice, dr, WaitKind::New, None).await;
    let mut slots = Vec::new();
    for h in [10, 20, 30] {
        slots.push(m.batch(dr, &[h]).await[0].slot_id);
        // Separate messages: each opening goes out before the next is published.
        m.notifications(slots.len().min(2), Duration::ZERO).await;
    }
    let told = m.notifications(2, SETTLE).await;
    assert_eq!(told.len(), 2, "capped at 2 a day: {told:#?}");
    let third = m
        .decisions(slots[2], |d| {
            d["considered"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["outcome"] != "pending"))
        })
        .await;
    assert_eq!(
        outcomes(&third),
        [(alice.to_string(), "skipped".into(), Some("capped".into()))]
    );
}

#[tokio::test]
async fn preferences_choose_the_channels_and_a_patient_who_turned_both_off_is_skipped() {
    let m = spawn(0, 0).await;
    let dr = m.practitioner().await;
    let (email_off, all_off) = (m.patient().await, m.patient().await);
    m.waits(email_off, dr, WaitKind::New, None).await;
    m.waits(all_off, dr, WaitKind::New, None).await;
    m.publish(PatientPreferencesChanged {
        patient_id: email_off,
        email: false,
        inapp: true,
        via: "one_click".into(),
        sms: false,
    })
    .await;
    m.publish(PatientPreferencesChanged {
        patient_id: all_off,
        email: false,
        inapp: false,
        via: "api".into(),
        sms: false,
    })
    .await;
    m.applied().await;
    let slot = m.batch(dr, &[10]).await[0].slot_id;
    let told = m.notifications(1, SETTLE).await;
    assert_eq!(patients_of(&told), [email_off.to_string()]);
    let data = &told[0]["data"];
    assert_eq!(data["channels"]["email"], false);
    assert_eq!(data["channels"]["inapp"], true);
    // The links of every message work without login: they carry a token naming the patient.
    let url = data["unsubscribe_url"].as_str().unwrap();
    let token = url.rsplit('/').next().unwrap();
    assert!(url.starts_with("https://clinic.example/v1/unsubscribe/"));
    assert_eq!(
        OfferSigner::new(SECRET).verify_preferences(token),
        Ok(email_off)
    );
    assert!(
        data["preferences_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v1/preferences/{token}"))
    );
    let explained = m
        .decisions(slot, |d| {
            d["considered"]
                .as_array()
                .is_some_and(|c| c.len() == 2 && c.iter().all(|c| c["outcome"] != "pending"))
        })
        .await;
    assert!(
        outcomes(&explained).contains(&(
            all_off.to_string(),
            "skipped".into(),
            Some("opted_out".into())
        )),
        "{explained:#}"
    );
}

#[tokio::test]
async fn a_patient_who_wants_only_texts_is_told_with_their_number_and_the_sms_channel() {
    let m = spawn(0, 0).await;
    let dr = m.practitioner().await;
    let texts_only = m.patient_with_phone(Some("+33612345678")).await;
    let default = m.patient_with_phone(Some("+33612345679")).await;
    m.waits(texts_only, dr, WaitKind::New, None).await;
    m.waits(default, dr, WaitKind::New, None).await;
    m.texts_on(texts_only, false, false, "link").await;
    m.applied().await;
    m.batch(dr, &[10]).await;
    let told = m.notifications(2, SETTLE).await;
    let of = |p: Uuid| {
        told.iter()
            .find(|n| n["data"]["patient"]["id"] == p.to_string())
            .map(|n| &n["data"])
            .expect("told")
    };
    let texted = of(texts_only);
    assert_eq!(texted["patient"]["phone"], "+33612345678");
    assert_eq!(
        (
            texted["channels"]["email"].as_bool(),
            texted["channels"]["inapp"].as_bool(),
            texted["channels"]["sms"].as_bool()
        ),
        (Some(false), Some(false), Some(true))
    );
    // A number alone is no consent.
    assert_eq!(of(default)["channels"]["sms"], false);
}

#[tokio::test]
async fn in_quiet_hours_a_text_waits_for_their_end_or_is_not_sent_and_decisions_say_which() {
    // Quiet hours around now, in the practitioner's zone (the patients have none of their own).
    let (quiet, end) = quiet_around_now();
    let m = spawn_quiet(Some(&quiet), policy().daily_cap).await;
    let (soon_dr, later_dr) = (m.practitioner().await, m.practitioner().await);
    let soon = m.patient_with_phone(Some("+447700900001")).await;
    let later = m.patient_with_phone(Some("+447700900002")).await;
    for (patient, dr) in [(soon, soon_dr), (later, later_dr)] {
        m.waits(patient, dr, WaitKind::New, None).await;
        m.texts_on(patient, true, true, "api").await;
    }
    m.applied().await;
    let soon_slot = m.batch(soon_dr, &[1]).await[0].slot_id;
    let later_slot = m.batch(later_dr, &[30]).await[0].slot_id;
    let told = m.notifications(2, SETTLE).await;
    let of = |p: Uuid| {
        told.iter()
            .find(|n| n["data"]["patient"]["id"] == p.to_string())
            .map(|n| &n["data"])
            .expect("told")
    };
    // The slot starts before the quiet hours end: email and in-app now, no text.
    assert_eq!(of(soon)["channels"]["sms"], false);
    assert_eq!(of(soon)["channels"]["email"], true);
    assert!(of(soon).get("sms_not_before").is_none());
    // The slot is after them: texted when they end.
    assert_eq!(of(later)["channels"]["sms"], true);
    let not_before: chrono::DateTime<Utc> = of(later)["sms_not_before"]
        .as_str()
        .expect("deferred")
        .parse()
        .unwrap();
    assert_ends_at(not_before, end, &quiet);

    let text_of = |decisions: &Value| decisions["considered"][0]["text"].clone();
    let skipped = m.decisions(soon_slot, |d| !text_of(d).is_null()).await;
    assert_eq!(text_of(&skipped)["decision"], "skipped");
    assert_eq!(text_of(&skipped)["reason"], "quiet_hours");
    let deferred = m.decisions(later_slot, |d| !text_of(d).is_null()).await;
    assert_eq!(text_of(&deferred)["decision"], "deferred");
    assert_eq!(
        text_of(&deferred)["at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<Utc>>()
            .unwrap(),
        not_before
    );
}

#[tokio::test]
async fn a_practitioners_own_quiet_hours_win_and_may_hold_every_channel() {
    // `QUIET_HOURS` around now, texts only; one practitioner turns quiet hours off, the other
    // keeps their own on every channel.
    let (quiet, end) = quiet_around_now();
    let m = spawn_quiet(Some(&quiet), policy().daily_cap).await;
    let (open_dr, strict_dr) = (m.practitioner().await, m.practitioner().await);
    for (dr, quiet_hours, all) in [
        (open_dr, QuietHoursSetting::Off, false),
        (strict_dr, QuietHoursSetting::parse(&quiet).unwrap(), true),
    ] {
        m.publish(PractitionerPolicyChanged {
            practitioner_id: dr,
            offer_policy: None,
            quiet_hours: Some(quiet_hours),
            quiet_hours_all_channels: all,
        })
        .await;
    }
    let texted = m.patient_with_phone(Some("+447700900003")).await;
    let waiting = m.patient().await;
    m.waits(texted, open_dr, WaitKind::New, None).await;
    m.waits(waiting, strict_dr, WaitKind::New, None).await;
    m.texts_on(texted, true, true, "api").await;
    m.applied().await;
    m.batch(open_dr, &[1]).await;
    let soon_slot = m.batch(strict_dr, &[1]).await[0].slot_id;
    let later_slot = m.batch(strict_dr, &[30]).await[0].slot_id;

    // Only the practitioner without quiet hours sends now, and texts at once.
    let told = m.notifications(1, SETTLE).await;
    assert_eq!(patients_of(&told), vec![texted.to_string()], "{told:#?}");
    assert_eq!(told[0]["data"]["channels"]["sms"], true);
    assert!(told[0]["data"].get("sms_not_before").is_none());

    // Every channel keeps the other's: the slot before their end is not offered at all, the
    // later one waits for it.
    let skipped = m
        .decisions(soon_slot, |d| d["considered"][0]["outcome"] == "skipped")
        .await;
    assert_eq!(
        outcomes(&skipped),
        vec![(
            waiting.to_string(),
            "skipped".into(),
            Some("quiet_hours".into())
        )]
    );
    let pending = m
        .decisions(later_slot, |d| {
            d["considered"][0]["reason"] == "quiet_hours"
        })
        .await;
    let entry = &pending["considered"][0];
    assert_eq!(
        (entry["patient_id"].as_str(), entry["outcome"].as_str()),
        (Some(waiting.to_string().as_str()), Some("pending"))
    );
    let due: chrono::DateTime<Utc> = entry["due_at"].as_str().unwrap().parse().unwrap();
    assert_ends_at(due, end, &quiet);
    // Nothing else went out meanwhile.
    assert_eq!(
        patients_of(&m.notifications(1, SETTLE).await),
        vec![texted.to_string()]
    );

    // The practice turns its quiet hours off: what waited for them goes at once.
    m.publish(PractitionerPolicyChanged {
        practitioner_id: strict_dr,
        offer_policy: None,
        quiet_hours: Some(QuietHoursSetting::Off),
        quiet_hours_all_channels: true,
    })
    .await;
    let told = m.notifications(2, SETTLE).await;
    let mut expected = vec![texted.to_string(), waiting.to_string()];
    expected.sort();
    assert_eq!(patients_of(&told), expected);
}

#[tokio::test]
async fn a_message_waiting_out_quiet_hours_meets_the_daily_cap_when_it_goes() {
    let (quiet, _) = quiet_around_now();
    let m = spawn_quiet(None, 1).await;
    let (open_dr, strict_dr) = (m.practitioner().await, m.practitioner().await);
    let strict = |quiet_hours| PractitionerPolicyChanged {
        practitioner_id: strict_dr,
        offer_policy: None,
        quiet_hours: Some(quiet_hours),
        quiet_hours_all_channels: true,
    };
    m.publish(strict(QuietHoursSetting::parse(&quiet).unwrap()))
        .await;
    let patient = m.patient().await;
    m.waits(patient, open_dr, WaitKind::New, None).await;
    m.waits(patient, strict_dr, WaitKind::New, None).await;
    m.applied().await;
    m.batch(open_dr, &[30]).await;
    assert_eq!(m.notifications(1, SETTLE).await.len(), 1);

    // At the cap now, but the message would only go when the quiet hours end: it waits.
    let slot = m.batch(strict_dr, &[30]).await[0].slot_id;
    let waits = m
        .decisions(slot, |d| d["considered"][0]["reason"] == "quiet_hours")
        .await;
    assert_eq!(waits["considered"][0]["outcome"], "pending");
    // When it goes (here: the practice turns them off), the cap is what stops it.
    m.publish(strict(QuietHoursSetting::Off)).await;
    let capped = m
        .decisions(slot, |d| d["considered"][0]["outcome"] == "skipped")
        .await;
    assert_eq!(
        outcomes(&capped),
        vec![(patient.to_string(), "skipped".into(), Some("capped".into()))]
    );
    assert_eq!(m.notifications(1, SETTLE).await.len(), 1);
}

#[tokio::test]
async fn expired_entries_are_never_offered_anything_and_urgent_ones_come_first() {
    let m = spawn(0, 0).await;
    let dr = m.practitioner().await;
    let (old, urgent, expired, extended) = (
        m.patient().await,
        m.patient().await,
        m.patient().await,
        m.patient().await,
    );
    m.joins(old, dr, Priority::Routine, None).await;
    m.joins(urgent, dr, Priority::Urgent, None).await;
    m.joins(
        expired,
        dr,
        Priority::Urgent,
        Some(chrono::Duration::milliseconds(1)),
    )
    .await;
    // Joined expired, then staff extended it: offered again.
    let entry = m
        .joins(
            extended,
            dr,
            Priority::Routine,
            Some(chrono::Duration::milliseconds(1)),
        )
        .await;
    m.publish(WaitlistUpdated {
        entry_id: entry,
        patient_id: extended,
        practitioner_id: dr,
        priority: Priority::Routine,
        expires_at: Some(Utc::now() + chrono::Duration::days(30)),
    })
    .await;
    let slot = m.batch(dr, &[10]).await[0].slot_id;
    let told = m.notifications(3, SETTLE).await;
    let mut want = vec![old.to_string(), urgent.to_string(), extended.to_string()];
    want.sort();
    assert_eq!(patients_of(&told), want);
    let explained = m
        .decisions(slot, |d| {
            d["considered"]
                .as_array()
                .is_some_and(|c| c.len() == 4 && c.iter().all(|c| c["outcome"] != "pending"))
        })
        .await;
    assert_eq!(
        outcomes(&explained),
        [
            (urgent.to_string(), "told".into(), None),
            (
                expired.to_string(),
                "skipped".into(),
                Some("expired".into())
            ),
            (old.to_string(), "told".into(), None),
            (extended.to_string(), "told".into(), None),
        ],
        "urgent first, then longest waiting"
    );
}

#[tokio::test]
async fn a_slot_booked_before_its_message_goes_out_is_dropped_from_it() {
    // A window long enough that a busy machine handles the booking inside it.
    let m = spawn(4_000, 0).await;
    let dr = m.practitioner().await;
    let (alice, bob) = (m.patient().await, m.patient().await);
    m.waits(alice, dr, WaitKind::New, None).await;
    let slots = m.batch(dr, &[10, 11]).await;
    // Booked (by someone off the list) inside the window.
    m.publish(SlotBooked {
        slot_id: slots[0].slot_id,
        practitioner_id: dr,
        patient_id: bob,
        appointment_id: Uuid::now_v7(),
        starts_at: slots[0].starts_at,
    })
    .await;
    let told = m.notifications(1, Duration::from_millis(2_000)).await;
    assert_eq!(told.len(), 1);
    assert_eq!(slots_of(&told[0]), [slots[1].slot_id.to_string()]);
    let explained = m
        .decisions(slots[0].slot_id, |d| {
            d["considered"][0]["outcome"] == "skipped"
        })
        .await;
    assert_eq!(explained["considered"][0]["reason"], "taken");
    assert_eq!(explained["status"], "booked");
}

#[tokio::test]
async fn an_opening_in_its_window_is_explained_as_it_would_be_decided_now() {
    // A window long enough that the explanation is read inside it.
    let m = spawn(5_000, 0).await;
    let dr = m.practitioner().await;
    let (first, second) = (m.patient().await, m.patient().await);
    m.waits(first, dr, WaitKind::New, None).await;
    m.waits(second, dr, WaitKind::New, None).await;
    let slot = m.batch(dr, &[10]).await[0].slot_id;
    let explained = m
        .decisions(slot, |d| {
            d["considered"].as_array().is_some_and(|c| c.len() == 2)
        })
        .await;
    assert_eq!(explained["openings"][0]["decided_at"], Value::Null);
    assert_eq!(
        outcomes(&explained),
        [
            (first.to_string(), "pending".to_owned(), None),
            (second.to_string(), "pending".to_owned(), None),
        ]
    );
    assert_eq!(explained["considered"][1]["rank"], 2);
    // Then the window ends and both are told.
    let told = m
        .decisions(slot, |d| d["considered"][1]["outcome"] == "told")
        .await;
    assert!(told["openings"][0]["decided_at"].is_string());
}

#[tokio::test]
async fn the_explanation_lists_who_the_slot_did_not_fit_and_why_and_is_for_staff_only() {
    let m = spawn(0, 0).await;
    let dr = m.practitioner().await;
    let (fits, late) = (m.patient().await, m.patient().await);
    m.waits(fits, dr, WaitKind::New, None).await;
    // Holds an appointment before the slot: moving would not be up.
    m.waits(late, dr, WaitKind::MoveUp, Some(crate::helpers::hours(5)))
        .await;
    let slot = m.batch(dr, &[10]).await[0].slot_id;
    m.notifications(1, SETTLE).await;
    let explained = m
        .decisions(slot, |d| d["considered"][0]["outcome"] == "told")
        .await;
    assert_eq!(explained["openings"][0]["policy"], "broadcast");
    assert_eq!(explained["considered"][0]["rank"], 1);
    assert_eq!(
        explained["not_considered"],
        serde_json::json!([{
            "patient_id": late,
            "entry_id": explained["not_considered"][0]["entry_id"],
            "reason": "not_earlier",
        }])
    );
    let patient = mint(SECRET, fits, Role::Patient, chrono::Duration::minutes(5)).unwrap();
    let res = reqwest::Client::new()
        .get(format!("{}/v1/slots/{slot}/decisions", m.base))
        .bearer_auth(patient)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = reqwest::Client::new()
        .get(format!("{}/v1/slots/{slot}/decisions", m.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn a_wave_waits_while_scheduling_cannot_take_its_hold() {
    // `policy()` points matching at a port nobody listens on: scheduling is down.
    let m = spawn(0, 0).await;
    let dr = m.practitioner().await;
    let alice = m.patient().await;
    m.waits(alice, dr, WaitKind::New, None).await;
    m.publish(slotcast_events::SlotCreated {
        slot_id: Uuid::now_v7(),
        practitioner_id: dr,
        starts_at: crate::helpers::hours(10),
        ends_at: crate::helpers::hours(10) + chrono::Duration::minutes(30),
        batch_id: Uuid::now_v7(),
        batch_size: 1,
        offer_policy: slotcast_events::OfferPolicy::Waves,
    })
    .await;
    // The wave is tried, refused by the network, and held back: nobody is told about a slot
    // nobody holds for them, and matching keeps serving.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = reqwest::get(format!("{}/metrics", m.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text
            .lines()
            .any(|l| l.starts_with("slotcast_matching_hold_failures_total") && !l.ends_with(" 0"))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failed hold counted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(m.notifications(0, SETTLE).await.is_empty());
    let ready = reqwest::get(format!("{}/readyz", m.base)).await.unwrap();
    assert_eq!(ready.status(), 200);
}
