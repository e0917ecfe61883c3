//! Backup, restore and a damaged store, end to end: `kube9ctl snapshot save` from a running
//! kube9d, `kube9d snapshot restore` into a new data directory, a second kube9d on it serving
//! the same objects; snapshot files that are cut or altered, viewers, and a store damaged on
//! disk.

mod support;

use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kube9_proto::pb;
use serde_json::Value;
use support::*;
use tonic::Code;

const OBJECTS: &str = "apiVersion: v1
kind: Namespace
metadata: {name: prod}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: game, namespace: prod}
data: {lives: \"3\", mode: easy}
---
apiVersion: v1
kind: Secret
metadata: {name: db, namespace: prod}
stringData: {password: hunter2-very-secret}
";

/// A directory of this test's own, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "kube9-snapshot-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `kube9d ARGS` to its end (it must not serve), with what it printed.
fn kube9d(args: &[&str], dir: &Path) -> Output {
    let mut child = Command::new(bin("kube9d"))
        .args(args)
        .env("KUBE9_CONFIG", dir.join("client-config"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kube9d");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "kube9d {args:?} still runs after 60 s:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The objects of `get KIND -A -o json`, without what changes as a cluster runs (pod status,
/// resource versions).
fn objects(c: &TestCluster, kind: &str) -> Vec<Value> {
    let list = c.ctl_json(&["get", kind, "-A"]);
    let mut items = list["items"].as_array().cloned().unwrap_or_default();
    for item in &mut items {
        if kind == "pods" {
            item.as_object_mut().unwrap().remove("status");
        }
        if let Some(metadata) = item["metadata"].as_object_mut() {
            metadata.remove("resourceVersion");
        }
    }
    items
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| {
            let m = &i["metadata"];
            format!(
                "{}/{}",
                m["namespace"].as_str().unwrap_or(""),
                m["name"].as_str().unwrap()
            )
        })
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_restored_into_a_new_data_directory_serves_the_same_objects() {
    let mut c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "2")]).await;
    c.apply(OBJECTS);
    c.apply(&pod_yaml("web", "100m", "sleep 1000"));
    c.wait_pod_phase("web", pb::PodPhase::Running, secs(30))
        .await;
    let viewer = c
        .ctl_ok(&["token", "create", "--role", "viewer"])
        .trim()
        .to_string();
    let before: Vec<_> = ["namespaces", "configmaps", "secrets", "pods"]
        .iter()
        .map(|kind| objects(&c, kind))
        .collect();
    assert_eq!(names(&before[1]), ["prod/game"]);
    assert_eq!(names(&before[2]), ["prod/db"]);

    let backups = TempDir::new("files");
    let file = backups.join("cluster.snapshot");
    let path = file.to_str().unwrap();
    let out = c.ctl_ok(&["snapshot", "save", path]);
    assert!(
        out.starts_with(&format!("Snapshot saved at {path} (")) && out.contains(" objects, "),
        "{out}"
    );
    assert!(out.contains("Secret(s) are sealed"), "{out}");
    assert_eq!(mode(&file), 0o600);
    let saved = std::fs::read(&file).unwrap();
    assert!(saved.starts_with(b"kube9-snapshot 1\n"));
    assert!(
        !saved
            .windows(b"hunter2-very-secret".len())
            .any(|w| w == b"hunter2-very-secret"),
        "a Secret's value is in the snapshot in the clear"
    );
    // Never over an existing file.
    let again = c.ctl(&["snapshot", "save", path]);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("already exists"), "{again:?}");
    assert_eq!(std::fs::read(&file).unwrap(), saved);

    // The first cluster is gone; its data directory's key is all that is kept besides the file.
    c.kill_server();
    kill_cluster_processes(&c.id);
    let restored = TempDir::new("restored");
    std::fs::copy(c.data_dir.join("secret.key"), restored.join("secret.key")).unwrap();
    let dir = restored.0.to_str().unwrap();
    let out = kube9d(
        &["snapshot", "restore", path, "--data-dir", dir],
        &restored.0,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("objects into") && said.contains("open with"),
        "{said}"
    );
    // A second restore into it is refused: it holds a store now.
    let out = kube9d(
        &["snapshot", "restore", path, "--data-dir", dir],
        &restored.0,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already holds a store"),
        "{}",
        text(&out.stderr)
    );

    let key = restored.join("secret.key");
    let opts = Options::process()
        .arg("--secret-key-file")
        .arg(key.to_str().unwrap());
    let c2 = TestCluster::start_with_store(opts, &restored.join("store"), &c.cluster_id).await;
    let after: Vec<_> = ["namespaces", "configmaps", "secrets", "pods"]
        .iter()
        .map(|kind| objects(&c2, kind))
        .collect();
    assert_eq!(after, before, "namespaces, configmaps, secrets, pods");
    let secret = c2.ctl_json(&["get", "secret", "db", "-n", "prod"]);
    assert_eq!(
        secret["data"]["password"],
        kube9_proto::base64::encode(b"hunter2-very-secret")
    );
    let nodes: Vec<String> = c2.nodes().await.into_iter().map(|n| n.name).collect();
    assert_eq!(nodes, ["n1"]);
    // Its node was the first kube9d's process: this one starts it again, and the pod with it.
    let deadline = Instant::now() + secs(60);
    while !c2
        .events()
        .await
        .iter()
        .any(|e| e.reason == "NodeRecovered")
    {
        assert!(
            Instant::now() < deadline,
            "n1 not recovered:\n{}",
            c2.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + secs(60);
    while !c2.pod("web").await.ready {
        assert!(
            Instant::now() < deadline,
            "web not ready:\n{}",
            c2.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Tokens come along (their hashes are in the store).
    c2.client_with_token(Some(&viewer))
        .await
        .list_pods(pb::ListPodsRequest::default())
        .await
        .expect("the viewer token works on the restored cluster");
    c2.finish().await;
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_or_altered_snapshots_are_refused_and_viewers_cannot_take_one() {
    let c = TestCluster::start(Options::process()).await;
    c.apply(OBJECTS);
    let files = TempDir::new("bad");

    // A viewer may read Secrets' names, not take the store.
    let viewer = c
        .ctl_ok(&["token", "create", "--role", "viewer"])
        .trim()
        .to_string();
    let denied = files.join("viewer.snapshot");
    let out = c
        .ctl_command()
        .args(["snapshot", "save", denied.to_str().unwrap()])
        .env("KUBE9_TOKEN", &viewer)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Error from server (PermissionDenied)")
            && text(&out.stderr).contains("may not call Snapshot"),
        "{}",
        text(&out.stderr)
    );
    assert!(!denied.exists(), "nothing written for a refused call");
    let mut call = c.client_with_token(Some(&viewer)).await;
    let e = call.snapshot(pb::SnapshotRequest {}).await.err().unwrap();
    assert_eq!(e.code(), Code::PermissionDenied);

    let file = files.join("good.snapshot");
    c.ctl_ok(&["snapshot", "save", file.to_str().unwrap()]);
    let bytes = std::fs::read(&file).unwrap();
    let cut = files.join("cut.snapshot");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let altered = files.join("altered.snapshot");
    std::fs::write(&altered, &flipped).unwrap();
    for bad in [&cut, &altered] {
        let target = TempDir::new("target");
        let out = kube9d(
            &[
                "snapshot",
                "restore",
                bad.to_str().unwrap(),
                "--data-dir",
                target.0.to_str().unwrap(),
            ],
            &target.0,
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("cannot be restored")
                && err.contains("checksum does not match")
                && err.contains("nothing was written"),
            "{err}"
        );
        assert!(!target.join("store").exists(), "nothing written");
    }
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_store_stops_kube9d_with_one_sentence_and_exit_code_3() {
    let mut c = TestCluster::start(Options::process()).await;
    c.apply(OBJECTS);
    c.apply(&pod_yaml("web", "100m", "sleep 1000"));
    assert!(c.stop_server_gracefully(), "{}", c.log_tail());
    let copy = TempDir::new("damaged");
    copy_dir(&c.data_dir.join("store"), &copy.join("store"));
    // 64 random bytes at offset 100 of sled's file.
    let noise: Vec<u8> = (0..64u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let db = std::fs::OpenOptions::new()
        .write(true)
        .open(copy.join("store").join("db"))
        .unwrap();
    db.write_all_at(&noise, 100).unwrap();
    drop(db);

    let dir = copy.0.to_str().unwrap();
    let args = [
        "--data-dir",
        dir,
        "--listen",
        "127.0.0.1:0",
        "--runtime",
        "process",
        "--cluster-id",
        &c.cluster_id,
    ];
    for _ in 0..2 {
        let out = kube9d(&args, &copy.0);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        let sentence = err
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("no error line:\n{err}"));
        assert!(
            sentence.starts_with(&format!("error: the store in {dir} is damaged (")),
            "{sentence}"
        );
        assert!(
            sentence.ends_with(&format!(
                "restore a snapshot with `kube9d snapshot restore FILE --data-dir {dir}`, \
                 or move {dir} aside to start an empty cluster"
            )),
            "{sentence}"
        );
        assert!(!copy.join("kube9d.port").exists(), "it never served");
    }
    c.finish().await;
}
