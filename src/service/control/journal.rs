//! The request journal: every Graph request, in a bounded in-memory buffer (oldest dropped first).
//! A record is one short lock and a push, so the hot path does not notice it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// Entries kept by default (`--journal-size`).
pub const DEFAULT_CAPACITY: usize = 10_000;

/// One Graph request as the journal keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Position in the journal since start (or the last clear): entries are numbered in order.
    pub sequence: u64,
    /// When the request arrived, by the emulator's clock.
    pub time: DateTime<Utc>,
    pub method: String,
    /// The path as requested, version included (`/v1.0/external/connections/c1/items/i1`).
    pub path: String,
    pub status: u16,
    pub duration_ms: u64,
    pub tenant: String,
    /// The user for delegated tokens, else the application id.
    pub caller: String,
    pub client_request_id: String,
    /// `Content-Length` of the request (0 when absent).
    pub request_bytes: u64,
    /// The Graph error code of a failed request.
    pub error_code: Option<String>,
    /// The error message of a failed request (its first 300 characters).
    pub error_message: Option<String>,
    /// `Retry-After` of the answer, in seconds.
    pub retry_after_seconds: Option<u64>,
    /// The fault rule that changed this request, if one did.
    pub fault: Option<String>,
    /// Answered `429` by `--throttle` or `--throttle-concurrency`.
    pub throttled: bool,
    /// The id of the `$batch` sub-request this request was (with the batch's own request id).
    pub batch: Option<String>,
    /// The host a client asked the proxy for (`--proxy`), when the request came through it.
    pub proxied_host: Option<String>,
}

/// Which entries a `GET /_emulator/requests` wants.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub method: Option<String>,
    pub path_prefix: Option<String>,
    pub status: Option<u16>,
    pub client_request_id: Option<String>,
    /// Only this tenant's requests.
    pub tenant: Option<String>,
    /// Only entries after this sequence number (a console polling for what is new).
    pub after: Option<u64>,
}

impl Filter {
    fn keeps(&self, entry: &Entry) -> bool {
        self.tenant
            .as_ref()
            .is_none_or(|tenant| tenant == &entry.tenant)
            && self.after.is_none_or(|after| entry.sequence > after)
            && self
                .method
                .as_ref()
                .is_none_or(|method| method.eq_ignore_ascii_case(&entry.method))
            && self
                .path_prefix
                .as_ref()
                .is_none_or(|prefix| starts_with_ignoring_case(&entry.path, prefix))
            && self.status.is_none_or(|status| status == entry.status)
            && self
                .client_request_id
                .as_ref()
                .is_none_or(|id| id == &entry.client_request_id)
    }
}

fn starts_with_ignoring_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

#[derive(Debug)]
struct Buffer {
    entries: VecDeque<Entry>,
    dropped: u64,
    next_sequence: u64,
}

/// The journal: clone-cheap, shared by every request.
#[derive(Debug, Clone)]
pub struct Journal {
    capacity: usize,
    buffer: Arc<Mutex<Buffer>>,
}

impl Journal {
    pub fn new(capacity: usize) -> Journal {
        Journal {
            capacity,
            buffer: Arc::new(Mutex::new(Buffer {
                entries: VecDeque::with_capacity(capacity.min(DEFAULT_CAPACITY)),
                dropped: 0,
                next_sequence: 1,
            })),
        }
    }

    /// Appends an entry (its `sequence` is assigned here), dropping the oldest when full.
    pub fn record(&self, mut entry: Entry) {
        if self.capacity == 0 {
            return;
        }
        let mut buffer = self.buffer.lock().expect("journal lock");
        entry.sequence = buffer.next_sequence;
        buffer.next_sequence += 1;
        if buffer.entries.len() >= self.capacity {
            buffer.entries.pop_front();
            buffer.dropped += 1;
        }
        buffer.entries.push_back(entry);
    }

    /// The entries the filter keeps, oldest first, and how many entries were dropped for room.
    pub fn entries(&self, filter: &Filter) -> (Vec<Entry>, u64) {
        let buffer = self.buffer.lock().expect("journal lock");
        // Entries are in sequence order: a poll for what is new skips the rest at once.
        let first = filter.after.map_or(0, |after| {
            buffer
                .entries
                .partition_point(|entry| entry.sequence <= after)
        });
        let entries = buffer
            .entries
            .range(first..)
            .filter(|entry| filter.keeps(entry))
            .cloned()
            .collect();
        (entries, buffer.dropped)
    }

    /// Removes one tenant's entries (other tenants' entries and the dropped count stay).
    pub fn clear_tenant(&self, tenant: &str) {
        let mut buffer = self.buffer.lock().expect("journal lock");
        buffer.entries.retain(|entry| entry.tenant != tenant);
    }

    /// Empties the journal (and its dropped count).
    pub fn clear(&self) {
        let mut buffer = self.buffer.lock().expect("journal lock");
        buffer.entries.clear();
        buffer.dropped = 0;
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl Default for Journal {
    fn default() -> Journal {
        Journal::new(DEFAULT_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(method: &str, path: &str, status: u16) -> Entry {
        Entry {
            sequence: 0,
            time: DateTime::<Utc>::UNIX_EPOCH,
            method: method.into(),
            path: path.into(),
            status,
            duration_ms: 1,
            tenant: "t".into(),
            caller: "c".into(),
            client_request_id: format!("{method} {path}"),
            request_bytes: 0,
            error_code: None,
            error_message: None,
            retry_after_seconds: None,
            fault: None,
            throttled: false,
            batch: None,
            proxied_host: None,
        }
    }

    #[test]
    fn the_oldest_entries_make_room_and_are_counted() {
        let journal = Journal::new(3);
        for n in 0..5 {
            journal.record(entry("GET", &format!("/v1.0/{n}"), 200));
        }
        let (entries, dropped) = journal.entries(&Filter::default());
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/v1.0/2", "/v1.0/3", "/v1.0/4"]);
        assert_eq!(dropped, 2);
        assert_eq!(entries[0].sequence, 3);
        journal.clear();
        assert_eq!(journal.entries(&Filter::default()), (vec![], 0));
    }

    #[test]
    fn filters_combine() {
        let journal = Journal::new(10);
        journal.record(entry("PUT", "/v1.0/external/connections/a/items/1", 200));
        journal.record(entry("PUT", "/v1.0/external/connections/a/items/2", 400));
        journal.record(entry("GET", "/v1.0/external/connections/a", 200));
        let filter = Filter {
            method: Some("put".into()),
            path_prefix: Some("/V1.0/external/connections/a/items".into()),
            status: Some(400),
            ..Filter::default()
        };
        let (entries, _) = journal.entries(&filter);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].path, "/v1.0/external/connections/a/items/2");
    }

    #[test]
    fn polls_after_a_sequence_and_by_tenant() {
        let journal = Journal::new(3);
        for n in 0..5 {
            let mut request = entry("GET", &format!("/v1.0/external/connections/c{n}"), 200);
            request.tenant = if n % 2 == 0 { "t-even" } else { "t-odd" }.into();
            // (n = 2 and n = 4 are kept, as the first and last of the three.)
            journal.record(request);
        }
        // The first two were dropped; the last three are kept.
        let kept: Vec<u64> = journal
            .entries(&Filter::default())
            .0
            .iter()
            .map(|e| e.sequence)
            .collect();
        assert_eq!(kept.len(), 3);
        let [a, b, c] = [kept[0], kept[1], kept[2]];
        let after = |after: u64| {
            journal
                .entries(&Filter {
                    after: Some(after),
                    ..Filter::default()
                })
                .0
                .iter()
                .map(|e| e.sequence)
                .collect::<Vec<_>>()
        };
        assert_eq!(after(0), vec![a, b, c]);
        assert_eq!(after(b), vec![c]);
        assert!(after(c).is_empty());
        assert!(after(u64::MAX).is_empty());
        let (even, _) = journal.entries(&Filter {
            tenant: Some("t-even".into()),
            ..Filter::default()
        });
        // The third and fifth requests were the even tenant's; clearing them keeps the fourth.
        assert_eq!(
            even.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            vec![a, c]
        );
        journal.clear_tenant("t-even");
        assert_eq!(after(0), vec![b]);
    }
}
