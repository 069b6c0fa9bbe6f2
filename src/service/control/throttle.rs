//! `--throttle RPS` and `--throttle-concurrency N`: per-connection limits above which requests
//! are answered `429` with `Retry-After`, as the real service answers. The rate is a token
//! bucket on the emulator's clock (a test advances the clock instead of sleeping); its burst is
//! one second's worth of requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// Connections tracked at most; beyond that the buckets start over (a client naming endless
/// connection ids cannot grow memory).
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Requests per second per connection.
    pub rate: Option<f64>,
    /// Requests in flight per connection.
    pub concurrency: Option<usize>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: DateTime<Utc>,
    in_flight: usize,
}

/// Why a request was refused: wait this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub retry_after_seconds: u64,
    pub reason: &'static str,
}

#[derive(Debug, Clone)]
pub struct Throttle {
    limits: Limits,
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
}

/// A request admitted under the concurrency limit; dropping it frees its place.
#[derive(Debug)]
pub struct Admission {
    throttle: Option<Throttle>,
    key: String,
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(throttle) = self.throttle.take() {
            let mut buckets = throttle.buckets.lock().expect("throttle lock");
            if let Some(bucket) = buckets.get_mut(&self.key) {
                bucket.in_flight = bucket.in_flight.saturating_sub(1);
            }
        }
    }
}

impl Throttle {
    pub fn new(limits: Limits) -> Throttle {
        Throttle {
            limits,
            buckets: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn is_active(&self) -> bool {
        self.limits.rate.is_some() || self.limits.concurrency.is_some()
    }

    /// Admits a request to the connection `key` at `now`, or says how long to wait.
    pub fn admit(&self, key: &str, now: DateTime<Utc>) -> Result<Admission, Refusal> {
        if !self.is_active() {
            return Ok(Admission {
                throttle: None,
                key: String::new(),
            });
        }
        let mut buckets = self.buckets.lock().expect("throttle lock");
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(key) {
            buckets.retain(|_, bucket| bucket.in_flight > 0);
        }
        let burst = self.limits.rate.map_or(0.0, |rate| rate.max(1.0));
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: burst,
            updated: now,
            in_flight: 0,
        });
        if let Some(limit) = self.limits.concurrency {
            if bucket.in_flight >= limit {
                return Err(Refusal {
                    retry_after_seconds: 1,
                    reason: "concurrent requests",
                });
            }
        }
        if let Some(rate) = self.limits.rate {
            let elapsed = (now - bucket.updated)
                .to_std()
                .map(|elapsed| elapsed.as_secs_f64())
                .unwrap_or(0.0);
            bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
            bucket.updated = bucket.updated.max(now);
            if bucket.tokens < 1.0 {
                let wait = ((1.0 - bucket.tokens) / rate).ceil().max(1.0);
                return Err(Refusal {
                    retry_after_seconds: wait.min(3600.0) as u64,
                    reason: "requests per second",
                });
            }
            bucket.tokens -= 1.0;
        }
        bucket.in_flight += 1;
        Ok(Admission {
            throttle: Some(self.clone()),
            key: key.to_string(),
        })
    }
}

/// The throttling key of a Graph path: its tenant and connection, for paths under
/// `/external/connections/{id}`; `None` for every other path.
pub fn connection_key(tenant: &str, path: &str) -> Option<String> {
    let mut segments = path.split('/').filter(|segment| !segment.is_empty());
    let _version = segments.next()?;
    let (external, connections, id) = (segments.next()?, segments.next()?, segments.next()?);
    (external.eq_ignore_ascii_case("external") && connections.eq_ignore_ascii_case("connections"))
        .then(|| format!("{tenant}/{}", id.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(seconds)
    }

    #[test]
    fn a_rate_allows_a_second_of_burst_then_asks_to_wait_until_the_clock_moves() {
        let throttle = Throttle::new(Limits {
            rate: Some(2.0),
            concurrency: None,
        });
        assert!(throttle.admit("t/c", at(0)).is_ok());
        assert!(throttle.admit("t/c", at(0)).is_ok());
        let refused = throttle.admit("t/c", at(0)).unwrap_err();
        assert_eq!(refused.retry_after_seconds, 1);
        // Other connections have their own bucket.
        assert!(throttle.admit("t/other", at(0)).is_ok());
        assert!(throttle.admit("t/c", at(1)).is_ok());
        assert!(throttle.admit("t/c", at(1)).is_ok());
        assert!(throttle.admit("t/c", at(1)).is_err());
    }

    #[test]
    fn concurrency_counts_requests_in_flight() {
        let throttle = Throttle::new(Limits {
            rate: None,
            concurrency: Some(1),
        });
        let first = throttle.admit("t/c", at(0)).unwrap();
        assert_eq!(
            throttle.admit("t/c", at(0)).unwrap_err().reason,
            "concurrent requests"
        );
        drop(first);
        assert!(throttle.admit("t/c", at(0)).is_ok());
    }

    #[test]
    fn only_connection_paths_have_a_key() {
        assert_eq!(
            connection_key("t", "/v1.0/external/connections/Tickets/items/1").as_deref(),
            Some("t/tickets")
        );
        assert_eq!(connection_key("t", "/v1.0/external/connections"), None);
        assert_eq!(connection_key("t", "/v1.0/search/query"), None);
    }
}
