//! Comparing what a search showed with what the file expects, and writing it up. Pure: the
//! explanations come in from the caller, who asked the emulator for them.

use std::fmt::Write as _;

use super::file::{ItemRef, QuerySpec};

/// Searches read at most this many hits per query.
pub const MAX_HITS: usize = 10_000;

/// What one search showed the persona.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// `(connection, item id)` of every hit read, in hit order, each once.
    pub seen: Vec<(String, String)>,
    /// The `total` the search reported.
    pub total: u64,
    /// Reading stopped at `MAX_HITS`, so `seen` is not everything the persona sees.
    pub truncated: bool,
    /// Buckets per aggregated property: `(key, count)`.
    pub aggregations: Vec<(String, Vec<(String, u64)>)>,
}

/// One way the search differs from the expectations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// In `mustSee`, not seen.
    NotSeen(ItemRef),
    /// In `mustNotSee`, seen.
    Forbidden {
        connection: String,
        item: String,
    },
    /// Seen, and not in `mustSee` of an `exactly` query.
    Unexpected {
        connection: String,
        item: String,
    },
    Total {
        expected: u64,
        actual: u64,
    },
    Bucket {
        property: String,
        key: String,
        expected: u64,
        actual: u64,
    },
}

/// Every difference between `spec` and `observed`, in the order: missing, forbidden,
/// unexpected, total, buckets.
pub fn diff(spec: &QuerySpec, observed: &Observed) -> Vec<Difference> {
    let mut differences = Vec::new();
    let seen = |reference: &ItemRef| {
        observed
            .seen
            .iter()
            .any(|(connection, item)| reference.matches(connection, item))
    };
    for reference in &spec.must_see {
        if !seen(reference) {
            differences.push(Difference::NotSeen(reference.clone()));
        }
    }
    for (connection, item) in &observed.seen {
        if spec
            .must_not_see
            .iter()
            .any(|reference| reference.matches(connection, item))
        {
            differences.push(Difference::Forbidden {
                connection: connection.clone(),
                item: item.clone(),
            });
        } else if spec.exactly
            && !spec
                .must_see
                .iter()
                .any(|reference| reference.matches(connection, item))
        {
            differences.push(Difference::Unexpected {
                connection: connection.clone(),
                item: item.clone(),
            });
        }
    }
    if let Some(expected) = spec.total {
        if expected != observed.total {
            differences.push(Difference::Total {
                expected,
                actual: observed.total,
            });
        }
    }
    for (property, expected_buckets) in &spec.aggregations {
        let buckets = observed
            .aggregations
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(property))
            .map(|(_, buckets)| buckets.as_slice())
            .unwrap_or_default();
        for (key, expected) in expected_buckets {
            let actual = bucket_count(buckets, key);
            if actual != *expected {
                differences.push(Difference::Bucket {
                    property: property.clone(),
                    key: key.clone(),
                    expected: *expected,
                    actual,
                });
            }
        }
    }
    differences
}

/// The count of the bucket `key`: matched exactly, else by the one bucket equal to it without
/// regard to case (so `true` finds gcemu's `True`); a bucket not returned counts 0.
fn bucket_count(buckets: &[(String, u64)], key: &str) -> u64 {
    if let Some((_, count)) = buckets.iter().find(|(k, _)| k == key) {
        return *count;
    }
    let mut folded = buckets.iter().filter(|(k, _)| k.eq_ignore_ascii_case(key));
    match (folded.next(), folded.next()) {
        (Some((_, count)), None) => *count,
        _ => 0,
    }
}

/// The `(connection, item)` pairs whose access is worth explaining for a difference: the item
/// itself, or for a bare id not seen, that id in every searched connection.
pub fn explain_targets(difference: &Difference, connections: &[String]) -> Vec<(String, String)> {
    match difference {
        Difference::NotSeen(ItemRef {
            connection: Some(connection),
            item,
        })
        | Difference::Forbidden { connection, item }
        | Difference::Unexpected { connection, item } => {
            vec![(connection.clone(), item.clone())]
        }
        Difference::NotSeen(ItemRef {
            connection: None,
            item,
        }) => connections
            .iter()
            .map(|connection| (connection.clone(), item.clone()))
            .collect(),
        Difference::Total { .. } | Difference::Bucket { .. } => Vec::new(),
    }
}

/// What `GET /_emulator/connections/{c}/items/{i}/access` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Explanation {
    Access {
        allowed: bool,
        reason: String,
        /// Membership chains from the user to each matched group, as `type:id` members.
        paths: Vec<Vec<String>>,
    },
    /// `404`: no such item (or connection).
    NoItem,
    /// Anything else: why there is no explanation.
    Unavailable(String),
}

/// A difference with the explanations of its `explain_targets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    pub difference: Difference,
    pub explanations: Vec<(String, Explanation)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryResult {
    Checked {
        total: u64,
        truncated: bool,
        differences: Vec<Explained>,
    },
    /// The search could not be run (an error, not a difference).
    Error(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOutcome {
    pub label: String,
    pub connections: Vec<String>,
    pub result: QueryResult,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonaResult {
    /// The token endpoint does not know the user: one difference, and no query was run.
    NotAUser {
        tenant: String,
        queries: usize,
    },
    Queries(Vec<QueryOutcome>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonaOutcome {
    pub user: String,
    pub result: PersonaResult,
}

/// The counts of the summary line, and the exit code they make.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub personas: usize,
    pub queries: usize,
    /// Queries with differences, or not run because their persona is not a user.
    pub failed: usize,
    pub differences: usize,
    /// Queries that could not be run.
    pub errors: usize,
}

impl Tally {
    pub fn add(&mut self, persona: &PersonaOutcome) {
        self.personas += 1;
        match &persona.result {
            PersonaResult::NotAUser { queries, .. } => {
                self.queries += queries;
                self.failed += queries;
                self.differences += 1;
            }
            PersonaResult::Queries(queries) => {
                for query in queries {
                    self.queries += 1;
                    match &query.result {
                        QueryResult::Checked { differences, .. } if !differences.is_empty() => {
                            self.failed += 1;
                            self.differences += differences.len();
                        }
                        QueryResult::Checked { .. } => {}
                        QueryResult::Error(_) => self.errors += 1,
                    }
                }
            }
        }
    }

    /// 0 when every expectation holds, 1 on a difference, 2 when a query could not be run.
    pub fn exit_code(&self) -> i32 {
        if self.errors > 0 {
            2
        } else if self.differences > 0 {
            1
        } else {
            0
        }
    }

    pub fn render(&self) -> String {
        let mut line = format!(
            "summary: {}, {}, {} failed, {}",
            plural(self.personas, "persona", "personas"),
            plural(self.queries, "query", "queries"),
            self.failed,
            plural(self.differences, "difference", "differences"),
        );
        if self.errors > 0 {
            line.push_str(&format!(", {}", plural(self.errors, "error", "errors")));
        }
        line
    }
}

fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// One persona's block of the report, ending with a newline.
pub fn render_persona(persona: &PersonaOutcome) -> String {
    let mut out = format!("{}\n", persona.user);
    match &persona.result {
        PersonaResult::NotAUser { tenant, queries } => {
            let _ = writeln!(
                out,
                "  ✗ persona {} is not a user of tenant {tenant} ({} not run)",
                persona.user,
                plural(*queries, "query", "queries"),
            );
        }
        PersonaResult::Queries(queries) => {
            for query in queries {
                render_query(&mut out, query);
            }
        }
    }
    out
}

fn render_query(out: &mut String, query: &QueryOutcome) {
    let head = format!("\"{}\" ({})", query.label, query.connections.join(", "));
    match &query.result {
        QueryResult::Error(message) => {
            let _ = writeln!(out, "  ! {head}: not checked: {message}");
        }
        QueryResult::Checked {
            total,
            truncated,
            differences,
        } => {
            let read = if *truncated {
                format!(" (only the first {MAX_HITS} read)")
            } else {
                String::new()
            };
            if differences.is_empty() {
                let _ = writeln!(
                    out,
                    "  ✓ {head}: {}{read}",
                    plural(*total as usize, "hit", "hits")
                );
                return;
            }
            let _ = writeln!(
                out,
                "  ✗ {head}: {}{read}",
                plural(differences.len(), "difference", "differences")
            );
            for explained in differences {
                let _ = writeln!(out, "      {}", render_difference(explained));
            }
        }
    }
}

/// One line for a difference, naming the item and why.
pub fn render_difference(explained: &Explained) -> String {
    match &explained.difference {
        Difference::NotSeen(reference) => render_not_seen(reference, &explained.explanations),
        Difference::Forbidden { connection, item } => format!(
            "sees {connection}/{item}, expected not to: {}",
            why_seen(&explained.explanations)
        ),
        Difference::Unexpected { connection, item } => format!(
            "sees {connection}/{item}, not in mustSee (exactly): {}",
            why_seen(&explained.explanations)
        ),
        Difference::Total { expected, actual } => format!("total {actual}, expected {expected}"),
        Difference::Bucket {
            property,
            key,
            expected,
            actual,
        } => format!("aggregation {property}, bucket \"{key}\": {actual}, expected {expected}"),
    }
}

fn render_not_seen(reference: &ItemRef, explanations: &[(String, Explanation)]) -> String {
    if reference.connection.is_some() || explanations.len() == 1 {
        let name = match (&reference.connection, explanations) {
            (Some(_), _) => reference.to_string(),
            (None, [(connection, _)]) => format!("{connection}/{}", reference.item),
            (None, _) => reference.item.clone(),
        };
        let why = explanations
            .first()
            .map(|(_, explanation)| why_not_seen(explanation))
            .unwrap_or_else(|| "no explanation".to_string());
        return format!("does not see {name}, expected to: {why}");
    }
    // A bare id searched in several connections: explain it where it exists.
    let existing: Vec<&(String, Explanation)> = explanations
        .iter()
        .filter(|(_, explanation)| *explanation != Explanation::NoItem)
        .collect();
    match existing.as_slice() {
        [] => format!(
            "does not see {}, expected to: no item has this id in {}",
            reference.item,
            explanations
                .iter()
                .map(|(connection, _)| connection.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        [(connection, explanation)] => format!(
            "does not see {connection}/{}, expected to: {}",
            reference.item,
            why_not_seen(explanation)
        ),
        several => format!(
            "does not see {}, expected to: {}",
            reference.item,
            several
                .iter()
                .map(|(connection, explanation)| format!(
                    "in {connection}: {}",
                    why_not_seen(explanation)
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

fn why_not_seen(explanation: &Explanation) -> String {
    match explanation {
        Explanation::Access {
            allowed: true,
            reason,
            ..
        } => format!("the item does not match the query (its ACL allows access: {reason})"),
        Explanation::Access { reason, paths, .. } => with_paths(reason, paths),
        Explanation::NoItem => "the item does not exist".to_string(),
        Explanation::Unavailable(why) => format!("no explanation ({why})"),
    }
}

fn why_seen(explanations: &[(String, Explanation)]) -> String {
    match explanations.first().map(|(_, explanation)| explanation) {
        Some(Explanation::Access { reason, paths, .. }) => with_paths(reason, paths),
        Some(Explanation::NoItem) => "the item no longer exists".to_string(),
        Some(Explanation::Unavailable(why)) => format!("no explanation ({why})"),
        None => "no explanation".to_string(),
    }
}

/// `reason (via Engineering > Platform)`: each membership chain without the user itself and
/// without the `group:` / `externalGroup:` prefixes.
fn with_paths(reason: &str, paths: &[Vec<String>]) -> String {
    let chains: Vec<String> = paths
        .iter()
        .map(|path| {
            path.iter()
                .filter(|member| !member.starts_with("user:"))
                .map(|member| member.split_once(':').map_or(member.as_str(), |(_, id)| id))
                .collect::<Vec<_>>()
                .join(" > ")
        })
        .filter(|chain| !chain.is_empty())
        .map(|chain| format!("via {chain}"))
        .collect();
    if chains.is_empty() {
        reason.to_string()
    } else {
        format!("{reason} ({})", chains.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> QuerySpec {
        QuerySpec {
            name: None,
            query: "vpn".into(),
            connections: None,
            must_see: Vec::new(),
            must_not_see: Vec::new(),
            exactly: false,
            total: None,
            aggregations: Vec::new(),
        }
    }

    fn item(raw: &str) -> ItemRef {
        ItemRef::parse(raw).unwrap()
    }

    fn seen(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(c, i)| (c.to_string(), i.to_string()))
            .collect()
    }

    #[test]
    fn every_kind_of_difference_is_found() {
        let spec = QuerySpec {
            must_see: vec![item("T1"), item("helpdesk/T2"), item("wiki/W1")],
            must_not_see: vec![item("T3")],
            exactly: true,
            total: Some(5),
            aggregations: vec![(
                "status".into(),
                vec![("open".into(), 2), ("closed".into(), 0), ("true".into(), 1)],
            )],
            ..spec()
        };
        let observed = Observed {
            seen: seen(&[
                ("wiki", "T1"),
                ("HelpDesk", "T2"),
                ("helpdesk", "T3"),
                ("wiki", "T3"),
                ("helpdesk", "T4"),
            ]),
            total: 5,
            truncated: false,
            aggregations: vec![(
                "Status".into(),
                vec![("open".into(), 3), ("True".into(), 1)],
            )],
        };
        assert_eq!(
            diff(&spec, &observed),
            vec![
                Difference::NotSeen(item("wiki/W1")),
                Difference::Forbidden {
                    connection: "helpdesk".into(),
                    item: "T3".into()
                },
                Difference::Forbidden {
                    connection: "wiki".into(),
                    item: "T3".into()
                },
                Difference::Unexpected {
                    connection: "helpdesk".into(),
                    item: "T4".into()
                },
                Difference::Bucket {
                    property: "status".into(),
                    key: "open".into(),
                    expected: 2,
                    actual: 3
                },
            ]
        );
        let wrong_total = Observed {
            total: 6,
            ..observed
        };
        assert!(diff(&spec, &wrong_total).contains(&Difference::Total {
            expected: 5,
            actual: 6
        }));
    }

    #[test]
    fn without_exactly_other_items_are_fine() {
        let spec = QuerySpec {
            must_see: vec![item("T1")],
            ..spec()
        };
        let observed = Observed {
            seen: seen(&[("helpdesk", "T1"), ("helpdesk", "T9")]),
            total: 2,
            ..Observed::default()
        };
        assert_eq!(diff(&spec, &observed), Vec::new());
    }

    #[test]
    fn explain_targets_cover_every_searched_connection_for_a_bare_missing_id() {
        let connections = vec!["helpdesk".to_string(), "wiki".to_string()];
        assert_eq!(
            explain_targets(&Difference::NotSeen(item("T1")), &connections),
            vec![
                ("helpdesk".to_string(), "T1".to_string()),
                ("wiki".to_string(), "T1".to_string())
            ]
        );
        assert_eq!(
            explain_targets(&Difference::NotSeen(item("wiki/T1")), &connections),
            vec![("wiki".to_string(), "T1".to_string())]
        );
        assert!(explain_targets(
            &Difference::Total {
                expected: 1,
                actual: 2
            },
            &connections
        )
        .is_empty());
    }

    fn access(allowed: bool, reason: &str, paths: &[&[&str]]) -> Explanation {
        Explanation::Access {
            allowed,
            reason: reason.into(),
            paths: paths
                .iter()
                .map(|p| p.iter().map(|m| m.to_string()).collect())
                .collect(),
        }
    }

    #[test]
    fn a_persona_block_names_the_query_the_item_and_why() {
        let persona = PersonaOutcome {
            user: "adele@contoso.com".into(),
            result: PersonaResult::Queries(vec![
                QueryOutcome {
                    label: "printer".into(),
                    connections: vec!["helpdesk".into()],
                    result: QueryResult::Checked {
                        total: 7,
                        truncated: false,
                        differences: Vec::new(),
                    },
                },
                QueryOutcome {
                    label: "vpn".into(),
                    connections: vec!["helpdesk".into(), "wiki".into()],
                    result: QueryResult::Checked {
                        total: 12,
                        truncated: false,
                        differences: vec![
                            Explained {
                                difference: Difference::NotSeen(item("TCK-1042")),
                                explanations: vec![
                                    (
                                        "helpdesk".into(),
                                        access(false, "no entry of the ACL matches the user", &[]),
                                    ),
                                    ("wiki".into(), Explanation::NoItem),
                                ],
                            },
                            Explained {
                                difference: Difference::Forbidden {
                                    connection: "helpdesk".into(),
                                    item: "TCK-1077".into(),
                                },
                                explanations: vec![(
                                    "helpdesk".into(),
                                    access(
                                        true,
                                        "granted by 1 matching entry and denied by none",
                                        &[&[
                                            "user:u1",
                                            "group:Engineering",
                                            "externalGroup:Platform",
                                        ]],
                                    ),
                                )],
                            },
                            Explained {
                                difference: Difference::Total {
                                    expected: 13,
                                    actual: 12,
                                },
                                explanations: Vec::new(),
                            },
                        ],
                    },
                },
                QueryOutcome {
                    label: "bad kql".into(),
                    connections: vec!["helpdesk".into()],
                    result: QueryResult::Error("400 BadRequest: unbalanced parenthesis".into()),
                },
            ]),
        };
        assert_eq!(
            render_persona(&persona),
            "adele@contoso.com\n\
             \x20 ✓ \"printer\" (helpdesk): 7 hits\n\
             \x20 ✗ \"vpn\" (helpdesk, wiki): 3 differences\n\
             \x20     does not see helpdesk/TCK-1042, expected to: no entry of the ACL matches the user\n\
             \x20     sees helpdesk/TCK-1077, expected not to: granted by 1 matching entry and denied by none (via Engineering > Platform)\n\
             \x20     total 12, expected 13\n\
             \x20 ! \"bad kql\" (helpdesk): not checked: 400 BadRequest: unbalanced parenthesis\n"
        );
        let mut tally = Tally::default();
        tally.add(&persona);
        assert_eq!(
            tally,
            Tally {
                personas: 1,
                queries: 3,
                failed: 1,
                differences: 3,
                errors: 1
            }
        );
        assert_eq!(tally.exit_code(), 2);
        assert_eq!(
            tally.render(),
            "summary: 1 persona, 3 queries, 1 failed, 3 differences, 1 error"
        );
    }

    #[test]
    fn missing_items_say_whether_the_acl_or_the_query_keeps_them_out() {
        let line = |reference: &str, explanations: Vec<(&str, Explanation)>| {
            render_difference(&Explained {
                difference: Difference::NotSeen(item(reference)),
                explanations: explanations
                    .into_iter()
                    .map(|(c, e)| (c.to_string(), e))
                    .collect(),
            })
        };
        assert_eq!(
            line("helpdesk/T1", vec![("helpdesk", access(true, "granted by 1 matching entry and denied by none", &[]))]),
            "does not see helpdesk/T1, expected to: the item does not match the query (its ACL allows access: granted by 1 matching entry and denied by none)"
        );
        assert_eq!(
            line("helpdesk/T1", vec![("helpdesk", Explanation::NoItem)]),
            "does not see helpdesk/T1, expected to: the item does not exist"
        );
        assert_eq!(
            line("T1", vec![("helpdesk", Explanation::NoItem)]),
            "does not see helpdesk/T1, expected to: the item does not exist"
        );
        assert_eq!(
            line(
                "T1",
                vec![
                    ("helpdesk", Explanation::NoItem),
                    ("wiki", Explanation::NoItem)
                ]
            ),
            "does not see T1, expected to: no item has this id in helpdesk, wiki"
        );
        assert_eq!(
            line(
                "T1",
                vec![
                    ("helpdesk", access(false, "denied: entry 1", &[])),
                    ("wiki", Explanation::Unavailable("500".into()))
                ]
            ),
            "does not see T1, expected to: in helpdesk: denied: entry 1; in wiki: no explanation (500)"
        );
    }

    #[test]
    fn a_persona_that_is_not_a_user_is_one_difference_and_fails_its_queries() {
        let persona = PersonaOutcome {
            user: "zed@contoso.com".into(),
            result: PersonaResult::NotAUser {
                tenant: "t1".into(),
                queries: 2,
            },
        };
        assert_eq!(
            render_persona(&persona),
            "zed@contoso.com\n  ✗ persona zed@contoso.com is not a user of tenant t1 (2 queries not run)\n"
        );
        let mut tally = Tally::default();
        tally.add(&persona);
        assert_eq!(tally.exit_code(), 1);
        assert_eq!(
            tally.render(),
            "summary: 1 persona, 2 queries, 2 failed, 1 difference"
        );
    }

    #[test]
    fn a_truncated_read_says_so() {
        let mut out = String::new();
        render_query(
            &mut out,
            &QueryOutcome {
                label: "*".into(),
                connections: vec!["big".into()],
                result: QueryResult::Checked {
                    total: 12_000,
                    truncated: true,
                    differences: Vec::new(),
                },
            },
        );
        assert_eq!(
            out,
            "  ✓ \"*\" (big): 12000 hits (only the first 10000 read)\n"
        );
    }
}
