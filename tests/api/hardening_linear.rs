//! Requests that used to take quadratic time, stall every tenant or panic: each is now answered
//! promptly with the right answer or Graph's `400`. Every wait is guarded by a generous timeout,
//! so a regression fails the test instead of hanging it; nothing asserts on measured time.

use std::future::Future;
use std::time::Duration;

use gcemu::config::Config;
use serde_json::{json, Value};

use crate::helpers::{token, TestApp};
use crate::items::{everyone, ready_app};
use crate::search::{search_as, token_for};

/// Far above what linear work takes here; far below what the former quadratic code took.
const GUARD: Duration = Duration::from_secs(30);

async fn within_guard<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(GUARD, future)
        .await
        .unwrap_or_else(|_| panic!("{what} is answered within {GUARD:?}"))
}

fn schema_body(properties: Value) -> Value {
    json!({"baseType": "microsoft.graph.externalItem", "properties": properties})
}

#[tokio::test]
async fn an_html_item_of_megabytes_of_script_tags_is_indexed_and_then_searched() {
    let app = ready_app(Config::for_tests()).await;
    let reply = app
        .post(
            "/v1.0/users",
            &json!({"id": "6e5c6a46-3c1f-4a43-9f2e-0b1d6a7e0c11", "userPrincipalName": "adele@contoso.com", "displayName": "Adele", "accountEnabled": true}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let mut html = String::from("<p>Printer manual</p>");
    while html.len() < 3 * 1024 * 1024 {
        html.push_str("<script></script><STYLE>p{}</Style>é<ScRiPt>var a = '<b>';</SCRIPT>");
    }
    html.push_str("<p>duplex <b>jobs</b> on floor 3</p><script>unterminated");
    let reply = app
        .put(
            "/v1.0/external/connections/tickets/items/manual",
            &json!({"acl": everyone(), "properties": {"title": "Manual"}, "content": {"type": "html", "value": html}}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let token = token_for(&app, "adele@contoso.com").await;
    let request = json!({"entityTypes": ["externalItem"], "contentSources": ["/external/connections/tickets"], "query": {"queryString": "duplex"}});
    let reply = within_guard(
        "a search behind the indexing of the item",
        search_as(&app, &token, request),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let hits = &reply.body["value"][0]["hitsContainers"][0]["hits"];
    assert_eq!(hits.as_array().map(Vec::len), Some(1), "{}", reply.body);
    assert_eq!(hits[0]["hitId"], "manual");
    let summary = hits[0]["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("<c0>duplex</c0>"), "{summary}");
    assert!(
        !summary.contains("var a"),
        "script content is not text: {summary}"
    );
}

#[tokio::test]
async fn a_non_ascii_filter_character_gets_the_graph_400_envelope() {
    let app = TestApp::spawn().await;
    app.create_connection("tickets").await;
    for filter in ["é", "naïve eq", "name eq 'x' and ü", "日本", "name eq 'é"] {
        let reply = app
            .get(&format!("/v1.0/external/connections?$filter={filter}"))
            .await;
        reply.assert_error(400, "InvalidRequest");
        assert!(
            reply.error_message().starts_with("Invalid filter clause"),
            "{filter}: {}",
            reply.body
        );
    }
    let reply = app
        .get("/v1.0/external/connections?$filter=name eq 'tickets name é'")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["value"], json!([]));
}

/// The longest request target the HTTP stack takes is just under 64 KiB (`http::Uri` keeps
/// offsets in 16 bits); these filters come close to it once percent-encoded.
const URI_BUDGET: usize = 63 * 1024;

#[tokio::test]
async fn a_filter_as_long_as_the_server_accepts_is_answered_promptly() {
    let app = TestApp::spawn().await;
    app.create_connection("tickets").await;
    let condition = "name eq 'tickets name' and ";
    let encoded_condition_len = 42;
    let conditions = condition.repeat(URI_BUDGET / encoded_condition_len - 1);
    let nonsense = format!("$filter=é{conditions}bogus");
    let reply = within_guard(
        "a long malformed filter",
        app.get(&format!("/v1.0/external/connections?{nonsense}")),
    )
    .await;
    reply.assert_error(400, "InvalidRequest");
    assert!(
        reply.error_message().len() < 400,
        "the message quotes only the start of the filter"
    );
    let valid = format!("$filter={conditions}id eq 'tickets'");
    let reply = within_guard(
        "a long valid filter",
        app.get(&format!("/v1.0/external/connections?{valid}")),
    )
    .await;
    assert_eq!(reply.status, 200, "status of a long valid filter");
    assert_eq!(reply.body["value"][0]["id"], "tickets");
    let word = "x".repeat(URI_BUDGET);
    let reply = within_guard(
        "a long word",
        app.get(&format!("/v1.0/external/connections?$filter={word}")),
    )
    .await;
    reply.assert_error(400, "InvalidRequest");
}

#[tokio::test]
async fn a_schema_with_a_million_aliases_gets_a_prompt_400_and_other_tenants_keep_writing() {
    let app = TestApp::spawn().await;
    app.create_connection("tickets").await;
    let aliases: Vec<String> = (0..1_000_000).map(|i| format!("a{i}")).collect();
    let body = schema_body(json!([{"name": "title", "type": "String", "aliases": aliases}]));
    let other_tenant = token(json!({"tid": "tenant-b", "appid": "app-b"}));
    let create_elsewhere = app.send(
        app.client
            .post(app.url("/v1.0/external/connections"))
            .bearer_auth(&other_tenant)
            .json(&json!({"id": "elsewhere", "name": "elsewhere"})),
    );
    let patch = app.patch("/v1.0/external/connections/tickets/schema", &body);
    let (patched, created) = within_guard("the schema and the other tenant's write", async {
        tokio::join!(patch, create_elsewhere)
    })
    .await;
    patched.assert_error(400, "InvalidRequest");
    assert_eq!(
        patched.error_message(),
        "Property 'title' has 1000000 aliases; a property may have at most 32.",
        "{}",
        patched.body
    );
    assert_eq!(patched.body["error"]["target"], "properties[0].aliases");
    assert_eq!(created.status, 201, "{}", created.body);
    app.get("/v1.0/external/connections/tickets/schema")
        .await
        .assert_error(404, "ItemNotFound");
}

#[tokio::test]
async fn a_schema_with_half_a_million_properties_gets_a_prompt_400() {
    let app = TestApp::spawn().await;
    app.create_connection("tickets").await;
    let properties: Vec<Value> = (0..500_000)
        .map(|i| json!({"name": format!("p{i}"), "type": "Int64"}))
        .collect();
    let reply = within_guard(
        "a schema of half a million properties",
        app.patch(
            "/v1.0/external/connections/tickets/schema",
            &schema_body(Value::Array(properties)),
        ),
    )
    .await;
    reply.assert_error(400, "InvalidRequest");
    assert!(
        reply.error_message().contains("1 to 128 properties"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn alias_and_label_limits_are_refused_naming_the_property_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    app.create_connection("tickets").await;
    let aliases: Vec<String> = (0..33).map(|i| format!("a{i}")).collect();
    let labels = vec!["title"; 55];
    for (property, target, limit) in [
        (
            json!({"name": "status", "type": "String", "aliases": aliases}),
            "properties[1].aliases",
            "at most 32",
        ),
        (
            json!({"name": "status", "type": "String", "isRetrievable": true, "labels": labels}),
            "properties[1].labels",
            "at most 54",
        ),
    ] {
        let reply = app
            .patch(
                "/v1.0/external/connections/tickets/schema",
                &schema_body(json!([{"name": "title", "type": "String"}, property])),
            )
            .await;
        reply.assert_error(400, "InvalidRequest");
        assert!(
            reply.error_message().contains("'status'") && reply.error_message().contains(limit),
            "{}",
            reply.body
        );
        assert_eq!(reply.body["error"]["target"], target);
    }
    let max: Vec<String> = (0..32).map(|i| format!("a{i}")).collect();
    app.register_schema(
        "tickets",
        json!([{"name": "status", "type": "String", "aliases": max}]),
    )
    .await;
    let schema = app.get("/v1.0/external/connections/tickets/schema").await;
    assert_eq!(schema.body["properties"][0]["aliases"][31], "a31");
}

/// A fixtures document with 20,000 directory groups (each with a member), 20,000 external groups
/// and 20,000 declarations of one tenant is loaded and exported in time linear in its size.
#[tokio::test]
async fn a_fixtures_document_with_tens_of_thousands_of_groups_loads_and_exports() {
    let app = TestApp::spawn().await;
    let n = 20_000;
    let groups: Vec<Value> = (0..n)
        .map(|g| json!({"id": format!("g{g}"), "displayName": "G", "members": ["u@contoso.com"]}))
        .collect();
    let external: Vec<Value> = (0..n)
        .map(|g| json!({"id": format!("x{g}"), "members": [{"id": "u@contoso.com", "type": "user"}]}))
        .collect();
    // The same tenant declared many times: merged into one declaration.
    let mut tenants = vec![json!({
        "users": [{"userPrincipalName": "u@contoso.com", "displayName": "U"}],
        "groups": groups,
        "connections": [{"id": "wide", "name": "Wide", "groups": external}],
    })];
    tenants.extend((0..n).map(|_| json!({"id": "00000000-0000-0000-0000-000000000001"})));
    let loaded = within_guard(
        "loading",
        app.post("/_emulator/fixtures", &json!({"tenants": tenants})),
    )
    .await;
    assert_eq!(loaded.status, 200, "{}", loaded.body);
    assert_eq!(loaded.body["created"]["groupMembers"], n);
    let exported = within_guard("exporting", app.get("/_emulator/fixtures")).await;
    assert_eq!(exported.status, 200);
    let tenant = &exported.body["tenants"][0];
    assert_eq!(tenant["groups"].as_array().unwrap().len(), n);
    assert_eq!(
        tenant["groups"][n - 1]["members"].as_array().unwrap().len(),
        1
    );
    let external = &tenant["connections"][0]["groups"];
    assert_eq!(external.as_array().unwrap().len(), n);
    assert_eq!(external[0]["members"][0]["type"], "user");
}
