use slotcast_events::{DeadLetter, WaitKind, streams, subjects};
use uuid::Uuid;

use crate::helpers::{eventually, notify_event, spawn_app};

#[tokio::test]
async fn a_malformed_payload_goes_to_the_dead_letter_subject_and_the_consumer_goes_on() {
    let app = spawn_app().await;
    let not_json = "{not json".to_owned();
    // Valid JSON of the wrong type is refused too.
    let wrong_type =
        serde_json::json!({"specversion": "1.0", "type": "slotcast.scheduling.slot.booked.v1"})
            .to_string();
    app.publish_with_msg_id(
        subjects::NOTIFY_PATIENT,
        "garbage-1",
        not_json.clone().into_bytes(),
    )
    .await;
    app.publish_with_msg_id(
        subjects::NOTIFY_PATIENT,
        "garbage-2",
        wrong_type.clone().into_bytes(),
    )
    .await;

    // The consumer goes on: the next good message is stored.
    let patient = Uuid::now_v7();
    app.publish_notify(&notify_event(patient, 2, WaitKind::New))
        .await;
    app.wait_for_feed(patient, 1).await;

    let stream = eventually("both dead letters", || async {
        let stream = app.js.get_stream(streams::DEADLETTER).await.ok()?;
        (stream.cached_info().state.messages == 2).then_some(stream)
    })
    .await;
    let mut payloads = Vec::new();
    for sequence in 1..=2 {
        let message = stream.get_raw_message(sequence).await.unwrap();
        assert_eq!(
            message.subject.as_str(),
            format!("{}.inapp-notifier", subjects::DEADLETTER_PREFIX)
        );
        let letter: DeadLetter = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(letter.consumer, "inapp-notifier");
        assert_eq!(letter.original_subject, subjects::NOTIFY_PATIENT);
        assert!(
            letter.reason.contains("not a NotifyPatient event"),
            "{}",
            letter.reason
        );
        payloads.push(letter.payload);
    }
    payloads.sort();
    let mut expected = vec![not_json, wrong_type];
    expected.sort();
    assert_eq!(payloads, expected);
}
