//! The crash window on a real SMTP server: a message's last line, after which the server may
//! have accepted it, waits for a permit that the sender holds until the outcome is recorded.

use std::time::Duration;

use email_notifier::mailer::{Mailer, Outgoing};
use lettre::Message;
use slotcast_test_support::SmtpServer;
use tokio::sync::Semaphore;
use uuid::Uuid;

fn message(to: &str) -> Outgoing {
    let message = Message::builder()
        .from("Clinic <no-reply@clinic.example>".parse().unwrap())
        .to(to.parse().unwrap())
        .subject("A time that fits")
        .body("Tuesday at 10:00".to_owned())
        .unwrap();
    Outgoing::from(&message)
}

#[tokio::test]
async fn an_email_is_not_accepted_before_it_holds_a_permit_and_keeps_it_after() {
    let smtp = SmtpServer::start().await.unwrap();
    let mailer = Mailer::smtp(&smtp.url(), 2).unwrap();
    let accepted = Semaphore::new(0);
    let outgoing = message("ada@example.org");
    let send = mailer.send(Uuid::now_v7(), &outgoing, &accepted);
    tokio::pin!(send);
    // Without a permit the transaction gets as far as DATA and no further.
    let waited = tokio::time::timeout(Duration::from_millis(500), &mut send).await;
    assert!(waited.is_err(), "the send finished without a permit");
    assert!(smtp.messages().is_empty(), "accepted without a permit");

    accepted.add_permits(1);
    let permit = send.await.expect("the message is accepted");
    assert_eq!(smtp.messages().len(), 1);
    // The permit is the sender's until it has written the outcome.
    assert_eq!(accepted.available_permits(), 0);
    drop(permit);
    assert_eq!(accepted.available_permits(), 1);

    // The connection waited in DATA and is reused for the next message.
    let next = message("grace@example.org");
    drop(mailer.send(Uuid::now_v7(), &next, &accepted).await.unwrap());
    assert_eq!(smtp.messages().len(), 2);
}

#[tokio::test]
async fn a_file_appears_only_once_its_email_holds_a_permit() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = Mailer::folder(dir.path().to_owned()).await.unwrap();
    let accepted = Semaphore::new(0);
    let id = Uuid::now_v7();
    let outgoing = message("ada@example.org");
    let send = mailer.send(id, &outgoing, &accepted);
    tokio::pin!(send);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut send)
            .await
            .is_err()
    );
    assert!(!dir.path().join(format!("{id}.eml")).exists());
    accepted.add_permits(1);
    let _permit = send.await.expect("the file is written");
    assert!(dir.path().join(format!("{id}.eml")).exists());
}
