//! Building and serving the application: open the store, bind the listener, serve until shutdown.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::Request;
use tokio::net::TcpListener;
use tower::Layer;

use crate::clock::{EmulatorClock, SharedClock};
use crate::config::{Config, Persistence};
use crate::http;
use crate::identity::keys::SigningKey;
use crate::identity::tls::{self, CertificateSource, LocalCa};
use crate::identity::Identity;
use crate::index::SearchIndex;
use crate::service;
use crate::service::access::PrincipalCache;
use crate::service::control::Control;
use crate::state::AppState;
use crate::store::Store;

/// How long in-flight requests may run on after a shutdown signal.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_millis(1500);

/// A bound, ready-to-serve emulator. Binding happens in `build`, so a test can read the port
/// and send requests as soon as `serve` is spawned, without waiting.
pub struct App {
    listener: TcpListener,
    state: AppState,
    /// With `--tls`: the server configuration the listener speaks.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// With `--proxy`: the bound proxy listener.
    proxy: Option<crate::proxy::Proxy>,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<App> {
        App::build_with_clock(config, Arc::new(EmulatorClock::default())).await
    }

    pub async fn build_with_clock(config: Config, clock: SharedClock) -> anyhow::Result<App> {
        // Opening the database runs migrations: blocking work, kept off the async threads.
        let persistence = config.persistence.clone();
        let store = tokio::task::spawn_blocking(move || -> anyhow::Result<Store> {
            match &persistence {
                Persistence::InMemory => Ok(Store::open(None)?),
                Persistence::DataDir(dir) => {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating the data dir {}", dir.display()))?;
                    Store::open(Some(&dir.join("gcemu.sqlite3")))
                        .with_context(|| format!("opening the database in {}", dir.display()))
                }
            }
        })
        .await??;
        let index_root = match &config.persistence {
            Persistence::InMemory => None,
            Persistence::DataDir(dir) => Some(dir.join("index")),
        };
        let index = SearchIndex::start(index_root, store.clone(), config.index_lag, clock.clone());
        // Generating an RSA key and a CA takes a moment: blocking work.
        let (identity, tls) = {
            let data_dir = match &config.persistence {
                Persistence::InMemory => None,
                Persistence::DataDir(dir) => Some(dir.clone()),
            };
            let source = config.tls.clone();
            let proxy = config.proxy.is_some();
            tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let key = SigningKey::load_or_create(data_dir.as_deref())?;
                // The proxy's certificates come from the CA too.
                let ca = match &source {
                    Some(CertificateSource::LocalCa { .. }) => {
                        Some(LocalCa::load_or_create(data_dir.as_deref())?)
                    }
                    _ if proxy => Some(LocalCa::load_or_create(data_dir.as_deref())?),
                    _ => None,
                };
                let tls = match &source {
                    Some(source) => Some(tls::server_config(source, ca.as_deref())?),
                    None => None,
                };
                Ok((Identity { key, ca }, tls))
            })
            .await??
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let proxy = match (&config.proxy, &identity.ca) {
            (Some(proxy), Some(ca)) => Some(crate::proxy::Proxy::bind(proxy, ca.clone()).await?),
            _ => None,
        };
        let control = Control::new(
            config.journal_size,
            config.fault_seed,
            service::control::throttle::Limits {
                rate: config.throttle,
                concurrency: config.throttle_concurrency,
            },
        );
        let state = AppState::new(crate::state::Handles {
            config: Arc::new(config),
            store,
            clock,
            index,
            principals: PrincipalCache::default(),
            hits: Default::default(),
            control,
            identity,
            router: Default::default(),
        });
        // The index is derived from the store: settle what came due while gcemu was down, then rebuild.
        service::schema::settle_all(&state)
            .await
            .context("settling schema operations")?;
        service::schema::rebuild_indexes(&state)
            .await
            .context("rebuilding the search index")?;
        if !state.config.fixtures.is_empty() {
            http::fixtures::load_files(&state, &state.config.fixtures)
                .await
                .context("loading the fixtures")?;
        }
        Ok(App {
            listener,
            state,
            tls,
            proxy,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where the proxy listens (`--proxy`).
    pub fn proxy_addr(&self) -> Option<SocketAddr> {
        self.proxy.as_ref().map(crate::proxy::Proxy::local_addr)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The one line printed when ready: where gcemu serves and where its state lives.
    pub fn ready_line(&self) -> String {
        let storage = match &self.state.config.persistence {
            Persistence::InMemory => "in-memory".to_string(),
            Persistence::DataDir(dir) => format!("data dir {}", dir.display()),
        };
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let proxy = match &self.proxy {
            Some(proxy) => format!(", proxy on {}", proxy.local_addr()),
            None => String::new(),
        };
        format!(
            "gcemu ready on {scheme}://{} ({storage}){proxy}",
            self.local_addr()
        )
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = http::router(self.state.clone());
        // Path normalization must run before routing, so it wraps the router instead of being a route layer.
        let service = axum::middleware::map_request(http::context::normalize_path).layer(router);
        let make_service = axum::ServiceExt::<Request>::into_make_service(service.clone());
        let sweeper = tokio::spawn(sweep_operations(self.state.clone()));
        let releaser = tokio::spawn(release_delayed_index_changes(self.state.clone()));
        // After the signal, in-flight requests get SHUTDOWN_GRACE to finish; then they are cut,
        // so gcemu stops within the 2 s a container runtime is usually given.
        let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
        let (stop_proxy, proxy_stopping) = tokio::sync::watch::channel(false);
        let shutdown = async move {
            shutdown.await;
            let _ = stop_proxy.send(true);
            let _ = signalled.send(());
        };
        let proxy = self
            .proxy
            .map(|proxy| tokio::spawn(proxy.serve(service.clone(), proxy_stopping)));
        let serving: std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> =
            match self.tls.clone() {
                None => Box::pin(
                    axum::serve(self.listener, make_service)
                        .with_graceful_shutdown(shutdown)
                        .into_future(),
                ),
                Some(config) => Box::pin(serve_tls(self.listener, config, service, shutdown)),
            };
        let grace_over = async move {
            match on_signal.await {
                Ok(()) => tokio::time::sleep(SHUTDOWN_GRACE).await,
                Err(_) => std::future::pending::<()>().await,
            }
        };
        let served = tokio::select! {
            served = serving => served,
            _ = grace_over => {
                tracing::warn!("requests still in flight at shutdown were cut");
                Ok(())
            }
        };
        sweeper.abort();
        releaser.abort();
        if let Some(proxy) = proxy {
            proxy.abort();
        }
        // The router holds the state, and the state the router (for `$batch`): break the cycle.
        self.state.router.clear();
        // Index work already acknowledged to clients is committed before the process ends.
        self.state.index.shutdown().await;
        served
    }
}

/// Settles schema operations as the clock reaches their completion time, so that a connection
/// becomes `ready` even when nobody polls (reads also settle, so tests never wait for this).
async fn sweep_operations(state: AppState) {
    let mut interval = tokio::time::interval(std::time::Duration::from_millis(250));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(error) = service::schema::settle_all(&state).await {
            tracing::error!(%error, "settling schema operations failed");
        }
    }
}

/// With `--index-lag`, hands held-back index changes to the indexer as the clock reaches them
/// (searches and `/_emulator/clock/advance` also release, so tests never wait for this).
async fn release_delayed_index_changes(state: AppState) {
    if state.config.index_lag.is_zero() {
        return;
    }
    let mut interval = tokio::time::interval(std::time::Duration::from_millis(100));
    loop {
        interval.tick().await;
        state.index.release_due();
    }
}

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `service` over TLS on `listener` (HTTP/2 or HTTP/1.1, by ALPN) until `shutdown`, then
/// lets open connections finish their requests.
async fn serve_tls<S>(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    service: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    S: tower::Service<
            Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let acceptor = acceptor.clone();
        let service = service.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%error, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            serve_connection(tls, service, Some(watcher), None).await;
        });
    }
    graceful.shutdown().await;
    Ok(())
}

/// How long a client may take to send a request's headers before its connection is closed.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// An HTTP/1.1 and HTTP/2 connection server with timers, so that the header read timeout holds
/// and a client that never finishes its headers does not keep a connection forever.
pub(crate) fn connection_builder(
) -> hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor> {
    let mut builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(hyper_util::rt::TokioTimer::new());
    builder
}

/// Serves one established TLS connection with HTTP/1.1 or HTTP/2, marking its requests as
/// arrived over TLS (and, from the proxy, with the host the client asked for).
pub(crate) async fn serve_connection<I, S>(
    io: I,
    service: S,
    watcher: Option<hyper_util::server::graceful::Watcher>,
    proxied_host: Option<String>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<
            Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let service =
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(http::context::OverTls);
            if let Some(host) = &proxied_host {
                request
                    .extensions_mut()
                    .insert(http::context::Proxied { host: host.clone() });
            }
            tower::ServiceExt::oneshot(service.clone(), request)
        });
    let builder = connection_builder();
    let connection =
        builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(io), service);
    let served = match watcher {
        Some(watcher) => watcher.watch(connection.into_owned()).await,
        None => connection.await,
    };
    if let Err(error) = served {
        tracing::debug!(%error, "connection ended with an error");
    }
}
