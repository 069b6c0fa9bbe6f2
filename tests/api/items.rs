//! External items (spec/items.md) through HTTP: ingestion, every refusal class with state left
//! unchanged, activities, quota, the index following the store, and concurrent writes.

use gcemu::config::Config;
use gcemu::domain::ids::{ConnectionId, TenantId};
use serde_json::{json, Value};

use crate::helpers::{Reply, TestApp};

const ITEMS: &str = "/v1.0/external/connections/tickets/items";

pub fn ticket_schema() -> Value {
    json!([
        {"name": "title", "type": "String", "isSearchable": true, "isRetrievable": true, "labels": ["title"]},
        {"name": "status", "type": "String", "isQueryable": true, "isRetrievable": true, "isRefinable": true},
        {"name": "priority", "type": "Int64", "isQueryable": true, "isRetrievable": true, "isRefinable": true},
        {"name": "score", "type": "Double", "isRetrievable": true},
        {"name": "closed", "type": "Boolean", "isQueryable": true, "isRetrievable": true},
        {"name": "created", "type": "DateTime", "isQueryable": true, "isRetrievable": true, "labels": ["createdDateTime"]},
        {"name": "tags", "type": "StringCollection", "isSearchable": true, "isRetrievable": true},
        {"name": "estimates", "type": "Int64Collection", "isRetrievable": true},
        {"name": "reviews", "type": "DateTimeCollection", "isRetrievable": true}
    ])
}

pub fn everyone() -> Value {
    json!([{"type": "everyone", "value": "everyone", "accessType": "grant"}])
}

pub async fn ready_app(config: Config) -> TestApp {
    let app = TestApp::spawn_with(config).await;
    app.create_connection("tickets").await;
    app.register_schema("tickets", ticket_schema()).await;
    app
}

fn full_item() -> Value {
    json!({
        "acl": [{"type": "user", "value": "e811976d-83df-4cbd-8b9b-5215b18aa874", "accessType": "grant"},
                {"type": "group", "value": "14m1b9c38qe647f6a", "accessType": "deny"},
                {"type": "everyoneExceptGuests", "value": "tenant", "accessType": "Grant"},
                {"type": "ExternalGroup", "value": "helpdesk-team", "accessType": "grant"}],
        "properties": {
            "title": "Printer jam", "title@odata.type": "String",
            "status": "open", "priority": 9007199254740993i64, "score": 0.75, "closed": false,
            "created": "2024-05-01T10:00:00.123+02:00",
            "tags@odata.type": "Collection(String)", "tags": ["hw", "floor3"],
            "estimates@odata.type": "Collection(Int64)", "estimates": [1, 2, 3],
            "reviews@odata.type": "Collection(DateTimeOffset)", "reviews": ["2024-05-02T08:00:00Z", "2024-05-03T08:00:00"]
        },
        "content": {"type": "html", "value": "<p>Printer on <b>floor 3</b> jams on duplex jobs.</p>"}
    })
}

async fn put(app: &TestApp, id: &str, body: &Value) -> Reply {
    app.put(&format!("{ITEMS}/{id}"), body).await
}

#[tokio::test]
async fn a_full_item_is_stored_answered_and_read_back_unchanged() {
    let app = ready_app(Config::for_tests()).await;
    let reply = put(&app, "T1001", &full_item()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["activities"],
        json!([]),
        "PUT answers the item with an empty activities list"
    );
    assert_eq!(reply.body["id"], "T1001");
    let read = app.get(&format!("{ITEMS}/T1001")).await;
    assert_eq!(read.status, 200);
    assert_eq!(
        read.body["@odata.context"],
        format!(
            "{}/v1.0/$metadata#external/connections('tickets')/items/$entity",
            app.address
        )
    );
    assert_eq!(
        read.body["properties"],
        full_item()["properties"],
        "properties round-trip as sent, annotations included"
    );
    assert_eq!(
        read.body["content"],
        json!({"value": "<p>Printer on <b>floor 3</b> jams on duplex jobs.</p>", "type": "html"})
    );
    assert_eq!(
        read.body["acl"][2],
        json!({"type": "everyoneExceptGuests", "value": "tenant", "accessType": "grant"}),
        "enums answered in camelCase"
    );
    assert_eq!(read.body["acl"][3]["type"], "externalGroup");
    assert!(
        read.body.get("activities").is_none(),
        "activities are write-only"
    );
}

#[tokio::test]
async fn put_replaces_patch_merges_and_delete_removes() {
    let app = ready_app(Config::for_tests()).await;
    put(&app, "T1", &full_item()).await;
    let replacement = json!({"acl": everyone(), "properties": {"title": "Replaced"}});
    assert_eq!(put(&app, "T1", &replacement).await.status, 200);
    let read = app.get(&format!("{ITEMS}/T1")).await.body;
    assert_eq!(
        read["properties"],
        json!({"title": "Replaced"}),
        "PUT replaces the whole item"
    );
    assert_eq!(read["content"], Value::Null);

    let reply = app
        .patch(
            &format!("{ITEMS}/T1"),
            &json!({"content": {"type": "text", "value": "now with content"}}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["properties"],
        json!({"title": "Replaced"}),
        "PATCH keeps members it was not sent"
    );
    assert_eq!(reply.body["content"]["value"], "now with content");
    let reply = app
        .patch(
            &format!("{ITEMS}/T1"),
            &json!({"properties": {"status": "closed"}}),
        )
        .await;
    assert_eq!(
        reply.body["properties"],
        json!({"status": "closed"}),
        "a sent property bag replaces the stored one"
    );
    app.patch(
        &format!("{ITEMS}/T9"),
        &json!({"properties": {"status": "x"}}),
    )
    .await
    .assert_error(404, "ItemNotFound");

    let reply = app.delete(&format!("{ITEMS}/T1")).await;
    assert_eq!(reply.status, 204);
    let reply = app.get(&format!("{ITEMS}/T1")).await;
    reply.assert_error(404, "ItemNotFound");
    assert_eq!(reply.body["error"]["innerError"]["source"], "Item");
    app.delete(&format!("{ITEMS}/T1"))
        .await
        .assert_error(404, "ItemNotFound");
}

/// Each refusal: status, code, and the stored item unchanged.
#[tokio::test]
async fn every_refusal_class_leaves_the_stored_item_unchanged() {
    let app = ready_app(Config::for_tests()).await;
    put(&app, "T1", &full_item()).await;
    let before = app.get(&format!("{ITEMS}/T1")).await.body;
    let with = |patch: Value| {
        let mut body = full_item();
        for (key, value) in patch.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    let cases: Vec<(&str, Value, u16, &str, &str)> = vec![
        (
            "no acl",
            json!({"properties": {"title": "x"}}),
            400,
            "InvalidRequest",
            "acl",
        ),
        (
            "acl not a list",
            with(json!({"acl": {"type": "everyone"}})),
            400,
            "InvalidRequest",
            "acl",
        ),
        (
            "acl entry without value",
            with(json!({"acl": [{"type": "user", "accessType": "grant"}]})),
            400,
            "InvalidRequest",
            "acl[0]",
        ),
        (
            "acl entry with empty value",
            with(json!({"acl": [{"type": "user", "value": " ", "accessType": "grant"}]})),
            400,
            "InvalidRequest",
            "acl[0]",
        ),
        (
            "unknown acl type",
            with(json!({"acl": [{"type": "role", "value": "x", "accessType": "grant"}]})),
            400,
            "InvalidRequest",
            "'role'",
        ),
        (
            "unknown access type",
            with(json!({"acl": [{"type": "user", "value": "x", "accessType": "allow"}]})),
            400,
            "InvalidRequest",
            "'allow'",
        ),
        (
            "identitySource on v1.0",
            with(
                json!({"acl": [{"type": "group", "value": "x", "accessType": "grant", "identitySource": "external"}]}),
            ),
            400,
            "InvalidRequest",
            "identitySource",
        ),
        (
            "no properties",
            json!({"acl": everyone()}),
            400,
            "InvalidRequest",
            "properties",
        ),
        (
            "empty properties",
            with(json!({"properties": {}})),
            400,
            "InvalidRequest",
            "at least one property",
        ),
        (
            "property not in schema",
            with(json!({"properties": {"title": "x", "projectName": "y"}})),
            400,
            "InvalidRequest",
            "projectName",
        ),
        (
            "string as int64",
            with(json!({"properties": {"priority": "2"}})),
            400,
            "BadRequest",
            "priority",
        ),
        (
            "fraction as int64",
            with(json!({"properties": {"priority": 2.5}})),
            400,
            "BadRequest",
            "priority",
        ),
        (
            "int64 out of range",
            with(json!({"properties": {"priority": 9223372036854775808u64}})),
            400,
            "BadRequest",
            "int64 range",
        ),
        (
            "string as double",
            with(json!({"properties": {"score": "high"}})),
            400,
            "BadRequest",
            "score",
        ),
        (
            "string as boolean",
            with(json!({"properties": {"closed": "false"}})),
            400,
            "BadRequest",
            "closed",
        ),
        (
            "bad date",
            with(json!({"properties": {"created": "01/05/2024"}})),
            400,
            "BadRequest",
            "created",
        ),
        (
            "scalar as collection",
            with(json!({"properties": {"tags": "hw"}})),
            400,
            "BadRequest",
            "tags",
        ),
        (
            "mixed collection",
            with(json!({"properties": {"estimates": [1, "two"]}})),
            400,
            "BadRequest",
            "estimates",
        ),
        (
            "DateTime collection annotation",
            with(
                json!({"properties": {"reviews@odata.type": "Collection(DateTime)", "reviews": []}}),
            ),
            400,
            "BadRequest",
            "DateTimeOffset",
        ),
        (
            "content as a string",
            with(json!({"content": "Printer jam"})),
            400,
            "BadRequest",
            "Property content in payload has a value that does not match schema.",
        ),
        (
            "content of an unknown type",
            with(json!({"content": {"type": "pdf", "value": "x"}})),
            400,
            "InvalidRequest",
            "pdf",
        ),
        (
            "custom property at the top level",
            with(json!({"title": "x"})),
            400,
            "InvalidRequest",
            "malformed",
        ),
        (
            "id different from the URL",
            with(json!({"id": "T2"})),
            400,
            "InvalidRequest",
            "T2",
        ),
        (
            "inline activity without @odata.type",
            with(
                json!({"activities": [{"type": "created", "startDateTime": "2024-05-01T10:00:00Z", "performedBy": {"id": "u1", "type": "user"}}]}),
            ),
            400,
            "InvalidRequest",
            "@odata.type",
        ),
    ];
    for (case, body, status, code, expected) in cases {
        let reply = put(&app, "T1", &body).await;
        reply.assert_error(status, code);
        let text = format!(
            "{} {} {}",
            reply.error_message(),
            reply.body["error"]["innerError"]["message"],
            reply.body["error"]["target"]
        );
        assert!(
            text.contains(expected),
            "{case}: '{expected}' not in {text}"
        );
        assert_eq!(
            app.get(&format!("{ITEMS}/T1")).await.body,
            before,
            "{case} changed the stored item"
        );
    }
}

#[tokio::test]
async fn item_ids_follow_the_rule_and_unknown_ones_are_404() {
    let app = ready_app(Config::for_tests()).await;
    let body = json!({"acl": everyone(), "properties": {"title": "x"}});
    for good in [
        "sdks__create-client",
        "c6528a79-0d72-4f8c-6972-08dd7c2f4d78",
        "42",
        "with.dot",
    ] {
        assert_eq!(put(&app, good, &body).await.status, 200, "{good}");
    }
    for bad in ["with%20space", "with:colon", &"i".repeat(129)] {
        let reply = put(&app, bad, &body).await;
        reply.assert_error(400, "InvalidRequest");
    }
    app.get(&format!("{ITEMS}/never.put"))
        .await
        .assert_error(404, "ItemNotFound");
    let reply = app.post(ITEMS, &body).await;
    reply.assert_error(404, "ItemNotFound");
}

#[tokio::test]
async fn items_need_a_ready_connection() {
    let app = TestApp::spawn().await;
    app.create_connection("drafty").await;
    let body = json!({"acl": everyone(), "properties": {"title": "x"}});
    let reply = app
        .put("/v1.0/external/connections/drafty/items/T1", &body)
        .await;
    reply.assert_error(400, "InvalidRequest");
    assert!(reply.error_message().contains("not ready"));
    app.put("/v1.0/external/connections/nosuch/items/T1", &body)
        .await
        .assert_error(404, "ItemNotFound");

    let mut config = Config::for_tests();
    config.schema_delay = std::time::Duration::from_secs(60);
    let app = TestApp::spawn_with(config).await;
    app.create_connection("slow").await;
    let reply = app
        .patch("/v1.0/external/connections/slow/schema", &json!({"baseType": "microsoft.graph.externalItem", "properties": [{"name": "title", "type": "string"}]}))
        .await;
    assert_eq!(reply.status, 202);
    app.put("/v1.0/external/connections/slow/items/T1", &body)
        .await
        .assert_error(400, "InvalidRequest");
    app.advance_clock(60).await;
    assert_eq!(
        app.put("/v1.0/external/connections/slow/items/T1", &body)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn beta_accepts_identity_source_and_the_legacy_external_group_form() {
    let app = ready_app(Config::for_tests()).await;
    let body = json!({"acl": [{"type": "group", "value": "helpdesk", "accessType": "grant", "identitySource": "External"}], "properties": {"title": "x"}});
    let reply = app
        .put("/beta/external/connections/tickets/items/T1", &body)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["acl"][0]["identitySource"], "external");
}

#[tokio::test]
async fn add_activities_answers_200_or_207_and_refuses_more_than_20() {
    let app = ready_app(Config::for_tests()).await;
    put(&app, "T1", &full_item()).await;
    let activity = json!({"@odata.type": "#microsoft.graph.externalConnectors.externalActivity", "type": "created",
                          "startDateTime": "2024-05-01T10:00:00Z", "performedBy": {"id": "u1", "type": "user"}});
    let reply = app
        .post(
            &format!("{ITEMS}/T1/addActivities"),
            &json!({"activities": [activity, activity]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["value"].as_array().unwrap().len(), 2);
    assert_eq!(reply.body["value"][0]["error"], Value::Null);
    assert_eq!(
        reply.body["value"][0]["@odata.type"],
        "#microsoft.graph.externalConnectors.externalActivityResult"
    );

    let bad = json!({"type": "liked", "startDateTime": "2024-05-01T10:00:00Z", "performedBy": {"id": "u1", "type": "user"}});
    let reply = app
        .post(
            &format!("{ITEMS}/T1/microsoft.graph.externalConnectors.addActivities"),
            &json!({"activities": [activity, bad]}),
        )
        .await;
    assert_eq!(reply.status, 207, "{}", reply.body);
    assert_eq!(reply.body["value"][0]["error"], Value::Null);
    assert_eq!(reply.body["value"][1]["error"]["code"], "InvalidRequest");
    assert!(reply.body["value"][1]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("liked"));

    let many: Vec<Value> = (0..21).map(|_| activity.clone()).collect();
    let reply = app
        .post(
            &format!("{ITEMS}/T1/addActivities"),
            &json!({"activities": many}),
        )
        .await;
    reply.assert_error(400, "InvalidRequest");
    assert!(reply.error_message().contains("20"));
    app.post(
        &format!("{ITEMS}/T9/addActivities"),
        &json!({"activities": [activity]}),
    )
    .await
    .assert_error(404, "ItemNotFound");
}

#[tokio::test]
async fn the_item_quota_refuses_new_items_but_not_updates() {
    let mut config = Config::for_tests();
    config.item_quota = Some(2);
    let app = ready_app(config).await;
    let body = json!({"acl": everyone(), "properties": {"title": "x"}});
    assert_eq!(put(&app, "T1", &body).await.status, 200);
    let quota = app.get("/beta/external/connections/tickets/quota").await;
    assert_eq!(quota.body["itemsRemaining"], 1);
    assert_eq!(put(&app, "T2", &body).await.status, 200);
    let reply = put(&app, "T3", &body).await;
    reply.assert_error(403, "QuotaLimitReached");
    app.get(&format!("{ITEMS}/T3"))
        .await
        .assert_error(404, "ItemNotFound");
    assert_eq!(
        put(
            &app,
            "T1",
            &json!({"acl": everyone(), "properties": {"title": "updated"}})
        )
        .await
        .status,
        200,
        "updates pass at the cap"
    );
    assert_eq!(
        app.get("/v1.0/external/connections/tickets").await.body["state"],
        "limitExceeded"
    );
    assert_eq!(
        app.get("/beta/external/connections/tickets/quota")
            .await
            .body["itemsRemaining"],
        0
    );
    assert_eq!(
        app.get("/beta/external/connections/tickets").await.body["ingestedItemsCount"],
        2
    );
    app.delete(&format!("{ITEMS}/T2")).await;
    assert_eq!(
        app.get("/v1.0/external/connections/tickets").await.body["state"],
        "ready"
    );
    assert_eq!(put(&app, "T3", &body).await.status, 200);
    app.get("/v1.0/external/connections/tickets/quota")
        .await
        .assert_error(400, "BadRequest");
}

fn index_doc_count(app: &TestApp, item_id: Option<&str>) -> u64 {
    let index = app
        .state
        .index
        .get(
            &TenantId::default_tenant(),
            &ConnectionId::lookup("tickets"),
        )
        .expect("the connection has an index");
    let searcher = index.reader.searcher();
    match item_id {
        None => searcher.num_docs(),
        Some(id) => {
            let term = tantivy::Term::from_field_text(index.mapping.id, id);
            let query =
                tantivy::query::TermQuery::new(term, tantivy::schema::IndexRecordOption::Basic);
            searcher.search(&query, &tantivy::collector::Count).unwrap() as u64
        }
    }
}

#[tokio::test]
async fn the_index_follows_puts_replaces_and_deletes() {
    let app = ready_app(Config::for_tests()).await;
    for id in ["T1", "T2", "T3"] {
        put(&app, id, &full_item()).await;
    }
    put(
        &app,
        "T1",
        &json!({"acl": everyone(), "properties": {"title": "again"}}),
    )
    .await;
    app.delete(&format!("{ITEMS}/T2")).await;
    app.wait_for_index().await;
    assert_eq!(index_doc_count(&app, None), 2);
    assert_eq!(
        index_doc_count(&app, Some("T1")),
        1,
        "a replaced item is indexed once"
    );
    assert_eq!(
        index_doc_count(&app, Some("T2")),
        0,
        "a deleted item leaves the index"
    );
    // Created again after its deletion: indexed once, with no earlier document left to replace.
    put(&app, "T2", &full_item()).await;
    app.wait_for_index().await;
    assert_eq!(index_doc_count(&app, Some("T2")), 1);
    assert_eq!(index_doc_count(&app, None), 3);
    app.delete("/v1.0/external/connections/tickets").await;
    app.flush_index().await;
    assert!(app
        .state
        .index
        .get(
            &TenantId::default_tenant(),
            &ConnectionId::lookup("tickets")
        )
        .is_none());
}

/// A created item's change reaches the indexer after a rebuild already read the item from
/// SQLite (it was committed while the rebuild ran): it must replace that document, not add a
/// second one, even though the store created the item.
#[tokio::test]
async fn a_created_item_that_a_rebuild_already_read_is_indexed_once() {
    use gcemu::domain::ids::ItemId;
    use gcemu::store::items;
    let app = ready_app(Config::for_tests()).await;
    put(&app, "T1", &full_item()).await;
    app.wait_for_index().await;
    let tenant = TenantId::default_tenant();
    let connection = ConnectionId::lookup("tickets");
    let (t, c) = (tenant.clone(), connection.clone());
    let mut item = app
        .state
        .store
        .read(move |db| items::get(db, &t, &c, &ItemId::parse("T1").unwrap()))
        .await
        .unwrap()
        .unwrap();
    item.id = ItemId::parse("Late").unwrap();
    // Committed, its change not yet handed to the indexer.
    let (t, c, stored) = (tenant.clone(), connection.clone(), item.clone());
    let seq = app
        .state
        .store
        .write(move |db| {
            let seq = items::next_sequence(db)?;
            items::insert(db, &t, &c, &stored, seq)?;
            Ok(seq)
        })
        .await
        .unwrap();
    // A new queryable property changes the index's mapping, so the index is rebuilt from
    // SQLite, reading "Late".
    let mut schema = (*app
        .state
        .index
        .effective_schema(&tenant, &connection)
        .unwrap())
    .clone();
    let mut added = gcemu::domain::schema::Property::new(
        "addedLater",
        gcemu::domain::schema::PropertyType::String,
    );
    added.is_queryable = true;
    schema.properties.push(added);
    app.state.index.apply_schema(&tenant, &connection, schema);
    app.flush_index().await;
    assert_eq!(
        index_doc_count(&app, Some("Late")),
        1,
        "the rebuild read it"
    );
    // Then its change arrives, as the store's effect would have sent it.
    app.state
        .index
        .upsert(&tenant, &connection, std::sync::Arc::new(item), seq, true);
    app.wait_for_index().await;
    assert_eq!(index_doc_count(&app, Some("Late")), 1);
    assert_eq!(index_doc_count(&app, None), 2);
}

#[tokio::test]
async fn concurrent_puts_are_safe_and_the_last_acknowledged_write_wins() {
    let app = std::sync::Arc::new(ready_app(Config::for_tests()).await);
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..10 {
                let same = json!({"acl": everyone(), "properties": {"title": format!("w{writer}r{round}")}});
                assert_eq!(put(&app, "shared", &same).await.status, 200);
                let own = json!({"acl": everyone(), "properties": {"title": "own"}});
                assert_eq!(put(&app, &format!("w{writer}i{round}"), &own).await.status, 200);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let final_title = app.get(&format!("{ITEMS}/shared")).await.body["properties"]["title"]
        .as_str()
        .unwrap()
        .to_string();
    // After the concurrent writers, one more acknowledged write must win everywhere.
    put(
        &app,
        "shared",
        &json!({"acl": everyone(), "properties": {"title": "last"}}),
    )
    .await;
    assert!(final_title.starts_with('w'));
    assert_eq!(
        app.get(&format!("{ITEMS}/shared")).await.body["properties"]["title"],
        "last"
    );
    app.wait_for_index().await;
    assert_eq!(index_doc_count(&app, None), 81);
    assert_eq!(index_doc_count(&app, Some("shared")), 1);
    assert_eq!(
        app.get("/beta/external/connections/tickets").await.body["ingestedItemsCount"],
        81
    );
}

#[tokio::test]
async fn items_and_their_index_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests();
    config.persistence = gcemu::config::Persistence::DataDir(dir.path().to_path_buf());
    let app = ready_app(config.clone()).await;
    put(&app, "T1", &full_item()).await;
    put(&app, "T2", &full_item()).await;
    put(&app, "T3", &full_item()).await;
    app.delete(&format!("{ITEMS}/T2")).await;
    app.stop().await;

    // Damage the derived index as a crash between the two commits would: a ghost of a deleted
    // item, and a stored item missing.
    let tenant_dir: String = TenantId::default_tenant()
        .as_str()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    // Each mapping generation of the connection's index has a directory of its own.
    let generations: Vec<_> =
        std::fs::read_dir(dir.path().join("index").join(tenant_dir).join("tickets"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
    assert_eq!(generations.len(), 1, "one generation: {generations:?}");
    let index = tantivy::Index::open_in_dir(&generations[0]).unwrap();
    let id_field = index.schema().get_field("id").unwrap();
    let mut writer: tantivy::IndexWriter = index.writer(15_000_000).unwrap();
    writer.delete_term(tantivy::Term::from_field_text(id_field, "T3"));
    writer
        .add_document(tantivy::doc!(id_field => "ghost"))
        .unwrap();
    writer.commit().unwrap();
    drop(writer);

    let app = TestApp::spawn_with(config).await;
    assert_eq!(
        app.get(&format!("{ITEMS}/T1")).await.body["properties"],
        full_item()["properties"]
    );
    app.wait_for_index().await;
    assert_eq!(
        index_doc_count(&app, None),
        2,
        "rebuilt from SQLite at start"
    );
    assert_eq!(
        index_doc_count(&app, Some("T3")),
        1,
        "the missing item is back"
    );
    assert_eq!(index_doc_count(&app, Some("ghost")), 0, "the ghost is gone");
}

#[tokio::test]
async fn an_item_over_the_size_cap_gets_413_and_changes_nothing() {
    let mut config = Config::for_tests();
    config.max_body_bytes = 64 * 1024;
    let app = ready_app(config).await;
    put(&app, "T1", &full_item()).await;
    let before = app.get(&format!("{ITEMS}/T1")).await.body;
    let mut big = full_item();
    big["content"] = json!({"type": "text", "value": "x".repeat(70 * 1024)});
    put(&app, "T1", &big)
        .await
        .assert_error(413, "RequestEntityTooLarge");
    assert_eq!(app.get(&format!("{ITEMS}/T1")).await.body, before);
    big["content"]["value"] = json!("x".repeat(60 * 1024));
    assert_eq!(
        put(&app, "T1", &big).await.status,
        200,
        "just under the cap is fine"
    );
}

#[tokio::test]
async fn the_information_protection_label_round_trips() {
    let app = ready_app(Config::for_tests()).await;
    let mut body = full_item();
    body["informationProtectionLabel"] =
        json!({"sensitivityLabelId": "f42aa342-8706-4288-bd11-ebb85995028c"});
    assert_eq!(put(&app, "T1", &body).await.status, 200);
    let read = app.get(&format!("{ITEMS}/T1")).await.body;
    assert_eq!(
        read["informationProtectionLabel"],
        json!({"sensitivityLabelId": "f42aa342-8706-4288-bd11-ebb85995028c"})
    );
    let patched = app
        .patch(
            &format!("{ITEMS}/T1"),
            &json!({"properties": {"title": "x"}}),
        )
        .await
        .body;
    assert_eq!(
        patched["informationProtectionLabel"]["sensitivityLabelId"],
        "f42aa342-8706-4288-bd11-ebb85995028c",
        "kept when not sent"
    );
    let cleared = app
        .patch(
            &format!("{ITEMS}/T1"),
            &json!({"informationProtectionLabel": null}),
        )
        .await
        .body;
    assert!(cleared.get("informationProtectionLabel").is_none());
    body["informationProtectionLabel"] = json!("confidential");
    put(&app, "T1", &body)
        .await
        .assert_error(400, "InvalidRequest");
    body["informationProtectionLabel"] = json!({"labelName": "confidential"});
    put(&app, "T1", &body)
        .await
        .assert_error(400, "InvalidRequest");
}

/// Item ids with dots (file names, versions) are accepted as the spec's lenient default says;
/// they are read and deleted like any other; dots alone are refused.
#[tokio::test]
async fn item_ids_with_dots_work_end_to_end() {
    let app = ready_app(Config::for_tests()).await;
    let stored = put(&app, "report.v2", &full_item()).await;
    assert_eq!(stored.status, 200, "{}", stored.body);
    let read = app.get(&format!("{ITEMS}/report.v2")).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["id"], "report.v2");
    let dotted = app.get(&format!("{ITEMS}/report%2Ev2")).await;
    assert_eq!(
        dotted.status, 200,
        "percent-encoded dots name the same item"
    );
    for bad in ["...", "a:b"] {
        let reply = app.put(&format!("{ITEMS}/{bad}"), &full_item()).await;
        reply.assert_error(400, "InvalidRequest");
    }
    assert_eq!(app.delete(&format!("{ITEMS}/report.v2")).await.status, 204);
}
