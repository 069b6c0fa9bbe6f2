//! `gcemu report`: asks a running gcemu for its connector report (`GET /_emulator/report`) and
//! prints it as a table. The exit code says whether findings at or above a chosen severity exist:
//! 0 none, 1 some, 2 when the report could not be had (bad URL, unreachable target, bad answer).

use std::time::Duration;

use serde_json::Value;

use crate::cli::ReportArgs;
use crate::service::control::report::Severity;

/// Where `gcemu report` looks without `--target`: `gcemu serve`'s default.
pub const DEFAULT_TARGET: &str = "http://127.0.0.1:5080";
/// Client request ids printed per finding (the report has up to 20).
const SHOWN_IDS: usize = 3;
const ERROR_EXIT: i32 = 2;

/// Runs `gcemu report`: the table on stdout, problems on stderr; answers the exit code.
pub async fn run(args: &ReportArgs) -> i32 {
    let fail_on = args.fail_on.severity();
    match fetch(&args.target, args.tenant.as_deref()).await {
        Ok(report) => {
            print!("{}", render(&report));
            exit_code(&report, fail_on)
        }
        Err(problem) => {
            eprintln!("gcemu report: {problem}");
            ERROR_EXIT
        }
    }
}

async fn fetch(target: &str, tenant: Option<&str>) -> Result<Value, String> {
    let base = crate::client::base_url(target)?;
    let base = base.as_str();
    let client =
        crate::client::http_client(Duration::from_secs(10), Duration::from_secs(300), true)?;
    let mut request = client.get(format!("{base}/_emulator/report"));
    if let Some(tenant) = tenant {
        request = request.query(&[("tenant", tenant)]);
    }
    let unreachable = |error: reqwest::Error| {
        format!(
            "cannot talk to gcemu at {base}: {}",
            crate::client::error_chain(&error)
        )
    };
    let response = request.send().await.map_err(unreachable)?;
    let status = response.status();
    let body = response.text().await.map_err(unreachable)?;
    let json: Option<Value> = serde_json::from_str(&body).ok();
    if !status.is_success() {
        let detail = json
            .as_ref()
            .and_then(|json| json["error"]["message"].as_str())
            .map_or_else(
                || crate::domain::excerpt(&body, 200).into_owned(),
                str::to_string,
            );
        return Err(format!(
            "{base}/_emulator/report answered {}: {detail}",
            status.as_u16()
        ));
    }
    match json {
        Some(report) if report["findings"].is_array() => Ok(report),
        _ => Err(format!(
            "{base}/_emulator/report did not answer a report (is this gcemu?)"
        )),
    }
}

fn count(report: &Value, severity: Severity) -> u64 {
    report["summary"][severity.as_str()].as_u64().unwrap_or(0)
}

/// 1 when the report has findings of `fail_on` or a worse severity, else 0.
pub fn exit_code(report: &Value, fail_on: Severity) -> i32 {
    let failing = Severity::ALL
        .into_iter()
        .filter(|severity| *severity <= fail_on)
        .any(|severity| count(report, severity) > 0);
    i32::from(failing)
}

/// The report as a table: a heading line, then one row per finding (severity, code, count,
/// message) with a few of its client request ids below it.
pub fn render(report: &Value) -> String {
    let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
    let number = |value: &Value| value.as_u64().unwrap_or(0);
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    let total: u64 = Severity::ALL.iter().map(|s| count(report, *s)).sum();
    let mut out = format!(
        "gcemu report for tenant {}: {total} {} ({} error, {} warning, {} info); journal: {} entries, {} dropped; store: {} connection(s), {} item(s) scanned\n",
        text(&report["tenant"]),
        if total == 1 { "finding" } else { "findings" },
        count(report, Severity::Error),
        count(report, Severity::Warning),
        count(report, Severity::Info),
        number(&report["journal"]["entries"]),
        number(&report["journal"]["dropped"]),
        number(&report["store"]["connections"]),
        number(&report["store"]["itemsScanned"]),
    );
    if report["store"]["complete"] == Value::Bool(false) {
        out.push_str(&format!(
            "note: the store scan stopped at its bounds ({} items, or too many ACL principals); later items were not checked\n",
            number(&report["store"]["itemLimit"]),
        ));
    }
    if number(&report["journal"]["dropped"]) > 0 {
        out.push_str(
            "note: the journal dropped its oldest entries; requests before them were not checked\n",
        );
    }
    if findings.is_empty() {
        out.push_str("\nNo findings.\n");
        return out;
    }
    let code_width = findings
        .iter()
        .map(|f| text(&f["code"]).len())
        .max()
        .unwrap_or(4)
        .max(4);
    out.push_str(&format!(
        "\n{:<8}  {:<code_width$}  {:>6}  MESSAGE\n",
        "SEVERITY", "CODE", "COUNT"
    ));
    let indent = " ".repeat(8 + 2 + code_width + 2 + 6 + 2);
    for finding in &findings {
        out.push_str(&format!(
            "{:<8}  {:<code_width$}  {:>6}  {}\n",
            text(&finding["severity"]),
            text(&finding["code"]),
            number(&finding["count"]),
            text(&finding["message"]),
        ));
        let ids: Vec<String> = finding["clientRequestIds"]
            .as_array()
            .map(|ids| ids.iter().take(SHOWN_IDS).map(text).collect())
            .unwrap_or_default();
        if !ids.is_empty() {
            let more = number(&finding["clientRequestIdCount"]).saturating_sub(ids.len() as u64);
            let more = if more > 0 {
                format!(" (+{more} more)")
            } else {
                String::new()
            };
            out.push_str(&format!(
                "{indent}client-request-ids: {}{more}\n",
                ids.join(", ")
            ));
        }
    }
    let omitted = number(&report["findingsOmitted"]);
    if omitted > 0 {
        out.push_str(&format!(
            "... and {omitted} more findings (the report lists at most {})\n",
            crate::service::control::report::MAX_FINDINGS
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "tenant": "t1",
            "findings": [
                {"code": "retryStorm", "severity": "error", "message": "Retry storm on PUT /x.", "count": 6,
                 "clientRequestIds": ["a", "b", "c", "d"], "clientRequestIdCount": 7},
                {"code": "schemaMissingLabels", "severity": "warning", "message": "The schema lacks labels.", "count": 1,
                 "clientRequestIds": [], "clientRequestIdCount": 0},
            ],
            "summary": {"error": 1, "warning": 1, "info": 0},
            "journal": {"entries": 12, "dropped": 0},
            "store": {"connections": 1, "itemsScanned": 3, "itemLimit": 100000, "complete": true},
        })
    }

    #[test]
    fn the_table_shows_each_finding_and_a_few_request_ids() {
        let table = render(&sample());
        assert!(
            table
                .starts_with("gcemu report for tenant t1: 2 findings (1 error, 1 warning, 0 info)"),
            "{table}"
        );
        assert!(
            table.contains("SEVERITY  CODE                  COUNT  MESSAGE"),
            "{table}"
        );
        assert!(
            table.contains("error     retryStorm                6  Retry storm on PUT /x."),
            "{table}"
        );
        assert!(
            table.contains("client-request-ids: a, b, c (+4 more)"),
            "{table}"
        );
        assert!(!table.contains("note:"), "{table}");
        let mut empty = sample();
        empty["findings"] = json!([]);
        empty["summary"] = json!({"error": 0, "warning": 0, "info": 0});
        empty["store"]["complete"] = json!(false);
        let table = render(&empty);
        assert!(table.contains("No findings."), "{table}");
        assert!(table.contains("note: the store scan stopped"), "{table}");
    }

    #[test]
    fn the_exit_code_follows_the_chosen_severity() {
        let mut report = sample();
        assert_eq!(exit_code(&report, Severity::Error), 1);
        report["summary"]["error"] = json!(0);
        assert_eq!(exit_code(&report, Severity::Error), 0);
        assert_eq!(exit_code(&report, Severity::Warning), 1);
        assert_eq!(exit_code(&report, Severity::Info), 1);
        report["summary"]["warning"] = json!(0);
        report["summary"]["info"] = json!(2);
        assert_eq!(exit_code(&report, Severity::Warning), 0);
        assert_eq!(exit_code(&report, Severity::Info), 1);
    }
}
