//! Only saved state is visible: with kube9d's store on a small tmpfs that fills up, a refused
//! apply is not listed and does not run, a refused delete hides nothing and stops nothing,
//! and after a restart (space freed) kube9d shows exactly what it showed before.
//!
//! Needs root (it mounts a tmpfs); skipped otherwise, except in CI, where it fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use kube9_proto::pb::PodPhase;
use support::*;

/// A tmpfs mounted on a directory; unmounted (lazily, so even while busy) when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("mount");
        assert!(
            out.status.success(),
            "mount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the file system is full; returns how many bytes it took.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("filler");
    let chunk = vec![0x5a_u8; 16 * 1024];
    let mut written = 0;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(28), "{e}");
                break;
            }
        }
    }
    // What is left of a page: small writes.
    while let Ok(n) = f.write(&chunk[..64]) {
        if n == 0 {
            break;
        }
        written += n as u64;
    }
    let _ = f.sync_all();
    written
}

fn pod_names(c: &TestCluster) -> Vec<String> {
    let text = c.ctl_ok(&["get", "pods", "-o", "name"]);
    let mut names: Vec<String> = text.lines().map(str::to_string).collect();
    names.sort();
    names
}

/// A pod whose process carries `marker`, with a 64 KiB annotation: sled writes into segments
/// it has already allocated, so small pods would take thousands of applies to need more.
fn marked(name: &str, marker: &str) -> String {
    // The marker is the script's $0: an argument of its own, as `marked_copies` looks for.
    let yaml = pod_yaml(name, "100m", "while true; do sleep 1; done").replacen(
        "\"]\n",
        &format!("\", \"{marker}\"]\n"),
        1,
    );
    let ballast = "x".repeat(64 * 1024);
    yaml.replacen(
        "  labels:\n",
        &format!("  annotations:\n    ballast: {ballast}\n  labels:\n"),
        1,
    )
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_refuses_changes_shows_only_saved_state_and_loses_nothing_on_restart() {
    if !is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root: this test mounts a tmpfs"
        );
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let mut c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "8")]).await;
    let id = c.id.clone();
    let marker = |pod: &str| format!("fulldisk-{id}-{pod}");
    c.apply(&marked("kept", &marker("kept")));
    c.wait_pod_phase("kept", PodPhase::Running, secs(60)).await;

    // The store moves onto a small tmpfs, as it was.
    assert!(c.stop_server_gracefully(), "{}", c.log_tail());
    let store = c.data_dir.join("store");
    let before = c.data_dir.join("store.before");
    std::fs::rename(&store, &before).unwrap();
    std::fs::create_dir(&store).unwrap();
    let tmpfs = Tmpfs::mount(&store, "24m");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", before.display()))
        .arg(&store)
        .status()
        .unwrap();
    assert!(cp.success());
    c.restart_server().await;
    c.wait_pod_phase("kept", PodPhase::Running, secs(60)).await;

    // Fill it, then apply until kube9d refuses (sled may still have room in a page).
    let filler = store.join("filler");
    fill(&filler);
    let mut acknowledged = vec!["pod/kept".to_string()];
    let mut refused = None;
    for i in 0..200 {
        let name = format!("p{i}");
        let out = c.ctl_stdin(&["apply", "-f", "-"], Some(&marked(&name, &marker(&name))));
        if out.status.success() {
            acknowledged.push(format!("pod/{name}"));
            continue;
        }
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            stderr.contains("could not be written") && stderr.contains("No space left on device"),
            "{stderr}"
        );
        assert!(stderr.contains("ResourceExhausted"), "{stderr}");
        refused = Some(name);
        break;
    }
    let refused = refused.expect("a full store refused no apply");
    acknowledged.sort();

    // The refused pod is not listed, not found, not running; a second try is refused again,
    // not `AlreadyExists`.
    assert_eq!(pod_names(&c), acknowledged);
    let get = c.ctl(&["get", "pod", &refused]);
    assert!(!get.status.success());
    assert!(String::from_utf8_lossy(&get.stderr).contains("not found"));
    let again = c.ctl_stdin(
        &["apply", "-f", "-"],
        Some(&marked(&refused, &marker(&refused))),
    );
    let again_err = String::from_utf8_lossy(&again.stderr).into_owned();
    assert!(
        !again.status.success() && again_err.contains("could not be written"),
        "{again_err}"
    );

    // A refused delete hides nothing and stops nothing.
    let del = c.ctl(&["delete", "pod", "kept"]);
    let del_err = String::from_utf8_lossy(&del.stderr).into_owned();
    assert!(
        !del.status.success() && del_err.contains("could not be written"),
        "{del_err}"
    );
    assert_eq!(pod_names(&c), acknowledged);
    assert_eq!(c.pod("kept").await.phase(), PodPhase::Running);

    // A snapshot can still be taken, to move the state off the full disk.
    let saved = c.data_dir.join("saved.snapshot");
    let out = c.ctl(&["snapshot", "save", saved.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Settle: nothing refused runs, what was kept still runs.
    tokio::time::sleep(secs(3)).await;
    assert_eq!(marked_copies(&marker(&refused)), 0, "the refused pod runs");
    assert_eq!(marked_copies(&marker("kept")), 1);
    let shown = pod_names(&c);

    // Space freed, kube9d restarted: exactly the same pods, and writes work again.
    c.kill_server();
    std::fs::remove_file(&filler).unwrap();
    c.restart_server().await;
    assert_eq!(pod_names(&c), shown, "{}", c.log_tail());
    assert_eq!(c.pod("kept").await.phase(), PodPhase::Running);
    c.ctl_ok(&["delete", "pod", "kept"]);
    c.apply(&marked(&refused, &marker(&refused)));
    c.wait_pod_phase(&refused, PodPhase::Running, secs(60))
        .await;
    c.assert_cpu_invariant().await;

    c.kill_server();
    kill_cluster_processes(&c.id);
    drop(tmpfs);
    c.finish().await;
}
