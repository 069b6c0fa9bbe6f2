//! The global write sequence, counted on the store thread.
//!
//! Every item version gets the next number of one sequence (the index orders changes by it, and
//! the per-connection sums check the index against the store). Taking a number with an
//! `UPDATE ... RETURNING` per item cost a statement, a temporary table and a dirty page in every
//! job's savepoint; instead the store thread keeps the last number given out in memory and
//! writes it to `write_sequence` once, just before its batch commits.
//!
//! The rules that keep this safe:
//! - only the store thread takes numbers (jobs run there), so a thread-local is the counter;
//! - a job rolled back to its savepoint (refused, failed, panicked) puts the counter back as it
//!   found it, exactly as its `UPDATE` would have been undone;
//! - the counter is loaded from the database when it is not known (first use, or after a batch
//!   was rolled back: numbers given to its jobs are given again, as nothing of theirs was
//!   committed or handed to the index);
//! - a batch that took numbers persists the last one in its own transaction, so a committed
//!   version never has a number above the stored `last`.

use std::cell::Cell;

use rusqlite::Connection;

use super::StoreError;

thread_local! {
    /// The last number given out, and whether it is newer than the stored one.
    static LAST: Cell<Option<Counter>> = const { Cell::new(None) };
}

#[derive(Clone, Copy)]
struct Counter {
    last: u64,
    unsaved: bool,
}

/// The next number (inside a write job on the store thread).
pub(super) fn next(db: &Connection) -> Result<u64, StoreError> {
    let last = match LAST.get() {
        Some(counter) => counter.last,
        None => stored(db)?,
    };
    let next = last
        .checked_add(1)
        .ok_or_else(|| StoreError::Corrupt("the write sequence is exhausted".into()))?;
    LAST.set(Some(Counter {
        last: next,
        unsaved: true,
    }));
    Ok(next)
}

/// Writes the last number given out in the open transaction, if the batch took any. Called
/// by the store thread right before `COMMIT`.
pub(super) fn persist(db: &Connection) -> Result<(), StoreError> {
    if let Some(counter) = LAST.get().filter(|counter| counter.unsaved) {
        db.prepare_cached("UPDATE write_sequence SET last = ?1 WHERE id = 1")?
            .execute([counter.last as i64])?;
        LAST.set(Some(Counter {
            unsaved: false,
            ..counter
        }));
    }
    Ok(())
}

/// The counter as it is before a job runs, to be put back if the job is rolled back.
#[derive(Clone, Copy)]
pub(super) struct Mark(Option<Counter>);

pub(super) fn mark() -> Mark {
    Mark(LAST.get())
}

/// Puts the counter back as it was before a job that was rolled back to its savepoint: the
/// numbers it took are given again, so a refused request leaves the stored sequence as it was.
pub(super) fn restore(mark: Mark) {
    LAST.set(mark.0);
}

/// Forgets the counter after a batch was rolled back: the next job reloads the stored number.
pub(super) fn forget() {
    LAST.set(None);
}

fn stored(db: &Connection) -> Result<u64, StoreError> {
    let last: i64 = db
        .prepare_cached("SELECT last FROM write_sequence WHERE id = 1")?
        .query_row([], |row| row.get(0))?;
    u64::try_from(last).map_err(|_| StoreError::Corrupt(format!("write sequence {last}")))
}
