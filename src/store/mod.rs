//! SQLite storage: the source of truth for every tenant's state.
//!
//! One rusqlite connection lives on a dedicated thread; async code sends it closures and awaits
//! the answer, so no database call ever runs on an async worker thread.
//! Write jobs that queue up while a transaction is open are group-committed: each runs in its
//! own savepoint (a failing job rolls back alone), or, when it changes rows only after all its
//! checks, in none (should it fail after a change, the batch is rolled back); every job's answer
//! is sent only after the shared `COMMIT` returned, so an acknowledged write is durable.
//! Every SQL function in the submodules takes the tenant first.

pub mod applications;
pub mod connections;
pub mod directory;
pub mod groups;
pub mod items;
pub mod migrations;
pub mod schema;
mod sequence;
pub mod tenants;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::domain::ids::TenantId;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("the store thread has stopped")]
    Closed,
    #[error("could not open the database: {0}")]
    Open(String),
    #[error("a store job panicked: {0}")]
    Panicked(String),
}

/// How a write job that may refuse ends without committing: refused by a rule of the caller's
/// (its savepoint is rolled back, so nothing it wrote survives) or failed in the store.
#[derive(Debug)]
pub enum JobError<E> {
    Refused(E),
    Store(StoreError),
}

impl<E> From<StoreError> for JobError<E> {
    fn from(error: StoreError) -> Self {
        JobError::Store(error)
    }
}

impl<E> From<rusqlite::Error> for JobError<E> {
    fn from(error: rusqlite::Error) -> Self {
        JobError::Store(StoreError::Sqlite(error))
    }
}

/// Ends a write job with a refusal: `return refuse(error)`.
pub fn refuse<T, E>(refusal: E) -> Result<T, JobError<E>> {
    Err(JobError::Refused(refusal))
}

type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// Work to do on the store thread once a write has committed.
pub type Effect = Box<dyn FnOnce() + Send>;

/// The transaction a write job runs in. `poisoned` is set when a failed job's writes cannot be
/// rolled back alone (its savepoint could not be, or it had none), so the whole batch must be.
struct Batch<'a> {
    connection: &'a Connection,
    poisoned: std::cell::Cell<bool>,
}

/// A write job: run inside the open batch, or (given `None`) answer that no transaction could begin.
type WriteJob = Box<dyn FnOnce(Option<&Batch<'_>>) -> Completion + Send>;

enum Job {
    Read(Box<dyn FnOnce(&Connection) + Send>),
    Write(WriteJob),
}

/// Jobs queued for the store thread at most; senders wait beyond that (back-pressure), so a
/// burst of requests cannot grow memory without bound.
const JOB_QUEUE_CAPACITY: usize = 4096;

/// Handle to the store thread; cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: tokio::sync::mpsc::Sender<Job>,
    alive: Arc<AtomicBool>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

/// WAL pages after which a commit checkpoints (SQLite's default is 1,000).
const WAL_CHECKPOINT_PAGES: i64 = 300;

/// Write jobs committed together at most; bounds the latency a batch adds to its first job.
const MAX_JOBS_PER_COMMIT: usize = 512;

impl Store {
    /// Opens (creating if needed) the database at `path`, or an in-memory one when `path` is `None`,
    /// and applies pending migrations.
    pub fn open(path: Option<&Path>) -> Result<Store, StoreError> {
        let connection = match path {
            Some(path) => {
                let connection = Connection::open(path)?;
                connection.pragma_update(None, "journal_mode", "WAL")?;
                // NORMAL in WAL mode: a commit survives a crash of the process (not of the OS).
                connection.pragma_update(None, "synchronous", "NORMAL")?;
                // Reads of hot pages without a system call each (search reads a page of items
                // per query); bounded, so resident memory stays bounded too.
                connection.pragma_update(None, "mmap_size", 128 * 1024 * 1024)?;
                // Checkpoints of about 1.2 MB instead of SQLite's 4 MB: a checkpoint holds up the
                // writes behind it while it copies and syncs, and at 300 pages it stays short
                // (ingest p99 about 7 ms instead of 12 ms at 16 clients; README, Benchmarks).
                connection.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)?;
                connection
            }
            None => Connection::open_in_memory()?,
        };
        connection.pragma_update(None, "foreign_keys", "ON")?;
        // Temporary tables and sort spills stay in memory: gcemu writes nowhere but its data dir
        // (the Docker image runs with a read-only root filesystem).
        connection.pragma_update(None, "temp_store", "MEMORY")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        // 16 MB of page cache (the default is 2 MB), and every statement kept prepared.
        connection.pragma_update(None, "cache_size", -16 * 1024)?;
        connection.set_prepared_statement_cache_capacity(256);
        migrations::apply(&connection)?;
        let (jobs, receiver) = tokio::sync::mpsc::channel(JOB_QUEUE_CAPACITY);
        let alive = Arc::new(AtomicBool::new(true));
        let flag = alive.clone();
        std::thread::Builder::new()
            .name("gcemu-store".into())
            .spawn(move || {
                let _alive = AliveFlag(flag);
                run_store_thread(connection, receiver)
            })
            .map_err(|error| StoreError::Open(error.to_string()))?;
        Ok(Store { jobs, alive })
    }

    /// Whether the store thread is still running (the health endpoint reports it).
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Runs `read` on the store thread outside any write transaction.
    pub async fn read<R, F>(&self, read: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Job::Read(Box::new(move |connection| {
            let outcome = catch_panic(|| read(connection));
            let _ = reply.send(outcome.and_then(|result| result));
        }));
        self.jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `write` inside a transaction and answers once it is committed.
    /// When `write` fails, its changes are rolled back and nothing else is affected.
    pub async fn write<R, F>(&self, write: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(move |db| write(db).map(|result| (result, None)))
            .await
    }

    /// Like `write`, and runs the returned effect on the store thread right after the commit
    /// succeeded, before answering. Effects therefore run in commit order: this is how writes
    /// hand their changes to the indexer in the order SQLite applied them.
    pub async fn write_with_effect<R, F>(&self, write: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<(R, Option<Effect>), StoreError> + Send + 'static,
    {
        self.submit(write).await
    }

    /// A write job that may refuse (`refuse(error)`): a refusal rolls the job's savepoint back
    /// exactly like a store failure, so nothing the job wrote before refusing is committed.
    pub async fn write_or_refuse<R, E, F>(&self, write: F) -> Result<R, JobError<E>>
    where
        R: Send + 'static,
        E: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, JobError<E>> + Send + 'static,
    {
        self.submit(move |db| write(db).map(|result| (result, None)))
            .await
    }

    /// `write_or_refuse` with a post-commit effect, as `write_with_effect`.
    pub async fn write_or_refuse_with_effect<R, E, F>(&self, write: F) -> Result<R, JobError<E>>
    where
        R: Send + 'static,
        E: Send + 'static,
        F: FnOnce(&Connection) -> Result<(R, Option<Effect>), JobError<E>> + Send + 'static,
    {
        self.submit_as(Isolation::Savepoint, write).await
    }

    /// `write_or_refuse_with_effect` for a job that checks first and changes rows last: it may
    /// refuse only before its first change. It then needs no savepoint of its own, which saves
    /// two statements and a copy of every page it touches into the savepoint journal (the item
    /// `PUT`s of an ingest). Should it fail after changing rows all the same (a store error, a
    /// panic), the whole batch is rolled back and its other jobs are answered with the error:
    /// nothing partial is ever committed.
    pub async fn write_checking_first_with_effect<R, E, F>(
        &self,
        write: F,
    ) -> Result<R, JobError<E>>
    where
        R: Send + 'static,
        E: Send + 'static,
        F: FnOnce(&Connection) -> Result<(R, Option<Effect>), JobError<E>> + Send + 'static,
    {
        self.submit_as(Isolation::ChangesLast, write).await
    }

    async fn submit<R, X, F>(&self, write: F) -> Result<R, X>
    where
        R: Send + 'static,
        X: From<StoreError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<(R, Option<Effect>), X> + Send + 'static,
    {
        self.submit_as(Isolation::Savepoint, write).await
    }

    async fn submit_as<R, X, F>(&self, isolation: Isolation, write: F) -> Result<R, X>
    where
        R: Send + 'static,
        X: From<StoreError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<(R, Option<Effect>), X> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: WriteJob = Box::new(move |batch: Option<&Batch<'_>>| -> Completion {
            let Some(batch) = batch else {
                // No transaction could begin: the job must not run at all, or its write would
                // commit on its own while the client is told it failed.
                return Box::new(move |commit: Result<(), StoreError>| {
                    let error = commit.err().unwrap_or(StoreError::Closed);
                    let _ = reply.send(Err(X::from(error)));
                });
            };
            let result = match isolation {
                Isolation::Savepoint => in_savepoint(batch, write),
                Isolation::ChangesLast => changing_last(batch, write),
            };
            Box::new(
                move |commit: Result<(), StoreError>| match (commit, result) {
                    (Ok(()), Ok((value, effect))) => {
                        if let Some(effect) = effect {
                            if let Err(panic) = catch_panic(effect) {
                                tracing::error!(%panic, "a post-commit effect panicked");
                            }
                        }
                        let _ = reply.send(Ok(value));
                    }
                    (Err(error), _) => {
                        let _ = reply.send(Err(X::from(error)));
                    }
                    (Ok(()), Err(error)) => {
                        let _ = reply.send(Err(error));
                    }
                },
            )
        });
        self.jobs
            .send(Job::Write(job))
            .await
            .map_err(|_| X::from(StoreError::Closed))?;
        answer
            .await
            .map_err(|_| X::from(StoreError::Closed))
            .and_then(|result| result)
    }

    /// `read` for blocking threads (the indexer); never call it from async code.
    pub fn read_blocking<R, F>(&self, read: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Job::Read(Box::new(move |connection| {
            let outcome = catch_panic(|| read(connection));
            let _ = reply.send(outcome.and_then(|result| result));
        }));
        self.jobs
            .blocking_send(job)
            .map_err(|_| StoreError::Closed)?;
        answer.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Deletes every row of every tenant, or of `tenant` only, and runs `effect` (the index's
    /// reset) right after the commit, on the store thread, so no write can come in between.
    pub async fn reset(
        &self,
        tenant: Option<TenantId>,
        effect: Option<Effect>,
    ) -> Result<(), StoreError> {
        self.write_with_effect(move |db| {
            clear_tenant(db, tenant.as_ref())?;
            Ok(((), effect))
        })
        .await
    }
}

/// Deletes every row of the tenant (of all tenants with `None`), inside the caller's job.
pub fn clear_tenant(db: &Connection, tenant: Option<&TenantId>) -> Result<(), StoreError> {
    for table in migrations::TENANT_TABLES {
        match tenant {
            Some(tenant) => db.execute(
                &format!("DELETE FROM {table} WHERE tenant_id = ?1"),
                [tenant.as_str()],
            )?,
            None => db.execute(&format!("DELETE FROM {table}"), [])?,
        };
    }
    Ok(())
}

/// Clears the store's liveness flag when its thread ends, however it ends.
struct AliveFlag(Arc<AtomicBool>);

impl Drop for AliveFlag {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Runs `work`, turning a panic into an error so that no input can stop the store thread.
fn catch_panic<T>(work: impl FnOnce() -> T) -> Result<T, StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
        .map_err(|panic| StoreError::Panicked(crate::telemetry::panic_message(panic.as_ref())))
}

/// How a write job is kept apart from the others of its batch.
#[derive(Clone, Copy)]
enum Isolation {
    /// In a savepoint of its own: whatever the job did is undone if it fails.
    Savepoint,
    /// Without one: the job fails only before its first change, or else fails the batch.
    ChangesLast,
}

/// Runs a job that refuses only before its first change (`Store::write_checking_first_with_effect`).
fn changing_last<R, X: From<StoreError>>(
    batch: &Batch<'_>,
    write: impl FnOnce(&Connection) -> Result<R, X>,
) -> Result<R, X> {
    let connection = batch.connection;
    let changes_before = connection.total_changes();
    let sequence_before = sequence::mark();
    let result = match catch_panic(|| write(connection)) {
        Ok(result) => result,
        Err(panic) => Err(X::from(panic)),
    };
    if result.is_err() {
        sequence::restore(sequence_before);
        if connection.total_changes() != changes_before {
            // Rows changed before the failure, and no savepoint can take them back.
            batch.poisoned.set(true);
        }
    }
    if connection.is_autocommit() {
        // SQLite ended the batch's transaction itself (after a full disk or an I/O error, say):
        // the jobs after this one would each commit on their own.
        batch.poisoned.set(true);
    }
    result
}

fn in_savepoint<R, X: From<StoreError>>(
    batch: &Batch<'_>,
    write: impl FnOnce(&Connection) -> Result<R, X>,
) -> Result<R, X> {
    let connection = batch.connection;
    // Prepared once: these run for every write job.
    let run = |sql: &str| -> rusqlite::Result<()> {
        connection.prepare_cached(sql)?.execute([])?;
        Ok(())
    };
    if let Err(error) = run("SAVEPOINT job") {
        return Err(X::from(StoreError::Sqlite(error)));
    }
    let sequence_before = sequence::mark();
    let result = match catch_panic(|| write(connection)) {
        Ok(result) => result,
        Err(panic) => Err(X::from(panic)),
    };
    if result.is_err() {
        sequence::restore(sequence_before);
    }
    let end = match &result {
        Ok(_) => run("RELEASE job"),
        Err(_) => run("ROLLBACK TO job").and_then(|()| run("RELEASE job")),
    };
    match end {
        Ok(()) => result,
        Err(error) => {
            // The savepoint's fate is unknown: only rolling the whole batch back is safe.
            batch.poisoned.set(true);
            Err(X::from(StoreError::Sqlite(error)))
        }
    }
}

fn run_store_thread(connection: Connection, mut receiver: tokio::sync::mpsc::Receiver<Job>) {
    let mut pending: Option<Job> = None;
    loop {
        let job = match pending.take() {
            Some(job) => job,
            None => match receiver.blocking_recv() {
                Some(job) => job,
                None => return,
            },
        };
        match job {
            Job::Read(read) => read(&connection),
            Job::Write(first) => {
                if let Err(error) = connection.execute_batch("BEGIN IMMEDIATE") {
                    tracing::error!(%error, "could not begin a write transaction");
                    let _ = connection.execute_batch("ROLLBACK");
                    first(None)(Err(StoreError::Sqlite(error)));
                    continue;
                }
                let batch = Batch {
                    connection: &connection,
                    poisoned: std::cell::Cell::new(false),
                };
                let mut completions = vec![first(Some(&batch))];
                while completions.len() < MAX_JOBS_PER_COMMIT && !batch.poisoned.get() {
                    match receiver.try_recv() {
                        Ok(Job::Write(next)) => completions.push(next(Some(&batch))),
                        Ok(read) => {
                            // A read waits for the batch to commit so it never sees unacknowledged data.
                            pending = Some(read);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let failure = if batch.poisoned.get() {
                    Some(
                        "a job failed and what it had written could not be rolled back alone"
                            .to_string(),
                    )
                } else if let Err(error) = sequence::persist(&connection) {
                    Some(error.to_string())
                } else {
                    connection
                        .execute_batch("COMMIT")
                        .err()
                        .map(|error| error.to_string())
                };
                if failure.is_some() {
                    let _ = connection.execute_batch("ROLLBACK");
                    sequence::forget();
                }
                for completion in completions {
                    completion(match &failure {
                        None => Ok(()),
                        Some(message) => {
                            Err(StoreError::Corrupt(format!("commit failed: {message}")))
                        }
                    });
                }
            }
        }
    }
}

/// Reads a JSON column that the store itself wrote.
pub(crate) fn json_column(raw: Option<String>) -> Result<Option<serde_json::Value>, StoreError> {
    raw.map(|text| {
        serde_json::from_str(&text).map_err(|error| StoreError::Corrupt(error.to_string()))
    })
    .transpose()
}

/// The one text form of instants in the database: UTC with milliseconds, so text order is time order.
pub(crate) fn format_instant(instant: chrono::DateTime<chrono::Utc>) -> String {
    instant.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub(crate) fn parse_instant(raw: &str) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|instant| instant.with_timezone(&chrono::Utc))
        .map_err(|error| StoreError::Corrupt(format!("instant '{raw}': {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count_rows(store: &Store) -> i64 {
        store
            .read_blocking(|db| {
                Ok(db.query_row("SELECT COUNT(*) FROM probe", [], |row| row.get(0))?)
            })
            .unwrap()
    }

    fn store_with_probe_table(path: Option<&Path>) -> Store {
        let store = Store::open(path).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(store.write(|db| {
                db.execute_batch("CREATE TABLE IF NOT EXISTS probe (n INTEGER)")?;
                Ok(())
            }))
            .unwrap();
        store
    }

    #[test]
    fn a_refused_job_leaves_nothing_of_what_it_wrote_before_refusing() {
        let store = store_with_probe_table(None);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let answer = runtime.block_on(store.write_or_refuse(|db| {
            db.execute("INSERT INTO probe (n) VALUES (1)", [])?;
            refuse::<(), &str>("no")
        }));
        assert!(matches!(answer, Err(JobError::Refused("no"))));
        assert_eq!(count_rows(&store), 0);
        // Jobs around it in the same batch still commit.
        let kept = runtime.block_on(store.write_or_refuse::<_, &str, _>(|db| {
            db.execute("INSERT INTO probe (n) VALUES (2)", [])?;
            Ok(())
        }));
        assert!(kept.is_ok());
        assert_eq!(count_rows(&store), 1);
    }

    #[test]
    fn a_panicking_job_is_rolled_back_and_the_store_keeps_serving() {
        let store = store_with_probe_table(None);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let answer = runtime.block_on(store.write(|db| -> Result<(), StoreError> {
            db.execute("INSERT INTO probe (n) VALUES (1)", [])?;
            panic!("a bug in a job")
        }));
        assert!(matches!(answer, Err(StoreError::Panicked(message)) if message.contains("a bug")));
        let read = runtime.block_on(store.read(|_| -> Result<(), StoreError> { panic!("read") }));
        assert!(matches!(read, Err(StoreError::Panicked(_))));
        assert!(store.is_alive());
        assert_eq!(count_rows(&store), 0);
    }

    #[test]
    fn write_sequence_numbers_rise_across_batches_refusals_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let take = |store: &Store| runtime.block_on(store.write(items::next_sequence)).unwrap();
        let stored = |store: &Store| runtime.block_on(store.read(items::last_sequence)).unwrap();
        let store = Store::open(Some(&path)).unwrap();
        assert_eq!((take(&store), take(&store)), (1, 2));
        assert_eq!(stored(&store), 2, "the batch wrote the last number it gave");
        // A refused job's number is taken back: the stored number is unchanged, and the next
        // job gets the same number.
        let refused = runtime.block_on(store.write_or_refuse(|db| {
            assert_eq!(items::next_sequence(db)?, 3);
            refuse::<(), &str>("no")
        }));
        assert!(matches!(refused, Err(JobError::Refused("no"))));
        assert_eq!(stored(&store), 2);
        assert_eq!(take(&store), 3);
        assert_eq!(stored(&store), 3);
        drop(store);
        let reopened = Store::open(Some(&path)).unwrap();
        assert_eq!(stored(&reopened), 3);
        assert_eq!(
            take(&reopened),
            4,
            "a restart continues after the stored number"
        );
    }

    /// A job (in a savepoint of its own) that adds a row to `probe`.
    fn insert_probe_row(
        store: &Store,
    ) -> impl std::future::Future<Output = Result<(), JobError<&'static str>>> + Send + 'static
    {
        let store = store.clone();
        async move {
            store
                .write_or_refuse::<_, &str, _>(|db| {
                    db.execute("INSERT INTO probe (n) VALUES (2)", [])?;
                    Ok(())
                })
                .await
        }
    }

    /// Queues `first` and then `second` while the store thread is held up by a read, so that
    /// both run in one batch in that order, and returns their answers.
    fn in_one_batch<A, B>(
        store: &Store,
        first: impl std::future::Future<Output = A> + Send + 'static,
        second: impl std::future::Future<Output = B> + Send + 'static,
    ) -> (A, B)
    where
        A: Send + 'static,
        B: Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, holding_up) = std::sync::mpsc::channel::<()>();
        let holding = store.clone();
        let hold = runtime.spawn(async move {
            holding
                .read(move |_| {
                    started.send(()).ok();
                    held.recv().ok();
                    Ok(())
                })
                .await
        });
        holding_up.recv().unwrap();
        // Both jobs are queued, in this order, while the store thread runs the read.
        let queued = |n: usize| {
            while store.jobs.max_capacity() - store.jobs.capacity() < n {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        };
        let first = runtime.spawn(first);
        queued(1);
        let second = runtime.spawn(second);
        queued(2);
        release.send(()).unwrap();
        runtime.block_on(hold).unwrap().unwrap();
        (
            runtime.block_on(first).unwrap(),
            runtime.block_on(second).unwrap(),
        )
    }

    #[test]
    fn a_job_checking_first_that_refuses_before_writing_leaves_its_batch_alone() {
        let store = store_with_probe_table(None);
        let (refused, kept) = in_one_batch(
            &store,
            {
                let store = store.clone();
                async move {
                    store
                        .write_checking_first_with_effect(|db| {
                            db.query_row("SELECT COUNT(*) FROM probe", [], |_| Ok(()))?;
                            refuse::<((), Option<Effect>), &str>("no")
                        })
                        .await
                }
            },
            insert_probe_row(&store),
        );
        assert!(matches!(refused, Err(JobError::Refused("no"))));
        assert!(kept.is_ok());
        assert_eq!(count_rows(&store), 1);
    }

    #[test]
    fn a_job_checking_first_that_fails_after_writing_rolls_its_whole_batch_back() {
        let store = store_with_probe_table(None);
        let (other, broken) = in_one_batch(&store, insert_probe_row(&store), {
            let store = store.clone();
            async move {
                store
                    .write_checking_first_with_effect(|db| {
                        db.execute("INSERT INTO probe (n) VALUES (1)", [])?;
                        refuse::<((), Option<Effect>), &str>("too late")
                    })
                    .await
            }
        });
        // Its change cannot be taken back alone: nothing of the batch is committed, and the
        // job that ran before it in the batch is told so too (not that it succeeded).
        assert!(matches!(broken, Err(JobError::Store(_))), "{broken:?}");
        assert!(matches!(other, Err(JobError::Store(_))), "{other:?}");
        assert_eq!(count_rows(&store), 0);
        // The next batch is clean.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let later = runtime.block_on(store.write_checking_first_with_effect::<_, &str, _>(|db| {
            db.execute("INSERT INTO probe (n) VALUES (3)", [])?;
            Ok(((), None))
        }));
        assert!(later.is_ok());
        assert_eq!(count_rows(&store), 1);
    }

    #[test]
    fn a_job_checking_first_whose_transaction_sqlite_ended_stops_its_batch() {
        let store = store_with_probe_table(None);
        let (ended, next) = in_one_batch(
            &store,
            {
                let store = store.clone();
                async move {
                    store
                        .write_checking_first_with_effect(|db| {
                            // As SQLite does by itself after some errors (a full disk).
                            db.execute_batch("ROLLBACK")?;
                            refuse::<((), Option<Effect>), &str>("failed")
                        })
                        .await
                }
            },
            insert_probe_row(&store),
        );
        assert!(ended.is_err());
        // The next job did not run outside any transaction (committing on its own while told
        // it failed): it ran in the next batch, and what it was told is what happened.
        assert!(next.is_ok(), "{next:?}");
        assert_eq!(count_rows(&store), 1);
    }

    #[test]
    fn a_job_whose_transaction_cannot_begin_never_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let store = store_with_probe_table(Some(&path));
        // Another connection holds the write lock for longer than the store's busy timeout.
        let blocker = Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let answer = runtime.block_on(store.write(move |db| {
            flag.store(true, Ordering::SeqCst);
            db.execute("INSERT INTO probe (n) VALUES (1)", [])?;
            Ok(())
        }));
        assert!(answer.is_err(), "the client is told the write failed");
        assert!(!ran.load(Ordering::SeqCst), "and the write never ran");
        blocker.execute_batch("ROLLBACK").unwrap();
        assert_eq!(count_rows(&store), 0);
    }
}
