//! Container log files: where they live and how FetchLogs reads them.
//!
//! Each container's stdout and stderr go to
//! `<state-dir>/pods/<namespace>/<pod>/<container>.log`; the files outlive the pod so logs can
//! still be read after a deletion. Pods are named by key (`namespace/name`).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::config::is_path_component;

/// At most this much of a log is returned, so a reply always fits a gRPC message (4 MiB).
pub const MAX_LOG_BYTES: u64 = 2 * 1024 * 1024;

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

/// The file's content, or its last `limit` bytes starting at a line boundary.
fn read_end(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut content = Vec::new();
    if len <= limit {
        file.read_to_end(&mut content)?;
        return Ok(content);
    }
    file.seek(SeekFrom::Start(len - limit))?;
    file.take(limit).read_to_end(&mut content)?;
    let start = content
        .iter()
        .position(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    content.drain(..start);
    Ok(content)
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
    fn a_huge_log_is_cut_at_a_line_boundary() {
        let dir = std::env::temp_dir().join(format!("kube9-logs-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("big.log");
        std::fs::write(&path, "first line\nsecond\nthird\n").unwrap();
        assert_eq!(read_end(&path, 10).unwrap(), b"third\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
