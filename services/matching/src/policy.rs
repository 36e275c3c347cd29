//! The notification policy's settings and what the decision, the dispatcher and the waves
//! share: the reasons a patient is skipped and the record of every decision (`considered`).

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
    sea_query::OnConflict,
};
use slotcast_kit::config::{ConfigError, parse_or};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    entities::{considered, message},
    projection::ROWS_PER_INSERT,
};

/// The entry had expired when the offer would have been made or sent.
pub const EXPIRED: &str = "expired";
/// The patient switched off both email and in-app notifications.
pub const OPTED_OUT: &str = "opted_out";
/// The patient had been sent the daily maximum of availability messages.
pub const CAPPED: &str = "capped";
/// The slot was booked before the message went out.
pub const TAKEN: &str = "taken";
/// The slot was withdrawn, or had started, before the message went out.
pub const GONE: &str = "gone";
/// The entry stopped waiting (left, fulfilled) before the message went out.
pub const NO_LONGER_WAITING: &str = "no_longer_waiting";

/// The largest `WAVE_SIZE`: a hold is for at most 10,000 patients, everyone told so far.
pub const MAX_WAVE_SIZE: u32 = 1_000;

/// How openings are offered; from the environment (defaults in brackets).
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// `COALESCE_WINDOW_MS` [2000]: offers to one patient from one practitioner that are
    /// decided within this window of the first go out as one message when it ends.
    pub coalesce_window: Duration,
    /// `DAILY_MESSAGE_CAP` [6]: availability messages a patient gets in any 24 hours; 0 means
    /// no cap.
    pub daily_cap: u32,
    /// `WAVE_SIZE` [5]: patients told per slot and wave under the `waves` policy.
    pub wave_size: u32,
    /// `WAVE_HOLD_MIN_SECS` [300] and `WAVE_HOLD_MAX_SECS` [14400]: the bounds of a wave's hold,
    /// which is a twelfth of the time left before the slot starts.
    pub hold_min: Duration,
    pub hold_max: Duration,
    /// `SCHEDULING_URL` [`PUBLIC_BASE_URL`]: where matching places holds (scheduling's API).
    pub scheduling_url: String,
}

impl PolicyConfig {
    pub fn from_env(public_base_url: &str) -> Result<Self, ConfigError> {
        let config = Self {
            coalesce_window: Duration::from_millis(parse_or("COALESCE_WINDOW_MS", 2_000)?),
            daily_cap: parse_or("DAILY_MESSAGE_CAP", 6)?,
            wave_size: parse_or("WAVE_SIZE", 5)?,
            hold_min: Duration::from_secs(parse_or("WAVE_HOLD_MIN_SECS", 300)?),
            hold_max: Duration::from_secs(parse_or("WAVE_HOLD_MAX_SECS", 4 * 3600)?),
            scheduling_url: slotcast_kit::config::var("SCHEDULING_URL")
                .unwrap_or_else(|| public_base_url.to_owned())
                .trim_end_matches('/')
                .to_owned(),
        };
        if config.wave_size == 0 || config.wave_size > MAX_WAVE_SIZE {
            return Err(ConfigError::Invalid {
                name: "WAVE_SIZE",
                reason: format!("a wave tells 1 to {MAX_WAVE_SIZE} patients a slot"),
            });
        }
        if config.hold_min.is_zero() || config.hold_min > config.hold_max {
            return Err(ConfigError::Invalid {
                name: "WAVE_HOLD_MIN_SECS",
                reason: "must be at least 1 and at most WAVE_HOLD_MAX_SECS".to_owned(),
            });
        }
        Ok(config)
    }

    /// The defaults, with `scheduling_url`.
    pub fn defaults(scheduling_url: &str) -> Self {
        Self {
            coalesce_window: Duration::from_millis(2_000),
            daily_cap: 6,
            wave_size: 5,
            hold_min: Duration::from_secs(300),
            hold_max: Duration::from_secs(4 * 3600),
            scheduling_url: scheduling_url.to_owned(),
        }
    }
}

/// Wakes the dispatcher and the wave runner early (a decision was committed); they also tick.
#[derive(Debug, Clone, Default)]
pub struct Wakers {
    pub dispatch: Arc<Notify>,
    pub waves: Arc<Notify>,
}

/// Records decisions: a row per slot and patient, the newest outcome winning.
pub(crate) async fn record_considered<C: ConnectionTrait>(
    conn: &C,
    rows: Vec<considered::ActiveModel>,
) -> Result<(), DbErr> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        considered::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([considered::Column::SlotId, considered::Column::PatientId])
                    .update_columns([
                        considered::Column::EntryId,
                        considered::Column::Outcome,
                        considered::Column::Reason,
                        considered::Column::Wave,
                        considered::Column::NotificationId,
                        considered::Column::At,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// How many availability messages each of `patients` was sent in the 24 hours before `now`
/// (absent: none). Empty when there is no cap to check.
pub(crate) async fn sent_today<C: ConnectionTrait>(
    conn: &C,
    config: &PolicyConfig,
    patients: &[Uuid],
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, i64>, DbErr> {
    let mut sent = HashMap::new();
    if config.daily_cap == 0 {
        return Ok(sent);
    }
    for run in slotcast_bus::rows::ids(patients) {
        sent.extend(
            message::Entity::find()
                .select_only()
                .column(message::Column::PatientId)
                .column_as(message::Column::NotificationId.count(), "n")
                .filter(message::Column::PatientId.is_in(run.iter().copied()))
                .filter(message::Column::SentAt.gt(now - chrono::Duration::hours(24)))
                .group_by(message::Column::PatientId)
                .into_tuple::<(Uuid, i64)>()
                .all(conn)
                .await?,
        );
    }
    Ok(sent)
}

/// Runs `pass` until `shutdown`: again at once after a full pass (`full` items), else when
/// `wake` fires, when the next item falls due (`next_due`, so a coalescing window ends when it
/// says, not up to a tick later) or when `tick` has passed, whichever is first (the tick also
/// catches what another replica decided). After a failure (counted in `failures_metric`) the
/// pause doubles, up to 32 ticks. The dispatcher and the wave runner are such loops.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_passes<F, Fut, N, NFut>(
    what: &'static str,
    failures_metric: &'static str,
    wake: &Notify,
    tick: Duration,
    full: usize,
    shutdown: CancellationToken,
    mut pass: F,
    next_due: N,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<usize, DbErr>>,
    N: Fn() -> NFut,
    NFut: Future<Output = Result<Option<DateTime<Utc>>, DbErr>>,
{
    let mut failures = 0u32;
    loop {
        let mut wait = tick;
        let started = Utc::now();
        match pass().await {
            Ok(n) if n == full => {
                failures = 0;
                continue;
            }
            Ok(_) => {
                failures = 0;
                match next_due().await {
                    Ok(Some(due)) => wait = until(due, started, Utc::now(), tick),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "{what}: finding when the next is due failed")
                    }
                }
            }
            Err(e) => {
                failures += 1;
                metrics::counter!(failures_metric).increment(1);
                tracing::warn!(error = %e, "{what} failed, will retry");
                wait = tick * 2u32.pow(Ord::min(failures, 5));
            }
        }
        tokio::select! {
            _ = wake.notified() => {},
            _ = tokio::time::sleep(wait) => {},
            _ = shutdown.cancelled() => break,
        }
    }
}

/// How long to wait for what falls due at `due`, the last pass having started at `started`:
/// until then and a millisecond more (so the pass finds it due; at once if it fell due since
/// the pass), at most `tick`. Something that was due when the pass started and that it did not
/// take is another replica's to send (it holds the lock) or was decided since, which wakes the
/// loop anyway: the wait is then a tick, not a spin.
fn until(
    due: DateTime<Utc>,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
    tick: Duration,
) -> Duration {
    if due <= started {
        return tick;
    }
    let left = (due - now).to_std().unwrap_or_default();
    (left + Duration::from_millis(1)).min(tick)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_until_the_next_is_due_at_most_a_tick() {
        let now = Utc::now();
        let started = now - chrono::Duration::milliseconds(5);
        let tick = Duration::from_millis(200);
        let at = |ms| now + chrono::Duration::milliseconds(ms);
        assert_eq!(until(at(50), started, now, tick), Duration::from_millis(51));
        assert_eq!(until(at(5_000), started, now, tick), tick);
        // Fell due after the pass started: at once.
        assert_eq!(until(at(-2), started, now, tick), Duration::from_millis(1));
        // Already due when the pass started and not taken: another replica's, or a wake is on
        // its way.
        assert_eq!(until(at(-5), started, now, tick), tick);
        assert_eq!(until(at(-30), started, now, tick), tick);
    }
}
