//! Property test through HTTP: over random directories, group graphs (cycles included) and ACLs,
//! `*` returns to each user exactly the items the evaluator (explain endpoint) allows, and
//! aggregation counts equal the counts over that set.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::search::{search_as, token_for};

const USERS: [&str; 3] = ["u0@contoso.com", "u1@contoso.com", "u2@contoso.com"];
const STATUSES: [&str; 3] = ["open", "closed", "new"];

#[derive(Debug, Clone)]
struct World {
    guest: usize,
    /// (group, member) with groups g0..g2 and members users or groups.
    entra_edges: Vec<(usize, Member)>,
    /// (external group, member) with x0..x2.
    external_edges: Vec<(usize, Member)>,
    /// (acl, status) per item.
    items: Vec<(Vec<Value>, usize)>,
}

#[derive(Debug, Clone)]
enum Member {
    User(usize),
    Group(usize),
    External(usize),
}

fn member() -> impl Strategy<Value = Member> {
    prop_oneof![
        (0..3usize).prop_map(Member::User),
        (0..3usize).prop_map(Member::Group),
        (0..3usize).prop_map(Member::External)
    ]
}

fn acl_entry() -> impl Strategy<Value = Value> {
    (0..5usize, 0..3usize, prop::bool::weighted(0.75)).prop_map(|(kind, i, grant)| {
        let (acl_type, value) = match kind {
            0 => ("user", format!("user-{i}")),
            1 => ("group", format!("g{i}")),
            2 => ("externalGroup", format!("x{i}")),
            3 => ("everyone", "everyone".to_string()),
            _ => ("everyoneExceptGuests", "tenant".to_string()),
        };
        json!({"type": acl_type, "value": value, "accessType": if grant { "grant" } else { "deny" }})
    })
}

fn world() -> impl Strategy<Value = World> {
    (
        0..4usize,
        proptest::collection::vec(
            (
                0..3usize,
                member().prop_filter("entra groups hold users and groups", |m| {
                    !matches!(m, Member::External(_))
                }),
            ),
            0..6,
        ),
        proptest::collection::vec((0..3usize, member()), 0..6),
        proptest::collection::vec(
            (proptest::collection::vec(acl_entry(), 0..4), 0..3usize),
            1..7,
        ),
    )
        .prop_map(|(guest, entra_edges, external_edges, items)| World {
            guest,
            entra_edges,
            external_edges,
            items,
        })
}

async fn build(app: &TestApp, world: &World) {
    assert_eq!(app.post("/_emulator/reset", &json!({})).await.status, 204);
    app.create_connection("tickets").await;
    app.register_schema(
        "tickets",
        json!([{"name": "title", "type": "String", "isSearchable": true, "isRetrievable": true},
               {"name": "status", "type": "String", "isQueryable": true, "isRefinable": true, "isRetrievable": true}]),
    )
    .await;
    for (index, upn) in USERS.iter().enumerate() {
        let user_type = if index == world.guest {
            "Guest"
        } else {
            "Member"
        };
        let reply = app.post("/v1.0/users", &json!({"id": format!("user-{index}"), "userPrincipalName": upn, "displayName": upn, "userType": user_type})).await;
        assert_eq!(reply.status, 201);
    }
    for group in 0..3 {
        app.post(
            "/v1.0/groups",
            &json!({"id": format!("g{group}"), "displayName": format!("g{group}")}),
        )
        .await;
    }
    for (group, member) in &world.entra_edges {
        let member_id = match member {
            Member::User(i) => format!("user-{i}"),
            Member::Group(i) => format!("g{i}"),
            Member::External(_) => unreachable!(),
        };
        // Duplicates and self-membership are refused (400); the world then simply lacks that edge.
        app.post(&format!("/v1.0/groups/g{group}/members/$ref"), &json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{member_id}")})).await;
    }
    for group in 0..3 {
        app.post(
            "/v1.0/external/connections/tickets/groups",
            &json!({"id": format!("x{group}")}),
        )
        .await;
    }
    for (group, member) in &world.external_edges {
        let (id, member_type) = match member {
            Member::User(i) => (format!("user-{i}"), "user"),
            Member::Group(i) => (format!("g{i}"), "group"),
            Member::External(i) => (format!("x{i}"), "externalGroup"),
        };
        app.post(
            &format!("/v1.0/external/connections/tickets/groups/x{group}/members"),
            &json!({"id": id, "type": member_type}),
        )
        .await;
    }
    for (index, (acl, status)) in world.items.iter().enumerate() {
        let body = json!({"acl": acl, "properties": {"title": format!("item {index}"), "status": STATUSES[*status]}});
        assert_eq!(
            app.put(
                &format!("/v1.0/external/connections/tickets/items/i{index}"),
                &body
            )
            .await
            .status,
            200
        );
    }
}

#[test]
fn search_returns_what_the_evaluator_allows_and_counts_it() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(TestApp::spawn());
    let mut config = ProptestConfig::with_cases(40);
    config.failure_persistence = None;
    proptest!(config, |(world in world())| {
        let outcome: Result<(), TestCaseError> = runtime.block_on(async {
            build(&app, &world).await;
            for upn in USERS {
                let mut allowed = BTreeSet::new();
                for index in 0..world.items.len() {
                    let reply = app.get(&format!("/_emulator/connections/tickets/items/i{index}/access?user={upn}")).await;
                    if reply.body["allowed"] == true {
                        allowed.insert(format!("i{index}"));
                    }
                }
                let token = token_for(&app, upn).await;
                let reply = search_as(&app, &token, json!({
                    "entityTypes": ["externalItem"], "contentSources": ["/external/connections/tickets"],
                    "query": {"queryString": "*"}, "size": 1000,
                    "aggregations": [{"field": "status", "size": 10, "bucketDefinition": {"sortBy": "keyAsString"}}]
                })).await;
                prop_assert_eq!(reply.status.as_u16(), 200);
                let container = &reply.body["value"][0]["hitsContainers"][0];
                let found: BTreeSet<String> = container["hits"].as_array().unwrap().iter().map(|h| h["hitId"].as_str().unwrap().to_string()).collect();
                prop_assert_eq!(&found, &allowed, "{} in {:?}", upn, world);
                prop_assert_eq!(container["total"].as_u64().unwrap() as usize, allowed.len());
                let mut expected: BTreeMap<String, u64> = BTreeMap::new();
                for id in &allowed {
                    let index: usize = id[1..].parse().unwrap();
                    *expected.entry(STATUSES[world.items[index].1].to_string()).or_default() += 1;
                }
                let counted: BTreeMap<String, u64> = container["aggregations"][0]["buckets"].as_array().unwrap()
                    .iter().map(|b| (b["key"].as_str().unwrap().to_string(), b["count"].as_u64().unwrap())).collect();
                prop_assert_eq!(counted, expected);
            }
            Ok(())
        });
        outcome?;
    });
}
