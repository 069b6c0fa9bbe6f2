//! `AppState`: the cheap-to-clone bundle of handles every request handler and service function gets.

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::http::batch::RouterHandle;
use crate::index::SearchIndex;
use crate::service::access::PrincipalCache;
use crate::service::control::Control;
use crate::store::Store;

/// One shared allocation: cloning it (every extractor and middleware layer does, per request)
/// is one reference count, not one per handle.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Handles>);

impl AppState {
    pub fn new(handles: Handles) -> AppState {
        AppState(Arc::new(handles))
    }
}

impl std::ops::Deref for AppState {
    type Target = Handles;

    fn deref(&self) -> &Handles {
        &self.0
    }
}

/// The handles themselves.
#[derive(Debug)]
pub struct Handles {
    pub config: Arc<Config>,
    pub store: Store,
    pub clock: SharedClock,
    pub index: SearchIndex,
    pub principals: PrincipalCache,
    /// Item versions search hits were made from (`service::hit_cache`).
    pub hits: crate::service::hit_cache::HitCache,
    /// The request journal, fault rules and throttling (`service::control`).
    pub control: Control,
    /// The token signing key and, with `--tls`, the local CA.
    pub identity: crate::identity::Identity,
    /// The built router, through which `$batch` dispatches its sub-requests (set by `http::router`).
    pub router: RouterHandle,
}
