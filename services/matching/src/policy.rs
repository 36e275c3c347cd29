//! The notification policy's settings: the coalescing window, the daily cap, the waves and the
//! quiet hours of texts.

use std::time::Duration;

use slotcast_kit::config::{ConfigError, parse_or};

use crate::eligibility::{QuietHours, QuietHoursSetting};

/// The largest `WAVE_SIZE`: a hold is for at most 10,000 patients, everyone told so far.
pub const MAX_WAVE_SIZE: u32 = 1_000;

/// How openings are offered; from the environment (defaults in brackets).
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// `COALESCE_WINDOW_MS` [2000]: slots a practitioner opens within this window of the first
    /// are decided together when it ends, one message per patient.
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
    /// `QUIET_HOURS` [`21:00-08:00`]: no text goes out in this daily window of the patient's
    /// zone (`off`: none), for a practitioner without quiet hours of their own.
    pub quiet_hours: Option<QuietHours>,
}

/// The quiet hours when `QUIET_HOURS` is unset.
pub const DEFAULT_QUIET_HOURS: &str = "21:00-08:00";

fn quiet_hours() -> Result<Option<QuietHours>, ConfigError> {
    let text =
        slotcast_kit::config::var("QUIET_HOURS").unwrap_or_else(|| DEFAULT_QUIET_HOURS.to_owned());
    QuietHoursSetting::parse(&text)
        .map(QuietHoursSetting::hours)
        .ok_or_else(|| ConfigError::Invalid {
            name: "QUIET_HOURS",
            reason: "HH:MM-HH:MM (two different times), or off".to_owned(),
        })
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
            quiet_hours: quiet_hours()?,
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
            quiet_hours: QuietHours::parse(DEFAULT_QUIET_HOURS),
        }
    }
}
