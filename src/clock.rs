//! The emulator's one clock.
//!
//! Every piece of time-dependent behaviour (schema operations, `innerError.date`, later token
//! expiry, index lag and throttling windows) reads `Clock::now`. The clock follows the system
//! time plus an offset that `POST /_emulator/clock/advance` grows, so tests move time forward
//! instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
    /// Moves the clock forward by `by` (never backwards), unless that would take it more than
    /// `MAX_ADVANCE_DAYS` past where it started; then it does not move at all.
    fn advance(&self, by: Duration) -> Result<(), ClockError>;
}

/// How far, in all, the clock can be moved past the system time: a century. Stored instants
/// (four-digit years) and every sum of an instant and a configured delay stay representable.
pub const MAX_ADVANCE_DAYS: i64 = 36_525;

/// The longest `--schema-delay` or `--index-lag` (and any delay added to the clock's time): ten years.
pub const MAX_DELAY_SECONDS: u64 = 3_650 * 86_400;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClockError {
    #[error("the clock can be advanced by at most {MAX_ADVANCE_DAYS} days in all; it is already {advanced_days} days ahead")]
    TooFar { advanced_days: i64 },
}

/// `instant + by`, saturating at the last instant the store can hold (9999-12-31) instead of
/// overflowing: time arithmetic on request-influenced values must never panic.
pub fn later(instant: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    let last =
        DateTime::<Utc>::from_timestamp(253_402_300_799, 999_000_000).expect("valid instant");
    instant
        .checked_add_signed(by)
        .map_or(last, |sum| sum.min(last))
}

pub type SharedClock = Arc<dyn Clock>;

/// System time shifted by an offset that only grows.
#[derive(Debug, Default)]
pub struct EmulatorClock {
    offset_millis: AtomicI64,
}

impl Clock for EmulatorClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.offset_millis.load(Ordering::SeqCst))
    }

    fn advance(&self, by: Duration) -> Result<(), ClockError> {
        let step = by.num_milliseconds().max(0);
        let limit = MAX_ADVANCE_DAYS * 86_400_000;
        self.offset_millis
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |offset| {
                offset.checked_add(step).filter(|total| *total <= limit)
            })
            .map(|_| ())
            .map_err(|offset| ClockError::TooFar {
                advanced_days: offset / 86_400_000,
            })
    }
}

/// A clock that stands still unless advanced; for unit tests of time-dependent rules.
#[derive(Debug)]
pub struct ManualClock {
    now: std::sync::Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn starting_at(start: DateTime<Utc>) -> ManualClock {
        ManualClock {
            now: std::sync::Mutex::new(start),
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock lock")
    }

    fn advance(&self, by: Duration) -> Result<(), ClockError> {
        let mut now = self.now.lock().expect("clock lock");
        *now = later(*now, by.max(Duration::zero()));
        Ok(())
    }
}

/// Parses durations such as `0s`, `90s`, `5m`, `1h`, `250ms` or a bare number of seconds.
pub fn parse_duration(raw: &str) -> Result<std::time::Duration, String> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{raw}' is not a duration (examples: 0s, 30s, 5m, 250ms)"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit '{other}' in '{raw}' (use ms, s, m or h)"
            ))
        }
    };
    if !(0.0..=MAX_DELAY_SECONDS as f64).contains(&seconds) {
        return Err(format!(
            "'{raw}' is longer than the longest duration gcemu accepts ({} days)",
            MAX_DELAY_SECONDS / 86_400
        ));
    }
    std::time::Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("'{raw}' is not a duration (examples: 0s, 30s, 5m, 250ms)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulator_clock_advances_and_never_goes_back() {
        let clock = EmulatorClock::default();
        let before = clock.now();
        clock.advance(Duration::seconds(3600)).unwrap();
        clock.advance(Duration::seconds(-7200)).unwrap();
        assert!(clock.now() - before >= Duration::seconds(3600));
    }

    #[test]
    fn durations_parse_in_common_units() {
        assert_eq!(parse_duration("0s").unwrap().as_secs(), 0);
        assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("5m").unwrap().as_secs(), 300);
        assert_eq!(parse_duration("1h").unwrap().as_secs(), 3600);
        assert_eq!(parse_duration("250ms").unwrap().as_millis(), 250);
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("99999999999999999999999999").is_err());
        assert!(parse_duration("3651d").is_err());
        assert!(parse_duration("87601h").is_err());
    }

    #[test]
    fn the_clock_refuses_to_move_more_than_a_century_in_all_and_stays_readable() {
        let clock = EmulatorClock::default();
        let start = clock.now();
        for _ in 0..36 {
            clock.advance(Duration::days(1_000)).unwrap();
        }
        let refused = clock.advance(Duration::days(1_000));
        assert_eq!(
            refused,
            Err(ClockError::TooFar {
                advanced_days: 36_000
            })
        );
        assert!(clock.now() - start < Duration::days(36_100));
        assert!(clock.advance(Duration::days(500)).is_ok());
        // Far-future sums saturate instead of overflowing.
        let far = later(clock.now(), Duration::MAX);
        assert_eq!(far.format("%Y").to_string(), "9999");
    }
}
