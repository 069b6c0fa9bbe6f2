//! The web console (issue 17): its embedded files under `/_emulator/ui/`, and the control-plane
//! reads it is built on, checked on the sample tenant of `fixtures/`: the tenant overview, items
//! page by page with ACL entries resolved, the group graph with cycles and chains, the "hidden
//! from this person" list against `fixtures/sample-expectations.json`, the journal polled live,
//! and that no answer crosses from one tenant to another.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::{Reply, TestApp};
use crate::search::{search_as, token_for};

const TENANT: &str = "00000000-0000-0000-0000-000000000001";
const OTHER: &str = "22222222-0000-0000-0000-000000000002";
const AMARA: &str = "amara.okafor@contoso.com";

fn sample() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/sample-tenant.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn expectations() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/sample-expectations.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn sample_app() -> TestApp {
    let app = TestApp::spawn().await;
    let reply = app.post("/_emulator/fixtures", &sample()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    app.wait_for_index().await;
    app
}

/// A second tenant with one connection and one item, made through the Graph API with its token.
async fn other_tenant(app: &TestApp) -> String {
    let reply = app
        .post("/_emulator/token", &json!({"tenant": OTHER}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let token = reply.body["access_token"].as_str().unwrap().to_string();
    let created = app
        .send(
            app.client
                .post(app.url("/v1.0/external/connections"))
                .bearer_auth(&token)
                .json(&json!({"id": "othersecret", "name": "Other tenant's secrets"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    token
}

fn ids(values: &Value, member: &str) -> BTreeSet<String> {
    values
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[member].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_console_is_served_from_the_binary_with_a_strict_policy() {
    let app = TestApp::spawn().await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let bare = no_redirects
        .get(app.url("/_emulator/ui"))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], "/_emulator/ui/");

    let page = app
        .client
        .get(app.url("/_emulator/ui/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(policy.contains("default-src 'self'"), "{policy}");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let html = page.text().await.unwrap();
    // Every script and style the page names is served, with its type; nothing comes from elsewhere.
    let mut referenced = 0;
    for (attribute, kind) in [("src=\"", "text/javascript"), ("href=\"", "text/css")] {
        for part in html.split(attribute).skip(1) {
            let target = part.split('"').next().unwrap();
            assert!(
                !target.contains("//"),
                "the page loads {target} from another origin"
            );
            if !(target.ends_with(".js") || target.ends_with(".css")) {
                continue;
            }
            let url = app.url(&format!(
                "/_emulator/ui/{}",
                target.trim_start_matches("./")
            ));
            let asset = app.client.get(url).send().await.unwrap();
            assert_eq!(asset.status(), 200, "{target}");
            assert!(
                asset.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with(kind),
                "{target}"
            );
            referenced += 1;
        }
    }
    assert!(referenced >= 2, "the page names its script and its styles");

    let fixtures = app.get("/_emulator/ui/sample-tenant.json").await;
    assert_eq!(fixtures.status, 200);
    assert_eq!(fixtures.body, sample());

    for missing in [
        "/_emulator/ui/nothing.js",
        "/_emulator/ui/..%2FCargo.toml",
        "/_emulator/ui/%2E%2E",
    ] {
        let reply = app.get(missing).await;
        assert_eq!(reply.status, 404, "{missing}: {}", reply.body);
        assert!(reply.body["error"]["code"].is_string(), "{missing}");
    }
}

#[tokio::test]
async fn overview_and_items_show_the_tenant_asked_for_and_resolve_each_acl_entry() {
    let app = sample_app().await;
    other_tenant(&app).await;
    let document = sample();
    let tenant = &document["tenants"][0];

    let tenants = app.get("/_emulator/tenants").await;
    assert_eq!(tenants.status, 200, "{}", tenants.body);
    let listed = tenants.body["value"].as_array().unwrap();
    assert_eq!(listed[0]["id"], TENANT, "the default tenant comes first");
    assert_eq!(listed[0]["items"], 540);
    assert_eq!(
        listed[0]["users"],
        tenant["users"].as_array().unwrap().len()
    );
    assert!(listed
        .iter()
        .any(|t| t["id"] == OTHER && t["connections"] == 1));

    let overview = app
        .get(&format!("/_emulator/overview?tenant={TENANT}"))
        .await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert_eq!(
        ids(&overview.body["connections"], "id"),
        ["helpdesk", "wiki"].map(String::from).into()
    );
    let helpdesk = &overview.body["connections"][0];
    assert_eq!(helpdesk["state"], "ready");
    assert_eq!(helpdesk["itemCount"], 300);
    assert!(helpdesk["itemsRemaining"].as_u64().unwrap() > 0);
    assert_eq!(helpdesk["operations"][0]["status"], "completed");
    let properties = helpdesk["schema"]["properties"].as_array().unwrap();
    let title = properties.iter().find(|p| p["name"] == "title").unwrap();
    assert_eq!(title["labels"], json!(["title"]));
    assert_eq!(title["isSearchable"], true);
    assert_eq!(
        ids(&overview.body["users"], "userPrincipalName").len(),
        tenant["users"].as_array().unwrap().len()
    );
    let other = app
        .get(&format!("/_emulator/overview?tenant={OTHER}"))
        .await;
    assert_eq!(
        ids(&other.body["connections"], "id"),
        ["othersecret".to_string()].into()
    );
    assert!(other.body["users"].as_array().unwrap().is_empty());

    // Pages in id order; the filter finds what the document holds.
    let all: Vec<&Value> = tenant["connections"][0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    let mut all_ids: Vec<String> = all
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    all_ids.sort();
    let last = app
        .get("/_emulator/connections/HELPDESK/items?top=10&skip=295")
        .await;
    assert_eq!(last.status, 200, "{}", last.body);
    assert_eq!(last.body["total"], 300);
    let page: Vec<String> = last.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(page, all_ids[295..]);
    let kestrel = all
        .iter()
        .filter(|item| {
            item["id"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("kestrel")
                || item["properties"].as_object().unwrap().values().any(|v| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    text.to_lowercase().contains("kestrel")
                })
        })
        .count();
    assert!(kestrel > 5);
    let filtered = app
        .get("/_emulator/connections/helpdesk/items?filter=KESTREL&top=200")
        .await;
    assert_eq!(filtered.body["total"], kestrel, "{}", filtered.body);
    assert_eq!(filtered.body["value"].as_array().unwrap().len(), kestrel);
    let first = &filtered.body["value"][0];
    assert!(first["aclEntries"].as_u64().unwrap() >= 1);
    assert!(first["contentPreview"].as_str().unwrap().chars().count() <= 161);

    for (query, target) in [
        ("top=0", "top"),
        ("top=201", "top"),
        ("top=ten", "top"),
        ("skip=-1", "skip"),
    ] {
        let reply = app
            .get(&format!("/_emulator/connections/helpdesk/items?{query}"))
            .await;
        reply.assert_error(400, "InvalidRequest");
        assert_eq!(reply.body["error"]["target"], target, "{query}");
    }
    app.get("/_emulator/connections/nosuch/items")
        .await
        .assert_error(404, "ItemNotFound");
    // Another tenant's connection is not found from this one.
    let crossed = app.get("/_emulator/connections/othersecret/items").await;
    assert_eq!(crossed.status, 404);

    // ACL entries resolved: a user found, an external group found, and names matching no one.
    let item = app
        .get("/_emulator/connections/helpdesk/items/INC0010001")
        .await;
    assert_eq!(item.status, 200, "{}", item.body);
    assert_eq!(item.body["content"]["type"], "text");
    assert_eq!(item.body["acl"][0]["resolved"]["kind"], "user");
    assert_eq!(item.body["acl"][0]["resolved"]["found"], true);
    assert_eq!(
        item.body["acl"][0]["resolved"]["userPrincipalName"],
        "farid.haddad@contoso.com"
    );
    assert_eq!(item.body["acl"][1]["resolved"]["kind"], "externalGroup");
    assert_eq!(
        item.body["acl"][1]["resolved"]["displayName"],
        "Service desk agents"
    );
    let token = token_for(&app, AMARA).await;
    let _ = token;
    let put = app
        .put(
            "/v1.0/external/connections/helpdesk/items/orphan",
            &json!({
                "acl": [
                    {"type": "user", "value": "99999999-0000-0000-0000-000000000000", "accessType": "grant"},
                    {"type": "group", "value": "99999999-0000-0000-0000-00000000000g", "accessType": "deny"},
                    {"type": "everyone", "value": "everyone", "accessType": "grant"}
                ],
                "properties": {"title": "An orphan"}
            }),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let orphan = app
        .get("/_emulator/connections/helpdesk/items/orphan")
        .await;
    let kinds: Vec<(&str, bool)> = orphan.body["acl"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["resolved"]["kind"].as_str().unwrap(),
                e["resolved"]["found"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [("user", false), ("group", false), ("everyone", true)]
    );
    assert!(orphan.body["acl"][0]["resolved"]["description"]
        .as_str()
        .unwrap()
        .contains("matches no one"));
    app.get("/_emulator/connections/helpdesk/items/nosuch")
        .await
        .assert_error(404, "ItemNotFound");
}

#[tokio::test]
async fn the_group_graph_shows_nesting_cycles_and_each_chain_of_a_user() {
    let app = sample_app().await;
    let graph = app
        .get(&format!("/_emulator/groups?tenant={TENANT}&user={AMARA}"))
        .await;
    assert_eq!(graph.status, 200, "{}", graph.body);
    let nodes = graph.body["nodes"].as_array().unwrap();
    let document = sample();
    let tenant = &document["tenants"][0];
    let external: usize = tenant["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["groups"].as_array().map_or(0, |g| g.len()))
        .sum();
    assert_eq!(
        nodes.len(),
        tenant["groups"].as_array().unwrap().len() + external
    );
    let name_of = |id: &str| {
        nodes
            .iter()
            .find(|n| n["id"] == id)
            .map(|n| n["displayName"].as_str().unwrap_or_default().to_string())
            .unwrap()
    };
    // Every edge names a node of the graph.
    for node in nodes {
        for member in node["members"].as_array().unwrap() {
            if let Some(target) = member["node"].as_str() {
                assert!(nodes.iter().any(|n| n["id"] == target), "{target}");
            }
        }
    }
    // The sample nests Incident Response and Security Champions in each other.
    let cycles: Vec<BTreeSet<String>> = graph.body["cycles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c.as_array()
                .unwrap()
                .iter()
                .map(|id| name_of(id.as_str().unwrap()))
                .collect()
        })
        .collect();
    assert!(
        cycles.contains(
            &["Incident Response", "Security Champions"]
                .map(String::from)
                .into()
        ),
        "{cycles:?}"
    );
    // Chains start at the user and end at the group they are about.
    let chains = graph.body["chains"].as_array().unwrap();
    assert!(!chains.is_empty());
    for chain in chains {
        let path: Vec<&str> = chain["path"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(path[0], format!("user {AMARA}"));
        let node = chain["node"].as_str().unwrap();
        let name = name_of(node);
        assert!(
            path.last().unwrap().ends_with(&name),
            "{path:?} ends at {name}"
        );
    }
    let engineering = chains
        .iter()
        .find(|c| name_of(c["node"].as_str().unwrap()) == "Engineering")
        .expect("Amara is in Engineering through Platform Team");
    assert_eq!(
        engineering["path"],
        json!([
            format!("user {AMARA}"),
            "group Platform Team",
            "group Engineering"
        ])
    );
    assert!(
        chains.iter().any(|c| c["connectionId"].is_string()),
        "external groups are reached too"
    );
    // A user in no group has no chains; an unknown user is not found.
    let without = app.get("/_emulator/groups").await;
    assert!(without.body["chains"].as_array().unwrap().is_empty());
    app.get("/_emulator/groups?user=nobody@contoso.com")
        .await
        .assert_error(404, "ItemNotFound");
}

async fn hidden(app: &TestApp, body: Value) -> Reply {
    app.post(&format!("/_emulator/search/hidden?tenant={TENANT}"), &body)
        .await
}

#[tokio::test]
async fn the_hidden_list_holds_what_the_query_matches_and_the_person_may_not_see() {
    let app = sample_app().await;
    let expectations = expectations();
    for persona in expectations["personas"].as_array().unwrap() {
        let user = persona["user"].as_str().unwrap();
        let token = token_for(&app, user).await;
        for query in persona["queries"].as_array().unwrap() {
            let connections: Vec<String> = match query["connections"].as_array() {
                Some(list) => list
                    .iter()
                    .map(|c| c.as_str().unwrap().to_string())
                    .collect(),
                None => vec!["helpdesk".into(), "wiki".into()],
            };
            let text = query["query"].as_str().unwrap();
            let reply = hidden(&app, json!({"user": user, "queryString": text, "connectionIds": connections, "size": 200})).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            let qualified = |c: &Value| {
                let (connection, item) = (
                    c["connectionId"].as_str().unwrap(),
                    c["itemId"].as_str().unwrap(),
                );
                if query["connections"].is_array() {
                    item.to_string()
                } else {
                    format!("{connection}/{item}")
                }
            };
            let hidden: BTreeSet<String> = reply.body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(qualified)
                .collect();
            assert_eq!(
                hidden.len() as u64,
                reply.body["total"].as_u64().unwrap(),
                "all listed at size 200"
            );
            for must_not in query["mustNotSee"].as_array().unwrap() {
                assert!(
                    hidden.contains(must_not.as_str().unwrap()),
                    "{user} '{text}': {must_not} is hidden"
                );
            }
            for must in query["mustSee"].as_array().unwrap() {
                assert!(
                    !hidden.contains(must.as_str().unwrap()),
                    "{user} '{text}': {must} is visible"
                );
            }
            // Nothing is both a hit and hidden.
            let sources: Vec<String> = connections
                .iter()
                .map(|c| format!("/external/connections/{c}"))
                .collect();
            let search = search_as(&app, &token, json!({"entityTypes": ["externalItem"], "contentSources": sources, "query": {"queryString": text}, "size": 500})).await;
            assert_eq!(search.status, 200, "{}", search.body);
            let container = &search.body["value"][0]["hitsContainers"][0];
            for hit in container["hits"].as_array().unwrap() {
                let id = hit["hitId"].as_str().unwrap();
                let source = hit["contentSource"].as_str().unwrap_or_default();
                let key = if query["connections"].is_array() {
                    id.to_string()
                } else {
                    format!("{source}/{id}")
                };
                assert!(!hidden.contains(&key), "{key} is both a hit and hidden");
            }
            // Each reason is the explain endpoint's.
            for entry in reply.body["value"].as_array().unwrap().iter().take(3) {
                let explained = app
                    .send(
                        app.client
                            .get(app.url(&format!(
                                "/_emulator/connections/{}/items/{}/access",
                                entry["connectionId"].as_str().unwrap(),
                                entry["itemId"].as_str().unwrap()
                            )))
                            .query(&[("user", user)]),
                    )
                    .await;
                assert_eq!(explained.body["allowed"], false, "{}", explained.body);
                assert_eq!(explained.body["reason"], entry["reason"]);
            }
        }
    }

    // A page of the hidden list, and the refusals.
    let two = hidden(
        &app,
        json!({"user": AMARA, "queryString": "kestrel", "size": 2}),
    )
    .await;
    assert_eq!(two.body["value"].as_array().unwrap().len(), 2);
    assert!(two.body["total"].as_u64().unwrap() > 2);
    assert!(two.body["value"][0]["title"].is_string());
    for (body, status, target) in [
        (json!({"queryString": "kestrel"}), 400, "user"),
        (json!({"user": AMARA}), 400, "queryString"),
        (
            json!({"user": AMARA, "queryString": "kestrel", "size": 0}),
            400,
            "size",
        ),
        (
            json!({"user": AMARA, "queryString": "kestrel", "size": 201}),
            400,
            "size",
        ),
        (
            json!({"user": AMARA, "queryString": "kestrel", "connectionIds": "helpdesk"}),
            400,
            "connectionIds",
        ),
        (
            json!({"user": AMARA, "queryString": "kestrel", "extra": 1}),
            400,
            "extra",
        ),
        (json!({"user": 7, "queryString": "kestrel"}), 400, "user"),
    ] {
        let reply = hidden(&app, body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        assert_eq!(reply.body["error"]["target"], target, "{body}");
    }
    let unknown = hidden(
        &app,
        json!({"user": "nobody@contoso.com", "queryString": "kestrel"}),
    )
    .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let bad_query = hidden(
        &app,
        json!({"user": AMARA, "queryString": "title:(", "connectionIds": ["helpdesk"]}),
    )
    .await;
    assert_eq!(bad_query.status, 400, "{}", bad_query.body);
    let no_source = hidden(
        &app,
        json!({"user": AMARA, "queryString": "kestrel", "connectionIds": ["nosuch"]}),
    )
    .await;
    assert_eq!(no_source.status, 400, "{}", no_source.body);
}

#[tokio::test]
async fn a_token_keeps_the_console_reads_to_its_own_tenant() {
    let app = sample_app().await;
    let other = other_tenant(&app).await;
    let as_other = |path: String| app.client.get(app.url(&path)).bearer_auth(&other);
    for path in [
        format!("/_emulator/overview?tenant={TENANT}"),
        format!("/_emulator/groups?tenant={TENANT}"),
        format!("/_emulator/connections/helpdesk/items?tenant={TENANT}"),
        format!("/_emulator/connections/helpdesk/items/INC0010001?tenant={TENANT}"),
        format!("/_emulator/requests?tenant={TENANT}"),
    ] {
        let reply = app.send(as_other(path.clone())).await;
        assert_eq!(reply.status, 403, "{path}: {}", reply.body);
    }
    let crossed = app
        .send(
            app.client
                .post(app.url(&format!("/_emulator/search/hidden?tenant={TENANT}")))
                .bearer_auth(&other)
                .json(&json!({"user": AMARA, "queryString": "kestrel"})),
        )
        .await;
    assert_eq!(crossed.status, 403, "{}", crossed.body);
    // Without ?tenant= the token's tenant is used: its own connection, none of the sample's.
    let own = app.send(as_other("/_emulator/overview".into())).await;
    assert_eq!(own.body["tenant"], OTHER);
    assert_eq!(
        ids(&own.body["connections"], "id"),
        ["othersecret".to_string()].into()
    );
    let tenants = app.send(as_other("/_emulator/tenants".into())).await;
    assert_eq!(
        ids(&tenants.body["value"], "id"),
        [OTHER.to_string()].into()
    );
    let items = app
        .send(as_other("/_emulator/connections/helpdesk/items".into()))
        .await;
    assert_eq!(items.status, 404, "{}", items.body);
    let journal = app.send(as_other("/_emulator/requests".into())).await;
    assert_eq!(journal.status, 200);
    for entry in journal.body["value"].as_array().unwrap() {
        assert_eq!(entry["tenant"], OTHER, "{entry}");
    }
}

#[tokio::test]
async fn the_journal_is_polled_for_what_is_new() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        app.get("/v1.0/external/connections").await;
    }
    let all = app.get("/_emulator/requests").await;
    let entries = all.body["value"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    let first = entries[0]["sequence"].as_u64().unwrap();
    let newer = app.get(&format!("/_emulator/requests?after={first}")).await;
    let sequences: Vec<u64> = newer.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, [first + 1, first + 2]);
    let last = sequences[1];
    assert!(app
        .get(&format!("/_emulator/requests?after={last}"))
        .await
        .body["value"]
        .as_array()
        .unwrap()
        .is_empty());
    app.post(
        "/v1.0/external/connections",
        &json!({"id": "fresh", "name": "Fresh"}),
    )
    .await;
    let fresh = app
        .get(&format!("/_emulator/requests?after={last}&tenant={TENANT}"))
        .await;
    assert_eq!(fresh.body["value"].as_array().unwrap().len(), 1);
    assert_eq!(fresh.body["value"][0]["method"], "POST");
    assert!(app
        .get(&format!("/_emulator/requests?tenant={OTHER}"))
        .await
        .body["value"]
        .as_array()
        .unwrap()
        .is_empty());
    let bad = app.get("/_emulator/requests?after=soon").await;
    bad.assert_error(400, "InvalidRequest");
}

/// A tenant of its own: one user at the bottom of `depth` nested external groups, and `items`
/// items in a second connection (every seventh titled "needle").
fn deep_tenant(depth: usize, items: usize) -> Value {
    let user = "33333333-0000-0000-0000-000000000001";
    let groups: Vec<Value> = (0..depth)
        .map(|level| {
            let member = if level == 0 {
                json!({"id": user, "type": "user"})
            } else {
                json!({"id": format!("g{}", level - 1), "type": "externalGroup"})
            };
            json!({"id": format!("g{level}"), "displayName": format!("Level {level}"), "members": [member]})
        })
        .collect();
    let schema = json!({"baseType": "microsoft.graph.externalItem", "properties": [
        {"name": "title", "type": "String", "isSearchable": true, "isRetrievable": true}
    ]});
    let many: Vec<Value> = (0..items)
        .map(|n| {
            let title = if n % 7 == 0 { format!("Needle {n}") } else { format!("Hay {n}") };
            json!({"id": format!("i{n:06}"), "acl": [{"type": "everyone", "value": "everyone", "accessType": "grant"}], "properties": {"title": title}})
        })
        .collect();
    json!({"tenants": [{
        "id": OTHER,
        "users": [{"id": user, "userPrincipalName": "deep@contoso.com", "displayName": "Deep Down"},
                  {"id": "33333333-0000-0000-0000-000000000002", "userPrincipalName": "alone@contoso.com", "displayName": "In No Group"}],
        "connections": [
            {"id": "nested", "name": "Nested", "schema": schema.clone(), "groups": groups},
            {"id": "many", "name": "Many", "schema": schema, "items": many}
        ]
    }]})
}

#[tokio::test]
async fn deep_nesting_and_large_connections_are_answered_in_bounded_pieces() {
    let app = TestApp::spawn().await;
    // 460 levels: every chain in full would be 460 * 461 / 2 = 106,030 steps.
    let (depth, n_items) = (460, 12_345);
    let loaded = app
        .post("/_emulator/fixtures", &deep_tenant(depth, n_items))
        .await;
    assert_eq!(loaded.status, 200, "{}", loaded.body);

    let graph = app
        .get(&format!(
            "/_emulator/groups?tenant={OTHER}&user=deep@contoso.com"
        ))
        .await;
    assert_eq!(graph.status, 200, "{}", graph.body);
    let chains = graph.body["chains"].as_array().unwrap();
    assert_eq!(chains.len(), depth, "one chain per group the user is in");
    assert_eq!(graph.body["chainsTruncated"], true);
    let steps: usize = chains
        .iter()
        .filter_map(|c| c["path"].as_array())
        .map(Vec::len)
        .sum();
    assert!(steps <= 100_000 + depth + 1, "{steps} steps");
    for chain in chains {
        let level: usize = chain["node"]
            .as_str()
            .unwrap()
            .rsplit('g')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        // `via` is the level below (the user, `null`, for level 0).
        let expected_via = (level > 0).then(|| format!("externalGroup:nested/g{}", level - 1));
        assert_eq!(
            chain["via"].as_str().map(String::from),
            expected_via,
            "{chain}"
        );
        if let Some(path) = chain["path"].as_array() {
            assert_eq!(path.len(), level + 2, "user, then levels 0..={level}");
        }
    }
    let alone = app
        .get(&format!(
            "/_emulator/groups?tenant={OTHER}&user=alone@contoso.com"
        ))
        .await;
    assert!(alone.body["chains"].as_array().unwrap().is_empty());
    assert_eq!(alone.body["chainsTruncated"], false);

    // Paging and filtering read the connection in chunks; pages and totals stay exact.
    let expected: Vec<String> = (0..n_items).map(|n| format!("i{n:06}")).collect();
    let page = |query: String| {
        let app = &app;
        async move {
            let reply = app
                .get(&format!(
                    "/_emulator/connections/many/items?tenant={OTHER}&{query}"
                ))
                .await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.body);
            let ids: Vec<String> = reply.body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_string())
                .collect();
            (reply.body["total"].as_u64().unwrap(), ids)
        }
    };
    assert_eq!(
        page("top=200&skip=5990".into()).await,
        (n_items as u64, expected[5990..6190].to_vec())
    );
    assert_eq!(
        page("top=50&skip=12300".into()).await,
        (n_items as u64, expected[12300..].to_vec())
    );
    assert_eq!(page("skip=20000".into()).await, (n_items as u64, vec![]));
    let needles: Vec<String> = (0..n_items)
        .filter(|n| n % 7 == 0)
        .map(|n| format!("i{n:06}"))
        .collect();
    assert_eq!(
        page("filter=NEEDLE&top=200&skip=700".into()).await,
        (needles.len() as u64, needles[700..900].to_vec())
    );
    assert_eq!(
        page("filter=i012344".into()).await,
        (1, vec!["i012344".to_string()])
    );
    assert_eq!(page("filter=nothing-like-this".into()).await, (0, vec![]));
}

#[tokio::test]
async fn clearing_one_tenants_journal_keeps_the_others() {
    let app = TestApp::spawn().await;
    let other = other_tenant(&app).await;
    app.get("/v1.0/external/connections").await;
    let cleared = app
        .send(
            app.client
                .delete(app.url("/_emulator/requests"))
                .bearer_auth(&other),
        )
        .await;
    assert_eq!(cleared.status, 204);
    let left = app.get("/_emulator/requests").await;
    let tenants: BTreeSet<String> = ids(&left.body["value"], "tenant");
    assert_eq!(tenants, [TENANT.to_string()].into(), "{}", left.body);
    let cleared = app
        .delete(&format!("/_emulator/requests?tenant={TENANT}"))
        .await;
    assert_eq!(cleared.status, 204);
    assert!(app.get("/_emulator/requests").await.body["value"]
        .as_array()
        .unwrap()
        .is_empty());
}
