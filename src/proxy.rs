//! `--proxy`: gcemu as an HTTP proxy, the way Dev Proxy is used, so that code left pointed at
//! `https://graph.microsoft.com` and `https://login.microsoftonline.com` reaches gcemu.
//!
//! `CONNECT` to an intercepted host (Graph's and Entra's hosts, plus `--proxy-intercept`) is
//! answered by gcemu itself: TLS terminated with a certificate for that host from gcemu's local
//! CA, then the same router as gcemu's own listener. `CONNECT` to any other host is tunnelled
//! untouched. Absolute-form plain-http requests are served (intercepted hosts) or forwarded.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderName, StatusCode};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use crate::http::context::Proxied;
use crate::identity::tls::{self, LocalCa};

/// Microsoft Graph's hosts in the global and national clouds.
pub const GRAPH_HOSTS: &[&str] = &[
    "graph.microsoft.com",
    "canary.graph.microsoft.com",
    "graph.microsoft.us",
    "dod-graph.microsoft.us",
    "microsoftgraph.chinacloudapi.cn",
];

/// Entra's sign-in hosts in the global and national clouds.
pub const IDENTITY_HOSTS: &[&str] = &[
    "login.microsoftonline.com",
    "login.windows.net",
    "login.microsoft.com",
    "sts.windows.net",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
];

/// How long a client may take to finish the TLS handshake inside a `CONNECT` tunnel, and how
/// long connecting to a tunnelled host may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest plain-http request body forwarded to a host gcemu does not intercept.
const MAX_FORWARDED_BODY: usize = 32 * 1024 * 1024;

/// `--proxy` and `--proxy-intercept`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    pub listen: SocketAddr,
    /// Hosts intercepted besides Graph's and Entra's.
    pub intercept: Vec<String>,
}

/// A bound proxy listener.
pub struct Proxy {
    listener: TcpListener,
    shared: Arc<Shared>,
}

struct Shared {
    intercepted: HashSet<String>,
    ca: Arc<LocalCa>,
    /// One TLS configuration per intercepted host, issued on first use (the set is bounded).
    configs: Mutex<HashMap<String, Arc<rustls::ServerConfig>>>,
    forwarder: reqwest::Client,
}

impl Proxy {
    pub async fn bind(config: &ProxyConfig, ca: Arc<LocalCa>) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding the proxy on {}", config.listen))?;
        let mut intercepted: HashSet<String> = GRAPH_HOSTS
            .iter()
            .chain(IDENTITY_HOSTS)
            .map(|host| host.to_string())
            .collect();
        for raw in &config.intercept {
            let host = normalized_host(raw.trim());
            if host.is_empty() || host.contains(['/', ':', ' ', '@']) {
                anyhow::bail!(
                    "--proxy-intercept '{raw}' is not a host name (give the name alone, without a scheme, port or path)"
                );
            }
            intercepted.insert(host);
        }
        let forwarder = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("the proxy's forwarding client")?;
        Ok(Proxy {
            listener,
            shared: Arc::new(Shared {
                intercepted,
                ca,
                configs: Mutex::new(HashMap::new()),
                forwarder,
            }),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` says so; `service` is gcemu's router (with path normalization).
    pub async fn serve<S>(self, service: S, mut shutdown: tokio::sync::watch::Receiver<bool>)
    where
        S: tower::Service<Request, Response = Response, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        loop {
            let stream = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!(%error, "proxy: accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = shutdown.changed() => break,
            };
            let shared = self.shared.clone();
            let service = service.clone();
            let stop = shutdown.clone();
            tokio::spawn(until_stopped(shutdown.clone(), async move {
                let handler = hyper::service::service_fn(
                    move |request: hyper::Request<Incoming>| {
                        let (shared, service, stop) =
                            (shared.clone(), service.clone(), stop.clone());
                        async move { Ok::<_, Infallible>(handle(shared, service, stop, request).await) }
                    },
                );
                let builder = crate::app::connection_builder();
                if let Err(error) = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), handler)
                    .await
                {
                    tracing::debug!(%error, "proxy: client connection ended with an error");
                }
            }));
        }
    }
}

impl Shared {
    fn intercepts(&self, host: &str) -> bool {
        self.intercepted.contains(host)
    }

    fn server_config(&self, host: &str) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let mut configs = self.configs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(config) = configs.get(host) {
            return Ok(config.clone());
        }
        let config = tls::config_for_names(&self.ca, &[host.to_string()])?;
        configs.insert(host.to_string(), config.clone());
        Ok(config)
    }
}

/// Runs `work` until it ends or gcemu shuts down (the sender says so, or is gone): the proxy's
/// sessions and tunnels do not outlive the server.
async fn until_stopped(
    mut stop: tokio::sync::watch::Receiver<bool>,
    work: impl std::future::Future<Output = ()>,
) {
    let stopped = async move {
        loop {
            if *stop.borrow_and_update() {
                return;
            }
            if stop.changed().await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = work => {}
        () = stopped => {}
    }
}

fn text(status: StatusCode, message: String) -> Response {
    let mut response = Response::new(Body::from(message));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// `host` without brackets or a trailing dot, in lower case.
fn normalized_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

async fn handle<S>(
    shared: Arc<Shared>,
    service: S,
    stop: tokio::sync::watch::Receiver<bool>,
    request: hyper::Request<Incoming>,
) -> Response
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    if request.method() == hyper::Method::CONNECT {
        return connect(shared, service, stop, request).await;
    }
    let request = request.map(Body::new);
    // Origin-form (`GET /_emulator/health`): a request to gcemu itself.
    let Some(host) = request.uri().host().map(normalized_host) else {
        return oneshot(service, request).await;
    };
    if shared.intercepts(&host) {
        tracing::debug!(%host, "proxy: serving a plain-http request");
        let mut request = request;
        request.extensions_mut().insert(Proxied { host });
        return oneshot(service, request).await;
    }
    forward(&shared, request).await
}

async fn oneshot<S>(service: S, request: Request) -> Response
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    match tower::ServiceExt::oneshot(service, request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// `CONNECT host:port`.
async fn connect<S>(
    shared: Arc<Shared>,
    service: S,
    stop: tokio::sync::watch::Receiver<bool>,
    request: hyper::Request<Incoming>,
) -> Response
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let Some(authority) = request.uri().authority().cloned() else {
        return text(
            StatusCode::BAD_REQUEST,
            "CONNECT needs a host:port target, for example CONNECT graph.microsoft.com:443.\n"
                .to_string(),
        );
    };
    let host = normalized_host(authority.host());
    let Some(port) = authority.port_u16() else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("CONNECT {authority} names no port; send host:port.\n"),
        );
    };
    if host.is_empty() {
        return text(
            StatusCode::BAD_REQUEST,
            "CONNECT needs a host name.\n".to_string(),
        );
    }
    if shared.intercepts(&host) {
        let config = match shared.server_config(&host) {
            Ok(config) => config,
            Err(error) => {
                tracing::error!(%host, error = format!("{error:#}"), "proxy: issuing a certificate failed");
                return text(
                    StatusCode::BAD_GATEWAY,
                    format!("gcemu could not issue a certificate for {host}: {error:#}\n"),
                );
            }
        };
        tracing::info!(%host, %port, "proxy: intercepting (gcemu answers with a certificate from its CA)");
        tokio::spawn(until_stopped(stop, async move {
            let upgraded = match hyper::upgrade::on(request).await {
                Ok(upgraded) => upgraded,
                Err(error) => {
                    tracing::debug!(%host, %error, "proxy: the CONNECT tunnel was not opened");
                    return;
                }
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(TokioIo::new(upgraded)))
                .await
            {
                Ok(Ok(tls)) => crate::app::serve_connection(tls, service, None, Some(host)).await,
                Ok(Err(error)) => tracing::warn!(
                    %host,
                    %error,
                    "proxy: the TLS handshake with the client failed; a client that does not trust gcemu's CA refuses its certificate: trust GET /_emulator/ca.pem (NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE, SSL_CERT_FILE) or turn verification off"
                ),
                Err(_) => {
                    tracing::warn!(%host, "proxy: the client did not finish the TLS handshake within 10 s")
                }
            }
        }));
        return Response::new(Body::empty());
    }
    let upstream = match tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(upstream)) => upstream,
        Ok(Err(error)) => {
            tracing::info!(%host, %port, %error, "proxy: tunnel refused, the host cannot be reached");
            return text(
                StatusCode::BAD_GATEWAY,
                format!("gcemu's proxy could not connect to {host}:{port}: {error}\n"),
            );
        }
        Err(_) => {
            return text(
                StatusCode::GATEWAY_TIMEOUT,
                format!("gcemu's proxy could not connect to {host}:{port} within 10 s\n"),
            )
        }
    };
    tracing::info!(%host, %port, "proxy: tunnelling (not intercepted)");
    tokio::spawn(until_stopped(stop, async move {
        let mut upstream = upstream;
        match hyper::upgrade::on(request).await {
            Ok(upgraded) => {
                let _ =
                    tokio::io::copy_bidirectional(&mut TokioIo::new(upgraded), &mut upstream).await;
            }
            Err(error) => {
                tracing::debug!(%host, %error, "proxy: the CONNECT tunnel was not opened")
            }
        }
    }));
    Response::new(Body::empty())
}

/// Hop-by-hop headers a proxy does not pass on.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// A plain-http request for a host gcemu does not intercept, passed on.
async fn forward(shared: &Shared, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let url = parts.uri.to_string();
    // Headers the client's `Connection` names are for this hop only, as the hop-by-hop ones.
    let connection_listed: Vec<String> = parts
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    let body = match axum::body::to_bytes(body, MAX_FORWARDED_BODY).await {
        Ok(body) => body,
        Err(_) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("gcemu's proxy forwards bodies of at most {MAX_FORWARDED_BODY} bytes\n"),
            )
        }
    };
    let mut outgoing = shared
        .forwarder
        .request(parts.method.clone(), &url)
        .body(body);
    for (name, value) in parts.headers.iter() {
        if !is_hop_by_hop(name)
            && name != header::HOST
            && !connection_listed
                .iter()
                .any(|listed| listed == name.as_str())
        {
            outgoing = outgoing.header(name, value);
        }
    }
    tracing::info!(%url, "proxy: forwarding a plain-http request (not intercepted)");
    let answer = match outgoing.send().await {
        Ok(answer) => answer,
        Err(error) => {
            return text(
                StatusCode::BAD_GATEWAY,
                format!(
                    "gcemu's proxy could not reach {url}: {}\n",
                    crate::client::error_chain(&error)
                ),
            )
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    // Streamed, not buffered: a large download passes through without being held in memory, and
    // an upstream that breaks off mid-body breaks the client's body too.
    let mut response = Response::new(Body::from_stream(answer.bytes_stream()));
    *response.status_mut() = status;
    for (name, value) in headers.iter() {
        if !is_hop_by_hop(name) {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}
