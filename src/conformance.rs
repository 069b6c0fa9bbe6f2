//! `gcemu conformance --target URL`: runs the scenarios of `conformance/` (embedded in the
//! binary, or read from `--dir`) against gcemu or a real tenant, prints a line per scenario,
//! the per-area table and each failure's request with the expected and actual response side by
//! side, and optionally writes JUnit XML.
//!
//! `scenario` reads the files, `check` holds variables and matchers, `report` writes up (all
//! pure); this module does the IO: HTTP, tokens (given, from a command, or minted by gcemu),
//! waiting, captures and cleanup.

pub mod check;
pub mod report;
pub mod scenario;

use std::io::Write;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};

use crate::cli::ConformanceArgs;
use check::Vars;
use report::{Diff, Line, ScenarioOutcome, StepResult};
use scenario::{Expect, Loaded, Need, Step};

/// The exit code for usage, file and connection errors.
const ERROR_EXIT: i32 = 2;
/// A token from `--token-command` is fetched again after this long.
const TOKEN_LIFETIME: Duration = Duration::from_secs(45 * 60);
/// The longest wait-until against gcemu, in seconds (before `--wait-scale`).
const GCEMU_WAIT_CAP: f64 = 30.0;
/// How long a request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `gcemu conformance` with the report on stdout and problems on stderr; answers the exit
/// code: 0 when every scenario passes (known differences allowed), 1 on failures, 2 on usage,
/// file or connection errors.
pub async fn run(args: &ConformanceArgs) -> i32 {
    let code = run_with(args, &mut std::io::stdout(), &mut std::io::stderr()).await;
    let _ = std::io::stdout().flush();
    code
}

/// `run`, writing to `out` and `err`.
pub async fn run_with(
    args: &ConformanceArgs,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    match conform(args, out).await {
        Ok(code) => code,
        Err(lines) => {
            for line in lines {
                let _ = writeln!(err, "{line}");
            }
            ERROR_EXIT
        }
    }
}

async fn conform(args: &ConformanceArgs, out: &mut (dyn Write + Send)) -> Result<i32, Vec<String>> {
    let files = match &args.dir {
        Some(dir) => scenario::read_dir(dir).map_err(|e| vec![e])?,
        None => scenario::embedded(),
    };
    let mut scenarios = scenario::load(&files)?;
    if !args.only.is_empty() {
        scenarios.retain(|s| args.only.iter().any(|pattern| selected(pattern, s)));
        if scenarios.is_empty() {
            return Err(vec![format!(
                "--only {}: no scenario matches (names are AREA/NAME)",
                args.only.join(", ")
            )]);
        }
    }
    if args.list {
        for s in &scenarios {
            let _ = writeln!(out, "{}/{} ({} steps)", s.area, s.scenario.name, s.steps());
        }
        return Ok(0);
    }
    let base = target_url(&args.target).map_err(|e| vec![e])?;
    let http = crate::client::http_client(Duration::from_secs(10), REQUEST_TIMEOUT, false)
        .map_err(|e| vec![e])?;
    let is_gcemu = detect_gcemu(&http, &base).await?;
    if !is_gcemu && args.token.is_none() && args.token_command.is_none() {
        return Err(vec![format!(
            "{base} is not gcemu (GET /_emulator/health did not answer {{\"status\":\"ok\"}}): \
             a real tenant needs --token or --token-command"
        )]);
    }
    let mut runner = Runner {
        http,
        base: base.clone(),
        is_gcemu,
        args,
        app_token: args.token.clone(),
        app_token_at: Instant::now(),
    };
    runner.refresh_app_token().await?;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let _ = writeln!(
        out,
        "conformance: {} scenarios against {base} ({}), run {run_id}",
        scenarios.len(),
        if is_gcemu { "gcemu" } else { "not gcemu" }
    );
    let mut outcomes = Vec::new();
    for loaded in &scenarios {
        let outcome = runner.scenario(loaded, &run_id).await;
        let _ = writeln!(out, "{}", outcome.line());
        let _ = out.flush();
        outcomes.push(outcome);
    }
    let _ = write!(out, "{}", report::render_summary(&outcomes, is_gcemu));
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit(&outcomes))
            .map_err(|e| vec![format!("{}: cannot write: {e}", path.display())])?;
    }
    Ok(if outcomes.iter().any(ScenarioOutcome::failed) {
        1
    } else {
        0
    })
}

/// `AREA/NAME`, `NAME` or `AREA` matched against a glob (`*`, `?`).
fn selected(pattern: &str, loaded: &Loaded) -> bool {
    let full = format!("{}/{}", loaded.area, loaded.scenario.name);
    [
        full.as_str(),
        loaded.scenario.name.as_str(),
        loaded.area.as_str(),
    ]
    .iter()
    .any(|candidate| glob(pattern, candidate))
}

fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point for the last `*`.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The base URL without its trailing `/` (http or https).
fn target_url(raw: &str) -> Result<String, String> {
    crate::client::base_url(raw)
}

/// gcemu answers `GET /_emulator/health` with `{"status":"ok"}`; anything else is another
/// service. No answer at all ends the run.
async fn detect_gcemu(http: &reqwest::Client, base: &str) -> Result<bool, Vec<String>> {
    let response = http
        .get(format!("{base}/_emulator/health"))
        .send()
        .await
        .map_err(|e| {
            vec![format!(
                "cannot reach {base}: {}",
                crate::client::error_chain(&e)
            )]
        })?;
    if !response.status().is_success() {
        return Ok(false);
    }
    let body: Value = response.json().await.unwrap_or(Value::Null);
    Ok(body["status"] == "ok")
}

/// Runs `command` with `sh -c` (extra environment in `env`); its last non-empty stdout line.
async fn run_command(command: &str, env: &[(&str, &str)]) -> Result<String, String> {
    let mut process = tokio::process::Command::new("sh");
    process.arg("-c").arg(command);
    for (name, value) in env {
        process.env(name, value);
    }
    let output = process
        .output()
        .await
        .map_err(|e| format!("cannot run '{command}': {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "'{command}' failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(str::to_string)
        .ok_or_else(|| format!("'{command}' printed no token"))
}

/// A response as the checks see it.
struct Response {
    status: u16,
    headers: HeaderMap,
    /// JSON, or the text as a JSON string; `Null` when empty.
    body: Value,
}

/// What a step sent, for reports.
struct Sent {
    description: String,
}

struct Runner<'a> {
    http: reqwest::Client,
    base: String,
    is_gcemu: bool,
    args: &'a ConformanceArgs,
    app_token: Option<String>,
    app_token_at: Instant,
}

impl Runner<'_> {
    async fn refresh_app_token(&mut self) -> Result<(), Vec<String>> {
        let Some(command) = &self.args.token_command else {
            return Ok(());
        };
        if self.app_token.is_some() && self.app_token_at.elapsed() < TOKEN_LIFETIME {
            return Ok(());
        }
        let token = run_command(command, &[]).await.map_err(|e| vec![e])?;
        self.app_token = Some(token);
        self.app_token_at = Instant::now();
        Ok(())
    }

    fn missing_need(&self, scenario: &scenario::Scenario) -> Option<Need> {
        scenario.needs.iter().copied().find(|need| {
            !self.is_gcemu
                && match need {
                    Need::Emulator => true,
                    Need::DirectoryWrite => !self.args.directory_writes,
                    Need::DelegatedToken => self.args.user_token_command.is_none(),
                }
        })
    }

    async fn scenario(&mut self, loaded: &Loaded, run_id: &str) -> ScenarioOutcome {
        let started = Instant::now();
        let scenario = &loaded.scenario;
        let mut outcome = ScenarioOutcome {
            area: loaded.area.clone(),
            name: scenario.name.clone(),
            skipped: None,
            steps: Vec::new(),
            planned: scenario.steps.len(),
            cleanup: Vec::new(),
            seconds: 0.0,
        };
        if let Some(need) = self.missing_need(scenario) {
            outcome.skipped = Some(need.describe().to_string());
            return outcome;
        }
        if let Err(problem) = self.refresh_app_token().await {
            outcome.skipped = Some(problem.join("; "));
            return outcome;
        }
        let mut vars = Vars::new();
        vars.insert("run".into(), json!(run_id));
        vars.insert("domain".into(), json!(self.args.domain));
        vars.insert(
            "password".into(),
            json!(format!("Gc!{run_id}{}Aa9", &run_id[..4])),
        );
        vars.insert("target".into(), json!(self.base));
        let default_source = scenario.source.clone().unwrap_or_default();
        for (index, step) in scenario.steps.iter().enumerate() {
            let label = format!("step {} \"{}\"", index + 1, step.name);
            let source = step
                .source
                .clone()
                .unwrap_or_else(|| default_source.clone());
            let result = self.step(step, &label, &source, &mut vars).await;
            let stop = matches!(result, StepResult::Failed(_));
            outcome.steps.push(result);
            if stop {
                break;
            }
        }
        for (index, step) in scenario.cleanup.iter().enumerate() {
            let label = format!("cleanup {} \"{}\"", index + 1, step.name);
            if let Some(diff) = self.cleanup_step(step, &label, &vars).await {
                outcome.cleanup.push(diff);
            }
        }
        outcome.seconds = started.elapsed().as_secs_f64();
        outcome
    }

    async fn step(&self, step: &Step, label: &str, source: &str, vars: &mut Vars) -> StepResult {
        let fail = |request: String, problem: String| {
            StepResult::Failed(Diff {
                step: label.to_string(),
                source: source.to_string(),
                request,
                lines: Vec::new(),
                problem: Some(problem),
                body: String::new(),
                divergence: step.divergence.clone(),
            })
        };
        if let Some(user_token) = &step.user_token {
            return match self.user_token(&user_token.user, vars).await {
                Ok(token) => {
                    vars.insert(user_token.into.clone(), json!(token));
                    StepResult::Passed
                }
                Err(problem) => fail(
                    format!("a delegated token for {}", user_token.user),
                    problem,
                ),
            };
        }
        let use_gcemu_expect = self.is_gcemu && step.divergence.is_some();
        let expect = match (use_gcemu_expect, &step.gcemu_expect, &step.expect) {
            (true, Some(gcemu), _) => gcemu.clone(),
            (_, _, Some(expect)) => expect.clone(),
            _ => Expect::default(),
        };
        let expect = match substitute_expect(&expect, vars) {
            Ok(expect) => expect,
            Err(problem) => return fail(String::new(), problem),
        };
        let deadline = step.wait_until.as_ref().map(|wait| {
            let interval = wait.interval_seconds.unwrap_or(5.0);
            let interval = if self.is_gcemu {
                interval.min(0.2)
            } else {
                interval
            };
            // gcemu answers at once (its delays follow its own clock), so a wait that does not
            // hold within seconds will not hold: capped, a broken scenario fails fast in CI.
            let timeout = if self.is_gcemu {
                wait.timeout_seconds.min(GCEMU_WAIT_CAP)
            } else {
                wait.timeout_seconds
            };
            (
                Instant::now() + Duration::from_secs_f64(timeout * self.args.wait_scale),
                Duration::from_secs_f64(interval.max(0.01)),
            )
        });
        loop {
            let (sent, response) = match self.send(step, vars).await {
                Ok(pair) => pair,
                Err((request, problem)) => return fail(request, problem),
            };
            let (lines, body) = match &response {
                Ok(response) => (evaluate(&expect, response), short_body(&response.body)),
                Err(problem) => (
                    vec![Line {
                        what: "response".into(),
                        expected: "an HTTP response".into(),
                        actual: problem.clone(),
                        ok: false,
                    }],
                    String::new(),
                ),
            };
            let ok = lines.iter().all(|l| l.ok);
            if !ok {
                if let Some((deadline, interval)) = deadline {
                    if Instant::now() + interval < deadline {
                        tokio::time::sleep(interval).await;
                        continue;
                    }
                }
            }
            let diff = Diff {
                step: label.to_string(),
                source: source.to_string(),
                request: sent.description,
                lines,
                problem: None,
                body,
                divergence: step.divergence.clone(),
            };
            if !ok {
                // Without its own gcemu expectation, a divergence seen on gcemu is the known one.
                if use_gcemu_expect && step.gcemu_expect.is_none() {
                    return StepResult::Known(diff);
                }
                return StepResult::Failed(diff);
            }
            let Ok(response) = response else {
                return StepResult::Failed(diff);
            };
            for (name, from) in &step.capture {
                match capture(from, &response) {
                    Some(value) => {
                        vars.insert(name.clone(), value);
                    }
                    None => {
                        let mut diff = diff;
                        diff.problem = Some(format!("cannot capture {name}: {from} is absent"));
                        return StepResult::Failed(diff);
                    }
                }
            }
            return if use_gcemu_expect && step.gcemu_expect.is_some() {
                StepResult::Known(diff)
            } else {
                StepResult::Passed
            };
        }
    }

    /// A cleanup step: skipped when it names something never captured; `404` and any `2xx`
    /// pass (besides its own expected status).
    async fn cleanup_step(&self, step: &Step, label: &str, vars: &Vars) -> Option<Diff> {
        let (sent, response) = match self.send(step, vars).await {
            Ok(pair) => pair,
            Err(_) => return None,
        };
        let response_status = response.as_ref().map(|r| r.status).ok();
        let allowed = |status: u16| {
            status == 404
                || (200..300).contains(&status)
                || step
                    .expect
                    .as_ref()
                    .and_then(|e| e.status.as_ref())
                    .is_some_and(|s| check::status_matches(s, status))
        };
        match response_status {
            Some(status) if allowed(status) => None,
            _ => Some(Diff {
                step: label.to_string(),
                source: "cleanup".to_string(),
                request: sent.description,
                lines: vec![Line {
                    what: "status".into(),
                    expected: "2xx or 404".into(),
                    actual: match &response {
                        Ok(r) => r.status.to_string(),
                        Err(problem) => problem.clone(),
                    },
                    ok: false,
                }],
                problem: None,
                body: response.map(|r| short_body(&r.body)).unwrap_or_default(),
                divergence: None,
            }),
        }
    }

    async fn user_token(&self, user: &str, vars: &Vars) -> Result<String, String> {
        let user = check::substitute_str(user, vars)?;
        if let Some(command) = &self.args.user_token_command {
            let password = vars
                .get("password")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            return run_command(
                command,
                &[("GCEMU_USER", &user), ("GCEMU_PASSWORD", &password)],
            )
            .await;
        }
        let response = self
            .http
            .post(format!("{}/_emulator/token", self.base))
            .json(&json!({"user": user}))
            .send()
            .await
            .map_err(|e| format!("POST /_emulator/token: {}", crate::client::error_chain(&e)))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match body["access_token"].as_str() {
            Some(token) if status.is_success() => Ok(token.to_string()),
            _ => Err(format!(
                "POST /_emulator/token {{\"user\":\"{user}\"}} answered {status}: {}",
                check::short(&body)
            )),
        }
    }

    /// Sends a step's request; `Err` when it cannot be built (a variable not set), the inner
    /// `Err` when no response came.
    async fn send(
        &self,
        step: &Step,
        vars: &Vars,
    ) -> Result<(Sent, Result<Response, String>), (String, String)> {
        let Some(request) = &step.request else {
            return Err((String::new(), "no request".into()));
        };
        let path = check::substitute_str(&request.path, vars)
            .map_err(|p| (format!("{} {}", request.method, request.path), p))?;
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path
        } else {
            format!("{}{path}", self.base)
        };
        let description = format!("{} {url}", request.method);
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| (description.clone(), format!("bad method: {e}")))?;
        let mut builder = self.http.request(method, &url);
        let mut has_content_type = false;
        for (name, value) in &request.headers {
            let value = check::substitute_str(value, vars).map_err(|p| (description.clone(), p))?;
            has_content_type |= name.eq_ignore_ascii_case("content-type");
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| (description.clone(), format!("bad header {name}: {e}")))?;
            let value = HeaderValue::from_str(&value)
                .map_err(|e| (description.clone(), format!("bad header value: {e}")))?;
            builder = builder.header(name, value);
        }
        let token = match request.token.as_deref() {
            Some("none") => None,
            Some(token) => {
                Some(check::substitute_str(token, vars).map_err(|p| (description.clone(), p))?)
            }
            None => self.app_token.clone(),
        };
        if let Some(token) = token {
            builder = builder.bearer_auth(token);
        }
        let mut description = description;
        if let Some(body) = &request.body {
            let body = check::substitute(body, vars).map_err(|p| (description.clone(), p))?;
            description.push_str(&format!("\n            {}", check::short(&body)));
            if !has_content_type {
                builder = builder.header("content-type", "application/json");
            }
            builder = builder.body(body.to_string());
        } else if let Some(raw) = &request.raw_body {
            let raw = check::substitute_str(raw, vars).map_err(|p| (description.clone(), p))?;
            description.push_str(&format!("\n            {raw}"));
            builder = builder.body(raw);
        }
        let response = match builder.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                match response.bytes().await {
                    Ok(bytes) => Ok(Response {
                        status,
                        headers,
                        body: if bytes.is_empty() {
                            Value::Null
                        } else {
                            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                                Value::String(String::from_utf8_lossy(&bytes).into_owned())
                            })
                        },
                    }),
                    Err(e) => Err(format!("no body: {}", crate::client::error_chain(&e))),
                }
            }
            Err(e) => Err(format!("no response: {}", crate::client::error_chain(&e))),
        };
        Ok((Sent { description }, response))
    }
}

fn substitute_expect(expect: &Expect, vars: &Vars) -> Result<Expect, String> {
    let map = |members: &serde_json::Map<String, Value>| -> Result<_, String> {
        members
            .iter()
            .map(|(key, value)| {
                Ok((
                    check::substitute_str(key, vars)?,
                    check::substitute(value, vars)?,
                ))
            })
            .collect::<Result<serde_json::Map<String, Value>, String>>()
    };
    Ok(Expect {
        status: expect.status.clone(),
        headers: map(&expect.headers)?,
        json: map(&expect.json)?,
    })
}

/// One line per expectation, in the order written (status first).
fn evaluate(expect: &Expect, response: &Response) -> Vec<Line> {
    let mut lines = Vec::new();
    if let Some(status) = &expect.status {
        lines.push(Line {
            what: "status".into(),
            expected: match status {
                Value::Array(options) => options
                    .iter()
                    .map(|o| o.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
                other => other.to_string(),
            },
            actual: response.status.to_string(),
            ok: check::status_matches(status, response.status),
        });
    }
    for (name, matcher) in &expect.headers {
        let values: Vec<&str> = response
            .headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let actual = (!values.is_empty()).then(|| Value::String(values.join(", ")));
        let result = check::check(matcher, actual.as_ref());
        lines.push(Line {
            what: format!("header {name}"),
            expected: check::describe(matcher),
            actual: match &result {
                Ok(()) => actual.as_ref().map(check::short).unwrap_or("absent".into()),
                Err(problem) => problem.clone(),
            },
            ok: result.is_ok(),
        });
    }
    for (pointer, matcher) in &expect.json {
        let actual = if pointer.is_empty() {
            (!response.body.is_null()).then_some(&response.body)
        } else {
            response.body.pointer(pointer)
        };
        let result = check::check(matcher, actual);
        lines.push(Line {
            what: if pointer.is_empty() {
                "body".into()
            } else {
                pointer.clone()
            },
            expected: check::describe(matcher),
            actual: match &result {
                Ok(()) => actual.map(check::short).unwrap_or("absent".into()),
                Err(problem) => problem.clone(),
            },
            ok: result.is_ok(),
        });
    }
    lines
}

fn capture(from: &str, response: &Response) -> Option<Value> {
    if from == "status" {
        return Some(json!(response.status));
    }
    if let Some(name) = from.strip_prefix("header:") {
        return response
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| json!(v));
    }
    response.body.pointer(from).cloned()
}

fn short_body(body: &Value) -> String {
    if body.is_null() {
        return "(empty body)".into();
    }
    let text = body.to_string();
    if text.chars().count() <= 600 {
        return text;
    }
    let cut: String = text.chars().take(597).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    //! The runner against a fake server (an axum router on a loopback port) that plays gcemu or
    //! another service: divergences, needs, tokens from a command, cleanup after a failure.

    use std::path::Path;

    use axum::extract::State;
    use axum::http::{HeaderMap as Headers, StatusCode as Status};
    use axum::routing::get;
    use axum::{Json, Router};

    use super::*;

    async fn serve(plays_gcemu: bool) -> String {
        async fn health(State(gcemu): State<bool>) -> (Status, Json<Value>) {
            if gcemu {
                (Status::OK, Json(json!({"status": "ok"})))
            } else {
                (
                    Status::NOT_FOUND,
                    Json(json!({"error": {"code": "NotFound"}})),
                )
            }
        }
        async fn thing(headers: Headers) -> Json<Value> {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            Json(json!({"auth": auth}))
        }
        let router = Router::new()
            .route("/_emulator/health", get(health))
            .route(
                "/v1.0/thing",
                get(thing).delete(|| async { Status::NOT_FOUND }),
            )
            .with_state(plays_gcemu);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        url
    }

    const FILE: &str = r#"{"area": "fake", "scenarios": [
        {"name": "diverges", "source": "spec.md 1", "steps": [
            {"name": "the service says 401", "request": {"method": "GET", "path": "/v1.0/thing"},
             "expect": {"status": 401},
             "divergence": "gcemu answers 200",
             "gcemuExpect": {"status": 200, "json": {"/auth": "Bearer secret-${run}"}}}],
         "cleanup": [{"name": "delete", "request": {"method": "DELETE", "path": "/v1.0/thing"}}]},
        {"name": "control", "needs": ["emulator"], "steps": [
            {"name": "health", "source": "contract", "request": {"method": "GET", "path": "/_emulator/health"},
             "expect": {"status": 200}}]}
    ]}"#;

    fn args(target: &str, dir: &Path, token_command: Option<&str>) -> ConformanceArgs {
        ConformanceArgs {
            target: target.to_string(),
            token: None,
            token_command: token_command.map(str::to_string),
            user_token_command: None,
            directory_writes: false,
            only: Vec::new(),
            junit: None,
            dir: Some(dir.to_path_buf()),
            domain: "contoso.com".into(),
            wait_scale: 1.0,
            list: false,
        }
    }

    async fn run_args(args: &ConformanceArgs) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_with(args, &mut out, &mut err).await;
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[tokio::test]
    async fn against_gcemu_a_divergence_is_known_and_checked_against_gcemus_answer() {
        let url = serve(true).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("fake.json"), FILE).unwrap();
        // The token command sees no run id; the expectation names the run, so it fails...
        let (code, out, _) = run_args(&args(&url, dir.path(), Some("echo secret-x"))).await;
        assert_eq!(code, 1, "gcemu's own answer is still checked:\n{out}");
        assert!(out.contains("✗ /auth"), "{out}");
        // ...and a token of the right shape passes as a known difference.
        let file = FILE.replace("secret-${run}", "secret-x");
        std::fs::write(dir.path().join("fake.json"), file).unwrap();
        let (code, out, err) = run_args(&args(&url, dir.path(), Some("echo secret-x"))).await;
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("✓ fake/diverges (1 step, 1 known difference"),
            "{out}"
        );
        assert!(out.contains("✓ fake/control (1 step"), "{out}");
        assert!(
            out.contains("fake/diverges, step 1 \"the service says 401\": gcemu answers 200"),
            "{out}"
        );
    }

    #[tokio::test]
    async fn against_another_service_the_real_expectation_counts_and_control_steps_are_skipped() {
        let url = serve(false).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("fake.json"), FILE).unwrap();
        let (code, _, err) = run_args(&args(&url, dir.path(), None)).await;
        assert_eq!(code, 2);
        assert!(err.contains("needs --token or --token-command"), "{err}");

        let (code, out, err) = run_args(&args(&url, dir.path(), Some("echo tenant-token"))).await;
        assert_eq!(code, 1, "{out}{err}");
        assert!(out.contains("✗ fake/diverges: failed at step 1"), "{out}");
        assert!(
            out.contains("note:     gcemu differs here on purpose: gcemu answers 200"),
            "{out}"
        );
        assert!(out.contains("\"auth\":\"Bearer tenant-token\""), "{out}");
        assert!(
            out.contains("- fake/control: skipped (needs gcemu's control plane)"),
            "{out}"
        );
        assert!(
            !out.contains("cleanup 1"),
            "a 404 does not fail a cleanup:\n{out}"
        );
        assert!(
            out.contains("FAILED: 2 scenarios, 0 passed, 1 failed, 1 skipped"),
            "{out}"
        );
    }

    #[test]
    fn globs() {
        assert!(glob("connections/*", "connections/create"));
        assert!(glob("*acl*", "search/acl-personas"));
        assert!(glob("items", "items"));
        assert!(!glob("item", "items"));
        assert!(glob("a?c", "abc"));
    }

    #[test]
    fn targets() {
        assert_eq!(
            target_url("http://127.0.0.1:5080/").unwrap(),
            "http://127.0.0.1:5080"
        );
        assert_eq!(
            target_url("https://graph.microsoft.com").unwrap(),
            "https://graph.microsoft.com"
        );
        assert!(target_url("ftp://x").is_err());
    }
}
