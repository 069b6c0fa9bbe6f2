//! Regression tests for the hardening issue: requests that used to abort, freeze or corrupt the
//! server. Each is sized to run fast, and asserts on the answer arriving (inside a generous
//! timeout that only a hang would reach), never on measured time.

use std::time::Duration;

use gcemu::config::Config;
use serde_json::{json, Value};

use crate::helpers::{Reply, TestApp};
use crate::items::{everyone, ready_app};
use crate::search::{search_as, token_for};

const ITEMS: &str = "/v1.0/external/connections/tickets/items";

/// A directory user who may search, and a token for them.
async fn searcher(app: &TestApp) -> String {
    let reply = app
        .post(
            "/v1.0/users",
            &json!({"id": "adele-id", "userPrincipalName": "adele@contoso.com", "displayName": "Adele", "accountEnabled": true}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    token_for(app, "adele@contoso.com").await
}

fn request(query: &str) -> Value {
    json!({"entityTypes": ["externalItem"], "contentSources": ["/external/connections/tickets"], "query": {"queryString": query}})
}

fn total(reply: &Reply) -> u64 {
    reply.body["value"][0]["hitsContainers"][0]["total"]
        .as_u64()
        .unwrap_or_else(|| panic!("no total in {}", reply.body))
}

/// Puts `n` items titled `printer <i>` with priority `i`, visible to everyone.
async fn put_items(app: &TestApp, n: usize) {
    for i in 0..n {
        let reply = app
            .put(
                &format!("{ITEMS}/item{i}"),
                &json!({"acl": everyone(), "properties": {"title": format!("printer {i}"), "priority": i}}),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
}

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .unwrap_or_else(|_| panic!("{what} was not answered within 60 s"))
}

#[tokio::test]
async fn a_chain_of_200_nots_is_answered_and_deep_nesting_is_a_400() {
    let app = ready_app(Config::for_tests()).await;
    let token = searcher(&app).await;
    put_items(&app, 2).await;
    let chain = format!("{}printer", "NOT ".repeat(200));
    let reply = within("200 NOTs", search_as(&app, &token, request(&chain))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(total(&reply), 2, "an even chain of NOTs is the term itself");
    let odd = format!("{}printer", "NOT ".repeat(201));
    let reply = search_as(&app, &token, request(&odd)).await;
    assert_eq!(total(&reply), 0);
    let nested = format!("{}printer{}", "NOT (".repeat(300), ")".repeat(300));
    let reply = within("300 nested NOTs", search_as(&app, &token, request(&nested))).await;
    reply.assert_error(400, reply.error_code());
    assert!(
        reply.error_message().contains("too deeply"),
        "{}",
        reply.body
    );
    // The server still serves.
    let reply = search_as(&app, &token, request("printer")).await;
    assert_eq!(total(&reply), 2);
}

#[tokio::test]
async fn a_query_template_that_would_expand_to_terabytes_is_refused_without_building_it() {
    let app = ready_app(Config::for_tests()).await;
    let token = searcher(&app).await;
    let mut body = request(&"a".repeat(4000));
    body["query"]["queryTemplate"] = json!("{searchTerms}".repeat(1_000_000));
    let reply = within("a 13 MB template", search_as(&app, &token, body)).await;
    reply.assert_error(400, reply.error_code());
    assert!(
        reply.error_message().contains("expands to more than"),
        "{}",
        reply.error_message()
    );
    assert!(
        reply.body.to_string().len() < 2000,
        "the error does not echo the template"
    );
    let mut body = request("printer");
    body["query"]["queryTemplate"] = json!("{searchTerms} OR {searchTerms}");
    assert_eq!(search_as(&app, &token, body).await.status, 200);
}

#[tokio::test]
async fn searches_during_a_mapping_change_see_every_item_and_the_new_schema_at_once() {
    let app = ready_app(Config::for_tests()).await;
    let token = searcher(&app).await;
    put_items(&app, 1500).await;
    app.wait_for_index().await;
    // A new refinable property changes the index mapping: the index is rebuilt from the store.
    let mut properties = crate::items::ticket_schema();
    properties.as_array_mut().unwrap().push(
        json!({"name": "owner", "type": "String", "isQueryable": true, "isRetrievable": true, "isRefinable": true}),
    );
    let searches = {
        let (address, token) = (app.address.clone(), token.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut totals = Vec::new();
            for _ in 0..20 {
                let reply: Value = client
                    .post(format!("{address}/v1.0/search/query"))
                    .bearer_auth(&token)
                    .json(&json!({"requests": [request("printer")]}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                totals.push(reply["value"][0]["hitsContainers"][0]["total"].clone());
            }
            totals
        })
    };
    app.register_schema("tickets", properties).await;
    // Right after the operation reads `completed`, the new property can be aggregated on.
    let mut aggregate = request("printer");
    aggregate["aggregations"] = json!([{"field": "owner", "size": 5}]);
    let reply = within("an aggregation", search_as(&app, &token, aggregate)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(total(&reply), 1500);
    let totals = within("searches during the rebuild", searches)
        .await
        .unwrap();
    assert!(
        totals.iter().all(|total| *total == json!(1500)),
        "every search saw all items: {totals:?}"
    );
}

#[tokio::test]
async fn a_connection_index_whose_directory_vanished_is_rebuilt_and_keeps_indexing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests();
    config.persistence = gcemu::config::Persistence::DataDir(dir.path().to_path_buf());
    let app = ready_app(config).await;
    let token = searcher(&app).await;
    put_items(&app, 20).await;
    app.wait_for_index().await;
    // Every commit into the old directory now fails (as on a full or broken disk).
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    put_items(&app, 25).await;
    let mut last = None;
    for _ in 0..100 {
        let reply = search_as(&app, &token, request("printer")).await;
        if reply.status == 200 && total(&reply) == 25 {
            let health = app.get("/_emulator/health").await;
            assert_eq!(health.status, 200, "{}", health.body);
            return;
        }
        // While it is rebuilt, the connection answers 503 with the reason, never stale results.
        if reply.status != 200 {
            reply.assert_error(503, "serviceNotAvailable");
        }
        last = Some(reply.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the index never recovered: {last:?}");
}

#[tokio::test]
async fn the_clock_cannot_be_advanced_past_a_century_and_operations_stay_readable() {
    let mut config = Config::for_tests();
    config.schema_delay = Duration::from_secs(60);
    let app = TestApp::spawn_with(config).await;
    app.create_connection("tickets").await;
    for _ in 0..3 {
        app.advance_clock(1_000_000_000).await;
    }
    let refused = app
        .post(
            "/_emulator/clock/advance",
            &json!({"seconds": 1_000_000_000u64}),
        )
        .await;
    refused.assert_error(400, refused.error_code());
    assert!(
        refused.error_message().contains("at most"),
        "{}",
        refused.body
    );
    // Registration with a delay still works at the far-future clock, and reads back.
    let reply = app
        .patch(
            "/v1.0/external/connections/tickets/schema",
            &json!({"baseType": "microsoft.graph.externalItem", "properties": crate::items::ticket_schema()}),
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let operation = app.send(app.client.get(reply.header("location"))).await;
    assert_eq!(operation.status, 200, "{}", operation.body);
    assert_eq!(operation.body["status"], "inprogress");
    app.advance_clock(60).await;
    let operation = app.send(app.client.get(reply.header("location"))).await;
    assert_eq!(operation.body["status"], "completed", "{}", operation.body);
}

#[tokio::test]
async fn search_bounds_requests_sources_and_aggregations_and_counts_a_source_once() {
    let app = ready_app(Config::for_tests()).await;
    let token = searcher(&app).await;
    put_items(&app, 3).await;
    let send = |body: Value| {
        app.send(
            app.client
                .post(app.url("/v1.0/search/query"))
                .bearer_auth(&token)
                .json(&body),
        )
    };
    let many: Vec<Value> = (0..21).map(|_| request("printer")).collect();
    let reply = send(json!({ "requests": many })).await;
    reply.assert_error(400, reply.error_code());
    let mut twice = request("printer");
    twice["contentSources"] = json!([
        "/external/connections/tickets",
        "/external/connections/TICKETS"
    ]);
    let reply = send(json!({ "requests": [twice] })).await;
    assert_eq!(total(&reply), 3, "a source named twice is counted once");
    let mut aggregations = request("printer");
    aggregations["aggregations"] = json!((0..21)
        .map(|_| json!({"field": "priority", "size": 5}))
        .collect::<Vec<_>>());
    let reply = send(json!({ "requests": [aggregations] })).await;
    reply.assert_error(400, reply.error_code());
    let mut buckets = request("printer");
    buckets["aggregations"] = json!([{"field": "priority", "size": 70000}]);
    let reply = send(json!({ "requests": [buckets] })).await;
    reply.assert_error(400, reply.error_code());
}

#[tokio::test]
async fn pages_are_exact_when_only_the_best_matches_are_kept() {
    let app = ready_app(Config::for_tests()).await;
    let token = searcher(&app).await;
    put_items(&app, 1300).await;
    for (from, size) in [(0usize, 3usize), (1295, 10), (600, 4)] {
        let mut paged = request("*");
        paged["from"] = json!(from);
        paged["size"] = json!(size);
        paged["sortProperties"] = json!([{"name": "priority", "isDescending": true}]);
        let reply = search_as(&app, &token, paged).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(total(&reply), 1300);
        let ids: Vec<String> = reply.body["value"][0]["hitsContainers"][0]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|hit| hit["hitId"].as_str().unwrap().to_string())
            .collect();
        let expected: Vec<String> = (0..1300)
            .rev()
            .skip(from)
            .take(size)
            .map(|i| format!("item{i}"))
            .collect();
        assert_eq!(ids, expected, "page from {from} size {size}");
    }
}

#[tokio::test]
async fn items_bound_inline_activities_and_acl_entries() {
    let app = ready_app(Config::for_tests()).await;
    let activity = json!({"@odata.type": "#microsoft.graph.externalConnectors.externalActivity", "type": "created", "startDateTime": "2024-05-01T10:00:00Z", "performedBy": {"type": "user", "id": "e811976d-83df-4cbd-8b9b-5215b18aa874"}});
    let reply = app
        .put(
            &format!("{ITEMS}/busy"),
            &json!({"acl": everyone(), "properties": {"title": "t"}, "activities": vec![activity; 21]}),
        )
        .await;
    reply.assert_error(400, reply.error_code());
    let acl: Vec<Value> = (0..10_001)
        .map(|i| json!({"type": "user", "value": format!("user-{i}"), "accessType": "grant"}))
        .collect();
    let reply = app
        .put(
            &format!("{ITEMS}/wide"),
            &json!({"acl": acl, "properties": {"title": "t"}}),
        )
        .await;
    reply.assert_error(400, reply.error_code());
    assert!(reply.error_message().contains("10000"), "{}", reply.body);
    assert_eq!(app.get(&format!("{ITEMS}/wide")).await.status, 404);
    assert_eq!(app.get(&format!("{ITEMS}/busy")).await.status, 404);
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408_and_the_server_keeps_serving() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = Config::for_tests();
    config.body_read_timeout = Duration::from_millis(500);
    let app = TestApp::spawn_with(config).await;
    let address = app.address.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(b"POST /v1.0/external/connections HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"id\":")
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = within("a stalled body", stream.read(&mut answer))
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("requestTimeout"), "{answer}");
    assert_eq!(app.get("/v1.0/external/connections").await.status, 200);
}

#[tokio::test]
async fn a_reset_racing_with_new_connections_leaves_every_surviving_connection_searchable() {
    let app = TestApp::spawn_with(Config::for_tests()).await;
    let token = searcher(&app).await;
    for round in 0..8 {
        let id = format!("race{round}");
        let reset = {
            let (client, url) = (app.client.clone(), app.url("/_emulator/reset"));
            tokio::spawn(async move { client.post(url).send().await.unwrap().status() })
        };
        let created = app
            .post(
                "/v1.0/external/connections",
                &json!({"id": id, "name": id, "description": "race"}),
            )
            .await;
        assert_eq!(reset.await.unwrap(), 204);
        if created.status != 201 {
            continue;
        }
        let schema = app
            .patch(
                &format!("/v1.0/external/connections/{id}/schema"),
                &json!({"baseType": "microsoft.graph.externalItem", "properties": crate::items::ticket_schema()}),
            )
            .await;
        if schema.status != 202 {
            continue; // the reset removed the connection first
        }
        let item = app
            .put(
                &format!("/v1.0/external/connections/{id}/items/one"),
                &json!({"acl": everyone(), "properties": {"title": "printer"}}),
            )
            .await;
        if item.status != 200 {
            continue;
        }
        // The user may have been reset too: recreate them and search.
        let _ = app
            .post(
                "/v1.0/users",
                &json!({"id": "adele-id", "userPrincipalName": "adele@contoso.com", "displayName": "Adele", "accountEnabled": true}),
            )
            .await;
        let mut body = request("printer");
        body["contentSources"] = json!([format!("/external/connections/{id}")]);
        let reply = search_as(&app, &token, body).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(total(&reply), 1, "round {round}: {}", reply.body);
    }
}

#[tokio::test]
async fn a_panicking_handler_is_answered_with_a_graph_500_and_the_server_keeps_serving() {
    let app = TestApp::spawn_with(Config::for_tests()).await;
    let router = axum::Router::new()
        .route(
            "/v1.0/boom",
            axum::routing::get(|| async {
                if true {
                    panic!("a bug in a handler");
                }
                "unreachable"
            }),
        )
        .layer(axum::middleware::from_fn_with_state(
            app.state.clone(),
            gcemu::http::context::request_context,
        ))
        .with_state(app.state.clone());
    let response = tower::ServiceExt::oneshot(
        router,
        axum::http::Request::get("/v1.0/boom")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 500);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "InternalServerError", "{body}");
    assert!(body["error"]["innerError"]["request-id"].is_string());
    let health = app.get("/_emulator/health").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body["status"], "ok");
}

#[test]
fn the_declared_toolchain_matches_the_readme_and_ci_builds_locked() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let version = manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("Cargo.toml declares rust-version");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains(&format!("Rust {version}")),
        "the README names Rust {version}"
    );
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    assert!(ci.contains("--locked"), ".ci/run builds with --locked");
}

#[tokio::test]
async fn tokens_naming_endless_user_ids_do_not_grow_the_principal_cache_without_bound() {
    let app = ready_app(Config::for_tests()).await;
    put_items(&app, 1).await;
    let limit = 40;
    app.state.principals.set_capacity(limit);
    // Unknown users are searched as members with no groups; each id would be a cache entry.
    let mut last = None;
    for i in 0..limit + 50 {
        let token = crate::helpers::token(
            json!({"oid": format!("ghost-{i}"), "scp": "ExternalItem.Read.All", "tid": "00000000-0000-0000-0000-000000000001"}),
        );
        let reply = search_as(&app, &token, request("printer")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        last = Some(total(&reply));
    }
    assert_eq!(last, Some(1));
    assert!(app.state.principals.len() <= limit);
}
