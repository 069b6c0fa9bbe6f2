//! Logging to stderr as text or JSON lines, filtered by `RUST_LOG` (default `info`, tantivy's own lines from `warn`).
//!
//! A line costs the thread that logs it a copy into a shared buffer; one background thread writes
//! the buffer to stderr in batches. Nothing wakes that thread per line: it writes what gathered
//! every `FLUSH_INTERVAL` while lines come, sleeps when none do, and is woken by the first line
//! after a quiet spell (written at once) or by a buffer past `WAKE_AT`. No line is dropped: past
//! `MAX_BUFFERED` a logging thread waits for the writer (stderr not keeping up), and the guard
//! `init` returns writes what is left at exit.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// How often the writing thread writes while lines keep coming.
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// Buffered bytes that wake the writing thread before its interval ends.
const WAKE_AT: usize = 256 * 1024;
/// Buffered bytes beyond which a logging thread waits for the writing thread.
const MAX_BUFFERED: usize = 4 * 1024 * 1024;

pub fn init(format: LogFormat) -> LogGuard {
    init_with(format, std::io::stderr())
}

fn init_with(format: LogFormat, output: impl Write + Send + 'static) -> LogGuard {
    let (writer, guard) = start(output);
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,tantivy=warn"));
    // Colours only for a terminal: a log file or a CI capture gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(writer);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    guard
}

/// Starts the writing thread over `output`; lines given to the writer reach `output` in order.
fn start(output: impl Write + Send + 'static) -> (BatchedLines, LogGuard) {
    let shared = Arc::new(Shared {
        state: Mutex::new(Pending::default()),
        room: Condvar::new(),
    });
    let thread = std::thread::Builder::new()
        .name("gcemu-log".into())
        .spawn({
            let shared = shared.clone();
            move || write_batches(&shared, output)
        })
        .expect("the logging thread starts");
    let writer = BatchedLines {
        shared: shared.clone(),
        thread: thread.thread().clone(),
    };
    let guard = LogGuard {
        shared,
        thread: Some(thread),
    };
    (writer, guard)
}

#[derive(Default)]
struct Pending {
    text: Vec<u8>,
    /// The writing thread is asleep until a line wakes it.
    idle: bool,
    /// The guard was dropped: the writing thread writes what is left and stops.
    closed: bool,
}

struct Shared {
    state: Mutex<Pending>,
    /// Signalled when the writing thread took the buffer.
    room: Condvar,
}

impl Shared {
    /// A panic while the lock was held leaves the buffer whole (lines are appended in one
    /// call), so the lock is taken regardless.
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn write_batches(shared: &Shared, mut output: impl Write) {
    /// However the thread ends, logging threads stop waiting for it.
    struct Ended<'a>(&'a Shared);
    impl Drop for Ended<'_> {
        fn drop(&mut self) {
            self.0.lock().closed = true;
            self.0.room.notify_all();
        }
    }
    let _ended = Ended(shared);
    let mut spare = Vec::new();
    loop {
        let (text, closed, was_full) = {
            let mut pending = shared.lock();
            if pending.text.is_empty() && !pending.closed {
                pending.idle = true;
                drop(pending);
                std::thread::park();
                continue;
            }
            let was_full = pending.text.len() >= MAX_BUFFERED;
            let text = std::mem::replace(&mut pending.text, std::mem::take(&mut spare));
            (text, pending.closed, was_full)
        };
        if was_full {
            shared.room.notify_all();
        }
        let _ = output.write_all(&text).and_then(|()| output.flush());
        spare = text;
        spare.clear();
        if spare.capacity() > WAKE_AT * 2 {
            spare.shrink_to(WAKE_AT * 2);
        }
        if closed {
            return;
        }
        std::thread::park_timeout(FLUSH_INTERVAL);
    }
}

/// How long exit waits for the last lines to be written (stderr may be a pipe nobody reads).
const LAST_WRITE_WAIT: Duration = Duration::from_secs(1);

/// Flushes the log lines still buffered and stops the writing thread when dropped.
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.room.notify_all();
        let Some(thread) = self.thread.take() else {
            return;
        };
        thread.thread().unpark();
        let deadline = std::time::Instant::now() + LAST_WRITE_WAIT;
        while !thread.is_finished() {
            if std::time::Instant::now() >= deadline {
                // Left behind: exit does not hang on a blocked stderr.
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = thread.join();
    }
}

/// The `MakeWriter` the subscriber formats lines into: each line is appended whole.
struct BatchedLines {
    shared: Arc<Shared>,
    thread: Thread,
}

impl<'a> MakeWriter<'a> for BatchedLines {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(self)
    }
}

struct LineWriter<'a>(&'a BatchedLines);

impl Write for LineWriter<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let lines = self.0;
        let mut pending = lines.shared.lock();
        while pending.text.len() >= MAX_BUFFERED && !pending.closed {
            lines.thread.unpark();
            pending = lines
                .shared
                .room
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if pending.closed {
            // After the guard: nothing will write the buffer any more, so the line goes straight out.
            drop(pending);
            let _ = std::io::stderr().lock().write_all(line);
            return Ok(line.len());
        }
        let before = pending.text.len();
        pending.text.extend_from_slice(line);
        let wake = std::mem::replace(&mut pending.idle, false)
            || (before < WAKE_AT && pending.text.len() >= WAKE_AT);
        drop(pending);
        if wake {
            lines.thread.unpark();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The message a caught panic carried (`panic!("...")`), for logs and errors.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output the test can read while the writing thread writes to it.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn every_line_of_every_thread_arrives_whole_and_in_each_threads_order() {
        let output = Captured::default();
        let (writer, guard) = start(output.clone());
        let writer = Arc::new(writer);
        // More than MAX_BUFFERED in all, so logging threads also wait for room.
        let threads = 4;
        let lines = 20_000;
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for line in 0..lines {
                        let text = format!("thread {thread} line {line} {}\n", "x".repeat(60));
                        writer.make_writer().write_all(text.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        drop(guard);
        let text = output.text();
        let mut next = vec![0; threads];
        for line in text.lines() {
            let mut words = line.split(' ');
            assert_eq!(words.next(), Some("thread"), "a torn line: {line}");
            let thread: usize = words.next().unwrap().parse().unwrap();
            assert_eq!(words.next(), Some("line"));
            let number: usize = words.next().unwrap().parse().unwrap();
            assert_eq!(number, next[thread], "thread {thread} out of order");
            assert_eq!(words.next().map(str::len), Some(60));
            next[thread] += 1;
        }
        assert_eq!(next, vec![lines; threads]);
    }

    #[test]
    fn a_line_after_a_quiet_spell_is_written_without_waiting_for_the_guard() {
        let output = Captured::default();
        let (writer, _guard) = start(output.clone());
        for round in 0..3 {
            let line = format!("round {round}\n");
            writer.make_writer().write_all(line.as_bytes()).unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !output.text().contains(&line) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "round {round} never written"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            // Long enough for the writing thread to find nothing and fall asleep.
            std::thread::sleep(FLUSH_INTERVAL * 3);
        }
    }

    #[test]
    fn the_guard_writes_what_is_left_when_dropped() {
        let output = Captured::default();
        let (writer, guard) = start(output.clone());
        for line in 0..1000 {
            writer
                .make_writer()
                .write_all(format!("{line}\n").as_bytes())
                .unwrap();
        }
        drop(guard);
        assert_eq!(output.text().lines().count(), 1000);
    }

    #[test]
    fn exit_does_not_wait_forever_for_an_output_that_never_takes_the_lines() {
        /// Blocks on its first write until the test ends (the sender is never used).
        struct Stuck(std::sync::mpsc::Receiver<()>);
        impl Write for Stuck {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                let _ = self.0.recv();
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (keep_blocked, blocked) = std::sync::mpsc::channel::<()>();
        let (writer, guard) = start(Stuck(blocked));
        writer.make_writer().write_all(b"a line\n").unwrap();
        let (dropped, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(guard);
            let _ = dropped.send(());
        });
        assert!(
            done.recv_timeout(Duration::from_secs(30)).is_ok(),
            "dropping the guard hung on a blocked output"
        );
        drop(keep_blocked);
    }
}
