//! The search index: one tantivy index per connection, derived from the store.
//!
//! Invariant: derived data. An index is (re)built from the connection's registered schema
//! (and, later, its items in SQLite); deleting it loses nothing.
//! Indexes live in RAM with `--in-memory`, else under `<data-dir>/index/`.

pub mod mapping;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use tantivy::{Index, IndexReader, ReloadPolicy};

use crate::domain::ids::{ConnectionId, TenantId};
use crate::domain::schema::Schema;
use mapping::IndexMapping;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("tantivy: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("index directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("index directory: {0}")]
    OpenDirectory(#[from] tantivy::directory::error::OpenDirectoryError),
}

/// One connection's index and the mapping it was built with.
pub struct ConnectionIndex {
    pub mapping: IndexMapping,
    pub index: Index,
    pub reader: IndexReader,
    schema: Schema,
}

/// Indexes by tenant and lowercased connection id.
type IndexMap = HashMap<(TenantId, String), Arc<ConnectionIndex>>;

#[derive(Clone)]
pub struct SearchIndex {
    root: Option<PathBuf>,
    indexes: Arc<RwLock<IndexMap>>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("root", &self.root)
            .finish()
    }
}

impl SearchIndex {
    /// Indexes under `root` (created if needed), or in RAM when `root` is `None`.
    pub fn new(root: Option<PathBuf>) -> SearchIndex {
        SearchIndex {
            root,
            indexes: Arc::default(),
        }
    }

    fn key(tenant: &TenantId, connection_id: &ConnectionId) -> (TenantId, String) {
        (tenant.clone(), connection_id.as_str().to_ascii_lowercase())
    }

    /// Makes the connection's index follow `schema`: created on first registration, rebuilt with
    /// the new mapping when an update changes it, untouched when the schema is the same.
    /// Blocking (filesystem); call it from `spawn_blocking`.
    pub fn apply_schema(
        &self,
        tenant: &TenantId,
        connection_id: &ConnectionId,
        schema: &Schema,
    ) -> Result<(), IndexError> {
        let key = SearchIndex::key(tenant, connection_id);
        if let Some(existing) = self.indexes.read().expect("index lock").get(&key) {
            if existing.schema == *schema {
                return Ok(());
            }
        }
        let mapping = mapping::map(schema);
        let index = match self.directory(tenant, connection_id) {
            None => Index::create_in_ram(mapping.schema.clone()),
            Some(dir) => {
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)?;
                }
                std::fs::create_dir_all(&dir)?;
                Index::create_in_dir(&dir, mapping.schema.clone())?
            }
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let connection_index = ConnectionIndex {
            mapping,
            index,
            reader,
            schema: schema.clone(),
        };
        self.indexes
            .write()
            .expect("index lock")
            .insert(key, Arc::new(connection_index));
        Ok(())
    }

    pub fn get(
        &self,
        tenant: &TenantId,
        connection_id: &ConnectionId,
    ) -> Option<Arc<ConnectionIndex>> {
        self.indexes
            .read()
            .expect("index lock")
            .get(&SearchIndex::key(tenant, connection_id))
            .cloned()
    }

    /// Drops the connection's index (connection deleted).
    pub fn remove(
        &self,
        tenant: &TenantId,
        connection_id: &ConnectionId,
    ) -> Result<(), IndexError> {
        self.indexes
            .write()
            .expect("index lock")
            .remove(&SearchIndex::key(tenant, connection_id));
        if let Some(dir) = self.directory(tenant, connection_id) {
            if dir.exists() {
                std::fs::remove_dir_all(dir)?;
            }
        }
        Ok(())
    }

    /// Drops every index of `tenant`, or all of them.
    pub fn reset(&self, tenant: Option<&TenantId>) -> Result<(), IndexError> {
        let mut indexes = self.indexes.write().expect("index lock");
        let keys: Vec<_> = indexes
            .keys()
            .filter(|(t, _)| tenant.is_none_or(|tenant| t == tenant))
            .cloned()
            .collect();
        for (key_tenant, connection) in keys {
            indexes.remove(&(key_tenant.clone(), connection.clone()));
            if let Some(dir) = self.directory(&key_tenant, &ConnectionId::lookup(&connection)) {
                if dir.exists() {
                    std::fs::remove_dir_all(dir)?;
                }
            }
        }
        Ok(())
    }

    fn directory(&self, tenant: &TenantId, connection_id: &ConnectionId) -> Option<PathBuf> {
        let root = self.root.as_ref()?;
        let tenant_dir: String = tenant
            .as_str()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        Some(
            root.join(tenant_dir)
                .join(connection_id.as_str().to_ascii_lowercase()),
        )
    }
}
