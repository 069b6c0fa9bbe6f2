//! The search index: one tantivy index per connection, derived from the store.
//!
//! Invariant: derived data. Every change reaches the index after SQLite committed it, through
//! one indexer thread that receives changes in commit order (they are sent from the store
//! thread's post-commit effects), applies them in batches and commits once per batch, so a
//! tantivy commit is never paid per request. `indexed_seq` says how far the index has caught up;
//! a search waits until it reaches the last acknowledged write.
//! When a connection's schema is applied (at start, or when an operation completes) the index is
//! checked against SQLite (item count and sum of sequence numbers) and rebuilt if they differ,
//! so a crash between the two commits never loses an item nor leaves a ghost.
//! Indexes live in RAM with `--in-memory`, else under `<data-dir>/index/`.

pub mod document;
pub mod mapping;
pub mod query;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, RwLock};

use tantivy::schema::Value as _;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};
use tokio::sync::{oneshot, watch};

use crate::clock::SharedClock;
use crate::domain::ids::{ConnectionId, ItemId, TenantId};
use crate::domain::item::ExternalItem;
use crate::domain::schema::Schema;
use crate::store::{self, Store};
use mapping::IndexMapping;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("tantivy: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("index directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("index directory: {0}")]
    OpenDirectory(#[from] tantivy::directory::error::OpenDirectoryError),
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    #[error("the indexer has stopped")]
    Stopped,
}

/// One connection's index and the mapping it was built with.
pub struct ConnectionIndex {
    pub mapping: IndexMapping,
    pub index: Index,
    pub reader: IndexReader,
    pub schema: Schema,
}

type Key = (TenantId, String);

fn key(tenant: &TenantId, connection_id: &ConnectionId) -> Key {
    (tenant.clone(), connection_id.as_str().to_ascii_lowercase())
}

enum Command {
    Upsert {
        key: Key,
        item: ExternalItem,
        seq: u64,
    },
    Delete {
        key: Key,
        item_id: ItemId,
        seq: u64,
    },
    ApplySchema {
        key: Key,
        connection_id: ConnectionId,
        schema: Schema,
    },
    DropConnection {
        key: Key,
    },
    Reset {
        tenant: Option<TenantId>,
    },
    Flush(oneshot::Sender<()>),
    /// Every write up to this sequence number is reflected (sent after start-up reconciliation).
    CaughtUp(u64),
    /// Commit what is queued, release every writer (and its directory lock) and stop.
    Shutdown(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct SearchIndex {
    indexes: Arc<RwLock<HashMap<Key, Arc<ConnectionIndex>>>>,
    /// The effective schema per connection; items are validated against it.
    schemas: Arc<RwLock<HashMap<Key, Arc<Schema>>>>,
    commands: mpsc::Sender<Command>,
    /// The highest write sequence number handed to the indexer (searches wait for it).
    sent_seq: Arc<AtomicU64>,
    indexed_seq: watch::Receiver<u64>,
    /// With `--index-lag`: item changes wait here until the clock reaches write time + lag.
    delay: Option<Arc<DelayLine>>,
}

/// Item changes held back by `--index-lag`, in write order.
struct DelayLine {
    lag: chrono::Duration,
    clock: SharedClock,
    queue:
        std::sync::Mutex<std::collections::VecDeque<(chrono::DateTime<chrono::Utc>, u64, Command)>>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("indexed_seq", &*self.indexed_seq.borrow())
            .finish()
    }
}

impl SearchIndex {
    /// Starts the indexer thread; indexes go under `root`, or in RAM when `root` is `None`.
    /// With a non-zero `lag`, item changes become searchable only once `clock` has moved `lag`
    /// past their write (`--index-lag`).
    pub fn start(
        root: Option<PathBuf>,
        store: Store,
        lag: std::time::Duration,
        clock: SharedClock,
    ) -> SearchIndex {
        let (commands, receiver) = mpsc::channel();
        let (indexed_sender, indexed_seq) = watch::channel(0);
        let indexes: Arc<RwLock<HashMap<Key, Arc<ConnectionIndex>>>> = Arc::default();
        let indexer = Indexer {
            root,
            store,
            indexes: indexes.clone(),
            writers: HashMap::new(),
            indexed_sender,
        };
        std::thread::Builder::new()
            .name("gcemu-indexer".into())
            .spawn(move || indexer.run(receiver))
            .expect("the indexer thread starts");
        let delay = (!lag.is_zero()).then(|| {
            Arc::new(DelayLine {
                lag: chrono::Duration::from_std(lag).unwrap_or(chrono::Duration::MAX),
                clock,
                queue: Default::default(),
            })
        });
        SearchIndex {
            indexes,
            schemas: Arc::default(),
            commands,
            sent_seq: Arc::new(AtomicU64::new(0)),
            indexed_seq,
            delay,
        }
    }

    /// Queues an item change. Call it only from a store post-commit effect, so changes arrive in commit order.
    pub fn upsert(
        &self,
        tenant: &TenantId,
        connection_id: &ConnectionId,
        item: ExternalItem,
        seq: u64,
    ) {
        self.send_item_change(
            Command::Upsert {
                key: key(tenant, connection_id),
                item,
                seq,
            },
            seq,
        );
    }

    /// Queues an item deletion (from a store post-commit effect).
    pub fn delete(
        &self,
        tenant: &TenantId,
        connection_id: &ConnectionId,
        item_id: ItemId,
        seq: u64,
    ) {
        self.send_item_change(
            Command::Delete {
                key: key(tenant, connection_id),
                item_id,
                seq,
            },
            seq,
        );
    }

    /// Makes `schema` the connection's effective schema now, and has the index follow it
    /// (created, or rebuilt from SQLite when the mapping changes or the index disagrees with it).
    pub fn apply_schema(&self, tenant: &TenantId, connection_id: &ConnectionId, schema: Schema) {
        let key = key(tenant, connection_id);
        self.schemas
            .write()
            .expect("schema lock")
            .insert(key.clone(), Arc::new(schema.clone()));
        let _ = self.commands.send(Command::ApplySchema {
            key,
            connection_id: connection_id.clone(),
            schema,
        });
    }

    pub fn effective_schema(
        &self,
        tenant: &TenantId,
        connection_id: &ConnectionId,
    ) -> Option<Arc<Schema>> {
        self.schemas
            .read()
            .expect("schema lock")
            .get(&key(tenant, connection_id))
            .cloned()
    }

    pub fn drop_connection(&self, tenant: &TenantId, connection_id: &ConnectionId) {
        let key = key(tenant, connection_id);
        self.schemas.write().expect("schema lock").remove(&key);
        self.forget_delayed(|delayed| *delayed != key);
        let _ = self.commands.send(Command::DropConnection { key });
    }

    pub fn reset(&self, tenant: Option<&TenantId>) {
        self.schemas
            .write()
            .expect("schema lock")
            .retain(|(key_tenant, _), _| tenant.is_some_and(|tenant| key_tenant != tenant));
        self.forget_delayed(|(key_tenant, _)| tenant.is_some_and(|tenant| key_tenant != tenant));
        let _ = self.commands.send(Command::Reset {
            tenant: tenant.cloned(),
        });
    }

    /// Waits until every command queued before this call has been applied and committed.
    pub async fn flush(&self) -> Result<(), IndexError> {
        let (done, finished) = oneshot::channel();
        self.commands
            .send(Command::Flush(done))
            .map_err(|_| IndexError::Stopped)?;
        finished.await.map_err(|_| IndexError::Stopped)
    }

    /// Applies what is queued, closes every writer and stops the indexer (graceful shutdown).
    pub async fn shutdown(&self) {
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::Shutdown(done)).is_ok() {
            let _ = finished.await;
        }
    }

    fn send_item_change(&self, command: Command, seq: u64) {
        match &self.delay {
            None => {
                self.sent_seq.fetch_max(seq, Ordering::SeqCst);
                let _ = self.commands.send(command);
            }
            Some(delay) => {
                let visible_at = delay.clock.now() + delay.lag;
                delay
                    .queue
                    .lock()
                    .expect("delay lock")
                    .push_back((visible_at, seq, command));
            }
        }
    }

    /// Hands the indexer every held-back change whose time has come (no-op without a lag).
    pub fn release_due(&self) {
        let Some(delay) = &self.delay else { return };
        let now = delay.clock.now();
        let mut queue = delay.queue.lock().expect("delay lock");
        while queue
            .front()
            .is_some_and(|(visible_at, _, _)| *visible_at <= now)
        {
            let (_, seq, command) = queue.pop_front().expect("checked");
            self.sent_seq.fetch_max(seq, Ordering::SeqCst);
            let _ = self.commands.send(command);
        }
    }

    /// Forgets held-back changes of a connection or tenant that was deleted or reset.
    fn forget_delayed(&self, keep: impl Fn(&Key) -> bool) {
        if let Some(delay) = &self.delay {
            delay
                .queue
                .lock()
                .expect("delay lock")
                .retain(|(_, _, command)| match command {
                    Command::Upsert { key, .. } | Command::Delete { key, .. } => keep(key),
                    _ => true,
                });
        }
    }

    /// Waits until the index reflects every write acknowledged before this call (with
    /// `--index-lag`, every write old enough to be visible).
    pub async fn wait_for_acknowledged_writes(&self) -> Result<(), IndexError> {
        self.release_due();
        let target = self.sent_seq.load(Ordering::SeqCst);
        let mut indexed = self.indexed_seq.clone();
        indexed
            .wait_for(|seq| *seq >= target)
            .await
            .map_err(|_| IndexError::Stopped)?;
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
            .get(&key(tenant, connection_id))
            .cloned()
    }

    /// At start: the store's write sequence stands at `seq`, and once the commands queued before
    /// this one (the reconciliation of every connection) are applied, the index reflects it.
    pub fn caught_up_with_store(&self, seq: u64) {
        self.sent_seq.fetch_max(seq, Ordering::SeqCst);
        let _ = self.commands.send(Command::CaughtUp(seq));
    }
}

/// Rows read from SQLite per page when rebuilding an index.
const REBUILD_PAGE: usize = 2000;
/// Commands applied per tantivy commit at most.
const MAX_COMMANDS_PER_COMMIT: usize = 20_000;
/// Memory budget of one connection's index writer.
const WRITER_MEMORY_BYTES: usize = 32_000_000;

struct Indexer {
    root: Option<PathBuf>,
    store: Store,
    indexes: Arc<RwLock<HashMap<Key, Arc<ConnectionIndex>>>>,
    writers: HashMap<Key, IndexWriter<TantivyDocument>>,
    indexed_sender: watch::Sender<u64>,
}

impl Indexer {
    fn run(mut self, receiver: mpsc::Receiver<Command>) {
        let mut max_seq = 0;
        let mut shutdown: Option<oneshot::Sender<()>> = None;
        while let Ok(first) = receiver.recv() {
            let mut dirty: HashSet<Key> = HashSet::new();
            let mut flushes = Vec::new();
            let mut command = Some(first);
            let mut n_commands = 0;
            while let Some(current) = command.take() {
                n_commands += 1;
                match current {
                    Command::Upsert { key, item, seq } => {
                        max_seq = max_seq.max(seq);
                        if let Err(error) = self.upsert(&key, &item, seq) {
                            tracing::error!(%error, item_id = %item.id, "indexing an item failed");
                        }
                        dirty.insert(key);
                    }
                    Command::Delete { key, item_id, seq } => {
                        max_seq = max_seq.max(seq);
                        self.delete(&key, &item_id);
                        dirty.insert(key);
                    }
                    Command::ApplySchema {
                        key,
                        connection_id,
                        schema,
                    } => {
                        self.commit(&mut dirty);
                        if let Err(error) = self.apply_schema(&key, &connection_id, schema) {
                            tracing::error!(%error, %connection_id, "the index could not follow the schema");
                        }
                    }
                    Command::DropConnection { key } => {
                        dirty.remove(&key);
                        self.drop_index(&key);
                    }
                    Command::Reset { tenant } => {
                        let keys: Vec<Key> = self
                            .indexes
                            .read()
                            .expect("index lock")
                            .keys()
                            .filter(|(key_tenant, _)| {
                                tenant.as_ref().is_none_or(|tenant| key_tenant == tenant)
                            })
                            .cloned()
                            .collect();
                        for key in keys {
                            dirty.remove(&key);
                            self.drop_index(&key);
                        }
                    }
                    Command::Flush(done) => flushes.push(done),
                    Command::CaughtUp(seq) => max_seq = max_seq.max(seq),
                    Command::Shutdown(done) => shutdown = Some(done),
                }
                if n_commands < MAX_COMMANDS_PER_COMMIT && shutdown.is_none() {
                    command = receiver.try_recv().ok();
                }
            }
            self.commit(&mut dirty);
            self.indexed_sender.send_replace(max_seq);
            for done in flushes {
                let _ = done.send(());
            }
            if let Some(done) = shutdown.take() {
                self.writers.clear();
                let _ = done.send(());
                return;
            }
        }
    }

    fn writer(
        &mut self,
        key: &Key,
    ) -> Option<(&mut IndexWriter<TantivyDocument>, Arc<ConnectionIndex>)> {
        let connection_index = self.indexes.read().expect("index lock").get(key).cloned()?;
        if !self.writers.contains_key(key) {
            match connection_index
                .index
                .writer_with_num_threads(1, WRITER_MEMORY_BYTES)
            {
                Ok(writer) => {
                    self.writers.insert(key.clone(), writer);
                }
                Err(error) => {
                    tracing::error!(%error, "opening an index writer failed");
                    return None;
                }
            }
        }
        Some((self.writers.get_mut(key)?, connection_index))
    }

    fn upsert(&mut self, key: &Key, item: &ExternalItem, seq: u64) -> Result<(), IndexError> {
        let Some((writer, connection_index)) = self.writer(key) else {
            return Ok(());
        };
        let mapping = &connection_index.mapping;
        writer.delete_term(Term::from_field_text(mapping.id, item.id.as_str()));
        writer.add_document(document::build(mapping, item, seq))?;
        Ok(())
    }

    fn delete(&mut self, key: &Key, item_id: &ItemId) {
        if let Some((writer, connection_index)) = self.writer(key) {
            writer.delete_term(Term::from_field_text(
                connection_index.mapping.id,
                item_id.as_str(),
            ));
        }
    }

    fn commit(&mut self, dirty: &mut HashSet<Key>) {
        for key in dirty.drain() {
            let Some(writer) = self.writers.get_mut(&key) else {
                continue;
            };
            if let Err(error) = writer.commit() {
                tracing::error!(%error, "committing the index failed");
                continue;
            }
            if let Some(connection_index) = self.indexes.read().expect("index lock").get(&key) {
                if let Err(error) = connection_index.reader.reload() {
                    tracing::error!(%error, "reloading the index reader failed");
                }
            }
        }
    }

    fn directory(&self, key: &Key) -> Option<PathBuf> {
        let root = self.root.as_ref()?;
        let tenant_dir: String = key.0.as_str().bytes().map(|b| format!("{b:02x}")).collect();
        Some(root.join(tenant_dir).join(&key.1))
    }

    fn drop_index(&mut self, key: &Key) {
        self.writers.remove(key);
        self.indexes.write().expect("index lock").remove(key);
        if let Some(dir) = self.directory(key) {
            if dir.exists() {
                if let Err(error) = std::fs::remove_dir_all(&dir) {
                    tracing::error!(%error, dir = %dir.display(), "removing an index directory failed");
                }
            }
        }
    }

    /// Opens the connection's index for `schema` (reusing an on-disk index built with the same
    /// mapping), then makes it agree with SQLite.
    fn apply_schema(
        &mut self,
        key: &Key,
        connection_id: &ConnectionId,
        schema: Schema,
    ) -> Result<(), IndexError> {
        if let Some(existing) = self.indexes.read().expect("index lock").get(key) {
            if existing.schema == schema {
                return Ok(());
            }
        }
        self.writers.remove(key);
        let mapping = mapping::map(&schema);
        let index = match self.directory(key) {
            None => Index::create_in_ram(mapping.schema.clone()),
            Some(dir) => open_or_create(&dir, &mapping)?,
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let connection_index = Arc::new(ConnectionIndex {
            mapping,
            index,
            reader,
            schema,
        });
        self.indexes
            .write()
            .expect("index lock")
            .insert(key.clone(), connection_index.clone());
        let tenant = key.0.clone();
        let lookup = connection_id.clone();
        let expected = self
            .store
            .read_blocking(move |db| store::items::fingerprint(db, &tenant, &lookup))?;
        if fingerprint(&connection_index)? != expected {
            self.rebuild(key, connection_id, &connection_index)?;
        }
        Ok(())
    }

    /// Replaces every document of the connection's index with the items in SQLite.
    fn rebuild(
        &mut self,
        key: &Key,
        connection_id: &ConnectionId,
        connection_index: &Arc<ConnectionIndex>,
    ) -> Result<(), IndexError> {
        tracing::info!(tenant = %key.0, %connection_id, "rebuilding the connection's index from the store");
        let Some((writer, _)) = self.writer(key) else {
            return Ok(());
        };
        writer.delete_all_documents()?;
        let mut after: Option<String> = None;
        loop {
            let (tenant, lookup, cursor) = (key.0.clone(), connection_id.clone(), after.clone());
            let page = self.store.read_blocking(move |db| {
                store::items::page(db, &tenant, &lookup, cursor.as_deref(), REBUILD_PAGE)
            })?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.id.as_str().to_string());
            let writer = self.writers.get_mut(key).expect("the writer exists");
            for (item, seq) in &page {
                writer.add_document(document::build(&connection_index.mapping, item, *seq))?;
            }
        }
        let writer = self.writers.get_mut(key).expect("the writer exists");
        writer.commit()?;
        connection_index.reader.reload()?;
        Ok(())
    }
}

fn open_or_create(dir: &std::path::Path, mapping: &IndexMapping) -> Result<Index, IndexError> {
    if dir.join("meta.json").exists() {
        if let Ok(index) = Index::open_in_dir(dir) {
            let same_mapping = serde_json::to_string(&index.schema()).ok()
                == serde_json::to_string(&mapping.schema).ok();
            if same_mapping {
                return Ok(index);
            }
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    Ok(Index::create_in_dir(dir, mapping.schema.clone())?)
}

/// The number of live documents and the sum of their sequence numbers.
fn fingerprint(connection_index: &ConnectionIndex) -> Result<(u64, u128), IndexError> {
    connection_index.reader.reload()?;
    let searcher = connection_index.reader.searcher();
    let (mut n_docs, mut sum) = (0u64, 0u128);
    for segment in searcher.segment_readers() {
        let store_reader = segment.get_store_reader(1)?;
        let alive = segment.alive_bitset();
        for doc_id in 0..segment.max_doc() {
            if alive.is_some_and(|alive| !alive.is_alive(doc_id)) {
                continue;
            }
            let document: TantivyDocument = store_reader.get(doc_id)?;
            let seq = document
                .get_first(connection_index.mapping.seq)
                .and_then(|value| value.as_u64())
                .unwrap_or(0);
            n_docs += 1;
            sum += seq as u128;
        }
    }
    Ok((n_docs, sum))
}
