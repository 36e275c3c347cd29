//! A text from a patient's phone, answered: STOP, START and HELP as carriers require, and a
//! yes or a number that books the slot of the newest offer texted to that number, through
//! scheduling's claim (the same atomic claim as the link: the first claim wins, holds apply).
//!
//! Each text is received once by its gateway id ([`inbox`]); its side effects are safe to
//! repeat (a STOP twice is one STOP, a claim twice books once), its answer is decided once and
//! sent once. When scheduling or the gateway cannot answer now, the text stays undecided or
//! unsent and the gateway is asked to deliver it again.

use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::{
    deliveries,
    gateway::{Gateway, Gateways, Outgoing, Refused},
    inbox::{self, Received},
    keywords::{self, Asked},
    scheduling::{Claimed, Scheduling, Unavailable},
    text::{self, Offered},
};

/// A text a patient sent, as the gateway hands it over.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The gateway's id for the message: the same on a second delivery of it.
    pub gateway_id: String,
    /// The patient's number, E.164.
    pub from: String,
    pub text: String,
}

/// Why a text could not be answered now.
#[derive(Debug, thiserror::Error)]
pub enum NotNow {
    #[error(transparent)]
    Database(#[from] sea_orm::DbErr),
    #[error(transparent)]
    Scheduling(#[from] Unavailable),
    #[error("the gateway did not take the answer: {0}")]
    Gateway(String),
}

/// Answers texts from patients.
pub struct Replies {
    pub db: DatabaseConnection,
    pub gateway: std::sync::Arc<Gateways>,
    pub scheduling: Scheduling,
}

impl Replies {
    /// Acts on `inbound` and answers it, once.
    pub async fn answer(&self, inbound: &Inbound) -> Result<(), NotNow> {
        let asked = keywords::read(&inbound.text);
        let (outcome, reply) =
            match inbox::receive(&self.db, &inbound.gateway_id, &inbound.from, asked.as_str())
                .await?
            {
                Received::Answered => return Ok(()),
                Received::Decided(reply) => {
                    // What failed before may be scheduling's side of a STOP or START.
                    self.tell_scheduling(&inbound.from, asked).await?;
                    ("resent", reply)
                }
                Received::Undecided => {
                    let (outcome, reply) = self.decide(&inbound.from, asked).await?;
                    // Stored before scheduling is told: a STOP confirmed once, whatever fails.
                    inbox::decide(&self.db, &inbound.gateway_id, outcome, &reply).await?;
                    self.tell_scheduling(&inbound.from, asked).await?;
                    (outcome, reply)
                }
            };
        self.send(&inbound.from, &reply).await?;
        inbox::answered(&self.db, &inbound.gateway_id).await?;
        metrics::counter!("slotcast_sms_replies_total", "asked" => asked.as_str(), "outcome" => outcome)
            .increment(1);
        tracing::info!(
            asked = asked.as_str(),
            outcome,
            "text from a patient answered"
        );
        Ok(())
    }

    /// Does what `asked` asks for the number `phone`; the outcome and the answer to send.
    async fn decide(&self, phone: &str, asked: Asked) -> Result<(&'static str, String), NotNow> {
        let newest = deliveries::newest_sent_to(&self.db, phone).await?;
        let locale = newest.as_ref().map_or_else(
            || slotcast_i18n::FALLBACK.to_owned(),
            |(_, o)| o.locale.clone(),
        );
        Ok(match asked {
            Asked::Stop => {
                // Sending stops here at once; scheduling's preferences follow.
                let first = inbox::stop(&self.db, phone).await?;
                if first {
                    ("stopped", text::plain(&locale, "sms-stopped"))
                } else {
                    // Confirmed once: a repeated STOP gets no second confirmation.
                    ("stopped_again", String::new())
                }
            }
            Asked::Start => {
                inbox::start(&self.db, phone).await?;
                ("started", text::plain(&locale, "sms-started"))
            }
            Asked::Help | Asked::Unclear => ("helped", text::plain(&locale, "sms-help")),
            Asked::Book(n) => match newest {
                None => ("no_offer", text::plain(&locale, "sms-no-offer")),
                Some((_, offered)) => self.book(&offered, n).await?,
            },
        })
    }

    /// Turns texts off (STOP) or on (START) in scheduling for every patient with `phone`;
    /// nothing for anything else. Safe to repeat.
    async fn tell_scheduling(&self, phone: &str, asked: Asked) -> Result<(), NotNow> {
        match asked {
            Asked::Stop => Ok(self.scheduling.set_texts(phone, false).await?),
            Asked::Start => Ok(self.scheduling.set_texts(phone, true).await?),
            _ => Ok(()),
        }
    }

    /// Claims slot `n` of `offered`.
    async fn book(&self, offered: &Offered, n: usize) -> Result<(&'static str, String), NotNow> {
        let Some((slot_id, starts_at)) = offered.slot(n) else {
            return Ok(("no_such_slot", offered.answer("sms-pick", None, &[])));
        };
        Ok(
            match self.scheduling.claim(&offered.token, slot_id).await? {
                Claimed::Booked => ("booked", offered.answer("sms-booked", Some(starts_at), &[])),
                Claimed::AlreadyYours(mine) => {
                    let at = offered
                        .slots
                        .iter()
                        .find(|(id, _)| *id == mine)
                        .map(|(_, at)| *at);
                    ("already_booked", offered.answer("sms-booked", at, &[]))
                }
                Claimed::Taken(open) if open.is_empty() => {
                    ("taken", offered.answer("sms-taken-none", None, &[]))
                }
                Claimed::Taken(open) => ("taken", offered.answer("sms-taken", None, &open)),
                Claimed::Expired => ("expired", offered.answer("sms-expired", None, &[])),
                Claimed::Refused(_) => ("refused", text::plain(&offered.locale, "sms-help")),
            },
        )
    }

    /// Sends `reply` to `phone` (nothing when it is empty).
    async fn send(&self, phone: &str, reply: &str) -> Result<(), NotNow> {
        if reply.is_empty() {
            return Ok(());
        }
        let message = Outgoing {
            // Answers are not notifications: a fresh id names the file or the gateway's log line.
            notification_id: Uuid::now_v7(),
            to: phone,
            text: reply,
            length: text::length(reply),
            report_url: None,
        };
        match self.gateway.send(&message).await {
            Ok(_) => Ok(()),
            Err(Refused::Temporary(reason)) => Err(NotNow::Gateway(reason)),
            Err(Refused::Permanent(reason)) => {
                // The number cannot be texted: there is no one to answer.
                tracing::warn!(reason, "an answer could not be texted");
                Ok(())
            }
        }
    }
}
