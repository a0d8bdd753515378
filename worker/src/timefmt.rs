//! The one timestamp format of every output: `YYYY-MM-DD hh:mm:ss`, UTC.
//!
//! That is the form of the `timestamp` field in GIMPS's `results.json.txt`
//! (Prime95, Mlucas, GpuOwl), so our JSON lines can sit beside theirs and go
//! through the same tools; the tables and CSV use it too, so that a result
//! reads the same wherever it is shown.

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

const FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

/// Formats milliseconds since the Unix epoch (how result records store
/// time) as `YYYY-MM-DD hh:mm:ss` UTC.
///
/// Instants the calendar cannot hold (beyond year 9999) are clamped to the
/// epoch: a clock that far off is broken, and a timestamp is informational.
pub fn utc_from_unix_ms(ms: u64) -> String {
    let t = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(t)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(|| utc_from_unix_ms(0))
}

/// Formats a time as [`utc_from_unix_ms`] does (times before the epoch
/// clamp to it).
pub fn utc(t: SystemTime) -> String {
    let ms = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    utc_from_unix_ms(u64::try_from(ms).unwrap_or(0))
}

/// The current time as [`utc`] formats it.
pub fn now_utc() -> String {
    utc(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> String {
        utc(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn known_instants() {
        assert_eq!(at(0), "1970-01-01 00:00:00");
        assert_eq!(at(86_399), "1970-01-01 23:59:59");
        // 2000 is a leap year (divisible by 400): Feb 29 exists.
        assert_eq!(at(951_782_400), "2000-02-29 00:00:00");
        // 2100 is not (divisible by 100 but not 400).
        assert_eq!(at(4_107_542_400), "2100-03-01 00:00:00");
        assert_eq!(at(1_234_567_890), "2009-02-13 23:31:30");
        assert_eq!(at(2_147_483_648), "2038-01-19 03:14:08");
    }

    #[test]
    fn milliseconds_truncate_to_the_second() {
        assert_eq!(utc_from_unix_ms(1_234_567_890_999), "2009-02-13 23:31:30");
        assert_eq!(utc_from_unix_ms(u64::MAX), "1970-01-01 00:00:00");
    }

    #[test]
    fn before_the_epoch_clamps() {
        assert_eq!(
            utc(UNIX_EPOCH - Duration::from_secs(10)),
            "1970-01-01 00:00:00"
        );
    }
}
