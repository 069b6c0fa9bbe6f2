//! The connector report (`GET /_emulator/report`): what a connector did that would hurt it against
//! the real service, read from the request journal and the store.
//!
//! The analyses are pure functions: `journal_findings` over journal entries (retries sooner than
//! `Retry-After`, retry storms, refused item writes, items over the real size cap, operations
//! polled too often), and `schema_findings`, `ItemScan` and `principal_findings` over store data
//! (schemas without the labels results rely on, ACL entries naming unknown principals, items with
//! too little text to ground on). `report` is the one entry point that reads both: the store in
//! bounded pages through its read path, the analysis on a blocking thread, so a large tenant makes
//! a report slow, never the server.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::journal::{Entry, Filter};
use crate::domain::acl::AclPrincipal;
use crate::domain::ids::{ConnectionId, TenantId};
use crate::domain::item::ExternalItem;
use crate::domain::schema::Schema;
use crate::service::Error;
use crate::state::AppState;
use crate::store;

/// Ids (client request ids, item ids, principals) a finding lists at most; the count says how many
/// there were in all.
pub const MAX_SAMPLES: usize = 20;
/// The item size cap of the live service (the older docs' 4 MB, which it still enforces), in bytes;
/// gcemu accepts up to `--max-body-bytes` (30 MB by default, the newest docs' figure).
pub const REAL_ITEM_SIZE_CAP: u64 = 4 * 1024 * 1024;
/// Requests within one `Retry-After` window that make a retry storm.
pub const STORM_REQUESTS: usize = 5;
/// The shortest polling interval of an operation, in milliseconds.
pub const MIN_POLL_INTERVAL_MS: i64 = 1_000;
/// Words an item's text (searchable properties, then content with HTML stripped) needs at least to
/// ground a Copilot answer on.
pub const MIN_GROUNDING_WORDS: usize = 20;
/// Labels that search results and Copilot rely on.
pub const RELIED_ON_LABELS: [&str; 3] = ["title", "url", "iconUrl"];
/// Items a report scans at most (over all connections of the tenant).
pub const MAX_SCANNED_ITEMS: u64 = 100_000;
/// Distinct ACL principals a report checks against the directory at most.
pub const MAX_CHECKED_PRINCIPALS: usize = 100_000;
/// Findings a report lists at most (the summary counts them all).
pub const MAX_FINDINGS: usize = 1_000;
/// Items read per store page, and the bytes of a page after which it ends early.
const PAGE_ITEMS: usize = 500;
const PAGE_BYTES: usize = 16 * 1024 * 1024;
/// Principals looked up per store read.
const LOOKUP_CHUNK: usize = 2_000;
/// Characters of an item's content read for the text check (what retrieval cuts into passages
/// comes from no more than this), and the largest property bag read for it.
const CONTENT_PREFIX_CHARS: usize = 1024 * 1024;
const MAX_PROPERTIES_CHARS: usize = 1024 * 1024;
/// Reports computed at once; more wait, so reports cannot crowd out the store thread.
static RUNNING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// How much a finding hurts: `Error`, the real service refuses or penalizes it; `Warning`, it is
/// accepted but search or Copilot suffers; `Info`, worth a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Error, Severity::Warning, Severity::Info];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }

    pub fn parse(raw: &str) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|severity| severity.as_str().eq_ignore_ascii_case(raw))
    }
}

/// The kinds of finding; each has a stable camelCase code and one severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    ItemBeforeSchemaReady,
    RetryBeforeRetryAfter,
    RetryStorm,
    PropertyNotInSchema,
    PropertyTypeMismatch,
    ItemOverSizeCap,
    AclUnknownPrincipal,
    SchemaMissingLabels,
    OperationPolledTooOften,
    ContentTooShortToGround,
}

impl Code {
    pub const ALL: [Code; 10] = [
        Code::ItemBeforeSchemaReady,
        Code::RetryBeforeRetryAfter,
        Code::RetryStorm,
        Code::PropertyNotInSchema,
        Code::PropertyTypeMismatch,
        Code::ItemOverSizeCap,
        Code::AclUnknownPrincipal,
        Code::SchemaMissingLabels,
        Code::OperationPolledTooOften,
        Code::ContentTooShortToGround,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::ItemBeforeSchemaReady => "itemBeforeSchemaReady",
            Code::RetryBeforeRetryAfter => "retryBeforeRetryAfter",
            Code::RetryStorm => "retryStorm",
            Code::PropertyNotInSchema => "propertyNotInSchema",
            Code::PropertyTypeMismatch => "propertyTypeMismatch",
            Code::ItemOverSizeCap => "itemOverSizeCap",
            Code::AclUnknownPrincipal => "aclUnknownPrincipal",
            Code::SchemaMissingLabels => "schemaMissingLabels",
            Code::OperationPolledTooOften => "operationPolledTooOften",
            Code::ContentTooShortToGround => "contentTooShortToGround",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            // Refused by the real service, or met with longer throttling.
            Code::ItemBeforeSchemaReady
            | Code::RetryBeforeRetryAfter
            | Code::RetryStorm
            | Code::PropertyNotInSchema
            | Code::PropertyTypeMismatch
            | Code::ItemOverSizeCap => Severity::Error,
            // Accepted, but people miss items, results look bare, or the budget goes to polling.
            Code::AclUnknownPrincipal
            | Code::SchemaMissingLabels
            | Code::OperationPolledTooOften => Severity::Warning,
            // Accepted and searchable; only Copilot answers suffer, and short records can be fine.
            Code::ContentTooShortToGround => Severity::Info,
        }
    }
}

/// Values with a bounded sample: the first `MAX_SAMPLES` distinct ones in order, and how many in
/// all. `push` counts distinct values (it remembers them: for the journal, which is bounded);
/// `push_new` counts every call (for values known to be new, as the items of a store scan).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Samples {
    pub values: Vec<String>,
    total: u64,
    seen: HashSet<String>,
}

impl Samples {
    pub fn push(&mut self, value: &str) {
        if value.is_empty() || self.seen.contains(value) {
            return;
        }
        self.seen.insert(value.to_string());
        self.push_new(value);
    }

    pub fn push_new(&mut self, value: &str) {
        if value.is_empty() {
            return;
        }
        self.total += 1;
        if self.values.len() < MAX_SAMPLES && !self.values.iter().any(|v| v == value) {
            self.values.push(value.to_string());
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

/// One finding: what, where, how often, and the requests and resources involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub code: Code,
    pub message: String,
    pub count: u64,
    pub client_request_ids: Samples,
    pub connection_id: Option<String>,
    pub property: Option<String>,
    pub operation_id: Option<String>,
    pub item_ids: Samples,
    /// `type:value` of the ACL principals involved.
    pub principals: Samples,
}

impl Finding {
    fn new(code: Code, message: String, count: u64) -> Finding {
        Finding {
            code,
            message,
            count,
            client_request_ids: Samples::default(),
            connection_id: None,
            property: None,
            operation_id: None,
            item_ids: Samples::default(),
            principals: Samples::default(),
        }
    }

    pub fn severity(&self) -> Severity {
        self.code.severity()
    }
}

/// What the store scan covered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanSummary {
    pub connections: u64,
    pub items: u64,
    pub principals: u64,
    /// False when a bound (`MAX_SCANNED_ITEMS`, `MAX_CHECKED_PRINCIPALS`) stopped the scan early.
    pub complete: bool,
}

/// The whole report of a tenant.
#[derive(Debug, Clone)]
pub struct Report {
    pub tenant: TenantId,
    /// Ordered by severity, then code, then message; at most `MAX_FINDINGS`.
    pub findings: Vec<Finding>,
    /// Findings of each severity, including any left out of `findings`.
    pub summary: [(Severity, u64); 3],
    pub findings_omitted: u64,
    /// The tenant's journal entries analysed, and the entries the journal dropped (all tenants).
    pub journal_entries: u64,
    pub journal_dropped: u64,
    pub scan: ScanSummary,
}

// ------------------------------------------------------------------------------------------------
// The entry point

/// The report of `tenant`: the journal's findings and the store's.
pub async fn report(state: &AppState, tenant: &TenantId) -> Result<Report, Error> {
    let _permit = RUNNING
        .acquire()
        .await
        .map_err(|error| Error::Internal(error.to_string()))?;
    let (mut findings, scan) = store_findings(state, tenant).await?;
    let (journal, tenant_out) = (state.control.journal.clone(), tenant.clone());
    blocking(move || {
        let (all_entries, dropped) = journal.entries(&Filter::default());
        let entries: Vec<Entry> = all_entries
            .into_iter()
            .filter(|entry| entry.tenant == tenant_out.as_str())
            .collect();
        attach_writes(&mut findings, &entries);
        findings.extend(journal_findings(&entries));
        let (findings, summary, findings_omitted) = ordered(findings);
        Report {
            tenant: tenant_out,
            findings,
            summary,
            findings_omitted,
            journal_entries: entries.len() as u64,
            journal_dropped: dropped,
            scan,
        }
    })
    .await
}

async fn blocking<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| Error::Internal(format!("the report's analysis failed: {error}")))
}

/// Sorts by severity, code and message, counts each severity, keeps the first `MAX_FINDINGS`.
fn ordered(mut findings: Vec<Finding>) -> (Vec<Finding>, [(Severity, u64); 3], u64) {
    findings.sort_by(|a, b| {
        (a.severity(), a.code.as_str(), &a.message).cmp(&(
            b.severity(),
            b.code.as_str(),
            &b.message,
        ))
    });
    let summary = Severity::ALL.map(|severity| {
        let n = findings.iter().filter(|f| f.severity() == severity).count();
        (severity, n as u64)
    });
    let omitted = findings.len().saturating_sub(MAX_FINDINGS) as u64;
    findings.truncate(MAX_FINDINGS);
    (findings, summary, omitted)
}

// ------------------------------------------------------------------------------------------------
// Journal analysis

/// A Graph path, as far as the report cares: the version, then the segments (percent-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resource {
    Item {
        connection: String,
        item: String,
    },
    Schema {
        connection: String,
    },
    Operation {
        connection: String,
        operation: String,
    },
    Other,
}

fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            percent_encoding::percent_decode_str(segment)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

fn resource_of(path: &str) -> Resource {
    let segments = segments(path);
    let rest: Vec<&str> = segments.iter().skip(1).map(String::as_str).collect();
    match rest.as_slice() {
        [external, connections, connection, kind, id]
            if external.eq_ignore_ascii_case("external")
                && connections.eq_ignore_ascii_case("connections") =>
        {
            if kind.eq_ignore_ascii_case("items") {
                Resource::Item {
                    connection: connection.to_string(),
                    item: id.to_string(),
                }
            } else if kind.eq_ignore_ascii_case("operations") {
                Resource::Operation {
                    connection: connection.to_string(),
                    operation: id.to_string(),
                }
            } else {
                Resource::Other
            }
        }
        [external, connections, connection, schema]
            if external.eq_ignore_ascii_case("external")
                && connections.eq_ignore_ascii_case("connections")
                && schema.eq_ignore_ascii_case("schema") =>
        {
            Resource::Schema {
                connection: connection.to_string(),
            }
        }
        _ => Resource::Other,
    }
}

/// The path with the ids of items, operations, groups, users and members replaced by `{id}`, so
/// the requests of one kind group together (the connection id stays: it says where).
pub fn route_of(path: &str) -> String {
    let mut route = String::new();
    let mut previous = "";
    for segment in path.split('/').filter(|segment| !segment.is_empty()) {
        route.push('/');
        let is_collection = ["items", "operations", "groups", "users", "members"]
            .iter()
            .any(|name| previous.eq_ignore_ascii_case(name));
        if is_collection && !segment.starts_with('$') && !segment.contains('.') {
            route.push_str("{id}");
        } else {
            route.push_str(segment);
        }
        previous = segment;
    }
    if route.is_empty() {
        route.push('/');
    }
    route
}

/// Every journal finding of one tenant's entries (oldest first).
pub fn journal_findings(entries: &[Entry]) -> Vec<Finding> {
    let mut findings = retry_findings(entries);
    findings.extend(item_write_findings(entries));
    findings.extend(polling_findings(entries));
    findings
}

/// A `429` or `503` answer with `Retry-After`: how long the caller was asked to wait.
fn asked_to_wait(entry: &Entry) -> Option<u64> {
    matches!(entry.status, 429 | 503)
        .then_some(entry.retry_after_seconds)
        .flatten()
}

fn after_seconds(time: DateTime<Utc>, seconds: u64) -> DateTime<Utc> {
    crate::clock::later(
        time,
        chrono::Duration::seconds(seconds.min(crate::clock::MAX_DELAY_SECONDS) as i64),
    )
}

fn seconds_between(earlier: DateTime<Utc>, later: DateTime<Utc>) -> f64 {
    (later - earlier).num_milliseconds() as f64 / 1000.0
}

/// Requests sent while a `Retry-After` window was open, per (caller, method, path): the window
/// opens with a `429`/`503` carrying `Retry-After` and closes once that time has passed (an early
/// request answered the same way extends it). A window with `STORM_REQUESTS` or more early
/// requests is a retry storm; one with fewer, retries before `Retry-After`.
pub fn retry_findings(entries: &[Entry]) -> Vec<Finding> {
    let mut by_key: HashMap<(&str, &str, &str), Vec<&Entry>> = HashMap::new();
    for entry in entries {
        by_key
            .entry((&entry.caller, &entry.method, &entry.path))
            .or_default()
            .push(entry);
    }
    // Aggregated per (code, method, route).
    let mut groups: HashMap<(Code, String, String), RetryGroup> = HashMap::new();
    let mut keys: Vec<_> = by_key.keys().copied().collect();
    keys.sort_unstable();
    for key in keys {
        let mut requests = by_key.remove(&key).unwrap_or_default();
        requests.sort_by_key(|entry| (entry.time, entry.sequence));
        let mut window: Option<Window> = None;
        for entry in requests {
            if let Some(open) = window.as_mut() {
                if entry.time < open.end {
                    open.early.push(entry);
                    if let Some(seconds) = asked_to_wait(entry) {
                        open.end = open.end.max(after_seconds(entry.time, seconds));
                    }
                    continue;
                }
                if let Some(closed) = window.take() {
                    closed.close(&mut groups);
                }
            }
            if let Some(seconds) = asked_to_wait(entry) {
                window = Some(Window {
                    opened_by: entry,
                    asked: seconds,
                    end: after_seconds(entry.time, seconds),
                    early: Vec::new(),
                });
            }
        }
        if let Some(closed) = window {
            closed.close(&mut groups);
        }
    }
    let mut findings: Vec<Finding> = groups
        .into_iter()
        .map(|((code, method, route), group)| group.finding(code, &method, &route))
        .collect();
    findings.sort_by(|a, b| a.message.cmp(&b.message));
    findings
}

struct Window<'a> {
    opened_by: &'a Entry,
    asked: u64,
    end: DateTime<Utc>,
    early: Vec<&'a Entry>,
}

impl Window<'_> {
    fn close(self, groups: &mut HashMap<(Code, String, String), RetryGroup>) {
        let Some(first) = self.early.first() else {
            return;
        };
        let code = if self.early.len() >= STORM_REQUESTS {
            Code::RetryStorm
        } else {
            Code::RetryBeforeRetryAfter
        };
        let key = (
            code,
            self.opened_by.method.clone(),
            route_of(&self.opened_by.path),
        );
        let group = groups.entry(key).or_insert_with(|| RetryGroup {
            windows: 0,
            requests: 0,
            largest_window: 0,
            example: None,
            client_request_ids: Samples::default(),
            connection: None,
            item_ids: Samples::default(),
        });
        group.windows += 1;
        group.requests += self.early.len() as u64;
        group.largest_window = group.largest_window.max(self.early.len());
        if group.example.is_none() {
            group.example = Some(RetryExample {
                status: self.opened_by.status,
                asked: self.asked,
                waited: seconds_between(self.opened_by.time, first.time),
                path: self.opened_by.path.clone(),
            });
        }
        group
            .client_request_ids
            .push(&self.opened_by.client_request_id);
        for entry in &self.early {
            group.client_request_ids.push(&entry.client_request_id);
        }
        match resource_of(&self.opened_by.path) {
            Resource::Item { connection, item } => {
                group.connection.get_or_insert(connection);
                group.item_ids.push(&item);
            }
            Resource::Schema { connection } | Resource::Operation { connection, .. } => {
                group.connection.get_or_insert(connection);
            }
            Resource::Other => {}
        }
    }
}

struct RetryExample {
    status: u16,
    asked: u64,
    waited: f64,
    path: String,
}

struct RetryGroup {
    windows: u64,
    requests: u64,
    largest_window: usize,
    example: Option<RetryExample>,
    client_request_ids: Samples,
    connection: Option<String>,
    item_ids: Samples,
}

impl RetryGroup {
    fn finding(self, code: Code, method: &str, route: &str) -> Finding {
        let example = self.example.as_ref().map_or(String::new(), |example| {
            format!(
                "; {method} {} came {:.1} s after a {} that asked to wait {} s",
                example.path, example.waited, example.status, example.asked
            )
        });
        let message = match (code, &self.example) {
            (Code::RetryStorm, Some(example)) => format!(
                "Retry storm on {method} {route}: {} {} came within Retry-After windows ({} {}, at most {} in one; the first after a {} that asked to wait {} s), which the real service meets with longer throttling.",
                self.requests,
                plural(self.requests, "request"),
                self.windows,
                plural(self.windows, "window"),
                self.largest_window,
                example.status,
                example.asked,
            ),
            _ => format!(
                "{} {} {method} {route} came sooner than Retry-After allowed{example}.",
                self.requests,
                plural(self.requests, "retry of"),
            ),
        };
        let mut finding = Finding::new(code, message, self.requests);
        finding.client_request_ids = self.client_request_ids;
        finding.connection_id = self.connection;
        finding.item_ids = self.item_ids;
        finding
    }
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        return word.to_string();
    }
    match word.split_once(' ') {
        Some((first, rest)) => format!("{} {rest}", plural(n, first)),
        None if word.ends_with('y') => format!("{}ies", &word[..word.len() - 1]),
        None if word.ends_with('s') => format!("{word}es"),
        None => format!("{word}s"),
    }
}

/// What gcemu answers when an item write comes before the schema is ready, and when a property
/// is not in the schema or does not fit its type (`service::items`, `domain::item`).
const NOT_READY_MARKER: &str = "is not ready for items";
const NOT_IN_SCHEMA_MARKER: &str = "is not defined in the connection's schema";
const MISMATCH_MARKER: &str = "does not match schema";

/// Why an item write was refused, as far as the report cares.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ItemRefusal {
    NotReady,
    NotInSchema(Option<String>),
    Mismatch(Option<String>),
}

fn item_refusal(entry: &Entry) -> Option<ItemRefusal> {
    if entry.status != 400 {
        return None;
    }
    let message = entry.error_message.as_deref()?;
    if message.contains(NOT_READY_MARKER) {
        return Some(ItemRefusal::NotReady);
    }
    if let Some(at) = message.find(NOT_IN_SCHEMA_MARKER) {
        // "Property 'name' is not defined in the connection's schema."
        let before = message[..at].trim_end();
        let name = before
            .strip_suffix('\'')
            .and_then(|rest| rest.find('\'').map(|open| rest[open + 1..].to_string()));
        return Some(ItemRefusal::NotInSchema(name));
    }
    if message.contains(MISMATCH_MARKER) {
        // "Property name in payload has a value that does not match schema. ..."
        let name = message
            .strip_prefix("Property ")
            .and_then(|rest| rest.split_once(" in payload"))
            .map(|(name, _)| name.to_string());
        return Some(ItemRefusal::Mismatch(name));
    }
    None
}

fn is_item_write(entry: &Entry) -> bool {
    entry.method.eq_ignore_ascii_case("PUT") || entry.method.eq_ignore_ascii_case("PATCH")
}

/// Refused item writes (schema not ready, a property not in the schema or of the wrong type) and
/// accepted item PUTs over the real service's size cap, per connection (and property).
pub fn item_write_findings(entries: &[Entry]) -> Vec<Finding> {
    #[derive(Default)]
    struct Group {
        display_connection: String,
        property: Option<String>,
        requests: u64,
        largest_bytes: u64,
        client_request_ids: Samples,
        item_ids: Samples,
    }
    let mut groups: HashMap<(Code, String, String), Group> = HashMap::new();
    for entry in entries.iter().filter(|entry| is_item_write(entry)) {
        let Resource::Item { connection, item } = resource_of(&entry.path) else {
            continue;
        };
        let (code, property) = match item_refusal(entry) {
            Some(ItemRefusal::NotReady) => (Code::ItemBeforeSchemaReady, None),
            Some(ItemRefusal::NotInSchema(name)) => (Code::PropertyNotInSchema, name),
            Some(ItemRefusal::Mismatch(name)) => (Code::PropertyTypeMismatch, name),
            None if (200..300).contains(&entry.status)
                && entry.method.eq_ignore_ascii_case("PUT")
                && entry.request_bytes > REAL_ITEM_SIZE_CAP =>
            {
                (Code::ItemOverSizeCap, None)
            }
            None => continue,
        };
        let key = (
            code,
            connection.to_ascii_lowercase(),
            property.clone().unwrap_or_default().to_ascii_lowercase(),
        );
        let group = groups.entry(key).or_insert_with(|| Group {
            display_connection: connection.clone(),
            property,
            ..Group::default()
        });
        group.requests += 1;
        group.largest_bytes = group.largest_bytes.max(entry.request_bytes);
        group.client_request_ids.push(&entry.client_request_id);
        group.item_ids.push(&item);
    }
    let mut findings: Vec<Finding> = groups
        .into_iter()
        .map(|((code, _, _), group)| {
            let connection = &group.display_connection;
            let requests = group.requests;
            let items = items_phrase(&group.item_ids);
            let property = group.property.as_deref().unwrap_or("(unnamed)");
            let message = match code {
                Code::ItemBeforeSchemaReady => format!(
                    "{requests} item {} to connection '{connection}' came before its schema was completed ({items}); wait until the schema operation is completed before sending items.",
                    plural(requests, "write"),
                ),
                Code::PropertyNotInSchema => format!(
                    "{requests} item {} to connection '{connection}' sent property '{property}', which its schema does not define ({items}).",
                    plural(requests, "write"),
                ),
                Code::PropertyTypeMismatch => format!(
                    "{requests} item {} to connection '{connection}' sent property '{property}' with a value that does not fit its schema type ({items}).",
                    plural(requests, "write"),
                ),
                _ => format!(
                    "{requests} item {} to connection '{connection}' sent more than the real service's 4 MB item cap, up to {} bytes ({items}); gcemu accepted them, the real service answers 413.",
                    plural(requests, "PUT"),
                    group.largest_bytes,
                ),
            };
            let mut finding = Finding::new(code, message, requests);
            finding.connection_id = Some(group.display_connection);
            finding.property = group.property;
            finding.client_request_ids = group.client_request_ids;
            finding.item_ids = group.item_ids;
            finding
        })
        .collect();
    findings.sort_by(|a, b| a.message.cmp(&b.message));
    findings
}

/// "items a, b and 3 more" from a sample.
fn items_phrase(items: &Samples) -> String {
    const SHOWN: usize = 3;
    let shown: Vec<String> = items
        .values
        .iter()
        .take(SHOWN)
        .map(|id| format!("'{}'", crate::domain::excerpt(id, 64)))
        .collect();
    let more = items.total().saturating_sub(shown.len() as u64);
    let mut phrase = format!(
        "{} {}",
        if items.total() == 1 { "item" } else { "items" },
        shown.join(", ")
    );
    if more > 0 {
        phrase.push_str(&format!(" and {more} more"));
    }
    phrase
}

/// GETs of one operation less than `MIN_POLL_INTERVAL_MS` after the previous GET of it by the same
/// caller.
pub fn polling_findings(entries: &[Entry]) -> Vec<Finding> {
    struct Polls<'a> {
        connection: String,
        operation: String,
        times: Vec<&'a Entry>,
    }
    let mut by_operation: HashMap<(&str, String), Polls<'_>> = HashMap::new();
    for entry in entries
        .iter()
        .filter(|entry| entry.method.eq_ignore_ascii_case("GET"))
    {
        let Resource::Operation {
            connection,
            operation,
        } = resource_of(&entry.path)
        else {
            continue;
        };
        let key = (
            entry.caller.as_str(),
            format!("{}/{}", connection.to_ascii_lowercase(), operation),
        );
        by_operation
            .entry(key)
            .or_insert_with(|| Polls {
                connection,
                operation,
                times: Vec::new(),
            })
            .times
            .push(entry);
    }
    let mut findings = Vec::new();
    for polls in by_operation.into_values() {
        let mut times = polls.times;
        times.sort_by_key(|entry| (entry.time, entry.sequence));
        let mut too_soon = 0u64;
        let mut shortest = i64::MAX;
        let mut client_request_ids = Samples::default();
        for pair in times.windows(2) {
            let gap = (pair[1].time - pair[0].time).num_milliseconds();
            if gap < MIN_POLL_INTERVAL_MS {
                too_soon += 1;
                shortest = shortest.min(gap);
                client_request_ids.push(&pair[1].client_request_id);
            }
        }
        if too_soon == 0 {
            continue;
        }
        let message = format!(
            "Operation '{}' of connection '{}' was polled {too_soon} {} less than a second after the previous poll (shortest gap {} ms); poll at most once a second.",
            polls.operation,
            polls.connection,
            plural(too_soon, "time"),
            shortest.max(0),
        );
        let mut finding = Finding::new(Code::OperationPolledTooOften, message, too_soon);
        finding.connection_id = Some(polls.connection);
        finding.operation_id = Some(polls.operation);
        finding.client_request_ids = client_request_ids;
        findings.push(finding);
    }
    findings.sort_by(|a, b| a.message.cmp(&b.message));
    findings
}

/// Gives store findings the client request ids of the journaled writes that made them: the
/// successful PUTs and PATCHes of their sampled items, and of their connection's schema.
pub fn attach_writes(findings: &mut [Finding], entries: &[Entry]) {
    let mut wanted_items: HashSet<(String, String)> = HashSet::new();
    let mut wanted_schemas: HashSet<String> = HashSet::new();
    for finding in findings.iter() {
        let Some(connection) = &finding.connection_id else {
            continue;
        };
        let connection = connection.to_ascii_lowercase();
        if finding.code == Code::SchemaMissingLabels {
            wanted_schemas.insert(connection.clone());
        }
        for item in &finding.item_ids.values {
            wanted_items.insert((connection.clone(), item.clone()));
        }
    }
    if wanted_items.is_empty() && wanted_schemas.is_empty() {
        return;
    }
    let mut writes: HashMap<(String, String), Vec<&str>> = HashMap::new();
    let mut schema_writes: HashMap<String, Vec<&str>> = HashMap::new();
    for entry in entries {
        let written = (200..300).contains(&entry.status)
            && matches!(entry.method.as_str(), "PUT" | "PATCH" | "POST");
        if !written || entry.client_request_id.is_empty() {
            continue;
        }
        match resource_of(&entry.path) {
            Resource::Item { connection, item } => {
                let key = (connection.to_ascii_lowercase(), item);
                if wanted_items.contains(&key) {
                    writes
                        .entry(key)
                        .or_default()
                        .push(&entry.client_request_id);
                }
            }
            Resource::Schema { connection } => {
                let connection = connection.to_ascii_lowercase();
                if wanted_schemas.contains(&connection) {
                    schema_writes
                        .entry(connection)
                        .or_default()
                        .push(&entry.client_request_id);
                }
            }
            _ => {}
        }
    }
    for finding in findings.iter_mut() {
        let Some(connection) = finding
            .connection_id
            .as_ref()
            .map(|c| c.to_ascii_lowercase())
        else {
            continue;
        };
        if finding.code == Code::SchemaMissingLabels {
            for id in schema_writes.get(&connection).into_iter().flatten() {
                finding.client_request_ids.push(id);
            }
        }
        for item in finding.item_ids.values.clone() {
            for id in writes
                .get(&(connection.clone(), item))
                .into_iter()
                .flatten()
            {
                finding.client_request_ids.push(id);
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Store analysis

/// The labels among `RELIED_ON_LABELS` that no property of the schema carries.
pub fn missing_labels(schema: &Schema) -> Vec<&'static str> {
    RELIED_ON_LABELS
        .into_iter()
        .filter(|label| {
            !schema.properties.iter().any(|property| {
                property
                    .labels
                    .iter()
                    .any(|l| l.eq_ignore_ascii_case(label))
            })
        })
        .collect()
}

pub fn schema_findings(connection: &str, schema: &Schema) -> Option<Finding> {
    let missing = missing_labels(schema);
    if missing.is_empty() {
        return None;
    }
    let names: Vec<String> = missing.iter().map(|label| format!("'{label}'")).collect();
    let message = format!(
        "The schema of connection '{connection}' has no {} {}: search results and Copilot show items by title, link to them by url and mark them with iconUrl.",
        plural(missing.len() as u64, "label"),
        names.join(", "),
    );
    let mut finding = Finding::new(Code::SchemaMissingLabels, message, missing.len() as u64);
    finding.connection_id = Some(connection.to_string());
    Some(finding)
}

/// Words of the text retrieval reads from the item (searchable properties, then the content with
/// HTML stripped), counted up to `MIN_GROUNDING_WORDS`.
pub fn grounding_words(item: &ExternalItem, schema: &Schema) -> usize {
    let text = crate::service::retrieval::item_text(item, schema);
    crate::domain::retrieval::words(&text)
        .take(MIN_GROUNDING_WORDS)
        .count()
}

/// Items each principal keeps as examples (a scan may gather `MAX_CHECKED_PRINCIPALS` of them).
const ITEMS_PER_PRINCIPAL: usize = 3;

/// An ACL principal to look up, and the items that name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalUse {
    pub principal: AclPrincipal,
    /// The value as the first item sent it (principals compare user and group ids in lowercase).
    pub value: String,
    /// Items whose ACL names it.
    pub items: u64,
    pub item_examples: Vec<String>,
}

impl PrincipalUse {
    fn describe(&self) -> String {
        let kind = match self.principal {
            AclPrincipal::User(_) => "user",
            AclPrincipal::Group(_) => "group",
            _ => "externalGroup",
        };
        format!("{kind}:{}", self.value)
    }
}

/// What scanning one connection's items gathered: the items too short to ground on, and the
/// principals their ACLs name.
#[derive(Debug, Default)]
pub struct ItemScan {
    pub items: u64,
    pub short_items: Samples,
    pub principals: HashMap<AclPrincipal, PrincipalUse>,
    /// Principals left unchecked once `MAX_CHECKED_PRINCIPALS` were gathered.
    pub principals_over: bool,
}

impl ItemScan {
    /// Takes in one page of items (on a blocking thread: it strips HTML). `checked` is the number
    /// of principals gathered from earlier connections.
    pub fn add(&mut self, schema: &Schema, items: &[store::items::ReportedItem], checked: usize) {
        for reported in items {
            self.items += 1;
            let item = &reported.item;
            let id = item.id.as_str();
            // An item whose property bag was too large to read is not judged short.
            if reported.properties_read && grounding_words(item, schema) < MIN_GROUNDING_WORDS {
                self.short_items.push_new(id);
            }
            let mut named = HashSet::new();
            for entry in &item.acl {
                let principal = entry.principal();
                if matches!(
                    principal,
                    AclPrincipal::Everyone | AclPrincipal::EveryoneExceptGuests
                ) || !named.insert(principal.clone())
                {
                    continue;
                }
                if let Some(known) = self.principals.get_mut(&principal) {
                    known.items += 1;
                    if known.item_examples.len() < ITEMS_PER_PRINCIPAL {
                        known.item_examples.push(id.to_string());
                    }
                    continue;
                }
                if checked + self.principals.len() >= MAX_CHECKED_PRINCIPALS {
                    self.principals_over = true;
                    continue;
                }
                self.principals.insert(
                    principal.clone(),
                    PrincipalUse {
                        principal,
                        value: entry.value.clone(),
                        items: 1,
                        item_examples: vec![id.to_string()],
                    },
                );
            }
        }
    }

    pub fn short_finding(&self, connection: &str) -> Option<Finding> {
        if self.short_items.is_empty() {
            return None;
        }
        let n = self.short_items.total();
        let message = format!(
            "{n} {} of connection '{connection}' {} fewer than {MIN_GROUNDING_WORDS} words of text in searchable properties and content ({}): Copilot has too little to ground an answer on.",
            plural(n, "item"),
            if n == 1 { "has" } else { "have" },
            items_phrase(&self.short_items),
        );
        let mut finding = Finding::new(Code::ContentTooShortToGround, message, n);
        finding.connection_id = Some(connection.to_string());
        finding.item_ids = self.short_items.clone();
        Some(finding)
    }
}

/// The finding for the principals of one connection that the directory (or the connection's
/// external groups) does not know. Its item ids are examples; their count is the number of
/// (item, unknown principal) pairs.
pub fn principal_findings(connection: &str, unknown: &[&PrincipalUse]) -> Option<Finding> {
    if unknown.is_empty() {
        return None;
    }
    let mut principals = Samples::default();
    let mut item_ids = Samples::default();
    let mut pairs = 0u64;
    for principal in unknown {
        principals.push_new(&principal.describe());
        for item in &principal.item_examples {
            if item_ids.values.len() < MAX_SAMPLES && !item_ids.values.contains(item) {
                item_ids.values.push(item.clone());
            }
        }
        pairs += principal.items;
    }
    item_ids.total = pairs;
    let shown: Vec<String> = unknown
        .iter()
        .take(3)
        .map(|principal| {
            format!(
                "{} in {} {}",
                crate::domain::excerpt(&principal.describe(), 80),
                principal.items,
                plural(principal.items, "item")
            )
        })
        .collect();
    let more = unknown.len().saturating_sub(shown.len());
    let n = unknown.len() as u64;
    let message = format!(
        "ACL entries of connection '{connection}' name {n} {} that the directory does not know ({}{}): such entries grant or deny no one.",
        plural(n, "principal"),
        shown.join("; "),
        if more > 0 { format!("; and {more} more") } else { String::new() },
    );
    let mut finding = Finding::new(Code::AclUnknownPrincipal, message, n);
    finding.connection_id = Some(connection.to_string());
    finding.principals = principals;
    finding.item_ids = item_ids;
    Some(finding)
}

/// Whether the tenant's directory (users by id or UPN, groups by id) or the connection's
/// external groups know each principal. Runs on the store thread.
fn known_principals(
    db: &rusqlite::Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    principals: &[AclPrincipal],
) -> Result<Vec<bool>, store::StoreError> {
    principals
        .iter()
        .map(|principal| {
            Ok(match principal {
                AclPrincipal::User(value) => {
                    store::directory::find_user(db, tenant, value)?.is_some()
                }
                AclPrincipal::Group(value) => {
                    match crate::domain::directory::GroupId::parse(value) {
                        Ok(id) => store::directory::get_group(db, tenant, &id)?.is_some(),
                        Err(_) => false,
                    }
                }
                AclPrincipal::ExternalGroup(value) => {
                    store::groups::get(db, tenant, connection_id, value)?.is_some()
                }
                AclPrincipal::Everyone | AclPrincipal::EveryoneExceptGuests => true,
            })
        })
        .collect()
}

/// The store's findings: each connection's effective schema, its items (in pages, at most
/// `MAX_SCANNED_ITEMS` in all) and the principals their ACLs name.
async fn store_findings(
    state: &AppState,
    tenant: &TenantId,
) -> Result<(Vec<Finding>, ScanSummary), Error> {
    let lookup = tenant.clone();
    let connections = state
        .store
        .read(move |db| {
            let mut connections = Vec::new();
            for connection in store::connections::list(db, &lookup)? {
                let effective = store::schema::get_schemas(db, &lookup, &connection.id)?
                    .and_then(|schemas| schemas.effective);
                connections.push((connection.id, effective));
            }
            Ok(connections)
        })
        .await?;
    let mut findings = Vec::new();
    let mut scan = ScanSummary {
        connections: connections.len() as u64,
        complete: true,
        ..ScanSummary::default()
    };
    for (connection_id, schema) in connections {
        let Some(schema) = schema else {
            continue;
        };
        let name = connection_id.as_str().to_string();
        findings.extend(schema_findings(&name, &schema));
        let schema = std::sync::Arc::new(schema);
        let mut item_scan = ItemScan::default();
        let mut after: Option<String> = None;
        loop {
            let room = MAX_SCANNED_ITEMS.saturating_sub(scan.items + item_scan.items);
            if room == 0 {
                scan.complete = false;
                break;
            }
            let (page_tenant, page_connection, page_after) =
                (tenant.clone(), connection_id.clone(), after.clone());
            let limits = store::items::ReportPage {
                max_items: PAGE_ITEMS.min(room as usize),
                max_bytes: PAGE_BYTES,
                content_prefix_chars: CONTENT_PREFIX_CHARS,
                max_properties_chars: MAX_PROPERTIES_CHARS,
            };
            let (page, more) = state
                .store
                .read(move |db| {
                    store::items::report_page(
                        db,
                        &page_tenant,
                        &page_connection,
                        page_after.as_deref(),
                        &limits,
                    )
                })
                .await?;
            after = page
                .last()
                .map(|reported| reported.item.id.as_str().to_string());
            let checked = scan.principals as usize;
            let page_schema = schema.clone();
            item_scan = blocking(move || {
                item_scan.add(&page_schema, &page, checked);
                item_scan
            })
            .await?;
            if !more || after.is_none() {
                break;
            }
        }
        scan.items += item_scan.items;
        findings.extend(item_scan.short_finding(&name));
        if item_scan.principals_over {
            scan.complete = false;
        }
        scan.principals += item_scan.principals.len() as u64;
        let mut uses: Vec<PrincipalUse> = item_scan.principals.into_values().collect();
        uses.sort_by(|a, b| a.principal.cmp(&b.principal));
        let mut unknown = Vec::new();
        for chunk in uses.chunks(LOOKUP_CHUNK) {
            let principals: Vec<AclPrincipal> =
                chunk.iter().map(|used| used.principal.clone()).collect();
            let (lookup_tenant, lookup_connection) = (tenant.clone(), connection_id.clone());
            let known = state
                .store
                .read(move |db| {
                    known_principals(db, &lookup_tenant, &lookup_connection, &principals)
                })
                .await?;
            unknown.extend(
                chunk
                    .iter()
                    .zip(known)
                    .filter(|(_, known)| !known)
                    .map(|(used, _)| used),
            );
        }
        findings.extend(principal_findings(&name, &unknown));
    }
    Ok((findings, scan))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::acl::{AccessType, AclEntry, AclType};
    use crate::domain::ids::ItemId;
    use crate::domain::item::ItemContent;
    use crate::domain::schema::{Property, PropertyType};
    use serde_json::json;

    fn at(millis: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::milliseconds(millis)
    }

    fn entry(millis: i64, method: &str, path: &str, status: u16) -> Entry {
        Entry {
            sequence: millis as u64,
            time: at(millis),
            method: method.into(),
            path: path.into(),
            status,
            duration_ms: 1,
            tenant: "t".into(),
            caller: "app".into(),
            client_request_id: format!("r{millis}"),
            request_bytes: 100,
            error_code: None,
            error_message: None,
            retry_after_seconds: None,
            fault: None,
            throttled: false,
            batch: None,
            proxied_host: None,
        }
    }

    fn throttled(millis: i64, path: &str, seconds: u64) -> Entry {
        let mut entry = entry(millis, "PUT", path, 429);
        entry.retry_after_seconds = Some(seconds);
        entry
    }

    fn codes(findings: &[Finding]) -> Vec<&'static str> {
        findings.iter().map(|f| f.code.as_str()).collect()
    }

    const ITEM: &str = "/v1.0/external/connections/Conn1/items/a%20b";

    #[test]
    fn a_retry_inside_the_retry_after_window_is_found_and_one_after_it_is_not() {
        let early = [throttled(0, ITEM, 2), entry(500, "PUT", ITEM, 200)];
        let findings = retry_findings(&early);
        assert_eq!(codes(&findings), ["retryBeforeRetryAfter"]);
        let finding = &findings[0];
        assert_eq!(finding.count, 1);
        assert_eq!(finding.client_request_ids.values, ["r0", "r500"]);
        assert_eq!(finding.connection_id.as_deref(), Some("Conn1"));
        assert_eq!(finding.item_ids.values, ["a b"]);
        assert!(
            finding
                .message
                .contains("/v1.0/external/connections/Conn1/items/{id}"),
            "{}",
            finding.message
        );
        assert!(finding
            .message
            .contains("0.5 s after a 429 that asked to wait 2 s"));

        let patient = [throttled(0, ITEM, 2), entry(2_000, "PUT", ITEM, 200)];
        assert!(retry_findings(&patient).is_empty());
        // Another path, method or caller is not a retry.
        let mut other_caller = entry(100, "PUT", ITEM, 200);
        other_caller.caller = "other".into();
        let unrelated = [
            throttled(0, ITEM, 2),
            entry(100, "PUT", "/v1.0/external/connections/Conn1/items/c", 200),
            entry(200, "GET", ITEM, 200),
            other_caller,
        ];
        assert!(retry_findings(&unrelated).is_empty());
    }

    #[test]
    fn five_requests_in_one_window_are_a_storm_and_not_also_early_retries() {
        let mut entries = vec![throttled(0, ITEM, 10)];
        entries.extend((1..=5).map(|n| throttled(n * 100, ITEM, 10)));
        // An early retry answered 429 again extends the window: this one still counts.
        entries.push(entry(10_300, "PUT", ITEM, 200));
        let findings = retry_findings(&entries);
        assert_eq!(codes(&findings), ["retryStorm"]);
        assert_eq!(findings[0].count, 6);
        assert_eq!(findings[0].client_request_ids.total(), 7);

        let fewer: Vec<Entry> = [throttled(0, ITEM, 10)]
            .into_iter()
            .chain((1..=4).map(|n| entry(n * 100, "PUT", ITEM, 429)))
            .collect();
        let findings = retry_findings(&fewer);
        assert_eq!(codes(&findings), ["retryBeforeRetryAfter"]);
        assert_eq!(findings[0].count, 4);
    }

    #[test]
    fn answers_without_retry_after_open_no_window() {
        let entries = [
            entry(0, "PUT", ITEM, 429),
            entry(10, "PUT", ITEM, 429),
            entry(20, "PUT", ITEM, 503),
            entry(30, "PUT", ITEM, 200),
        ];
        assert!(retry_findings(&entries).is_empty());
        let mut unavailable = entry(0, "GET", "/v1.0/external/connections/c1", 503);
        unavailable.retry_after_seconds = Some(1);
        let entries = [
            unavailable,
            entry(999, "GET", "/v1.0/external/connections/c1", 200),
        ];
        assert_eq!(codes(&retry_findings(&entries)), ["retryBeforeRetryAfter"]);
    }

    fn refused(millis: i64, path: &str, error: crate::service::Error) -> Entry {
        let api = crate::http::error::ApiError::from(error);
        let mut entry = entry(millis, "PUT", path, api.status().as_u16());
        entry.error_code = Some(api.code_str().to_string());
        entry.error_message = Some(crate::domain::excerpt(&api.full_message(), 300).into_owned());
        entry
    }

    fn schema() -> Schema {
        let mut title = Property::new("title", PropertyType::String);
        title.is_searchable = true;
        title.is_retrievable = true;
        title.labels = vec!["title"];
        let mut priority = Property::new("priority", PropertyType::Int64);
        priority.is_retrievable = true;
        Schema {
            properties: vec![title, priority],
        }
    }

    fn item(id: &str, properties: serde_json::Value, content: Option<&str>) -> ExternalItem {
        ExternalItem {
            id: ItemId::parse(id).unwrap(),
            acl: Vec::new(),
            properties: properties.as_object().unwrap().clone(),
            content: content.map(|value| ItemContent {
                content_type: crate::domain::item::ContentType::Html,
                value: value.to_string(),
            }),
            sensitivity_label_id: None,
        }
    }

    #[test]
    fn refused_item_writes_are_read_from_what_gcemu_answers() {
        let schema = schema();
        let check = |properties| {
            crate::service::items::check_item(&schema, &item("i1", properties, None)).unwrap_err()
        };
        let connection = ConnectionId::lookup("Conn1");
        let entries = [
            refused(0, ITEM, crate::service::items::not_ready(&connection)),
            refused(1, ITEM, check(json!({"title": "x", "colour": "red"}))),
            refused(
                2,
                "/v1.0/external/connections/conn1/items/other",
                check(json!({"title": "x", "Colour": "blue"})),
            ),
            refused(3, ITEM, check(json!({"title": "x", "priority": "high"}))),
            refused(
                4,
                ITEM,
                check(json!({"title": "x", "priority@odata.type": "String", "priority": 1})),
            ),
        ];
        let findings = item_write_findings(&entries);
        let summary: Vec<(&str, Option<&str>, u64)> = findings
            .iter()
            .map(|f| (f.code.as_str(), f.property.as_deref(), f.count))
            .collect();
        assert_eq!(
            summary,
            [
                ("itemBeforeSchemaReady", None, 1),
                ("propertyNotInSchema", Some("colour"), 2),
                ("propertyTypeMismatch", Some("priority"), 2),
            ],
            "{findings:#?}"
        );
        let not_in_schema = &findings[1];
        assert_eq!(not_in_schema.item_ids.values, ["a b", "other"]);
        assert!(not_in_schema.message.contains("connection 'Conn1'"));
        assert!(not_in_schema.message.contains("property 'colour'"));
    }

    #[test]
    fn accepted_item_puts_over_4_mb_are_over_the_real_cap() {
        let mut big = entry(0, "PUT", ITEM, 200);
        big.request_bytes = REAL_ITEM_SIZE_CAP + 1;
        let mut at_cap = entry(1, "PUT", ITEM, 200);
        at_cap.request_bytes = REAL_ITEM_SIZE_CAP;
        let mut refused = entry(2, "PUT", ITEM, 413);
        refused.request_bytes = REAL_ITEM_SIZE_CAP * 10;
        let mut patch = entry(3, "PATCH", ITEM, 200);
        patch.request_bytes = REAL_ITEM_SIZE_CAP * 2;
        let findings = item_write_findings(&[big, at_cap, refused, patch]);
        assert_eq!(codes(&findings), ["itemOverSizeCap"]);
        assert_eq!(findings[0].count, 1);
        assert!(findings[0].message.contains("4194305 bytes"));
    }

    #[test]
    fn polls_less_than_a_second_apart_are_counted_per_operation_and_caller() {
        let op = "/v1.0/external/connections/c1/operations/op1";
        let mut other_caller = entry(1_600, "GET", op, 200);
        other_caller.caller = "someone".into();
        let entries = [
            entry(0, "GET", op, 200),
            entry(300, "GET", op, 200),
            entry(1_500, "GET", op, 200),
            entry(1_700, "GET", op, 200),
            other_caller,
            entry(
                1_800,
                "GET",
                "/v1.0/external/connections/c1/operations/op2",
                200,
            ),
        ];
        let findings = polling_findings(&entries);
        assert_eq!(codes(&findings), ["operationPolledTooOften"]);
        assert_eq!(findings[0].count, 2);
        assert_eq!(findings[0].operation_id.as_deref(), Some("op1"));
        assert_eq!(findings[0].client_request_ids.values, ["r300", "r1700"]);
        assert!(findings[0].message.contains("shortest gap 200 ms"));
        let patient = [entry(0, "GET", op, 200), entry(1_000, "GET", op, 200)];
        assert!(polling_findings(&patient).is_empty());
    }

    #[test]
    fn routes_hide_the_ids_of_collections_but_keep_the_connection() {
        assert_eq!(
            route_of("/v1.0/external/connections/c1/items/i1"),
            "/v1.0/external/connections/c1/items/{id}"
        );
        assert_eq!(
            route_of("/v1.0/groups/g1/members/$ref"),
            "/v1.0/groups/{id}/members/$ref"
        );
        assert_eq!(route_of("/beta/search/query"), "/beta/search/query");
    }

    #[test]
    fn a_schema_without_title_url_or_icon_url_labels_is_found() {
        let mut schema = schema();
        assert_eq!(missing_labels(&schema), ["url", "iconUrl"]);
        let finding = schema_findings("c1", &schema).unwrap();
        assert_eq!(finding.count, 2);
        assert!(finding.message.contains("'url', 'iconUrl'"));
        for label in ["url", "iconUrl"] {
            let mut property = Property::new(label, PropertyType::String);
            property.labels = vec![if label == "url" { "url" } else { "iconUrl" }];
            schema.properties.push(property);
        }
        assert!(schema_findings("c1", &schema).is_none());
    }

    #[test]
    fn grounding_counts_words_of_searchable_properties_and_stripped_content() {
        let schema = schema();
        let long = "word ".repeat(MIN_GROUNDING_WORDS);
        let cases = [
            (item("a", json!({"title": "Hello"}), None), 1),
            (
                item("b", json!({"title": "Hi"}), Some("<p><b>bold</b> move</p>")),
                3,
            ),
            (
                item(
                    "c",
                    json!({"title": "x"}),
                    Some(&format!("<div>{long}</div>")),
                ),
                MIN_GROUNDING_WORDS,
            ),
            (
                item("d", json!({"title": long, "priority": 5}), None),
                MIN_GROUNDING_WORDS,
            ),
            (
                item(
                    "e",
                    json!({"priority": 5}),
                    Some("<script></script><img src='x'>"),
                ),
                0,
            ),
        ];
        for (item, words) in cases {
            assert_eq!(
                grounding_words(&item, &schema),
                words,
                "{}",
                item.id.as_str()
            );
        }
    }

    fn acl(entries: &[(AclType, &str)]) -> Vec<AclEntry> {
        entries
            .iter()
            .map(|(acl_type, value)| AclEntry {
                acl_type: *acl_type,
                value: value.to_string(),
                access_type: AccessType::Grant,
                identity_source: None,
            })
            .collect()
    }

    #[test]
    fn a_scan_gathers_short_items_and_each_principal_once_per_item() {
        let schema = schema();
        let long = "word ".repeat(MIN_GROUNDING_WORDS);
        let mut short = item("short", json!({"title": "x"}), None);
        short.acl = acl(&[
            (AclType::User, "Adele@contoso.com"),
            (AclType::User, "adele@contoso.com"),
            (AclType::Everyone, "everyone"),
        ]);
        let mut long_item = item("long", json!({"title": long}), None);
        long_item.acl = acl(&[
            (AclType::User, "adele@contoso.com"),
            (AclType::ExternalGroup, "Team"),
            (AclType::Group, "g1"),
        ]);
        let huge = item("huge", json!({"title": "x"}), None);
        let page = [
            store::items::ReportedItem {
                item: short,
                properties_read: true,
            },
            store::items::ReportedItem {
                item: long_item,
                properties_read: true,
            },
            store::items::ReportedItem {
                item: huge,
                properties_read: false,
            },
        ];
        let mut scan = ItemScan::default();
        scan.add(&schema, &page, 0);
        assert_eq!(scan.items, 3);
        assert_eq!(scan.short_items.values, ["short"]);
        assert_eq!(scan.principals.len(), 3);
        let adele = &scan.principals[&AclPrincipal::User("adele@contoso.com".into())];
        assert_eq!(adele.items, 2);
        assert_eq!(adele.item_examples, ["short", "long"]);
        let finding = scan.short_finding("c1").unwrap();
        assert_eq!(finding.code, Code::ContentTooShortToGround);
        assert!(
            finding.message.contains("item 'short'"),
            "{}",
            finding.message
        );

        let unknown: Vec<&PrincipalUse> = scan.principals.values().collect();
        let finding = principal_findings("c1", &unknown).unwrap();
        assert_eq!(finding.count, 3);
        assert_eq!(finding.principals.total(), 3);
        assert_eq!(finding.item_ids.total(), 4);

        // Past the bound, new principals are left unchecked and the scan says so.
        let mut bounded = ItemScan::default();
        bounded.add(&schema, &page, MAX_CHECKED_PRINCIPALS - 1);
        assert_eq!(bounded.principals.len(), 1);
        assert!(bounded.principals_over);
    }

    #[test]
    fn findings_are_ordered_by_severity_then_code_and_capped() {
        let findings = vec![
            Finding::new(Code::ContentTooShortToGround, "c".into(), 1),
            Finding::new(Code::SchemaMissingLabels, "b".into(), 1),
            Finding::new(Code::RetryStorm, "a".into(), 1),
            Finding::new(Code::ItemBeforeSchemaReady, "a".into(), 1),
        ];
        let (findings, summary, omitted) = ordered(findings);
        assert_eq!(
            codes(&findings),
            [
                "itemBeforeSchemaReady",
                "retryStorm",
                "schemaMissingLabels",
                "contentTooShortToGround"
            ]
        );
        assert_eq!(
            summary,
            [
                (Severity::Error, 2),
                (Severity::Warning, 1),
                (Severity::Info, 1)
            ]
        );
        assert_eq!(omitted, 0);
        let many = (0..MAX_FINDINGS + 5)
            .map(|n| Finding::new(Code::RetryStorm, format!("{n:05}"), 1))
            .collect();
        let (findings, summary, omitted) = ordered(many);
        assert_eq!(findings.len(), MAX_FINDINGS);
        assert_eq!(summary[0], (Severity::Error, (MAX_FINDINGS + 5) as u64));
        assert_eq!(omitted, 5);
    }

    #[test]
    fn store_findings_get_the_client_request_ids_of_the_writes_behind_them() {
        let mut short = Finding::new(Code::ContentTooShortToGround, "m".into(), 1);
        short.connection_id = Some("CONN1".into());
        short.item_ids.push_new("a b");
        let mut labels = Finding::new(Code::SchemaMissingLabels, "m".into(), 1);
        labels.connection_id = Some("C1".into());
        let mut findings = [short, labels];
        let entries = [
            entry(0, "PATCH", "/v1.0/external/connections/c1/schema", 202),
            entry(1, "PUT", ITEM, 400),
            entry(2, "PUT", ITEM, 200),
            entry(3, "PUT", "/v1.0/external/connections/c2/items/a%20b", 200),
        ];
        attach_writes(&mut findings, &entries);
        assert_eq!(findings[0].client_request_ids.values, ["r2"]);
        assert_eq!(findings[1].client_request_ids.values, ["r0"]);
    }

    #[test]
    fn samples_keep_twenty_values_and_count_them_all() {
        let mut samples = Samples::default();
        for n in 0..50 {
            samples.push(&format!("v{n}"));
            samples.push(&format!("v{n}"));
        }
        samples.push("");
        assert_eq!(samples.values.len(), MAX_SAMPLES);
        assert_eq!(samples.total(), 50);
        assert_eq!(Severity::parse("WARNING"), Some(Severity::Warning));
        assert!(Code::ALL.iter().all(|code| !code.as_str().is_empty()));
    }
}
