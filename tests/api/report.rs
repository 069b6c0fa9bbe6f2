//! The connector report (`GET /_emulator/report`): a deliberately misbehaving client triggers
//! each finding, and a well-behaved one gets none.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{token, Reply, TestApp};
use gcemu::config::Config;

const ADELE: &str = "11111111-0000-0000-0000-0000000000ad";

async fn report(app: &TestApp, query: &str) -> Value {
    let reply = app.get(&format!("/_emulator/report{query}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

fn codes(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| finding["code"].as_str().unwrap().to_string())
        .collect()
}

fn finding<'a>(report: &'a Value, code: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|finding| finding["code"] == code)
        .unwrap_or_else(|| panic!("no {code} finding in {report:#}"))
}

fn ids(finding: &Value, member: &str) -> Vec<String> {
    finding[member]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect()
}

/// A schema with the labels search results and Copilot rely on.
fn labelled_schema() -> Value {
    json!([
        {"name": "title", "type": "string", "isSearchable": true, "isRetrievable": true, "labels": ["title"]},
        {"name": "url", "type": "string", "isRetrievable": true, "labels": ["url"]},
        {"name": "iconUrl", "type": "string", "isRetrievable": true, "labels": ["iconUrl"]},
        {"name": "priority", "type": "int64", "isQueryable": true, "isRetrievable": true},
    ])
}

fn grant(acl_type: &str, value: &str) -> Value {
    json!({"type": acl_type, "value": value, "accessType": "grant"})
}

/// An item a connector should send: labelled properties, real content, the given ACL.
fn good_item(id: &str, acl: Value) -> Value {
    json!({
        "acl": acl,
        "properties": {
            "title": format!("Runbook {id}"),
            "url": format!("https://contoso.example/runbooks/{id}"),
            "iconUrl": "https://contoso.example/icon.png",
            "priority": 2,
        },
        "content": {
            "type": "html",
            "value": "<h1>Restarting the billing service</h1><p>When the billing queue backs up, drain the workers first, then restart the service from the operations console and watch the error rate for ten minutes before you close the incident.</p>",
        },
    })
}

async fn put_with_id(app: &TestApp, path: &str, request_id: &str, body: &Value) -> Reply {
    app.send(
        app.client
            .put(app.url(path))
            .header("client-request-id", request_id)
            .json(body),
    )
    .await
}

async fn add_fault(app: &TestApp, rule: Value) {
    let reply = app.post("/_emulator/faults", &rule).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

/// A connection with a labelled, completed schema.
async fn ready_connection(app: &TestApp, id: &str) {
    app.create_connection(id).await;
    app.register_schema(id, labelled_schema()).await;
}

async fn build_directory(app: &TestApp) {
    let reply = app
        .post(
            "/v1.0/users",
            &json!({"id": ADELE, "userPrincipalName": "adele@contoso.com", "displayName": "Adele", "accountEnabled": true}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = app
        .post(
            "/v1.0/groups",
            &json!({"id": "sales", "displayName": "Sales", "mailEnabled": false, "securityEnabled": true}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

async fn add_external_group(app: &TestApp, connection: &str, group: &str) {
    let reply = app
        .post(
            &format!("/v1.0/external/connections/{connection}/groups"),
            &json!({"id": group, "displayName": group}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

#[tokio::test]
async fn a_well_behaved_connector_gets_no_finding() {
    let mut config = Config::for_tests();
    config.schema_delay = Duration::from_secs(30);
    let app = TestApp::spawn_with(config).await;
    build_directory(&app).await;
    app.create_connection("polite").await;
    let registered = app
        .patch(
            "/v1.0/external/connections/polite/schema",
            &json!({"baseType": "microsoft.graph.externalItem", "properties": labelled_schema()}),
        )
        .await;
    assert_eq!(registered.status, 202, "{}", registered.body);
    let operation = registered.header("location").to_string();
    // It polls, waits as a real connector would (the clock moves instead), and polls again.
    for _ in 0..3 {
        let status = app.send(app.client.get(&operation)).await;
        if status.body["status"] == "completed" {
            break;
        }
        app.advance_clock(15).await;
    }
    add_external_group(&app, "polite", "helpdesk").await;
    add_fault(
        &app,
        json!({"method": "PUT", "path": "/v1.0/external/connections/polite/items/r2", "status": 429, "retryAfterSeconds": 3, "count": 1}),
    )
    .await;
    let acls = [
        ("r1", json!([grant("user", ADELE)])),
        ("r2", json!([grant("user", "Adele@contoso.com")])),
        (
            "r3",
            json!([grant("group", "sales"), grant("everyone", "everyone")]),
        ),
        ("r4", json!([grant("externalGroup", "helpdesk")])),
    ];
    for (id, acl) in acls {
        let path = format!("/v1.0/external/connections/polite/items/{id}");
        let mut reply =
            put_with_id(&app, &path, &format!("{id}-1"), &good_item(id, acl.clone())).await;
        if reply.status == 429 {
            // Waits as told by Retry-After, then retries.
            let seconds: u64 = reply.header("retry-after").parse().unwrap();
            app.advance_clock(seconds).await;
            reply = put_with_id(&app, &path, &format!("{id}-2"), &good_item(id, acl)).await;
        }
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let report = report(&app, "").await;
    assert_eq!(report["findings"], json!([]), "{report:#}");
    assert_eq!(
        report["summary"],
        json!({"error": 0, "warning": 0, "info": 0})
    );
    assert_eq!(report["tenant"], "00000000-0000-0000-0000-000000000001");
    assert!(
        report["journal"]["entries"].as_u64().unwrap() >= 10,
        "{report:#}"
    );
    assert_eq!(report["journal"]["dropped"], 0);
    assert_eq!(report["store"]["itemsScanned"], 4);
    assert_eq!(report["store"]["complete"], true);
}

#[tokio::test]
async fn items_sent_before_the_schema_is_completed_are_found() {
    let mut config = Config::for_tests();
    config.schema_delay = Duration::from_secs(60);
    let app = TestApp::spawn_with(config).await;
    app.create_connection("hasty").await;
    let registered = app
        .patch(
            "/v1.0/external/connections/hasty/schema",
            &json!({"baseType": "microsoft.graph.externalItem", "properties": labelled_schema()}),
        )
        .await;
    assert_eq!(registered.status, 202);
    let body = good_item("early", json!([grant("everyone", "everyone")]));
    put_with_id(
        &app,
        "/v1.0/external/connections/hasty/items/early",
        "too-early",
        &body,
    )
    .await
    .assert_error(400, "InvalidRequest");
    let report = report(&app, "").await;
    let found = finding(&report, "itemBeforeSchemaReady");
    assert_eq!(found["severity"], "error");
    assert_eq!(found["count"], 1);
    assert_eq!(found["connectionId"], "hasty");
    assert_eq!(ids(found, "clientRequestIds"), ["too-early"]);
    assert_eq!(ids(found, "itemIds"), ["early"]);
    assert!(
        found["message"].as_str().unwrap().contains("'hasty'"),
        "{found}"
    );
}

#[tokio::test]
async fn retries_sooner_than_retry_after_and_retry_storms_are_found() {
    let app = TestApp::spawn().await;
    ready_connection(&app, "eager").await;
    let body = good_item("x", json!([grant("everyone", "everyone")]));
    // One retry that did not wait.
    add_fault(
        &app,
        json!({"method": "PUT", "path": "/v1.0/external/connections/eager/items/one", "status": 429, "retryAfterSeconds": 5, "count": 1}),
    )
    .await;
    let path = "/v1.0/external/connections/eager/items/one";
    assert_eq!(put_with_id(&app, path, "one-a", &body).await.status, 429);
    assert_eq!(put_with_id(&app, path, "one-b", &body).await.status, 200);
    // A storm: six requests within the window of a 503 that asked for 5 s.
    add_fault(
        &app,
        json!({"method": "PUT", "path": "/v1.0/external/connections/eager/items/storm", "status": 503, "retryAfterSeconds": 5, "count": 6}),
    )
    .await;
    let path = "/v1.0/external/connections/eager/items/storm";
    for n in 0..7 {
        put_with_id(&app, path, &format!("storm-{n}"), &body).await;
    }
    // A retry that waited as told is no finding.
    add_fault(
        &app,
        json!({"method": "PUT", "path": "/v1.0/external/connections/eager/items/calm", "status": 429, "retryAfterSeconds": 5, "count": 1}),
    )
    .await;
    let path = "/v1.0/external/connections/eager/items/calm";
    assert_eq!(put_with_id(&app, path, "calm-a", &body).await.status, 429);
    app.advance_clock(5).await;
    assert_eq!(put_with_id(&app, path, "calm-b", &body).await.status, 200);

    let report = report(&app, "").await;
    let early = finding(&report, "retryBeforeRetryAfter");
    assert_eq!(early["severity"], "error");
    assert_eq!(early["count"], 1, "{early}");
    assert_eq!(ids(early, "clientRequestIds"), ["one-a", "one-b"]);
    assert_eq!(ids(early, "itemIds"), ["one"]);
    assert!(
        early["message"]
            .as_str()
            .unwrap()
            .contains("PUT /v1.0/external/connections/eager/items/{id}"),
        "{early}"
    );
    let storm = finding(&report, "retryStorm");
    assert_eq!(storm["severity"], "error");
    assert_eq!(storm["count"], 6, "{storm}");
    assert_eq!(storm["clientRequestIdCount"], 7);
    assert_eq!(ids(storm, "itemIds"), ["storm"]);
    assert_eq!(codes(&report), ["retryBeforeRetryAfter", "retryStorm"]);
}

#[tokio::test]
async fn properties_not_in_the_schema_or_of_the_wrong_type_are_found() {
    let app = TestApp::spawn().await;
    ready_connection(&app, "sloppy").await;
    let mut unknown = good_item("a", json!([grant("everyone", "everyone")]));
    unknown["properties"]["colour"] = json!("red");
    put_with_id(
        &app,
        "/v1.0/external/connections/sloppy/items/a",
        "unknown-prop",
        &unknown,
    )
    .await
    .assert_error(400, "InvalidRequest");
    let mut mistyped = good_item("b", json!([grant("everyone", "everyone")]));
    mistyped["properties"]["priority"] = json!("high");
    put_with_id(
        &app,
        "/v1.0/external/connections/sloppy/items/b",
        "wrong-type",
        &mistyped,
    )
    .await
    .assert_error(400, "BadRequest");
    // PATCH is judged too.
    let reply = app
        .send(
            app.client
                .patch(app.url("/v1.0/external/connections/sloppy/items/c"))
                .header("client-request-id", "patch-unknown")
                .json(&json!({"properties": {"colour": "blue"}})),
        )
        .await;
    assert_eq!(reply.status.as_u16() / 100, 4, "{}", reply.body);

    let report = report(&app, "").await;
    let not_in_schema = finding(&report, "propertyNotInSchema");
    assert_eq!(not_in_schema["severity"], "error");
    assert_eq!(not_in_schema["property"], "colour");
    assert_eq!(not_in_schema["connectionId"], "sloppy");
    assert!(ids(not_in_schema, "clientRequestIds").contains(&"unknown-prop".to_string()));
    assert!(not_in_schema["message"]
        .as_str()
        .unwrap()
        .contains("'colour'"));
    let mismatch = finding(&report, "propertyTypeMismatch");
    assert_eq!(mismatch["property"], "priority");
    assert_eq!(ids(mismatch, "clientRequestIds"), ["wrong-type"]);
    assert_eq!(ids(mismatch, "itemIds"), ["b"]);
}

#[tokio::test]
async fn acl_entries_naming_principals_nobody_knows_are_found() {
    let app = TestApp::spawn().await;
    build_directory(&app).await;
    ready_connection(&app, "acls").await;
    add_external_group(&app, "acls", "helpdesk").await;
    let acl = json!([
        grant("user", "adele@contoso.com"),
        grant("user", "ghost@contoso.com"),
        grant("group", "sales"),
        grant("group", "nosuchgroup"),
        grant("externalGroup", "helpdesk"),
        grant("externalGroup", "nosuchteam"),
    ]);
    let reply = put_with_id(
        &app,
        "/v1.0/external/connections/acls/items/shared",
        "put-shared",
        &good_item("shared", acl),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let report = report(&app, "").await;
    assert_eq!(codes(&report), ["aclUnknownPrincipal"], "{report:#}");
    let found = finding(&report, "aclUnknownPrincipal");
    assert_eq!(found["severity"], "warning");
    assert_eq!(found["count"], 3);
    let mut principals = ids(found, "principals");
    principals.sort();
    assert_eq!(
        principals,
        [
            "externalGroup:nosuchteam",
            "group:nosuchgroup",
            "user:ghost@contoso.com"
        ]
    );
    assert_eq!(ids(found, "itemIds"), ["shared"]);
    assert_eq!(ids(found, "clientRequestIds"), ["put-shared"]);
    // Once the directory knows them, the finding goes away.
    for (path, body) in [
        (
            "/v1.0/users",
            json!({"userPrincipalName": "ghost@contoso.com", "displayName": "Ghost", "accountEnabled": true}),
        ),
        (
            "/v1.0/groups",
            json!({"id": "nosuchgroup", "displayName": "x", "mailEnabled": false, "securityEnabled": true}),
        ),
        (
            "/v1.0/external/connections/acls/groups",
            json!({"id": "nosuchteam"}),
        ),
    ] {
        assert_eq!(app.post(path, &body).await.status, 201);
    }
    assert_eq!(report_codes(&app).await, Vec::<String>::new());
}

async fn report_codes(app: &TestApp) -> Vec<String> {
    codes(&report(app, "").await)
}

#[tokio::test]
async fn a_schema_without_the_labels_results_rely_on_is_found() {
    let app = TestApp::spawn().await;
    app.create_connection("bare").await;
    let reply = app
        .send(
            app.client
                .patch(app.url("/v1.0/external/connections/bare/schema"))
                .header("client-request-id", "bare-schema")
                .json(&json!({"baseType": "microsoft.graph.externalItem", "properties": [
                    {"name": "name", "type": "string", "isSearchable": true, "isRetrievable": true},
                    {"name": "link", "type": "string", "isRetrievable": true, "labels": ["url"]},
                ]})),
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let report = report(&app, "").await;
    assert_eq!(codes(&report), ["schemaMissingLabels"]);
    let found = finding(&report, "schemaMissingLabels");
    assert_eq!(found["severity"], "warning");
    assert_eq!(found["count"], 2);
    assert_eq!(found["connectionId"], "bare");
    assert_eq!(ids(found, "clientRequestIds"), ["bare-schema"]);
    let message = found["message"].as_str().unwrap();
    assert!(
        message.contains("'title', 'iconUrl'") && message.contains("'bare'"),
        "{message}"
    );
}

#[tokio::test]
async fn polling_an_operation_more_than_once_a_second_is_found() {
    let mut config = Config::for_tests();
    config.schema_delay = Duration::from_secs(60);
    let app = TestApp::spawn_with(config).await;
    app.create_connection("pushy").await;
    let registered = app
        .patch(
            "/v1.0/external/connections/pushy/schema",
            &json!({"baseType": "microsoft.graph.externalItem", "properties": labelled_schema()}),
        )
        .await;
    let operation = registered.header("location").to_string();
    for n in 0..3 {
        let reply = app
            .send(
                app.client
                    .get(&operation)
                    .header("client-request-id", format!("poll-{n}")),
            )
            .await;
        assert_eq!(reply.body["status"], "inprogress");
    }
    let report = report(&app, "").await;
    assert_eq!(codes(&report), ["operationPolledTooOften"], "{report:#}");
    let found = finding(&report, "operationPolledTooOften");
    assert_eq!(found["severity"], "warning");
    assert_eq!(found["count"], 2);
    assert_eq!(found["connectionId"], "pushy");
    assert_eq!(found["operationId"].as_str(), operation.rsplit('/').next());
    assert_eq!(ids(found, "clientRequestIds"), ["poll-1", "poll-2"]);
}

#[tokio::test]
async fn items_over_the_real_4_mb_cap_are_found_though_gcemu_accepts_them() {
    let app = TestApp::spawn().await;
    ready_connection(&app, "bulky").await;
    let mut big = good_item("big", json!([grant("everyone", "everyone")]));
    big["content"]["value"] = json!(format!("<p>{}</p>", "lorem ipsum dolor ".repeat(250_000)));
    let reply = put_with_id(
        &app,
        "/v1.0/external/connections/bulky/items/big",
        "big-put",
        &big,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let report = report(&app, "").await;
    assert_eq!(codes(&report), ["itemOverSizeCap"], "{report:#}");
    let found = finding(&report, "itemOverSizeCap");
    assert_eq!(found["severity"], "error");
    assert_eq!(ids(found, "clientRequestIds"), ["big-put"]);
    assert_eq!(ids(found, "itemIds"), ["big"]);
}

#[tokio::test]
async fn items_with_too_little_text_to_ground_on_are_found() {
    let app = TestApp::spawn().await;
    ready_connection(&app, "terse").await;
    let everyone = json!([grant("everyone", "everyone")]);
    let mut empty = good_item("empty", everyone.clone());
    empty.as_object_mut().unwrap().remove("content");
    let mut markup = good_item("markup", everyone.clone());
    markup["content"]["value"] = json!("<div><img src='chart.png'><br/></div>");
    for (id, body) in [
        ("empty", empty),
        ("markup", markup),
        ("fine", good_item("fine", everyone)),
    ] {
        let reply = put_with_id(
            &app,
            &format!("/v1.0/external/connections/terse/items/{id}"),
            &format!("put-{id}"),
            &body,
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let report = report(&app, "").await;
    assert_eq!(codes(&report), ["contentTooShortToGround"], "{report:#}");
    let found = finding(&report, "contentTooShortToGround");
    assert_eq!(found["severity"], "info");
    assert_eq!(found["count"], 2);
    assert_eq!(ids(found, "itemIds"), ["empty", "markup"]);
    assert_eq!(ids(found, "clientRequestIds"), ["put-empty", "put-markup"]);
    assert_eq!(
        report["summary"],
        json!({"error": 0, "warning": 0, "info": 1})
    );
}

#[tokio::test]
async fn the_report_is_scoped_to_its_tenant_and_ordered_by_severity() {
    let app = TestApp::spawn().await;
    let other = token(json!({"tid": "tenant-b", "appid": "connector-b"}));
    let create = app
        .send(
            app.client
                .post(app.url("/v1.0/external/connections"))
                .bearer_auth(&other)
                .json(&json!({"id": "elsewhere", "name": "elsewhere"})),
        )
        .await;
    assert_eq!(create.status, 201, "{}", create.body);
    let reply = app
        .send(
            app.client
                .put(app.url("/v1.0/external/connections/elsewhere/items/i1"))
                .bearer_auth(&other)
                .json(&good_item("i1", json!([grant("everyone", "everyone")]))),
        )
        .await;
    reply.assert_error(400, "InvalidRequest");
    // The default tenant has a bare schema (a warning) and nothing else.
    app.create_connection("home").await;
    app.register_schema("home", json!([{"name": "name", "type": "string"}]))
        .await;

    let home = report(&app, "").await;
    assert_eq!(codes(&home), ["schemaMissingLabels"], "{home:#}");
    let elsewhere = report(&app, "?tenant=TENANT-B").await;
    assert_eq!(elsewhere["tenant"], "tenant-b");
    assert_eq!(codes(&elsewhere), ["itemBeforeSchemaReady"]);
    app.get("/_emulator/report?tenant=")
        .await
        .assert_error(400, "InvalidRequest");

    // Several kinds at once come ordered by severity, then code.
    let mut mistyped = good_item("m", json!([grant("user", "nobody@contoso.com")]));
    mistyped["properties"] = json!({"name": 5});
    app.put("/v1.0/external/connections/home/items/m", &mistyped)
        .await;
    app.put(
        "/v1.0/external/connections/home/items/n",
        &json!({"acl": [grant("user", "nobody@contoso.com")], "properties": {"name": "n"}}),
    )
    .await;
    let home = report(&app, "").await;
    assert_eq!(
        codes(&home),
        [
            "propertyTypeMismatch",
            "aclUnknownPrincipal",
            "schemaMissingLabels",
            "contentTooShortToGround"
        ],
        "{home:#}"
    );
    assert_eq!(
        home["summary"],
        json!({"error": 1, "warning": 2, "info": 1})
    );
}

#[tokio::test]
async fn a_tenant_of_many_items_is_scanned_in_pages_with_bounded_samples() {
    let app = TestApp::spawn().await;
    let n_items = 1_234;
    let items: Vec<Value> = (0..n_items)
        .map(|n| {
            let acl = if n % 100 == 0 {
                json!([grant("user", &format!("ghost{n}@contoso.com"))])
            } else {
                json!([grant("user", "adele@contoso.com")])
            };
            // Every third item has a title of two words and nothing else.
            let content = if n % 3 == 0 {
                json!(null)
            } else {
                json!({"type": "text", "value": "The monthly operations review covers incidents, changes, capacity, costs and the actions agreed with each team for the next month."})
            };
            let mut item = json!({
                "id": format!("item{n:05}"),
                "properties": {"title": format!("Review {n}"), "url": "https://x.example", "iconUrl": "https://x.example/i.png"},
                "acl": acl,
            });
            if !content.is_null() {
                item["content"] = content;
            }
            item
        })
        .collect();
    let document = json!({"tenants": [{
        "id": "00000000-0000-0000-0000-000000000001",
        "users": [{"id": ADELE, "userPrincipalName": "adele@contoso.com", "displayName": "Adele"}],
        "connections": [{
            "id": "reviews",
            "name": "Reviews",
            "schema": {"properties": labelled_schema()},
            "items": items,
        }],
    }]});
    let loaded = app.post("/_emulator/fixtures", &document).await;
    assert_eq!(loaded.status, 200, "{}", loaded.body);

    let report = report(&app, "").await;
    assert_eq!(report["store"]["itemsScanned"], n_items);
    assert_eq!(report["store"]["complete"], true);
    assert_eq!(
        codes(&report),
        ["aclUnknownPrincipal", "contentTooShortToGround"],
        "{report:#}"
    );
    let unknown = finding(&report, "aclUnknownPrincipal");
    assert_eq!(unknown["count"], 13);
    assert_eq!(unknown["principalCount"], 13);
    assert_eq!(unknown["itemIdCount"], 13);
    assert_eq!(ids(unknown, "principals").len(), 13);
    let short = finding(&report, "contentTooShortToGround");
    let expected_short = (0..n_items).filter(|n| n % 3 == 0).count();
    assert_eq!(short["count"], expected_short);
    assert_eq!(short["itemIdCount"], expected_short);
    assert_eq!(ids(short, "itemIds").len(), 20);
    assert_eq!(ids(short, "itemIds")[1], "item00003");
}
