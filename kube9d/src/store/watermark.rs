//! Noticing a store that lost its end.
//!
//! sled recovers a log with a bad checksum by cutting it at the damage, as if what follows had
//! never been written: a store damaged near the start of its log opens *empty*, without an
//! error. So every group commit carries a counter: into the sled batch (key [`KEY`]), and, once
//! the batch is durable, into a file beside sled's own ([`FILE`] in `<data-dir>/store`, one
//! 8-byte write at offset 0, no fsync). The file is written only after sled's fsync, so it never
//! runs ahead of the store; at most it lags behind by the last commits (kube9d killed, or the
//! machine lost power, between the two writes). A store whose counter is *behind* the file's
//! lost acknowledged commits: [`check`] says so and kube9d refuses to serve less than it
//! acknowledged.
//!
//! A store without the file (new, or written by a release before this one) has nothing to be
//! checked against; its first commit writes the file. The counter is kube9d's bookkeeping, not
//! state: snapshots leave it out, and a restored store starts without file or counter.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The counter's key in sled (`g/`: no other prefix starts with it, nor it with another).
pub(super) const KEY: &[u8] = b"g/commit";
/// The prefix of keys kept out of snapshots.
pub(super) const PREFIX: &[u8] = b"g/";
/// The counter's file, in sled's directory so that it moves with the store.
pub(super) const FILE: &str = "kube9.commit";

/// The counter the store holds (0 when it holds none).
pub(super) fn stored(db: &sled::Db) -> sled::Result<u64> {
    Ok(db.get(KEY)?.map_or(0, |v| decode(&v).unwrap_or(0)))
}

/// The counter as stored: 8 bytes, big-endian.
pub(super) fn encode(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

fn decode(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// Why a store holding counter `stored` cannot be the one whose file says `recorded`; `None`
/// when it can.
pub(super) fn check(stored: u64, recorded: Option<u64>) -> Option<String> {
    match recorded {
        Some(recorded) if stored < recorded => Some(format!(
            "its log ends {} commit(s) early: it holds commit {stored} of {recorded}",
            recorded - stored
        )),
        _ => None,
    }
}

/// The open counter file, written by the store's writer thread after each durable commit.
pub(super) struct Watermark {
    file: File,
    path: PathBuf,
    /// Whether a failed write was already logged (it is logged once, not per commit).
    warned: bool,
}

impl Watermark {
    /// Opens (or creates, 0600) the file in `store_dir`, with the counter it holds (`None`
    /// when it was missing, or is not 8 bytes: nothing to check against).
    pub(super) fn open(store_dir: &Path) -> std::io::Result<(Self, Option<u64>)> {
        let path = store_dir.join(FILE);
        let recorded = match std::fs::read(&path) {
            Ok(bytes) => decode(&bytes),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)?;
        let mark = Watermark {
            file,
            path,
            warned: false,
        };
        Ok((mark, recorded))
    }

    /// Records that commit `n` is durable. A failure costs only the check at the next start,
    /// so it is logged, not returned.
    pub(super) fn record(&mut self, n: u64) {
        if let Err(e) = self.file.write_all_at(&encode(n), 0) {
            if !self.warned {
                tracing::warn!(path = %self.path.display(), error = %e, "failed to record the store's commit counter; the next start cannot check the store for lost commits");
                self.warned = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_behind_its_file_lost_commits() {
        assert_eq!(check(5, None), None, "nothing recorded: nothing to check");
        assert_eq!(check(5, Some(5)), None);
        assert_eq!(check(7, Some(5)), None, "the file may lag behind");
        let why = check(0, Some(12)).unwrap();
        assert_eq!(
            why,
            "its log ends 12 commit(s) early: it holds commit 0 of 12"
        );
    }

    #[test]
    fn the_file_holds_the_last_recorded_counter() {
        let dir = std::env::temp_dir().join(format!("kube9-watermark-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (mut mark, recorded) = Watermark::open(&dir).unwrap();
        assert_eq!(recorded, None);
        mark.record(3);
        mark.record(4);
        drop(mark);
        assert_eq!(Watermark::open(&dir).unwrap().1, Some(4));
        std::fs::write(dir.join(FILE), b"short").unwrap();
        assert_eq!(Watermark::open(&dir).unwrap().1, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
