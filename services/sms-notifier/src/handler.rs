//! The consumer's handler: for each `NotifyPatient`, claim the delivery, compose the text,
//! hand it to the gateway, and record the outcome.
//!
//! A patient without a phone number or consent (`channels.sms` false) is skipped at once; a
//! message to be texted after the patient's quiet hours (`sms_not_before`) comes back then. A
//! gateway that refuses for now is tried again with a growing delay until the retry horizon;
//! a refusal for good, or the end of the horizon, records the text `failed`.

use std::sync::Arc;

use chrono::Utc;
use sea_orm::DatabaseConnection;
use slotcast_bus::{
    consumer::{Delivery, Handler, Outcome},
    outbox::Relay,
};
use slotcast_events::NotifyPatient;
use uuid::Uuid;

use crate::{
    config::Retry,
    deliveries::{self, Claim, Key, NewText},
    gateway::{Gateway, Gateways, Outgoing, Refused},
    inbox,
    text::{self, Offered},
};

/// Sends the text of each notification.
pub struct SendSms {
    pub db: DatabaseConnection,
    pub relay: Relay,
    pub gateway: Arc<Gateways>,
    pub retry: Retry,
    /// Where the gateway reaches this service: `{base}/v1/sms/reports/...`.
    pub report_base_url: String,
    /// Where patients reach this service's short links: `{base}/s/...`.
    pub link_base_url: String,
    /// How long an attempt may take before another may claim the delivery.
    pub lease: std::time::Duration,
}

impl Handler for SendSms {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        let event = match slotcast_events::decode::<NotifyPatient>(&delivery.payload) {
            Ok(event) => event.data,
            Err(e) => return Outcome::Reject(format!("not a NotifyPatient event: {e}")),
        };
        let Some(to) = event.patient.phone.clone().filter(|_| event.channels.sms) else {
            metrics::counter!("slotcast_sms_skipped_total", "reason" => "no_consent").increment(1);
            tracing::debug!(notification_id = %event.notification_id, patient_id = %event.patient.id, "no text messages for this patient");
            return Outcome::Done;
        };
        if let Some(wait) = event
            .sms_not_before
            .and_then(|at| (at - Utc::now()).to_std().ok())
            .filter(|wait| !wait.is_zero())
        {
            // The patient's quiet hours: JetStream hands the message back when they end.
            metrics::counter!("slotcast_sms_deferred_total").increment(1);
            tracing::debug!(notification_id = %event.notification_id, ?wait, "quiet hours; texted when they end");
            return Outcome::Wait {
                delay: wait,
                reason: "the patient's quiet hours".to_owned(),
            };
        }
        let key = Key {
            notification_id: event.notification_id,
            patient_id: event.patient.id,
            trace: delivery.trace.clone(),
        };
        match self.send(&event, &to, &key).await {
            Ok(outcome) => outcome,
            Err(e) => Outcome::retry(self.retry.delays.delay(delivery.deliveries), &e),
        }
    }
}

impl SendSms {
    async fn send(&self, event: &NotifyPatient, to: &str, key: &Key) -> anyhow::Result<Outcome> {
        let nid = key.notification_id;
        let Some(offered) = Offered::of(event) else {
            return Ok(Outcome::Reject(format!(
                "notification {nid} offers no slot"
            )));
        };
        if inbox::is_stopped(&self.db, to).await? {
            // The number texted STOP: nothing more goes to it, whatever the event says.
            metrics::counter!("slotcast_sms_skipped_total", "reason" => "stopped").increment(1);
            tracing::info!(notification_id = %nid, patient_id = %key.patient_id, "the number texted STOP; not texted");
            return Ok(Outcome::Done);
        }
        let new = NewText {
            phone: to,
            offered: &offered,
        };
        let claim = deliveries::claim(&self.db, key, &new, self.lease).await?;
        let (attempt, first_tried, report_key, short_id) = match claim {
            Claim::Finished(status) => {
                tracing::debug!(notification_id = %nid, ?status, "text already handled");
                return Ok(Outcome::Done);
            }
            Claim::Busy(left) => {
                return Ok(Outcome::Wait {
                    delay: left,
                    reason: "another attempt is in flight".to_owned(),
                });
            }
            Claim::Attempt {
                attempt,
                after_unknown,
                first_tried,
                report_key,
                short_id,
            } => {
                if after_unknown {
                    metrics::counter!("slotcast_sms_resend_after_unknown_total").increment(1);
                    tracing::warn!(notification_id = %nid, attempt, "the last attempt ended without a word; it may have gone out");
                }
                (attempt, first_tried, report_key, short_id)
            }
        };
        let link = format!("{}/s/{short_id}", self.link_base_url);
        let body = offered.availability(&link);
        let length = text::length(&body);
        let report_url = report_url(&self.report_base_url, nid, &report_key);
        let outgoing = Outgoing {
            notification_id: nid,
            to,
            text: &body,
            length,
            report_url: Some(&report_url),
        };
        match self.gateway.send(&outgoing).await {
            Ok(accepted) => {
                deliveries::record_sent(&self.db, key, accepted.gateway_id, length.segments)
                    .await?;
                self.relay.wake();
                metrics::counter!("slotcast_sms_sent_total").increment(1);
                metrics::counter!("slotcast_sms_segments_total")
                    .increment(u64::from(length.segments));
                tracing::info!(notification_id = %nid, patient_id = %key.patient_id, attempt, segments = length.segments, "text sent");
                Ok(Outcome::Done)
            }
            Err(Refused::Permanent(reason)) => {
                deliveries::record_failed(&self.db, key, &reason, true).await?;
                self.relay.wake();
                metrics::counter!("slotcast_sms_failed_total", "permanent" => "true").increment(1);
                tracing::warn!(notification_id = %nid, patient_id = %key.patient_id, reason, "text refused for good");
                Ok(Outcome::Done)
            }
            Err(Refused::Temporary(reason)) => {
                let tried_for = (Utc::now() - first_tried).to_std().unwrap_or_default();
                if tried_for >= self.retry.horizon {
                    let reason = format!("gave up after {attempt} attempts: {reason}");
                    deliveries::record_failed(&self.db, key, &reason, false).await?;
                    self.relay.wake();
                    metrics::counter!("slotcast_sms_failed_total", "permanent" => "false")
                        .increment(1);
                    tracing::warn!(notification_id = %nid, patient_id = %key.patient_id, attempt, "text given up on");
                    return Ok(Outcome::Done);
                }
                deliveries::record_transient(&self.db, nid, &reason).await?;
                metrics::counter!("slotcast_sms_retried_total").increment(1);
                let delay = self.retry.delays.delay(i64::from(attempt));
                tracing::info!(notification_id = %nid, attempt, ?delay, reason, "gateway refused for now; retrying");
                Ok(Outcome::Retry { delay, reason })
            }
        }
    }
}

/// The address of a text's delivery reports (each gateway adds its query or form).
pub fn report_url(base: &str, notification_id: Uuid, report_key: &str) -> String {
    format!("{base}/v1/sms/reports/{notification_id}/{report_key}")
}
