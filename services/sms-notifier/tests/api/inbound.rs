//! The address patients' texts are handed to: only with its key, and only a text from a number
//! with the gateway's id is taken. (What a text does is tested end to end, with scheduling:
//! `testing/e2e/tests/texts.rs`.)

use sea_orm::EntityTrait as _;

use crate::helpers::{INBOUND_KEY, Texts, spawn_app_with};

#[tokio::test]
async fn a_text_without_the_key_a_number_or_an_id_is_refused() {
    let app = spawn_app_with(Texts::Folder).await;
    let ok = "from=%2B33612345678&to=12345&text=HELP&id=m1";
    let wrong_key = app
        .get(&format!("/v1/sms/inbound/not-the-key-at-all?{ok}"))
        .await;
    assert_eq!(wrong_key.status(), 404);
    assert_eq!(
        wrong_key.headers()["content-type"],
        "application/problem+json"
    );
    let not_a_number = app
        .get(&format!(
            "/v1/sms/inbound/{INBOUND_KEY}?from=alice&to=12345&text=HELP&id=m2"
        ))
        .await;
    assert_eq!(not_a_number.status(), 422);
    let no_id = app
        .get(&format!(
            "/v1/sms/inbound/{INBOUND_KEY}?from=%2B33612345678&to=12345&text=HELP"
        ))
        .await;
    assert_eq!(no_id.status(), 400);
    // HELP needs no scheduling: answered, as a text of its own (here a file).
    let help = app
        .get(&format!("/v1/sms/inbound/{INBOUND_KEY}?{ok}"))
        .await;
    assert_eq!(help.status(), 204);
    assert!(
        help.text().await.unwrap().is_empty(),
        "nothing to text back"
    );
    let written: Vec<String> = std::fs::read_dir(app.folder.path())
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(
        written[0].contains("Texts about free appointment times"),
        "{}",
        written[0]
    );
}

#[tokio::test]
async fn a_stop_that_cannot_reach_scheduling_is_not_answered_and_asks_to_be_sent_again() {
    let app = spawn_app_with(Texts::Folder).await;
    let stop = app
        .get(&format!(
            "/v1/sms/inbound/{INBOUND_KEY}?from=%2B33612345678&to=12345&text=STOP&id=m3"
        ))
        .await;
    assert_eq!(stop.status(), 503);
    // The number is stopped here already: sending stops at once.
    assert!(
        sms_notifier::inbox::is_stopped(&app.db, "+33612345678")
            .await
            .unwrap()
    );
    // Delivered again, it is still the first STOP of the number: its confirmation is kept for
    // when scheduling answers, not lost to "stopped already".
    let again = app
        .get(&format!(
            "/v1/sms/inbound/{INBOUND_KEY}?from=%2B33612345678&to=12345&text=STOP&id=m3"
        ))
        .await;
    assert_eq!(again.status(), 503);
    let inbound = sms_notifier::entities::inbound::Entity::find_by_id("m3".to_owned())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inbound.outcome.as_deref(), Some("stopped"));
    assert!(
        inbound
            .reply
            .unwrap()
            .starts_with("You will get no more texts")
    );
    assert!(inbound.answered_at.is_none());
}
