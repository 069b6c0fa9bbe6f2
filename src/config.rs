//! The validated runtime configuration, built from the CLI (`cli::ServeArgs`) or directly by tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Persistence {
    /// SQLite database and search index under this directory; state survives restarts.
    DataDir(PathBuf),
    /// Nothing touches disk; state ends with the process.
    InMemory,
}

/// How a schema that breaks a semantic rule (labels, searchable with refinable, exact match,
/// name collisions, update rules) is refused. Syntax rules are always refused at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaErrors {
    /// `400` on the PATCH itself (default; simplest for clients).
    Request,
    /// `202`, and the operation ends `failed` with the error.
    Operation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub persistence: Persistence,
    pub log_format: LogFormat,
    /// How long a schema operation stays `inprogress` (by the emulator's clock).
    pub schema_delay: Duration,
    pub schema_errors: SchemaErrors,
    /// How long after an acknowledged write before search sees it (by the emulator's clock).
    pub index_lag: Duration,
    /// Largest request body accepted, in bytes (the item size cap).
    pub max_body_bytes: usize,
    /// Connections a tenant may hold.
    pub max_connections_per_tenant: usize,
    /// Items a tenant may hold (`--item-quota`); `None` is the documented 50 million.
    pub item_quota: Option<u64>,
    /// Items one connection may hold.
    pub max_items_per_connection: u64,
    /// Largest `size` of a searchRequest (`--search-max-size`).
    pub search_max_size: usize,
    /// How long a request body may take to arrive before the request is answered `408`.
    pub body_read_timeout: Duration,
    /// Fixtures documents loaded at start, as one document (`--fixtures`).
    pub fixtures: Vec<std::path::PathBuf>,
    /// Request journal entries kept (`--journal-size`; 0 keeps none).
    pub journal_size: usize,
    /// Seed of the generator behind fault rules' probabilities (`--fault-seed`).
    pub fault_seed: u64,
    /// Requests per second per connection before `429` (`--throttle`; off when `None`).
    pub throttle: Option<f64>,
    /// Requests in flight per connection before `429` (`--throttle-concurrency`).
    pub throttle_concurrency: Option<usize>,
    /// `--auth`.
    pub auth: crate::auth::AuthMode,
    /// `--tls` / `--tls-cert`: serve https with this certificate.
    pub tls: Option<crate::identity::tls::CertificateSource>,
    /// `--proxy`: also serve as an HTTP proxy that intercepts Graph's and Entra's hosts.
    pub proxy: Option<crate::proxy::ProxyConfig>,
}

impl Config {
    /// In-memory state on a random loopback port, no delays: what integration tests start.
    pub fn for_tests() -> Config {
        Config {
            listen: "127.0.0.1:0".parse().expect("loopback address"),
            persistence: Persistence::InMemory,
            log_format: LogFormat::Text,
            schema_delay: Duration::ZERO,
            schema_errors: SchemaErrors::Request,
            index_lag: Duration::ZERO,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_connections_per_tenant: DEFAULT_MAX_CONNECTIONS_PER_TENANT,
            item_quota: None,
            max_items_per_connection: DEFAULT_MAX_ITEMS_PER_CONNECTION,
            search_max_size: DEFAULT_SEARCH_MAX_SIZE,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            fixtures: Vec::new(),
            journal_size: crate::service::control::journal::DEFAULT_CAPACITY,
            fault_seed: 0,
            throttle: None,
            throttle_concurrency: None,
            auth: crate::auth::AuthMode::Lenient,
            tls: None,
            proxy: None,
        }
    }

    /// Items the tenant may hold.
    pub fn tenant_item_quota(&self) -> u64 {
        self.item_quota.unwrap_or(DEFAULT_TENANT_ITEM_QUOTA)
    }
}

/// A minute for a request body to arrive (a 30 MB item at 4 Mbit/s).
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// 30 MB: the item size cap of the newest PUT page (spec/limits.md; older pages say 4 MB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 30 * 1024 * 1024;
/// 30 connections per tenant (spec/limits.md, previous limits page).
pub const DEFAULT_MAX_CONNECTIONS_PER_TENANT: usize = 30;
/// 5 million items per connection (spec/limits.md, previous limits page).
pub const DEFAULT_MAX_ITEMS_PER_CONNECTION: u64 = 5_000_000;
/// 1,000 results per search page: the search API overview's figure (the searchRequest page
/// says 500; `--search-max-size 500` applies that one).
pub const DEFAULT_SEARCH_MAX_SIZE: usize = 1000;
/// 50 million items per tenant (spec/limits.md).
pub const DEFAULT_TENANT_ITEM_QUOTA: u64 = 50_000_000;
