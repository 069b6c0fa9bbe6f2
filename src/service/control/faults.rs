//! Fault rules: make chosen Graph requests fail (or slow down) on purpose. A rule names a method
//! (any when absent) and a path pattern over the request path, version included: `*` matches one
//! segment, `**` any number of segments. It fires for its next `count` matches, or on a
//! `probability` share of matches (drawn from a generator seeded by `--fault-seed`) until deleted.

use std::sync::{Arc, Mutex};

use crate::domain::Violation;

/// Rules kept at most, and pattern segments per rule (bounds matching work per request).
pub const MAX_RULES: usize = 1_000;
pub const MAX_PATTERN_SEGMENTS: usize = 64;
/// The longest injected delay (a minute).
pub const MAX_DELAY_MS: u64 = 60_000;

/// A rule as declared.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub method: Option<String>,
    pub path: String,
    /// The status to answer with; `None` only with a delay (the request is then slowed, not failed).
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub retry_after_seconds: Option<u64>,
    pub delay_ms: Option<u64>,
    pub count: Option<u64>,
    pub probability: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub spec: RuleSpec,
    /// Requests the rule changed so far.
    pub fired: u64,
    /// For `count` rules: how many more times it fires.
    pub remaining: Option<u64>,
}

/// What a firing rule does to a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    pub rule_id: String,
    pub delay_ms: u64,
    /// `(status, code, message)` when the request is answered by the fault.
    pub answer: Option<(u16, String, String)>,
    pub retry_after_seconds: Option<u64>,
}

impl RuleSpec {
    /// Checks the declaration; the violation's target is the member at fault.
    pub fn validate(&self) -> Result<(), Violation> {
        if self.path.is_empty() || !self.path.starts_with('/') {
            return Err(Violation::new(
                "path",
                "path must be a pattern starting with '/', such as /v1.0/external/connections/*/items/*",
            ));
        }
        if segments(&self.path).count() > MAX_PATTERN_SEGMENTS {
            return Err(Violation::new(
                "path",
                format!("path can have at most {MAX_PATTERN_SEGMENTS} segments"),
            ));
        }
        match self.status {
            Some(status) if !(400..=599).contains(&status) => {
                return Err(Violation::new(
                    "status",
                    format!("status must be an error status from 400 to 599, not {status}"),
                ))
            }
            None if self.delay_ms.is_none() => {
                return Err(Violation::new(
                    "status",
                    "a rule needs a status (400 to 599), or a delayMs to slow requests down without failing them",
                ))
            }
            _ => {}
        }
        if self.delay_ms.is_some_and(|delay| delay > MAX_DELAY_MS) {
            return Err(Violation::new(
                "delayMs",
                format!("delayMs can be at most {MAX_DELAY_MS}"),
            ));
        }
        if self.count.is_some() && self.probability.is_some() {
            return Err(Violation::new(
                "probability",
                "a rule has a count or a probability, not both",
            ));
        }
        if self.count == Some(0) {
            return Err(Violation::new("count", "count must be at least 1"));
        }
        if let Some(probability) = self.probability {
            if !(probability > 0.0 && probability <= 1.0) {
                return Err(Violation::new(
                    "probability",
                    "probability must be more than 0 and at most 1",
                ));
            }
        }
        if let Some(method) = &self.method {
            if method.is_empty() || !method.chars().all(|c| c.is_ascii_alphabetic()) {
                return Err(Violation::new(
                    "method",
                    format!("'{method}' is not an HTTP method"),
                ));
            }
        }
        Ok(())
    }
}

/// The Graph error code a fault with this status answers by default.
pub fn default_code(status: u16) -> &'static str {
    match status {
        401 => "InvalidAuthenticationToken",
        403 => "Forbidden",
        404 => "ItemNotFound",
        409 => "Conflict",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        502 => "BadGateway",
        503 => "serviceNotAvailable",
        504 => "GatewayTimeout",
        402..=499 | 400 => "BadRequest",
        _ => "InternalServerError",
    }
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|segment| !segment.is_empty())
}

/// Whether `path` matches `pattern` (`*` one segment, `**` any number), without regard to ASCII
/// case. Linear in segments times pattern segments.
pub fn matches(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = segments(pattern).collect();
    // reachable[j]: the first j pattern segments match the path's segments read so far.
    let close = |reachable: &mut Vec<bool>| {
        // A `**` may match no segment at all.
        for j in 0..pattern.len() {
            if reachable[j] && pattern[j] == "**" {
                reachable[j + 1] = true;
            }
        }
    };
    let mut reachable = vec![false; pattern.len() + 1];
    reachable[0] = true;
    close(&mut reachable);
    for segment in segments(path) {
        let mut next = vec![false; pattern.len() + 1];
        for j in (0..pattern.len()).filter(|&j| reachable[j]) {
            match pattern[j] {
                "**" => next[j] = true,
                "*" => next[j + 1] = true,
                literal if literal.eq_ignore_ascii_case(segment) => next[j + 1] = true,
                _ => {}
            }
        }
        close(&mut next);
        if !next.contains(&true) {
            return false;
        }
        reachable = next;
    }
    reachable[pattern.len()]
}

/// A small deterministic generator (SplitMix64): reproducible probabilities, not cryptography.
#[derive(Debug)]
struct Generator(u64);

impl Generator {
    fn next_fraction(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug)]
struct State {
    rules: Vec<Rule>,
    next_id: u64,
    generator: Generator,
}

/// The rule set, shared by every request.
#[derive(Debug, Clone)]
pub struct Faults {
    state: Arc<Mutex<State>>,
}

impl Faults {
    pub fn new(seed: u64) -> Faults {
        Faults {
            state: Arc::new(Mutex::new(State {
                rules: Vec::new(),
                next_id: 1,
                generator: Generator(seed),
            })),
        }
    }

    /// Adds a checked rule and returns it with its id.
    pub fn add(&self, spec: RuleSpec) -> Result<Rule, Violation> {
        spec.validate()?;
        let mut state = self.state.lock().expect("faults lock");
        if state.rules.len() >= MAX_RULES {
            return Err(Violation::new(
                "path",
                format!("at most {MAX_RULES} fault rules can exist; delete some first"),
            ));
        }
        let rule = Rule {
            id: state.next_id.to_string(),
            remaining: match spec.probability {
                Some(_) => None,
                None => Some(spec.count.unwrap_or(1)),
            },
            spec,
            fired: 0,
        };
        state.next_id += 1;
        state.rules.push(rule.clone());
        Ok(rule)
    }

    pub fn list(&self) -> Vec<Rule> {
        self.state.lock().expect("faults lock").rules.clone()
    }

    pub fn delete(&self, id: &str) -> bool {
        let mut state = self.state.lock().expect("faults lock");
        let before = state.rules.len();
        state.rules.retain(|rule| rule.id != id);
        state.rules.len() != before
    }

    pub fn clear(&self) {
        self.state.lock().expect("faults lock").rules.clear();
    }

    /// The first rule (in creation order) that fires for this request, if any. A `count` rule
    /// is used up as it fires.
    pub fn fire(&self, method: &str, path: &str) -> Option<Firing> {
        let mut state = self.state.lock().expect("faults lock");
        if state.rules.is_empty() {
            return None;
        }
        let State {
            rules, generator, ..
        } = &mut *state;
        for rule in rules.iter_mut() {
            let spec = &rule.spec;
            if spec
                .method
                .as_ref()
                .is_some_and(|m| !m.eq_ignore_ascii_case(method))
            {
                continue;
            }
            if rule.remaining == Some(0) || !matches(&spec.path, path) {
                continue;
            }
            if let Some(probability) = spec.probability {
                if generator.next_fraction() >= probability {
                    continue;
                }
            }
            if let Some(remaining) = rule.remaining.as_mut() {
                *remaining -= 1;
            }
            rule.fired += 1;
            let answer = spec.status.map(|status| {
                (
                    status,
                    spec.code
                        .clone()
                        .unwrap_or_else(|| default_code(status).to_string()),
                    spec.message.clone().unwrap_or_else(|| {
                        format!("Injected by gcemu fault rule {} ({status}).", rule.id)
                    }),
                )
            });
            return Some(Firing {
                rule_id: rule.id.clone(),
                delay_ms: spec.delay_ms.unwrap_or(0),
                answer,
                retry_after_seconds: spec.retry_after_seconds,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str) -> RuleSpec {
        RuleSpec {
            method: None,
            path: path.into(),
            status: Some(503),
            code: None,
            message: None,
            retry_after_seconds: None,
            delay_ms: None,
            count: None,
            probability: None,
        }
    }

    #[test]
    fn patterns_match_one_or_any_segments() {
        let items = "/v1.0/external/connections/*/items/*";
        assert!(matches(items, "/v1.0/external/connections/c1/items/i1"));
        assert!(matches(items, "/V1.0/External/connections/c1/items/i1"));
        assert!(!matches(items, "/v1.0/external/connections/c1/items"));
        assert!(!matches(
            items,
            "/v1.0/external/connections/c1/items/i1/addActivities"
        ));
        assert!(matches("/v1.0/**", "/v1.0/external/connections/c1"));
        assert!(matches("/v1.0/**", "/v1.0"));
        assert!(matches(
            "/**/items/*",
            "/beta/external/connections/c1/items/i1"
        ));
        assert!(!matches("/**/items/*", "/beta/external/connections/c1"));
        assert!(matches(
            "/v1.0/**/items/**",
            "/v1.0/external/connections/c1/items/i1/x/y"
        ));
        assert!(!matches("/beta/**", "/v1.0/external"));
    }

    #[test]
    fn count_rules_fire_that_many_times_in_order() {
        let faults = Faults::new(7);
        let mut twice = spec("/v1.0/**");
        twice.count = Some(2);
        faults.add(twice).unwrap();
        let mut put_only = spec("/v1.0/**");
        put_only.method = Some("put".into());
        put_only.status = Some(429);
        put_only.retry_after_seconds = Some(3);
        faults.add(put_only).unwrap();
        assert_eq!(faults.fire("GET", "/v1.0/x").unwrap().rule_id, "1");
        assert_eq!(faults.fire("PUT", "/v1.0/x").unwrap().rule_id, "1");
        let third = faults.fire("PUT", "/v1.0/x").unwrap();
        assert_eq!(third.rule_id, "2");
        assert_eq!(
            third.answer,
            Some((
                429,
                "TooManyRequests".into(),
                "Injected by gcemu fault rule 2 (429).".into()
            ))
        );
        assert_eq!(third.retry_after_seconds, Some(3));
        assert!(faults.fire("PUT", "/v1.0/x").is_none());
        assert!(faults.fire("GET", "/beta/x").is_none());
    }

    #[test]
    fn probabilities_repeat_with_the_same_seed() {
        let draw = |seed| {
            let faults = Faults::new(seed);
            let mut rule = spec("/**");
            rule.probability = Some(0.3);
            faults.add(rule).unwrap();
            (0..200)
                .map(|_| faults.fire("GET", "/v1.0/a").is_some())
                .collect::<Vec<_>>()
        };
        let first = draw(42);
        assert_eq!(first, draw(42));
        assert_ne!(first, draw(43));
        let fired = first.iter().filter(|f| **f).count();
        assert!((30..90).contains(&fired), "{fired}");
    }

    #[test]
    fn bad_rules_name_their_member() {
        let mut bad = spec("v1.0/x");
        assert_eq!(bad.validate().unwrap_err().target, "path");
        bad = spec("/x");
        bad.status = Some(200);
        assert_eq!(bad.validate().unwrap_err().target, "status");
        bad.status = None;
        assert_eq!(bad.validate().unwrap_err().target, "status");
        bad.delay_ms = Some(10);
        assert!(bad.validate().is_ok());
        bad.count = Some(1);
        bad.probability = Some(0.5);
        assert_eq!(bad.validate().unwrap_err().target, "probability");
    }
}
