//! Scheduling's API, as replies use it: a claim from an offer's token (the same atomic claim
//! as the link), the offer as it stands, and text messages turned off or on by number.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use slotcast_kit::auth::{Role, mint};
use uuid::Uuid;

/// The identity the sms-notifier's calls carry (a staff token of a fixed, recognisable id).
const SMS_NOTIFIER_SUBJECT: Uuid = Uuid::from_u128(0x5307_0000_0000_4000_8000_0000_0000_0005);
const TIMEOUT: Duration = Duration::from_secs(10);

/// Scheduling at `SCHEDULING_URL`.
#[derive(Clone)]
pub struct Scheduling {
    http: reqwest::Client,
    base: String,
    jwt_secret: Option<String>,
}

/// Scheduling could not answer now: worth trying again.
#[derive(Debug, thiserror::Error)]
#[error("scheduling did not answer: {0}")]
pub struct Unavailable(String);

/// What a claim came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// Booked (or moved up to) the slot.
    Booked,
    /// The link booked a slot already (this one, or another of its slots).
    AlreadyYours(Uuid),
    /// Someone else has it; these of the offer are still open, in the order they start.
    Taken(Vec<Uuid>),
    /// The offer has expired.
    Expired,
    /// Refused for another reason (the link is not valid, the slot not offered).
    Refused(u16),
}

#[derive(Deserialize)]
struct OfferView {
    slots: Vec<OfferSlot>,
}

#[derive(Deserialize)]
struct OfferSlot {
    slot_id: Uuid,
    starts_at: DateTime<Utc>,
    status: String,
}

#[derive(Serialize)]
struct PhonePreferences<'a> {
    phone: &'a str,
    sms: bool,
}

impl Scheduling {
    /// `base` is scheduling's address; `jwt_secret` signs the calls that need staff.
    pub fn new(base: &str, jwt_secret: Option<String>) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder().timeout(TIMEOUT).build()?,
            base: base.trim_end_matches('/').to_owned(),
            jwt_secret,
        })
    }

    /// Claims `slot_id` with the offer `token`, as the link's page would.
    pub async fn claim(&self, token: &str, slot_id: Uuid) -> Result<Claimed, Unavailable> {
        let response = self
            .http
            .post(format!("{}/v1/offers/{token}/claim", self.base))
            .header("accept", "application/json")
            .json(&serde_json::json!({ "slot_id": slot_id }))
            .send()
            .await
            .map_err(|e| Unavailable(e.without_url().to_string()))?;
        match response.status().as_u16() {
            200 | 201 => Ok(Claimed::Booked),
            409 => {
                let offer = self.offer(token).await?;
                if let Some(mine) = offer.iter().find(|s| s.status == "yours") {
                    return Ok(Claimed::AlreadyYours(mine.slot_id));
                }
                let mut open: Vec<&OfferSlot> =
                    offer.iter().filter(|s| s.status == "available").collect();
                open.sort_by_key(|s| s.starts_at);
                Ok(Claimed::Taken(open.iter().map(|s| s.slot_id).collect()))
            }
            410 => Ok(Claimed::Expired),
            status @ (408 | 429 | 500..) => Err(Unavailable(format!("claim answered {status}"))),
            status => Ok(Claimed::Refused(status)),
        }
    }

    /// The offer's slots as they stand.
    async fn offer(&self, token: &str) -> Result<Vec<OfferSlot>, Unavailable> {
        let response = self
            .http
            .get(format!("{}/v1/offers/{token}", self.base))
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| Unavailable(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(Unavailable(format!("offer answered {}", response.status())));
        }
        let view: OfferView = response
            .json()
            .await
            .map_err(|e| Unavailable(e.without_url().to_string()))?;
        Ok(view.slots)
    }

    /// Turns text messages off or on for every patient with `phone`.
    pub async fn set_texts(&self, phone: &str, sms: bool) -> Result<(), Unavailable> {
        let secret = self
            .jwt_secret
            .as_deref()
            .ok_or_else(|| Unavailable("no JWT_SECRET to sign with".to_owned()))?;
        let token = mint(
            secret,
            SMS_NOTIFIER_SUBJECT,
            Role::Staff,
            chrono::Duration::minutes(5),
        )
        .map_err(|e| Unavailable(e.to_string()))?;
        let response = self
            .http
            .put(format!("{}/v1/phone-preferences", self.base))
            .bearer_auth(token)
            .json(&PhonePreferences { phone, sms })
            .send()
            .await
            .map_err(|e| Unavailable(e.without_url().to_string()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(Unavailable(format!(
                "phone preferences answered {}",
                response.status()
            )))
        }
    }
}
