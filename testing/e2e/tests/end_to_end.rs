//! The whole system, end to end, against real NATS, Postgres and SMTP.

use std::{collections::BTreeSet, time::Duration};

use chrono::{DateTime, Duration as Span, Utc};
use serde_json::{Value, json};
use slotcast_e2e::Stack;
use uuid::Uuid;

/// `hours` after the top of the hour in which the tests started: the same instant however often
/// it is asked, even when a test runs across the top of an hour.
fn at(hours: i64) -> DateTime<Utc> {
    static TOP_OF_THE_HOUR: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let top = *TOP_OF_THE_HOUR.get_or_init(|| {
        let now = Utc::now().timestamp();
        now - now % 3600
    });
    DateTime::from_timestamp(top + hours * 3600, 0).unwrap()
}

fn window(h: i64) -> Value {
    json!({"starts_at": at(h), "ends_at": at(h) + Span::minutes(30)})
}

async fn patient(stack: &Stack, name: &str) -> anyhow::Result<Uuid> {
    stack
        .create(
            "/v1/patients",
            json!({"name": name, "email": format!("{}@patients.example", name.to_lowercase())}),
        )
        .await
}

async fn wait(stack: &Stack, body: Value) -> anyhow::Result<Uuid> {
    stack.create("/v1/waitlist", body).await
}

/// A patient holding an appointment at `h` hours from now with `practitioner`.
async fn holding(
    stack: &Stack,
    practitioner: Uuid,
    name: &str,
    h: i64,
) -> anyhow::Result<(Uuid, Uuid)> {
    let p = patient(stack, name).await?;
    let (status, slots) = stack
        .post(
            &format!("/v1/practitioners/{practitioner}/slots"),
            json!({"slots": [window(h)]}),
        )
        .await?;
    anyhow::ensure!(status == 201, "{slots}");
    let slot = slots["slots"][0]["id"].as_str().unwrap();
    let appointment = stack
        .create(
            "/v1/appointments",
            json!({"patient_id": p, "slot_id": slot}),
        )
        .await?;
    Ok((p, appointment))
}

#[tokio::test]
async fn two_slots_posted_together_reach_exactly_the_right_patients_once_by_email_and_in_the_app()
-> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let dr = stack
        .create(
            "/v1/practitioners",
            json!({"name": "Dr Grace Hopper", "specialty": "Cardiology", "timezone": "Europe/Paris", "consultation_fee": 45}),
        )
        .await?;
    let other_dr = stack
        .create(
            "/v1/practitioners",
            json!({"name": "Dr Other", "specialty": "GP", "timezone": "UTC"}),
        )
        .await?;

    // Appointments held before anyone waits, so their own slots tell nobody.
    let (carol, carol_appointment) = holding(&stack, dr, "Carol", 200).await?;
    let (erin, erin_appointment) = holding(&stack, dr, "Erin", 5).await?;

    let alice = patient(&stack, "Alice").await?;
    let bob = patient(&stack, "Bob").await?;
    let dave = patient(&stack, "Dave").await?;
    let frank = patient(&stack, "Frank").await?;
    // Fits: waits for a first appointment, any time.
    wait(
        &stack,
        json!({"patient_id": alice, "practitioner_id": dr, "kind": "new"}),
    )
    .await?;
    // Fits: holds a later appointment and wants to move up.
    wait(&stack, json!({"patient_id": carol, "practitioner_id": dr, "kind": "move_up", "appointment_id": carol_appointment})).await?;
    // Another practitioner.
    wait(
        &stack,
        json!({"patient_id": bob, "practitioner_id": other_dr, "kind": "new"}),
    )
    .await?;
    // A window that the slots are outside of.
    wait(&stack, json!({"patient_id": dave, "practitioner_id": dr, "kind": "new", "earliest": at(100), "latest": at(150)})).await?;
    // Holds an appointment earlier than the slots: not a move up.
    wait(&stack, json!({"patient_id": erin, "practitioner_id": dr, "kind": "move_up", "appointment_id": erin_appointment})).await?;
    // Left the list.
    let entry = wait(
        &stack,
        json!({"patient_id": frank, "practitioner_id": dr, "kind": "new"}),
    )
    .await?;
    let left = stack
        .http
        .delete(format!("{}/v1/waitlist/{entry}", stack.scheduling))
        .bearer_auth(&stack.staff)
        .send()
        .await?;
    assert_eq!(left.status(), 204);

    let (status, posted) = stack
        .post(
            &format!("/v1/practitioners/{dr}/slots"),
            json!({"slots": [window(24), window(26)]}),
        )
        .await?;
    assert_eq!(status, 201, "{posted}");
    let slot_ids: BTreeSet<String> = posted["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();

    // Both notifiers report their delivery for both patients.
    stack
        .eventually(
            Duration::from_secs(20),
            "two emails sent and two in-app notifications stored",
            || async {
                // The confirmations of Carol's and Erin's bookings are delivered too: count the
                // availability notifications only.
                let notifications: BTreeSet<String> = stack
                    .events("SLOTCAST_NOTIFY", Some("slotcast.notify.patient"))
                    .await?
                    .into_iter()
                    .map(|(_, e)| e["data"]["notification_id"].to_string())
                    .collect();
                let delivered = stack.events("SLOTCAST_DELIVERY", None).await?;
                let count = |subject: &str| {
                    delivered
                        .iter()
                        .filter(|(s, e)| {
                            s == subject
                                && notifications.contains(&e["data"]["notification_id"].to_string())
                        })
                        .count()
                };
                Ok(count("slotcast.delivery.email.sent") >= 2
                    && count("slotcast.delivery.inapp.stored") >= 2)
            },
        )
        .await?;

    // Exactly one notify per fitting patient, each listing both slots.
    let notified = stack
        .events("SLOTCAST_NOTIFY", Some("slotcast.notify.patient"))
        .await?;
    let told: BTreeSet<String> = notified
        .iter()
        .map(|(_, e)| e["data"]["patient"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(told, BTreeSet::from([alice.to_string(), carol.to_string()]));
    assert_eq!(notified.len(), 2);
    for (_, e) in &notified {
        let slots: BTreeSet<String> = e["data"]["slots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["slot_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(slots, slot_ids);
    }

    // Email: one per fitting patient, nothing for the others.
    let mail: Vec<_> = stack
        .smtp
        .messages()
        .into_iter()
        .filter(|m| !slotcast_e2e::is_confirmation(m))
        .collect();
    let recipients: BTreeSet<String> = mail.iter().flat_map(|m| m.to.clone()).collect();
    assert_eq!(mail.len(), 2, "{recipients:?}");
    assert_eq!(
        recipients,
        BTreeSet::from([
            "alice@patients.example".to_owned(),
            "carol@patients.example".to_owned()
        ])
    );
    for m in &mail {
        let text = m.body_text();
        assert!(
            text.contains("Dr Grace Hopper") && text.contains("Cardiology"),
            "{text}"
        );
        assert!(text.contains("45.00"), "the fee is shown: {text}");
        // 24 h from the top of this hour, shown in Paris time.
        let paris = at(24)
            .with_timezone(&chrono_tz::Europe::Paris)
            .format("%H:%M")
            .to_string();
        assert!(
            text.contains(&paris),
            "slot time {paris} in the practitioner's zone: {text}"
        );
        for id in &slot_ids {
            assert!(
                text.contains(&format!("{}/v1/offers/", stack.scheduling))
                    && text.contains(id.as_str()),
                "link to {id}"
            );
        }
    }

    // In the app: one notification listing both slots for each fitting patient.
    for p in [alice, carol] {
        let feed = stack.feed(p).await?;
        assert_eq!(feed.len(), 1, "{feed:?}");
        let slots: BTreeSet<String> = feed[0]["slots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["slot_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(slots, slot_ids);
        assert!(
            feed[0]["slots"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["available"] == true)
        );
    }
    for p in [bob, dave, erin, frank] {
        assert!(
            stack.feed(p).await?.is_empty(),
            "patient {p} was told nothing"
        );
    }

    // A downstream subscriber sees the two slot.created CloudEvents of the batch.
    let created = stack
        .events(
            "SLOTCAST_SCHEDULING",
            Some("slotcast.scheduling.slot.created"),
        )
        .await?;
    let batch: Vec<&Value> = created
        .iter()
        .map(|(_, e)| e)
        .filter(|e| slot_ids.contains(e["data"]["slot_id"].as_str().unwrap()))
        .collect();
    assert_eq!(batch.len(), 2);
    assert_eq!(batch[0]["data"]["batch_id"], batch[1]["data"]["batch_id"]);
    assert!(
        batch.iter().all(
            |e| e["specversion"] == "1.0" && e["type"] == "slotcast.scheduling.slot.created.v1"
        )
    );

    // One trace spans the request that posted the slots, matching's decision and both
    // deliveries: the trace context travels in the NATS headers, and every message's
    // Nats-Msg-Id is its CloudEvent id.
    let created = stack
        .messages(
            "SLOTCAST_SCHEDULING",
            Some("slotcast.scheduling.slot.created"),
        )
        .await?;
    let ours: Vec<_> = created
        .iter()
        .filter(|m| slot_ids.contains(m.event["data"]["slot_id"].as_str().unwrap()))
        .collect();
    let trace = ours[0]
        .trace_id()
        .expect("slot.created carries a traceparent")
        .to_owned();
    assert!(ours.iter().all(|m| m.trace_id() == Some(trace.as_str())));
    // The confirmations of the bookings before the slots were posted belong to other traces.
    let confirmations: BTreeSet<String> = stack
        .events("SLOTCAST_NOTIFY", Some("slotcast.notify.appointment"))
        .await?
        .into_iter()
        .map(|(_, e)| e["data"]["confirmation_id"].to_string())
        .collect();
    assert_eq!(confirmations.len(), 2, "Carol's and Erin's bookings");
    let downstream: Vec<_> = [
        stack.messages("SLOTCAST_NOTIFY", None).await?,
        stack.messages("SLOTCAST_DELIVERY", None).await?,
    ]
    .concat()
    .into_iter()
    .filter(|m| {
        m.subject != "slotcast.notify.appointment"
            && !confirmations.contains(&m.event["data"]["notification_id"].to_string())
    })
    .collect();
    assert_eq!(
        downstream.len(),
        6,
        "two notify, two email.sent, two inapp.stored"
    );
    for m in stack
        .messages("SLOTCAST_SCHEDULING", None)
        .await?
        .iter()
        .chain(&downstream)
    {
        assert_eq!(
            m.msg_id.as_deref(),
            m.event["id"].as_str(),
            "Nats-Msg-Id of {}",
            m.subject
        );
    }
    for m in &downstream {
        assert_eq!(
            m.trace_id(),
            Some(trace.as_str()),
            "{} continues the trace",
            m.subject
        );
    }

    // Every event on every stream matches its schema (checked while reading).
    for stream in [
        "SLOTCAST_SCHEDULING",
        "SLOTCAST_NOTIFY",
        "SLOTCAST_DELIVERY",
    ] {
        stack.events(stream, None).await?;
    }
    stack.stop().await
}
