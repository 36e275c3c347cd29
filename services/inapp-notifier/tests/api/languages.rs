//! Patients read their feed in their own language.

use slotcast_events::WaitKind;
use uuid::Uuid;

use crate::helpers::{notify_event, spawn_app};

#[tokio::test]
async fn a_french_patient_s_notification_is_in_french() {
    let app = spawn_app().await;
    let patient = Uuid::now_v7();
    let mut three = notify_event(patient, 3, WaitKind::New);
    three.data.patient.locale = "fr-FR".to_owned();
    let mut one = notify_event(patient, 1, WaitKind::MoveUp);
    one.data.patient.locale = "fr".to_owned();

    app.publish_notify(&three).await;
    app.publish_notify(&one).await;

    let feed = app.wait_for_feed(patient, 2).await;
    let by_id = |id: Uuid| {
        feed.iter()
            .find(|n| n["id"] == id.to_string())
            .expect("the notification in the feed")
    };
    let new = by_id(three.data.notification_id);
    assert_eq!(new["title"], "Nouveaux créneaux avec Dr Ada Byron");
    assert_eq!(
        new["body"],
        "3 créneaux sont disponibles. Réservez-en un en un clic."
    );
    let move_up = by_id(one.data.notification_id);
    assert_eq!(move_up["title"], "Des créneaux plus tôt avec Dr Ada Byron");
    assert_eq!(
        move_up["body"],
        "1 créneau est disponible. Réservez-le en un clic."
    );
}

#[tokio::test]
async fn a_patient_with_an_unsupported_locale_reads_english() {
    let app = spawn_app().await;
    let patient = Uuid::now_v7();
    let mut event = notify_event(patient, 2, WaitKind::New);
    event.data.patient.locale = "zz-Qaaa".to_owned();

    app.publish_notify(&event).await;

    let feed = app.wait_for_feed(patient, 1).await;
    assert_eq!(feed[0]["title"], "New appointment times with Dr Ada Byron");
}
