//! Timestamps as the APIs take them: RFC 3339 `date-time` with an offset, nothing looser; and
//! what is left of a lease.
//!
//! serde's default for chrono accepts more (a space for `T`, signed and five-digit years), and
//! what it lets in then travels in events and booking tokens that other parsers refuse.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, de::Error};

/// Parses an RFC 3339 `date-time` (section 5.6: four-digit year, `T` between date and time,
/// an offset or `Z`; `t` and `z` are allowed as the RFC allows them).
pub fn parse(s: &str) -> Result<DateTime<Utc>, String> {
    let separator = s.as_bytes().get(10).copied();
    if !matches!(separator, Some(b'T' | b't')) {
        return Err(format!(
            "{} is not an RFC 3339 time such as 2026-12-07T09:30:00Z",
            shown(s)
        ));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!(
                "{} is not an RFC 3339 time such as 2026-12-07T09:30:00Z ({e})",
                shown(s)
            )
        })
}

/// The value as quoted in an error, cut short (it comes from the client).
fn shown(s: &str) -> String {
    let cut: String = s.chars().take(40).collect();
    format!("{cut:?}")
}

/// `#[serde(deserialize_with = "slotcast_kit::time::rfc3339")]`.
pub fn rfc3339<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    parse(&s).map_err(D::Error::custom)
}

/// `#[serde(default, deserialize_with = "slotcast_kit::time::rfc3339_option")]`.
pub fn rfc3339_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|s| parse(&s).map_err(D::Error::custom))
        .transpose()
}

/// How much of a lease of `lease` taken at `taken` is left at `now`; a clock that went back
/// counts as no time elapsed.
pub fn lease_left(
    taken: DateTime<Utc>,
    lease: std::time::Duration,
    now: DateTime<Utc>,
) -> std::time::Duration {
    let elapsed = (now - taken).to_std().unwrap_or_default();
    lease.saturating_sub(elapsed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_lease_runs_out() {
        let taken = Utc::now();
        let lease = std::time::Duration::from_secs(60);
        assert_eq!(
            lease_left(taken, lease, taken + chrono::Duration::seconds(20)),
            std::time::Duration::from_secs(40)
        );
        assert_eq!(
            lease_left(taken, lease, taken + chrono::Duration::seconds(90)),
            std::time::Duration::ZERO
        );
        assert_eq!(
            lease_left(taken, lease, taken - chrono::Duration::seconds(5)),
            lease
        );
    }

    use super::*;

    #[test]
    fn rfc_3339_date_times_parse_and_looser_forms_do_not() {
        for ok in [
            "2026-12-07T09:30:00Z",
            "2026-12-07t09:30:00z",
            "2026-12-07T09:30:00.123456+01:00",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59-05:00",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "+99999-01-01T10:00:00Z",
            "-5000-01-01T00:00:00Z",
            "2026-12-07 09:30:00Z",
            "2026-12-07T09:30:00",
            "2026-12-07T09:30Z",
            "2026-12-07",
            "20261207T093000Z",
            "",
            "tomorrow",
            "2026-12-07T09:30:00Zjunk",
            "2026-02-30T09:30:00Z",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_error_quotes_a_long_value_cut_short() {
        let long = format!("2026-12-07T{}", "9".repeat(1_000));
        assert!(parse(&long).unwrap_err().len() < 200);
    }
}
