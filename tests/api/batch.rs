//! JSON batching (`POST /{version}/$batch`, spec/batch-and-retrieval.md §1) through HTTP: item
//! ingestion in a batch, dependsOn and 424, the three dependency patterns, every whole-batch
//! refusal, binary bodies, sub-response headers, beta, and tokens applying to sub-requests.

use base64::Engine;
use gcemu::config::Config;
use serde_json::{json, Value};

use crate::helpers::{token, Reply, TestApp};
use crate::items::{everyone, ready_app};
use crate::search::{search_as, token_for};

const BATCH: &str = "/v1.0/$batch";
const ITEMS: &str = "/external/connections/tickets/items";

fn item(title: &str) -> Value {
    json!({
        "acl": everyone(),
        "properties": {"title": title, "status": "open", "priority": 2},
        "content": {"type": "text", "value": format!("{title} batchword")}
    })
}

fn put(id: &str, item_id: &str, body: Value) -> Value {
    json!({
        "id": id,
        "method": "PUT",
        "url": format!("{ITEMS}/{item_id}"),
        "headers": {"Content-Type": "application/json"},
        "body": body
    })
}

fn get(id: &str, url: &str) -> Value {
    json!({"id": id, "method": "GET", "url": url})
}

fn depends(mut request: Value, on: &[&str]) -> Value {
    request["dependsOn"] = json!(on);
    request
}

async fn batch(app: &TestApp, path: &str, requests: Vec<Value>) -> Reply {
    app.post(path, &json!({ "requests": requests })).await
}

/// The responses, checked to be one per request, in request order.
fn responses<'a>(reply: &'a Reply, ids: &[&str]) -> &'a Vec<Value> {
    assert_eq!(reply.status, 200, "{}", reply.body);
    let responses = reply.body["responses"]
        .as_array()
        .unwrap_or_else(|| panic!("no responses in {}", reply.body));
    let got: Vec<&str> = responses
        .iter()
        .map(|response| response["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, ids, "response ids in request order");
    responses
}

fn statuses(reply: &Reply) -> Vec<u64> {
    reply.body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|response| response["status"].as_u64().unwrap())
        .collect()
}

/// A sub-response that is Graph's error envelope with this status and code.
#[track_caller]
fn assert_sub_error(response: &Value, status: u64, code: &str) {
    assert_eq!(response["status"], status, "{response}");
    let error = &response["body"]["error"];
    assert_eq!(error["code"], code, "{response}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{response}"
    );
    let inner = &error["innerError"];
    assert!(inner["date"].is_string(), "{response}");
    assert!(inner["request-id"].is_string(), "{response}");
    assert!(inner["client-request-id"].is_string(), "{response}");
    assert!(
        response["headers"]["Content-Type"]
            .as_str()
            .is_some_and(|value| value.starts_with("application/json")),
        "{response}"
    );
}

async fn searcher(app: &TestApp) -> String {
    let reply = app
        .post(
            "/v1.0/users",
            &json!({"userPrincipalName": "adele@contoso.com", "displayName": "Adele", "accountEnabled": true}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    token_for(app, "adele@contoso.com").await
}

fn hit_ids(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "{}", reply.body);
    let mut ids: Vec<String> = reply.body["value"][0]["hitsContainers"][0]["hits"]
        .as_array()
        .map(|hits| {
            hits.iter()
                .map(|hit| hit["hitId"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn search_request(query: &str) -> Value {
    json!({"entityTypes": ["externalItem"], "contentSources": ["/external/connections/tickets"],
           "query": {"queryString": query}, "size": 50})
}

#[tokio::test]
async fn twenty_item_puts_with_one_invalid_store_the_other_nineteen() {
    let app = ready_app(Config::for_tests()).await;
    let ids: Vec<String> = (1..=20).map(|n| format!("r{n}")).collect();
    let requests: Vec<Value> = (1..=20)
        .map(|n| {
            let mut body = item(&format!("Batch ticket {n}"));
            if n == 7 {
                body["properties"]["priority"] = json!("high");
            }
            put(&format!("r{n}"), &format!("B{n:02}"), body)
        })
        .collect();
    let reply = app
        .send(
            app.client
                .post(app.url(BATCH))
                .header("client-request-id", "batch-crid-1")
                .json(&json!({ "requests": requests })),
        )
        .await;
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let responses = responses(&reply, &id_refs);
    assert!(
        !reply.header("request-id").is_empty(),
        "the batch has a request-id"
    );
    assert_eq!(reply.header("client-request-id"), "batch-crid-1");
    assert!(reply.header("content-type").starts_with("application/json"));
    for (n, response) in (1..=20).zip(responses) {
        if n == 7 {
            assert_sub_error(response, 400, "BadRequest");
            assert!(
                response["body"]["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("priority"),
                "{response}"
            );
            assert_eq!(
                response["body"]["error"]["innerError"]["client-request-id"], "batch-crid-1",
                "sub-requests carry the batch's client-request-id"
            );
        } else {
            assert_eq!(response["status"], 200, "{response}");
            assert_eq!(response["body"]["id"], format!("B{n:02}"), "{response}");
            assert!(response["headers"]["Content-Type"]
                .as_str()
                .unwrap()
                .starts_with("application/json"));
            assert!(
                response["headers"].get("Request-Id").is_none(),
                "transport headers stay out"
            );
        }
    }

    for n in (1..=20).filter(|&n| n != 7) {
        let read = app.get(&format!("/v1.0{ITEMS}/B{n:02}")).await;
        assert_eq!(read.status, 200, "B{n:02}: {}", read.body);
        assert_eq!(
            read.body["properties"]["title"],
            format!("Batch ticket {n}")
        );
    }
    app.get(&format!("/v1.0{ITEMS}/B07"))
        .await
        .assert_error(404, "ItemNotFound");

    let token = searcher(&app).await;
    let found = hit_ids(&search_as(&app, &token, search_request("batchword")).await);
    let mut want: Vec<String> = (1..=20)
        .filter(|&n| n != 7)
        .map(|n| format!("B{n:02}"))
        .collect();
    want.sort();
    assert_eq!(found, want);
}

#[tokio::test]
async fn a_failing_head_gives_424_down_the_chain() {
    let app = ready_app(Config::for_tests()).await;
    let mut bad = item("Head");
    bad["properties"]["priority"] = json!("high");
    let reply = batch(
        &app,
        BATCH,
        vec![
            put("1", "C1", bad),
            depends(put("2", "C2", item("Second")), &["1"]),
            depends(get("3", &format!("{ITEMS}/C2")), &["2"]),
            // Unrelated to the chain: runs whatever happens to it.
            put("4", "C4", item("Independent")),
        ],
    )
    .await;
    let responses = responses(&reply, &["1", "2", "3", "4"]);
    assert_sub_error(&responses[0], 400, "BadRequest");
    assert_sub_error(&responses[1], 424, "FailedDependency");
    assert_sub_error(&responses[2], 424, "FailedDependency");
    assert_eq!(responses[3]["status"], 200, "{}", responses[3]);
    let message = responses[1]["body"]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("'2'") && message.contains("'1'") && message.contains("400"),
        "{message}"
    );
    let message = responses[2]["body"]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("'2'") && message.contains("424"),
        "{message}"
    );
    app.get(&format!("/v1.0{ITEMS}/C2"))
        .await
        .assert_error(404, "ItemNotFound");
    assert_eq!(app.get(&format!("/v1.0{ITEMS}/C4")).await.status, 200);

    // Dependency ids are matched without regard to case, like the ids themselves.
    let reply = batch(
        &app,
        BATCH,
        vec![
            get("Head", &format!("{ITEMS}/missing")),
            depends(get("next", &format!("{ITEMS}/C4")), &["HEAD"]),
        ],
    )
    .await;
    assert_eq!(statuses(&reply), [404, 424]);
}

#[tokio::test]
async fn the_three_dependency_patterns_work() {
    let app = ready_app(Config::for_tests()).await;
    let item_url = format!("{ITEMS}/P1");

    // Parallel: nothing depends on anything.
    let reply = batch(
        &app,
        BATCH,
        (1..=5)
            .map(|n| {
                put(
                    &n.to_string(),
                    &format!("Q{n}"),
                    item(&format!("Parallel {n}")),
                )
            })
            .collect(),
    )
    .await;
    responses(&reply, &["1", "2", "3", "4", "5"]);
    assert_eq!(statuses(&reply), [200; 5]);

    // Serial: each on the previous one, so each GET sees the PUT before it.
    let reply = batch(
        &app,
        BATCH,
        vec![
            put("1", "P1", item("version one")),
            depends(get("2", &item_url), &["1"]),
            depends(put("3", "P1", item("version two")), &["2"]),
            depends(get("4", &item_url), &["3"]),
            depends(
                json!({"id": "5", "method": "DELETE", "url": item_url}),
                &["4"],
            ),
            depends(get("6", &item_url), &["5"]),
        ],
    )
    .await;
    let responses_serial = responses(&reply, &["1", "2", "3", "4", "5", "6"]);
    assert_eq!(statuses(&reply), [200, 200, 200, 200, 204, 404]);
    assert_eq!(
        responses_serial[1]["body"]["properties"]["title"],
        "version one"
    );
    assert_eq!(
        responses_serial[3]["body"]["properties"]["title"],
        "version two"
    );
    assert!(
        responses_serial[4].get("body").is_none(),
        "an empty body is left out"
    );

    // All on one: every other request depends on the first.
    let mut requests = vec![put("head", "P1", item("the head"))];
    for n in 1..=4 {
        requests.push(depends(get(&format!("g{n}"), &item_url), &["head"]));
    }
    let reply = batch(&app, BATCH, requests).await;
    let all = responses(&reply, &["head", "g1", "g2", "g3", "g4"]);
    assert_eq!(statuses(&reply), [200; 5]);
    for response in &all[1..] {
        assert_eq!(response["body"]["properties"]["title"], "the head");
    }

    // All on one with a failing head: every dependent gets 424.
    let mut requests = vec![get("head", &format!("{ITEMS}/nosuchitem"))];
    for n in 1..=4 {
        requests.push(depends(get(&format!("g{n}"), &item_url), &["head"]));
    }
    let reply = batch(&app, BATCH, requests).await;
    assert_eq!(statuses(&reply), [404, 424, 424, 424, 424]);
}

#[tokio::test]
async fn malformed_batches_are_refused_whole_naming_the_request() {
    let app = ready_app(Config::for_tests()).await;
    let valid = || put("ok", "Z1", item("never stored"));
    let cases: Vec<(&str, Value, &[&str])> = vec![
        (
            "21 requests",
            json!({"requests": (1..=21).map(|n| get(&n.to_string(), ITEMS)).collect::<Vec<_>>()}),
            &["21", "20"],
        ),
        (
            "duplicate ids differing only in case",
            json!({"requests": [valid(), get("Dup", ITEMS), get("dUP", ITEMS)]}),
            &["dUP", "Dup"],
        ),
        (
            "a body without Content-Type",
            json!({"requests": [valid(), {"id": "nobody", "method": "PUT", "url": format!("{ITEMS}/Z2"), "body": item("x")}]}),
            &["nobody", "Content-Type"],
        ),
        (
            "a body with headers but no Content-Type",
            json!({"requests": [valid(), {"id": "noct", "method": "PUT", "url": format!("{ITEMS}/Z2"), "headers": {"Accept": "application/json"}, "body": item("x")}]}),
            &["noct", "Content-Type"],
        ),
        (
            "an unknown dependsOn id",
            json!({"requests": [valid(), depends(get("2", ITEMS), &["nope"])]}),
            &["'2'", "nope"],
        ),
        (
            "a cycle",
            json!({"requests": [valid(), depends(get("a", ITEMS), &["b"]), depends(get("b", ITEMS), &["a"])]}),
            &["'a'", "'b'", "cycle"],
        ),
        (
            "a request depending on itself",
            json!({"requests": [valid(), depends(get("self", ITEMS), &["self"])]}),
            &["self", "itself"],
        ),
        (
            "a nested batch",
            json!({"requests": [valid(), {"id": "inner", "method": "POST", "url": "/$batch", "headers": {"Content-Type": "application/json"}, "body": {"requests": []}}]}),
            &["inner", "batch"],
        ),
        (
            "a missing url",
            json!({"requests": [valid(), {"id": "nourl", "method": "GET"}]}),
            &["nourl", "url"],
        ),
        (
            "a missing method",
            json!({"requests": [valid(), {"id": "nomethod", "url": ITEMS}]}),
            &["nomethod", "method"],
        ),
        (
            "a missing id",
            json!({"requests": [valid(), {"method": "GET", "url": ITEMS}]}),
            &["Request 1", "id"],
        ),
        (
            "a numeric id",
            json!({"requests": [valid(), {"id": 2, "method": "GET", "url": ITEMS}]}),
            &["request 1", "string"],
        ),
        (
            "a body string that is not base64",
            json!({"requests": [valid(), {"id": "b64", "method": "PUT", "url": format!("{ITEMS}/Z2"), "headers": {"Content-Type": "application/json"}, "body": "not base64!"}]}),
            &["b64", "base64"],
        ),
        (
            "dependsOn that is not an array",
            json!({"requests": [valid(), {"id": "dep", "method": "GET", "url": ITEMS, "dependsOn": "ok"}]}),
            &["dep", "array"],
        ),
        (
            "too many headers",
            json!({"requests": [valid(), {"id": "many", "method": "GET", "url": ITEMS,
                "headers": (0..101).map(|n| (format!("x-h{n}"), json!("v"))).collect::<serde_json::Map<_, _>>()}]}),
            &["many", "101", "100"],
        ),
        (
            "a header that is not a valid HTTP header",
            json!({"requests": [valid(), {"id": "badheader", "method": "GET", "url": ITEMS, "headers": {"bad name": "v"}}]}),
            &["badheader", "bad name"],
        ),
        ("no requests member", json!({"value": []}), &["requests"]),
        (
            "an empty requests array",
            json!({"requests": []}),
            &["no requests"],
        ),
    ];
    for (case, body, mentions) in cases {
        let reply = app.post(BATCH, &body).await;
        reply.assert_error(400, "BadRequest");
        let message = reply.error_message();
        for mention in mentions {
            assert!(
                message.contains(mention),
                "{case}: {message:?} lacks {mention:?}"
            );
        }
    }
    app.get(&format!("/v1.0{ITEMS}/Z1"))
        .await
        .assert_error(404, "ItemNotFound");

    // Not JSON, and not POST.
    app.post_raw(BATCH, "application/json", "{")
        .await
        .assert_error(400, "InvalidRequest");
    app.get(BATCH).await.assert_error(405, "MethodNotAllowed");
}

#[tokio::test]
async fn a_url_with_the_version_again_is_an_unknown_segment_as_in_graph() {
    let app = ready_app(Config::for_tests()).await;
    let reply = batch(
        &app,
        BATCH,
        vec![
            get("1", "/v1.0/external/connections/tickets"),
            get("2", "external/connections/tickets"),
            get("3", "/external/connections('tickets')/"),
        ],
    )
    .await;
    let responses = responses(&reply, &["1", "2", "3"]);
    assert_sub_error(&responses[0], 400, "BadRequest");
    assert_eq!(
        responses[0]["body"]["error"]["message"],
        "Resource not found for the segment 'v1.0'."
    );
    assert_eq!(responses[1]["status"], 200, "without a leading slash");
    assert_eq!(
        responses[2]["status"], 200,
        "paths are normalized as for direct requests"
    );
    assert_eq!(responses[2]["body"]["id"], "tickets");
}

#[tokio::test]
async fn an_absolute_url_gets_its_own_400_and_the_rest_of_the_batch_runs() {
    let app = ready_app(Config::for_tests()).await;
    let absolute = format!("{}/v1.0{ITEMS}/A1", app.address);
    let reply = batch(
        &app,
        BATCH,
        vec![
            json!({"id": "abs", "method": "PUT", "url": absolute,
                   "headers": {"Content-Type": "application/json"}, "body": item("absolute")}),
            depends(get("after", &format!("{ITEMS}/A1")), &["abs"]),
            put("rel", "A2", item("relative")),
        ],
    )
    .await;
    let responses = responses(&reply, &["abs", "after", "rel"]);
    assert_sub_error(&responses[0], 400, "BadRequest");
    let message = responses[0]["body"]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("'abs'") && message.contains("absolute"),
        "{message}"
    );
    assert_sub_error(&responses[1], 424, "FailedDependency");
    assert_eq!(responses[2]["status"], 200, "{}", responses[2]);
    app.get(&format!("/v1.0{ITEMS}/A1"))
        .await
        .assert_error(404, "ItemNotFound");
}

#[tokio::test]
async fn a_base64_body_is_decoded() {
    let app = ready_app(Config::for_tests()).await;
    let bytes = item("Binary body").to_string();
    let standard = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
    let reply = batch(
        &app,
        BATCH,
        vec![
            put("1", "D1", json!(standard)),
            put("2", "D2", json!(url_safe)),
        ],
    )
    .await;
    responses(&reply, &["1", "2"]);
    assert_eq!(statuses(&reply), [200, 200], "{}", reply.body);
    for id in ["D1", "D2"] {
        let read = app.get(&format!("/v1.0{ITEMS}/{id}")).await;
        assert_eq!(read.body["properties"]["title"], "Binary body", "{id}");
    }
}

#[tokio::test]
async fn a_sub_request_202_carries_its_location_header() {
    let app = TestApp::spawn().await;
    app.create_connection("batchconn").await;
    let schema = json!({"baseType": "microsoft.graph.externalItem", "properties": [
        {"name": "title", "type": "String", "isSearchable": true, "isRetrievable": true, "labels": ["title"]}
    ]});
    let reply = batch(
        &app,
        BATCH,
        vec![json!({
            "id": "schema",
            "method": "PATCH",
            "url": "/external/connections/batchconn/schema",
            "headers": {"Content-Type": "application/json"},
            "body": schema
        })],
    )
    .await;
    let responses = responses(&reply, &["schema"]);
    assert_eq!(responses[0]["status"], 202, "{}", responses[0]);
    assert!(responses[0].get("body").is_none(), "a 202 without body");
    let location = responses[0]["headers"]["Location"]
        .as_str()
        .unwrap_or_else(|| panic!("no Location in {}", responses[0]));
    let prefix = format!(
        "{}/v1.0/external/connections/batchconn/operations/",
        app.address
    );
    assert!(location.starts_with(&prefix), "{location} under {prefix}");
    let operation = app.send(app.client.get(location)).await;
    assert_eq!(operation.status, 200, "{}", operation.body);
    assert_eq!(operation.body["status"], "completed");
}

#[tokio::test]
async fn beta_batches_run_beta_paths() {
    let app = ready_app(Config::for_tests()).await;
    let reply = batch(
        &app,
        "/beta/$batch",
        vec![
            get("quota", "/external/connections/tickets/quota"),
            get("conn", "/external/connections/tickets"),
        ],
    )
    .await;
    let responses = responses(&reply, &["quota", "conn"]);
    assert_eq!(responses[0]["status"], 200, "{}", responses[0]);
    assert!(
        responses[0]["body"]["itemsRemaining"].is_number(),
        "{}",
        responses[0]
    );
    assert!(
        responses[1]["body"]["@odata.context"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/beta/$metadata", app.address)),
        "{}",
        responses[1]
    );
}

#[tokio::test]
async fn the_batch_token_applies_to_sub_requests_unless_one_sets_its_own() {
    let app = TestApp::spawn().await;
    let tenant_a = token(json!({"tid": "tenant-a", "appid": "app-a"}));
    let tenant_b = token(json!({"tid": "tenant-b", "appid": "app-b"}));
    let create = app
        .client
        .post(app.url("/v1.0/external/connections"))
        .bearer_auth(&tenant_a)
        .json(&json!({"id": "isolated", "name": "of tenant a"}));
    assert_eq!(app.send(create).await.status, 201);

    let requests = json!({"requests": [
        get("plain", "/external/connections/isolated"),
        {"id": "own", "method": "GET", "url": "/external/connections/isolated",
         "headers": {"Authorization": format!("Bearer {tenant_a}")}}
    ]});
    let as_b = app
        .send(
            app.client
                .post(app.url(BATCH))
                .bearer_auth(&tenant_b)
                .json(&requests),
        )
        .await;
    let responses_b = responses(&as_b, &["plain", "own"]);
    assert_sub_error(&responses_b[0], 404, "ItemNotFound");
    assert_eq!(responses_b[1]["status"], 200, "its own token wins");

    let as_a = app
        .send(
            app.client
                .post(app.url(BATCH))
                .bearer_auth(&tenant_a)
                .json(&requests),
        )
        .await;
    assert_eq!(statuses(&as_a), [200, 200]);
    assert_eq!(
        responses(&as_a, &["plain", "own"])[0]["body"]["name"],
        "of tenant a"
    );

    // Created through tenant b's batch, so only tenant b sees it.
    let create_b = json!({"requests": [{
        "id": "create", "method": "POST", "url": "/external/connections",
        "headers": {"Content-Type": "application/json"},
        "body": {"id": "ofb", "name": "of tenant b"}
    }]});
    let reply = app
        .send(
            app.client
                .post(app.url(BATCH))
                .bearer_auth(&tenant_b)
                .json(&create_b),
        )
        .await;
    let created = responses(&reply, &["create"]);
    assert_eq!(created[0]["status"], 201, "{}", created[0]);
    assert_eq!(
        created[0]["headers"]["Location"],
        format!("{}/v1.0/external/connections/ofb", app.address)
    );
    let get_b = |bearer: &str| {
        app.client
            .get(app.url("/v1.0/external/connections/ofb"))
            .bearer_auth(bearer)
    };
    assert_eq!(app.send(get_b(&tenant_b)).await.status, 200);
    assert_eq!(app.send(get_b(&tenant_a)).await.status, 404);
}

#[tokio::test]
async fn delegated_search_runs_inside_a_batch() {
    let app = ready_app(Config::for_tests()).await;
    let reply = batch(&app, BATCH, vec![put("1", "S1", item("Searchable"))]).await;
    assert_eq!(statuses(&reply), [200]);
    let user = searcher(&app).await;
    let search = json!({"requests": [{
        "id": "s", "method": "POST", "url": "/search/query",
        "headers": {"Content-Type": "application/json"},
        "body": {"requests": [search_request("batchword")]}
    }]});
    let reply = app
        .send(
            app.client
                .post(app.url(BATCH))
                .bearer_auth(&user)
                .json(&search),
        )
        .await;
    let responses = responses(&reply, &["s"]);
    assert_eq!(responses[0]["status"], 200, "{}", responses[0]);
    assert_eq!(
        responses[0]["body"]["value"][0]["hitsContainers"][0]["hits"][0]["hitId"],
        "S1"
    );
}

#[tokio::test]
async fn a_throttled_sub_request_gets_429_with_its_own_retry_after_while_the_batch_answers_200() {
    let mut config = Config::for_tests();
    config.throttle = Some(3.0);
    let app = ready_app(config).await;
    // The schema registration used the connection's requests of this second; move on.
    app.advance_clock(5).await;
    let requests: Vec<Value> = (0..5)
        .map(|n| put(&format!("p{n}"), &format!("t{n}"), item("Throttled")))
        .collect();
    let reply = batch(&app, BATCH, requests).await;
    let responses = responses(&reply, &["p0", "p1", "p2", "p3", "p4"]);
    let refused: Vec<&Value> = responses.iter().filter(|r| r["status"] == 429).collect();
    assert_eq!(refused.len(), 2, "{}", reply.body);
    for response in &refused {
        assert_sub_error(response, 429, "TooManyRequests");
        assert_eq!(response["headers"]["Retry-After"], "1", "{response}");
    }
    // Each sub-request has its own journal entry, marked with the batch and its id.
    let journal = app.get("/_emulator/requests?method=PUT").await;
    let entries = journal.body["value"].as_array().unwrap();
    assert_eq!(entries.len(), 5);
    assert!(entries
        .iter()
        .all(|e| e["batch"].as_str().is_some_and(|b| b.contains("/p"))));
    assert_eq!(entries.iter().filter(|e| e["throttled"] == true).count(), 2);
}

#[tokio::test]
async fn a_fault_rule_changes_one_sub_request_and_its_dependents_get_424() {
    let app = ready_app(Config::for_tests()).await;
    let rule = app
        .post(
            "/_emulator/faults",
            &json!({"method": "PUT", "path": "/v1.0/external/connections/tickets/items/f1", "status": 429, "retryAfterSeconds": 9}),
        )
        .await;
    assert_eq!(rule.status, 201, "{}", rule.body);
    let reply = batch(
        &app,
        BATCH,
        vec![
            put("a", "f1", item("Faulted")),
            depends(put("b", "f2", item("After")), &["a"]),
            put("c", "f3", item("Independent")),
        ],
    )
    .await;
    let responses = responses(&reply, &["a", "b", "c"]);
    assert_sub_error(&responses[0], 429, "TooManyRequests");
    assert_eq!(responses[0]["headers"]["Retry-After"], "9");
    assert_sub_error(&responses[1], 424, "FailedDependency");
    assert_eq!(responses[2]["status"], 200);
}
