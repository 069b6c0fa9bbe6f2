//! Items as search hits show them, kept in memory by version: a search reads the page's items
//! from the store only for versions it has not shown before.
//!
//! An entry is keyed by the write sequence number of the version it was read at (with tenant and
//! connection); the index says which version each hit is, so an entry is used only for that very
//! version (a replaced item has a new number, sequence numbers are never reused), and no write
//! has to invalidate anything. The cache is bounded by entries and starts afresh when full.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::domain::ids::{ConnectionId, TenantId};
use crate::domain::item::ExternalItem;

/// Items kept at most.
pub const MAX_CACHED_HITS: usize = 10_000;

/// An item version and what hits derive from it once.
#[derive(Debug)]
pub struct CachedHit {
    pub seq: u64,
    pub item: ExternalItem,
    /// The text a summary is cut from (content without markup, else searchable properties).
    pub summary_text: String,
}

type Key = (TenantId, String, u64);

#[derive(Debug, Clone, Default)]
pub struct HitCache {
    entries: Arc<RwLock<HashMap<Key, Arc<CachedHit>>>>,
}

fn key(tenant: &TenantId, connection_id: &ConnectionId, seq: u64) -> Key {
    (
        tenant.clone(),
        connection_id.as_str().to_ascii_lowercase(),
        seq,
    )
}

impl HitCache {
    /// The item version `seq` of the connection, if cached.
    pub fn get(
        &self,
        tenant: &TenantId,
        connection_id: &ConnectionId,
        seq: u64,
    ) -> Option<Arc<CachedHit>> {
        self.entries
            .read()
            .expect("hit cache")
            .get(&key(tenant, connection_id, seq))
            .cloned()
    }

    pub fn put(&self, tenant: &TenantId, connection_id: &ConnectionId, hit: Arc<CachedHit>) {
        let mut entries = self.entries.write().expect("hit cache");
        if entries.len() >= MAX_CACHED_HITS {
            entries.clear();
        }
        entries.insert(key(tenant, connection_id, hit.seq), hit);
    }

    pub fn clear(&self) {
        self.entries.write().expect("hit cache").clear();
    }
}
