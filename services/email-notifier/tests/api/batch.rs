//! One batch as the consumer hands it over, straight to the handler: the batch is claimed
//! together, and each message is still answered on its own.

use std::time::Duration;

use email_notifier::{
    Migrator,
    deliveries::{self, Status},
    handler::{NotifyHandler, Retry, Sending},
    mailer::Mailer,
    render::Templates,
};
use sea_orm_migration::MigratorTrait;
use slotcast_bus::{
    consumer::{BatchHandler, Delivery, Outcome},
    outbox::Relay,
};
use slotcast_events::{CloudEvent, NotifyPatient, WaitKind, subjects};
use slotcast_test_support::{NatsServer, SmtpServer, TestDatabase};

use crate::helpers::{notification, republished};

fn delivery(seq: u64, payload: Vec<u8>) -> Delivery {
    Delivery {
        subject: subjects::NOTIFY_PATIENT.to_owned(),
        payload: bytes::Bytes::from(payload),
        deliveries: 1,
        stream_sequence: seq,
        trace: Default::default(),
        order: None,
    }
}

fn json(event: &CloudEvent<NotifyPatient>) -> Vec<u8> {
    serde_json::to_vec(event).unwrap()
}

/// The servers a handler needs, kept alive with it.
struct Setup {
    handler: NotifyHandler,
    db: sea_orm::DatabaseConnection,
    smtp: SmtpServer,
    _nats: NatsServer,
    _database: TestDatabase,
}

/// A handler sending 4 emails at once, claims held for `lease`.
async fn setup(lease: Duration) -> Setup {
    slotcast_test_support::init_tracing();
    let nats = NatsServer::start().await.expect("nats-server starts");
    let database = TestDatabase::postgres().await.expect("a test database");
    let smtp = SmtpServer::start().await.expect("the SMTP server starts");
    let db = database.connect().await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let handler = NotifyHandler::new(
        db.clone(),
        Relay::new(db.clone(), js),
        Mailer::smtp(&smtp.url(), 2).unwrap(),
        Templates::new().unwrap(),
        Sending {
            from: "slotcast <no-reply@slotcast.localhost>".parse().unwrap(),
            // Claims go four at a time: good[0] and its copy share one.
            concurrency: 4,
            max_unrecorded: 2,
            retry: Retry {
                delays: slotcast_kit::retry::Backoff::new(
                    Duration::from_millis(200),
                    Duration::from_secs(1),
                ),
                horizon: Duration::from_secs(3600),
            },
            lease,
        },
    );
    Setup {
        handler,
        db,
        smtp,
        _nats: nats,
        _database: database,
    }
}

#[tokio::test]
async fn a_batch_is_claimed_together_and_each_message_gets_its_own_outcome() {
    let setup = setup(Duration::from_secs(60)).await;
    let (handler, db, smtp) = (&setup.handler, &setup.db, &setup.smtp);

    let good: Vec<_> = (0..6).map(|_| notification(WaitKind::New)).collect();
    let mut bad_address = notification(WaitKind::New);
    bad_address.data.patient.email = "not an address".to_owned();
    let mut off = notification(WaitKind::New);
    off.data.channels.email = false;
    // Messages without a claim (email off, malformed) among those with one, so the claims must
    // be matched to their messages; good[0]'s copy (a second decision published meanwhile)
    // right behind it, so both are claimed by the same statement.
    let payloads: Vec<Vec<u8>> = vec![
        json(&off),
        json(&good[0]),
        json(&republished(&good[0])),
        b"{not json".to_vec(),
        json(&good[1]),
        json(&bad_address),
        json(&good[2]),
        json(&good[3]),
        json(&good[4]),
        json(&good[5]),
    ];
    let batch: Vec<Delivery> = payloads
        .into_iter()
        .enumerate()
        .map(|(i, p)| delivery(i as u64 + 1, p))
        .collect();

    let outcomes = handler.handle_batch(&batch).await;

    assert_eq!(outcomes.len(), batch.len());
    assert_eq!(
        outcomes[0],
        Outcome::Done,
        "email turned off: nothing to do"
    );
    assert_eq!(outcomes[1], Outcome::Done, "good[0]");
    // The copy found good[0] claimed and in flight: it comes back once the lease has run out,
    // and then finds it sent.
    assert!(
        matches!(&outcomes[2], Outcome::Retry { delay, reason }
            if *delay > Duration::from_secs(30) && reason.contains("in flight")),
        "{:?}",
        outcomes[2]
    );
    assert!(
        matches!(outcomes[3], Outcome::Reject(_)),
        "{:?}",
        outcomes[3]
    );
    assert_eq!(outcomes[4], Outcome::Done, "good[1]");
    assert_eq!(outcomes[5], Outcome::Done, "an invalid address is given up");
    for (i, outcome) in outcomes[6..].iter().enumerate() {
        assert_eq!(outcome, &Outcome::Done, "good[{}]", i + 2);
    }

    let mails = smtp.messages();
    assert_eq!(mails.len(), 6, "one email for each good notification");
    for e in &good {
        let to = vec![e.data.patient.email.clone()];
        assert_eq!(mails.iter().filter(|m| m.to == to).count(), 1);
        let row = deliveries::find(db, e.data.notification_id)
            .await
            .unwrap()
            .expect("a delivery row");
        assert_eq!(
            (row.status, row.attempts, row.in_flight),
            (Status::Sent, 1, false)
        );
    }
    let failed = deliveries::find(db, bad_address.data.notification_id)
        .await
        .unwrap()
        .expect("the invalid address's row");
    assert_eq!((failed.status, failed.in_flight), (Status::Failed, false));
    assert!(
        deliveries::find(db, off.data.notification_id)
            .await
            .unwrap()
            .is_none(),
        "nothing recorded for a patient who turned email off"
    );

    // The copy's redelivery, in a batch of its own: finished, nothing sent.
    let again = handler.handle_batch(&batch[2..3]).await;
    assert_eq!(again, vec![Outcome::Done]);
    assert_eq!(smtp.messages().len(), 6);
}

/// A claim whose lease ran out before its send (here a lease of nothing) is renewed first; when
/// a copy of the notification has taken it over meanwhile, only the copy sends.
#[tokio::test]
async fn a_claim_taken_over_before_its_send_is_not_sent_twice() {
    let setup = setup(Duration::ZERO).await;
    let (handler, db, smtp) = (&setup.handler, &setup.db, &setup.smtp);
    let first = notification(WaitKind::New);
    let other = notification(WaitKind::New);
    let batch = vec![
        delivery(1, json(&first)),
        delivery(2, json(&republished(&first))),
        delivery(3, json(&other)),
    ];

    let outcomes = handler.handle_batch(&batch).await;

    assert_eq!(outcomes, vec![Outcome::Done; 3]);
    let mails = smtp.messages();
    assert_eq!(mails.len(), 2, "one email for each notification");
    let row = deliveries::find(db, first.data.notification_id)
        .await
        .unwrap()
        .expect("a delivery row");
    assert_eq!(
        (row.status, row.attempts, row.in_flight),
        (Status::Sent, 2, false),
        "the copy's attempt took the claim over and sent"
    );
}
