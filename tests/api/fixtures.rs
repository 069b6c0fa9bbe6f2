//! Fixtures: `POST /_emulator/fixtures`, `GET /_emulator/fixtures` and `--fixtures` at start.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::{token, TestApp};
use gcemu::config::Config;

const TENANT: &str = "00000000-0000-0000-0000-000000000001";
const OTHER_TENANT: &str = "22222222-0000-0000-0000-000000000002";

fn item(id: &str, title: &str, priority: &str, acl: Value) -> Value {
    json!({
        "id": id,
        "properties": {"title": title, "priority": priority},
        "content": {"type": "text", "value": format!("{title} body text")},
        "acl": acl,
    })
}

/// A small tenant: guests and members, nested groups, an external group reached through an
/// Entra group, and items granted and denied every way.
fn document() -> Value {
    json!({
        "$schema": "../fixtures/schema.json",
        "tenants": [{
            "id": TENANT,
            "users": [
                {"id": "u-adele", "userPrincipalName": "adele@contoso.com", "displayName": "Adele Vance"},
                {"userPrincipalName": "bob@contoso.com", "displayName": "Bob", "jobTitle": "Engineer"},
                {"userPrincipalName": "gina_fabrikam.com#EXT#@contoso.com", "displayName": "Gina (guest)", "userType": "Guest"},
                {"userPrincipalName": "old@contoso.com", "displayName": "Former employee", "accountEnabled": false}
            ],
            "groups": [
                {"id": "grp-staff", "displayName": "All staff", "members": ["grp-eng", "gina_fabrikam.com#EXT#@contoso.com"]},
                {"id": "grp-eng", "displayName": "Engineering", "mailNickname": "eng", "members": ["adele@contoso.com", "grp-platform"]},
                {"id": "grp-platform", "displayName": "Platform", "members": ["bob@contoso.com"]}
            ],
            "applications": [
                {"appId": "6B5A0E3C-0000-4000-8000-000000000001", "displayName": "Ticket connector", "secrets": ["s3cret"], "roles": ["ExternalItem.ReadWrite.OwnedBy"]}
            ],
            "connections": [
                {
                    "id": "tickets",
                    "name": "Tickets",
                    "description": "Help desk tickets",
                    "schema": {"properties": [
                        {"name": "title", "type": "String", "isSearchable": true, "isRetrievable": true, "labels": ["title"]},
                        {"name": "priority", "type": "string", "isQueryable": true, "isRetrievable": true, "isRefinable": true}
                    ]},
                    "groups": [
                        {"id": "oncall", "displayName": "On call", "members": [{"id": "grp-platform", "type": "group"}]},
                        {"id": "escalation", "members": [{"id": "oncall", "type": "externalGroup"}, {"id": "adele@contoso.com", "type": "user"}]}
                    ],
                    "items": [
                        item("t1", "Printer jam on floor two", "high", json!([{"type": "everyone", "value": "everyone", "accessType": "grant"}])),
                        item("t2", "Printer toner for guests", "low", json!([{"type": "everyoneExceptGuests", "value": "x", "accessType": "grant"}])),
                        item("t3", "Printer driver for engineering", "high", json!([{"type": "group", "value": "grp-eng", "accessType": "grant"}])),
                        item("t4", "Printer in the on-call room", "low", json!([{"type": "externalGroup", "value": "escalation", "accessType": "grant"}])),
                        item("t5", "Printer secrets", "high", json!([
                            {"type": "group", "value": "grp-staff", "accessType": "grant"},
                            {"type": "user", "value": "bob@contoso.com", "accessType": "deny"}
                        ])),
                        {
                            "id": "t6",
                            "properties": {"title": "Printer for Adele only", "priority": "low"},
                            "acl": [{"type": "user", "value": "u-adele", "accessType": "grant"}],
                            "activities": [{"@odata.type": "#microsoft.graph.externalConnectors.externalActivity", "type": "created", "startDateTime": "2026-01-02T03:04:05Z", "performedBy": {"type": "user", "id": "u-adele"}}]
                        }
                    ]
                },
                {"id": "drafts", "name": "A draft connection"}
            ]
        }]
    })
}

/// The ids `user` finds for `query` in `connection`, as a sorted set.
async fn visible(app: &TestApp, user: &str, connection: &str, query: &str) -> BTreeSet<String> {
    let minted = app.post("/_emulator/token", &json!({"user": user})).await;
    assert_eq!(minted.status, 200, "{}", minted.body);
    let bearer = minted.body["access_token"].as_str().unwrap().to_string();
    let reply = app
        .send(
            app.client
                .post(app.url("/v1.0/search/query"))
                .bearer_auth(bearer)
                .json(&json!({"requests": [{
                    "entityTypes": ["externalItem"],
                    "contentSources": [format!("/external/connections/{connection}")],
                    "query": {"queryString": query},
                    "size": 100,
                }]})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["value"][0]["hitsContainers"][0]["hits"]
        .as_array()
        .map(|hits| {
            hits.iter()
                .map(|hit| hit["hitId"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

#[tokio::test]
async fn a_document_loads_and_every_kind_appears_through_the_graph_api() {
    let app = TestApp::spawn().await;
    let reply = app.post("/_emulator/fixtures", &document()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["created"],
        json!({
            "tenants": 1, "users": 4, "groups": 3, "groupMembers": 5, "applications": 1,
            "connections": 2, "schemas": 1, "externalGroups": 2, "externalGroupMembers": 3,
            "items": 6, "activities": 1
        })
    );
    assert_eq!(reply.body["tenants"], json!([TENANT]));

    let adele = app.get("/v1.0/users/adele@contoso.com").await;
    assert_eq!(adele.body["id"], "u-adele");
    let guest = app
        .get("/v1.0/users/gina_fabrikam.com%23EXT%23@contoso.com")
        .await;
    assert_eq!(guest.body["userType"], "Guest", "{}", guest.body);
    let members = app.get("/v1.0/groups/grp-eng/members").await;
    let ids: BTreeSet<String> = members.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, set(&["u-adele", "grp-platform"]));

    let tickets = app.get("/v1.0/external/connections/tickets").await;
    assert_eq!(tickets.body["state"], "ready");
    let drafts = app.get("/v1.0/external/connections/drafts").await;
    assert_eq!(drafts.body["state"], "draft");
    let schema = app.get("/v1.0/external/connections/tickets/schema").await;
    assert_eq!(schema.body["properties"][1]["isRefinable"], true);
    let group = app
        .get("/v1.0/external/connections/tickets/groups/oncall")
        .await;
    assert_eq!(group.body["displayName"], "On call");
    let stored = app.get("/v1.0/external/connections/tickets/items/t6").await;
    assert_eq!(stored.body["properties"]["title"], "Printer for Adele only");

    // ACLs are evaluated over the loaded directory and external groups.
    assert_eq!(
        visible(&app, "adele@contoso.com", "tickets", "printer").await,
        set(&["t1", "t2", "t3", "t4", "t5", "t6"])
    );
    assert_eq!(
        visible(&app, "bob@contoso.com", "tickets", "printer").await,
        set(&["t1", "t2", "t3", "t4"])
    );
    assert_eq!(
        visible(
            &app,
            "gina_fabrikam.com#EXT#@contoso.com",
            "tickets",
            "printer"
        )
        .await,
        set(&["t1", "t5"])
    );
    assert_eq!(
        visible(&app, "old@contoso.com", "tickets", "printer").await,
        set(&["t1", "t2"])
    );
}

#[tokio::test]
async fn one_bad_value_deep_inside_is_refused_with_its_path_and_nothing_is_applied() {
    let app = TestApp::spawn().await;
    // State that must survive the refused load untouched.
    let created = app
        .post(
            "/v1.0/users",
            &json!({"userPrincipalName": "keep@contoso.com", "displayName": "Keep me"}),
        )
        .await;
    assert_eq!(created.status, 201);
    let mut document = document();
    let items = document["tenants"][0]["connections"][0]["items"]
        .as_array_mut()
        .unwrap();
    for index in 6..18 {
        items.push(item(
            &format!("n{index}"),
            "Filler",
            "low",
            json!([{"type": "everyone", "value": "everyone", "accessType": "grant"}]),
        ));
    }
    items[17]["acl"][0]["type"] = json!("everybody");

    let reply = app.post("/_emulator/fixtures", &document).await;
    reply.assert_error(400, "InvalidRequest");
    let details = reply.body["error"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 1, "{}", reply.body);
    assert_eq!(
        details[0]["target"],
        "/tenants/0/connections/0/items/17/acl/0/type"
    );
    // The API's own message for that value.
    let put = app
        .put(
            "/v1.0/external/connections/anything/items/x",
            &json!({"properties": {"title": "x"}, "acl": [{"type": "everybody", "value": "v", "accessType": "grant"}]}),
        )
        .await;
    assert_eq!(details[0]["message"], put.error_message(), "{}", put.body);
    assert!(reply
        .error_message()
        .contains("/tenants/0/connections/0/items/17/acl/0/type"));

    assert_eq!(app.get("/v1.0/users/keep@contoso.com").await.status, 200);
    assert_eq!(app.get("/v1.0/users/adele@contoso.com").await.status, 404);
    assert_eq!(
        app.get("/v1.0/external/connections/tickets").await.status,
        404
    );
}

#[tokio::test]
async fn every_problem_is_listed_with_its_path_and_the_api_message() {
    let app = TestApp::spawn().await;
    let mut document = document();
    let tenant = &mut document["tenants"][0];
    tenant["users"][1]["userPrincipalName"] = json!("no-at-sign");
    tenant["users"][3]["id"] = json!("u-adele");
    tenant["groups"][2]["members"] = json!(["nobody@contoso.com"]);
    tenant["applications"][0]["appId"] = json!("not-a-guid");
    let connection = &mut tenant["connections"][0];
    connection["schema"]["properties"][1]["isSearchable"] = json!(true);
    connection["groups"][1]["members"][0]["type"] = json!("robot");
    tenant["connections"][1]["id"] = json!("x");
    tenant["connections"][1]["items"] = json!([item("d1", "Draft item", "low", json!([]))]);
    tenant["surprise"] = json!(1);

    let reply = app.post("/_emulator/fixtures", &document).await;
    reply.assert_error(400, "InvalidRequest");
    let targets: BTreeSet<String> = reply.body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["target"].as_str().unwrap().to_string())
        .collect();
    let expected = set(&[
        "/tenants/0/surprise",
        "/tenants/0/users/1/userPrincipalName",
        "/tenants/0/users/3/id",
        "/tenants/0/groups/2/members/0",
        "/tenants/0/applications/0/appId",
        "/tenants/0/connections/0/schema/properties/1/isRefinable",
        "/tenants/0/connections/0/groups/1/members/0/type",
        "/tenants/0/connections/1/id",
    ]);
    assert_eq!(targets, expected, "{}", reply.body);
}

#[tokio::test]
async fn items_are_checked_against_the_declared_schema_like_a_put() {
    let app = TestApp::spawn().await;
    let mut document = document();
    let items = document["tenants"][0]["connections"][0]["items"]
        .as_array_mut()
        .unwrap();
    items[0]["properties"]["priority"] = json!(3);
    items[1]["properties"]["colour"] = json!("red");
    items[5]["id"] = json!("t3");
    items[3]["id"] = json!("has a space");
    let reply = app.post("/_emulator/fixtures", &document).await;
    reply.assert_error(400, "InvalidRequest");
    let details = reply.body["error"]["details"].as_array().unwrap();
    let by_target = |target: &str| {
        details
            .iter()
            .find(|d| d["target"] == target)
            .unwrap_or_else(|| panic!("no problem at {target}: {}", reply.body))
            .clone()
    };
    let mismatch = by_target("/tenants/0/connections/0/items/0/properties/priority");
    assert_eq!(mismatch["code"], "BadRequest");
    assert!(mismatch["message"]
        .as_str()
        .unwrap()
        .contains("does not match schema"));
    by_target("/tenants/0/connections/0/items/1/properties/colour");
    let duplicate = by_target("/tenants/0/connections/0/items/5/id");
    assert!(duplicate["message"]
        .as_str()
        .unwrap()
        .contains("/tenants/0/connections/0/items/2"));
    by_target("/tenants/0/connections/0/items/3/id");
}

#[tokio::test]
async fn a_draft_connection_cannot_hold_items_and_quotas_apply() {
    let mut config = Config::for_tests();
    config.item_quota = Some(5);
    let app = TestApp::spawn_with(config).await;
    let reply = app.post("/_emulator/fixtures", &document()).await;
    reply.assert_error(400, "InvalidRequest");
    let details = reply.body["error"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 1, "{}", reply.body);
    assert_eq!(details[0]["target"], "/tenants/0/connections/0/items/5");
    assert_eq!(details[0]["code"], "QuotaLimitReached", "{}", reply.body);

    let mut document = document();
    document["tenants"][0]["connections"][1]["items"] =
        json!([item("d1", "Draft item", "low", json!([]))]);
    document["tenants"][0]["connections"][0]["items"] = json!([]);
    let reply = app.post("/_emulator/fixtures", &document).await;
    let details = reply.body["error"]["details"].as_array().unwrap();
    assert_eq!(details[0]["target"], "/tenants/0/connections/1/items/0");
    assert!(details[0]["message"]
        .as_str()
        .unwrap()
        .contains("not ready"));
}

#[tokio::test]
async fn loading_replaces_the_declared_tenant_and_leaves_others_alone() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.post("/_emulator/fixtures", &document()).await.status,
        200
    );
    // A write made by a test after the load...
    let extra = app
        .put(
            "/v1.0/external/connections/tickets/items/extra",
            &item(
                "extra",
                "Printer extra",
                "low",
                json!([{"type": "everyone", "value": "everyone", "accessType": "grant"}]),
            ),
        )
        .await;
    assert_eq!(extra.status, 200, "{}", extra.body);
    // ...and another tenant's state.
    let other = format!("Bearer {}", token(json!({"tid": OTHER_TENANT})));
    let created = app
        .send(
            app.client
                .post(app.url("/v1.0/users"))
                .header("authorization", &other)
                .json(&json!({"userPrincipalName": "zed@other.com", "displayName": "Zed"})),
        )
        .await;
    assert_eq!(created.status, 201);

    // Loading again restores the declared state: the extra item is gone, in the store and the index.
    assert_eq!(
        app.post("/_emulator/fixtures", &document()).await.status,
        200
    );
    assert_eq!(
        app.get("/v1.0/external/connections/tickets/items/extra")
            .await
            .status,
        404
    );
    assert!(!visible(&app, "adele@contoso.com", "tickets", "printer")
        .await
        .contains("extra"));
    let zed = app
        .send(
            app.client
                .get(app.url("/v1.0/users/zed@other.com"))
                .header("authorization", &other),
        )
        .await;
    assert_eq!(zed.status, 200);
}

#[tokio::test]
async fn an_export_loaded_into_an_empty_emulator_gives_every_persona_the_same_results() {
    let source = TestApp::spawn().await;
    assert_eq!(
        source.post("/_emulator/fixtures", &document()).await.status,
        200
    );
    // State built through the API after the load is exported too.
    let added = source
        .post(
            "/v1.0/external/connections/tickets/groups/oncall/members",
            &json!({"id": "gina_fabrikam.com#EXT#@contoso.com", "type": "user"}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    let exported = source.get("/_emulator/fixtures").await;
    assert_eq!(exported.status, 200, "{}", exported.body);
    let exported_tenant = &exported.body["tenants"][0];
    assert_eq!(exported_tenant["id"], TENANT);
    assert_eq!(exported_tenant["users"].as_array().unwrap().len(), 4);
    let former = exported_tenant["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["userPrincipalName"] == "old@contoso.com")
        .unwrap();
    assert_eq!(former["accountEnabled"], false);

    let target = TestApp::spawn().await;
    let loaded = target.post("/_emulator/fixtures", &exported.body).await;
    assert_eq!(loaded.status, 200, "{}", loaded.body);
    assert_eq!(loaded.body["created"]["activities"], 1);
    assert_eq!(loaded.body["created"]["externalGroupMembers"], 4);
    for user in [
        "adele@contoso.com",
        "bob@contoso.com",
        "gina_fabrikam.com#EXT#@contoso.com",
        "old@contoso.com",
    ] {
        for query in ["printer", "engineering", "*"] {
            assert_eq!(
                visible(&source, user, "tickets", query).await,
                visible(&target, user, "tickets", query).await,
                "{user} / {query}"
            );
        }
    }
    // And exporting the copy gives the same document.
    let again = target.get("/_emulator/fixtures").await;
    assert_eq!(again.body, exported.body);
}

#[tokio::test]
async fn fixtures_files_load_at_start_and_a_bad_file_stops_the_start_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("tenant.json");
    std::fs::write(&good, document().to_string()).unwrap();
    let mut config = Config::for_tests();
    config.fixtures = vec![good.clone()];
    let app = TestApp::spawn_with(config).await;
    assert_eq!(
        visible(&app, "bob@contoso.com", "tickets", "printer").await,
        set(&["t1", "t2", "t3", "t4"])
    );
    app.stop().await;

    let mut bad_document = document();
    bad_document["tenants"][0]["id"] = json!(OTHER_TENANT);
    bad_document["tenants"][0]["connections"][0]["items"][4]["properties"]["priority"] =
        json!(true);
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, bad_document.to_string()).unwrap();
    let mut config = Config::for_tests();
    config.fixtures = vec![good, bad.clone()];
    let error = match gcemu::app::App::build(config).await {
        Ok(_) => panic!("a bad fixtures file must stop the start"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains(&format!(
            "{}#/tenants/0/connections/0/items/4/properties/priority",
            bad.display()
        )),
        "{error}"
    );
}

#[tokio::test]
async fn a_load_on_a_data_dir_is_durable_and_a_reload_replaces_the_index_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_on_data_dir(dir.path().to_path_buf()).await;
    assert_eq!(
        app.post("/_emulator/fixtures", &document()).await.status,
        200
    );
    let extra = app
        .put(
            "/v1.0/external/connections/tickets/items/extra",
            &item(
                "extra",
                "Printer extra",
                "low",
                json!([{"type": "everyone", "value": "everyone", "accessType": "grant"}]),
            ),
        )
        .await;
    assert_eq!(extra.status, 200, "{}", extra.body);
    assert_eq!(
        app.post("/_emulator/fixtures", &document()).await.status,
        200
    );
    let expected = set(&["t1", "t2", "t3", "t4"]);
    assert_eq!(
        visible(&app, "bob@contoso.com", "tickets", "printer").await,
        expected
    );
    app.stop().await;

    let restarted = TestApp::spawn_on_data_dir(dir.path().to_path_buf()).await;
    assert_eq!(
        visible(&restarted, "bob@contoso.com", "tickets", "printer").await,
        expected
    );
    assert_eq!(
        restarted
            .get("/v1.0/external/connections/tickets/items/t6")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn an_app_token_for_a_declared_application_carries_its_granted_roles() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.post("/_emulator/fixtures", &document()).await.status,
        200
    );
    let claims = |token: &str| -> Value {
        use base64::Engine;
        let payload = token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    let minted = app
        .post(
            "/_emulator/token",
            &json!({"app": "6b5a0e3c-0000-4000-8000-000000000001"}),
        )
        .await;
    let token = minted.body["access_token"].as_str().unwrap();
    assert_eq!(
        claims(token)["roles"],
        json!(["ExternalItem.ReadWrite.OwnedBy"])
    );
    // Roles named in the request win; an undeclared app gets only what is asked.
    let minted = app
        .post(
            "/_emulator/token",
            &json!({"app": "6b5a0e3c-0000-4000-8000-000000000001", "roles": []}),
        )
        .await;
    assert!(
        claims(minted.body["access_token"].as_str().unwrap())["roles"]
            .as_array()
            .is_none_or(|roles| roles.is_empty())
    );
}
