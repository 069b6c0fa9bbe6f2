//! `POST /copilot/retrieval` over external items: ACL trimming per persona, filters, metadata,
//! extracts, and the request rules.

use serde_json::{json, Value};

use crate::helpers::{token, Reply, TestApp};

fn long_text(topic: &str) -> String {
    let filler = "The weekly report lists open actions and owners for every team in the building. ";
    format!(
        "{}To clear a {topic} jam, open tray two, remove the crumpled sheet and close the tray firmly. {}",
        filler.repeat(6),
        filler.repeat(6)
    )
}

fn document() -> Value {
    let item = |id: &str, title: &str, category: &str, acl: Value, content: String| {
        json!({
            "id": id,
            "properties": {"title": title, "url": format!("https://kb.contoso.com/{id}"), "category": category, "secret": "s"},
            "content": {"type": "text", "value": content},
            "acl": acl,
            "informationProtectionLabel": {"sensitivityLabelId": "f42aa342-8706-4288-bd11-ebb85995028c"},
        })
    };
    json!({"tenants": [{
        "users": [
            {"userPrincipalName": "adele@contoso.com", "displayName": "Adele"},
            {"userPrincipalName": "bob@contoso.com", "displayName": "Bob"}
        ],
        "groups": [{"id": "eng", "displayName": "Engineering", "members": ["adele@contoso.com"]}],
        "connections": [{
            "id": "kbase",
            "name": "Knowledge base",
            "schema": {"properties": [
                {"name": "title", "type": "String", "isSearchable": true, "isRetrievable": true, "labels": ["title"]},
                {"name": "url", "type": "String", "isRetrievable": true, "labels": ["url"]},
                {"name": "category", "type": "String", "isQueryable": true, "isRetrievable": true, "isRefinable": true},
                {"name": "secret", "type": "String", "isQueryable": true}
            ]},
            "items": [
                item("kb1", "Printer jams", "hardware", json!([{"type": "everyone", "value": "everyone", "accessType": "grant"}]), long_text("printer")),
                item("kb2", "Engineering printer", "hardware", json!([{"type": "group", "value": "eng", "accessType": "grant"}]), long_text("printer")),
                item("kb3", "Printer budget", "finance", json!([{"type": "everyone", "value": "everyone", "accessType": "grant"}]), "Printer budget for next year. Ask finance.".into()),
                item("kb4", "Lunch menu", "canteen", json!([{"type": "everyone", "value": "everyone", "accessType": "grant"}]), "Soup and bread on Monday.".into())
            ]
        }]
    }]})
}

async fn ready() -> TestApp {
    let app = TestApp::spawn().await;
    let loaded = app.post("/_emulator/fixtures", &document()).await;
    assert_eq!(loaded.status, 200, "{}", loaded.body);
    app
}

async fn retrieve_as(app: &TestApp, user: Option<&str>, body: Value) -> Reply {
    let claims = match user {
        Some(user) => json!({"upn": user, "scp": "ExternalItem.Read.All"}),
        None => {
            json!({"appid": "00000000-0000-0000-0000-0000000000a1", "roles": ["ExternalItem.Read.All"]})
        }
    };
    app.send(
        app.client
            .post(app.url("/v1.0/copilot/retrieval"))
            .bearer_auth(token(claims))
            .json(&body),
    )
    .await
}

fn ids(reply: &Reply) -> Vec<String> {
    reply.body["retrievalHits"]
        .as_array()
        .unwrap_or_else(|| panic!("no retrievalHits: {}", reply.body))
        .iter()
        .map(|hit| {
            hit["webUrl"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn question(text: &str) -> Value {
    json!({"queryString": text, "dataSource": "externalItem"})
}

#[tokio::test]
async fn two_people_asking_the_same_question_get_the_hits_their_acls_allow() {
    let app = ready().await;
    let adele = retrieve_as(
        &app,
        Some("adele@contoso.com"),
        question("How do I fix a printer jam?"),
    )
    .await;
    assert_eq!(adele.status, 200, "{}", adele.body);
    let bob = retrieve_as(
        &app,
        Some("bob@contoso.com"),
        question("How do I fix a printer jam?"),
    )
    .await;
    let (mut adele_ids, mut bob_ids) = (ids(&adele), ids(&bob));
    adele_ids.sort();
    bob_ids.sort();
    assert_eq!(adele_ids, ["kb1", "kb2", "kb3"]);
    assert_eq!(bob_ids, ["kb1", "kb3"]);

    let hit = &adele.body["retrievalHits"][0];
    assert_eq!(hit["resourceType"], "externalItem");
    assert_eq!(
        hit["sensitivityLabel"]["sensitivityLabelId"],
        "f42aa342-8706-4288-bd11-ebb85995028c"
    );
    // Extracts: passages with the question's words, best first, scores in 0..1.
    for hit in adele.body["retrievalHits"].as_array().unwrap() {
        let extracts = hit["extracts"].as_array().unwrap();
        assert!(!extracts.is_empty(), "{hit}");
        let scores: Vec<f64> = extracts
            .iter()
            .map(|e| e["relevanceScore"].as_f64().unwrap())
            .collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        assert!(scores.iter().all(|s| (0.0..1.0).contains(s)), "{scores:?}");
        let best = extracts[0]["text"].as_str().unwrap().to_lowercase();
        assert!(best.contains("printer") || best.contains("jam"), "{best}");
    }
    // The long items' best passage is the one about the jam, not the filler around it.
    let kb1 = adele.body["retrievalHits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|hit| hit["webUrl"] == "https://kb.contoso.com/kb1")
        .unwrap();
    let best = kb1["extracts"][0]["text"].as_str().unwrap();
    assert!(best.contains("To clear a printer jam"), "{best}");
    assert!(best.chars().count() < 1000, "{best}");
}

#[tokio::test]
async fn a_filter_expression_narrows_hits_and_invalid_kql_runs_unfiltered() {
    let app = ready().await;
    let mut body = question("printer");
    body["filterExpression"] = json!("category:finance");
    let filtered = retrieve_as(&app, Some("adele@contoso.com"), body.clone()).await;
    assert_eq!(ids(&filtered), ["kb3"]);

    body["filterExpression"] = json!("category:(finance");
    let unfiltered = retrieve_as(&app, Some("adele@contoso.com"), body.clone()).await;
    assert_eq!(unfiltered.status, 200, "{}", unfiltered.body);
    assert_eq!(ids(&unfiltered).len(), 3);
    // A filter on a property that is not queryable is not valid either.
    body["filterExpression"] = json!("url:anything");
    let unfiltered = retrieve_as(&app, Some("adele@contoso.com"), body).await;
    assert_eq!(ids(&unfiltered).len(), 3, "{}", unfiltered.body);
}

#[tokio::test]
async fn resource_metadata_returns_only_retrievable_properties() {
    let app = ready().await;
    let mut body = question("lunch");
    body["resourceMetadata"] = json!(["title", "secret", "category", "nosuch"]);
    let reply = retrieve_as(&app, Some("bob@contoso.com"), body).await;
    assert_eq!(
        reply.body["retrievalHits"][0]["resourceMetadata"],
        json!({"title": "Lunch menu", "category": "canteen"})
    );
    let reply = retrieve_as(&app, Some("bob@contoso.com"), question("lunch")).await;
    assert_eq!(
        reply.body["retrievalHits"][0]["resourceMetadata"],
        json!({})
    );
}

#[tokio::test]
async fn connections_scope_retrieval_and_writes_are_read_at_once() {
    let app = ready().await;
    let put = app
        .put(
            "/v1.0/external/connections/kbase/items/kb5",
            &json!({
                "properties": {"title": "Printer toner", "url": "https://kb.contoso.com/kb5", "category": "hardware"},
                "acl": [{"type": "user", "value": "bob@contoso.com", "accessType": "grant"}],
            }),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let mut body = question("toner");
    body["dataSourceConfiguration"] =
        json!({"externalItem": {"connections": [{"connectionId": "kbase"}]}});
    let reply = retrieve_as(&app, Some("bob@contoso.com"), body).await;
    assert_eq!(ids(&reply), ["kb5"]);
    // An item without content grounds on its searchable properties.
    assert_eq!(
        reply.body["retrievalHits"][0]["extracts"][0]["text"],
        "Printer toner."
    );

    let mut body = question("printer");
    body["maximumNumberOfResults"] = json!(1);
    let reply = retrieve_as(&app, Some("bob@contoso.com"), body).await;
    assert_eq!(ids(&reply).len(), 1);
}

#[tokio::test]
async fn app_only_tokens_and_bad_requests_are_refused() {
    let app = ready().await;
    retrieve_as(&app, None, question("printer"))
        .await
        .assert_error(403, "Forbidden");
    let cases = [
        (json!({"dataSource": "externalItem"}), "queryString"),
        (
            json!({"queryString": "x".repeat(1501), "dataSource": "externalItem"}),
            "queryString",
        ),
        (json!({"queryString": "printer"}), "dataSource"),
        (
            json!({"queryString": "printer", "dataSource": "sharePoint"}),
            "dataSource",
        ),
        (
            json!({"queryString": "printer", "dataSource": "externalItem", "maximumNumberOfResults": 26}),
            "maximumNumberOfResults",
        ),
        (
            json!({"queryString": "printer", "dataSource": "externalItem", "maximumNumberOfResults": 0}),
            "maximumNumberOfResults",
        ),
        (
            json!({"queryString": "printer", "dataSource": "externalItem", "size": 3}),
            "",
        ),
    ];
    for (body, target) in cases {
        let reply = retrieve_as(&app, Some("adele@contoso.com"), body.clone()).await;
        reply.assert_error(400, "InvalidRequest");
        if !target.is_empty() {
            assert_eq!(
                reply.body["error"]["target"], target,
                "{body}: {}",
                reply.body
            );
        }
    }
    let sharepoint = retrieve_as(
        &app,
        Some("adele@contoso.com"),
        json!({"queryString": "printer", "dataSource": "sharePoint"}),
    )
    .await;
    assert!(sharepoint
        .error_message()
        .contains("connector content only"));
    // The beta endpoint answers too.
    let beta = app
        .send(
            app.client
                .post(app.url("/beta/copilot/retrieval"))
                .bearer_auth(token(
                    json!({"upn": "bob@contoso.com", "scp": "ExternalItem.Read.All"}),
                ))
                .json(&question("printer")),
        )
        .await;
    assert_eq!(beta.status, 200, "{}", beta.body);
}

#[tokio::test]
async fn the_explain_endpoint_says_which_passages_an_item_would_yield() {
    let app = ready().await;
    let reply = app
        .get("/_emulator/connections/kbase/items/kb1/access?user=bob@contoso.com&query=how%20to%20clear%20a%20jam")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["allowed"], true);
    let retrieval = &reply.body["retrieval"];
    assert_eq!(retrieval["queryWords"], json!(["clear", "jam"]));
    assert!(retrieval["passages"].as_u64().unwrap() >= 2, "{retrieval}");
    let best = retrieval["extracts"][0]["text"].as_str().unwrap();
    assert!(best.contains("To clear a printer jam"), "{best}");
    // Without a query, no retrieval member.
    let plain = app
        .get("/_emulator/connections/kbase/items/kb1/access?user=bob@contoso.com")
        .await;
    assert!(plain.body.get("retrieval").is_none());
}

#[tokio::test]
async fn retrieval_requests_can_be_batched() {
    let app = ready().await;
    let request = |id: &str, text: &str| {
        json!({"id": id, "method": "POST", "url": "/copilot/retrieval",
               "headers": {"Content-Type": "application/json"}, "body": question(text)})
    };
    let reply = app
        .send(
            app.client
                .post(app.url("/v1.0/$batch"))
                .bearer_auth(token(
                    json!({"upn": "bob@contoso.com", "scp": "ExternalItem.Read.All"}),
                ))
                .json(&json!({"requests": [request("1", "printer jam"), request("2", "lunch")]})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let responses = reply.body["responses"].as_array().unwrap();
    assert_eq!(responses[0]["status"], 200);
    assert_eq!(
        responses[0]["body"]["retrievalHits"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        responses[1]["body"]["retrievalHits"][0]["webUrl"],
        "https://kb.contoso.com/kb4"
    );
}
