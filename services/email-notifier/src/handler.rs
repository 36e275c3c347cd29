//! The consumers of `slotcast.notify.patient` and `slotcast.notify.appointment`: one email per
//! notification or confirmation, at most once as far as this service can tell (the README,
//! Reliability, names the one window where it cannot). A confirmation is keyed on its
//! confirmation id exactly as a notification is on its notification id: one delivery log.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use lettre::message::Mailbox;
use sea_orm::{DatabaseConnection, DbErr};
use slotcast_bus::{
    consumer::{BatchHandler, Delivery, Outcome},
    outbox::Relay,
};
use slotcast_events::{
    AppointmentConfirmation, ConfirmationKind, DecodeError, NotifyPatient, subjects,
};
use slotcast_kit::retry::Backoff;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::{
    compose,
    deliveries::{self, Claim, Key},
    group_commit::GroupCommit,
    mailer::{Mailer, Outgoing, SEND_TIMEOUT, SendError},
    render::Templates,
};

/// Retries after transient failures: the `delays` of the one retry policy, for as long as
/// `horizon` after the first attempt; then the notification is given up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retry {
    pub delays: Backoff,
    pub horizon: Duration,
}

impl Retry {
    /// Whether a notification first tried at `first_tried` may still be retried at `now`.
    pub fn within_horizon(&self, first_tried: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        (now - first_tried).to_std().unwrap_or_default() < self.horizon
    }

    /// The delay after the `deliveries`-th delivery failed (1 for the first).
    pub fn delay(&self, deliveries: i64) -> Duration {
        self.delays.delay(deliveries)
    }
}

/// Sends the email of each `NotifyPatient` and records the outcome.
///
/// It takes the messages a batch at a time. First everything that needs no database: decoding,
/// rendering, the MIME message. Then the claims, `EMAIL_CONCURRENCY` messages with one statement
/// ([`deliveries::claim_many`]), the whole batch at once. Then the sends: an email takes a send
/// permit for its SMTP transaction (`EMAIL_CONCURRENCY` at once), and, before the last line of its
/// message, after which the server may have accepted it, one of the `EMAIL_MAX_UNRECORDED`
/// permits that it gives back once its outcome is written. So no more than
/// `EMAIL_MAX_UNRECORDED` emails are ever accepted and not yet recorded (the crash window, in
/// the README). A message whose claim waited for a permit so long (slow sends ahead of it) that
/// the longest send would outlast the lease renews it before its own send
/// ([`deliveries::renew`]), so no other attempt can take it over while it is out. The `sent`
/// records of concurrent sends are written together with their events (one statement):
/// [`GroupCommit`].
pub struct NotifyHandler {
    pub db: DatabaseConnection,
    pub relay: Relay,
    pub mailer: Mailer,
    pub templates: Templates,
    pub sending: Sending,
    /// SMTP transactions at once (`EMAIL_CONCURRENCY`).
    sends: Semaphore,
    /// Emails the server may have accepted whose outcome is not written yet
    /// (`EMAIL_MAX_UNRECORDED`): what a crash can send twice.
    unrecorded: Semaphore,
    recording: GroupCommit<Key, ()>,
}

/// How the handler sends: what [`crate::Config`] says, in one value.
#[derive(Debug, Clone)]
pub struct Sending {
    /// `SMTP_FROM`.
    pub from: Mailbox,
    /// `EMAIL_CONCURRENCY`: SMTP transactions at once (at least 1).
    pub concurrency: usize,
    /// `EMAIL_MAX_UNRECORDED`: emails accepted by the server and not yet recorded, at most (at
    /// least 1).
    pub max_unrecorded: usize,
    /// Retries after transient failures.
    pub retry: Retry,
    /// How long a claimed attempt keeps others away: the consumer's ack wait.
    pub lease: Duration,
}

impl NotifyHandler {
    /// A handler sending through `mailer` as `sending` says.
    pub fn new(
        db: DatabaseConnection,
        relay: Relay,
        mailer: Mailer,
        templates: Templates,
        mut sending: Sending,
    ) -> Self {
        sending.concurrency = sending.concurrency.max(1);
        sending.max_unrecorded = sending.max_unrecorded.max(1);
        Self {
            db,
            relay,
            mailer,
            templates,
            sends: Semaphore::new(sending.concurrency),
            unrecorded: Semaphore::new(sending.max_unrecorded),
            sending,
            recording: GroupCommit::default(),
        }
    }

    /// Emails out at once at most (`EMAIL_CONCURRENCY`).
    pub fn concurrency(&self) -> usize {
        self.sending.concurrency
    }
}

/// A notification ready to be claimed and sent: decoded, rendered and formatted.
struct Ready<'a> {
    delivery: &'a Delivery,
    span: tracing::Span,
    key: Key,
    /// The message, or why it cannot be built (given up once claimed).
    message: Result<Outgoing, String>,
}

impl BatchHandler for NotifyHandler {
    async fn handle_batch(&self, deliveries: &[Delivery]) -> Vec<Outcome> {
        let mut outcomes: Vec<Option<Outcome>> = vec![None; deliveries.len()];
        let mut ready: Vec<(usize, Ready<'_>)> = Vec::with_capacity(deliveries.len());
        for (i, delivery) in deliveries.iter().enumerate() {
            match self.prepare(delivery) {
                Ok(r) => ready.push((i, r)),
                Err(outcome) => outcomes[i] = Some(outcome),
            }
        }
        let mut chunks: Vec<Vec<(usize, Ready<'_>)>> = Vec::new();
        while !ready.is_empty() {
            let rest = ready.split_off(ready.len().min(self.sending.concurrency));
            chunks.push(std::mem::replace(&mut ready, rest));
        }
        let done = futures::future::join_all(chunks.into_iter().map(|c| self.claim_and_send(c)));
        for (i, outcome) in done.await.into_iter().flatten() {
            outcomes[i] = Some(outcome);
        }
        outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| Outcome::Retry {
                    delay: self.sending.retry.delays.base,
                    reason: "the message was not answered".to_owned(),
                })
            })
            .collect()
    }
}

impl NotifyHandler {
    /// Claims `chunk` (one statement), then sends each of its messages; returns each message's
    /// outcome with its place in the batch.
    async fn claim_and_send(&self, chunk: Vec<(usize, Ready<'_>)>) -> Vec<(usize, Outcome)> {
        let keys: Vec<Key> = chunk.iter().map(|(_, r)| r.key.clone()).collect();
        // One claim for the chunk; a failure of it is every claim's answer.
        let claims = match deliveries::claim_many(&self.db, &keys, self.sending.lease).await {
            Ok(claims) => claims,
            Err(e) => vec![Err(e); keys.len()],
        };
        let claimed_at = Instant::now();
        let sends = chunk
            .into_iter()
            .zip(claims)
            .map(|((i, ready), claim)| async move {
                let span = ready.span.clone();
                let outcome = self.send(ready, claim, claimed_at).instrument(span).await;
                (i, outcome)
            });
        futures::future::join_all(sends).await
    }
}

impl NotifyHandler {
    /// What one message needs before its claim: decoded, checked, rendered and formatted; or
    /// its outcome when there is nothing to send.
    fn prepare<'a>(&self, delivery: &'a Delivery) -> Result<Ready<'a>, Outcome> {
        if delivery.subject == subjects::NOTIFY_APPOINTMENT {
            return self.prepare_confirmation(delivery);
        }
        let event = match slotcast_events::decode::<NotifyPatient>(&delivery.payload) {
            Ok(event) => event,
            Err(e) => return Err(Outcome::Reject(describe(&e))),
        };
        let notify = event.data;
        let span = tracing::info_span!(
            "email",
            notification_id = %notify.notification_id,
            patient_id = %notify.patient.id,
        );
        // The message's trace, whichever batch it came in.
        if !delivery.trace.is_empty() {
            slotcast_kit::telemetry::set_parent_from(
                &span,
                delivery.trace.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
        }
        let _entered = span.enter();
        if notify.slots.is_empty() {
            return Err(Outcome::Reject("a notification without slots".to_owned()));
        }
        if !notify.channels.email {
            // The patient turned availability email off: nothing to send, nothing to record.
            metrics::counter!("slotcast_email_skipped_total", "reason" => "opted_out").increment(1);
            tracing::debug!("availability email turned off by the patient; not sent");
            return Err(Outcome::Done);
        }
        let rendered = match self.templates.render(&notify) {
            Ok(r) => r,
            Err(e) => return Err(Outcome::Reject(e.to_string())),
        };
        let message_id = compose::message_id(notify.notification_id);
        let message =
            compose::compose(&self.sending.from, &notify, rendered).map(|m| Outgoing::from(&m));
        drop(_entered);
        Ok(Ready {
            delivery,
            span,
            key: Key {
                notification_id: notify.notification_id,
                patient_id: notify.patient.id,
                message_id,
                trace: delivery.trace.clone(),
            },
            message,
        })
    }

    /// [`Self::prepare`] for a confirmation: its email with the calendar entry (`REQUEST` for a
    /// booking or a move, which updates the entry of the same `UID`; `CANCEL` for a
    /// cancellation), keyed on the confirmation id.
    fn prepare_confirmation<'a>(&self, delivery: &'a Delivery) -> Result<Ready<'a>, Outcome> {
        let event =
            slotcast_events::decode::<AppointmentConfirmation>(&delivery.payload).map_err(|e| {
                Outcome::Reject(format!("not an AppointmentConfirmation CloudEvent: {e}"))
            })?;
        let stamp = event.time;
        let confirmation = event.data;
        let span = tracing::info_span!(
            "email",
            confirmation_id = %confirmation.confirmation_id,
            appointment_id = %confirmation.appointment_id,
            patient_id = %confirmation.patient.id,
        );
        if !delivery.trace.is_empty() {
            slotcast_kit::telemetry::set_parent_from(
                &span,
                delivery.trace.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
        }
        let _entered = span.enter();
        if !confirmation.channels.email {
            metrics::counter!("slotcast_email_skipped_total", "reason" => "opted_out").increment(1);
            tracing::debug!("email turned off by the patient; confirmation not sent");
            return Err(Outcome::Done);
        }
        let rendered = self
            .templates
            .render_confirmation(&confirmation)
            .map_err(|e| Outcome::Reject(e.to_string()))?;
        let calendar = self.calendar_entry(&confirmation, stamp);
        let method = calendar_method(confirmation.kind);
        let message = compose::compose_confirmation(
            &self.sending.from,
            &confirmation,
            rendered,
            calendar,
            method,
        )
        .map(|m| Outgoing::from(&m));
        drop(_entered);
        Ok(Ready {
            delivery,
            span,
            key: Key {
                notification_id: confirmation.confirmation_id,
                patient_id: confirmation.patient.id,
                message_id: compose::message_id(confirmation.confirmation_id),
                trace: delivery.trace.clone(),
            },
            message,
        })
    }

    /// The calendar entry a confirmation carries, in the patient's language, organized by the
    /// practice (the sender's address) with the patient as the one attendee, already accepted.
    fn calendar_entry(
        &self,
        confirmation: &AppointmentConfirmation,
        stamp: DateTime<Utc>,
    ) -> String {
        let locale = slotcast_i18n::Locale::negotiate(&confirmation.patient.locale);
        let words = slotcast_calendar::Words::new(
            &locale,
            &confirmation.practitioner.name,
            &confirmation.practitioner.specialty,
            &confirmation.manage_url,
        );
        let organizer = self.sending.from.email.to_string();
        slotcast_calendar::render(
            calendar_method(confirmation.kind),
            &slotcast_calendar::Entry {
                appointment_id: confirmation.appointment_id,
                sequence: confirmation.sequence,
                starts_at: confirmation.starts_at,
                ends_at: confirmation.ends_at,
                summary: &words.summary,
                description: &words.description,
                url: Some(&words.url),
                organizer: Some(slotcast_calendar::Person {
                    name: &confirmation.practitioner.name,
                    email: &organizer,
                }),
                attendee: Some(slotcast_calendar::Person {
                    name: &confirmation.patient.name,
                    email: &confirmation.patient.email,
                }),
                cancelled: confirmation.kind == ConfirmationKind::Cancelled,
                stamp,
            },
        )
    }

    /// Sends a prepared message under its `claim` (taken at `claimed_at`), and records the
    /// outcome.
    async fn send(
        &self,
        ready: Ready<'_>,
        claim: Result<Claim, DbErr>,
        claimed_at: Instant,
    ) -> Outcome {
        let Ready {
            delivery,
            key,
            message,
            ..
        } = ready;
        let deliveries = delivery.deliveries;
        let (attempt, first_tried) = match claim {
            Ok(Claim::Finished(status)) => {
                tracing::debug!(?status, "already delivered or given up; nothing to send");
                return Outcome::Done;
            }
            Ok(Claim::Busy(left)) => {
                return Outcome::Retry {
                    delay: left + Duration::from_secs(1),
                    reason: "another attempt for this notification is in flight".to_owned(),
                };
            }
            Ok(Claim::Attempt {
                attempt,
                after_unknown,
                first_tried,
            }) => {
                if after_unknown {
                    // The previous attempt never wrote its outcome: the patient may get this twice.
                    metrics::counter!("slotcast_email_resend_after_unknown_total").increment(1);
                    tracing::warn!(
                        attempt,
                        "sending again after an attempt whose outcome is unknown"
                    );
                }
                (attempt, first_tried)
            }
            Err(e) => {
                return Outcome::retry(
                    self.sending.retry.delay(deliveries),
                    &anyhow::Error::new(e).context("cannot claim the delivery"),
                );
            }
        };
        let message = match message {
            Ok(m) => m,
            Err(reason) => return self.give_up(&key, &reason, true).await,
        };
        let Ok(transaction) = self.sends.acquire().await else {
            return Outcome::Retry {
                delay: self.sending.retry.delays.base,
                reason: "the sender is closed".to_owned(),
            };
        };
        // A claim keeps other attempts away for its lease. One that waited so long for its turn
        // (slow sends ahead of it) that the longest send would outlast the lease is renewed
        // first; if another attempt took over meanwhile, that one sends.
        if claimed_at.elapsed() + SEND_TIMEOUT >= self.sending.lease {
            match deliveries::renew(&self.db, key.notification_id, attempt).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!("another attempt took this notification over; not sent here");
                    return Outcome::Done;
                }
                Err(e) => {
                    return Outcome::retry(
                        self.sending.retry.delay(deliveries),
                        &anyhow::Error::new(e).context("cannot renew the claim"),
                    );
                }
            }
        }
        let started = Instant::now();
        let sent = self
            .mailer
            .send(key.notification_id, &message, &self.unrecorded)
            .await;
        drop(transaction);
        metrics::histogram!("slotcast_email_send_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        match sent {
            Ok(_unrecorded) => self.record_sent(key).await,
            Err(SendError::Permanent(reason)) => self.give_up(&key, &reason, true).await,
            Err(SendError::Transient(reason))
                if deliveries >= crate::MAX_DELIVER
                    || !self.sending.retry.within_horizon(first_tried, Utc::now()) =>
            {
                self.give_up(
                    &key,
                    &format!("gave up after {deliveries} deliveries: {reason}"),
                    false,
                )
                .await
            }
            Err(SendError::Transient(reason)) => {
                metrics::counter!("slotcast_email_retried_total").increment(1);
                let delay = self.sending.retry.delay(deliveries);
                tracing::warn!(%reason, ?delay, "email not sent, will retry");
                if let Err(e) =
                    deliveries::record_transient(&self.db, key.notification_id, &reason).await
                {
                    tracing::warn!(error = %e, "could not record the failed attempt");
                }
                Outcome::Retry { delay, reason }
            }
        }
    }

    /// Records `sent` with its event, together with the other sends that finished meanwhile.
    /// The message is out: a failure to record here would make the redelivery send it again, so
    /// it is tried a few more times on its own before giving up.
    async fn record_sent(&self, key: Key) -> Outcome {
        let mut recorded = self
            .recording
            .submit(key.clone(), |keys| async move {
                deliveries::record_sent_many(&self.db, &keys).await?;
                Ok(vec![(); keys.len()])
            })
            .await;
        let mut pause = Duration::from_millis(200);
        let mut tries = 1;
        loop {
            match recorded {
                Ok(()) => {
                    self.relay.wake();
                    metrics::counter!("slotcast_email_sent_total").increment(1);
                    tracing::info!("email sent");
                    return Outcome::Done;
                }
                Err(e) if tries < 4 => {
                    tracing::warn!(error = %e, "email sent but not recorded yet; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 3;
                }
                Err(e) => {
                    tracing::error!(error = %e, "email sent but not recorded; it may be sent again");
                    let err = anyhow::Error::new(e).context("email sent but not recorded");
                    return Outcome::retry(self.sending.lease, &err);
                }
            }
            tries += 1;
            recorded = deliveries::record_sent(&self.db, &key).await;
        }
    }

    /// Records `failed` with its event; the message is not retried.
    async fn give_up(&self, key: &Key, reason: &str, permanent: bool) -> Outcome {
        match deliveries::record_failed(&self.db, key, reason, permanent).await {
            Ok(()) => {
                self.relay.wake();
                let permanent = if permanent { "true" } else { "false" };
                metrics::counter!("slotcast_email_failed_total", "permanent" => permanent)
                    .increment(1);
                tracing::warn!(%reason, permanent, "email not sent, given up");
                Outcome::Done
            }
            Err(e) => {
                let err = anyhow::Error::new(e).context("cannot record the failed delivery");
                Outcome::retry(self.sending.retry.delays.base, &err)
            }
        }
    }
}

/// What a confirmation's calendar entry asks of the patient's calendar: a booking and a move add
/// or update the entry, a cancellation removes it.
pub fn calendar_method(kind: ConfirmationKind) -> slotcast_calendar::Method {
    match kind {
        ConfirmationKind::Booked | ConfirmationKind::Moved => slotcast_calendar::Method::Request,
        ConfirmationKind::Cancelled => slotcast_calendar::Method::Cancel,
    }
}

/// Why a payload was refused; [`DecodeError`] never quotes values (they may be patient data).
fn describe(err: &DecodeError) -> String {
    format!("not a NotifyPatient CloudEvent: {err}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delays_double_up_to_their_cap() {
        let b = Retry {
            delays: Backoff::new(Duration::from_secs(5), Duration::from_secs(900)),
            horizon: Duration::from_secs(3600),
        };
        let delays: Vec<_> = (1..=10).map(|n| b.delays.ceiling(n).as_secs()).collect();
        assert_eq!(delays, vec![5, 10, 20, 40, 80, 160, 320, 640, 900, 900]);
        assert!(b.delay(i64::MAX) <= Duration::from_secs(900));
    }

    #[test]
    fn retries_end_at_the_horizon() {
        let b = Retry {
            delays: Backoff::new(Duration::from_secs(5), Duration::from_secs(900)),
            horizon: Duration::from_secs(3600),
        };
        let first = Utc::now();
        assert!(b.within_horizon(first, first + chrono::Duration::minutes(59)));
        assert!(!b.within_horizon(first, first + chrono::Duration::minutes(60)));
        // A clock that went back counts as no time elapsed.
        assert!(b.within_horizon(first, first - chrono::Duration::minutes(5)));
    }

    #[test]
    fn a_refused_payload_is_described_without_its_values() {
        let bad = br#"{"specversion":"1.0","id":"x","source":"s","type":"t","time":"now","subject":"s","datacontenttype":"application/json","data":{"patient":"alice@example.com"}}"#;
        let err = slotcast_events::decode::<NotifyPatient>(bad).unwrap_err();
        let text = describe(&err);
        assert!(!text.contains("alice"), "{text}");
        assert!(
            describe(&slotcast_events::decode::<NotifyPatient>(b"{nope").unwrap_err())
                .contains("not valid JSON")
        );
    }
}
