//! Hostile input against every route: mutated versions of valid request bodies (wrong types,
//! huge numbers, deep nesting, non-ASCII, empty and oversized strings, missing and unknown
//! members, broken JSON) and hostile query strings and path segments. For every request:
//! never a 5xx, never a dropped connection, every refusal a Graph error envelope, and nothing
//! stored changes on a refusal (the whole database, write sequence included, is compared).
//!
//! Runs `GCEMU_HOSTILE_CASES` cases per property (default 96); set it higher for a longer run.

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::items::{everyone, ticket_schema};

fn cases() -> u32 {
    std::env::var("GCEMU_HOSTILE_CASES")
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(96)
}

/// One route and a body it accepts.
struct Route {
    method: reqwest::Method,
    path: &'static str,
    body: fn() -> Value,
    /// Sent with a delegated token (search).
    as_user: bool,
}

fn routes() -> Vec<Route> {
    use reqwest::Method;
    let route = |method: Method, path: &'static str, body: fn() -> Value| Route {
        method,
        path,
        body,
        as_user: false,
    };
    vec![
        route(
            Method::POST,
            "/v1.0/external/connections",
            || json!({"id": "fuzzconn", "name": "Fuzz", "description": "fuzzed connection"}),
        ),
        route(
            Method::PATCH,
            "/v1.0/external/connections/tickets",
            || json!({"name": "Tickets", "description": "renamed", "configuration": {"authorizedAppIds": ["a"]}}),
        ),
        route(
            Method::PATCH,
            "/beta/external/connections/tickets/schema",
            || {
                let mut properties = ticket_schema();
                properties.as_array_mut().unwrap().push(json!({"name": "owner", "type": "String", "isQueryable": true, "isRetrievable": true, "aliases": ["assignee"], "labels": ["authors"]}));
                json!({"baseType": "microsoft.graph.externalItem", "properties": properties})
            },
        ),
        // The tenant's item quota (1) is used up by the seeded item: a new item passes every
        // check before the quota and is then refused, and that refusal must leave no trace.
        route(
            Method::PUT,
            "/v1.0/external/connections/tickets/items/fuzzitem",
            item_body,
        ),
        // Replacing the seeded item always fits the quota.
        route(
            Method::PUT,
            "/v1.0/external/connections/tickets/items/seed",
            item_body,
        ),
        route(
            Method::PATCH,
            "/v1.0/external/connections/tickets/items/seed",
            || json!({"properties": {"title": "patched", "priority": 7}, "acl": [{"type": "everyone", "value": "everyone", "accessType": "grant"}]}),
        ),
        route(
            Method::POST,
            "/v1.0/external/connections/tickets/items/seed/addActivities",
            || json!({"activities": [{"@odata.type": "#microsoft.graph.externalConnectors.externalActivity", "type": "modified", "startDateTime": "2024-05-01T10:00:00Z", "performedBy": {"type": "user", "id": "adele-id"}}]}),
        ),
        route(
            Method::POST,
            "/v1.0/external/connections/tickets/groups",
            || json!({"id": "fuzzgroup", "displayName": "Fuzz group", "description": "d"}),
        ),
        route(
            Method::PATCH,
            "/v1.0/external/connections/tickets/groups/seedgroup",
            || json!({"displayName": "Renamed", "description": "d"}),
        ),
        route(
            Method::POST,
            "/beta/external/connections/tickets/groups/seedgroup/members",
            || json!({"id": "adele-id", "type": "user", "identitySource": "azureActiveDirectory"}),
        ),
        route(
            Method::POST,
            "/v1.0/users",
            || json!({"id": "fuzz-user", "userPrincipalName": "fuzz@contoso.com", "displayName": "Fuzz", "userType": "Member", "accountEnabled": true}),
        ),
        route(
            Method::POST,
            "/v1.0/groups",
            || json!({"id": "fuzz-group", "displayName": "Fuzz", "mailEnabled": false, "securityEnabled": true}),
        ),
        route(
            Method::POST,
            "/v1.0/groups/seed-group/members/$ref",
            || json!({"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/adele-id"}),
        ),
        Route {
            method: Method::POST,
            path: "/v1.0/search/query",
            body: || {
                json!({"requests": [{"entityTypes": ["externalItem"], "contentSources": ["/external/connections/tickets"],
                    "query": {"queryString": "printer OR paper", "queryTemplate": "{searchTerms} AND NOT closed:true"},
                    "from": 0, "size": 5, "fields": ["title", "priority"],
                    "sortProperties": [{"name": "priority", "isDescending": true}],
                    "aggregations": [{"field": "priority", "size": 3, "bucketDefinition": {"sortBy": "count", "isDescending": true, "minimumCount": 0}}],
                    "aggregationFilters": ["priority:\"ǂǂ33\""]}]})
            },
            as_user: true,
        },
        Route {
            method: Method::POST,
            path: "/v1.0/copilot/retrieval",
            body: || {
                json!({"queryString": "How do I clear a printer jam?", "dataSource": "externalItem",
                    "dataSourceConfiguration": {"externalItem": {"connections": [{"connectionId": "tickets"}]}},
                    "filterExpression": "priority>=1", "resourceMetadata": ["title", "priority"],
                    "maximumNumberOfResults": 5})
            },
            as_user: true,
        },
        route(Method::POST, "/v1.0/$batch", || {
            json!({"requests": [
                {"id": "put", "method": "PUT", "url": "/external/connections/tickets/items/seed",
                 "headers": {"Content-Type": "application/json"}, "body": item_body()},
                {"id": "get", "method": "GET", "url": "external/connections/tickets/items/seed?$select=id", "dependsOn": ["put"]},
                {"id": "patch", "method": "PATCH", "url": "/external/connections/tickets/groups/seedgroup",
                 "headers": {"Content-Type": "application/json", "Accept": "application/json"},
                 "body": {"displayName": "Renamed"}, "dependsOn": ["get"]},
                {"id": "bin", "method": "POST", "url": "/search/query",
                 "headers": {"Content-Type": "application/json"}, "body": "eyJyZXF1ZXN0cyI6W119"}
            ]})
        }),
        route(
            Method::POST,
            "/_emulator/token",
            || json!({"user": "adele@contoso.com", "scopes": ["ExternalItem.Read.All"]}),
        ),
        route(
            Method::POST,
            "/_emulator/clock/advance",
            || json!({"seconds": 1}),
        ),
    ]
}

/// An item of every kind of member: ACL entries, typed properties, HTML content, an activity.
fn item_body() -> Value {
    json!({
        "acl": [{"type": "user", "value": "adele-id", "accessType": "grant"}, {"type": "everyone", "value": "everyone", "accessType": "deny"}],
        "properties": {"title": "Printer jam", "priority": 3, "closed": false, "created": "2024-05-01T10:00:00Z", "tags@odata.type": "Collection(String)", "tags": ["a", "b"]},
        "content": {"type": "html", "value": "<p>paper <script>x</script></p>"},
        "activities": [{"@odata.type": "#microsoft.graph.externalConnectors.externalActivity", "type": "created", "startDateTime": "2024-05-01T10:00:00Z", "performedBy": {"type": "user", "id": "adele-id"}}]
    })
}

/// How one member of a valid body is spoiled.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(Value),
    Remove,
    AddUnknown(Value),
    /// The whole body replaced by these bytes.
    Raw(String),
}

fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!(true)),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(1e308)),
        Just(json!(-1e308)),
        Just(json!(9_007_199_254_740_993u64)),
        Just(json!(0.000_000_1)),
        Just(json!("")),
        Just(json!(" ")),
        Just(json!([])),
        Just(json!({})),
        Just(json!("x".repeat(70_000))),
        Just(json!("é".repeat(40_000))),
        Just(json!("\u{0}\u{202e}😀é\u{feff}")),
        Just(json!("NOT ".repeat(300))),
        Just(json!("<script>".repeat(5000))),
        Just(json!("{searchTerms}".repeat(2000))),
        Just(json!(["a", 1, null, {"b": []}])),
        "\\PC{0,24}".prop_map(Value::String),
        (1usize..120).prop_map(|depth| { (0..depth).fold(json!("x"), |inner, _| json!([inner])) }),
        (1usize..120)
            .prop_map(|depth| { (0..depth).fold(json!("x"), |inner, _| json!({ "a": inner })) }),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        6 => hostile_value().prop_map(Mutation::Replace),
        2 => Just(Mutation::Remove),
        1 => hostile_value().prop_map(Mutation::AddUnknown),
        1 => prop_oneof![
            Just("{".to_string()),
            Just("[]".to_string()),
            Just("null".to_string()),
            Just("\"x\"".to_string()),
            Just(format!("{}1{}", "[".repeat(200), "]".repeat(200))),
            Just(format!("{{\"a\":{}", "{\"a\":".repeat(5000))),
            Just("{\"id\": \"\\ud800\"}".to_string()),
            Just("\u{feff}{}".to_string()),
        ].prop_map(Mutation::Raw),
    ]
}

/// JSON pointers of every member and element of `value` (not the root).
fn pointers(value: &Value, prefix: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let pointer = format!("{prefix}/{}", key.replace('~', "~0").replace('/', "~1"));
                out.push(pointer.clone());
                pointers(child, pointer, out);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                let pointer = format!("{prefix}/{index}");
                out.push(pointer.clone());
                pointers(child, pointer, out);
            }
        }
        _ => {}
    }
}

/// Applies the mutation at the `choice`-th pointer; answers the body bytes to send.
fn mutate(body: &Value, choice: usize, mutation: &Mutation) -> Vec<u8> {
    let mut body = body.clone();
    let mut all = Vec::new();
    pointers(&body, String::new(), &mut all);
    let pointer = &all[choice % all.len()];
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let last = last.replace("~1", "/").replace("~0", "~");
    match mutation {
        Mutation::Raw(raw) => return raw.clone().into_bytes(),
        Mutation::Replace(value) => *body.pointer_mut(pointer).unwrap() = value.clone(),
        Mutation::Remove => match body.pointer_mut(parent).unwrap() {
            Value::Object(map) => {
                map.remove(&last);
            }
            Value::Array(items) => {
                items.remove(last.parse::<usize>().unwrap());
            }
            _ => unreachable!("a parent is a container"),
        },
        Mutation::AddUnknown(value) => match body.pointer_mut(parent).unwrap() {
            Value::Object(map) => {
                map.insert("zzUnknownMember".into(), value.clone());
            }
            Value::Array(items) => items.push(value.clone()),
            _ => unreachable!("a parent is a container"),
        },
    }
    serde_json::to_vec(&body).unwrap()
}

/// Every row of every table, sorted: compared before and after a refused request.
async fn snapshot(app: &TestApp) -> Vec<String> {
    app.state
        .store
        .read(|db| {
            let mut tables: Vec<String> = Vec::new();
            let mut statement = db.prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )?;
            for name in statement.query_map([], |row| row.get::<_, String>(0))? {
                tables.push(name?);
            }
            let mut rows = Vec::new();
            for table in tables {
                let mut statement = db.prepare(&format!("SELECT * FROM \"{table}\""))?;
                let n_columns = statement.column_count();
                let mut table_rows: Vec<String> = statement
                    .query_map([], |row| {
                        let mut text = format!("{table}:");
                        for column in 0..n_columns {
                            text.push_str(&format!("{:?}|", row.get_ref(column)?));
                        }
                        Ok(text)
                    })?
                    .collect::<Result<_, _>>()?;
                table_rows.sort();
                rows.extend(table_rows);
            }
            Ok(rows)
        })
        .await
        .expect("the store answers")
}

/// A tenant with a ready connection, an item, an external group, a user and a directory group.
async fn seeded_app() -> (TestApp, String) {
    let mut config = gcemu::config::Config::for_tests();
    config.item_quota = Some(1);
    let app = TestApp::spawn_with(config).await;
    app.create_connection("tickets").await;
    app.register_schema("tickets", ticket_schema()).await;
    let setup = [
        app.post("/v1.0/users", &json!({"id": "adele-id", "userPrincipalName": "adele@contoso.com", "displayName": "Adele", "accountEnabled": true})).await,
        app.post("/v1.0/groups", &json!({"id": "seed-group", "displayName": "Seed", "mailEnabled": false, "securityEnabled": true})).await,
        app.put("/v1.0/external/connections/tickets/items/seed", &json!({"acl": everyone(), "properties": {"title": "printer paper", "priority": 3}})).await,
        app.post("/v1.0/external/connections/tickets/groups", &json!({"id": "seedgroup", "displayName": "Seed"})).await,
    ];
    for reply in setup {
        assert!(reply.status.is_success(), "{}", reply.body);
    }
    let token = crate::search::token_for(&app, "adele@contoso.com").await;
    (app, token)
}

/// Sends one request and checks the answer against the rules above.
async fn check(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    url: String,
    body: Option<Vec<u8>>,
) -> Result<(), TestCaseError> {
    let before = snapshot(app).await;
    let mut request = app.client.request(method.clone(), &url);
    if !token.is_empty() {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request
        .send()
        .await
        .map_err(|error| TestCaseError::fail(format!("{method} {url}: no answer ({error})")))?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|error| {
        TestCaseError::fail(format!("{method} {url}: the answer broke off ({error})"))
    })?;
    prop_assert!(
        status.as_u16() < 500,
        "{} {}: {} {}",
        method,
        url,
        status,
        String::from_utf8_lossy(&bytes[..bytes.len().min(500)])
    );
    // A batch answers 200; its sub-responses obey the same rule.
    if status.is_success() {
        if let Ok(Value::Object(batch)) = serde_json::from_slice::<Value>(&bytes) {
            for response in batch
                .get("responses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let sub_status = response["status"].as_u64().unwrap_or(0);
                prop_assert!(
                    (200..500).contains(&sub_status),
                    "{} {}: a sub-response {}",
                    method,
                    url,
                    response
                );
            }
        }
    }
    if status.is_client_error() {
        let envelope: Value = serde_json::from_slice(&bytes).map_err(|_| {
            TestCaseError::fail(format!("{method} {url}: {status} without a JSON body"))
        })?;
        let error = &envelope["error"];
        prop_assert!(
            error["code"].as_str().is_some_and(|code| !code.is_empty())
                && error["message"].as_str().is_some_and(|m| !m.is_empty())
                && error["innerError"]["request-id"].is_string()
                && error["innerError"]["date"].is_string(),
            "{} {}: not a Graph error envelope: {}",
            method,
            url,
            envelope
        );
        let after = snapshot(app).await;
        prop_assert!(
            before == after,
            "{} {} was refused ({}) but changed stored state",
            method,
            url,
            status
        );
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn mutated_bodies_on_every_route_never_break_the_server_nor_stored_state() {
    let runtime = runtime();
    let (app, token) = runtime.block_on(seeded_app());
    let routes = routes();
    let n_routes = routes.len();
    let config = ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(route in 0..n_routes, choice in 0usize..1000, mutation in mutation())| {
        let route = &routes[route];
        let body = mutate(&(route.body)(), choice, &mutation);
        let url = app.url(route.path);
        let token = if route.as_user { token.clone() } else { String::new() };
        runtime.block_on(check(&app, &token, route.method.clone(), url, Some(body)))?;
    });
    // Still serving, and the seeded state reads back.
    let reply = runtime.block_on(app.get("/v1.0/external/connections/tickets/items/seed"));
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[test]
fn hostile_query_strings_and_path_segments_never_break_the_server() {
    let runtime = runtime();
    let (app, _token) = runtime.block_on(seeded_app());
    let config = ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let text = prop_oneof![
        "\\PC{0,40}",
        Just("é".to_string()),
        Just("é".repeat(3000)),
        Just("x".repeat(6000)),
        Just("(".repeat(500)),
        Just("'".repeat(100)),
        Just("name eq 'a' and ".repeat(200)),
        Just("\u{0}".to_string()),
        Just("%".to_string()),
    ];
    let template = prop_oneof![
        Just("/v1.0/external/connections?$filter={}"),
        Just("/v1.0/external/connections?$top={}"),
        Just("/v1.0/external/connections?$select={}"),
        Just("/v1.0/external/connections/{}"),
        Just("/v1.0/external/connections/tickets/items/{}"),
        Just("/v1.0/external/connections/tickets/groups/{}"),
        Just("/v1.0/external/connections/{}/schema"),
        Just("/v1.0/users/{}"),
        Just("/v1.0/groups/{}/members"),
        Just("/v1.0/users?$filter={}"),
        Just("/_emulator/connections/tickets/items/seed/access?user={}"),
        Just("/_emulator/reset?tenant={}"),
        Just("/_emulator/report?tenant={}"),
    ];
    proptest!(config, |(text in text, template in template)| {
        let encoded: String = percent_encode(&text);
        let path = template.replace("{}", &encoded);
        // Resets of a hostile tenant id are refusals or no-ops; the seeded tenant is untouched.
        let method = if path.starts_with("/_emulator/reset") { reqwest::Method::POST } else { reqwest::Method::GET };
        runtime.block_on(check(&app, "", method, app.url(&path), None))?;
    });
    let reply = runtime.block_on(app.get("/v1.0/external/connections/tickets/items/seed"));
    assert_eq!(reply.status, 200, "{}", reply.body);
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
