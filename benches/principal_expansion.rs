//! Benchmark: expanding the principals of a user who is, through nesting, in 1,000 groups
//! (5 levels of 200 groups; the user is a direct member of the 200 first-level groups, and every
//! group of a level is a member of two groups of the next level). Measures what a cache miss
//! costs: building the membership graph from its edge list, then the breadth-first expansion and
//! the index terms. A second case walks a chain of 3,000 nested groups (memory stays linear:
//! one predecessor per group) and rebuilds the longest chain, as the explain endpoint does.
//! Run: `cargo bench --bench principal_expansion`.

use std::time::{Duration, Instant};

use gcemu::domain::acl::{Member, Principals, UserIdentity, MAX_EXTERNAL_GROUPS_PER_QUERY};
use gcemu::domain::directory::{DirectoryMember, GroupId, UserId};
use gcemu::service::access::membership_graph;

const LEVELS: usize = 5;
const GROUPS_PER_LEVEL: usize = 200;
const ITERATIONS: usize = 300;
const CHAIN_DEPTH: usize = 3_000;

fn group(id: &str) -> GroupId {
    GroupId::parse(id).expect("a group id")
}

fn main() {
    let user = "adele-0000";
    let user_member = || DirectoryMember::User(UserId::parse(user).expect("a user id"));
    let mut edges: Vec<(GroupId, DirectoryMember)> = Vec::new();
    for index in 0..GROUPS_PER_LEVEL {
        edges.push((group(&format!("g0-{index}")), user_member()));
    }
    for level in 0..LEVELS - 1 {
        for index in 0..GROUPS_PER_LEVEL {
            for parent in [index, (index * 7 + 3) % GROUPS_PER_LEVEL] {
                edges.push((
                    group(&format!("g{}-{parent}", level + 1)),
                    DirectoryMember::Group(group(&format!("g{level}-{index}"))),
                ));
            }
        }
    }
    // Unrelated groups make the directory realistic: 5,000 more memberships the user is not in.
    for index in 0..5_000 {
        edges.push((
            group(&format!("other{}", index / 10)),
            DirectoryMember::User(UserId::parse(&format!("someone{index}")).expect("a user id")),
        ));
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
        let principals =
            Principals::expand(identity.clone(), &graph, MAX_EXTERNAL_GROUPS_PER_QUERY)
                .expect("under the limit");
        let terms = principals.terms();
        durations.push(started.elapsed());
        n_groups = principals.n_groups();
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

    deep_chain(&identity);
}

/// A chain of `CHAIN_DEPTH` groups: the user is in c0, c(i) is in c(i+1).
fn deep_chain(identity: &UserIdentity) {
    let mut edges = vec![(
        group("c0"),
        DirectoryMember::User(UserId::parse(&identity.id).expect("a user id")),
    )];
    for level in 1..CHAIN_DEPTH {
        edges.push((
            group(&format!("c{level}")),
            DirectoryMember::Group(group(&format!("c{}", level - 1))),
        ));
    }
    let top = Member::Group(format!("c{}", CHAIN_DEPTH - 1));
    let mut durations: Vec<Duration> = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let started = Instant::now();
        let graph = membership_graph(&edges, &[]);
        let principals =
            Principals::expand(identity.clone(), &graph, MAX_EXTERNAL_GROUPS_PER_QUERY)
                .expect("under the limit");
        let chain = principals.chain_to(&top).expect("the user reaches the top");
        durations.push(started.elapsed());
        assert_eq!(chain.len(), CHAIN_DEPTH + 1);
        std::hint::black_box(principals.terms());
    }
    durations.sort();
    println!(
        "principal expansion: chain of {CHAIN_DEPTH} nested groups, longest chain rebuilt: median {:.3} ms, p99 {:.3} ms over {ITERATIONS} runs",
        durations[ITERATIONS / 2].as_secs_f64() * 1e3,
        durations[ITERATIONS * 99 / 100].as_secs_f64() * 1e3
    );
}
