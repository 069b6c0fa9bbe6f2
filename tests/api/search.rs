//! `POST /search/query` (spec/search.md) through HTTP: trimming per persona across pages, the
//! request rules, the KQL subset, fields, aggregations and read-your-writes.

use std::collections::BTreeSet;

use gcemu::config::Config;
use serde_json::{json, Value};

use crate::access::{build_tenant, put_sample_items, sample_items};
use crate::helpers::{Reply, TestApp};
use crate::items::{everyone, ready_app};

pub async fn token_for(app: &TestApp, user: &str) -> String {
    let reply = app.post("/_emulator/token", &json!({"user": user})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["access_token"].as_str().unwrap().to_string()
}

pub async fn search_as(app: &TestApp, token: &str, request: Value) -> Reply {
    app.send(
        app.client
            .post(app.url("/v1.0/search/query"))
            .bearer_auth(token)
            .json(&json!({"requests": [request]})),
    )
    .await
}

fn request(query: &str) -> Value {
    json!({"entityTypes": ["externalItem"], "contentSources": ["/external/connections/tickets"], "query": {"queryString": query}})
}

fn hit_ids(reply: &Reply) -> Vec<String> {
    reply.body["value"][0]["hitsContainers"][0]["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("no hits in {}", reply.body))
        .iter()
        .map(|hit| hit["hitId"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn every_persona_sees_exactly_what_the_explain_endpoint_allows_across_pages() {
    let app = ready_app(Config::for_tests()).await;
    build_tenant(&app).await;
    put_sample_items(&app).await;
    let personas = [
        "adele@contoso.com",
        "bob@contoso.com",
        "carol@contoso.com",
        "dave@contoso.com",
        "fiona_fabrikam.com#EXT#@contoso.com",
        "erin@contoso.com",
    ];
    for persona in personas {
        let mut allowed = BTreeSet::new();
        for (item, _) in sample_items() {
            let encoded = persona.replace('#', "%23");
            let explained = app
                .get(&format!(
                    "/_emulator/connections/tickets/items/{item}/access?user={encoded}"
                ))
                .await;
            if explained.body["allowed"] == true {
                allowed.insert(item.to_string());
            }
        }
        let token = token_for(&app, persona).await;
        let mut seen = BTreeSet::new();
        let mut from = 0;
        loop {
            let mut paged = request("*");
            paged["from"] = json!(from);
            paged["size"] = json!(3);
            let reply = search_as(&app, &token, paged).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            let container = &reply.body["value"][0]["hitsContainers"][0];
            assert_eq!(
                container["total"],
                allowed.len(),
                "{persona}: total counts only visible items"
            );
            let ids = hit_ids(&reply);
            for (offset, hit) in container["hits"].as_array().unwrap().iter().enumerate() {
                assert_eq!(hit["rank"], from + offset + 1);
            }
            seen.extend(ids.iter().cloned());
            from += 3;
            assert_eq!(
                container["moreResultsAvailable"],
                from < allowed.len(),
                "{persona} at {from}"
            );
            if from >= allowed.len() {
                break;
            }
        }
        assert_eq!(seen, allowed, "{persona}");
    }
}

#[tokio::test]
async fn invalid_requests_get_400_and_app_only_tokens_403() {
    let app = ready_app(Config::for_tests()).await;
    build_tenant(&app).await;
    let token = token_for(&app, "adele@contoso.com").await;
    let mut no_sources = request("printer");
    no_sources.as_object_mut().unwrap().remove("contentSources");
    let reply = search_as(&app, &token, no_sources).await;
    reply.assert_error(400, "InvalidRequest");
    assert_eq!(reply.error_message(), "SearchRequest Invalid Content Source cannot be null or empty for entity type - ExternalItem");
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"entityTypes": ["externalItem"], "contentSources": ["/external/connections/nosuch"], "query": {"queryString": "x"}}),
            "does not exist",
        ),
        (
            json!({"entityTypes": ["driveItem"], "contentSources": ["/external/connections/tickets"], "query": {"queryString": "x"}}),
            "driveItem",
        ),
        (
            json!({"entityTypes": ["externalItem"], "contentSources": ["/external/connections/tickets"]}),
            "query",
        ),
        (
            {
                let mut r = request("x");
                r["size"] = json!(1001);
                r
            },
            "1000",
        ),
        (
            {
                let mut r = request("x");
                r["from"] = json!(-1);
                r
            },
            "from",
        ),
        (request("(printer"), "not closed"),
        (request("score:3"), "not queryable"),
        (request("nosuchprop:3"), "not a property"),
        (request("priority:high"), "not a valid int64"),
        (
            {
                let mut r = request("x");
                r["sortProperties"] = json!([{"name": "title"}]);
                r
            },
            "only refinable",
        ),
        (
            {
                let mut r = request("x");
                r["sortProperties"] = json!([{"name": "status"}, {"name": "status"}, {"name": "status"}, {"name": "status"}, {"name": "status"}, {"name": "status"}]);
                r
            },
            "most 5",
        ),
        (
            {
                let mut r = request("x");
                r["aggregations"] =
                    json!([{"field": "title", "bucketDefinition": {"sortBy": "count"}}]);
                r
            },
            "only refinable",
        ),
    ];
    for (body, expected) in cases {
        let reply = search_as(&app, &token, body.clone()).await;
        reply.assert_error(400, "InvalidRequest");
        assert!(
            reply.error_message().contains(expected),
            "{body}: {}",
            reply.error_message()
        );
    }
    let app_token = app
        .post(
            "/_emulator/token",
            &json!({"app": "app-1", "roles": ["ExternalItem.Read.All"]}),
        )
        .await
        .body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    search_as(&app, &app_token, request("x"))
        .await
        .assert_error(403, "Forbidden");
    app.post("/_emulator/token", &json!({"user": "nobody@contoso.com"}))
        .await
        .assert_error(404, "ItemNotFound");
}

async fn ticket_corpus(app: &TestApp) {
    let items = [
        (
            "T1",
            "Printer jam on floor 3",
            "open",
            1,
            "2024-01-15T10:00:00Z",
            json!(["hw", "floor3"]),
            "<p>The <b>printer</b> jams on duplex jobs.</p>",
        ),
        (
            "T2",
            "Laptop battery",
            "closed",
            2,
            "2024-02-10T10:00:00Z",
            json!(["hw"]),
            "<p>Battery drains overnight.</p>",
        ),
        (
            "T3",
            "VPN outage",
            "open",
            3,
            "2024-03-05T10:00:00Z",
            json!(["network"]),
            "<p>Remote staff cannot reach the printer queue.</p>",
        ),
        (
            "T4",
            "Printing presses",
            "new",
            5,
            "2024-03-20T10:00:00Z",
            json!(["facilities"]),
            "<p>Print shop order.</p>",
        ),
    ];
    for (id, title, status, priority, created, tags, content) in items {
        let body = json!({"acl": everyone(), "properties": {"title": title, "status": status, "priority": priority, "created": created,
                          "tags@odata.type": "Collection(String)", "tags": tags, "score": 0.5},
                          "content": {"type": "html", "value": content}});
        assert_eq!(
            app.put(
                &format!("/v1.0/external/connections/tickets/items/{id}"),
                &body
            )
            .await
            .status,
            200
        );
    }
}

#[tokio::test]
async fn the_query_language_subset_matches_as_documented() {
    let app = ready_app(Config::for_tests()).await;
    build_tenant(&app).await;
    ticket_corpus(&app).await;
    let token = token_for(&app, "adele@contoso.com").await;
    let cases: &[(&str, &[&str])] = &[
        ("printer", &["T1", "T3"]),
        ("printer jam", &["T1"]),
        ("printer OR battery", &["T1", "T2", "T3"]),
        ("printer NOT vpn", &["T1"]),
        ("printer -vpn", &["T1"]),
        ("\"duplex jobs\"", &["T1"]),
        ("\"jobs duplex\"", &[]),
        ("print*", &["T1", "T3", "T4"]),
        ("status:open", &["T1", "T3"]),
        ("status:\"closed\"", &["T2"]),
        ("(status:open OR status:new) printer", &["T1", "T3"]),
        ("priority>=3", &["T3", "T4"]),
        ("priority<2", &["T1"]),
        ("priority:2..3", &["T2", "T3"]),
        ("priority=5", &["T4"]),
        ("created>=2024-03-01T00:00:00.000Z", &["T3", "T4"]),
        (
            "created:2024-01-01T00:00:00Z..2024-02-28T00:00:00Z",
            &["T1", "T2"],
        ),
        ("created:2024-03-05", &["T3"]),
        ("hw", &["T1", "T2"]),
        ("FLOOR", &["T1"]),
        ("*", &["T1", "T2", "T3", "T4"]),
        ("*  status:new", &["T4"]),
    ];
    for (query, expected) in cases {
        let reply = search_as(&app, &token, request(query)).await;
        assert_eq!(reply.status, 200, "{query}: {}", reply.body);
        let mut ids = hit_ids(&reply);
        ids.sort();
        assert_eq!(ids, *expected, "{query}");
    }
    let reply = search_as(&app, &token, request("printer status:open")).await;
    assert_eq!(reply.body["value"][0]["searchTerms"], json!(["printer"]));
    let hit = &reply.body["value"][0]["hitsContainers"][0]["hits"][0];
    assert!(
        hit["summary"]
            .as_str()
            .unwrap()
            .contains("<c0>printer</c0>"),
        "{hit}"
    );
    assert_eq!(
        hit["resource"]["@odata.type"],
        "#microsoft.graph.externalConnectors.externalItem"
    );
    assert_eq!(hit["contentSource"], "tickets");
}

#[tokio::test]
async fn fields_aggregations_filters_and_sorting() {
    let app = ready_app(Config::for_tests()).await;
    build_tenant(&app).await;
    ticket_corpus(&app).await;
    let token = token_for(&app, "adele@contoso.com").await;

    let mut selected = request("battery");
    selected["fields"] = json!(["label_title", "priority", "estimates", "nosuch"]);
    let reply = search_as(&app, &token, selected).await;
    assert_eq!(
        reply.body["value"][0]["hitsContainers"][0]["hits"][0]["resource"]["properties"],
        json!({"title": "Laptop battery", "priority": 2})
    );
    let reply = search_as(&app, &token, request("battery")).await;
    let all = &reply.body["value"][0]["hitsContainers"][0]["hits"][0]["resource"]["properties"];
    assert_eq!(
        all["status"], "closed",
        "every retrievable property without fields"
    );
    assert_eq!(all["tags"], json!(["hw"]));

    let mut aggregated = request("*");
    aggregated["aggregations"] = json!([
        {"field": "status", "size": 10, "bucketDefinition": {"sortBy": "count", "isDescending": true, "minimumCount": 1}},
        {"field": "priority", "size": 2, "bucketDefinition": {"sortBy": "keyAsNumber", "isDescending": false}}
    ]);
    let reply = search_as(&app, &token, aggregated.clone()).await;
    let aggregations = &reply.body["value"][0]["hitsContainers"][0]["aggregations"];
    assert_eq!(aggregations[0]["field"], "status");
    assert_eq!(aggregations[0]["buckets"][0]["key"], "open");
    assert_eq!(aggregations[0]["buckets"][0]["count"], 2);
    assert_eq!(aggregations[0]["buckets"].as_array().unwrap().len(), 3);
    assert_eq!(
        aggregations[1]["buckets"],
        json!([
            {"key": "1", "count": 1, "aggregationFilterToken": "\"ǂǂ31\""},
            {"key": "2", "count": 1, "aggregationFilterToken": "\"ǂǂ32\""}
        ])
    );
    let token_of_open = aggregations[0]["buckets"][0]["aggregationFilterToken"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(token_of_open, "\"ǂǂ6f70656e\"");
    let mut filtered = aggregated.clone();
    filtered["aggregationFilters"] = json!([format!("status:{token_of_open}")]);
    let reply = search_as(&app, &token, filtered).await;
    let mut ids = hit_ids(&reply);
    ids.sort();
    assert_eq!(ids, ["T1", "T3"]);
    let mut either = aggregated.clone();
    either["aggregationFilters"] = json!(["status:or(\"ǂǂ6f70656e\",\"new\")"]);
    assert_eq!(
        search_as(&app, &token, either).await.body["value"][0]["hitsContainers"][0]["total"],
        3
    );

    let mut sorted = request("*");
    sorted["sortProperties"] = json!([{"name": "priority", "isDescending": true}]);
    assert_eq!(
        hit_ids(&search_as(&app, &token, sorted).await),
        ["T4", "T3", "T2", "T1"]
    );
    let mut sorted = request("*");
    sorted["sortProperties"] =
        json!([{"name": "status"}, {"name": "priority", "isDescending": true}]);
    assert_eq!(
        hit_ids(&search_as(&app, &token, sorted).await),
        ["T2", "T4", "T3", "T1"]
    );
}

#[tokio::test]
async fn several_requests_and_content_sources_are_answered_together() {
    let app = ready_app(Config::for_tests()).await;
    build_tenant(&app).await;
    ticket_corpus(&app).await;
    app.create_connection("wiki").await;
    app.register_schema(
        "wiki",
        json!([{"name": "title", "type": "String", "isSearchable": true, "isRetrievable": true}]),
    )
    .await;
    app.put(
        "/v1.0/external/connections/wiki/items/W1",
        &json!({"acl": everyone(), "properties": {"title": "Printer how-to"}}),
    )
    .await;
    let token = token_for(&app, "adele@contoso.com").await;
    let body = json!({"requests": [
        {"entityTypes": ["externalItem"], "contentSources": ["/external/connections/tickets", "/external/connections/wiki"], "query": {"queryString": "printer"}},
        {"entityTypes": ["externalItem"], "contentSources": ["/external/connections/wiki"], "query": {"queryString": "how"}}
    ]});
    let reply = app
        .send(
            app.client
                .post(app.url("/beta/search/query"))
                .bearer_auth(&token)
                .json(&body),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["value"].as_array().unwrap().len(), 2);
    let merged = &reply.body["value"][0]["hitsContainers"][0];
    assert_eq!(merged["total"], 3);
    let sources: BTreeSet<&str> = merged["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["contentSource"].as_str().unwrap())
        .collect();
    assert_eq!(sources, BTreeSet::from(["tickets", "wiki"]));
    assert_eq!(reply.body["value"][1]["hitsContainers"][0]["total"], 1);
}

#[tokio::test]
async fn writes_and_membership_changes_are_visible_to_the_next_search() {
    let app = ready_app(Config::for_tests()).await;
    build_tenant(&app).await;
    let token = token_for(&app, "erin@contoso.com").await;
    for round in 0..20 {
        let id = format!("R{round}");
        let body = json!({"acl": [{"type": "externalGroup", "value": "readers", "accessType": "grant"}], "properties": {"title": format!("quokka {round}")}});
        assert_eq!(
            app.put(
                &format!("/v1.0/external/connections/tickets/items/{id}"),
                &body
            )
            .await
            .status,
            200
        );
    }
    assert_eq!(
        search_as(&app, &token, request("quokka")).await.body["value"][0]["hitsContainers"][0]
            ["total"],
        0
    );
    app.post(
        "/v1.0/external/connections/tickets/groups",
        &json!({"id": "readers"}),
    )
    .await;
    app.post(
        "/v1.0/external/connections/tickets/groups/readers/members",
        &json!({"id": "erin@contoso.com", "type": "user"}),
    )
    .await;
    assert_eq!(
        search_as(&app, &token, request("quokka")).await.body["value"][0]["hitsContainers"][0]
            ["total"],
        20,
        "membership applies at once"
    );
    app.delete("/v1.0/external/connections/tickets/items/R3")
        .await;
    app.put(
        "/v1.0/external/connections/tickets/items/R4",
        &json!({"acl": everyone(), "properties": {"title": "wombat"}}),
    )
    .await;
    assert_eq!(
        search_as(&app, &token, request("quokka")).await.body["value"][0]["hitsContainers"][0]
            ["total"],
        18,
        "writes apply at once"
    );
    assert_eq!(
        hit_ids(&search_as(&app, &token, request("wombat")).await),
        ["R4"]
    );
}

/// A tenant whose index shows writes 30 s (by the emulator clock) after they are acknowledged,
/// and Adele's token.
async fn lagged_tenant() -> (TestApp, String) {
    let mut config = Config::for_tests();
    config.index_lag = std::time::Duration::from_secs(30);
    let app = ready_app(config).await;
    build_tenant(&app).await;
    let token = token_for(&app, "adele@contoso.com").await;
    (app, token)
}

fn total(reply: Reply) -> u64 {
    reply.body["value"][0]["hitsContainers"][0]["total"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn index_lag_delays_visibility_by_the_emulator_clock() {
    let (app, token) = lagged_tenant().await;
    let item = |title: &str| json!({"acl": everyone(), "properties": {"title": title}});
    assert_eq!(
        app.put(
            "/v1.0/external/connections/tickets/items/L1",
            &item("quokka one")
        )
        .await
        .status,
        200
    );
    assert_eq!(
        app.get("/v1.0/external/connections/tickets/items/L1")
            .await
            .status,
        200,
        "the store has it at once"
    );
    assert_eq!(
        total(search_as(&app, &token, request("quokka")).await),
        0,
        "search does not, yet"
    );
    app.advance_clock(29).await;
    assert_eq!(total(search_as(&app, &token, request("quokka")).await), 0);
    app.advance_clock(1).await;
    assert_eq!(
        total(search_as(&app, &token, request("quokka")).await),
        1,
        "visible once the lag has passed"
    );

    app.put(
        "/v1.0/external/connections/tickets/items/L1",
        &item("wombat one"),
    )
    .await;
    assert_eq!(
        total(search_as(&app, &token, request("quokka")).await),
        1,
        "the old version stays visible during the lag"
    );
    assert_eq!(total(search_as(&app, &token, request("wombat")).await), 0);
    app.delete("/v1.0/external/connections/tickets/items/L1")
        .await;
    app.advance_clock(30).await;
    assert_eq!(total(search_as(&app, &token, request("quokka")).await), 0);
    assert_eq!(
        total(search_as(&app, &token, request("wombat")).await),
        0,
        "the deletion applied after the lag too"
    );
}

/// A connection index filled from the store while a write is still held back by the index lag
/// (here: a schema change gives the index a new mapping, so it is rebuilt) leaves that write out
/// until the clock reaches it, as the index lag promises. Found as a rare flake of the test above,
/// when the indexer applied the first schema after the item's write.
#[tokio::test]
async fn an_index_rebuilt_during_the_lag_shows_nothing_early() {
    let (app, token) = lagged_tenant().await;
    let put = app
        .put(
            "/v1.0/external/connections/tickets/items/L9",
            &json!({"acl": everyone(), "properties": {"title": "numbat nine"}}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    // A new searchable property: a new mapping, an index filled from SQLite.
    let mut schema = crate::items::ticket_schema();
    schema.as_array_mut().unwrap().push(
        json!({"name": "summary", "type": "String", "isSearchable": true, "isRetrievable": true}),
    );
    app.register_schema("tickets", schema).await;
    assert_eq!(
        total(search_as(&app, &token, request("numbat")).await),
        0,
        "the rebuilt index does not show the held-back write"
    );
    app.advance_clock(30).await;
    assert_eq!(
        total(search_as(&app, &token, request("numbat")).await),
        1,
        "it arrives when the lag has passed"
    );
}
