//! The rest of search (spec/search.md §2–3, spec/connections.md §1.2): collapsed results and
//! range buckets trimmed per persona, result templates chosen by their rules, the search page
//! size limit, and server-driven paging of lists with opaque skiptokens.

use std::collections::BTreeSet;

use gcemu::config::Config;
use serde_json::{json, Value};

use crate::access::build_tenant;
use crate::helpers::{Reply, TestApp};
use crate::items::ready_app;
use crate::search::{search_as, token_for};

const ADELE: &str = "11111111-0000-0000-0000-00000000adel";
const DAVE: &str = "11111111-0000-0000-0000-0000000000de";

fn grant(kind: &str, value: &str) -> Value {
    json!({"type": kind, "value": value, "accessType": "grant"})
}

fn deny(kind: &str, value: &str) -> Value {
    json!({"type": kind, "value": value, "accessType": "deny"})
}

/// (id, status, priority, opened, acl): Adele sees c1 c2 c3 c4 c7, Dave c1 c2 c5 c6 c7.
fn cases() -> Vec<(&'static str, &'static str, i64, &'static str, Value)> {
    let everyone = grant("everyone", "everyone");
    vec![
        ("c1", "open", 1, "2024-01-10T00:00:00Z", json!([everyone])),
        ("c2", "open", 2, "2024-02-10T00:00:00Z", json!([everyone])),
        (
            "c3",
            "open",
            5,
            "2024-03-10T00:00:00Z",
            json!([grant("user", ADELE)]),
        ),
        (
            "c4",
            "closed",
            4,
            "2024-04-10T00:00:00Z",
            json!([grant("user", ADELE)]),
        ),
        (
            "c5",
            "closed",
            7,
            "2024-05-10T00:00:00Z",
            json!([everyone, deny("user", ADELE)]),
        ),
        (
            "c6",
            "pending",
            9,
            "2024-06-10T00:00:00Z",
            json!([grant("user", DAVE)]),
        ),
        ("c7", "open", 8, "2024-07-10T00:00:00Z", json!([everyone])),
    ]
}

/// The tenant of `access.rs` plus a `cases` connection whose status, priority and opened date
/// are queryable and refinable.
async fn cases_app(config: Config) -> TestApp {
    let app = ready_app(config).await;
    build_tenant(&app).await;
    app.create_connection("cases").await;
    app.register_schema(
        "cases",
        json!([
            {"name": "title", "type": "String", "isSearchable": true, "isRetrievable": true},
            {"name": "status", "type": "String", "isQueryable": true, "isRetrievable": true, "isRefinable": true},
            {"name": "priority", "type": "Int64", "isQueryable": true, "isRetrievable": true, "isRefinable": true},
            {"name": "opened", "type": "DateTime", "isQueryable": true, "isRetrievable": true, "isRefinable": true},
            {"name": "owner", "type": "String", "isRetrievable": true}
        ]),
    )
    .await;
    for (id, status, priority, opened, acl) in cases() {
        let reply = app
            .put(
                &format!("/v1.0/external/connections/cases/items/{id}"),
                &json!({"acl": acl, "properties": {"title": format!("case {id} wombat"), "status": status, "priority": priority, "opened": opened}}),
            )
            .await;
        assert_eq!(reply.status, 200, "{id}: {}", reply.body);
    }
    app
}

fn request(extra: Value) -> Value {
    let mut request = json!({"entityTypes": ["externalItem"], "contentSources": ["/external/connections/cases"],
        "query": {"queryString": "wombat"}});
    for (key, value) in extra.as_object().unwrap() {
        request[key] = value.clone();
    }
    request
}

fn container(reply: &Reply) -> &Value {
    assert_eq!(reply.status, 200, "{}", reply.body);
    &reply.body["value"][0]["hitsContainers"][0]
}

fn hits(reply: &Reply) -> Vec<(String, Value)> {
    container(reply)["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| (hit["hitId"].as_str().unwrap().to_string(), hit.clone()))
        .collect()
}

fn buckets(reply: &Reply) -> Vec<(String, u64, String)> {
    container(reply)["aggregations"][0]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["key"].as_str().unwrap().to_string(),
                b["count"].as_u64().unwrap(),
                b["aggregationFilterToken"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn two_personas_get_different_collapsed_groups_and_range_counts() {
    let app = cases_app(Config::for_tests()).await;
    let adele = token_for(&app, "adele@contoso.com").await;
    let dave = token_for(&app, "dave@contoso.com").await;
    let collapse = json!({"collapseProperties": [{"fields": ["status"], "limit": 2}],
        "sortProperties": [{"name": "priority", "isDescending": false}]});

    // Adele, by priority: c1 c2 (open) c4 (closed) c3 c7 (open, over the limit of 2).
    let reply = search_as(&app, &adele, request(collapse.clone())).await;
    let kept: Vec<(String, bool)> = hits(&reply)
        .into_iter()
        .map(|(id, hit)| {
            (
                id,
                hit["isCollapsed"]
                    .as_bool()
                    .expect("isCollapsed on every hit"),
            )
        })
        .collect();
    assert_eq!(
        kept,
        [
            ("c1".into(), true),
            ("c2".into(), true),
            ("c4".into(), false)
        ]
    );
    assert_eq!(
        container(&reply)["total"],
        5,
        "total counts every visible item"
    );
    assert_eq!(container(&reply)["moreResultsAvailable"], false);

    // Dave: c1 c2 (open) c5 (closed) c7 (open, over) c6 (pending).
    let reply = search_as(&app, &dave, request(collapse.clone())).await;
    let kept: Vec<String> = hits(&reply).into_iter().map(|(id, _)| id).collect();
    assert_eq!(kept, ["c1", "c2", "c5", "c6"]);
    assert_eq!(container(&reply)["total"], 5);

    // Pages of collapsed results.
    let mut paged = collapse.clone();
    paged["size"] = json!(2);
    let first = search_as(&app, &adele, request(paged.clone())).await;
    assert_eq!(hits(&first).len(), 2);
    assert_eq!(container(&first)["moreResultsAvailable"], true);
    paged["from"] = json!(2);
    let second = search_as(&app, &adele, request(paged)).await;
    let ids: Vec<String> = hits(&second).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["c4"]);
    assert_eq!(container(&second)["moreResultsAvailable"], false);

    // Nested levels: by status (limit 2), then status and priority together (limit 1).
    let nested = json!({"collapseProperties": [{"fields": ["status"], "limit": 2}, {"fields": ["priority"], "limit": 1}],
        "sortProperties": [{"name": "priority"}]});
    let reply = search_as(&app, &adele, request(nested)).await;
    let ids: Vec<String> = hits(&reply).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["c1", "c2", "c4"]);

    // Range buckets over what each persona sees, in the order asked.
    let ranges = json!({"aggregations": [{"field": "priority", "bucketDefinition": {"sortBy": "keyAsNumber",
        "ranges": [{"to": "3"}, {"from": "3", "to": "6"}, {"from": "6"}]}}]});
    let adele_buckets = buckets(&search_as(&app, &adele, request(ranges.clone())).await);
    assert_eq!(
        adele_buckets,
        [
            ("Less than 3".into(), 2, "range(min, 3)".into()),
            ("3 up to 6".into(), 2, "range(3, 6)".into()),
            ("6 and up".into(), 1, "range(6, max, to=\"le\")".into()),
        ]
    );
    let dave_buckets = buckets(&search_as(&app, &dave, request(ranges)).await);
    let counts: Vec<u64> = dave_buckets.iter().map(|b| b.1).collect();
    assert_eq!(counts, [2, 0, 3], "empty ranges are listed too");

    // A token sent back filters to its range, trimmed as ever.
    for (token, persona, expected) in [
        (&adele_buckets[1].2, &adele, vec!["c3", "c4"]),
        (&dave_buckets[2].2, &dave, vec!["c5", "c6", "c7"]),
        (&dave_buckets[1].2, &dave, vec![]),
    ] {
        let reply = search_as(
            &app,
            persona,
            request(json!({"aggregationFilters": [format!("priority:{token}")]})),
        )
        .await;
        let ids: BTreeSet<String> = hits(&reply).into_iter().map(|(id, _)| id).collect();
        let expected: BTreeSet<String> = expected.into_iter().map(str::to_string).collect();
        assert_eq!(ids, expected, "{token}");
    }

    // Dates: keys worded for dates, bounds as instants.
    let dates = json!({"aggregations": [{"field": "opened", "bucketDefinition": {"sortBy": "keyAsString",
        "ranges": [{"to": "2024-03-01T00:00:00Z"}, {"from": "2024-03-01T00:00:00Z", "to": "2024-06-01T00:00:00Z"}, {"from": "2024-06-01T00:00:00Z"}]}}]});
    let reply = search_as(&app, &adele, request(dates)).await;
    let keys: Vec<(String, u64)> = buckets(&reply).into_iter().map(|b| (b.0, b.1)).collect();
    assert_eq!(
        keys,
        [
            ("Before 2024-03-01T00:00:00Z".into(), 2),
            (
                "From 2024-03-01T00:00:00Z up to 2024-06-01T00:00:00Z".into(),
                2
            ),
            ("2024-06-01T00:00:00Z or later".into(), 1),
        ]
    );
    let reply = search_as(
        &app,
        &dave,
        request(json!({"aggregationFilters": ["opened:range(2024-03-01T00:00:00Z, 2024-06-01T00:00:00Z)"]})),
    )
    .await;
    let ids: Vec<String> = hits(&reply).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["c5"]);
}

fn templates() -> Value {
    json!({"searchResultTemplates": [
        {"id": "general", "priority": 5, "layout": {"type": "AdaptiveCard", "version": "1.3", "body": [{"type": "TextBlock", "text": "${title}"}]}},
        {"id": "urgent", "priority": 1, "layout": {"type": "AdaptiveCard", "version": "1.3", "body": [{"type": "TextBlock", "text": "URGENT ${title}", "color": "attention"}]},
         "rules": [{"property": "priority", "operation": "lessThan", "values": ["3"], "valuesJoinedBy": "or"},
                   {"property": "status", "operation": "equals", "values": ["open", "pending"], "valuesJoinedBy": "or"}]}
    ]})
}

#[tokio::test]
async fn items_matching_different_rules_get_different_result_templates() {
    let app = cases_app(Config::for_tests()).await;
    let reply = app
        .patch(
            "/v1.0/external/connections/cases",
            &json!({"searchSettings": templates()}),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let dave = token_for(&app, "dave@contoso.com").await;

    let reply = search_as(
        &app,
        &dave,
        request(json!({"resultTemplateOptions": {"enableResultTemplate": true}})),
    )
    .await;
    let chosen: BTreeSet<(String, String)> = hits(&reply)
        .into_iter()
        .map(|(id, hit)| (id, hit["resultTemplateId"].as_str().unwrap().to_string()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("c1", "urgent"),
        ("c2", "urgent"),
        ("c5", "general"),
        ("c6", "general"),
        ("c7", "general"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(chosen, expected);
    let used = &reply.body["value"][0]["resultTemplates"];
    assert_eq!(used.as_object().unwrap().len(), 2, "{used}");
    assert_eq!(used["urgent"]["displayName"], "urgent");
    assert_eq!(
        used["urgent"]["body"],
        templates()["searchResultTemplates"][1]["layout"]
    );
    assert_eq!(used["general"]["body"]["body"][0]["text"], "${title}");

    // Only the templates the page uses are listed.
    let reply = search_as(
        &app,
        &dave,
        request(json!({"resultTemplateOptions": {"enableResultTemplate": true}, "query": {"queryString": "c5"}})),
    )
    .await;
    let used = reply.body["value"][0]["resultTemplates"]
        .as_object()
        .unwrap()
        .clone();
    assert_eq!(used.keys().collect::<Vec<_>>(), ["general"]);

    // Without the option, neither member appears.
    let reply = search_as(&app, &dave, request(json!({}))).await;
    assert!(reply.body["value"][0].get("resultTemplates").is_none());
    assert!(hits(&reply)
        .iter()
        .all(|(_, hit)| hit.get("resultTemplateId").is_none()));

    // The explain endpoint says which template and why.
    let explained = app
        .get("/_emulator/connections/cases/items/c7/access?user=dave@contoso.com")
        .await;
    let template = &explained.body["resultTemplate"];
    assert_eq!(template["id"], "general", "{}", explained.body);
    assert_eq!(template["tried"][0]["id"], "urgent");
    assert_eq!(template["tried"][0]["chosen"], false);
    assert_eq!(template["tried"][0]["rules"][0]["holds"], false);
    assert_eq!(template["tried"][0]["rules"][0]["itemValue"], 8);
    assert_eq!(template["tried"][1]["chosen"], true);
    let explained = app
        .get("/_emulator/connections/cases/items/c1/access?user=dave@contoso.com")
        .await;
    assert_eq!(explained.body["resultTemplate"]["id"], "urgent");
}

async fn assert_refused(reply: Reply, code: &str, member: &str) {
    reply.assert_error(400, code);
    assert!(
        reply
            .error_message()
            .to_lowercase()
            .contains(&member.to_lowercase()),
        "the message should name {member}: {}",
        reply.body
    );
}

#[tokio::test]
async fn bad_members_get_a_400_that_names_them_and_change_nothing() {
    let app = cases_app(Config::for_tests()).await;
    let before = app.get("/v1.0/external/connections/cases").await.body;
    for (settings, member) in [
        (
            json!({"searchResultTemplates": [{"id": "x".repeat(17), "priority": 1, "layout": {}}]}),
            "searchResultTemplates[0].id",
        ),
        (
            json!({"searchResultTemplates": [{"id": "t1", "priority": 1, "layout": {},
                "rules": [{"property": "nosuchproperty", "operation": "equals", "values": ["x"], "valuesJoinedBy": "or"}]}]}),
            "searchResultTemplates[0].rules[0].property",
        ),
        (
            json!({"searchResultTemplates": [{"id": "t1", "priority": 1, "layout": {},
                "rules": [{"property": "status", "operation": "near", "values": ["x"], "valuesJoinedBy": "or"}]}]}),
            "rules[0].operation",
        ),
        (
            json!({"searchResultTemplates": [{"id": "a", "priority": 1, "layout": {}}, {"id": "b", "priority": 2, "layout": {}}, {"id": "c", "priority": 3, "layout": {}}]}),
            "at most 2",
        ),
    ] {
        let reply = app
            .patch(
                "/v1.0/external/connections/cases",
                &json!({"searchSettings": settings}),
            )
            .await;
        assert_refused(reply, "InvalidRequest", member).await;
    }
    assert_eq!(
        app.get("/v1.0/external/connections/cases").await.body,
        before
    );

    let adele = token_for(&app, "adele@contoso.com").await;
    for (extra, member) in [
        (
            json!({"collapseProperties": [{"fields": ["status"], "limit": 1}, {"fields": ["priority"], "limit": 2}]}),
            "collapseProperties[1].limit",
        ),
        (
            json!({"collapseProperties": [{"fields": ["status"], "limit": 0}]}),
            "collapseProperties[0].limit",
        ),
        (
            json!({"collapseProperties": [{"fields": ["title"], "limit": 1}]}),
            "collapseProperties[0].fields",
        ),
        (
            json!({"collapseProperties": [{"fields": [], "limit": 1}]}),
            "collapseProperties[0].fields",
        ),
        (
            json!({"aggregations": [{"field": "priority", "bucketDefinition": {"ranges": [{"from": "9", "to": "3"}]}}]}),
            "ranges[0].from",
        ),
        (
            json!({"aggregations": [{"field": "priority", "bucketDefinition": {"ranges": [{"from": "soon"}]}}]}),
            "ranges[0].from",
        ),
        (
            json!({"aggregations": [{"field": "status", "bucketDefinition": {"ranges": [{"from": "a"}]}}]}),
            "bucketDefinition.ranges",
        ),
        (
            json!({"aggregations": [{"field": "priority", "bucketDefinition": {"ranges": [{}]}}]}),
            "ranges[0]",
        ),
        (
            json!({"aggregationFilters": ["priority:range(1)"]}),
            "aggregationFilters[0]",
        ),
        (
            json!({"resultTemplateOptions": {"enableResultTemplate": "yes"}}),
            "enableResultTemplate",
        ),
        (json!({"size": 1001}), "size"),
    ] {
        let reply = search_as(&app, &adele, request(extra.clone())).await;
        assert_refused(reply, "InvalidRequest", member).await;
    }
    let reply = search_as(&app, &adele, request(json!({"size": 1000}))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn the_search_page_limit_follows_the_flag() {
    let mut config = Config::for_tests();
    config.search_max_size = 500;
    let app = cases_app(config).await;
    let adele = token_for(&app, "adele@contoso.com").await;
    let reply = search_as(&app, &adele, request(json!({"size": 501}))).await;
    assert_refused(reply, "InvalidRequest", "at most 500").await;
    let reply = search_as(&app, &adele, request(json!({"size": 500}))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// Follows `@odata.nextLink` from `path`, collecting `id`s page by page.
async fn follow(app: &TestApp, path: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut reply = app.get(path).await;
    loop {
        assert_eq!(reply.status, 200, "{}", reply.body);
        pages.push(
            reply.body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|entity| entity["id"].as_str().unwrap().to_string())
                .collect(),
        );
        let Some(next) = reply.body["@odata.nextLink"].as_str() else {
            return pages;
        };
        assert!(next.starts_with(&app.url("/v1.0/")), "{next}");
        assert!(next.contains("$skiptoken="), "{next}");
        reply = app.send(app.client.get(next)).await;
        assert!(pages.len() < 100, "paging does not end");
    }
}

#[tokio::test]
async fn lists_page_with_opaque_skiptokens_and_refuse_forged_ones() {
    let app = TestApp::spawn().await;
    for n in 0..250 {
        let reply = app
            .post("/v1.0/users", &json!({"userPrincipalName": format!("user{n:03}@contoso.com"), "displayName": format!("User {n}")}))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let pages = follow(&app, "/v1.0/users").await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [100, 100, 50]
    );
    let all: BTreeSet<&String> = pages.iter().flatten().collect();
    assert_eq!(all.len(), 250, "no user twice, none left out");
    let pages = follow(&app, "/v1.0/users?$top=999").await;
    assert_eq!(pages.len(), 1);
    let pages = follow(&app, "/v1.0/users?$top=120&$select=id,displayName").await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [120, 120, 10]
    );

    let reply = app.get("/v1.0/groups?$top=1000").await;
    reply.assert_error(400, "Request_UnsupportedQuery");
    assert!(reply.error_message().contains("'1000'"), "{}", reply.body);
    app.get("/v1.0/users?$skip=10")
        .await
        .assert_error(400, "Request_BadRequest");

    // Groups and a group's members.
    for n in 0..105 {
        let reply = app
            .post(
                "/v1.0/groups",
                &json!({"id": format!("g{n:03}"), "displayName": format!("Group {n:03}")}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let pages = follow(&app, "/v1.0/groups").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [100, 5]);
    let users = app.get("/v1.0/users?$top=150").await;
    for user in users.body["value"].as_array().unwrap() {
        let reply = app
            .post(
                "/v1.0/groups/g000/members/$ref",
                &json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", user["id"].as_str().unwrap())}),
            )
            .await;
        assert_eq!(reply.status, 204, "{}", reply.body);
    }
    let pages = follow(&app, "/v1.0/groups/g000/members?$top=60").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [60, 60, 30]);
    // A group id that needs encoding in the link.
    let reply = app
        .post(
            "/v1.0/groups",
            &json!({"id": "team x?y#z", "displayName": "odd"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    for user in users.body["value"].as_array().unwrap().iter().take(3) {
        let reply = app
            .post(
                "/v1.0/groups/team%20x%3Fy%23z/members/$ref",
                &json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", user["id"].as_str().unwrap())}),
            )
            .await;
        assert_eq!(reply.status, 204, "{}", reply.body);
    }
    let pages = follow(&app, "/v1.0/groups/team%20x%3Fy%23z/members?$top=2").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);

    // Connections page with $top.
    for n in 0..5 {
        app.create_connection(&format!("conn{n}")).await;
    }
    let pages = follow(&app, "/v1.0/external/connections?$top=2").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    assert_eq!(follow(&app, "/v1.0/external/connections").await.len(), 1);

    // Tokens are opaque and bound to their collection and tenant.
    let first = app.get("/v1.0/users").await;
    let next = first.body["@odata.nextLink"].as_str().unwrap().to_string();
    let token = next.split("$skiptoken=").nth(1).unwrap().to_string();
    assert!(
        !token.contains("100"),
        "the offset is not readable: {token}"
    );
    let mut forged = token.clone().into_bytes();
    let last = forged.len() - 3;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for path in [
        format!("/v1.0/users?$skiptoken={forged}"),
        format!("/v1.0/groups?$skiptoken={token}"),
        "/v1.0/users?$skiptoken=not-a-token".to_string(),
        "/v1.0/users?$skiptoken=".to_string(),
    ] {
        let reply = app.get(&path).await;
        reply.assert_error(400, "Request_BadRequest");
        assert!(
            reply.error_message().contains("skiptoken"),
            "{}",
            reply.body
        );
    }
    let reply = app
        .get("/v1.0/external/connections?$skiptoken=forged")
        .await;
    reply.assert_error(400, "InvalidRequest");
    let other_tenant = app
        .send(app.client.get(&next).bearer_auth(crate::helpers::token(
            json!({"tid": "22222222-2222-2222-2222-222222222222", "appid": "a"}),
        )))
        .await;
    other_tenant.assert_error(400, "Request_BadRequest");
}

#[tokio::test]
async fn a_replaced_item_shows_its_new_version_in_hits() {
    let app = cases_app(Config::for_tests()).await;
    let adele = token_for(&app, "adele@contoso.com").await;
    let status_of = |reply: &Reply| -> Vec<String> {
        hits(reply)
            .into_iter()
            .map(|(_, hit)| {
                hit["resource"]["properties"]["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    let query = request(json!({"query": {"queryString": "c1"}}));
    assert_eq!(
        status_of(&search_as(&app, &adele, query.clone()).await),
        ["open"]
    );
    for (status, expected) in [
        ("closed", "closed"),
        ("open", "open"),
        ("pending", "pending"),
    ] {
        let reply = app
            .put(
                "/v1.0/external/connections/cases/items/c1",
                &json!({"acl": [grant("everyone", "everyone")], "properties": {"title": "case c1 wombat", "status": status, "priority": 1}}),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        // Searched twice: the second answer comes from the hit cache.
        for _ in 0..2 {
            assert_eq!(
                status_of(&search_as(&app, &adele, query.clone()).await),
                [expected]
            );
        }
    }
}
