//! `--proxy`: CONNECT to Graph's and Entra's hosts answered by gcemu, other hosts tunnelled,
//! plain-http absolute-form requests, refused and malformed CONNECTs, untrusting clients.

use gcemu::config::Config;
use gcemu::identity::tls::CertificateSource;
use gcemu::proxy::ProxyConfig;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::TestApp;

async fn proxied_app() -> TestApp {
    let mut config = Config::for_tests();
    config.proxy = Some(ProxyConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        intercept: vec!["graph.contoso.test".into()],
    });
    TestApp::spawn_with(config).await
}

/// A client that sends everything through the proxy and trusts gcemu's CA, as a connector run
/// with `https_proxy` and `NODE_EXTRA_CA_CERTS` does.
async fn client_through(app: &TestApp, trust_ca: bool) -> reqwest::Client {
    let proxy = app.proxy.clone().expect("the proxy listens");
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .proxy(reqwest::Proxy::all(&proxy).unwrap());
    if trust_ca {
        let ca = app.get("/_emulator/ca.pem").await;
        assert_eq!(ca.status, 200, "the proxy's CA is served");
        builder = builder.add_root_certificate(
            reqwest::Certificate::from_pem(ca.body.as_str().unwrap().as_bytes()).unwrap(),
        );
    }
    builder.build().unwrap()
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn connect_to_graph_and_entra_is_answered_by_gcemu_over_http2() {
    let app = proxied_app().await;
    let client = client_through(&app, true).await;
    let created = client
        .post("https://graph.microsoft.com/v1.0/external/connections")
        .json(&json!({"id": "proxied", "name": "Proxied", "description": "through the proxy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.version(), reqwest::Version::HTTP_2);
    assert_eq!(created.status(), 201);
    // Location stays on the host the client asked for, so following it goes through the proxy.
    assert_eq!(
        created.headers()["location"],
        "https://graph.microsoft.com/v1.0/external/connections/proxied"
    );
    // The same store as gcemu's own listener.
    let direct = app.get("/v1.0/external/connections/proxied").await;
    assert_eq!(direct.status, 200);
    // Sign in through the proxy with the library defaults: instance discovery, metadata, token.
    let tenant = "contoso.onmicrosoft.com";
    let (status, discovery) = json_of(
        client
            .get(format!("https://login.microsoftonline.com/common/discovery/instance?api-version=1.1&authorization_endpoint=https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let metadata_url = discovery["tenant_discovery_endpoint"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        metadata_url,
        format!("https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration")
    );
    let (_, metadata) = json_of(client.get(&metadata_url).send().await.unwrap()).await;
    let token_endpoint = metadata["token_endpoint"].as_str().unwrap().to_string();
    assert_eq!(
        token_endpoint,
        format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token")
    );
    let (status, token) = json_of(
        client
            .post(&token_endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("client_id=11111111-2222-3333-4444-555555555555&client_secret=x&grant_type=client_credentials&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{token}");
    let claims = gcemu::auth::jwt_claims(token["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(
        claims["tid"], tenant,
        "a domain name in the authority is the tenant"
    );
    // A host added with --proxy-intercept is answered too.
    let extra = client
        .get("https://graph.contoso.test/_emulator/health")
        .send()
        .await
        .unwrap();
    assert_eq!(extra.status(), 200);
    // The journal marks what came through the proxy.
    let journal = app.get("/_emulator/requests?method=POST").await;
    let entry = &journal.body["value"][0];
    assert_eq!(entry["path"], "/v1.0/external/connections");
    assert_eq!(entry["proxiedHost"], "graph.microsoft.com");
}

#[tokio::test]
async fn plain_http_requests_for_graph_are_served_too() {
    let app = proxied_app().await;
    let client = client_through(&app, false).await;
    let (status, body) = json_of(
        client
            .get("http://graph.microsoft.com/v1.0/external/connections")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"], json!([]));
    // Origin-form requests to the proxy port are gcemu's own.
    let health = reqwest::get(format!("{}/_emulator/health", app.proxy.as_ref().unwrap()))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn connect_to_other_hosts_is_tunnelled_untouched() {
    let app = proxied_app().await;
    // A local TLS server stands in for a host the proxy does not intercept.
    let mut config = Config::for_tests();
    config.tls = Some(CertificateSource::LocalCa {
        extra_names: Vec::new(),
    });
    let upstream = TestApp::spawn_with(config).await;
    let created = upstream
        .post(
            "/v1.0/external/connections",
            &json!({"id": "upstream", "name": "Upstream", "description": "d"}),
        )
        .await;
    assert_eq!(created.status, 201);
    let client = client_through(&app, true).await;
    let through = client
        .get(format!(
            "{}/v1.0/external/connections/upstream",
            upstream.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(through.status(), 200, "the tunnel reached the other server");
    // The proxying gcemu only carried the bytes: no request reached its API, and it has no such
    // connection.
    let journal = app.get("/_emulator/requests").await;
    assert_eq!(journal.body["value"], json!([]), "{}", journal.body);
    assert_eq!(
        app.get("/v1.0/external/connections/upstream").await.status,
        404
    );
}

async fn raw(proxy: &str, request: &str) -> String {
    let address = proxy.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(15), stream.read(&mut answer))
        .await
        .expect("the proxy answers")
        .unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[tokio::test]
async fn refused_and_malformed_connects_get_an_answer_that_says_why() {
    let app = proxied_app().await;
    let proxy = app.proxy.clone().unwrap();
    // Nothing listens on port 1 of the loopback: the tunnel cannot be opened.
    let refused = raw(
        &proxy,
        "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n",
    )
    .await;
    assert!(refused.starts_with("HTTP/1.1 502"), "{refused}");
    assert!(
        refused.contains("could not connect to 127.0.0.1:1"),
        "{refused}"
    );
    let no_port = raw(
        &proxy,
        "CONNECT graph.microsoft.com HTTP/1.1\r\nHost: graph.microsoft.com\r\n\r\n",
    )
    .await;
    assert!(no_port.starts_with("HTTP/1.1 400"), "{no_port}");
    let garbage = raw(&proxy, "CONNECT %%% HTTP/1.1\r\n\r\n").await;
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    // The proxy still serves after those.
    let client = client_through(&app, true).await;
    let ok = client
        .get("https://graph.microsoft.com/v1.0/external/connections")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_refuses_the_handshake() {
    let app = proxied_app().await;
    let untrusting = client_through(&app, false).await;
    let error = untrusting
        .get("https://graph.microsoft.com/v1.0/external/connections")
        .send()
        .await
        .expect_err("gcemu's certificate is not trusted without its CA");
    let chain = gcemu::client::error_chain(&error);
    assert!(
        chain.to_lowercase().contains("certificate"),
        "the client says why: {chain}"
    );
    // Nothing reached the API.
    assert_eq!(
        app.get("/_emulator/requests").await.body["value"],
        json!([])
    );
}

#[tokio::test]
async fn an_intercept_host_with_a_scheme_or_port_is_refused_at_start() {
    for bad in [
        "https://api.contoso.test",
        "api.contoso.test:8443",
        "a b",
        "",
    ] {
        let mut config = Config::for_tests();
        config.proxy = Some(ProxyConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            intercept: vec![bad.into()],
        });
        let error = gcemu::app::App::build(config).await.err().expect("refused");
        assert!(
            format!("{error:#}").contains("--proxy-intercept"),
            "{bad}: {error:#}"
        );
    }
    // Spaces around a name (GCEMU_PROXY_INTERCEPT="a, b") and a trailing dot are fine.
    let mut config = Config::for_tests();
    config.proxy = Some(ProxyConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        intercept: vec![" Graph.Contoso.Test. ".into()],
    });
    let app = TestApp::spawn_with(config).await;
    let client = client_through(&app, true).await;
    let reply = client
        .get("https://graph.contoso.test/_emulator/health")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
}
