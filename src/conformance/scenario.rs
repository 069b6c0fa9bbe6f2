//! The scenario files (`conformance/*.json`, format in `conformance/scenario.schema.json`):
//! reading, checking and the set embedded in the binary. Pure: no IO beyond reading a folder.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

/// The scenario files compiled into the binary, so that `gcemu conformance` runs without the
/// repository (the Docker image). `--dir` reads a folder instead.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "connections.json",
        include_str!("../../conformance/connections.json"),
    ),
    ("schema.json", include_str!("../../conformance/schema.json")),
    ("items.json", include_str!("../../conformance/items.json")),
    (
        "activities.json",
        include_str!("../../conformance/activities.json"),
    ),
    ("groups.json", include_str!("../../conformance/groups.json")),
    (
        "directory.json",
        include_str!("../../conformance/directory.json"),
    ),
    ("search.json", include_str!("../../conformance/search.json")),
    ("errors.json", include_str!("../../conformance/errors.json")),
];

/// One file: an area and its scenarios.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AreaFile {
    #[serde(rename = "$schema", default)]
    pub schema: Option<String>,
    pub area: String,
    #[serde(default)]
    pub description: Option<String>,
    pub scenarios: Vec<Scenario>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The default `source` of its steps.
    #[serde(default)]
    pub source: Option<String>,
    /// What the target must offer; a scenario whose needs a target lacks is skipped.
    #[serde(default)]
    pub needs: Vec<Need>,
    pub steps: Vec<Step>,
    /// Always run, also after a failure; a `404` never fails them.
    #[serde(default)]
    pub cleanup: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Need {
    /// gcemu's control plane (`/_emulator/...`): only gcemu has it.
    Emulator,
    /// Creating and deleting directory users and groups (`User.ReadWrite.All`,
    /// `Group.ReadWrite.All` on a real tenant): `--directory-writes`.
    DirectoryWrite,
    /// Delegated tokens for users the scenario creates: gcemu mints them, a real tenant needs
    /// `--user-token-command`.
    DelegatedToken,
}

impl Need {
    pub fn describe(self) -> &'static str {
        match self {
            Need::Emulator => "needs gcemu's control plane",
            Need::DirectoryWrite => "needs directory writes (--directory-writes)",
            Need::DelegatedToken => "needs delegated tokens (--user-token-command)",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Step {
    pub name: String,
    #[serde(default)]
    pub request: Option<Request>,
    /// A delegated token for a user, stored in a variable (instead of a request).
    #[serde(default)]
    pub user_token: Option<UserToken>,
    #[serde(default)]
    pub expect: Option<Expect>,
    /// variable name -> `header:NAME`, `status` or a JSON pointer into the body.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
    #[serde(default)]
    pub wait_until: Option<Wait>,
    #[serde(default)]
    pub source: Option<String>,
    /// A deliberate difference of gcemu from the real service (README fidelity notes).
    #[serde(default)]
    pub divergence: Option<String>,
    /// What gcemu answers instead, checked when the target is gcemu (with `divergence`).
    #[serde(default)]
    pub gcemu_expect: Option<Expect>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Request {
    pub method: String,
    /// A path under the target (`/v1.0/...`) or an absolute URL (a captured `Location`).
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<Value>,
    /// A body sent as is (malformed JSON).
    #[serde(default)]
    pub raw_body: Option<String>,
    /// `none` sends no `Authorization`; a value (usually `${var}`) is the bearer token;
    /// absent: the run's application token.
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserToken {
    /// UPN of the user.
    pub user: String,
    /// The variable that receives the token.
    pub into: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expect {
    /// A status, or a list of statuses any of which passes.
    #[serde(default)]
    pub status: Option<Value>,
    /// header name -> matcher.
    #[serde(default)]
    pub headers: Map<String, Value>,
    /// JSON pointer -> matcher.
    #[serde(default)]
    pub json: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Wait {
    pub timeout_seconds: f64,
    #[serde(default)]
    pub interval_seconds: Option<f64>,
}

/// A scenario with its area, as the runner sees it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub area: String,
    pub file: String,
    pub scenario: Scenario,
}

/// Reads and checks every file; answers all scenarios in file order, or every problem.
pub fn load(files: &[(String, String)]) -> Result<Vec<Loaded>, Vec<String>> {
    let mut loaded = Vec::new();
    let mut problems = Vec::new();
    let mut names = BTreeMap::new();
    for (file, text) in files {
        let area: AreaFile = match serde_json::from_str(text) {
            Ok(area) => area,
            Err(error) => {
                problems.push(format!("{file}: {error}"));
                continue;
            }
        };
        for (index, scenario) in area.scenarios.iter().enumerate() {
            let at = format!("{file}: scenario {index} '{}'", scenario.name);
            if let Some(other) = names.insert(scenario.name.clone(), file.clone()) {
                problems.push(format!("{at}: the name is also used in {other}"));
            }
            problems.extend(
                check_scenario(scenario)
                    .into_iter()
                    .map(|p| format!("{at}: {p}")),
            );
            loaded.push(Loaded {
                area: area.area.clone(),
                file: file.clone(),
                scenario: scenario.clone(),
            });
        }
    }
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(problems)
    }
}

/// The embedded files.
pub fn embedded() -> Vec<(String, String)> {
    EMBEDDED
        .iter()
        .map(|(name, text)| (name.to_string(), text.to_string()))
        .collect()
}

/// Every `*.json` file of `dir` except the JSON Schema, sorted by name.
pub fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|error| format!("{}: cannot read: {error}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.ends_with(".schema.json") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|error| format!("{}: cannot read: {error}", path.display()))?;
        files.push((name, text));
    }
    if files.is_empty() {
        return Err(format!("{}: no scenario files (*.json)", dir.display()));
    }
    files.sort();
    Ok(files)
}

fn check_scenario(scenario: &Scenario) -> Vec<String> {
    let mut problems = Vec::new();
    if scenario.steps.is_empty() {
        problems.push("has no steps".to_string());
    }
    let all = scenario
        .steps
        .iter()
        .map(|s| ("step", s))
        .chain(scenario.cleanup.iter().map(|s| ("cleanup step", s)));
    for (kind, step) in all {
        let at = format!("{kind} '{}'", step.name);
        match (&step.request, &step.user_token) {
            (Some(_), Some(_)) => problems.push(format!("{at}: both request and userToken")),
            (None, None) => problems.push(format!("{at}: neither request nor userToken")),
            (None, Some(_)) if !scenario.needs.contains(&Need::DelegatedToken) => {
                problems.push(format!("{at}: a userToken step needs \"delegatedToken\""))
            }
            _ => {}
        }
        if let Some(request) = &step.request {
            if request.path.starts_with("/_emulator/") && !scenario.needs.contains(&Need::Emulator)
            {
                problems.push(format!(
                    "{at}: a request to the control plane needs \"emulator\""
                ));
            }
            if (request.path.contains("/users") || request.path.contains("/groups"))
                && !request.path.contains("/external/")
                && request.method != "GET"
                && !scenario.needs.contains(&Need::DirectoryWrite)
            {
                problems.push(format!("{at}: a directory write needs \"directoryWrite\""));
            }
            if request.body.is_some() && request.raw_body.is_some() {
                problems.push(format!("{at}: both body and rawBody"));
            }
        }
        if kind == "step" && step.source.is_none() && scenario.source.is_none() {
            problems.push(format!("{at}: no source (step or scenario)"));
        }
        if step.gcemu_expect.is_some() && step.divergence.is_none() {
            problems.push(format!("{at}: gcemuExpect without a divergence note"));
        }
        for expect in step.expect.iter().chain(step.gcemu_expect.iter()) {
            for (pointer, matcher) in &expect.json {
                if !pointer.is_empty() && !pointer.starts_with('/') {
                    problems.push(format!("{at}: '{pointer}' is not a JSON pointer"));
                }
                if let Err(problem) = super::check::validate_matcher(matcher) {
                    problems.push(format!("{at}: {pointer}: {problem}"));
                }
            }
            for (header, matcher) in &expect.headers {
                if let Err(problem) = super::check::validate_matcher(matcher) {
                    problems.push(format!("{at}: header {header}: {problem}"));
                }
            }
        }
        for (name, from) in &step.capture {
            if !(from == "status" || from.starts_with("header:") || from.starts_with('/')) {
                problems.push(format!(
                    "{at}: capture {name}: '{from}' is not header:NAME, status or a JSON pointer"
                ));
            }
        }
    }
    problems
}

impl Loaded {
    /// The number of steps (without cleanup).
    pub fn steps(&self) -> usize {
        self.scenario.steps.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_scenarios_load() {
        let loaded = load(&embedded()).unwrap_or_else(|problems| panic!("{problems:#?}"));
        let steps: usize = loaded.iter().map(Loaded::steps).sum();
        assert!(steps >= 200, "{steps} steps");
    }

    #[test]
    fn problems_name_file_scenario_and_step() {
        let file = r#"{"area": "x", "scenarios": [{"name": "s", "steps": [
            {"name": "a", "request": {"method": "GET", "path": "/_emulator/health"}},
            {"name": "b", "request": {"method": "GET", "path": "/v1.0/x"}, "source": "s",
             "expect": {"json": {"x": 1, "/y": {"anyOf": 1}}}, "capture": {"v": "body"}}
        ]}]}"#;
        let problems = load(&[("f.json".to_string(), file.to_string())]).unwrap_err();
        assert_eq!(
            problems,
            [
                "f.json: scenario 0 's': step 'a': a request to the control plane needs \"emulator\"",
                "f.json: scenario 0 's': step 'a': no source (step or scenario)",
                "f.json: scenario 0 's': step 'b': 'x' is not a JSON pointer",
                "f.json: scenario 0 's': step 'b': /y: anyOf takes a list",
                "f.json: scenario 0 's': step 'b': capture v: 'body' is not header:NAME, status or a JSON pointer",
            ]
        );
    }
}
