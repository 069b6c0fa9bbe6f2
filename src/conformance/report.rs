//! Outcomes and how they are written up (pure): a line per scenario while running, the
//! per-area table, each failure with its request and the expected and actual response side by
//! side, the known differences, and JUnit XML.

use std::fmt::Write as _;

/// One line of a comparison: what is checked, what the scenario expects, what came back.
#[derive(Debug, Clone)]
pub struct Line {
    pub what: String,
    pub expected: String,
    pub actual: String,
    pub ok: bool,
}

/// A step that did not hold (or a known difference): enough to read it without the files.
#[derive(Debug, Clone)]
pub struct Diff {
    pub step: String,
    pub source: String,
    pub request: String,
    pub lines: Vec<Line>,
    /// A problem that is not a comparison (a variable not set, no response).
    pub problem: Option<String>,
    pub body: String,
    pub divergence: Option<String>,
}

#[derive(Debug, Clone)]
pub enum StepResult {
    Passed,
    /// A deliberate difference of gcemu, seen on gcemu: not a failure.
    Known(Diff),
    Failed(Diff),
}

#[derive(Debug, Clone)]
pub struct ScenarioOutcome {
    pub area: String,
    pub name: String,
    pub skipped: Option<String>,
    /// Steps in order; a scenario stops at its first failure.
    pub steps: Vec<StepResult>,
    pub planned: usize,
    pub cleanup: Vec<Diff>,
    pub seconds: f64,
}

impl ScenarioOutcome {
    pub fn failures(&self) -> impl Iterator<Item = &Diff> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                StepResult::Failed(diff) => Some(diff),
                _ => None,
            })
            .chain(self.cleanup.iter())
    }

    pub fn known(&self) -> impl Iterator<Item = &Diff> {
        self.steps.iter().filter_map(|s| match s {
            StepResult::Known(diff) => Some(diff),
            _ => None,
        })
    }

    pub fn failed(&self) -> bool {
        self.failures().next().is_some()
    }

    pub fn passed_steps(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| !matches!(s, StepResult::Failed(_)))
            .count()
    }

    /// The line printed as the scenario ends.
    pub fn line(&self) -> String {
        if let Some(reason) = &self.skipped {
            return format!("- {}/{}: skipped ({reason})", self.area, self.name);
        }
        let known = self.known().count();
        let known = if known > 0 {
            format!(", {known} known difference{}", plural(known))
        } else {
            String::new()
        };
        if self.failed() {
            let at = self
                .failures()
                .next()
                .map(|d| d.step.clone())
                .unwrap_or_default();
            format!(
                "✗ {}/{}: failed at {at} ({}/{} steps{known})",
                self.area,
                self.name,
                self.passed_steps(),
                self.planned
            )
        } else {
            format!(
                "✓ {}/{} ({} step{}{known}, {:.1} s)",
                self.area,
                self.name,
                self.planned,
                plural(self.planned),
                self.seconds
            )
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The per-area table, the failures, the known differences and the summary line.
pub fn render_summary(outcomes: &[ScenarioOutcome], target_is_gcemu: bool) -> String {
    let mut out = String::new();
    let mut areas: Vec<&str> = Vec::new();
    for outcome in outcomes {
        if !areas.contains(&outcome.area.as_str()) {
            areas.push(&outcome.area);
        }
    }
    let _ = writeln!(
        out,
        "\n{:<14} {:>9} {:>6} {:>6} {:>7} {:>6} {:>6}",
        "area", "scenarios", "passed", "failed", "skipped", "steps", "known"
    );
    let mut totals = [0usize; 6];
    for area in &areas {
        let of_area: Vec<&ScenarioOutcome> = outcomes.iter().filter(|o| o.area == *area).collect();
        let row = [
            of_area.len(),
            of_area
                .iter()
                .filter(|o| o.skipped.is_none() && !o.failed())
                .count(),
            of_area.iter().filter(|o| o.failed()).count(),
            of_area.iter().filter(|o| o.skipped.is_some()).count(),
            of_area
                .iter()
                .filter(|o| o.skipped.is_none())
                .map(|o| o.planned)
                .sum(),
            of_area.iter().map(|o| o.known().count()).sum(),
        ];
        for (total, value) in totals.iter_mut().zip(row) {
            *total += value;
        }
        let _ = writeln!(
            out,
            "{:<14} {:>9} {:>6} {:>6} {:>7} {:>6} {:>6}",
            area, row[0], row[1], row[2], row[3], row[4], row[5]
        );
    }
    let _ = writeln!(
        out,
        "{:<14} {:>9} {:>6} {:>6} {:>7} {:>6} {:>6}",
        "total", totals[0], totals[1], totals[2], totals[3], totals[4], totals[5]
    );

    for outcome in outcomes {
        for diff in outcome.failures() {
            let _ = write!(
                out,
                "\nFAILED {}/{}, {}\n{}",
                outcome.area,
                outcome.name,
                diff.step,
                render_diff(diff)
            );
        }
    }
    let known: Vec<(&ScenarioOutcome, &Diff)> = outcomes
        .iter()
        .flat_map(|o| o.known().map(move |d| (o, d)))
        .collect();
    if !known.is_empty() {
        let _ = writeln!(
            out,
            "\nknown differences of gcemu from the real service (README, fidelity notes):"
        );
        for (outcome, diff) in known {
            let _ = writeln!(
                out,
                "  {}/{}, {}: {}",
                outcome.area,
                outcome.name,
                diff.step,
                diff.divergence.as_deref().unwrap_or_default()
            );
        }
    }
    let failed = totals[2];
    let _ = writeln!(
        out,
        "\n{}: {} scenario{}, {} passed, {} failed, {} skipped; {} steps, {} known difference{}{}",
        if failed == 0 { "PASSED" } else { "FAILED" },
        totals[0],
        plural(totals[0]),
        totals[1],
        failed,
        totals[3],
        totals[4],
        totals[5],
        plural(totals[5]),
        if target_is_gcemu {
            " (target: gcemu)"
        } else {
            ""
        }
    );
    out
}

/// A failure: where, the request, then expected and actual side by side.
pub fn render_diff(diff: &Diff) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "  source:   {}", diff.source);
    if let Some(note) = &diff.divergence {
        let _ = writeln!(out, "  note:     gcemu differs here on purpose: {note}");
    }
    let _ = writeln!(out, "  request:  {}", diff.request);
    if let Some(problem) = &diff.problem {
        let _ = writeln!(out, "  problem:  {problem}");
    }
    if !diff.lines.is_empty() {
        let what_width = diff
            .lines
            .iter()
            .map(|l| l.what.chars().count())
            .max()
            .unwrap_or(0)
            .clamp(8, 40);
        let expected_width = diff
            .lines
            .iter()
            .map(|l| l.expected.chars().count())
            .max()
            .unwrap_or(0)
            .clamp(8, 60);
        let _ = writeln!(
            out,
            "    {:<what_width$}  {:<expected_width$}  actual",
            "", "expected"
        );
        for line in &diff.lines {
            let _ = writeln!(
                out,
                "  {} {:<what_width$}  {:<expected_width$}  {}",
                if line.ok { " " } else { "✗" },
                line.what,
                line.expected,
                line.actual
            );
        }
    }
    if !diff.body.is_empty() {
        let _ = writeln!(out, "  response: {}", diff.body);
    }
    out
}

fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: a test suite per area, a test case per scenario.
pub fn junit(outcomes: &[ScenarioOutcome]) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"gcemu conformance\">\n",
    );
    let mut areas: Vec<&str> = Vec::new();
    for outcome in outcomes {
        if !areas.contains(&outcome.area.as_str()) {
            areas.push(&outcome.area);
        }
    }
    for area in areas {
        let of_area: Vec<&ScenarioOutcome> = outcomes.iter().filter(|o| o.area == area).collect();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            xml(area),
            of_area.len(),
            of_area.iter().filter(|o| o.failed()).count(),
            of_area.iter().filter(|o| o.skipped.is_some()).count(),
            of_area.iter().map(|o| o.seconds).sum::<f64>()
        );
        for outcome in of_area {
            let _ = write!(
                out,
                "    <testcase classname=\"conformance.{}\" name=\"{}\" time=\"{:.3}\"",
                xml(area),
                xml(&outcome.name),
                outcome.seconds
            );
            let mut body = String::new();
            if let Some(reason) = &outcome.skipped {
                let _ = writeln!(body, "      <skipped message=\"{}\"/>", xml(reason));
            }
            for diff in outcome.failures() {
                let _ = writeln!(
                    body,
                    "      <failure message=\"{}\">{}</failure>",
                    xml(&format!("{}: {}", diff.step, diff.source)),
                    xml(&render_diff(diff))
                );
            }
            let known: Vec<String> = outcome
                .known()
                .map(|d| {
                    format!(
                        "known difference at {}: {}",
                        d.step,
                        d.divergence.as_deref().unwrap_or_default()
                    )
                })
                .collect();
            if !known.is_empty() {
                let _ = writeln!(
                    body,
                    "      <system-out>{}</system-out>",
                    xml(&known.join("\n"))
                );
            }
            if body.is_empty() {
                out.push_str("/>\n");
            } else {
                out.push_str(">\n");
                out.push_str(&body);
                out.push_str("    </testcase>\n");
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing() -> ScenarioOutcome {
        ScenarioOutcome {
            area: "connections".into(),
            name: "create".into(),
            skipped: None,
            steps: vec![
                StepResult::Passed,
                StepResult::Failed(Diff {
                    step: "step 2 \"get\"".into(),
                    source: "connections.md 2.2".into(),
                    request: "GET http://x/v1.0/external/connections/c1".into(),
                    lines: vec![
                        Line {
                            what: "status".into(),
                            expected: "200".into(),
                            actual: "404".into(),
                            ok: false,
                        },
                        Line {
                            what: "/state".into(),
                            expected: "\"draft\"".into(),
                            actual: "is missing".into(),
                            ok: false,
                        },
                    ],
                    problem: None,
                    body: "{\"error\":{}}".into(),
                    divergence: None,
                }),
            ],
            planned: 3,
            cleanup: vec![],
            seconds: 0.1,
        }
    }

    #[test]
    fn a_failure_shows_request_expected_and_actual() {
        let outcome = failing();
        assert_eq!(
            outcome.line(),
            "✗ connections/create: failed at step 2 \"get\" (1/3 steps)"
        );
        let summary = render_summary(&[outcome], true);
        assert!(
            summary.contains("FAILED connections/create, step 2 \"get\""),
            "{summary}"
        );
        assert!(summary.contains("  ✗ status    200       404"), "{summary}");
        assert!(
            summary.contains("connections            1      0      1"),
            "{summary}"
        );
    }

    #[test]
    fn junit_escapes_and_counts() {
        let xml = junit(&[failing()]);
        assert!(xml.contains("<testsuite name=\"connections\" tests=\"1\" failures=\"1\""));
        assert!(xml.contains("step 2 &quot;get&quot;"));
    }
}
