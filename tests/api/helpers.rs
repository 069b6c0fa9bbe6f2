//! `TestApp`: the real server on a random loopback port, in-process, with a client and
//! one helper per HTTP verb returning `(status, json body, headers)`.

use std::path::PathBuf;

use gcemu::app::App;
use gcemu::config::{Config, Persistence};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestApp {
    pub address: String,
    /// The server's state, for assertions on derived data (the search index).
    pub state: gcemu::state::AppState,
    pub client: reqwest::Client,
    /// `http://addr` of the proxy listener, with `--proxy`.
    pub proxy: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: HeaderMap,
}

impl Reply {
    /// The top-level `error.code`, or "" when the body is not an error envelope.
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    pub fn error_message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    /// Asserts a Graph error envelope with this status and code, and the innerError Graph always sends.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "status; body: {}", self.body);
        assert_eq!(self.error_code(), code, "error.code; body: {}", self.body);
        let inner = &self.body["error"]["innerError"];
        assert!(
            inner["date"].is_string(),
            "innerError.date missing: {}",
            self.body
        );
        assert_eq!(
            inner["request-id"].as_str(),
            Some(self.header("request-id")),
            "innerError.request-id"
        );
        assert!(
            inner["client-request-id"].is_string(),
            "innerError.client-request-id missing"
        );
        assert!(!self.error_message().is_empty(), "error.message is empty");
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(Config::for_tests()).await
    }

    pub async fn spawn_on_data_dir(dir: PathBuf) -> TestApp {
        let mut config = Config::for_tests();
        config.persistence = Persistence::DataDir(dir);
        TestApp::spawn_with(config).await
    }

    pub async fn spawn_with(config: Config) -> TestApp {
        let tls = config.tls.is_some();
        let app = App::build(config).await.expect("the app builds");
        let scheme = if tls { "https" } else { "http" };
        let address = format!("{scheme}://{}", app.local_addr());
        let proxy = app.proxy_addr().map(|addr| format!("http://{addr}"));
        let state = app.state().clone();
        // Over https the client trusts gcemu's CA, as a user's client would.
        let client = match &state.identity.ca {
            Some(ca) if tls => reqwest::Client::builder()
                .use_rustls_tls()
                .add_root_certificate(
                    reqwest::Certificate::from_pem(ca.cert_pem.as_bytes()).expect("a PEM CA"),
                )
                .build()
                .expect("a TLS client"),
            _ => reqwest::Client::new(),
        };
        let (shutdown, shutdown_signal) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.serve(async {
                let _ = shutdown_signal.await;
            })
            .await
            .expect("the server runs");
        });
        TestApp {
            address,
            state,
            client,
            proxy,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// Stops the server and waits until it has released its state.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("the server task ends");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("the request is answered");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("the body is read");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            body,
            headers,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(self.url(path))).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.client.delete(self.url(path))).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send(self.client.patch(self.url(path)).json(body))
            .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send(self.client.put(self.url(path)).json(body)).await
    }

    /// Sends a raw body with an explicit content type.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        self.send(
            self.client
                .post(self.url(path))
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }

    /// Creates a connection `id` named after it and asserts `201`.
    pub async fn create_connection(&self, id: &str) -> Reply {
        let reply = self
            .post(
                "/v1.0/external/connections",
                &serde_json::json!({"id": id, "name": format!("{id} name"), "description": "test connection"}),
            )
            .await;
        assert_eq!(reply.status, 201, "creating {id}: {}", reply.body);
        reply
    }
}

impl TestApp {
    /// Registers `schema` (the value of `properties`) with PATCH, follows the Location and asserts `completed`.
    pub async fn register_schema(&self, connection_id: &str, properties: Value) {
        let reply = self
            .patch(
                &format!("/v1.0/external/connections/{connection_id}/schema"),
                &serde_json::json!({"baseType": "microsoft.graph.externalItem", "properties": properties}),
            )
            .await;
        assert_eq!(
            reply.status, 202,
            "schema for {connection_id}: {}",
            reply.body
        );
        let operation = self.send(self.client.get(reply.header("location"))).await;
        assert_eq!(operation.body["status"], "completed", "{}", operation.body);
    }

    /// Waits (at most 30 s, so a bug cannot hang the suite) until the index reflects every acknowledged write.
    pub async fn wait_for_index(&self) {
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            self.state.index.wait_for_acknowledged_writes(),
        )
        .await
        .expect("the index catches up within 30 s")
        .expect("the indexer runs");
    }

    /// Waits (at most 30 s) until the indexer has applied every queued command.
    pub async fn flush_index(&self) {
        tokio::time::timeout(std::time::Duration::from_secs(30), self.state.index.flush())
            .await
            .expect("the indexer answers within 30 s")
            .expect("the indexer runs");
    }

    pub async fn advance_clock(&self, seconds: u64) {
        let reply = self
            .post(
                "/_emulator/clock/advance",
                &serde_json::json!({ "seconds": seconds }),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// An unsigned JWT (lenient mode reads claims without checking signatures).
pub fn token(claims: Value) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    format!(
        "{}.{}.unsigned",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}
