//! Writing a process container's log: the agent copies what the container writes into its
//! log file, capped and rotated, and a write that fails costs output, never the container.
//!
//! A container's stdout and stderr are one pipe. The agent reads it on a thread of its own
//! ([`start`]) and appends to `<container>.log` through a [`RotatingLog`]: a file about to
//! grow past [`LogLimits::max_size`] is rotated to `.1` (see [`super::logs`]), so a chatty
//! container cannot fill the disk. When the disk is full anyway (or the file cannot be
//! opened), the bytes are dropped and counted, the pipe keeps being drained so the container
//! never blocks or sees an error, and the agent warns at most once a minute per pod
//! ([`LogWarnings`]).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::oneshot;
use tracing::warn;

use super::logs::{rotated_path, LogLimits};

/// A pod whose log cannot be written is warned about at most this often.
pub const WARN_EVERY: Duration = Duration::from_secs(60);

/// How much of the pipe is read at a time.
const CHUNK: usize = 64 * 1024;

/// The agent's file, not the pod's: only the agent (and root) can read it, whatever the
/// agent's umask; a link in its place is not followed.
fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)
}

/// A log file that is rotated before it grows past its cap.
#[derive(Debug)]
pub struct RotatingLog {
    path: PathBuf,
    limits: LogLimits,
    /// `None` after a failed open: opened again on the next write.
    file: Option<File>,
    size: u64,
}

impl RotatingLog {
    /// The log at `path`, appended to (created when missing), opened on the first write.
    pub fn new(path: &Path, limits: LogLimits) -> RotatingLog {
        RotatingLog {
            path: path.to_path_buf(),
            limits,
            file: None,
            size: 0,
        }
    }

    /// Appends `bytes`, rotating first when they would take the file past its cap; a chunk
    /// bigger than the cap is split over files, so none is ever bigger than the cap.
    pub fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        let max = self.limits.max_size.max(1);
        while !bytes.is_empty() {
            self.ensure_open()?;
            if self.size > 0 && self.size + bytes.len() as u64 > max {
                self.rotate()?;
            }
            let room = max.saturating_sub(self.size).max(1);
            let (now, later) = bytes.split_at(bytes.len().min(room as usize));
            self.append(now)?;
            bytes = later;
        }
        Ok(())
    }

    /// Opens the file unless it is open: a log that could not be opened (a full disk, or a
    /// directory gone) is tried again on every write.
    pub fn ensure_open(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            let file = open_log(&self.path)?;
            self.size = file.metadata()?.len();
            self.file = Some(file);
        }
        Ok(())
    }

    /// Writes all of `bytes` to the open file, counting what got in even when the rest fails.
    fn append(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        let Some(file) = &mut self.file else {
            return Err(io::Error::other("the log file is not open"));
        };
        while !bytes.is_empty() {
            match file.write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.size += n as u64;
                    bytes = &bytes[n..];
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Moves the file to `.1` (see [`rotate_files`]) and starts a new one. A file that is no
    /// longer at the path (a restart moved it to `.previous.log`, and something of the old
    /// run still writes) is not rotated: what does not fit is dropped.
    fn rotate(&mut self) -> io::Result<()> {
        if !self.owns_path() {
            return Err(io::Error::other(
                "the log file was moved away by a restart of the container and is full",
            ));
        }
        self.file = None;
        rotate_files(&self.path, self.limits.max_files)?;
        self.ensure_open()
    }

    /// Whether the open file is still the one at the path (or nothing is there).
    fn owns_path(&self) -> bool {
        let (Some(file), Ok(at_path)) = (&self.file, std::fs::symlink_metadata(&self.path)) else {
            return true;
        };
        file.metadata()
            .is_ok_and(|open| (open.dev(), open.ino()) == (at_path.dev(), at_path.ino()))
    }
}

/// Shifts the rotated files of the log at `path` by one (`.1` becomes `.2`, ...), dropping
/// those past `max_files` (the current file counts), and moves the current file to `.1`.
/// With `max_files` 1 the current file is simply removed.
pub fn rotate_files(path: &Path, max_files: u32) -> io::Result<()> {
    let kept = max_files.saturating_sub(1);
    if kept == 0 {
        return ignore_missing(std::fs::remove_file(path));
    }
    remove_rotated_from(path, kept);
    for n in (1..kept).rev() {
        ignore_missing(std::fs::rename(
            rotated_path(path, n),
            rotated_path(path, n + 1),
        ))?;
    }
    ignore_missing(std::fs::rename(path, rotated_path(path, 1)))
}

/// Moves the log at `from` and its rotated files to `to` (replacing the log there and all of
/// its rotated files): a restarted container's output becomes its previous run's.
pub fn move_set(from: &Path, to: &Path) -> io::Result<()> {
    ignore_missing(std::fs::remove_file(to))?;
    remove_rotated_from(to, 1);
    ignore_missing(std::fs::rename(from, to))?;
    for n in 1.. {
        match std::fs::rename(rotated_path(from, n), rotated_path(to, n)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes `.first`, `.first + 1`, ... of the log at `path`, up to the first one missing (also
/// those an earlier, larger `max_files` left).
fn remove_rotated_from(path: &Path, first: u32) {
    for n in first.. {
        if std::fs::remove_file(rotated_path(path, n)).is_err() {
            break;
        }
    }
}

fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// When each pod was last warned about, so a full disk costs one warning a minute per pod
/// rather than one per line of output.
#[derive(Debug, Default)]
pub struct LogWarnings {
    last: Mutex<HashMap<String, Instant>>,
}

impl LogWarnings {
    /// Whether `pod` may be warned about `now` (and, if so, it is counted as warned).
    pub fn due(&self, pod: &str, now: Instant) -> bool {
        let mut last = self.last.lock();
        last.retain(|_, at| now.saturating_duration_since(*at) < WARN_EVERY);
        if last.contains_key(pod) {
            return false;
        }
        last.insert(pod.to_string(), now);
        true
    }
}

/// What [`copy_tolerant`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// Bytes written.
    pub written: u64,
    /// Bytes read but not written.
    pub dropped: u64,
}

/// Reads `source` to its end and hands every chunk to `write`; a chunk `write` fails on is
/// dropped (and `failed` told), and reading goes on.
pub fn copy_tolerant(
    mut source: impl Read,
    mut write: impl FnMut(&[u8]) -> io::Result<()>,
    mut failed: impl FnMut(&io::Error, usize),
) -> Copied {
    let mut copied = Copied::default();
    let mut buf = vec![0; CHUNK];
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => return copied,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A pipe does not fail short of being closed.
            Err(_) => return copied,
        };
        match write(&buf[..n]) {
            Ok(()) => copied.written += n as u64,
            Err(error) => {
                copied.dropped += n as u64;
                failed(&error, n);
            }
        }
    }
}

/// Whose output a log holds, for warnings.
#[derive(Debug, Clone)]
pub struct LogOwner {
    /// The pod's key.
    pub pod: String,
    /// The container's name.
    pub container: String,
    /// Shared by the agent's pods.
    pub warnings: Arc<LogWarnings>,
}

impl LogOwner {
    /// Warns that the log cannot be written, unless the pod was warned about in the last
    /// minute; `dropped` is what was lost since the last warning. True when it warned.
    pub fn warn(&self, error: &io::Error, dropped: u64) -> bool {
        if !self.warnings.due(&self.pod, Instant::now()) {
            return false;
        }
        warn!(pod = %self.pod, container = %self.container, %error, dropped_bytes = dropped,
            "failed to write the container's log; its output is dropped until writing works again (warned once a minute per pod)");
        true
    }
}

/// Starts copying `pipe` (the read end of a container's stdout and stderr) into `log` on a
/// thread of its own, until every writer has closed the pipe. The receiver resolves then.
pub fn start(
    pipe: File,
    mut log: RotatingLog,
    owner: LogOwner,
) -> io::Result<oneshot::Receiver<()>> {
    let (done, drained) = oneshot::channel();
    std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            let mut dropped = 0u64;
            let warn_once_a_minute = |error: &io::Error, n: usize| {
                dropped += n as u64;
                if owner.warn(error, dropped) {
                    dropped = 0;
                }
            };
            copy_tolerant(pipe, |bytes| log.write(bytes), warn_once_a_minute);
            let _ = done.send(());
        })?;
    Ok(drained)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::logs;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("kube9-logwriter-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn size(path: &Path) -> u64 {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }

    #[test]
    fn a_log_written_past_its_cap_is_rotated_and_stays_bounded() {
        let dir = temp_dir("rotate");
        let path = dir.join("app.log");
        let limits = LogLimits {
            max_size: 1000,
            max_files: 3,
        };
        let mut log = RotatingLog::new(&path, limits);
        for i in 0..1000 {
            log.write(format!("line {i:04}\n").as_bytes()).unwrap();
        }
        for file in [
            path.clone(),
            logs::rotated_path(&path, 1),
            logs::rotated_path(&path, 2),
        ] {
            let len = size(&file);
            assert!(
                len > 0 && len <= 1000,
                "{} holds {len} bytes",
                file.display()
            );
        }
        assert!(!logs::rotated_path(&path, 3).exists(), "3 files at most");
        // Whole lines per file: the cap is a multiple of the line length.
        let newest = std::fs::read_to_string(&path).unwrap();
        assert!(newest.ends_with("line 0999\n"), "{newest}");
        assert!(newest.starts_with("line "), "{newest}");
        let rotated = std::fs::read_to_string(logs::rotated_path(&path, 1)).unwrap();
        let first_now = newest.lines().next().unwrap();
        let last_before = rotated.lines().last().unwrap();
        let number = |line: &str| line[5..].parse::<u32>().unwrap();
        assert_eq!(
            number(last_before) + 1,
            number(first_now),
            "nothing lost between files"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_chunk_bigger_than_the_cap_is_split_over_files() {
        let dir = temp_dir("split");
        let path = dir.join("app.log");
        let limits = LogLimits {
            max_size: 100,
            max_files: 2,
        };
        let mut log = RotatingLog::new(&path, limits);
        log.write(&[b'x'; 250]).unwrap();
        assert_eq!(size(&path), 50);
        assert_eq!(size(&logs::rotated_path(&path, 1)), 100);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_smaller_max_files_removes_what_a_larger_one_left() {
        let dir = temp_dir("shrink");
        let path = dir.join("app.log");
        for n in 1..=4 {
            std::fs::write(logs::rotated_path(&path, n), "old\n").unwrap();
        }
        std::fs::write(&path, "current\n").unwrap();
        rotate_files(&path, 2).unwrap();
        assert_eq!(
            std::fs::read_to_string(logs::rotated_path(&path, 1)).unwrap(),
            "current\n"
        );
        assert!(!path.exists());
        for n in 2..=4 {
            assert!(!logs::rotated_path(&path, n).exists(), ".{n} is gone");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_restart_moves_the_log_and_its_rotated_files_to_previous() {
        let dir = temp_dir("previous");
        let (log, previous) = (dir.join("c.log"), dir.join("c.previous.log"));
        std::fs::write(&log, "new\n").unwrap();
        std::fs::write(logs::rotated_path(&log, 1), "newer-rotated\n").unwrap();
        std::fs::write(&previous, "old\n").unwrap();
        std::fs::write(logs::rotated_path(&previous, 1), "old-rotated\n").unwrap();
        std::fs::write(logs::rotated_path(&previous, 2), "older-rotated\n").unwrap();
        move_set(&log, &previous).unwrap();
        assert!(!log.exists() && !logs::rotated_path(&log, 1).exists());
        assert_eq!(std::fs::read_to_string(&previous).unwrap(), "new\n");
        assert_eq!(
            std::fs::read_to_string(logs::rotated_path(&previous, 1)).unwrap(),
            "newer-rotated\n"
        );
        assert!(!logs::rotated_path(&previous, 2).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_log_that_cannot_be_opened_is_tried_again_on_the_next_write() {
        let dir = temp_dir("reopen");
        let path = dir.join("gone/app.log");
        let mut log = RotatingLog::new(&path, LogLimits::default());
        assert!(log.write(b"lost\n").is_err());
        std::fs::create_dir_all(dir.join("gone")).unwrap();
        log.write(b"kept\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "kept\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_write_that_always_fails_drops_the_output_and_drains_the_source() {
        let output = vec![b'y'; 3 * CHUNK + 10];
        let mut failures = 0;
        let copied = copy_tolerant(
            io::Cursor::new(output.clone()),
            |_| Err(io::Error::from_raw_os_error(nix::libc::ENOSPC)),
            |error, _| {
                assert_eq!(error.raw_os_error(), Some(nix::libc::ENOSPC));
                failures += 1;
            },
        );
        assert_eq!(
            copied,
            Copied {
                written: 0,
                dropped: output.len() as u64
            }
        );
        assert!(failures >= 4, "every chunk was tried: {failures}");
    }

    #[test]
    fn writing_resumes_after_failures() {
        let mut calls = 0;
        let mut kept = Vec::new();
        let source = io::Cursor::new(vec![b'z'; 2 * CHUNK]);
        let copied = copy_tolerant(
            source,
            |bytes| {
                calls += 1;
                if calls == 1 {
                    return Err(io::ErrorKind::StorageFull.into());
                }
                kept.extend_from_slice(bytes);
                Ok(())
            },
            |_, _| {},
        );
        assert_eq!(copied.written + copied.dropped, 2 * CHUNK as u64);
        assert!(copied.dropped > 0 && copied.written > 0, "{copied:?}");
        assert_eq!(kept.len() as u64, copied.written);
    }

    #[test]
    fn a_pod_is_warned_about_once_a_minute() {
        let warnings = LogWarnings::default();
        let now = Instant::now();
        assert!(warnings.due("default/a", now));
        assert!(!warnings.due("default/a", now + Duration::from_secs(59)));
        assert!(warnings.due("default/b", now + Duration::from_secs(1)));
        assert!(warnings.due("default/a", now + WARN_EVERY));
    }

    #[test]
    fn a_container_log_rotated_while_followed_is_read_to_the_end_and_followed_on() {
        let dir = temp_dir("follow");
        let path = dir.join("app.log");
        let limits = LogLimits {
            max_size: 20,
            max_files: 2,
        };
        let mut log = RotatingLog::new(&path, limits);
        log.write(b"one\n").unwrap();
        let (mut follower, first) = logs::Follower::start(&path, 0);
        assert_eq!(first, b"one\n");
        log.write(b"two\n").unwrap();
        log.write(b"three-is-long\n").unwrap(); // rotates: 8 + 14 > 20
        log.write(b"four\n").unwrap();
        assert!(logs::rotated_path(&path, 1).exists());
        assert_eq!(follower.poll(), b"two\nthree-is-long\nfour\n");
        log.write(b"five\n").unwrap();
        assert_eq!(follower.poll(), b"five\n");
        assert_eq!(follower.poll(), b"");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
