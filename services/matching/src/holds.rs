//! Scheduling's hold API, as matching calls it for the `waves` policy: a wave's slots are held
//! for the patients told so far (`PUT /v1/holds/{id}`), and released to everyone when the
//! waiting list runs out (`DELETE /v1/holds/{id}`). Both are idempotent, so a retry after a
//! crash or a timeout changes nothing twice. Matching authenticates as staff with a short-lived
//! token signed with `JWT_SECRET`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use slotcast_kit::auth::{Role, mint};
use uuid::Uuid;

/// The `sub` of matching's own tokens (a fixed id, so scheduling's logs name it).
pub const MATCHING_SUBJECT: Uuid = Uuid::from_u128(0x6d61_7463_6869_6e67_0000_0000_0000_0001);
const TIMEOUT: Duration = Duration::from_secs(5);

/// Why scheduling did not take a hold.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// Unreachable, a timeout, a 5xx, 408 or 429: worth trying again.
    #[error("scheduling did not answer the hold: {0:#}")]
    Transient(anyhow::Error),
    /// Any other 4xx: the request itself is wrong, trying again changes nothing.
    #[error("scheduling refused the hold: {0}")]
    Refused(reqwest::StatusCode),
}

#[derive(Deserialize)]
struct PutAnswer {
    held: Vec<Uuid>,
}

#[derive(Clone)]
pub struct Holds {
    http: reqwest::Client,
    base: String,
    jwt_secret: String,
}

#[derive(Serialize)]
struct PutHold<'a> {
    slot_ids: &'a [Uuid],
    patient_ids: &'a [Uuid],
    until: DateTime<Utc>,
}

impl Holds {
    /// `base` is scheduling's address (`SCHEDULING_URL`).
    pub fn new(base: &str, jwt_secret: &str) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder().timeout(TIMEOUT).build()?,
            base: base.trim_end_matches('/').to_owned(),
            jwt_secret: jwt_secret.to_owned(),
        })
    }

    fn token(&self) -> anyhow::Result<String> {
        mint(
            &self.jwt_secret,
            MATCHING_SUBJECT,
            Role::Staff,
            chrono::Duration::minutes(5),
        )
    }

    /// Holds `slot_ids` for `patient_ids` until `until` (replacing any earlier hold on them);
    /// returns the slots held (a slot booked, withdrawn or started meanwhile is not).
    pub async fn place(
        &self,
        hold_id: Uuid,
        slot_ids: &[Uuid],
        patient_ids: &[Uuid],
        until: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, HoldError> {
        let response = self
            .http
            .put(format!("{}/v1/holds/{hold_id}", self.base))
            .bearer_auth(self.token().map_err(HoldError::Transient)?)
            .json(&PutHold {
                slot_ids,
                patient_ids,
                until,
            })
            .send()
            .await
            .map_err(|e| HoldError::Transient(e.into()))?;
        check(response.status())?;
        let answer: PutAnswer = response
            .json()
            .await
            .map_err(|e| HoldError::Transient(e.into()))?;
        Ok(answer.held)
    }

    /// Ends hold `hold_id`: its slots are open to everyone. An unknown hold is no error.
    pub async fn release(&self, hold_id: Uuid) -> Result<(), HoldError> {
        let response = self
            .http
            .delete(format!("{}/v1/holds/{hold_id}", self.base))
            .bearer_auth(self.token().map_err(HoldError::Transient)?)
            .send()
            .await
            .map_err(|e| HoldError::Transient(e.into()))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(());
        }
        check(response.status())
    }
}

fn check(status: reqwest::StatusCode) -> Result<(), HoldError> {
    use reqwest::StatusCode;
    if status.is_success() {
        Ok(())
    } else if status.is_client_error()
        && status != StatusCode::REQUEST_TIMEOUT
        && status != StatusCode::TOO_MANY_REQUESTS
    {
        Err(HoldError::Refused(status))
    } else {
        Err(HoldError::Transient(anyhow::anyhow!(
            "scheduling answered {status}"
        )))
    }
}
