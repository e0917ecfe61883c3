//! Container log files: where they live and how FetchLogs and `logs -f` read them.
//!
//! Each container's stdout and stderr go to
//! `<state-dir>/pods/<namespace>/<pod>/<container>.log`; the files outlive the pod so logs can
//! still be read after a deletion. Pods are named by key (`namespace/name`).
//!
//! The agent writes them ([`super::logwriter`]) and rotates them as the kubelet does
//! (`containerLogMaxSize`, `containerLogMaxFiles`): a file that would grow past
//! [`LogLimits::max_size`] becomes `<container>.log.1` (the one before that `.log.2`, and so
//! on; the oldest goes), so a container keeps at most [`LogLimits::max_files`] files. Reading
//! takes the rotated files before the current one, newest bytes last.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::paths::is_path_component;

/// At most this much of a log is returned, so a reply always fits a gRPC message (4 MiB).
pub const MAX_LOG_BYTES: u64 = 2 * 1024 * 1024;

/// How big a container's log may grow (`--container-log-max-size`,
/// `--container-log-max-files`): for process pods the agent rotates the files, engine
/// containers get the same limits as their log driver's `max-size` and `max-file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// A file is rotated before it grows past this many bytes.
    pub max_size: u64,
    /// Files a container keeps, the current one included (at least 2 from the command line).
    pub max_files: u32,
}

impl LogLimits {
    /// 10 MiB, the kubelet's `containerLogMaxSize`.
    pub const DEFAULT_MAX_SIZE: u64 = 10 * 1024 * 1024;
    /// The current file and one rotated `.1`.
    pub const DEFAULT_MAX_FILES: u32 = 2;
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            max_size: Self::DEFAULT_MAX_SIZE,
            max_files: Self::DEFAULT_MAX_FILES,
        }
    }
}

/// `<log>.<n>`: the `n`th newest rotated file of the log at `path` (1 is the newest).
pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// `<state-dir>/pods/<namespace>/<name>` of pod `namespace/name` (a bare name is in
/// `default`).
pub fn pod_dir(state_dir: &Path, pod: &str) -> PathBuf {
    let (namespace, name) = kube9_proto::namespace::split(pod);
    state_dir.join("pods").join(namespace).join(name)
}

/// `<state-dir>/pods/<pod>/<container>.log`.
pub fn log_path(state_dir: &Path, pod: &str, container: &str) -> PathBuf {
    pod_dir(state_dir, pod).join(format!("{container}.log"))
}

/// `<state-dir>/pods/<pod>/<container>.previous.log`: the output of the container's run before
/// its last restart.
pub fn previous_log_path(state_dir: &Path, pod: &str, container: &str) -> PathBuf {
    pod_dir(state_dir, pod).join(format!("{container}{PREVIOUS_SUFFIX}.log"))
}

const PREVIOUS_SUFFIX: &str = ".previous";

/// The last `lines` lines of `content` (all of it when `lines` is 0). A final newline ends
/// the last line rather than starting an empty one.
pub fn tail(content: &[u8], lines: usize) -> &[u8] {
    if lines == 0 {
        return content;
    }
    let body = content.strip_suffix(b"\n").unwrap_or(content);
    let mut seen = 0;
    for (index, byte) in body.iter().enumerate().rev() {
        if *byte == b'\n' {
            seen += 1;
            if seen == lines {
                return &content[index + 1..];
            }
        }
    }
    content
}

/// Picks the container whose logs are wanted: the one named, or the only one.
pub fn choose_container(
    pod: &str,
    containers: &[String],
    requested: &str,
) -> Result<String, String> {
    if !requested.is_empty() {
        return match containers.iter().any(|c| c == requested) {
            true => Ok(requested.to_string()),
            false => Err(format!(
                "container {requested} not found in pod {pod} (containers: {})",
                containers.join(", ")
            )),
        };
    }
    match containers {
        [only] => Ok(only.clone()),
        [] => Err(format!("pod {pod} has no containers")),
        many => Err(format!(
            "pod {pod} has {} containers, choose one of: {}",
            many.len(),
            many.join(", ")
        )),
    }
}

/// Reads the logs of `pod`/`container` (see [`choose_container`]). `containers` is the pod's
/// container list when the pod runs here; otherwise the pod directory is listed, so logs of a
/// deleted pod stay readable. Blocking: call it off the async threads.
pub fn fetch(
    state_dir: &Path,
    pod: &str,
    containers: Option<Vec<String>>,
    container: &str,
    tail_lines: u32,
    previous: bool,
) -> Result<Vec<u8>, String> {
    let not_found = || format!("pod {pod} not found on this node");
    let (namespace, name) = kube9_proto::namespace::split(pod);
    if !is_path_component(namespace) || !is_path_component(name) {
        return Err(not_found());
    }
    let containers = match containers {
        Some(containers) => containers,
        None => logged_containers(&pod_dir(state_dir, pod)).map_err(|_| not_found())?,
    };
    let container = choose_container(pod, &containers, container)?;
    let path = if previous {
        previous_log_path(state_dir, pod, &container)
    } else {
        log_path(state_dir, pod, &container)
    };
    match read_end(&path, MAX_LOG_BYTES) {
        Ok(content) => Ok(tail(&content, tail_lines as usize).to_vec()),
        Err(error) if previous && error.kind() == io::ErrorKind::NotFound => Err(format!(
            "previous terminated container \"{container}\" in pod \"{pod}\" not found"
        )),
        // Not started yet: nothing written.
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(format!("failed to read logs of {pod}/{container}: {error}")),
    }
}

/// Names of the containers with a log file in `dir`, sorted.
fn logged_containers(dir: &Path) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            name.strip_suffix(".log")
                .filter(|n| !n.ends_with(PREVIOUS_SUFFIX))
                .map(str::to_string)
        })
        .collect();
    names.sort();
    Ok(names)
}

/// The log at `path` with its rotated files before it, or its last `limit` bytes starting at
/// a line boundary. NotFound when the current file does not exist.
fn read_end(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    read_end_of(&file, len, path, limit)
}

/// [`read_end`] with the current file already open, read up to `len`: what comes after is
/// left for a follower to read.
fn read_end_of(current: &File, len: u64, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    // Newest first, each the end of a file, until `limit` bytes are in.
    let mut parts = vec![read_last(current, len, limit)?];
    let mut left = limit - parts[0].len() as u64;
    let mut cut = (parts[0].len() as u64) < len;
    for n in 1.. {
        let Ok(older) = File::open(rotated_path(path, n)) else {
            break;
        };
        if left == 0 {
            cut = true;
            break;
        }
        let older_len = older.metadata()?.len();
        let part = read_last(&older, older_len, left)?;
        left -= part.len() as u64;
        cut |= (part.len() as u64) < older_len;
        parts.push(part);
    }
    let mut content: Vec<u8> = parts.into_iter().rev().flatten().collect();
    if cut {
        let start = content
            .iter()
            .position(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        content.drain(..start);
    }
    Ok(content)
}

/// The last `limit` bytes (at most) of the first `len` bytes of `file`.
fn read_last(file: &File, len: u64, limit: u64) -> io::Result<Vec<u8>> {
    let take = len.min(limit);
    let mut bytes = vec![0; take as usize];
    file.read_exact_at(&mut bytes, len - take)?;
    Ok(bytes)
}

/// Follows the log at a path as it grows, across rotations and restarts (`logs -f`).
///
/// It keeps the file it reads open, so bytes written just before the file was rotated (or
/// moved to `.previous.log` by a restart) are still read from it; once a new file is at the
/// path and the old one is drained, it goes on with the new one from its start. Two rotations
/// between polls skip the file in between.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    offset: u64,
}

impl Follower {
    /// Starts following `path`: the last `tail_lines` lines so far (all for 0, from the
    /// rotated files too), and the follower that reads what comes after them.
    pub fn start(path: &Path, tail_lines: usize) -> (Follower, Vec<u8>) {
        let mut follower = Follower {
            path: path.to_path_buf(),
            file: File::open(path).ok(),
            offset: 0,
        };
        let Some(file) = &follower.file else {
            return (follower, Vec::new());
        };
        let len = file.metadata().map_or(0, |m| m.len());
        let content = read_end_of(file, len, path, MAX_LOG_BYTES).unwrap_or_default();
        follower.offset = len;
        (follower, tail(&content, tail_lines).to_vec())
    }

    /// What was written since the last call (at most [`MAX_LOG_BYTES`]; the rest comes next).
    pub fn poll(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.file.is_none() {
            self.switch();
        }
        self.read_more(&mut out);
        if (out.len() as u64) < MAX_LOG_BYTES && self.replaced() {
            // Written to before it was moved away, never after: drained now, it is complete.
            self.read_more(&mut out);
            self.switch();
            self.read_more(&mut out);
        }
        out
    }

    /// Appends what the open file holds past the offset to `out`, up to [`MAX_LOG_BYTES`]; a
    /// file that shrank (truncated) is read from its start.
    fn read_more(&mut self, out: &mut Vec<u8>) {
        let Some(file) = &self.file else {
            return;
        };
        let len = file.metadata().map_or(0, |m| m.len());
        if len < self.offset {
            self.offset = 0;
        }
        let room = MAX_LOG_BYTES.saturating_sub(out.len() as u64);
        let take = (len - self.offset).min(room);
        let mut bytes = vec![0; take as usize];
        if file.read_exact_at(&mut bytes, self.offset).is_ok() {
            self.offset += take;
            out.extend(bytes);
        }
    }

    /// Whether another file than the open one is at the path now (rotated, or restarted).
    fn replaced(&self) -> bool {
        let (Some(file), Ok(at_path)) = (&self.file, std::fs::metadata(&self.path)) else {
            return false;
        };
        file.metadata()
            .is_ok_and(|open| (open.dev(), open.ino()) != (at_path.dev(), at_path.ino()))
    }

    /// Goes on with the file now at the path, from its start.
    fn switch(&mut self) {
        self.file = File::open(&self.path).ok();
        self.offset = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_returns_the_last_lines() {
        let content = b"a\nb\nc\n";
        assert_eq!(tail(content, 1), b"c\n");
        assert_eq!(tail(content, 2), b"b\nc\n");
        assert_eq!(tail(content, 3), content);
        assert_eq!(tail(content, 10), content);
        assert_eq!(tail(content, 0), content);
    }

    #[test]
    fn tail_counts_an_unterminated_last_line() {
        assert_eq!(tail(b"a\nb\nc", 1), b"c");
        assert_eq!(tail(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(tail(b"", 2), b"");
    }

    #[test]
    fn the_only_container_is_chosen_when_none_is_named() {
        let one = vec!["app".to_string()];
        assert_eq!(choose_container("web", &one, "").unwrap(), "app");
        let two = vec!["app".to_string(), "sidecar".to_string()];
        assert_eq!(
            choose_container("web", &two, "").unwrap_err(),
            "pod web has 2 containers, choose one of: app, sidecar"
        );
        assert_eq!(choose_container("web", &two, "sidecar").unwrap(), "sidecar");
        assert!(choose_container("web", &two, "db")
            .unwrap_err()
            .contains("container db"));
    }

    #[test]
    fn logs_of_an_unknown_pod_are_an_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("kube9-logs-{}", std::process::id()));
        let error = fetch(&dir, "ghost", None, "", 0, false).unwrap_err();
        assert_eq!(error, "pod ghost not found on this node");
    }

    #[test]
    fn logs_of_a_deleted_pod_are_found_by_listing_its_directory() {
        let dir = std::env::temp_dir().join(format!("kube9-logs-del-{}", std::process::id()));
        std::fs::create_dir_all(pod_dir(&dir, "old")).unwrap();
        std::fs::write(log_path(&dir, "old", "app"), "1\n2\n3\n").unwrap();
        assert_eq!(fetch(&dir, "old", None, "", 2, false).unwrap(), b"2\n3\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn reading_a_rotated_log_takes_the_rotated_file_first_and_ends_with_the_newest_lines() {
        let dir = std::env::temp_dir().join(format!("kube9-logs-rot-{}", std::process::id()));
        std::fs::create_dir_all(pod_dir(&dir, "web")).unwrap();
        let path = log_path(&dir, "web", "app");
        std::fs::write(rotated_path(&path, 2), "1\n2\n").unwrap();
        std::fs::write(rotated_path(&path, 1), "3\n4\n").unwrap();
        std::fs::write(&path, "5\n6\n").unwrap();
        assert_eq!(
            fetch(&dir, "web", None, "", 0, false).unwrap(),
            b"1\n2\n3\n4\n5\n6\n"
        );
        assert_eq!(
            fetch(&dir, "web", None, "", 3, false).unwrap(),
            b"4\n5\n6\n"
        );
        // The newest bytes win when not everything fits, cut at a line boundary.
        assert_eq!(read_end(&path, 7).unwrap(), b"4\n5\n6\n");
        assert_eq!(read_end(&path, 3).unwrap(), b"6\n");
        // Rotated files are not containers.
        assert_eq!(logged_containers(&pod_dir(&dir, "web")).unwrap(), ["app"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_huge_log_is_cut_at_a_line_boundary() {
        let dir = std::env::temp_dir().join(format!("kube9-logs-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("big.log");
        std::fs::write(&path, "first line\nsecond\nthird\n").unwrap();
        assert_eq!(read_end(&path, 10).unwrap(), b"third\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
