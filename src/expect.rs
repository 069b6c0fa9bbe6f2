//! `gcemu expect FILE`: checks, persona by persona, that searches show each person the items
//! an expectations file says they must see and none they must not.
//!
//! `file` reads the expectations and `report` compares and writes up (both pure); this module
//! does the IO: it talks to a running gcemu (or starts one in this process for `--fixtures`),
//! mints a token per persona, pages through the searches and asks the explain endpoint why each
//! unexpected item is (or is not) visible.

pub mod file;
pub mod report;

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::cli::ExpectArgs;
use file::{connection_id, Expectations, Persona, QuerySpec};
use report::{
    Explained, Explanation, Observed, PersonaOutcome, PersonaResult, QueryOutcome, QueryResult,
    Tally, MAX_HITS,
};

/// Where `gcemu expect` looks without `--target` or `--fixtures`: `gcemu serve`'s default.
pub const DEFAULT_TARGET: &str = "http://127.0.0.1:5080";
/// Hits asked for per search page.
const PAGE_SIZE: usize = 500;
/// Buckets asked for per aggregation.
const BUCKETS: usize = 1000;
/// The exit code for usage, file and connection errors.
const ERROR_EXIT: i32 = 2;

/// Runs `gcemu expect` with the report on stdout and problems on stderr; answers the exit code:
/// 0 when every expectation holds, 1 on any difference, 2 on usage, file or connection errors.
pub async fn run(args: &ExpectArgs) -> i32 {
    let code = run_with(args, &mut std::io::stdout(), &mut std::io::stderr()).await;
    let _ = std::io::stdout().flush();
    code
}

/// `run`, writing to `out` and `err`.
pub async fn run_with(
    args: &ExpectArgs,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    match check(args, out).await {
        Ok(code) => code,
        Err(Fatal(lines)) => {
            for line in lines {
                let _ = writeln!(err, "{line}");
            }
            ERROR_EXIT
        }
    }
}

/// An error that ends the run with exit code 2; one message per line.
#[derive(Debug)]
struct Fatal(Vec<String>);

impl Fatal {
    fn new(message: impl Into<String>) -> Fatal {
        Fatal(vec![message.into()])
    }
}

async fn check(args: &ExpectArgs, out: &mut (dyn Write + Send)) -> Result<i32, Fatal> {
    let expectations = read_expectations(&args.file)?;
    let fixtures = args
        .fixtures
        .iter()
        .map(|path| read_json(path).map(|document| (path.as_path(), document)))
        .collect::<Result<Vec<_>, _>>()?;
    let (base, local) = match &args.target {
        Some(url) => (target_url(url)?, None),
        None if !fixtures.is_empty() => {
            let local = LocalEmulator::start().await?;
            (local.url.clone(), Some(local))
        }
        None => (DEFAULT_TARGET.to_string(), None),
    };
    let target = Target::new(base)?;
    let result = async {
        target.check_health().await?;
        for (path, document) in &fixtures {
            target.load_fixtures(path, document).await?;
            let _ = writeln!(out, "fixtures: loaded {}", path.display());
        }
        run_expectations(&target, &expectations, out).await
    }
    .await;
    // Idle keep-alive connections would hold the in-process emulator's graceful shutdown.
    drop(target);
    if let Some(local) = local {
        local.stop().await;
    }
    result
}

fn read_expectations(path: &Path) -> Result<Expectations, Fatal> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| Fatal::new(format!("{}: cannot read: {error}", path.display())))?;
    file::parse(&text).map_err(|errors| {
        Fatal(
            errors
                .iter()
                .map(|error| format!("{}: {error}", path.display()))
                .collect(),
        )
    })
}

fn read_json(path: &Path) -> Result<Value, Fatal> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| Fatal::new(format!("{}: cannot read: {error}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|error| Fatal::new(format!("{}: not valid JSON: {error}", path.display())))
}

/// The base URL without its trailing `/` (http, or https with `GCEMU_CA_FILE` naming gcemu's CA).
fn target_url(raw: &str) -> Result<String, Fatal> {
    crate::client::base_url(raw).map_err(Fatal::new)
}

/// An emulator started in this process for `--fixtures` without `--target`: in memory, on a
/// free loopback port, with the serve defaults and no delays.
struct LocalEmulator {
    url: String,
    shutdown: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl LocalEmulator {
    async fn start() -> Result<LocalEmulator, Fatal> {
        let app = crate::app::App::build(crate::config::Config::for_tests())
            .await
            .map_err(|error| Fatal::new(format!("cannot start an emulator: {error:#}")))?;
        let url = format!("http://{}", app.local_addr());
        let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.serve(async {
            let _ = signal.await;
        }));
        Ok(LocalEmulator {
            url,
            shutdown,
            server,
        })
    }

    async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.server.await;
    }
}

/// Path segments are sent percent-encoded (ids are plain, but a file may say anything).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A gcemu at `base`.
struct Target {
    base: String,
    http: reqwest::Client,
}

/// A reply: status and body (JSON, or the text as a JSON string).
struct Reply {
    status: StatusCode,
    body: Value,
}

impl Reply {
    /// `404 NotFound: message`, from a Graph error envelope when there is one.
    fn describe(&self) -> String {
        let error = &self.body["error"];
        match (error["code"].as_str(), error["message"].as_str()) {
            (Some(code), Some(message)) => format!("{} {code}: {message}", self.status.as_u16()),
            _ => {
                let text = match &self.body {
                    Value::String(text) => text.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                let text: String = text.chars().take(300).collect();
                format!("{} {text}", self.status).trim_end().to_string()
            }
        }
    }
}

impl Target {
    fn new(base: String) -> Result<Target, Fatal> {
        let http =
            crate::client::http_client(Duration::from_secs(10), Duration::from_secs(300), true)
                .map_err(Fatal::new)?;
        Ok(Target { base, http })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Reply, Fatal> {
        let response = request
            .send()
            .await
            .map_err(|error| self.unreachable(error))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| self.unreachable(error))?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(Reply { status, body })
    }

    fn unreachable(&self, error: reqwest::Error) -> Fatal {
        let mut message = format!("cannot talk to gcemu at {}: {error}", self.base);
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        Fatal::new(message)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn check_health(&self) -> Result<(), Fatal> {
        let reply = self
            .send(self.http.get(self.url("/_emulator/health")))
            .await?;
        if reply.status.is_success() {
            return Ok(());
        }
        Err(Fatal::new(format!(
            "gcemu at {} is not healthy: {}",
            self.base,
            reply.describe()
        )))
    }

    /// `POST /_emulator/fixtures` with the file's document; a refusal lists every detail.
    async fn load_fixtures(&self, path: &Path, document: &Value) -> Result<(), Fatal> {
        let reply = self
            .send(
                self.http
                    .post(self.url("/_emulator/fixtures"))
                    .json(document),
            )
            .await?;
        if reply.status.is_success() {
            return Ok(());
        }
        let name = path.display();
        if reply.status == StatusCode::NOT_FOUND || reply.status == StatusCode::METHOD_NOT_ALLOWED {
            return Err(Fatal::new(format!(
                "{name}: gcemu at {} does not load fixtures (POST /_emulator/fixtures answered {})",
                self.base,
                reply.describe()
            )));
        }
        let mut lines = vec![format!("{name}: fixtures refused: {}", reply.describe())];
        if let Some(details) = reply.body["error"]["details"].as_array() {
            for detail in details {
                let text = |member: &str| detail[member].as_str().unwrap_or_default().to_string();
                let target = text("target");
                let at = if target.is_empty() {
                    "(document)".to_string()
                } else {
                    target
                };
                let code = text("code");
                let code = if code.is_empty() {
                    String::new()
                } else {
                    format!(" [{code}]")
                };
                lines.push(format!("{name}: {at}: {}{code}", text("message")));
            }
        }
        Err(Fatal(lines))
    }

    /// A token for `body` (`tenant`, and `user` or nothing for an app token); `None` on `404`.
    async fn token(&self, body: Value) -> Result<Option<String>, Fatal> {
        let reply = self
            .send(self.http.post(self.url("/_emulator/token")).json(&body))
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        match reply.body["access_token"].as_str() {
            Some(token) if reply.status.is_success() => Ok(Some(token.to_string())),
            _ => Err(Fatal::new(format!(
                "POST /_emulator/token {body} failed: {}",
                reply.describe()
            ))),
        }
    }

    /// The ids of every connection of `tenant`.
    async fn connections(&self, tenant: &str) -> Result<Vec<String>, Fatal> {
        let token = self
            .token(json!({"tenant": tenant}))
            .await?
            .ok_or_else(|| Fatal::new("POST /_emulator/token refused an app token (404)"))?;
        let mut ids = Vec::new();
        let mut next = Some(self.url("/v1.0/external/connections"));
        while let Some(url) = next.take() {
            let reply = self.send(self.http.get(&url).bearer_auth(&token)).await?;
            if !reply.status.is_success() {
                return Err(Fatal::new(format!(
                    "listing the connections of tenant {tenant} failed: {}",
                    reply.describe()
                )));
            }
            for connection in reply.body["value"].as_array().into_iter().flatten() {
                if let Some(id) = connection["id"].as_str() {
                    ids.push(id.to_string());
                }
            }
            next = reply.body["@odata.nextLink"].as_str().map(str::to_string);
        }
        Ok(ids)
    }

    /// Reads every hit of `spec` for the persona (at most `MAX_HITS`), and its aggregations.
    async fn search(
        &self,
        token: &str,
        connections: &[String],
        spec: &QuerySpec,
    ) -> Result<Result<Observed, String>, Fatal> {
        let sources: Vec<String> = connections
            .iter()
            .map(|id| format!("/external/connections/{id}"))
            .collect();
        let mut observed = Observed::default();
        let mut distinct = HashSet::new();
        let mut from = 0usize;
        loop {
            let mut request = json!({
                "entityTypes": ["externalItem"],
                "contentSources": sources,
                "query": {"queryString": spec.query},
                "from": from,
                "size": PAGE_SIZE.min(MAX_HITS - from),
            });
            // Buckets count every match, whatever the page: ask once.
            if from == 0 && !spec.aggregations.is_empty() {
                request["aggregations"] = spec
                    .aggregations
                    .iter()
                    .map(|(property, _)| {
                        json!({
                            "field": property,
                            "size": BUCKETS,
                            "bucketDefinition": {"sortBy": "count", "isDescending": true, "minimumCount": 0},
                        })
                    })
                    .collect();
            }
            let reply = self
                .send(
                    self.http
                        .post(self.url("/v1.0/search/query"))
                        .bearer_auth(token)
                        .json(&json!({"requests": [request]})),
                )
                .await?;
            if !reply.status.is_success() {
                return Ok(Err(format!("search failed: {}", reply.describe())));
            }
            let container = &reply.body["value"][0]["hitsContainers"][0];
            let hits = container["hits"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            if from == 0 {
                observed.total = container["total"].as_u64().unwrap_or(hits.len() as u64);
                observed.aggregations = read_aggregations(container);
            }
            for hit in hits {
                let (Some(source), Some(item)) =
                    (hit["contentSource"].as_str(), hit["hitId"].as_str())
                else {
                    return Ok(Err(format!(
                        "the search answered a hit without contentSource or hitId: {hit}"
                    )));
                };
                let connection = connection_id(source).to_string();
                if distinct.insert((connection.to_ascii_lowercase(), item.to_string())) {
                    observed.seen.push((connection, item.to_string()));
                }
            }
            from += hits.len();
            let more = container["moreResultsAvailable"].as_bool().unwrap_or(false);
            if hits.is_empty() || !more {
                return Ok(Ok(observed));
            }
            if from >= MAX_HITS {
                observed.truncated = true;
                return Ok(Ok(observed));
            }
        }
    }

    /// Why `user` may or may not see the item, from the explain endpoint.
    async fn explain(&self, tenant: &str, user: &str, connection: &str, item: &str) -> Explanation {
        let path = format!(
            "/_emulator/connections/{}/items/{}/access",
            utf8_percent_encode(connection, SEGMENT),
            utf8_percent_encode(item, SEGMENT)
        );
        let request = self
            .http
            .get(self.url(&path))
            .query(&[("user", user), ("tenant", tenant)]);
        let reply = match self.send(request).await {
            Ok(reply) => reply,
            Err(Fatal(lines)) => return Explanation::Unavailable(lines.join("; ")),
        };
        if reply.status == StatusCode::NOT_FOUND {
            return Explanation::NoItem;
        }
        match (
            reply.body["allowed"].as_bool(),
            reply.body["reason"].as_str(),
        ) {
            (Some(allowed), Some(reason)) if reply.status.is_success() => Explanation::Access {
                allowed,
                reason: reason.to_string(),
                paths: reply.body["paths"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|path| {
                        path.as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|member| member.as_str().map(str::to_string))
                            .collect()
                    })
                    .collect(),
            },
            _ => Explanation::Unavailable(reply.describe()),
        }
    }
}

/// `aggregations[{field, buckets[{key, count}]}]` of a hitsContainer.
fn read_aggregations(container: &Value) -> Vec<(String, Vec<(String, u64)>)> {
    container["aggregations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|aggregation| {
            let field = aggregation["field"].as_str()?.to_string();
            let buckets = aggregation["buckets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|bucket| {
                    let key = match &bucket["key"] {
                        Value::String(key) => key.clone(),
                        Value::Null => return None,
                        other => other.to_string(),
                    };
                    Some((key, bucket["count"].as_u64()?))
                })
                .collect();
            Some((field, buckets))
        })
        .collect()
}

async fn run_expectations(
    target: &Target,
    expectations: &Expectations,
    out: &mut (dyn Write + Send),
) -> Result<i32, Fatal> {
    let mut all_connections: Option<Vec<String>> = None;
    let mut tally = Tally::default();
    for persona in &expectations.personas {
        let outcome = check_persona(target, expectations, persona, &mut all_connections).await?;
        tally.add(&outcome);
        let _ = write!(out, "{}", report::render_persona(&outcome));
        let _ = out.flush();
    }
    let _ = writeln!(out, "{}", tally.render());
    Ok(tally.exit_code())
}

async fn check_persona(
    target: &Target,
    expectations: &Expectations,
    persona: &Persona,
    all_connections: &mut Option<Vec<String>>,
) -> Result<PersonaOutcome, Fatal> {
    let tenant = &expectations.tenant;
    let token = target
        .token(json!({"tenant": tenant, "user": persona.user}))
        .await?;
    let Some(token) = token else {
        return Ok(PersonaOutcome {
            user: persona.user.clone(),
            result: PersonaResult::NotAUser {
                tenant: tenant.clone(),
                queries: persona.queries.len(),
            },
        });
    };
    let mut outcomes = Vec::new();
    for spec in &persona.queries {
        let connections = match &spec.connections {
            Some(connections) => connections.clone(),
            None => {
                if all_connections.is_none() {
                    *all_connections = Some(target.connections(tenant).await?);
                }
                all_connections.clone().unwrap_or_default()
            }
        };
        let result = if connections.is_empty() {
            QueryResult::Error(format!("tenant {tenant} has no connections to search"))
        } else {
            match target.search(&token, &connections, spec).await? {
                Err(message) => QueryResult::Error(message),
                Ok(observed) => {
                    let mut differences = Vec::new();
                    for difference in report::diff(spec, &observed) {
                        let mut explanations = Vec::new();
                        for (connection, item) in report::explain_targets(&difference, &connections)
                        {
                            let explanation = target
                                .explain(tenant, &persona.user, &connection, &item)
                                .await;
                            explanations.push((connection, explanation));
                        }
                        differences.push(Explained {
                            difference,
                            explanations,
                        });
                    }
                    QueryResult::Checked {
                        total: observed.total,
                        truncated: observed.truncated,
                        differences,
                    }
                }
            }
        };
        outcomes.push(QueryOutcome {
            label: spec.label().to_string(),
            connections,
            result,
        });
    }
    Ok(PersonaOutcome {
        user: persona.user.clone(),
        result: PersonaResult::Queries(outcomes),
    })
}

#[cfg(test)]
mod tests {
    //! The IO paths against a fake gcemu (an axum router on a loopback port): fixtures loading
    //! and its refusals, paging, and the in-process emulator's life.

    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};

    use axum::extract::State;
    use axum::http::StatusCode as Status;
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    use axum::{Json, Router};

    use super::*;

    /// A fake gcemu that records every POST and answers searches with `hits` items of the
    /// connection `big`, one bucket `status: open` counting them all.
    #[derive(Clone, Default)]
    struct Fake {
        hits: usize,
        posted: Arc<Mutex<Vec<(String, Value)>>>,
    }

    impl Fake {
        fn record(&self, path: &str, body: &Value) {
            self.posted
                .lock()
                .unwrap()
                .push((path.to_string(), body.clone()));
        }

        fn posted(&self) -> Vec<(String, Value)> {
            self.posted.lock().unwrap().clone()
        }
    }

    async fn fixtures(State(fake): State<Fake>, Json(body): Json<Value>) -> impl IntoResponse {
        fake.record("/_emulator/fixtures", &body);
        if body.get("bad").is_none() {
            return (Status::OK, Json(json!({"loaded": true})));
        }
        (
            Status::BAD_REQUEST,
            Json(json!({"error": {
                "code": "InvalidRequest",
                "message": "The fixtures document has 2 problems.",
                "details": [
                    {"code": "InvalidValue", "message": "a user id must be a GUID", "target": "/tenants/0/users/1/id"},
                    {"code": "UnknownMember", "message": "unknown member", "target": "/bad"}
                ]
            }})),
        )
    }

    async fn token(State(fake): State<Fake>, Json(body): Json<Value>) -> Json<Value> {
        fake.record("/_emulator/token", &body);
        Json(json!({"access_token": "fake-token", "token_type": "Bearer"}))
    }

    async fn search(State(fake): State<Fake>, Json(body): Json<Value>) -> Json<Value> {
        fake.record("/v1.0/search/query", &body);
        let request = &body["requests"][0];
        let from = request["from"].as_u64().unwrap() as usize;
        let size = request["size"].as_u64().unwrap() as usize;
        let end = (from + size).min(fake.hits);
        let hits: Vec<Value> = (from.min(end)..end)
            .map(|n| json!({"hitId": format!("I{n}"), "contentSource": "/external/connections/big", "rank": n + 1}))
            .collect();
        let mut container =
            json!({"hits": hits, "total": fake.hits, "moreResultsAvailable": end < fake.hits});
        if request.get("aggregations").is_some() {
            container["aggregations"] =
                json!([{"field": "status", "buckets": [{"key": "open", "count": fake.hits}]}]);
        }
        Json(json!({"value": [{"searchTerms": [], "hitsContainers": [container]}]}))
    }

    async fn serve(fake: Fake) -> String {
        let router = Router::new()
            .route(
                "/_emulator/health",
                get(|| async { Json(json!({"status": "ok"})) }),
            )
            .route("/_emulator/fixtures", post(fixtures))
            .route("/_emulator/token", post(token))
            .route("/v1.0/search/query", post(search))
            .with_state(fake);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        url
    }

    fn write(dir: &Path, name: &str, document: &Value) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, document.to_string()).unwrap();
        path
    }

    fn expectations(query: Value) -> Value {
        json!({"personas": [{"user": "adele@contoso.com", "queries": [query]}]})
    }

    async fn run_args(args: &ExpectArgs) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_with(args, &mut out, &mut err).await;
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[tokio::test]
    async fn fixtures_files_are_posted_in_order_before_the_expectations_run() {
        let fake = Fake {
            hits: 2,
            ..Fake::default()
        };
        let url = serve(fake.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let first = json!({"tenants": [{"id": "contoso"}]});
        let second = json!({"tenants": [{"id": "fabrikam"}]});
        let args = ExpectArgs {
            file: write(
                dir.path(),
                "e.json",
                &expectations(
                    json!({"query": "*", "connections": ["big"], "mustSee": ["big/I1"], "total": 2}),
                ),
            ),
            target: Some(format!("{url}/")),
            fixtures: vec![
                write(dir.path(), "one.json", &first),
                write(dir.path(), "two.json", &second),
            ],
        };
        let (code, out, err) = run_args(&args).await;
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.starts_with("fixtures: loaded "), "{out}");
        assert!(out.contains("✓ \"*\" (big): 2 hits"), "{out}");
        let posted = fake.posted();
        let paths: Vec<&str> = posted.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/_emulator/fixtures",
                "/_emulator/fixtures",
                "/_emulator/token",
                "/v1.0/search/query"
            ]
        );
        assert_eq!(posted[0].1, first, "the file's document is the body");
        assert_eq!(posted[1].1, second);
        assert_eq!(
            posted[2].1,
            json!({"tenant": "00000000-0000-0000-0000-000000000001", "user": "adele@contoso.com"})
        );
    }

    #[tokio::test]
    async fn a_refused_fixtures_file_prints_every_detail_and_exits_2() {
        let fake = Fake::default();
        let url = serve(fake.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let bad = write(dir.path(), "bad.json", &json!({"bad": true}));
        let args = ExpectArgs {
            file: write(dir.path(), "e.json", &expectations(json!({"query": "*"}))),
            target: Some(url),
            fixtures: vec![bad.clone()],
        };
        let (code, out, err) = run_args(&args).await;
        assert_eq!(code, 2, "{out}{err}");
        let name = bad.display();
        assert_eq!(
            err,
            format!(
                "{name}: fixtures refused: 400 InvalidRequest: The fixtures document has 2 problems.\n\
                 {name}: /tenants/0/users/1/id: a user id must be a GUID [InvalidValue]\n\
                 {name}: /bad: unknown member [UnknownMember]\n"
            )
        );
        assert_eq!(fake.posted().len(), 1, "nothing is searched");

        // A fixtures file that is not JSON is refused before anything is sent.
        std::fs::write(&bad, "{oops").unwrap();
        let (code, _, err) = run_args(&args).await;
        assert_eq!(code, 2);
        assert!(err.contains("bad.json: not valid JSON"), "{err}");
        assert_eq!(fake.posted().len(), 1);
    }

    #[tokio::test]
    async fn searches_page_through_every_hit_and_stop_at_ten_thousand() {
        let fake = Fake {
            hits: 1234,
            ..Fake::default()
        };
        let url = serve(fake.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let args = ExpectArgs {
            file: write(
                dir.path(),
                "e.json",
                &expectations(
                    json!({"query": "*", "connections": ["big"], "mustSee": ["I0", "I1233"],
                                     "exactly": false, "total": 1234, "aggregations": {"status": {"open": 1234}}}),
                ),
            ),
            target: Some(url),
            fixtures: Vec::new(),
        };
        let (code, out, err) = run_args(&args).await;
        assert_eq!(code, 0, "{out}{err}");
        let pages: Vec<(u64, u64, bool)> = fake
            .posted()
            .iter()
            .filter(|(path, _)| path == "/v1.0/search/query")
            .map(|(_, body)| {
                let request = &body["requests"][0];
                assert_eq!(
                    request["contentSources"],
                    json!(["/external/connections/big"])
                );
                (
                    request["from"].as_u64().unwrap(),
                    request["size"].as_u64().unwrap(),
                    request.get("aggregations").is_some(),
                )
            })
            .collect();
        assert_eq!(
            pages,
            [(0, 500, true), (500, 500, false), (1000, 500, false)],
            "aggregations are asked for once"
        );

        let fake = Fake {
            hits: 12_000,
            ..Fake::default()
        };
        let url = serve(fake.clone()).await;
        let args = ExpectArgs {
            file: write(
                dir.path(),
                "e.json",
                &expectations(
                    json!({"query": "*", "connections": ["big"], "mustSee": ["I9999"], "total": 12000}),
                ),
            ),
            target: Some(url),
            fixtures: Vec::new(),
        };
        let (code, out, err) = run_args(&args).await;
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("✓ \"*\" (big): 12000 hits (only the first 10000 read)"),
            "{out}"
        );
        assert_eq!(
            fake.posted()
                .iter()
                .filter(|(path, _)| path == "/v1.0/search/query")
                .count(),
            20
        );
    }

    #[tokio::test]
    async fn the_in_process_emulator_starts_answers_and_stops() {
        let local = LocalEmulator::start().await.unwrap();
        let target = Target::new(local.url.clone()).unwrap();
        target.check_health().await.unwrap();
        assert_eq!(
            target
                .connections("00000000-0000-0000-0000-000000000001")
                .await
                .unwrap(),
            Vec::<String>::new()
        );
        drop(target);
        tokio::time::timeout(Duration::from_secs(5), local.stop())
            .await
            .expect("the emulator stops promptly");
    }

    #[test]
    fn targets_are_http_or_https_base_urls() {
        assert_eq!(
            target_url("http://127.0.0.1:5080/").unwrap(),
            "http://127.0.0.1:5080"
        );
        assert_eq!(
            target_url("http://gcemu:5080/base/").unwrap(),
            "http://gcemu:5080/base"
        );
        assert_eq!(
            target_url("https://127.0.0.1:5443").unwrap(),
            "https://127.0.0.1:5443"
        );
        assert!(target_url("localhost:5080").is_err());
        assert!(target_url("http://x/?a=b").is_err());
    }
}
