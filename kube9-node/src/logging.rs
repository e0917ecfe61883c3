//! The agent's own log: tracing to stderr, which must never take the agent down.
//!
//! A node whose disk is full (or whose stderr is a closed pipe) still has pods to run and
//! heartbeats to send. tracing-subscriber's fmt layer reports a failed write with `eprintln!`,
//! which panics when stderr fails too (`failed printing to stderr`), and a panic on the main
//! task ends the agent with 101. So the agent writes its log through a [`TolerantWriter`]:
//! a line that cannot be written is dropped and counted, and the count is written before the
//! next line that gets through, so the gap shows in the log.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tracing_subscriber::EnvFilter;

/// Writes to `inner`, reporting success whatever happens: a write that fails is dropped and
/// counted in `dropped`, shared by every writer of one log.
#[derive(Debug)]
pub struct TolerantWriter<W> {
    inner: W,
    dropped: Arc<AtomicU64>,
}

impl<W: Write> TolerantWriter<W> {
    /// A writer to `inner` that counts the writes it drops in `dropped`.
    pub fn new(inner: W, dropped: Arc<AtomicU64>) -> Self {
        TolerantWriter { inner, dropped }
    }

    /// Writes the count of dropped writes, if any, ahead of what comes next; false when that
    /// failed too (the count is kept for the next try).
    fn report_dropped(&mut self) -> bool {
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped == 0 {
            return true;
        }
        let note =
            format!("kube9-node: {dropped} log lines were dropped: the log could not be written\n");
        if self.inner.write_all(note.as_bytes()).is_err() {
            self.dropped.fetch_add(dropped, Ordering::Relaxed);
            return false;
        }
        true
    }
}

impl<W: Write> Write for TolerantWriter<W> {
    /// The fmt layer writes each event with one call, so one dropped call is one dropped line.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.report_dropped() || self.inner.write_all(buf).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = self.inner.flush();
        Ok(())
    }
}

/// Installs the agent's log: tracing to stderr through a [`TolerantWriter`], filtered by
/// `RUST_LOG` (default `info`), coloured when stderr is a terminal.
pub fn init() {
    use std::io::IsTerminal;
    let dropped = Arc::new(AtomicU64::new(0));
    tracing_subscriber::fmt()
        .with_writer(move || TolerantWriter::new(io::stderr(), dropped.clone()))
        .with_ansi(io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        // Nothing to report through: the writer cannot fail.
        .log_internal_errors(false)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that fails every write, as stderr on a full disk does, and counts the tries.
    #[derive(Clone, Default)]
    struct Full {
        tries: Arc<AtomicU64>,
    }

    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            self.tries.fetch_add(1, Ordering::Relaxed);
            Err(io::Error::from_raw_os_error(nix::libc::ENOSPC))
        }

        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::from_raw_os_error(nix::libc::ENOSPC))
        }
    }

    #[test]
    fn a_writer_that_always_fails_drops_and_counts_the_lines() {
        let dropped = Arc::new(AtomicU64::new(0));
        let full = Full::default();
        let mut writer = TolerantWriter::new(full.clone(), dropped.clone());
        writer.write_all(b"one\n").unwrap();
        writeln!(writer, "two").unwrap();
        writer.flush().unwrap();
        assert_eq!(dropped.load(Ordering::Relaxed), 2);
        assert!(
            full.tries.load(Ordering::Relaxed) >= 2,
            "each line was tried"
        );
    }

    #[test]
    fn the_count_of_dropped_lines_is_written_once_writing_works_again() {
        let dropped = Arc::new(AtomicU64::new(3));
        let mut out = Vec::new();
        TolerantWriter::new(&mut out, dropped.clone())
            .write_all(b"back\n")
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "kube9-node: 3 log lines were dropped: the log could not be written\nback\n"
        );
        assert_eq!(dropped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn tracing_through_a_failing_writer_neither_panics_nor_errors() {
        let dropped = Arc::new(AtomicU64::new(0));
        let full = Full::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer({
                let (full, dropped) = (full.clone(), dropped.clone());
                move || TolerantWriter::new(full.clone(), dropped.clone())
            })
            .log_internal_errors(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            for n in 0..5 {
                tracing::warn!(n, "the disk is full");
            }
        });
        assert_eq!(dropped.load(Ordering::Relaxed), 5);
        assert!(full.tries.load(Ordering::Relaxed) >= 5);
    }
}
