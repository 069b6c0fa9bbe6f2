//! The command line: `gcemu serve` and its flags, each also read from `GCEMU_<FLAG>`.
//! The `///` lines are the `--help` text.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::clock::parse_duration;
use crate::config::{self, Config, LogFormat, Persistence, SchemaErrors};
use crate::identity::tls::CertificateSource;

#[derive(Debug, Parser)]
#[command(
    name = "gcemu",
    version,
    about = "An offline emulator of the Microsoft Graph connectors API"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Starts the emulator and serves until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Prints a bearer token that a running or future emulator accepts (for curl and scripts).
    Token(TokenArgs),
    /// Exits 0 when the emulator at --url answers its health check, 1 otherwise (with the reason);
    /// for container health checks, where no curl is at hand.
    Healthcheck(HealthcheckArgs),
    /// Checks an expectations file against an emulator: per persona, the items each search must
    /// and must not show. Exits 0 when every expectation holds, 1 on any difference, 2 on usage,
    /// file or connection errors.
    Expect(ExpectArgs),
    /// Prints the connector report of a running emulator (GET /_emulator/report) as a table:
    /// what the connector did that would hurt it against the real service. Exits 1 when findings
    /// of the --fail-on severity or a worse one exist, 0 otherwise, 2 when the target cannot be
    /// reached.
    Report(ReportArgs),
    /// Runs the conformance scenarios (conformance/*.json, built into the binary) against gcemu
    /// or a real tenant: a line per scenario, the per-area table, and each failure's request with
    /// the expected and actual response side by side. Exits 0 when every scenario passes (known
    /// differences of gcemu allowed), 1 on failures, 2 on usage, file or connection errors.
    Conformance(ConformanceArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Base URL of the running gcemu (for https, set GCEMU_CA_FILE to its CA, GET /_emulator/ca.pem).
    #[arg(long, env = "GCEMU_TARGET", value_name = "URL", default_value = crate::report_cli::DEFAULT_TARGET)]
    pub target: String,
    /// Tenant whose report to print (default: 00000000-0000-0000-0000-000000000001).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Exit 1 when findings of this severity or a worse one exist (error > warning > info).
    #[arg(long, value_enum, default_value = "error")]
    pub fail_on: FailOnArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FailOnArg {
    Error,
    Warning,
    Info,
}

impl FailOnArg {
    pub fn severity(self) -> crate::service::control::report::Severity {
        use crate::service::control::report::Severity;
        match self {
            FailOnArg::Error => Severity::Error,
            FailOnArg::Warning => Severity::Warning,
            FailOnArg::Info => Severity::Info,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ConformanceArgs {
    /// Base URL to test: a gcemu, or https://graph.microsoft.com for a real tenant.
    #[arg(
        long,
        env = "GCEMU_TARGET",
        value_name = "URL",
        default_value = "http://127.0.0.1:5080"
    )]
    pub target: String,
    /// Bearer token of the application the scenarios act as (a real tenant needs one; gcemu
    /// in lenient mode does not).
    #[arg(
        long,
        env = "GCEMU_CONFORMANCE_TOKEN",
        conflicts_with = "token_command"
    )]
    pub token: Option<String>,
    /// Shell command printing that token (its last stdout line), run at start and again every
    /// 45 minutes, e.g. `az account get-access-token --resource https://graph.microsoft.com
    /// --query accessToken -o tsv`.
    #[arg(long, value_name = "CMD")]
    pub token_command: Option<String>,
    /// Shell command printing a delegated token for a user the scenarios created (GCEMU_USER,
    /// GCEMU_PASSWORD in its environment). Against gcemu, tokens come from /_emulator/token.
    #[arg(long, value_name = "CMD")]
    pub user_token_command: Option<String>,
    /// Runs scenarios that create directory users and groups on a target that is not gcemu
    /// (needs User.ReadWrite.All and Group.ReadWrite.All).
    #[arg(long)]
    pub directory_writes: bool,
    /// Only scenarios matching this glob on AREA/NAME, NAME or AREA (repeatable).
    #[arg(long, value_name = "PATTERN")]
    pub only: Vec<String>,
    /// Writes JUnit XML (a suite per area, a case per scenario) to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Reads the scenario files from DIR (e.g. conformance/) instead of those built in.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Domain of the user principal names the scenarios create (a verified domain of a real
    /// tenant, e.g. contoso.onmicrosoft.com).
    #[arg(long, default_value = "contoso.com")]
    pub domain: String,
    /// Multiplies every wait-until timeout (the real service's operations take minutes).
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    pub wait_scale: f64,
    /// Lists the selected scenarios and their step counts, and exits.
    #[arg(long)]
    pub list: bool,
}

#[derive(Debug, clap::Args)]
pub struct ExpectArgs {
    /// The expectations file (JSON): personas, their queries, and the items each must and must
    /// not see.
    pub file: PathBuf,
    /// Base URL of a running gcemu to check (for https, set GCEMU_CA_FILE to its CA). Without it, `--fixtures` starts an
    /// emulator in this process (in memory, on a free port); with neither, the target is
    /// http://127.0.0.1:5080.
    #[arg(long, env = "GCEMU_TARGET", value_name = "URL")]
    pub target: Option<String>,
    /// A fixtures file to load with POST /_emulator/fixtures before checking (repeatable,
    /// loaded in order); a refused file is reported with the JSON path of each problem.
    #[arg(long, value_name = "FILE")]
    pub fixtures: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct HealthcheckArgs {
    /// Base URL of the emulator.
    #[arg(long, env = "GCEMU_HEALTHCHECK_URL", default_value = crate::healthcheck::DEFAULT_URL)]
    pub url: String,
}

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// Tenant id (the `tid` claim); default 00000000-0000-0000-0000-000000000001.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Directory user, by UPN (contains '@') or object id: a delegated token.
    #[arg(long, conflicts_with = "app")]
    pub user: Option<String>,
    /// Application (client) id: an app-only token.
    #[arg(long)]
    pub app: Option<String>,
    /// Application permissions (`roles`), comma or space separated.
    #[arg(long, value_delimiter = ',')]
    pub roles: Vec<String>,
    /// Delegated scopes (`scp`), comma or space separated; default ExternalItem.Read.All for users.
    #[arg(long, value_delimiter = ',')]
    pub scopes: Vec<String>,
    /// Sign with the key kept in this data dir (created there if absent), so that an emulator
    /// serving this data dir accepts the token, in strict mode too.
    #[arg(
        long,
        env = "GCEMU_DATA_DIR",
        default_value = "./gcemu-data",
        conflicts_with = "target"
    )]
    pub data_dir: PathBuf,
    /// Ask the running emulator at this URL instead (POST /_emulator/token): the way to get a
    /// token from an --in-memory emulator; the user must exist there, and a declared app's
    /// permissions are used when --roles is absent. For https, set GCEMU_CA_FILE to its CA.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
}

impl TokenArgs {
    pub fn into_request(self) -> crate::identity::tokens::TokenRequest {
        let (user_id, user_principal_name) = match self.user {
            Some(user) if user.contains('@') => (None, Some(user)),
            Some(user) => (Some(user), None),
            None => (None, None),
        };
        let split = |values: Vec<String>| {
            values
                .iter()
                .flat_map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .collect()
        };
        let delegated = user_id.is_some() || user_principal_name.is_some();
        let default_app = crate::domain::application::Application::default_app();
        let mut roles: Vec<String> = split(self.roles);
        let mut scopes: Vec<String> = split(self.scopes);
        // Without --roles, a token of the default application carries its permissions.
        if roles.is_empty() && !delegated && self.app.is_none() {
            roles = default_app.roles;
        }
        if scopes.is_empty() && delegated {
            scopes = vec!["ExternalItem.Read.All".to_string()];
        }
        crate::identity::tokens::TokenRequest {
            tenant: self.tenant,
            user_id,
            user_principal_name,
            app_id: self.app,
            roles,
            scopes,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemaErrorsArg {
    Request,
    Operation,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (the Docker image uses 0.0.0.0:5080).
    #[arg(long, env = "GCEMU_LISTEN", default_value = "127.0.0.1:5080")]
    pub listen: SocketAddr,

    /// Directory for the SQLite database and the search index; state survives restarts.
    #[arg(long, env = "GCEMU_DATA_DIR", default_value = "./gcemu-data")]
    pub data_dir: PathBuf,

    /// Keep all state in memory: nothing touches disk and state ends with the process
    /// (GCEMU_IN_MEMORY=1, true, yes or on). Wins over --data-dir, so that it also works where
    /// GCEMU_DATA_DIR is set, as in the Docker image.
    #[arg(long, env = "GCEMU_IN_MEMORY", value_parser = clap::builder::FalseyValueParser::new())]
    pub in_memory: bool,

    /// Log format on stderr: human-readable text or one JSON object per line.
    #[arg(long, env = "GCEMU_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormatArg,

    /// How long a schema operation stays `inprogress` before it completes (e.g. 0s, 30s, 5m),
    /// measured on the emulator's clock (POST /_emulator/clock/advance moves it).
    #[arg(long, env = "GCEMU_SCHEMA_DELAY", default_value = "0s", value_parser = parse_duration)]
    pub schema_delay: std::time::Duration,

    /// How long after an acknowledged write before search sees it (e.g. 0s, 5s), on the
    /// emulator's clock. At 0s a search reads its own writes.
    #[arg(long, env = "GCEMU_INDEX_LAG", default_value = "0s", value_parser = parse_duration)]
    pub index_lag: std::time::Duration,

    /// How a schema breaking a semantic rule (labels, searchable with refinable, exact match,
    /// name collisions, update rules) is refused: `request` answers 400 to the PATCH, `operation`
    /// accepts it and fails the operation. Syntax rules always get 400.
    #[arg(
        long,
        env = "GCEMU_SCHEMA_ERRORS",
        value_enum,
        default_value = "request"
    )]
    pub schema_errors: SchemaErrorsArg,

    /// Largest request body accepted, in bytes (the item size cap); larger bodies get 413.
    /// Default 30 MB, the newest docs' figure; 4194304 (4 MB) rehearses the older limit.
    #[arg(long, env = "GCEMU_MAX_BODY_BYTES", default_value_t = config::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Items a tenant may hold before ingesting a new item is refused (403 QuotaLimitReached);
    /// default: the documented 50 million.
    #[arg(long, env = "GCEMU_ITEM_QUOTA")]
    pub item_quota: Option<u64>,

    /// Items one connection may hold.
    #[arg(long, env = "GCEMU_MAX_ITEMS_PER_CONNECTION", default_value_t = config::DEFAULT_MAX_ITEMS_PER_CONNECTION)]
    pub max_items_per_connection: u64,

    /// Largest search page (`size` of a searchRequest): the search overview's 1000 by default;
    /// 500, the searchRequest page's figure, rehearses the stricter limit. Larger sizes get 400.
    #[arg(long, env = "GCEMU_SEARCH_MAX_SIZE", default_value_t = config::DEFAULT_SEARCH_MAX_SIZE as u16,
        value_parser = clap::value_parser!(u16).range(1..=10_000))]
    pub search_max_size: u16,

    /// Connections a tenant may hold before creating another is refused.
    #[arg(long, env = "GCEMU_MAX_CONNECTIONS", default_value_t = config::DEFAULT_MAX_CONNECTIONS_PER_TENANT)]
    pub max_connections: usize,

    /// Fixtures document to load at start (repeatable; in GCEMU_FIXTURES, comma-separated).
    /// The files load as one document, all or nothing; each tenant they declare replaces that
    /// tenant's state. See fixtures/README.md.
    #[arg(
        long,
        env = "GCEMU_FIXTURES",
        value_name = "FILE",
        value_delimiter = ','
    )]
    pub fixtures: Vec<PathBuf>,

    /// Graph requests the request journal keeps (GET /_emulator/requests); the oldest are dropped
    /// first. 0 keeps none.
    #[arg(long, env = "GCEMU_JOURNAL_SIZE", default_value_t = crate::service::control::journal::DEFAULT_CAPACITY)]
    pub journal_size: usize,

    /// Seed for fault rules with a probability, so a test run is reproducible (default: random).
    #[arg(long, env = "GCEMU_FAULT_SEED")]
    pub fault_seed: Option<u64>,

    /// Requests per second per connection above which requests get 429 with Retry-After
    /// (a token bucket on the emulator's clock; off by default).
    #[arg(long, env = "GCEMU_THROTTLE", value_name = "RPS", value_parser = parse_rate)]
    pub throttle: Option<f64>,

    /// Requests in flight per connection above which requests get 429 (off by default).
    #[arg(long, env = "GCEMU_THROTTLE_CONCURRENCY", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub throttle_concurrency: Option<u64>,

    /// `lenient` reads any bearer token without checking it (no token: the default app of the
    /// default tenant); `strict` accepts only tokens from gcemu's token endpoints (or
    /// /_emulator/token), unexpired, for Graph, and checks each endpoint's permission.
    #[arg(long, env = "GCEMU_AUTH", value_enum, default_value = "lenient")]
    pub auth: AuthArg,

    /// Serve https (HTTP/2 and HTTP/1.1) with a certificate for localhost, 127.0.0.1, ::1 and
    /// the --tls-san names, issued by a local CA that gcemu creates in the data dir (per process
    /// with --in-memory); GET /_emulator/ca.pem returns that CA. Implied by --tls-cert.
    #[arg(long, env = "GCEMU_TLS", value_parser = clap::builder::FalseyValueParser::new())]
    pub tls: bool,

    /// Another name (DNS name or IP address) for the server certificate (repeatable; in
    /// GCEMU_TLS_SAN, comma-separated), e.g. the container's host name.
    #[arg(
        long,
        env = "GCEMU_TLS_SAN",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub tls_san: Vec<String>,

    /// Your own server certificate (PEM, leaf first) instead of one from gcemu's CA; needs --tls-key.
    #[arg(
        long,
        env = "GCEMU_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(
        long,
        env = "GCEMU_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Also serve as an HTTP proxy on this address (e.g. 127.0.0.1:8000), as Dev Proxy is used:
    /// with https_proxy pointed at it, CONNECT to Graph's and Entra's hosts is answered by gcemu
    /// (TLS with a certificate from its CA, see GET /_emulator/ca.pem), other hosts are tunnelled.
    #[arg(long, env = "GCEMU_PROXY", value_name = "ADDR")]
    pub proxy: Option<SocketAddr>,

    /// Another host for the proxy to answer itself instead of tunnelling (repeatable; in
    /// GCEMU_PROXY_INTERCEPT, comma-separated).
    #[arg(
        long,
        env = "GCEMU_PROXY_INTERCEPT",
        value_name = "HOST",
        value_delimiter = ',',
        requires = "proxy"
    )]
    pub proxy_intercept: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AuthArg {
    Lenient,
    Strict,
}

/// A positive, finite number of requests per second.
fn parse_rate(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 && rate <= 1e9 => Ok(rate),
        _ => Err(format!(
            "'{raw}' is not a positive number of requests per second"
        )),
    }
}

impl ServeArgs {
    pub fn into_config(self) -> Config {
        Config {
            listen: self.listen,
            persistence: if self.in_memory {
                Persistence::InMemory
            } else {
                Persistence::DataDir(self.data_dir)
            },
            log_format: match self.log_format {
                LogFormatArg::Text => LogFormat::Text,
                LogFormatArg::Json => LogFormat::Json,
            },
            schema_delay: self.schema_delay,
            index_lag: self.index_lag,
            schema_errors: match self.schema_errors {
                SchemaErrorsArg::Request => SchemaErrors::Request,
                SchemaErrorsArg::Operation => SchemaErrors::Operation,
            },
            max_body_bytes: self.max_body_bytes,
            body_read_timeout: crate::config::DEFAULT_BODY_READ_TIMEOUT,
            max_connections_per_tenant: self.max_connections,
            item_quota: self.item_quota,
            max_items_per_connection: self.max_items_per_connection,
            search_max_size: usize::from(self.search_max_size),
            fixtures: self.fixtures,
            journal_size: self.journal_size,
            fault_seed: self
                .fault_seed
                .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0),
            throttle: self.throttle,
            throttle_concurrency: self.throttle_concurrency.map(|n| n as usize),
            auth: match self.auth {
                AuthArg::Lenient => crate::auth::AuthMode::Lenient,
                AuthArg::Strict => crate::auth::AuthMode::Strict,
            },
            tls: match (self.tls_cert, self.tls_key) {
                (Some(cert), Some(key)) => Some(CertificateSource::Files { cert, key }),
                _ if self.tls => Some(CertificateSource::LocalCa {
                    extra_names: self.tls_san,
                }),
                _ => None,
            },
            proxy: self.proxy.map(|listen| crate::proxy::ProxyConfig {
                listen,
                intercept: self.proxy_intercept,
            }),
        }
    }
}
