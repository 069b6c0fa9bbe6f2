//! ACL evaluation through the explain endpoint: one row per rule of spec/groups-and-acl.md,
//! over a small tenant built through the directory and external group endpoints.

use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::items::{ready_app, ticket_schema};

const USERS: &[(&str, &str, &str)] = &[
    (
        "11111111-0000-0000-0000-00000000adel",
        "adele@contoso.com",
        "Member",
    ),
    (
        "11111111-0000-0000-0000-0000000000b0",
        "bob@contoso.com",
        "Member",
    ),
    (
        "11111111-0000-0000-0000-0000000000ca",
        "carol@contoso.com",
        "Member",
    ),
    (
        "11111111-0000-0000-0000-0000000000de",
        "dave@contoso.com",
        "Member",
    ),
    (
        "11111111-0000-0000-0000-0000000000f0",
        "fiona_fabrikam.com#EXT#@contoso.com",
        "Guest",
    ),
    (
        "11111111-0000-0000-0000-00000000000e",
        "erin@contoso.com",
        "Member",
    ),
];

fn user_id(upn_prefix: &str) -> &'static str {
    USERS
        .iter()
        .find(|(_, upn, _)| upn.starts_with(upn_prefix))
        .unwrap()
        .0
}

pub async fn build_tenant(app: &TestApp) {
    for (id, upn, user_type) in USERS {
        let reply = app.post("/v1.0/users", &json!({"id": id, "userPrincipalName": upn, "displayName": upn, "userType": user_type, "accountEnabled": true})).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    for group in ["sales", "allstaff", "cycle1", "cycle2", "unused"] {
        let reply = app.post("/v1.0/groups", &json!({"id": group, "displayName": group, "mailEnabled": false, "securityEnabled": true})).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    for (group, member) in [
        ("sales", user_id("adele")),
        ("allstaff", "sales"),
        ("cycle1", user_id("carol")),
        ("cycle2", "cycle1"),
        ("cycle1", "cycle2"),
    ] {
        let reply = app
            .post(&format!("/v1.0/groups/{group}/members/$ref"), &json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{member}")}))
            .await;
        assert_eq!(reply.status, 204, "{group} <- {member}: {}", reply.body);
    }
    for group in ["helpdesk", "tier2", "partners"] {
        let reply = app
            .post(
                "/v1.0/external/connections/tickets/groups",
                &json!({"id": group, "displayName": group}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    for (group, member, member_type) in [
        ("helpdesk", user_id("bob"), "user"),
        ("tier2", "helpdesk", "externalGroup"),
        ("partners", "allstaff", "group"),
    ] {
        let reply = app
            .post(
                &format!("/v1.0/external/connections/tickets/groups/{group}/members"),
                &json!({"id": member, "type": member_type}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
}

fn grant(acl_type: &str, value: &str) -> Value {
    json!({"type": acl_type, "value": value, "accessType": "grant"})
}

fn deny(acl_type: &str, value: &str) -> Value {
    json!({"type": acl_type, "value": value, "accessType": "deny"})
}

pub fn sample_items() -> Vec<(&'static str, Value)> {
    vec![
        ("everyoneItem", json!([grant("everyone", "everyone")])),
        (
            "staffOnly",
            json!([grant("everyoneExceptGuests", "tenant")]),
        ),
        ("nestedEntra", json!([grant("group", "allstaff")])),
        ("nestedExternal", json!([grant("externalGroup", "tier2")])),
        (
            "externalWithEntra",
            json!([grant("externalGroup", "partners")]),
        ),
        (
            "denyWins",
            json!([grant("everyone", "everyone"), deny("user", user_id("dave"))]),
        ),
        (
            "denyGroup",
            json!([grant("everyone", "everyone"), deny("group", "sales")]),
        ),
        ("cycle", json!([grant("group", "cycle2")])),
        (
            "missingGroups",
            json!([
                grant("group", "nosuchgroup"),
                grant("externalGroup", "notyet")
            ]),
        ),
        ("emptyAcl", json!([])),
        ("directUser", json!([grant("user", user_id("adele"))])),
    ]
}

pub async fn put_sample_items(app: &TestApp) {
    for (id, acl) in sample_items() {
        let reply = app
            .put(
                &format!("/v1.0/external/connections/tickets/items/{id}"),
                &json!({"acl": acl, "properties": {"title": format!("{id} quokka")}}),
            )
            .await;
        assert_eq!(reply.status, 200, "{id}: {}", reply.body);
    }
}

async fn access(app: &TestApp, item: &str, user: &str) -> Value {
    let encoded = user.replace('#', "%23");
    let reply = app
        .get(&format!(
            "/_emulator/connections/tickets/items/{item}/access?user={encoded}"
        ))
        .await;
    assert_eq!(reply.status, 200, "{item}/{user}: {}", reply.body);
    reply.body
}

#[tokio::test]
async fn every_acl_rule_decides_as_documented() {
    let app = ready_app(gcemu::config::Config::for_tests()).await;
    build_tenant(&app).await;
    put_sample_items(&app).await;
    // (item, user, allowed, the rule the row shows)
    let rows: &[(&str, &str, bool, &str)] = &[
        (
            "everyoneItem",
            "adele@contoso.com",
            true,
            "everyone covers members",
        ),
        (
            "everyoneItem",
            "fiona_fabrikam.com#EXT#@contoso.com",
            true,
            "everyone covers guests",
        ),
        (
            "staffOnly",
            "adele@contoso.com",
            true,
            "everyoneExceptGuests covers members",
        ),
        (
            "staffOnly",
            "fiona_fabrikam.com#EXT#@contoso.com",
            false,
            "everyoneExceptGuests excludes guests",
        ),
        (
            "nestedEntra",
            "adele@contoso.com",
            true,
            "nested Entra groups",
        ),
        (
            "nestedEntra",
            "bob@contoso.com",
            false,
            "not in the nested group",
        ),
        (
            "nestedExternal",
            "bob@contoso.com",
            true,
            "nested external groups",
        ),
        (
            "nestedExternal",
            "adele@contoso.com",
            false,
            "not in the external group",
        ),
        (
            "externalWithEntra",
            "adele@contoso.com",
            true,
            "an external group containing an Entra group",
        ),
        (
            "externalWithEntra",
            "bob@contoso.com",
            false,
            "outside the Entra group",
        ),
        (
            "denyWins",
            "dave@contoso.com",
            false,
            "deny wins over an everyone grant",
        ),
        (
            "denyWins",
            "adele@contoso.com",
            true,
            "a deny for someone else does not matter",
        ),
        (
            "denyGroup",
            "adele@contoso.com",
            false,
            "a deny through a group wins",
        ),
        (
            "denyGroup",
            "bob@contoso.com",
            true,
            "outside the denied group",
        ),
        (
            "cycle",
            "carol@contoso.com",
            true,
            "a membership cycle terminates and still matches",
        ),
        (
            "cycle",
            "erin@contoso.com",
            false,
            "a cycle does not capture outsiders",
        ),
        (
            "missingGroups",
            "adele@contoso.com",
            false,
            "groups that do not exist match no one",
        ),
        (
            "emptyAcl",
            "adele@contoso.com",
            false,
            "an empty ACL matches no one",
        ),
        (
            "directUser",
            "adele@contoso.com",
            true,
            "a user entry by object id",
        ),
        (
            "directUser",
            user_id("adele"),
            true,
            "the explain endpoint takes ids too",
        ),
        ("directUser", "bob@contoso.com", false, "another user"),
    ];
    for (item, user, allowed, rule) in rows {
        let body = access(&app, item, user).await;
        assert_eq!(
            body["allowed"], *allowed,
            "{rule}: {item} for {user}: {body}"
        );
        assert!(body["reason"].as_str().is_some_and(|r| !r.is_empty()));
    }

    let body = access(&app, "externalWithEntra", "adele@contoso.com").await;
    assert_eq!(
        body["matchedEntries"],
        json!([grant("externalGroup", "partners")])
    );
    assert_eq!(
        body["paths"],
        json!([[
            format!("user:{}", user_id("adele")),
            "group:sales",
            "group:allstaff",
            "externalGroup:partners"
        ]])
    );
    let body = access(&app, "denyWins", "dave@contoso.com").await;
    assert_eq!(
        body["matchedEntries"].as_array().unwrap().len(),
        2,
        "grant and deny entries both reported"
    );
    assert!(body["reason"].as_str().unwrap().contains("deny"));
    let body = access(&app, "emptyAcl", "adele@contoso.com").await;
    assert!(body["reason"].as_str().unwrap().contains("empty"));
}

#[tokio::test]
async fn membership_changes_apply_to_the_very_next_decision() {
    let app = ready_app(gcemu::config::Config::for_tests()).await;
    build_tenant(&app).await;
    put_sample_items(&app).await;
    assert_eq!(
        access(&app, "missingGroups", "erin@contoso.com").await["allowed"],
        false
    );
    let reply = app
        .post(
            "/v1.0/external/connections/tickets/groups",
            &json!({"id": "notyet"}),
        )
        .await;
    assert_eq!(reply.status, 201);
    let reply = app
        .post(
            "/v1.0/external/connections/tickets/groups/notyet/members",
            &json!({"id": "erin@contoso.com", "type": "user"}),
        )
        .await;
    assert_eq!(reply.status, 201);
    assert_eq!(
        access(&app, "missingGroups", "erin@contoso.com").await["allowed"],
        true,
        "a group named before it existed"
    );

    assert_eq!(
        access(&app, "nestedEntra", "adele@contoso.com").await["allowed"],
        true
    );
    let reply = app
        .delete(&format!(
            "/v1.0/groups/sales/members/{}/$ref",
            user_id("adele")
        ))
        .await;
    assert_eq!(reply.status, 204);
    assert_eq!(
        access(&app, "nestedEntra", "adele@contoso.com").await["allowed"],
        false
    );

    assert_eq!(
        access(&app, "nestedExternal", "bob@contoso.com").await["allowed"],
        true
    );
    let reply = app
        .delete(&format!(
            "/v1.0/external/connections/tickets/groups/helpdesk/members/{}",
            user_id("bob")
        ))
        .await;
    assert_eq!(reply.status, 204);
    assert_eq!(
        access(&app, "nestedExternal", "bob@contoso.com").await["allowed"],
        false
    );
}

#[tokio::test]
async fn explain_refuses_unknown_users_items_and_a_missing_user() {
    let app = ready_app(gcemu::config::Config::for_tests()).await;
    build_tenant(&app).await;
    put_sample_items(&app).await;
    app.get("/_emulator/connections/tickets/items/everyoneItem/access?user=nobody@contoso.com")
        .await
        .assert_error(404, "ItemNotFound");
    app.get("/_emulator/connections/tickets/items/nosuch/access?user=adele@contoso.com")
        .await
        .assert_error(404, "ItemNotFound");
    app.get("/_emulator/connections/tickets/items/everyoneItem/access")
        .await
        .assert_error(400, "InvalidRequest");
    app.get("/_emulator/connections/tickets/items/everyoneItem/access?user=adele@contoso.com&tenant=other").await.assert_error(404, "ItemNotFound");
}

#[tokio::test]
async fn the_directory_answers_like_entra() {
    let app = TestApp::spawn().await;
    let reply = app
        .post(
            "/v1.0/users",
            &json!({"userPrincipalName": "adele@contoso.com", "displayName": "Adele Vance"}),
        )
        .await;
    assert_eq!(reply.status, 201);
    let id = reply.body["id"].as_str().unwrap().to_string();
    assert_eq!(reply.body["userType"], "Member");
    let duplicate = app
        .post(
            "/v1.0/users",
            &json!({"userPrincipalName": "ADELE@contoso.com", "displayName": "Again"}),
        )
        .await;
    duplicate.assert_error(400, "Request_BadRequest");
    assert!(duplicate
        .error_message()
        .contains("userPrincipalName already exists"));
    app.post("/v1.0/users", &json!({"displayName": "no upn"}))
        .await
        .assert_error(400, "Request_BadRequest");
    app.post(
        "/v1.0/users",
        &json!({"userPrincipalName": "x@y", "displayName": "x", "userType": "Admin"}),
    )
    .await
    .assert_error(400, "Request_BadRequest");
    assert_eq!(
        app.get("/v1.0/users/adele@contoso.com").await.body["id"],
        id.as_str()
    );
    assert_eq!(
        app.get(&format!("/v1.0/users/{id}")).await.body["displayName"],
        "Adele Vance"
    );
    app.get("/v1.0/users/nobody@contoso.com")
        .await
        .assert_error(404, "Request_ResourceNotFound");

    let group = app.post("/v1.0/groups", &json!({"displayName": "Sales", "mailNickname": "sales", "mailEnabled": false, "securityEnabled": true})).await;
    assert_eq!(group.status, 201);
    let group_id = group.body["id"].as_str().unwrap().to_string();
    let reference =
        json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}")});
    assert_eq!(
        app.post(&format!("/v1.0/groups/{group_id}/members/$ref"), &reference)
            .await
            .status,
        204
    );
    app.post(&format!("/v1.0/groups/{group_id}/members/$ref"), &reference)
        .await
        .assert_error(400, "Request_BadRequest");
    let to_self = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{group_id}")});
    app.post(&format!("/v1.0/groups/{group_id}/members/$ref"), &to_self)
        .await
        .assert_error(400, "Request_BadRequest");
    let unknown = json!({"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/nope"});
    app.post(&format!("/v1.0/groups/{group_id}/members/$ref"), &unknown)
        .await
        .assert_error(404, "Request_ResourceNotFound");
    let members = app
        .get(&format!("/v1.0/groups/{group_id}/members"))
        .await
        .body;
    assert_eq!(members["value"][0]["@odata.type"], "#microsoft.graph.user");
    assert_eq!(members["value"][0]["id"], id.as_str());
    assert_eq!(
        app.get("/v1.0/groups").await.body["value"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    assert_eq!(app.delete(&format!("/v1.0/users/{id}")).await.status, 204);
    assert_eq!(
        app.get(&format!("/v1.0/groups/{group_id}/members"))
            .await
            .body["value"],
        json!([]),
        "deleting a user ends their memberships"
    );
    assert_eq!(
        app.delete(&format!("/v1.0/groups/{group_id}")).await.status,
        204
    );
    app.get(&format!("/v1.0/groups/{group_id}"))
        .await
        .assert_error(404, "Request_ResourceNotFound");
}

#[tokio::test]
async fn external_groups_and_members_follow_the_spec() {
    let app = TestApp::spawn().await;
    app.create_connection("tickets").await;
    app.register_schema("tickets", ticket_schema()).await;
    let groups = "/v1.0/external/connections/tickets/groups";
    let reply = app.post(groups, &json!({"id": "CuMdtKjJTkenRxCqJ0Ls9g", "displayName": "Helpdesk", "description": "Tier 1"})).await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.body["displayName"], "Helpdesk");
    assert_eq!(
        reply.body["@odata.context"],
        format!(
            "{}/v1.0/$metadata#external/connections('tickets')/groups/$entity",
            app.address
        )
    );
    app.post(groups, &json!({"id": "CuMdtKjJTkenRxCqJ0Ls9g"}))
        .await
        .assert_error(409, "Conflict");
    app.post(groups, &json!({"id": "has space"}))
        .await
        .assert_error(400, "InvalidRequest");
    app.post(groups, &json!({"displayName": "no id"}))
        .await
        .assert_error(400, "InvalidRequest");
    app.post(
        "/v1.0/external/connections/nosuch/groups",
        &json!({"id": "g1"}),
    )
    .await
    .assert_error(404, "ItemNotFound");

    let group = format!("{groups}/CuMdtKjJTkenRxCqJ0Ls9g");
    assert_eq!(
        app.patch(&group, &json!({"displayName": "Helpdesk team"}))
            .await
            .status,
        204
    );
    let read = app.get(&group).await.body;
    assert_eq!(read["displayName"], "Helpdesk team");
    assert_eq!(read["description"], "Tier 1");

    let members = format!("{group}/members");
    let reply = app
        .post(
            &members,
            &json!({"id": "e811976d-83df-4cbd-8b9b-5215b18aa874", "type": "user"}),
        )
        .await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.body["id"], "e811976d-83df-4cbd-8b9b-5215b18aa874");
    assert_eq!(reply.body["type"], "user");
    app.post(
        &members,
        &json!({"id": "e811976d-83df-4cbd-8b9b-5215b18aa874", "type": "user"}),
    )
    .await
    .assert_error(409, "Conflict");
    app.post(
        &members,
        &json!({"id": "CuMdtKjJTkenRxCqJ0Ls9g", "type": "externalGroup"}),
    )
    .await
    .assert_error(400, "InvalidRequest");
    app.post(&members, &json!({"id": "x", "type": "robot"}))
        .await
        .assert_error(400, "InvalidRequest");
    assert_eq!(
        app.post(
            &members,
            &json!({"id": "notCreatedYet", "type": "externalGroup"})
        )
        .await
        .status,
        201
    );
    app.post(
        &format!("{groups}/nosuch/members"),
        &json!({"id": "x", "type": "user"}),
    )
    .await
    .assert_error(404, "ItemNotFound");
    let legacy = app
        .post(
            "/beta/external/connections/tickets/groups/CuMdtKjJTkenRxCqJ0Ls9g/members",
            &json!({"id": "tier2", "type": "group", "identitySource": "external"}),
        )
        .await;
    assert_eq!(legacy.status, 201, "{}", legacy.body);
    assert_eq!(
        legacy.body["type"], "externalGroup",
        "the older beta form is translated"
    );
    app.post(
        &members,
        &json!({"id": "tier3", "type": "group", "identitySource": "external"}),
    )
    .await
    .assert_error(400, "InvalidRequest");

    assert_eq!(
        app.delete(&format!("{members}/notCreatedYet")).await.status,
        204
    );
    app.delete(&format!("{members}/notCreatedYet"))
        .await
        .assert_error(404, "ItemNotFound");
    assert_eq!(app.delete(&group).await.status, 204);
    app.get(&group).await.assert_error(404, "ItemNotFound");
}
