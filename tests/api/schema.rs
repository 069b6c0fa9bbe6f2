//! Schema registration as a long-running operation (spec/schema.md), through HTTP.

use gcemu::config::{Config, SchemaErrors};
use gcemu::domain::ids::{ConnectionId, TenantId};
use serde_json::{json, Value};

use crate::helpers::{Reply, TestApp};

fn schema_body(properties: Value) -> Value {
    json!({"baseType": "microsoft.graph.externalItem", "properties": properties})
}

fn ticket_properties() -> Value {
    json!([
        {"name": "title", "type": "String", "isSearchable": "true", "isRetrievable": "true", "labels": ["title"]},
        {"name": "status", "type": "string", "isQueryable": true, "isRetrievable": true, "isRefinable": true},
        {"name": "priority", "type": "Int64", "isQueryable": true, "isRefinable": true, "isRetrievable": true},
        {"name": "lastEdited", "type": "DateTime", "isRetrievable": true, "labels": ["lastModifiedDateTime"]},
        {"name": "tags", "type": "StringCollection", "isSearchable": true, "aliases": ["keywords"]}
    ])
}

async fn patch_schema(
    app: &TestApp,
    version: &str,
    connection_id: &str,
    properties: Value,
) -> Reply {
    app.patch(
        &format!("/{version}/external/connections/{connection_id}/schema"),
        &schema_body(properties),
    )
    .await
}

async fn follow(app: &TestApp, location: &str) -> Reply {
    app.send(app.client.get(location)).await
}

fn with_delay(seconds: u64) -> Config {
    let mut config = Config::for_tests();
    config.schema_delay = std::time::Duration::from_secs(seconds);
    config
}

#[tokio::test]
async fn the_connector_flow_completes_at_once_with_no_delay() {
    let app = TestApp::spawn().await;
    app.create_connection("tickets").await;
    let reply = patch_schema(&app, "v1.0", "tickets", ticket_properties()).await;
    assert_eq!(reply.status, 202);
    assert_eq!(reply.body, Value::Null, "202 has no body");
    let location = reply.header("location").to_string();
    assert!(
        location.starts_with(&format!(
            "{}/v1.0/external/connections/tickets/operations/",
            app.address
        )),
        "absolute Location with the request's host, port and version: {location}"
    );
    let operation = follow(&app, &location).await;
    assert_eq!(operation.status, 200);
    assert_eq!(operation.body["status"], "completed");
    assert_eq!(operation.body["error"], Value::Null);
    assert_eq!(
        operation.body["@odata.context"],
        format!(
            "{}/v1.0/$metadata#external/connections('tickets')/operations/$entity",
            app.address
        )
    );
    assert_eq!(
        app.get("/v1.0/external/connections/tickets").await.body["state"],
        "ready"
    );

    let schema = app.get("/v1.0/external/connections/tickets/schema").await;
    assert_eq!(schema.status, 200);
    assert_eq!(schema.body["baseType"], "microsoft.graph.externalItem");
    let title = &schema.body["properties"][0];
    assert_eq!(
        title,
        &json!({"name": "title", "type": "string", "isSearchable": true, "isRetrievable": true,
                "isQueryable": false, "isRefinable": false, "aliases": [], "labels": ["title"]})
    );
    assert_eq!(
        schema.body["properties"][2]["type"], "int64",
        "types answered in camelCase"
    );
    assert_eq!(schema.body["properties"][3]["type"], "dateTime");
    assert_eq!(schema.body["properties"][4]["aliases"], json!(["keywords"]));
}

#[tokio::test]
async fn a_schema_delay_keeps_the_operation_inprogress_until_the_clock_reaches_it() {
    let app = TestApp::spawn_with(with_delay(300)).await;
    app.create_connection("tickets").await;
    let reply = patch_schema(&app, "beta", "tickets", ticket_properties()).await;
    assert_eq!(reply.status, 202);
    let location = reply.header("location").to_string();
    assert!(
        location.contains("/beta/external/connections/tickets/operations/"),
        "{location}"
    );

    assert_eq!(follow(&app, &location).await.body["status"], "inprogress");
    assert_eq!(
        app.get("/v1.0/external/connections/tickets").await.body["state"],
        "draft"
    );
    let schema = app.get("/v1.0/external/connections/tickets/schema").await;
    assert_eq!(
        schema.status, 200,
        "the schema is readable while its operation runs"
    );

    let second = patch_schema(&app, "v1.0", "tickets", ticket_properties()).await;
    second.assert_error(409, "Conflict");
    assert!(second.error_message().contains("in progress"));

    app.advance_clock(299).await;
    assert_eq!(follow(&app, &location).await.body["status"], "inprogress");
    app.advance_clock(1).await;
    assert_eq!(follow(&app, &location).await.body["status"], "completed");
    assert_eq!(
        app.get("/v1.0/external/connections/tickets").await.body["state"],
        "ready"
    );
}

#[tokio::test]
async fn the_legacy_post_is_synchronous_without_prefer_and_async_with_it() {
    let app = TestApp::spawn_with(with_delay(600)).await;
    app.create_connection("syncconn").await;
    let reply = app
        .post(
            "/beta/external/connections/syncconn/schema",
            &schema_body(ticket_properties()),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["properties"][0]["name"], "title");
    assert_eq!(
        app.get("/beta/external/connections/syncconn").await.body["state"],
        "ready"
    );
    let again = app
        .post(
            "/beta/external/connections/syncconn/schema",
            &schema_body(ticket_properties()),
        )
        .await;
    again.assert_error(400, "InvalidRequest");

    app.create_connection("asyncconn").await;
    let reply = app
        .send(
            app.client
                .post(app.url("/beta/external/connections/asyncconn/schema"))
                .header("prefer", "respond-async")
                .json(&schema_body(ticket_properties())),
        )
        .await;
    assert_eq!(reply.status, 202);
    assert_eq!(
        follow(&app, reply.header("location")).await.body["status"],
        "inprogress"
    );
}

/// One refusal per rule class: status, code, the offending property in the message, state unchanged.
#[tokio::test]
async fn every_class_of_invalid_schema_is_refused_naming_what_is_wrong() {
    let app = TestApp::spawn().await;
    app.create_connection("tickets").await;
    let long_name = "n".repeat(33);
    let many: Vec<Value> = (0..129)
        .map(|i| json!({"name": format!("p{i}"), "type": "int64"}))
        .collect();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "no baseType",
            json!({"properties": [{"name": "a", "type": "string"}]}),
            "baseType",
        ),
        (
            "wrong baseType",
            json!({"baseType": "microsoft.graph.driveItem", "properties": [{"name": "a", "type": "string"}]}),
            "baseType",
        ),
        (
            "no properties",
            json!({"baseType": "microsoft.graph.externalItem"}),
            "properties",
        ),
        ("empty properties", schema_body(json!([])), "1 to 128"),
        ("129 properties", schema_body(Value::Array(many)), "129"),
        (
            "bad name",
            schema_body(json!([{"name": "ticket-id", "type": "string"}])),
            "ticket-id",
        ),
        (
            "long name",
            schema_body(json!([{"name": "n".repeat(33), "type": "string"}])),
            &long_name,
        ),
        (
            "bad alias",
            schema_body(json!([{"name": "title", "type": "string", "aliases": ["the title"]}])),
            "the title",
        ),
        (
            "duplicate name",
            schema_body(
                json!([{"name": "title", "type": "string"}, {"name": "TITLE", "type": "string"}]),
            ),
            "TITLE",
        ),
        (
            "alias collision",
            schema_body(
                json!([{"name": "title", "type": "string"}, {"name": "head", "type": "string", "aliases": ["title"]}]),
            ),
            "head",
        ),
        (
            "unknown type",
            schema_body(json!([{"name": "title", "type": "text"}])),
            "title",
        ),
        (
            "unknownFutureValue type",
            schema_body(json!([{"name": "title", "type": "unknownFutureValue"}])),
            "title",
        ),
        ("no type", schema_body(json!([{"name": "title"}])), "title"),
        (
            "searchable int64",
            schema_body(json!([{"name": "count", "type": "int64", "isSearchable": true}])),
            "count",
        ),
        (
            "searchable and refinable",
            schema_body(
                json!([{"name": "status", "type": "string", "isSearchable": true, "isRefinable": true}]),
            ),
            "status",
        ),
        (
            "label not retrievable",
            schema_body(json!([{"name": "title", "type": "string", "labels": ["title"]}])),
            "title",
        ),
        (
            "label twice",
            schema_body(
                json!([{"name": "a", "type": "string", "isRetrievable": true, "labels": ["title"]}, {"name": "b", "type": "string", "isRetrievable": true, "labels": ["title"]}]),
            ),
            "'b'",
        ),
        (
            "label of the wrong type",
            schema_body(
                json!([{"name": "created", "type": "string", "isRetrievable": true, "labels": ["createdDateTime"]}]),
            ),
            "created",
        ),
        (
            "unknown label",
            schema_body(
                json!([{"name": "title", "type": "string", "isRetrievable": true, "labels": ["headline"]}]),
            ),
            "headline",
        ),
        (
            "long description",
            schema_body(
                json!([{"name": "title", "type": "string", "description": "d".repeat(201)}]),
            ),
            "title",
        ),
        (
            "boolean that is not one",
            schema_body(json!([{"name": "title", "type": "string", "isSearchable": "yes"}])),
            "title",
        ),
        (
            "unknown member",
            schema_body(json!([{"name": "title", "type": "string", "isSortable": true}])),
            "isSortable",
        ),
        (
            "beta-only member on v1.0",
            schema_body(json!([{"name": "code", "type": "string", "isExactMatchRequired": true}])),
            "isExactMatchRequired",
        ),
        (
            "property that is not an object",
            schema_body(json!(["title"])),
            "properties[0]",
        ),
    ];
    for (case, body, expected) in cases {
        let reply = app
            .patch("/v1.0/external/connections/tickets/schema", &body)
            .await;
        reply.assert_error(400, "InvalidRequest");
        let text = format!(
            "{} {}",
            reply.error_message(),
            reply.body["error"]["innerError"]["message"]
        );
        assert!(
            text.contains(expected),
            "{case}: '{expected}' not in {text}"
        );
    }
    app.get("/v1.0/external/connections/tickets/schema")
        .await
        .assert_error(404, "ItemNotFound");
    assert_eq!(
        app.get("/v1.0/external/connections/tickets").await.body["state"],
        "draft"
    );
}

#[tokio::test]
async fn exact_match_is_a_beta_attribute_for_non_searchable_strings() {
    let app = TestApp::spawn().await;
    app.create_connection("tickets").await;
    let reply = patch_schema(&app, "beta", "tickets", json!([{"name": "ticketId", "type": "string", "isQueryable": true, "isExactMatchRequired": "True"}])).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let schema = app.get("/beta/external/connections/tickets/schema").await;
    assert_eq!(schema.body["properties"][0]["isExactMatchRequired"], true);
    assert!(app
        .get("/v1.0/external/connections/tickets/schema")
        .await
        .body["properties"][0]
        .get("isExactMatchRequired")
        .is_none());

    app.create_connection("other").await;
    let reply = patch_schema(&app, "beta", "other", json!([{"name": "code", "type": "string", "isSearchable": true, "isExactMatchRequired": true}])).await;
    reply.assert_error(400, "InvalidRequest");
    assert!(reply.error_message().contains("'code'"));
}

#[tokio::test]
async fn updates_add_properties_aliases_and_labels_through_a_new_operation() {
    let app = TestApp::spawn().await;
    app.create_connection("tickets").await;
    app.register_schema("tickets", ticket_properties()).await;
    let mut updated = ticket_properties();
    updated[1]["aliases"] = json!(["state"]);
    updated[1]["labels"] = json!(["containerName"]);
    updated[4]["isRetrievable"] = json!(true);
    updated.as_array_mut().unwrap().push(
        json!({"name": "assignee", "type": "string", "isQueryable": true, "isRefinable": true}),
    );
    let reply = patch_schema(&app, "v1.0", "tickets", updated).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(
        follow(&app, reply.header("location")).await.body["status"],
        "completed"
    );
    let schema = app
        .send(
            app.client
                .get(app.url("/v1.0/external/connections/tickets/schema"))
                .header("prefer", "include-unknown-enum-members"),
        )
        .await;
    let properties = schema.body["properties"].as_array().unwrap();
    assert_eq!(properties.len(), 6);
    assert_eq!(properties[1]["aliases"], json!(["state"]));
    assert_eq!(properties[1]["labels"], json!(["containerName"]));
    assert_eq!(properties[5]["name"], "assignee");
    app.flush_index().await;
    let index = app
        .state
        .index
        .get(
            &TenantId::default_tenant(),
            &ConnectionId::lookup("tickets"),
        )
        .unwrap();
    assert!(
        index.mapping.property("assignee").is_some(),
        "the index follows the updated schema"
    );
}

#[tokio::test]
async fn updates_may_not_remove_rename_retype_or_make_refinable_and_change_nothing() {
    let app = TestApp::spawn().await;
    app.create_connection("tickets").await;
    app.register_schema("tickets", ticket_properties()).await;
    let before = app
        .get("/v1.0/external/connections/tickets/schema")
        .await
        .body;
    let mut removed = ticket_properties();
    removed.as_array_mut().unwrap().remove(1);
    let mut renamed = ticket_properties();
    renamed[2]["name"] = json!("urgency");
    let mut retyped = ticket_properties();
    retyped[2]["type"] = json!("double");
    let mut refinable = ticket_properties();
    refinable[3]["isRefinable"] = json!(true);
    for (case, properties, expected) in [
        ("removed", removed, "'status' cannot be removed"),
        (
            "renamed",
            renamed,
            "'priority' cannot be removed or renamed",
        ),
        ("retyped", retyped, "from int64 to double"),
        (
            "made refinable",
            refinable,
            "'lastEdited' cannot be made refinable",
        ),
    ] {
        let reply = patch_schema(&app, "v1.0", "tickets", properties).await;
        reply.assert_error(400, "InvalidRequest");
        assert!(
            reply.error_message().contains(expected),
            "{case}: {}",
            reply.error_message()
        );
    }
    assert_eq!(
        app.get("/v1.0/external/connections/tickets/schema")
            .await
            .body,
        before
    );
}

#[tokio::test]
async fn with_schema_errors_in_operations_a_semantic_violation_fails_the_operation() {
    let mut config = Config::for_tests();
    config.schema_errors = SchemaErrors::Operation;
    config.schema_delay = std::time::Duration::from_secs(60);
    let app = TestApp::spawn_with(config).await;
    app.create_connection("tickets").await;
    let reply = patch_schema(
        &app,
        "v1.0",
        "tickets",
        json!([{"name": "status", "type": "string", "isSearchable": true, "isRefinable": true}]),
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let location = reply.header("location").to_string();
    assert_eq!(follow(&app, &location).await.body["status"], "inprogress");
    app.advance_clock(60).await;
    let operation = follow(&app, &location).await.body;
    assert_eq!(operation["status"], "failed");
    assert_eq!(operation["error"]["code"], "InvalidRequest");
    assert!(operation["error"]["message"]
        .as_str()
        .unwrap()
        .contains("'status'"));
    assert_eq!(operation["error"]["target"], "properties[0].isRefinable");
    assert_eq!(
        app.get("/v1.0/external/connections/tickets").await.body["state"],
        "draft",
        "a failed first registration leaves a draft"
    );
    app.get("/v1.0/external/connections/tickets/schema")
        .await
        .assert_error(404, "ItemNotFound");

    let reply = patch_schema(
        &app,
        "v1.0",
        "tickets",
        json!([{"name": "bad name", "type": "string"}]),
    )
    .await;
    reply.assert_error(400, "InvalidRequest");

    app.register_schema_after_delay(ticket_properties(), 60)
        .await;
    let mut removed = ticket_properties();
    removed.as_array_mut().unwrap().remove(0);
    let reply = patch_schema(&app, "v1.0", "tickets", removed).await;
    assert_eq!(reply.status, 202);
    let location = reply.header("location").to_string();
    app.advance_clock(60).await;
    assert_eq!(follow(&app, &location).await.body["status"], "failed");
    let schema = app
        .get("/v1.0/external/connections/tickets/schema")
        .await
        .body;
    assert_eq!(
        schema["properties"].as_array().unwrap().len(),
        5,
        "a failed update restores the registered schema"
    );
    assert_eq!(
        app.get("/v1.0/external/connections/tickets").await.body["state"],
        "ready"
    );
}

impl TestApp {
    async fn register_schema_after_delay(&self, properties: Value, delay: u64) {
        let reply = patch_schema(self, "v1.0", "tickets", properties).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        self.advance_clock(delay).await;
        assert_eq!(
            follow(self, reply.header("location")).await.body["status"],
            "completed"
        );
    }
}

#[tokio::test]
async fn unknown_schema_operation_and_connection_get_404s() {
    let app = TestApp::spawn().await;
    let reply = app.get("/v1.0/external/connections/nosuch/schema").await;
    reply.assert_error(404, "ItemNotFound");
    assert_eq!(reply.body["error"]["innerError"]["source"], "Connection");
    patch_schema(&app, "v1.0", "nosuch", ticket_properties())
        .await
        .assert_error(404, "ItemNotFound");

    app.create_connection("tickets").await;
    let reply = app.get("/v1.0/external/connections/tickets/schema").await;
    reply.assert_error(404, "ItemNotFound");
    assert_eq!(reply.body["error"]["innerError"]["source"], "Schema");
    let reply = app
        .get("/v1.0/external/connections/tickets/operations/1.gcemu.nope")
        .await;
    reply.assert_error(404, "ItemNotFound");
    assert_eq!(reply.body["error"]["innerError"]["source"], "Operation");
    app.delete("/v1.0/external/connections/tickets/schema")
        .await
        .assert_error(404, "UnknownError");
}

#[tokio::test]
async fn evolvable_enum_members_need_the_prefer_header() {
    let app = TestApp::spawn().await;
    app.create_connection("people").await;
    app.register_schema(
        "people",
        json!([{"name": "owner", "type": "Principal", "isRetrievable": true},
               {"name": "icon", "type": "string", "isRetrievable": true, "labels": ["IconUrl"]}]),
    )
    .await;
    let plain = app
        .get("/v1.0/external/connections/people/schema")
        .await
        .body;
    assert_eq!(plain["properties"][0]["type"], "unknownFutureValue");
    assert_eq!(
        plain["properties"][1]["labels"],
        json!(["unknownFutureValue"])
    );
    let opted_in = app
        .send(
            app.client
                .get(app.url("/v1.0/external/connections/people/schema"))
                .header("prefer", "include-unknown-enum-members"),
        )
        .await
        .body;
    assert_eq!(opted_in["properties"][0]["type"], "principal");
    assert_eq!(opted_in["properties"][1]["labels"], json!(["iconUrl"]));
}

#[tokio::test]
async fn deleting_a_connection_removes_its_schema_operations_and_index() {
    let app = TestApp::spawn().await;
    app.create_connection("tickets").await;
    let reply = patch_schema(&app, "v1.0", "tickets", ticket_properties()).await;
    let location = reply.header("location").to_string();
    let reply = app.delete("/v1.0/external/connections/tickets").await;
    assert_eq!(reply.status, 202);
    app.flush_index().await;
    assert!(app
        .state
        .index
        .get(
            &TenantId::default_tenant(),
            &ConnectionId::lookup("tickets")
        )
        .is_none());
    app.create_connection("tickets").await;
    app.get("/v1.0/external/connections/tickets/schema")
        .await
        .assert_error(404, "ItemNotFound");
    follow(&app, &location)
        .await
        .assert_error(404, "ItemNotFound");
    assert_eq!(
        app.get("/v1.0/external/connections/tickets").await.body["state"],
        "draft"
    );
}

#[tokio::test]
async fn schema_state_and_index_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_on_data_dir(dir.path().to_path_buf()).await;
    app.create_connection("tickets").await;
    app.register_schema("tickets", ticket_properties()).await;
    let before = app
        .get("/v1.0/external/connections/tickets/schema")
        .await
        .body;
    app.stop().await;

    let app = TestApp::spawn_on_data_dir(dir.path().to_path_buf()).await;
    let after = app
        .get("/v1.0/external/connections/tickets/schema")
        .await
        .body;
    assert_eq!(after["properties"], before["properties"]);
    assert_eq!(
        app.get("/v1.0/external/connections/tickets").await.body["state"],
        "ready"
    );
    let index = app.state.index.get(
        &TenantId::default_tenant(),
        &ConnectionId::lookup("tickets"),
    );
    assert!(
        index.is_some_and(|index| index.mapping.property("status").is_some()),
        "the index is rebuilt at start"
    );
}
