//! `GET /_emulator/openapi.json`: the document's paths and methods are exactly the routes the
//! router serves. The router's paths are read from the built router itself (its `Debug` output
//! lists every route's path), its methods by asking each path with each method (the router
//! answers `405` to a method it has no route for); neither comes from the document. So a route
//! added without documentation, or documentation without a route, fails here.

use std::collections::{BTreeMap, BTreeSet};

use axum::routing::get;
use reqwest::Method;
use serde_json::Value;

use crate::helpers::TestApp;

/// The methods compared. `HEAD` follows `GET` in axum and `OPTIONS`/`TRACE` are never routed.
const METHODS: &[Method] = &[
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// The paths the router has routes for, from its `Debug` output (the route table's node lists
/// `RouteId(n): "/path"` for every route; the fallback router is printed after it and left out).
fn router_paths(router: &axum::Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    let routes = debug
        .split("fallback_router")
        .next()
        .expect("split yields one part at least");
    let pattern = regex::Regex::new(r#"RouteId\(\d+\): "([^"]*)""#).unwrap();
    pattern
        .captures_iter(routes)
        .map(|captures| captures[1].to_string())
        .filter(|path| !path.contains("__private__axum"))
        .collect()
}

/// The document's paths and, for each, its methods in upper case.
fn documented(document: &Value) -> BTreeMap<String, BTreeSet<String>> {
    document["paths"]
        .as_object()
        .expect("paths is an object")
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .unwrap()
                .keys()
                .filter(|key| METHODS.iter().any(|m| m.as_str().eq_ignore_ascii_case(key)))
                .map(|key| key.to_ascii_uppercase())
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

/// A concrete request path for a route path: each `{param}` becomes `x`.
fn concrete(path: &str) -> String {
    let pattern = regex::Regex::new(r"\{[^}]+\}").unwrap();
    pattern.replace_all(path, "x").into_owned()
}

#[tokio::test]
async fn the_document_lists_exactly_the_routes_the_router_serves() {
    let app = TestApp::spawn().await;
    let served_paths = router_paths(&gcemu::http::router(app.state.clone()));
    // The parser still understands axum's output: the table has dozens of routes.
    assert!(
        served_paths.len() > 40 && served_paths.contains("/v1.0/external/connections"),
        "could not read the router's routes from its Debug output: {served_paths:?}"
    );

    let reply = app.get("/_emulator/openapi.json").await;
    assert_eq!(reply.status, 200);
    let document = reply.body;
    let documented = documented(&document);
    let documented_paths: BTreeSet<String> = documented.keys().cloned().collect();
    assert_eq!(
        served_paths
            .difference(&documented_paths)
            .collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "routes the router serves that the OpenAPI document leaves out"
    );
    assert_eq!(
        documented_paths
            .difference(&served_paths)
            .collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "paths the OpenAPI document lists that the router has no route for"
    );

    let mut differences = Vec::new();
    for (path, documented_methods) in &documented {
        let mut served_methods = BTreeSet::new();
        for method in METHODS {
            let response = app
                .client
                .request(method.clone(), app.url(&concrete(path)))
                .send()
                .await
                .unwrap();
            if response.status() != 405 {
                served_methods.insert(method.as_str().to_string());
            }
        }
        if &served_methods != documented_methods {
            differences.push(format!(
                "{path}: the router serves {served_methods:?}, the document lists {documented_methods:?}"
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    app.stop().await;
}

#[tokio::test]
async fn an_undocumented_route_is_seen() {
    let app = TestApp::spawn().await;
    let router = gcemu::http::router(app.state.clone());
    let before = router_paths(&router);
    let router = router.route("/_emulator/undocumented", get(|| async { "" }));
    let after = router_paths(&router);
    assert_eq!(
        after.difference(&before).collect::<Vec<_>>(),
        vec!["/_emulator/undocumented"]
    );
    app.stop().await;
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_unique_operation_ids_and_error_responses() {
    let app = TestApp::spawn().await;
    let reply = app.get("/_emulator/openapi.json").await;
    assert_eq!(reply.status, 200);
    assert!(reply.header("content-type").starts_with("application/json"));
    let document = reply.body;
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(
        document,
        serde_json::to_value(gcemu::http::openapi()).unwrap()
    );

    let mut ids = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(
                ids.insert(id.to_string()),
                "{method} {path}: operationId '{id}' is not unique"
            );
            let responses = operation["responses"].as_object().unwrap();
            for range in ["4XX", "5XX"] {
                assert!(
                    responses.contains_key(range),
                    "{method} {path} does not document {range}"
                );
            }
            let graph = path.starts_with("/v1.0/") || path.starts_with("/beta/");
            assert_eq!(
                operation["security"].is_array(),
                graph,
                "{method} {path}: the bearer token is documented on Graph routes only"
            );
        }
    }
    // Both versions have every Graph path.
    let paths: BTreeSet<&str> = document["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for path in &paths {
        if let Some(rest) = path.strip_prefix("/v1.0") {
            assert!(
                paths.contains(format!("/beta{rest}").as_str()),
                "{path} has no beta twin"
            );
        }
    }
    app.stop().await;
}
