//! Benchmark: expanding the principals of a user who is, through nesting, in 1,000 groups
//! (5 levels of 200 groups; the user is a direct member of the 200 first-level groups, and every
//! group of a level is a member of two groups of the next level). Measures what a cache miss
//! costs: building the membership graph from its edge list, then the breadth-first expansion and
//! the index terms. Run: `cargo bench --bench principal_expansion`.

use std::time::{Duration, Instant};

use gcemu::domain::acl::{Principals, UserIdentity};
use gcemu::service::access::membership_graph;

const LEVELS: usize = 5;
const GROUPS_PER_LEVEL: usize = 200;
const ITERATIONS: usize = 300;

fn main() {
    let user = "adele-0000";
    let mut edges: Vec<(String, String)> = Vec::new();
    for index in 0..GROUPS_PER_LEVEL {
        edges.push((format!("g0-{index}"), user.to_string()));
    }
    for level in 0..LEVELS - 1 {
        for index in 0..GROUPS_PER_LEVEL {
            for parent in [index, (index * 7 + 3) % GROUPS_PER_LEVEL] {
                edges.push((
                    format!("g{}-{parent}", level + 1),
                    format!("g{level}-{index}"),
                ));
            }
        }
    }
    // Unrelated groups make the directory realistic: 5,000 more memberships the user is not in.
    for index in 0..5_000 {
        edges.push((format!("other{}", index / 10), format!("someone{index}")));
    }
    let identity = UserIdentity {
        id: user.to_string(),
        user_principal_name: Some("adele@contoso.com".into()),
        is_guest: false,
    };

    let mut durations: Vec<Duration> = Vec::with_capacity(ITERATIONS);
    let mut n_groups = 0;
    for _ in 0..ITERATIONS {
        let started = Instant::now();
        let graph = membership_graph(&edges, &[]);
        let principals = Principals::expand(identity.clone(), &graph);
        let terms = principals.terms();
        durations.push(started.elapsed());
        n_groups = principals.chains.len();
        std::hint::black_box(terms);
    }
    assert_eq!(
        n_groups,
        LEVELS * GROUPS_PER_LEVEL,
        "the user reaches every nested group"
    );
    durations.sort();
    let median = durations[ITERATIONS / 2];
    let p99 = durations[ITERATIONS * 99 / 100];
    println!(
        "principal expansion: user in {n_groups} groups nested {LEVELS} deep ({} edges in the graph): median {:.3} ms, p99 {:.3} ms over {ITERATIONS} runs",
        edges.len(),
        median.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
}
