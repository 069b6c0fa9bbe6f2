//! The test control plane: the request journal, fault rules and throttling.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::TestApp;
use gcemu::config::Config;

fn entries(reply: &crate::helpers::Reply) -> Vec<Value> {
    reply.body["value"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn the_journal_records_graph_requests_with_their_details_and_filters_them() {
    let app = TestApp::spawn().await;
    app.create_connection("journaled").await;
    let failed = app
        .send(
            app.client
                .post(app.url("/v1.0/external/connections"))
                .header("client-request-id", "my-request-1")
                .json(&json!({"id": "bad-id", "name": "x"})),
        )
        .await;
    assert_eq!(failed.status, 400);
    app.get("/_emulator/health").await;
    app.get("/beta/external/connections/journaled").await;

    let all = app.get("/_emulator/requests").await;
    assert_eq!(all.status, 200, "{}", all.body);
    let value = entries(&all);
    // Control-plane requests are not Graph requests: not journaled.
    assert_eq!(value.len(), 3, "{}", all.body);
    assert_eq!(all.body["dropped"], 0);
    let first = &value[0];
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/v1.0/external/connections");
    assert_eq!(first["status"], 201);
    assert_eq!(first["tenant"], "00000000-0000-0000-0000-000000000001");
    assert_eq!(first["caller"], "00000000-0000-0000-0000-0000000000a1");
    assert!(first["requestBytes"].as_u64().unwrap() > 10);
    assert!(first["durationMs"].is_u64());
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    let second = &value[1];
    assert_eq!(second["clientRequestId"], "my-request-1");
    assert_eq!(second["errorCode"], "InvalidRequest");
    assert!(second["errorMessage"].as_str().unwrap().contains("bad-id"));

    for (query, expected) in [
        ("?method=post", 2),
        ("?status=400", 1),
        ("?clientRequestId=my-request-1", 1),
        ("?pathPrefix=/beta/", 1),
        ("?pathPrefix=/v1.0/external/connections&method=GET", 0),
    ] {
        let filtered = app.get(&format!("/_emulator/requests{query}")).await;
        assert_eq!(
            entries(&filtered).len(),
            expected,
            "{query}: {}",
            filtered.body
        );
    }
    app.get("/_emulator/requests?status=abc")
        .await
        .assert_error(400, "InvalidRequest");

    assert_eq!(app.delete("/_emulator/requests").await.status, 204);
    assert!(entries(&app.get("/_emulator/requests").await).is_empty());
}

#[tokio::test]
async fn the_journal_is_bounded_and_says_how_many_entries_were_dropped() {
    let mut config = Config::for_tests();
    config.journal_size = 3;
    let app = TestApp::spawn_with(config).await;
    for n in 0..5 {
        app.get(&format!("/v1.0/external/connections/conn{n}00"))
            .await;
    }
    let reply = app.get("/_emulator/requests").await;
    let paths: Vec<&str> = reply.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/v1.0/external/connections/conn200",
            "/v1.0/external/connections/conn300",
            "/v1.0/external/connections/conn400"
        ]
    );
    assert_eq!(reply.body["dropped"], 2);
    assert_eq!(reply.body["capacity"], 3);
}

#[tokio::test]
async fn a_count_rule_fails_its_next_matches_in_graph_envelopes_and_the_journal_names_it() {
    let app = TestApp::spawn().await;
    app.create_connection("faulty").await;
    let rule = app
        .post(
            "/_emulator/faults",
            &json!({"method": "get", "path": "/v1.0/external/connections/*", "status": 503, "count": 2, "retryAfterSeconds": 7}),
        )
        .await;
    assert_eq!(rule.status, 201, "{}", rule.body);
    let id = rule.body["id"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let failed = app.get("/v1.0/external/connections/faulty").await;
        failed.assert_error(503, "serviceNotAvailable");
        assert_eq!(failed.header("retry-after"), "7");
        assert!(failed.error_message().contains(&format!("rule {id}")));
    }
    assert_eq!(
        app.get("/v1.0/external/connections/faulty").await.status,
        200
    );
    // Another method or path never matched.
    assert_eq!(app.get("/v1.0/external/connections").await.status, 200);

    let journal = app.get("/_emulator/requests?status=503").await;
    let faulted = entries(&journal);
    assert_eq!(faulted.len(), 2);
    assert_eq!(faulted[0]["fault"], id.as_str());
    assert_eq!(faulted[0]["retryAfterSeconds"], 7);
    let listed = app.get("/_emulator/faults").await;
    assert_eq!(listed.body["value"][0]["fired"], 2);
    assert_eq!(listed.body["value"][0]["remaining"], 0);
}

#[tokio::test]
async fn custom_codes_messages_and_429_with_retry_after() {
    let app = TestApp::spawn().await;
    app.post(
        "/_emulator/faults",
        &json!({"path": "/v1.0/**", "status": 429, "retryAfterSeconds": 2, "code": "activityLimitReached", "message": "Slow down."}),
    )
    .await;
    let throttled = app.get("/v1.0/external/connections").await;
    throttled.assert_error(429, "activityLimitReached");
    assert_eq!(throttled.error_message(), "Slow down.");
    assert_eq!(throttled.header("retry-after"), "2");
}

async fn fired_pattern(seed: u64) -> Vec<u16> {
    let mut config = Config::for_tests();
    config.fault_seed = seed;
    let app = TestApp::spawn_with(config).await;
    let rule = app
        .post(
            "/_emulator/faults",
            &json!({"path": "/v1.0/external/**", "status": 500, "probability": 0.5}),
        )
        .await;
    assert_eq!(rule.status, 201, "{}", rule.body);
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(app.get("/v1.0/external/connections").await.status.as_u16());
    }
    statuses
}

#[tokio::test]
async fn probability_rules_repeat_with_the_same_seed() {
    let first = fired_pattern(11).await;
    assert_eq!(first, fired_pattern(11).await);
    let failures = first.iter().filter(|s| **s == 500).count();
    assert!((5..35).contains(&failures), "{first:?}");
    assert!(first.iter().all(|s| *s == 500 || *s == 200));
}

#[tokio::test]
async fn a_delay_rule_slows_a_request_and_rules_can_be_deleted() {
    let app = TestApp::spawn().await;
    let slow = app
        .post(
            "/_emulator/faults",
            &json!({"path": "/v1.0/external/connections", "delayMs": 300}),
        )
        .await;
    assert_eq!(slow.status, 201, "{}", slow.body);
    let started = std::time::Instant::now();
    assert_eq!(app.get("/v1.0/external/connections").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let journal = app.get("/_emulator/requests").await;
    assert!(entries(&journal)[0]["durationMs"].as_u64().unwrap() >= 300);

    let a = app
        .post("/_emulator/faults", &json!({"path": "/a", "status": 500}))
        .await;
    app.post("/_emulator/faults", &json!({"path": "/b", "status": 500}))
        .await;
    let id = a.body["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/_emulator/faults/{id}")).await.status,
        204
    );
    app.delete(&format!("/_emulator/faults/{id}"))
        .await
        .assert_error(404, "ItemNotFound");
    // The used-up delay rule stays listed (with "remaining": 0) until deleted.
    assert_eq!(
        app.get("/_emulator/faults").await.body["value"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(app.delete("/_emulator/faults").await.status, 204);
    assert!(app.get("/_emulator/faults").await.body["value"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn bad_fault_rules_are_refused_naming_the_member() {
    let app = TestApp::spawn().await;
    for (rule, target) in [
        (json!({"status": 500}), "path"),
        (json!({"path": "no-slash", "status": 500}), "path"),
        (json!({"path": "/x", "status": 200}), "status"),
        (json!({"path": "/x"}), "status"),
        (
            json!({"path": "/x", "status": 500, "probability": 1.5}),
            "probability",
        ),
        (
            json!({"path": "/x", "status": 500, "count": 2, "probability": 0.5}),
            "probability",
        ),
        (json!({"path": "/x", "status": "500"}), "status"),
        (
            json!({"path": "/x", "status": 500, "delayMs": 600000}),
            "delayMs",
        ),
        (json!({"path": "/x", "status": 500, "colour": 1}), "colour"),
    ] {
        let reply = app.post("/_emulator/faults", &rule).await;
        reply.assert_error(400, "InvalidRequest");
        assert_eq!(
            reply.body["error"]["target"], target,
            "{rule}: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after_and_recovers_when_the_clock_advances() {
    let mut config = Config::for_tests();
    config.throttle = Some(2.0);
    let app = TestApp::spawn_with(config).await;
    app.create_connection("throttled").await;
    // Two requests to the connection fit in a second (the create was to the collection); the
    // next is refused.
    for _ in 0..2 {
        assert_eq!(
            app.get("/v1.0/external/connections/throttled").await.status,
            200
        );
    }
    let refused = app.get("/v1.0/external/connections/throttled").await;
    refused.assert_error(429, "TooManyRequests");
    assert_eq!(refused.header("retry-after"), "1");
    // Other connections, and requests outside any connection, are not limited by it.
    assert_eq!(
        app.get("/v1.0/external/connections/another1").await.status,
        404
    );
    assert_eq!(app.get("/v1.0/external/connections").await.status, 200);

    app.advance_clock(1).await;
    assert_eq!(
        app.get("/v1.0/external/connections/throttled").await.status,
        200
    );
    let journal = app.get("/_emulator/requests?status=429").await;
    assert_eq!(entries(&journal)[0]["throttled"], true);
}

#[tokio::test]
async fn concurrency_limits_count_requests_in_flight() {
    let mut config = Config::for_tests();
    config.throttle_concurrency = Some(1);
    let app = TestApp::spawn_with(config).await;
    app.create_connection("busy1").await;
    app.post(
        "/_emulator/faults",
        &json!({"path": "/v1.0/external/connections/busy1", "delayMs": 1500}),
    )
    .await;
    let slow = app
        .client
        .get(app.url("/v1.0/external/connections/busy1"))
        .send();
    let slow = tokio::spawn(slow);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = app.get("/v1.0/external/connections/busy1").await;
    refused.assert_error(429, "TooManyRequests");
    assert_eq!(slow.await.unwrap().unwrap().status(), 200);
    assert_eq!(
        app.get("/v1.0/external/connections/busy1").await.status,
        200
    );
}
