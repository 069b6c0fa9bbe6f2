//! Graph's wire format at the edge: error envelopes for every error class, headers, annotations
//! and the path tolerances of the contract.

use serde_json::json;

use crate::helpers::TestApp;

const CONNECTIONS: &str = "/v1.0/external/connections";

#[tokio::test]
async fn unknown_paths_get_graph_errors() {
    let app = TestApp::spawn().await;
    let reply = app.get("/v1.0/external/connectionz").await;
    reply.assert_error(400, "BadRequest");
    assert_eq!(
        reply.error_message(),
        "Resource not found for the segment 'connectionz'."
    );
    let reply = app.get("/beta/external/connections/abc/nothing").await;
    reply.assert_error(400, "BadRequest");
    assert!(reply.error_message().contains("'nothing'"));
    // The first segment after the version is named too (the nested router strips the version).
    let reply = app.get("/v1.0/nothing/external").await;
    reply.assert_error(400, "BadRequest");
    assert_eq!(
        reply.error_message(),
        "Resource not found for the segment 'nothing'."
    );
    let reply = app.get("/v9.9/external/connections").await;
    reply.assert_error(400, "BadRequest");
    assert!(reply.error_message().contains("v9.9"));
    app.get("/nowhere")
        .await
        .assert_error(404, "ResourceNotFound");
}

#[tokio::test]
async fn a_wrong_method_gets_405_in_an_envelope() {
    let app = TestApp::spawn().await;
    let reply = app.put(CONNECTIONS, &json!({})).await;
    reply.assert_error(405, "MethodNotAllowed");
    assert_eq!(
        reply.error_message(),
        "Specified HTTP method is not allowed for the request target."
    );
    assert!(reply.body["error"]["innerError"]["message"]
        .as_str()
        .unwrap()
        .contains("PUT"));
    assert!(reply.header("allow").contains("POST"));
}

#[tokio::test]
async fn malformed_and_non_object_bodies_are_deserialization_errors() {
    let app = TestApp::spawn().await;
    for body in [
        "{\"id\": \"abc\",",
        "[1, 2]",
        "\"text\"",
        "42",
        "null",
        "",
        "   ",
    ] {
        let reply = app.post_raw(CONNECTIONS, "application/json", body).await;
        reply.assert_error(400, "InvalidRequest");
        assert_eq!(
            reply.body["error"]["innerError"]["code"], "DeserializationError",
            "body {body:?}"
        );
        assert_eq!(
            reply.error_message(),
            "The request is malformed or incorrect."
        );
    }
    assert_eq!(app.get(CONNECTIONS).await.body["value"], json!([]));
}

#[tokio::test]
async fn members_of_the_wrong_kind_or_unknown_are_refused_by_name() {
    let app = TestApp::spawn().await;
    let reply = app
        .post(CONNECTIONS, &json!({"id": "conn1", "name": 5}))
        .await;
    reply.assert_error(400, "InvalidRequest");
    assert!(reply.body["error"]["innerError"]["message"]
        .as_str()
        .unwrap()
        .contains("'name'"));
    let reply = app
        .post(
            CONNECTIONS,
            &json!({"id": "conn1", "name": "x", "title": "not a member"}),
        )
        .await;
    reply.assert_error(400, "InvalidRequest");
    assert!(reply.body["error"]["innerError"]["message"]
        .as_str()
        .unwrap()
        .contains("'title'"));
    let reply = app
        .post(
            CONNECTIONS,
            &json!({"@odata.type": "#microsoft.graph.externalGroup", "id": "conn1", "name": "x"}),
        )
        .await;
    reply.assert_error(400, "InvalidRequest");
    let reply = app
        .post(CONNECTIONS, &json!({"@odata.type": "#microsoft.graph.externalConnectors.externalConnection", "id": "conn1", "name": "x"}))
        .await;
    assert_eq!(
        reply.status, 201,
        "the entity's own @odata.type is accepted"
    );
}

#[tokio::test]
async fn a_wrong_content_type_gets_415() {
    let app = TestApp::spawn().await;
    let reply = app
        .post_raw(CONNECTIONS, "text/plain", r#"{"id":"conn1","name":"x"}"#)
        .await;
    reply.assert_error(415, "UnsupportedMediaType");
    let reply = app
        .post_raw(
            CONNECTIONS,
            "application/json; charset=utf-8",
            r#"{"id":"conn1","name":"x"}"#,
        )
        .await;
    assert_eq!(reply.status, 201, "parameters on the JSON type are fine");
}

#[tokio::test]
async fn an_oversized_body_gets_413_and_nothing_is_stored() {
    let mut config = gcemu::config::Config::for_tests();
    config.max_body_bytes = 1024;
    let app = TestApp::spawn_with(config).await;
    let body = json!({"id": "conn1", "name": "x", "description": "d".repeat(2000)});
    let reply = app.post(CONNECTIONS, &body).await;
    reply.assert_error(413, "RequestEntityTooLarge");
    // Without a Content-Length (chunked), the cap still holds.
    let stream = futures_like_chunked(serde_json::to_vec(&body).unwrap());
    let reply = app
        .send(
            app.client
                .post(app.url(CONNECTIONS))
                .header("content-type", "application/json")
                .body(stream),
        )
        .await;
    reply.assert_error(413, "RequestEntityTooLarge");
    assert_eq!(app.get(CONNECTIONS).await.body["value"], json!([]));
}

/// A body without a declared length, so the server must enforce the cap while reading.
fn futures_like_chunked(bytes: Vec<u8>) -> reqwest::Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(256).map(|chunk| Ok(chunk.to_vec())).collect();
    reqwest::Body::wrap_stream(tokio_stream_iter(chunks))
}

fn tokio_stream_iter(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_core_stream::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_core_stream::iter(chunks)
}

mod futures_core_stream {
    //! A minimal iterator-backed stream, to avoid a dependency just for one test.
    use std::pin::Pin;
    use std::task::{Context, Poll};

    pub use futures_core::Stream;

    pub struct Iter<I>(I);

    pub fn iter<I: IntoIterator>(items: I) -> Iter<I::IntoIter> {
        Iter(items.into_iter())
    }

    impl<I: Iterator + Unpin> Stream for Iter<I> {
        type Item = I::Item;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<I::Item>> {
            Poll::Ready(self.0.next())
        }
    }
}

#[tokio::test]
async fn every_response_carries_request_ids_and_echoes_the_clients() {
    let app = TestApp::spawn().await;
    let reply = app.get(CONNECTIONS).await;
    let request_id = reply.header("request-id").to_string();
    assert_eq!(request_id.len(), 36, "a GUID");
    assert_eq!(
        reply.header("client-request-id"),
        request_id,
        "defaults to the request id"
    );
    assert!(reply
        .header("content-type")
        .starts_with("application/json;odata.metadata=minimal"));

    let reply = app
        .send(
            app.client
                .get(app.url("/v1.0/external/connections/nosuch"))
                .header("client-request-id", "my-trace-7"),
        )
        .await;
    assert_eq!(reply.header("client-request-id"), "my-trace-7");
    assert_eq!(
        reply.body["error"]["innerError"]["client-request-id"],
        "my-trace-7"
    );
    assert_ne!(reply.header("request-id"), "my-trace-7");
}

#[tokio::test]
async fn odata_metadata_none_leaves_out_annotations() {
    let app = TestApp::spawn().await;
    app.create_connection("conn1").await;
    let reply = app
        .send(
            app.client
                .get(app.url("/v1.0/external/connections/conn1"))
                .header("accept", "application/json;odata.metadata=none"),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert!(reply.body.get("@odata.context").is_none());
    assert_eq!(reply.body["id"], "conn1");
}

#[tokio::test]
async fn path_tolerances_reach_the_same_resource() {
    let app = TestApp::spawn().await;
    app.create_connection("tickets").await;
    for path in [
        "/v1.0//external/connections/tickets",
        "/v1.0/external/connections/tickets/",
        "/v1.0/external/connections('tickets')",
        "/v1.0/external/connections(%27tickets%27)",
        "/v1.0/external/connections/tick%65ts",
        "/beta/external/connections('tickets')",
    ] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert_eq!(reply.body["id"], "tickets", "{path}");
    }
    let reply = app
        .get("/v1.0/external/connections/tickets?$select=id")
        .await;
    assert_eq!(
        reply.body,
        json!({"@odata.context": format!("{}/v1.0/$metadata#external/connections/$entity", app.address), "id": "tickets"})
    );
}
