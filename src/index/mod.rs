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
pub mod search;
pub mod visibility;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, RwLock};

use tantivy::indexer::UserOperation;
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
    pub mapping: Arc<IndexMapping>,
    pub index: Index,
    pub reader: IndexReader,
    pub schema: Schema,
    /// Names the mapping (and so the directory the index lives in, `<connection>/<generation>`).
    generation: String,
    /// Each principal set's visible documents per segment.
    pub visibility: Arc<visibility::VisibilityCache>,
}

type Key = (TenantId, String);

fn key(tenant: &TenantId, connection_id: &ConnectionId) -> Key {
    (tenant.clone(), connection_id.as_str().to_ascii_lowercase())
}

enum Command {
    Upsert {
        key: Key,
        /// Shared with the writer's answer: the item is not copied to be indexed.
        item: std::sync::Arc<ExternalItem>,
        seq: u64,
        /// The store created the item (it held no version of it): the index has no document of
        /// it to replace, unless a rebuild read this version from the store (`filled_through`).
        created: bool,
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
        ticket: u64,
    },
    DropConnection {
        key: Key,
        ticket: u64,
    },
    Reset {
        tenant: Option<TenantId>,
        ticket: u64,
    },
    Flush(oneshot::Sender<()>),
    /// Every write up to this sequence number is reflected (sent after start-up reconciliation).
    CaughtUp(u64),
    /// Commit what is queued, release every writer (and its directory lock) and stop.
    Shutdown(oneshot::Sender<()>),
    /// A search waits for writes not committed yet: commit now rather than at the interval.
    Commit,
}

/// How long item changes may stay uncommitted while nobody searches: ingest then pays one
/// tantivy commit (and the merges it leads to) per interval instead of one per batch, and a
/// search commits at once what it waits for (`Command::Commit`). Three seconds rather than one:
/// fewer, larger segments to write and merge took 5 to 9% off the CPU of a 16-client ingest, and
/// nothing reads the index without first asking for the commit it needs.
const COMMIT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3);
/// How long the indexer rests after a batch of item changes before it takes the next. Changes
/// sent meanwhile wait in the queue, so under a steady ingest the indexer (and tantivy's indexing
/// thread behind it) wakes a few hundred times a second for many changes each, instead of once
/// per store commit for a handful; a search that waits for its writes waits this much more at most.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(5);
/// Item changes left uncommitted at most, whatever the interval.
const MAX_UNCOMMITTED_CHANGES: usize = 20_000;

#[derive(Clone)]
pub struct SearchIndex {
    indexes: Arc<RwLock<HashMap<Key, Arc<ConnectionIndex>>>>,
    /// The effective schema per connection; items are validated against it.
    schemas: Arc<RwLock<HashMap<Key, Arc<Schema>>>>,
    commands: mpsc::Sender<Command>,
    /// The highest write sequence number handed to the indexer (searches wait for it).
    sent_seq: Arc<AtomicU64>,
    indexed_seq: watch::Receiver<u64>,
    /// Schema applications, connection drops and resets are numbered by a ticket; a search waits
    /// until the indexer has applied every ticket given out before it started, so it never reads
    /// an index older than the schema a client has already seen `completed`.
    tickets_sent: Arc<AtomicU64>,
    tickets_applied: watch::Receiver<u64>,
    /// Connections whose index failed (a tantivy commit or write error) and is being rebuilt from
    /// the store, with the reason: searches on them answer 503 until the rebuild succeeds.
    failures: Arc<RwLock<HashMap<Key, String>>>,
    alive: Arc<std::sync::atomic::AtomicBool>,
    /// With `--index-lag`: item changes wait here until the clock reaches write time + lag.
    delay: Option<Arc<DelayLine>>,
}

/// Item changes held back by `--index-lag`, in write order.
struct DelayLine {
    lag: chrono::Duration,
    clock: SharedClock,
    queue: std::sync::Mutex<HeldBack>,
    /// The smallest sequence number held back (`u64::MAX` when none is): an index filled from
    /// the store leaves out versions from there on, which are not visible yet.
    held_back_from: Arc<AtomicU64>,
}

/// The changes a `DelayLine` holds back: (visible at, sequence number, change), in write order.
type HeldBack = std::collections::VecDeque<(chrono::DateTime<chrono::Utc>, u64, Command)>;

impl DelayLine {
    /// Records the queue's smallest sequence number (changes are held back in write order, so
    /// the front's) after changes left it.
    fn note_front(&self, queue: &HeldBack) {
        let next = queue.front().map_or(u64::MAX, |(_, seq, _)| *seq);
        self.held_back_from.store(next, Ordering::SeqCst);
    }
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
        let (tickets_sender, tickets_applied) = watch::channel(0);
        let indexes: Arc<RwLock<HashMap<Key, Arc<ConnectionIndex>>>> = Arc::default();
        let failures: Arc<RwLock<HashMap<Key, String>>> = Arc::default();
        let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let delay = (!lag.is_zero()).then(|| {
            Arc::new(DelayLine {
                lag: chrono::Duration::from_std(lag).unwrap_or(chrono::Duration::MAX),
                clock,
                queue: Default::default(),
                held_back_from: Arc::new(AtomicU64::new(u64::MAX)),
            })
        });
        let indexer = Indexer {
            held_back_from: delay.as_ref().map(|delay| delay.held_back_from.clone()),
            root,
            store,
            indexes: indexes.clone(),
            writers: HashMap::new(),
            writer_last_used: HashMap::new(),
            batch_number: 0,
            failures: failures.clone(),
            indexed_sender,
            tickets_sender,
            desired: HashMap::new(),
            filled_through: HashMap::new(),
        };
        let flag = alive.clone();
        std::thread::Builder::new()
            .name("gcemu-indexer".into())
            .spawn(move || {
                let _alive = ClearOnDrop(flag);
                indexer.run(receiver)
            })
            .expect("the indexer thread starts");
        SearchIndex {
            indexes,
            schemas: Arc::default(),
            commands,
            sent_seq: Arc::new(AtomicU64::new(0)),
            indexed_seq,
            tickets_sent: Arc::new(AtomicU64::new(0)),
            tickets_applied,
            failures,
            alive,
            delay,
        }
    }

    /// Whether the indexer thread runs (the health endpoint reports it).
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Why the connection's index cannot be searched now, if it cannot.
    pub fn failure(&self, tenant: &TenantId, connection_id: &ConnectionId) -> Option<String> {
        self.failures
            .read()
            .expect("failure lock")
            .get(&key(tenant, connection_id))
            .cloned()
    }

    /// Every connection index that failed, as `tenant/connection: reason` (for the health endpoint).
    pub fn failures(&self) -> Vec<String> {
        self.failures
            .read()
            .expect("failure lock")
            .iter()
            .map(|((tenant, connection), reason)| format!("{tenant}/{connection}: {reason}"))
            .collect()
    }

    /// Item changes handed to the indexer and not yet applied.
    pub fn backlog(&self) -> u64 {
        self.sent_seq
            .load(Ordering::SeqCst)
            .saturating_sub(*self.indexed_seq.borrow())
    }

    /// Waits while more than `MAX_BACKLOG` item changes wait for the indexer, so writers that
    /// outpace it slow down instead of growing its queue without bound.
    pub async fn wait_for_room(&self) -> Result<(), IndexError> {
        if self.backlog() <= MAX_BACKLOG {
            return Ok(());
        }
        let sent = self.sent_seq.clone();
        let mut indexed = self.indexed_seq.clone();
        indexed
            .wait_for(|seq| sent.load(Ordering::SeqCst).saturating_sub(*seq) <= MAX_BACKLOG)
            .await
            .map_err(|_| IndexError::Stopped)?;
        Ok(())
    }

    fn next_ticket(&self) -> u64 {
        self.tickets_sent.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Queues an item change. Call it only from a store post-commit effect, so changes arrive in
    /// commit order; `created` when the store held no version of the item before this one.
    pub fn upsert(
        &self,
        tenant: &TenantId,
        connection_id: &ConnectionId,
        item: std::sync::Arc<ExternalItem>,
        seq: u64,
        created: bool,
    ) {
        self.send_item_change(
            Command::Upsert {
                key: key(tenant, connection_id),
                item,
                seq,
                created,
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
            ticket: self.next_ticket(),
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
        let ticket = self.next_ticket();
        let _ = self.commands.send(Command::DropConnection { key, ticket });
    }

    pub fn reset(&self, tenant: Option<&TenantId>) {
        self.schemas
            .write()
            .expect("schema lock")
            .retain(|(key_tenant, _), _| tenant.is_some_and(|tenant| key_tenant != tenant));
        self.forget_delayed(|(key_tenant, _)| tenant.is_some_and(|tenant| key_tenant != tenant));
        let _ = self.commands.send(Command::Reset {
            tenant: tenant.cloned(),
            ticket: self.next_ticket(),
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
                let visible_at = crate::clock::later(delay.clock.now(), delay.lag);
                let mut queue = delay.queue.lock().expect("delay lock");
                if queue.is_empty() {
                    delay.held_back_from.store(seq, Ordering::SeqCst);
                }
                queue.push_back((visible_at, seq, command));
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
        delay.note_front(&queue);
    }

    /// Forgets held-back changes of a connection or tenant that was deleted or reset.
    fn forget_delayed(&self, keep: impl Fn(&Key) -> bool) {
        if let Some(delay) = &self.delay {
            let mut queue = delay.queue.lock().expect("delay lock");
            queue.retain(|(_, _, command)| match command {
                Command::Upsert { key, .. } | Command::Delete { key, .. } => keep(key),
                _ => true,
            });
            delay.note_front(&queue);
        }
    }

    /// Waits until the index reflects every write acknowledged before this call (with
    /// `--index-lag`, every write old enough to be visible).
    pub async fn wait_for_acknowledged_writes(&self) -> Result<(), IndexError> {
        self.release_due();
        let target = self.sent_seq.load(Ordering::SeqCst);
        let tickets = self.tickets_sent.load(Ordering::SeqCst);
        let mut indexed = self.indexed_seq.clone();
        if *indexed.borrow() < target {
            let _ = self.commands.send(Command::Commit);
        }
        indexed
            .wait_for(|seq| *seq >= target)
            .await
            .map_err(|_| IndexError::Stopped)?;
        let mut applied = self.tickets_applied.clone();
        applied
            .wait_for(|ticket| *ticket >= tickets)
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
/// Index writers kept open at most (each holds a thread and up to its memory budget); the least
/// recently used is closed beyond that, and reopened when its connection is written again.
const MAX_OPEN_WRITERS: usize = 8;
/// Item changes that may wait for the indexer before writers are made to wait.
pub const MAX_BACKLOG: u64 = 50_000;
/// How often a failed connection index is retried while nothing else arrives.
const RECOVERY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

struct Indexer {
    root: Option<PathBuf>,
    store: Store,
    indexes: Arc<RwLock<HashMap<Key, Arc<ConnectionIndex>>>>,
    writers: HashMap<Key, IndexWriter<TantivyDocument>>,
    writer_last_used: HashMap<Key, u64>,
    batch_number: u64,
    failures: Arc<RwLock<HashMap<Key, String>>>,
    indexed_sender: watch::Sender<u64>,
    tickets_sender: watch::Sender<u64>,
    /// The schema each connection's index must follow (what recovery rebuilds to).
    desired: HashMap<Key, (ConnectionId, Schema)>,
    /// With `--index-lag`: `DelayLine::held_back_from`.
    held_back_from: Option<Arc<AtomicU64>>,
    /// The last write sequence number committed when a rebuild last read the connection's items:
    /// a version numbered up to it may be in the index already, even if the store created it.
    filled_through: HashMap<Key, u64>,
}

/// Clears a liveness flag when its thread ends, however it ends.
struct ClearOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Indexer {
    fn run(mut self, receiver: mpsc::Receiver<Command>) {
        let mut max_seq = 0;
        let mut shutdown: Option<oneshot::Sender<()>> = None;
        let mut max_ticket = 0;
        // Connections with uncommitted changes, how many, and since when.
        let mut dirty: HashSet<Key> = HashSet::new();
        let mut uncommitted = 0usize;
        let mut last_commit = std::time::Instant::now();
        loop {
            let commit_due =
                (!dirty.is_empty()).then(|| COMMIT_INTERVAL.saturating_sub(last_commit.elapsed()));
            let recovery_due = (!self.failures.read().expect("failure lock").is_empty())
                .then_some(RECOVERY_INTERVAL);
            let first = match commit_due.into_iter().chain(recovery_due).min() {
                None => match receiver.recv() {
                    Ok(command) => command,
                    Err(_) => return,
                },
                Some(timeout) => match receiver.recv_timeout(timeout) {
                    Ok(command) => command,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if !dirty.is_empty() && last_commit.elapsed() >= COMMIT_INTERVAL {
                            self.commit(&mut dirty);
                            uncommitted = 0;
                            last_commit = std::time::Instant::now();
                            self.indexed_sender.send_replace(max_seq);
                        }
                        if recovery_due.is_some() {
                            self.recover_failed();
                        }
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                },
            };
            self.batch_number += 1;
            let mut flushes = Vec::new();
            let mut force = false;
            let mut command = Some(first);
            let mut n_commands = 0;
            // Item changes of this batch, per connection in arrival order, handed to each
            // writer at once (one batch for tantivy's indexing thread instead of one per item).
            let mut pending: Vec<(Key, Vec<UserOperation>)> = Vec::new();
            let mut item_changes = 0usize;
            while let Some(current) = command.take() {
                n_commands += 1;
                if !matches!(current, Command::Upsert { .. } | Command::Delete { .. }) {
                    self.apply_pending(&mut pending);
                }
                match current {
                    Command::Upsert {
                        key,
                        item,
                        seq,
                        created,
                    } => {
                        item_changes += 1;
                        max_seq = max_seq.max(seq);
                        self.queue_upsert(&mut pending, &key, &item, seq, created);
                        dirty.insert(key);
                        uncommitted += 1;
                    }
                    Command::Delete { key, item_id, seq } => {
                        item_changes += 1;
                        max_seq = max_seq.max(seq);
                        self.queue_delete(&mut pending, &key, &item_id);
                        dirty.insert(key);
                        uncommitted += 1;
                    }
                    Command::ApplySchema {
                        key,
                        connection_id,
                        schema,
                        ticket,
                    } => {
                        self.commit(&mut dirty);
                        self.desired
                            .insert(key.clone(), (connection_id.clone(), schema.clone()));
                        if let Err(error) = self.apply_schema(&key, &connection_id, schema, false) {
                            tracing::error!(%error, %connection_id, "the index could not follow the schema");
                            self.fail(
                                &key,
                                format!("the index could not follow the schema: {error}"),
                            );
                        }
                        max_ticket = max_ticket.max(ticket);
                    }
                    Command::DropConnection { key, ticket } => {
                        dirty.remove(&key);
                        self.drop_index(&key);
                        max_ticket = max_ticket.max(ticket);
                    }
                    Command::Reset { tenant, ticket } => {
                        max_ticket = max_ticket.max(ticket);
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
                    Command::Flush(done) => {
                        force = true;
                        flushes.push(done);
                    }
                    Command::CaughtUp(seq) => max_seq = max_seq.max(seq),
                    Command::Commit => force = true,
                    Command::Shutdown(done) => {
                        force = true;
                        shutdown = Some(done);
                    }
                }
                if n_commands < MAX_COMMANDS_PER_COMMIT && shutdown.is_none() {
                    command = receiver.try_recv().ok();
                }
            }
            self.apply_pending(&mut pending);
            if force
                || uncommitted >= MAX_UNCOMMITTED_CHANGES
                || last_commit.elapsed() >= COMMIT_INTERVAL
            {
                self.commit(&mut dirty);
                uncommitted = 0;
                last_commit = std::time::Instant::now();
            }
            self.close_idle_writers(&dirty);
            // Searches see a sequence number once everything up to it is committed.
            if dirty.is_empty() {
                self.indexed_sender.send_replace(max_seq);
            }
            self.tickets_sender.send_replace(max_ticket);
            for done in flushes {
                let _ = done.send(());
            }
            if let Some(done) = shutdown.take() {
                for (_, writer) in self.writers.drain() {
                    let _ = writer.wait_merging_threads();
                }
                let _ = done.send(());
                return;
            }
            if !self.failures.read().expect("failure lock").is_empty() {
                self.recover_failed();
            }
            if item_changes > 0 && !force {
                std::thread::sleep(SETTLE);
            }
        }
    }

    /// The queued operations of `key` (added at the end when it has none yet).
    fn pending_for<'a>(
        pending: &'a mut Vec<(Key, Vec<UserOperation>)>,
        key: &Key,
    ) -> &'a mut Vec<UserOperation> {
        let position = match pending.iter().position(|(queued, _)| queued == key) {
            Some(position) => position,
            None => {
                pending.push((key.clone(), Vec::new()));
                pending.len() - 1
            }
        };
        &mut pending[position].1
    }

    /// Marks the connection's index as failed: its writer is dropped (a failed commit leaves it
    /// unusable) and it is rebuilt from the store by `recover_failed`.
    fn fail(&mut self, key: &Key, reason: String) {
        self.writers.remove(key);
        self.failures
            .write()
            .expect("failure lock")
            .insert(key.clone(), reason);
    }

    /// Retries every failed connection index: reopen it and rebuild it from the store.
    fn recover_failed(&mut self) {
        let failed: Vec<Key> = self
            .failures
            .read()
            .expect("failure lock")
            .keys()
            .cloned()
            .collect();
        for key in failed {
            let Some((connection_id, schema)) = self.desired.get(&key).cloned() else {
                // Dropped or reset meanwhile: nothing left to recover.
                self.failures.write().expect("failure lock").remove(&key);
                continue;
            };
            match self.apply_schema(&key, &connection_id, schema, true) {
                Ok(()) => {
                    tracing::info!(tenant = %key.0, connection = %key.1, "the connection's index was rebuilt after a failure");
                    self.failures.write().expect("failure lock").remove(&key);
                }
                Err(error) => {
                    tracing::warn!(%error, tenant = %key.0, connection = %key.1, "rebuilding a failed index failed; retrying");
                    self.fail(&key, format!("rebuilding the index failed: {error}"));
                }
            }
        }
    }

    /// Closes the least recently used committed writers beyond `MAX_OPEN_WRITERS`.
    fn close_idle_writers(&mut self, dirty: &HashSet<Key>) {
        while self.writers.len() > MAX_OPEN_WRITERS {
            // Writers holding uncommitted changes stay open until their commit.
            let Some(oldest) = self
                .writers
                .keys()
                .filter(|key| !dirty.contains(*key))
                .min_by_key(|key| self.writer_last_used.get(*key).copied().unwrap_or(0))
                .cloned()
            else {
                break;
            };
            if let Some(writer) = self.writers.remove(&oldest) {
                let _ = writer.wait_merging_threads();
            }
            self.writer_last_used.remove(&oldest);
        }
    }

    fn writer(
        &mut self,
        key: &Key,
    ) -> Option<(&mut IndexWriter<TantivyDocument>, Arc<ConnectionIndex>)> {
        let connection_index = self.indexes.read().expect("index lock").get(key).cloned()?;
        self.writer_last_used.insert(key.clone(), self.batch_number);
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
                    // The changes meant for it are lost to this index: it is rebuilt from SQLite.
                    self.fail(key, format!("opening an index writer failed: {error}"));
                    return None;
                }
            }
        }
        Some((self.writers.get_mut(key)?, connection_index))
    }

    /// The operations that replace the item's document, queued for its connection's writer. A
    /// created item has no document to delete (every earlier version's deletion was queued
    /// before it), unless a rebuild may have read it: deletions cost tantivy a term lookup in
    /// every segment at its next commit.
    fn queue_upsert(
        &mut self,
        pending: &mut Vec<(Key, Vec<UserOperation>)>,
        key: &Key,
        item: &ExternalItem,
        seq: u64,
        created: bool,
    ) {
        let may_be_indexed = !created
            || self
                .filled_through
                .get(key)
                .is_some_and(|through| seq <= *through);
        let Some((_, connection_index)) = self.writer(key) else {
            return;
        };
        let mapping = &connection_index.mapping;
        let operations = Self::pending_for(pending, key);
        if may_be_indexed {
            operations.push(UserOperation::Delete(Term::from_field_text(
                mapping.id,
                item.id.as_str(),
            )));
        }
        operations.push(UserOperation::Add(document::build(mapping, item, seq)));
    }

    fn queue_delete(
        &mut self,
        pending: &mut Vec<(Key, Vec<UserOperation>)>,
        key: &Key,
        item_id: &ItemId,
    ) {
        let Some((_, connection_index)) = self.writer(key) else {
            return;
        };
        let term = Term::from_field_text(connection_index.mapping.id, item_id.as_str());
        Self::pending_for(pending, key).push(UserOperation::Delete(term));
    }

    /// Hands each connection's queued operations to its writer, in order.
    fn apply_pending(&mut self, pending: &mut Vec<(Key, Vec<UserOperation>)>) {
        for (key, operations) in pending.drain(..) {
            let Some((writer, _)) = self.writer(&key) else {
                continue;
            };
            if let Err(error) = writer.run(operations) {
                tracing::error!(%error, "indexing item changes failed");
                self.fail(&key, format!("indexing item changes failed: {error}"));
            }
        }
    }

    fn commit(&mut self, dirty: &mut HashSet<Key>) {
        for key in dirty.drain() {
            let Some(writer) = self.writers.get_mut(&key) else {
                continue;
            };
            if let Err(error) = writer.commit() {
                tracing::error!(%error, "committing the index failed");
                self.fail(&key, format!("committing the index failed: {error}"));
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
        // Merge threads still write into the directory: wait for them before deleting it.
        if let Some(writer) = self.writers.remove(key) {
            let _ = writer.wait_merging_threads();
        }
        self.writer_last_used.remove(key);
        self.desired.remove(key);
        self.filled_through.remove(key);
        self.failures.write().expect("failure lock").remove(key);
        self.indexes.write().expect("index lock").remove(key);
        if let Some(dir) = self.directory(key) {
            if dir.exists() {
                if let Err(error) = std::fs::remove_dir_all(&dir) {
                    tracing::error!(%error, dir = %dir.display(), "removing an index directory failed");
                }
            }
        }
    }

    /// Makes the connection's index follow `schema`, agreeing with SQLite. A schema with the
    /// same mapping keeps the index (checked and, if it disagrees, refilled in place: readers see
    /// the old documents until the refill commits). A new mapping gets a new index in a directory
    /// of its own, filled completely before it is published, so searches meanwhile keep reading
    /// the previous one. `recover` reopens the index from disk even when nothing changed.
    fn apply_schema(
        &mut self,
        key: &Key,
        connection_id: &ConnectionId,
        schema: Schema,
        recover: bool,
    ) -> Result<(), IndexError> {
        let existing = self.indexes.read().expect("index lock").get(key).cloned();
        let mapping = mapping::map(&schema);
        let generation = generation_of(&mapping);
        if let Some(existing) = existing.as_ref().filter(|_| !recover) {
            if existing.schema == schema {
                return Ok(());
            }
            if existing.generation == generation {
                let updated = Arc::new(ConnectionIndex {
                    mapping: Arc::new(mapping),
                    index: existing.index.clone(),
                    reader: existing.reader.clone(),
                    schema,
                    generation,
                    visibility: existing.visibility.clone(),
                });
                self.indexes
                    .write()
                    .expect("index lock")
                    .insert(key.clone(), updated.clone());
                if fingerprint(&updated)? != self.store_fingerprint(key, connection_id)? {
                    // Opened if needed, then taken out while it is filled.
                    if self.writer(key).is_none() {
                        return Ok(());
                    }
                    let mut writer = self.writers.remove(key).expect("the writer exists");
                    let filled = self.fill(&mut writer, key, connection_id, &updated);
                    self.writers.insert(key.clone(), writer);
                    filled?;
                }
                return Ok(());
            }
        }
        let index = match self.directory(key) {
            None => Index::create_in_ram(mapping.schema.clone()),
            Some(dir) => open_or_create(&dir.join(&generation), &mapping)?,
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let candidate = Arc::new(ConnectionIndex {
            mapping: Arc::new(mapping),
            index,
            reader,
            schema,
            generation: generation.clone(),
            visibility: Arc::default(),
        });
        // The old writer (same directory when recovering) is closed before a new one opens.
        if let Some(writer) = self.writers.remove(key) {
            let _ = writer.wait_merging_threads();
        }
        let mut writer = candidate
            .index
            .writer_with_num_threads(1, WRITER_MEMORY_BYTES)?;
        if fingerprint(&candidate)? != self.store_fingerprint(key, connection_id)? {
            self.fill(&mut writer, key, connection_id, &candidate)?;
        }
        self.writers.insert(key.clone(), writer);
        self.writer_last_used.insert(key.clone(), self.batch_number);
        self.indexes
            .write()
            .expect("index lock")
            .insert(key.clone(), candidate);
        if let Some(dir) = self.directory(key) {
            remove_other_generations(&dir, &generation);
        }
        Ok(())
    }

    /// The item count and sequence sum SQLite holds for the connection.
    fn store_fingerprint(
        &self,
        key: &Key,
        connection_id: &ConnectionId,
    ) -> Result<(u64, u128), IndexError> {
        let tenant = key.0.clone();
        let lookup = connection_id.clone();
        Ok(self
            .store
            .read_blocking(move |db| store::items::fingerprint(db, &tenant, &lookup))?)
    }

    /// Replaces every document of the index with the items in SQLite, and commits. Records in
    /// `filled_through` the last write sequence number committed when it last read the store.
    fn fill(
        &mut self,
        writer: &mut IndexWriter<TantivyDocument>,
        key: &Key,
        connection_id: &ConnectionId,
        connection_index: &ConnectionIndex,
    ) -> Result<(), IndexError> {
        tracing::info!(tenant = %key.0, %connection_id, "rebuilding the connection's index from the store");
        writer.delete_all_documents()?;
        let mut after: Option<String> = None;
        loop {
            let (tenant, lookup, cursor) = (key.0.clone(), connection_id.clone(), after.clone());
            let held_back_from = self.held_back_from.clone();
            let (page, visible_below, committed_through) = self.store.read_blocking(move |db| {
                // Read on the store thread, where every committed write has already handed
                // its change to the delay line: versions held back there are left out (they
                // arrive when the clock reaches them), so a fill shows nothing early.
                let visible_below = held_back_from.map_or(u64::MAX, |h| h.load(Ordering::SeqCst));
                let page =
                    store::items::page(db, &tenant, &lookup, cursor.as_deref(), REBUILD_PAGE)?;
                // Outside any write transaction, the stored `last` is the last number committed.
                let committed_through = store::items::last_sequence(db)?;
                Ok((page, visible_below, committed_through))
            })?;
            let through = self.filled_through.entry(key.clone()).or_default();
            *through = (*through).max(committed_through);
            let Some((last, _)) = page.last() else { break };
            after = Some(last.id.as_str().to_string());
            for (item, seq) in &page {
                if *seq >= visible_below {
                    continue;
                }
                writer.add_document(document::build(&connection_index.mapping, item, *seq))?;
            }
        }
        writer.commit()?;
        connection_index.reader.reload()?;
        Ok(())
    }
}

/// The on-disk layout beside the mapping: bumped when indexes written before cannot be read as
/// they are (2: tantivy 0.27 without zstd-compressed column dictionaries), so that they are
/// rebuilt from the store.
const INDEX_LAYOUT: u32 = 2;

/// A short, stable name for a mapping (FNV-1a of the layout and its tantivy schema): indexes
/// built with different mappings or layouts live in different directories.
fn generation_of(mapping: &IndexMapping) -> String {
    let text = format!(
        "{INDEX_LAYOUT}:{}",
        serde_json::to_string(&mapping.schema).unwrap_or_default()
    );
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("m{hash:016x}")
}

/// Deletes what the connection's index directory holds besides the generation in use (older
/// mappings, and files of the layout before generations).
fn remove_other_generations(dir: &std::path::Path, keep: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy() == keep {
            continue;
        }
        let path = entry.path();
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if let Err(error) = removed {
            tracing::warn!(%error, path = %path.display(), "removing an old index generation failed");
        }
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
        // The `seq` column: a read of numbers, not of documents.
        let seqs = segment.fast_fields().u64("seq")?;
        let alive = segment.alive_bitset();
        for doc_id in 0..segment.max_doc() {
            if alive.is_some_and(|alive| !alive.is_alive(doc_id)) {
                continue;
            }
            n_docs += 1;
            sum += u128::from(seqs.first(doc_id).unwrap_or(0));
        }
    }
    Ok((n_docs, sum))
}
