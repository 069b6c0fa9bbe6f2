//! Every rule of spec/connections.md, through HTTP.

use serde_json::{json, Value};

use crate::helpers::{token, TestApp};

const CONNECTIONS: &str = "/v1.0/external/connections";

#[tokio::test]
async fn create_answers_201_with_the_connection_in_draft_and_an_absolute_location() {
    let app = TestApp::spawn().await;
    let reply = app
        .post(
            CONNECTIONS,
            &json!({"id": "tickets01", "name": "Tickets", "description": "Helpdesk tickets"}),
        )
        .await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.body["id"], "tickets01");
    assert_eq!(reply.body["name"], "Tickets");
    assert_eq!(reply.body["description"], "Helpdesk tickets");
    assert_eq!(reply.body["state"], "draft");
    assert_eq!(reply.body["contentCategory"], "uncategorized");
    assert_eq!(
        reply.body["@odata.context"],
        format!(
            "{}/v1.0/$metadata#external/connections/$entity",
            app.address
        )
    );
    assert_eq!(
        reply.header("location"),
        format!("{}/v1.0/external/connections/tickets01", app.address)
    );
    let authorized = reply.body["configuration"]["authorizedAppIds"]
        .as_array()
        .unwrap();
    assert_eq!(authorized.len(), 1, "the creating app is authorized");
}

#[tokio::test]
async fn the_creating_app_from_the_token_is_added_to_authorized_app_ids_once() {
    let app = TestApp::spawn().await;
    let bearer = token(
        json!({"tid": "tenant-a", "appid": "app-42", "roles": ["ExternalConnection.ReadWrite.OwnedBy"]}),
    );
    let reply = app
        .send(app.client.post(app.url(CONNECTIONS)).bearer_auth(&bearer).json(&json!({
            "id": "crm", "name": "CRM", "configuration": {"authorizedAppIds": ["other-app", "app-42"]}
        })))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(
        reply.body["configuration"]["authorizedAppIds"],
        json!(["other-app", "app-42"])
    );
    let reply = app
        .send(app.client.post(app.url(CONNECTIONS)).bearer_auth(&bearer).json(&json!({
            "id": "crm2", "name": "CRM", "configuration": {"authorizedAppIds": ["other-app"]}
        })))
        .await;
    assert_eq!(
        reply.body["configuration"]["authorizedAppIds"],
        json!(["other-app", "app-42"])
    );
}

#[tokio::test]
async fn every_documented_property_round_trips() {
    let app = TestApp::spawn().await;
    let activity_settings = json!({"urlToItemResolvers": [{
        "@odata.type": "#microsoft.graph.externalConnectors.itemIdResolver",
        "urlMatchInfo": {"baseUrls": ["https://contoso.com"], "urlPattern": "/items/(?<id>[0-9]+)"},
        "itemId": "ticket{id}", "priority": 1}]});
    let search_settings = json!({"searchResultTemplates": [{
        "id": "tickets", "priority": 1, "layout": {"type": "AdaptiveCard", "version": "1.3", "body": []},
        "rules": [{"property": "status", "operation": "equals", "values": ["open"], "valuesJoinedBy": "or"}]}]});
    let compliance_settings = json!({"eDiscoveryResultTemplates": [{"id": "ediscovery", "priority": 2, "layout": {"type": "AdaptiveCard"}}]});
    let create = json!({
        "id": "fullconn", "name": "Full", "description": "all members",
        "configuration": {"authorizedAppIds": ["a1"], "custom": "open type member"},
        "connectorId": "teams-app-1", "contentCategory": "KnowledgeBase",
        "activitySettings": activity_settings, "searchSettings": search_settings,
        "enabledContentExperiences": ["Search", "compliance"], "complianceSettings": compliance_settings
    });
    let reply = app.post("/beta/external/connections", &create).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    for version in ["v1.0", "beta"] {
        let reply = app
            .get(&format!("/{version}/external/connections/fullconn"))
            .await;
        assert_eq!(reply.status, 200);
        let body = &reply.body;
        assert_eq!(body["configuration"]["custom"], "open type member");
        assert_eq!(body["configuration"]["authorizedAppIds"][0], "a1");
        assert_eq!(body["connectorId"], "teams-app-1");
        assert_eq!(
            body["contentCategory"], "knowledgeBase",
            "enum answered in camelCase"
        );
        assert_eq!(body["activitySettings"], activity_settings);
        assert_eq!(body["searchSettings"], search_settings);
        if version == "beta" {
            assert_eq!(
                body["enabledContentExperiences"],
                json!(["search", "compliance"])
            );
            assert_eq!(body["complianceSettings"], compliance_settings);
            assert_eq!(body["ingestedItemsCount"], Value::Null, "null while draft");
        } else {
            assert!(
                body.get("enabledContentExperiences").is_none(),
                "beta-only members stay out of v1.0"
            );
            assert!(body.get("ingestedItemsCount").is_none());
        }
    }
}

#[tokio::test]
async fn v1_refuses_beta_only_members() {
    let app = TestApp::spawn().await;
    let reply = app
        .post(
            CONNECTIONS,
            &json!({"id": "conn1", "name": "x", "enabledContentExperiences": ["search"]}),
        )
        .await;
    reply.assert_error(400, "InvalidRequest");
    assert!(reply.body["error"]["innerError"]["message"]
        .as_str()
        .unwrap()
        .contains("enabledContentExperiences"));
    assert_eq!(app.get(CONNECTIONS).await.body["value"], json!([]));
}

#[tokio::test]
async fn invalid_ids_are_refused_with_400_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let too_long = "a".repeat(33);
    let cases: Vec<(&str, &str)> = vec![
        ("ab", "between 3 and 32"),
        (&too_long, "between 3 and 32"),
        ("my-conn", "only letters and digits"),
        ("my_conn", "only letters and digits"),
        ("with space", "only letters and digits"),
        ("Microsoft1", "Microsoft"),
        ("microsoftSearch", "Microsoft"),
        ("SharePoint", "reserved"),
        ("teams", "reserved"),
        ("PowerBI", "reserved"),
        ("TopicEngine", "reserved"),
    ];
    for (id, expected) in cases {
        let reply = app.post(CONNECTIONS, &json!({"id": id, "name": "x"})).await;
        reply.assert_error(400, "InvalidRequest");
        assert!(
            reply.error_message().contains(expected),
            "{id}: {}",
            reply.error_message()
        );
    }
    let reply = app.post(CONNECTIONS, &json!({"name": "no id"})).await;
    reply.assert_error(400, "InvalidRequest");
    assert!(reply.error_message().contains("'id'"));
    let reply = app
        .post(CONNECTIONS, &json!({"id": 123, "name": "numeric id"}))
        .await;
    reply.assert_error(400, "InvalidRequest");
    assert_eq!(
        app.get(CONNECTIONS).await.body["value"],
        json!([]),
        "no refused connection was stored"
    );
}

#[tokio::test]
async fn name_is_required_and_at_most_128_characters() {
    let app = TestApp::spawn().await;
    for body in [
        json!({"id": "conn1"}),
        json!({"id": "conn1", "name": null}),
        json!({"id": "conn1", "name": ""}),
        json!({"id": "conn1", "name": "n".repeat(129)}),
    ] {
        let reply = app.post(CONNECTIONS, &body).await;
        reply.assert_error(400, "InvalidRequest");
        assert!(
            reply.error_message().contains("name"),
            "{}",
            reply.error_message()
        );
    }
    let reply = app
        .post(
            CONNECTIONS,
            &json!({"id": "conn1", "name": "n".repeat(128)}),
        )
        .await;
    assert_eq!(reply.status, 201);
}

#[tokio::test]
async fn a_duplicate_id_gets_409_in_any_letter_case_and_keeps_the_first() {
    let app = TestApp::spawn().await;
    app.create_connection("tickets").await;
    for id in ["tickets", "TICKETS"] {
        let reply = app
            .post(CONNECTIONS, &json!({"id": id, "name": "second"}))
            .await;
        reply.assert_error(409, "Conflict");
    }
    assert_eq!(
        app.get("/v1.0/external/connections/tickets").await.body["name"],
        "tickets name"
    );
}

#[tokio::test]
async fn an_unknown_content_category_is_refused() {
    let app = TestApp::spawn().await;
    let reply = app
        .post(
            CONNECTIONS,
            &json!({"id": "conn1", "name": "x", "contentCategory": "spreadsheets"}),
        )
        .await;
    reply.assert_error(400, "InvalidRequest");
    assert!(reply.error_message().contains("contentCategory"));
}

#[tokio::test]
async fn invalid_activity_and_search_settings_are_refused_and_leave_state_unchanged() {
    let app = TestApp::spawn().await;
    app.create_connection("conn1").await;
    let before = app.get("/v1.0/external/connections/conn1").await.body;
    let resolver = |priority: i64, pattern: &str| json!({"urlMatchInfo": {"baseUrls": ["https://x"], "urlPattern": pattern}, "itemId": "i", "priority": priority});
    let nine: Vec<Value> = (0..9).map(|_| resolver(1, "/x")).collect();
    let bad_bodies = [
        json!({"activitySettings": {"urlToItemResolvers": nine}}),
        json!({"activitySettings": {"urlToItemResolvers": [resolver(9, "/x")]}}),
        json!({"activitySettings": {"urlToItemResolvers": [resolver(1, "/items/(")]}}),
        json!({"searchSettings": {"searchResultTemplates": [{"id": "way-too-long-template-id", "priority": 1, "layout": {}}]}}),
        json!({"searchSettings": {"searchResultTemplates": [{"id": "t1", "priority": -1, "layout": {}}]}}),
        json!({"description": "changed too", "name": ""}),
    ];
    for body in bad_bodies {
        let reply = app.patch("/v1.0/external/connections/conn1", &body).await;
        reply.assert_error(400, "InvalidRequest");
    }
    assert_eq!(
        app.get("/v1.0/external/connections/conn1").await.body,
        before
    );
}

#[tokio::test]
async fn update_answers_204_and_keeps_members_that_were_not_sent() {
    let app = TestApp::spawn().await;
    app.create_connection("conn1").await;
    let reply = app
        .patch(
            "/v1.0/external/connections/conn1",
            &json!({"name": "Renamed", "contentCategory": "WIKIS"}),
        )
        .await;
    assert_eq!(reply.status, 204);
    assert_eq!(reply.body, Value::Null, "204 has no body");
    let connection = app.get("/v1.0/external/connections/conn1").await.body;
    assert_eq!(connection["name"], "Renamed");
    assert_eq!(
        connection["description"], "test connection",
        "unsent members keep their values"
    );
    assert_eq!(connection["contentCategory"], "wikis");
    assert_eq!(connection["state"], "draft");

    let reply = app
        .patch(
            "/v1.0/external/connections/conn1",
            &json!({"configuration": {"authorizedAppIds": ["second-app"]}}),
        )
        .await;
    assert_eq!(reply.status, 204);
    let connection = app.get("/v1.0/external/connections/conn1").await.body;
    assert_eq!(
        connection["configuration"]["authorizedAppIds"],
        json!(["second-app"])
    );
}

#[tokio::test]
async fn update_cannot_change_the_id_and_ignores_computed_state() {
    let app = TestApp::spawn().await;
    app.create_connection("conn1").await;
    let reply = app
        .patch("/v1.0/external/connections/conn1", &json!({"id": "conn2"}))
        .await;
    reply.assert_error(400, "InvalidRequest");
    let reply = app
        .patch(
            "/v1.0/external/connections/conn1",
            &json!({"id": "conn1", "state": "ready"}),
        )
        .await;
    assert_eq!(reply.status, 204);
    assert_eq!(
        app.get("/v1.0/external/connections/conn1").await.body["state"],
        "draft"
    );
}

#[tokio::test]
async fn unknown_connections_get_404_item_not_found_on_every_verb() {
    let app = TestApp::spawn().await;
    let path = "/v1.0/external/connections/nosuchconn";
    for reply in [
        app.get(path).await,
        app.patch(path, &json!({"name": "x"})).await,
        app.delete(path).await,
    ] {
        reply.assert_error(404, "ItemNotFound");
        assert_eq!(
            reply.body["error"]["innerError"]["code"],
            "ResourceNotFound"
        );
        assert_eq!(reply.body["error"]["innerError"]["source"], "Connection");
        assert_eq!(
            reply.error_message(),
            "The requested resource does not exist."
        );
    }
}

#[tokio::test]
async fn delete_answers_202_and_the_connection_is_gone() {
    let app = TestApp::spawn().await;
    app.create_connection("conn1").await;
    let reply = app.delete("/v1.0/external/connections/conn1").await;
    assert_eq!(reply.status, 202);
    assert_eq!(reply.body, Value::Null);
    app.get("/v1.0/external/connections/conn1")
        .await
        .assert_error(404, "ItemNotFound");
    app.delete("/v1.0/external/connections/conn1")
        .await
        .assert_error(404, "ItemNotFound");
    assert_eq!(app.get(CONNECTIONS).await.body["value"], json!([]));
    app.create_connection("conn1").await;
}

#[tokio::test]
async fn list_honours_top_select_and_filter() {
    let app = TestApp::spawn().await;
    for id in ["conna", "connb", "connc"] {
        app.create_connection(id).await;
    }
    let reply = app.get(CONNECTIONS).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body["@odata.context"],
        format!("{}/v1.0/$metadata#external/connections", app.address)
    );
    let ids: Vec<&str> = reply.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["conna", "connb", "connc"]);

    let reply = app
        .get("/v1.0/external/connections?$top=2&$select=id,name")
        .await;
    let value = reply.body["value"].as_array().unwrap();
    assert_eq!(value.len(), 2);
    assert_eq!(value[0], json!({"id": "conna", "name": "conna name"}));

    let reply = app
        .get("/v1.0/external/connections?%24filter=name%20eq%20'connb%20name'&%24select=id")
        .await;
    assert_eq!(reply.body["value"], json!([{"id": "connb"}]));

    app.get("/v1.0/external/connections?$top=-3")
        .await
        .assert_error(400, "InvalidRequest");
    app.get("/v1.0/external/connections?$select=nosuch")
        .await
        .assert_error(400, "InvalidRequest");
    app.get("/v1.0/external/connections?$filter=contains(name,'x')")
        .await
        .assert_error(400, "InvalidRequest");
}

#[tokio::test]
async fn tenants_never_see_each_others_connections() {
    let app = TestApp::spawn().await;
    let tenant_a = token(json!({"tid": "tenant-a", "appid": "app-a"}));
    let tenant_b = token(json!({"tid": "tenant-b", "appid": "app-b"}));
    let create = |bearer: &str, name: &str| {
        app.client
            .post(app.url(CONNECTIONS))
            .bearer_auth(bearer)
            .json(&json!({"id": "shared", "name": name}))
    };
    assert_eq!(app.send(create(&tenant_a, "of a")).await.status, 201);
    assert_eq!(
        app.send(create(&tenant_b, "of b")).await.status,
        201,
        "the same id in another tenant"
    );
    let get = |bearer: &str| {
        app.client
            .get(app.url("/v1.0/external/connections/shared"))
            .bearer_auth(bearer)
    };
    assert_eq!(app.send(get(&tenant_a)).await.body["name"], "of a");
    assert_eq!(app.send(get(&tenant_b)).await.body["name"], "of b");
    app.get("/v1.0/external/connections/shared")
        .await
        .assert_error(404, "ItemNotFound");

    let delete = app
        .client
        .delete(app.url("/v1.0/external/connections/shared"))
        .bearer_auth(&tenant_a);
    assert_eq!(app.send(delete).await.status, 202);
    assert_eq!(
        app.send(get(&tenant_b)).await.body["name"],
        "of b",
        "deleting in a leaves b alone"
    );
}

#[tokio::test]
async fn a_tenant_holds_at_most_the_configured_number_of_connections() {
    let mut config = gcemu::config::Config::for_tests();
    config.max_connections_per_tenant = 2;
    let app = TestApp::spawn_with(config).await;
    app.create_connection("conn1").await;
    app.create_connection("conn2").await;
    let reply = app
        .post(CONNECTIONS, &json!({"id": "conn3", "name": "third"}))
        .await;
    reply.assert_error(403, "QuotaLimitReached");
    app.delete("/v1.0/external/connections/conn1").await;
    app.create_connection("conn3").await;
}

#[tokio::test]
async fn reset_empties_every_tenant_or_just_one() {
    let app = TestApp::spawn().await;
    let tenant_a = token(json!({"tid": "tenant-a"}));
    app.create_connection("conn1").await;
    let create_a = app
        .client
        .post(app.url(CONNECTIONS))
        .bearer_auth(&tenant_a)
        .json(&json!({"id": "conna", "name": "a"}));
    assert_eq!(app.send(create_a).await.status, 201);

    let reply = app
        .send(app.client.post(app.url("/_emulator/reset?tenant=tenant-a")))
        .await;
    assert_eq!(reply.status, 204);
    let list_a = app.client.get(app.url(CONNECTIONS)).bearer_auth(&tenant_a);
    assert_eq!(app.send(list_a).await.body["value"], json!([]));
    assert_eq!(
        app.get(CONNECTIONS).await.body["value"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let reply = app.send(app.client.post(app.url("/_emulator/reset"))).await;
    assert_eq!(reply.status, 204);
    assert_eq!(app.get(CONNECTIONS).await.body["value"], json!([]));
}

#[tokio::test]
async fn connections_survive_a_restart_on_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_on_data_dir(dir.path().to_path_buf()).await;
    app.create_connection("durable").await;
    app.patch(
        "/v1.0/external/connections/durable",
        &json!({"description": "after patch"}),
    )
    .await;
    app.stop().await;

    let app = TestApp::spawn_on_data_dir(dir.path().to_path_buf()).await;
    let reply = app.get("/v1.0/external/connections/durable").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["description"], "after patch");
    assert!(dir.path().join("gcemu.sqlite3").exists());
}

#[tokio::test]
async fn health_answers_ok() {
    let app = TestApp::spawn().await;
    let reply = app.get("/_emulator/health").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"status": "ok"}));
}
