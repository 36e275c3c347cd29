use slotcast_events::{EmailSent, WaitKind};

use crate::helpers::{Db, Mail, eventually, notification, spawn_app_with};

#[tokio::test]
async fn without_smtp_url_on_sqlite_the_email_is_written_as_an_eml_file_into_the_mail_dir() {
    let app = spawn_app_with(Db::Sqlite, Mail::Folder).await;
    let event = notification(WaitKind::New);
    let n = &event.data;

    app.publish(&event).await;

    let path = app
        .mail_dir
        .path()
        .join("mail")
        .join(format!("{}.eml", n.notification_id));
    let eml = eventually("the .eml file", || async {
        std::fs::read_to_string(&path).ok()
    })
    .await;
    assert!(
        eml.contains(&format!("Message-ID: <{}@slotcast>", n.notification_id)),
        "{eml}"
    );
    assert!(
        eml.contains("Subject: New appointment times with Dr Ada Lovelace"),
        "{eml}"
    );
    assert!(eml.contains("multipart/alternative"));

    let sent = app.wait_for_events::<EmailSent>(1).await;
    assert_eq!(sent[0].data.notification_id, n.notification_id);
    let row = app.delivery(n.notification_id).await.unwrap();
    assert_eq!(row.status, email_notifier::deliveries::Status::Sent);

    // Only the finished file is there: no temporary file left behind.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![format!("{}.eml", n.notification_id)]);
}
