//! `kube9-node du PATH...`: how many bytes the files under each path use, the way the agent
//! measures a pod's emptyDir volumes.
//!
//! The agent cannot read the engine host's volume directories (it may run in a container of
//! its own), but each pod's sandbox keeps every emptyDir mounted and runs this binary (as
//! `/pause`, see [`crate::pause`]): the agent execs `/pause du /volumes/<volume>...` in the
//! sandbox and reads the answer ([`parse`]). Kubernetes evicts a pod whose emptyDir passes
//! its `sizeLimit` from the same kind of walk.
//!
//! The size of a path is the sum of the sizes of the regular files under it, recursively;
//! symlinks are not followed, and a file with several hard links counts once. Output is one
//! line per path, in the order given: `BYTES\tPATH`. A path that cannot be measured is
//! reported on stderr (and left out), and the exit status is then 1. Files that vanish during
//! the walk (the pod's containers keep writing) are skipped.
//!
//! Like the pause mode, `main.rs` selects it before the tokio runtime starts: it is a plain,
//! single-threaded walk.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The first argument that selects this mode: `kube9-node du PATH...`.
pub const SUBCOMMAND: &str = "du";

/// Whether the command line (`std::env::args_os()`) asks for this mode.
pub fn requested<I, S>(args: I) -> bool
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    args.into_iter()
        .nth(1)
        .is_some_and(|arg| arg.as_ref() == SUBCOMMAND)
}

/// Measures every path in `args` (the arguments after `du`), prints `BYTES\tPATH` lines to
/// stdout and errors to stderr; returns the exit status (0, or 1 when a path failed).
pub fn run<I: IntoIterator<Item = OsString>>(args: I) -> i32 {
    let paths: Vec<PathBuf> = args.into_iter().map(PathBuf::from).collect();
    if paths.is_empty() {
        say(format_args!("du: usage: {SUBCOMMAND} PATH..."));
        return 2;
    }
    let mut status = 0;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    for path in &paths {
        match bytes_used(path) {
            Ok(bytes) => {
                if let Err(error) = writeln!(out, "{bytes}\t{}", path.display()) {
                    say(format_args!("du: failed to write the result: {error}"));
                    return 1;
                }
            }
            Err(error) => {
                say(format_args!("du: {}: {error}", path.display()));
                status = 1;
            }
        }
    }
    if let Err(error) = out.flush() {
        say(format_args!("du: failed to write the result: {error}"));
        return 1;
    }
    status
}

/// A line on stderr, if it can be written: `eprintln!` would panic when it cannot (the exit
/// status still says what happened).
fn say(line: std::fmt::Arguments) {
    let _ = writeln!(io::stderr(), "{line}");
}

/// The sum of the sizes of the regular files under `root` (or of `root` itself when it is a
/// file), not following symlinks, each hard-linked file once.
pub fn bytes_used(root: &Path) -> io::Result<u64> {
    let meta = std::fs::symlink_metadata(root)?;
    let mut seen = HashSet::new();
    let mut total = file_bytes(&meta, &mut seen);
    if !meta.is_dir() {
        return Ok(total);
    }
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            // Removed since it was listed.
            Err(e) if e.kind() == io::ErrorKind::NotFound && dir != root => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            // DirEntry::metadata does not follow symlinks.
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if meta.is_dir() {
                dirs.push(entry.path());
            } else {
                total = total.saturating_add(file_bytes(&meta, &mut seen));
            }
        }
    }
    Ok(total)
}

/// The size of a regular file, or 0 (anything else, or a hard link already counted).
fn file_bytes(meta: &std::fs::Metadata, seen: &mut HashSet<(u64, u64)>) -> u64 {
    if !meta.is_file() {
        return 0;
    }
    if meta.nlink() > 1 && !seen.insert((meta.dev(), meta.ino())) {
        return 0;
    }
    meta.len()
}

/// Reads the output of `du` for `paths` (as passed to it): the bytes of each, in order.
/// Fails when a path is missing from the output or a line is not `BYTES\tPATH`.
pub fn parse(output: &str, paths: &[String]) -> Result<Vec<u64>, String> {
    let mut found = std::collections::HashMap::new();
    for line in output.lines().filter(|l| !l.trim().is_empty()) {
        let (bytes, path) = line
            .split_once('\t')
            .ok_or_else(|| format!("unexpected du output line {line:?}"))?;
        let bytes: u64 = bytes
            .trim()
            .parse()
            .map_err(|_| format!("unexpected du output line {line:?}"))?;
        found.insert(path, bytes);
    }
    paths
        .iter()
        .map(|p| {
            found
                .get(p.as_str())
                .copied()
                .ok_or_else(|| format!("du did not report {p}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("kube9-du-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn only_the_first_argument_selects_the_du_mode() {
        assert!(requested(["/pause", "du", "/volumes/a"]));
        assert!(!requested(["/pause", "pause"]));
        assert!(!requested(["kube9-node", "--name", "du"]));
    }

    #[test]
    fn regular_files_count_recursively_links_do_not_and_hard_links_once() {
        let dir = temp_dir();
        std::fs::write(dir.join("a"), vec![0u8; 1000]).unwrap();
        std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
        std::fs::write(dir.join("sub/b"), vec![0u8; 200]).unwrap();
        std::fs::write(dir.join("sub/deeper/c"), vec![0u8; 30]).unwrap();
        std::fs::hard_link(dir.join("sub/b"), dir.join("b-again")).unwrap();
        // Followed, a symlink to a big file outside would count; it does not.
        let outside = temp_dir();
        std::fs::write(outside.join("big"), vec![0u8; 100_000]).unwrap();
        std::os::unix::fs::symlink(outside.join("big"), dir.join("link")).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("dir-link")).unwrap();
        assert_eq!(bytes_used(&dir).unwrap(), 1230);
        assert_eq!(bytes_used(&dir.join("sub")).unwrap(), 230);
        assert_eq!(bytes_used(&dir.join("a")).unwrap(), 1000);
        let empty = temp_dir();
        assert_eq!(bytes_used(&empty).unwrap(), 0);
        assert!(bytes_used(&dir.join("missing")).is_err());
        for d in [dir, outside, empty] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[test]
    fn the_output_is_read_back_in_the_order_asked() {
        let paths = ["/volumes/a".to_string(), "/volumes/b c".to_string()];
        let out = "5\t/volumes/b c\n1048576\t/volumes/a\n";
        assert_eq!(parse(out, &paths).unwrap(), [1048576, 5]);
        assert!(parse("5\t/volumes/a\n", &paths).is_err());
        assert!(parse("x\t/volumes/a\n", &paths[..1]).is_err());
        assert!(parse("garbage\n", &paths[..1]).is_err());
    }
}
