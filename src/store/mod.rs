//! SQLite storage: the source of truth for every tenant's state.
//!
//! One rusqlite connection lives on a dedicated thread; async code sends it closures and awaits
//! the answer, so no database call ever runs on an async worker thread.
//! Write jobs that queue up while a transaction is open are group-committed: each runs in its
//! own savepoint (a failing job rolls back alone) and every job's answer is sent only after the
//! shared `COMMIT` returned, so an acknowledged write is durable.
//! Every SQL function in the submodules takes the tenant first.

pub mod connections;
pub mod directory;
pub mod groups;
pub mod items;
pub mod migrations;
pub mod schema;

use std::path::Path;
use std::sync::mpsc;

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
}

type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// Work to do on the store thread once a write has committed.
pub type Effect = Box<dyn FnOnce() + Send>;

enum Job {
    Read(Box<dyn FnOnce(&Connection) + Send>),
    Write(Box<dyn FnOnce(&Connection) -> Completion + Send>),
}

/// Handle to the store thread; cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

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
                connection
            }
            None => Connection::open_in_memory()?,
        };
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        migrations::apply(&connection)?;
        let (jobs, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name("gcemu-store".into())
            .spawn(move || run_store_thread(connection, receiver))
            .map_err(|error| StoreError::Open(error.to_string()))?;
        Ok(Store { jobs })
    }

    /// Runs `read` on the store thread outside any write transaction.
    pub async fn read<R, F>(&self, read: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Job::Read(Box::new(move |connection| {
            let _ = reply.send(read(connection));
        }));
        self.jobs.send(job).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `write` inside a transaction and answers once it is committed.
    /// When `write` fails, its changes are rolled back and nothing else is affected.
    pub async fn write<R, F>(&self, write: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.write_with_effect(move |db| write(db).map(|result| (result, None)))
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
        let (reply, answer) = oneshot::channel();
        let job = Job::Write(Box::new(move |connection| {
            let result = in_savepoint(connection, write);
            Box::new(
                move |commit: Result<(), StoreError>| match (commit, result) {
                    (Ok(()), Ok((value, effect))) => {
                        if let Some(effect) = effect {
                            effect();
                        }
                        let _ = reply.send(Ok(value));
                    }
                    (Err(error), _) | (Ok(()), Err(error)) => {
                        let _ = reply.send(Err(error));
                    }
                },
            )
        }));
        self.jobs.send(job).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// `read` for blocking threads (the indexer); never call it from async code.
    pub fn read_blocking<R, F>(&self, read: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Job::Read(Box::new(move |connection| {
            let _ = reply.send(read(connection));
        }));
        self.jobs.send(job).map_err(|_| StoreError::Closed)?;
        answer.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Deletes every row of every tenant, or of `tenant` only.
    pub async fn reset(&self, tenant: Option<TenantId>) -> Result<(), StoreError> {
        self.write(move |db| {
            for table in migrations::TENANT_TABLES {
                match &tenant {
                    Some(tenant) => db.execute(
                        &format!("DELETE FROM {table} WHERE tenant_id = ?1"),
                        [tenant.as_str()],
                    )?,
                    None => db.execute(&format!("DELETE FROM {table}"), [])?,
                };
            }
            Ok(())
        })
        .await
    }
}

fn in_savepoint<R>(
    connection: &Connection,
    write: impl FnOnce(&Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    connection.execute_batch("SAVEPOINT job")?;
    let result = write(connection);
    match &result {
        Ok(_) => connection.execute_batch("RELEASE job")?,
        Err(_) => connection.execute_batch("ROLLBACK TO job; RELEASE job")?,
    }
    result
}

fn run_store_thread(connection: Connection, receiver: mpsc::Receiver<Job>) {
    let mut pending: Option<Job> = None;
    loop {
        let job = match pending.take() {
            Some(job) => job,
            None => match receiver.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        match job {
            Job::Read(read) => read(&connection),
            Job::Write(first) => {
                let mut completions = Vec::new();
                if let Err(error) = connection.execute_batch("BEGIN IMMEDIATE") {
                    let completion = first_completion_without_transaction(&connection, first);
                    completion(Err(StoreError::Sqlite(error)));
                    continue;
                }
                completions.push(first(&connection));
                while completions.len() < MAX_JOBS_PER_COMMIT {
                    match receiver.try_recv() {
                        Ok(Job::Write(next)) => completions.push(next(&connection)),
                        Ok(read) => {
                            // A read waits for the batch to commit so it never sees unacknowledged data.
                            pending = Some(read);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let commit = connection.execute_batch("COMMIT");
                let failure = commit.as_ref().err().map(|error| error.to_string());
                if failure.is_some() {
                    let _ = connection.execute_batch("ROLLBACK");
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

/// Runs a write job whose transaction could not begin, so that its caller still gets an answer.
fn first_completion_without_transaction(
    connection: &Connection,
    job: Box<dyn FnOnce(&Connection) -> Completion + Send>,
) -> Completion {
    let _ = connection.execute_batch("ROLLBACK");
    job(connection)
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
