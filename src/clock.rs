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
    /// Moves the clock forward by `by` (never backwards).
    fn advance(&self, by: Duration);
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

    fn advance(&self, by: Duration) {
        let millis = by.num_milliseconds().max(0);
        self.offset_millis.fetch_add(millis, Ordering::SeqCst);
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

    fn advance(&self, by: Duration) {
        let mut now = self.now.lock().expect("clock lock");
        *now += by.max(Duration::zero());
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
    Ok(std::time::Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulator_clock_advances_and_never_goes_back() {
        let clock = EmulatorClock::default();
        let before = clock.now();
        clock.advance(Duration::seconds(3600));
        clock.advance(Duration::seconds(-7200));
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
    }
}
