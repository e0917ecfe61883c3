//! Watching and waiting on a real cluster (nodes as processes): `kube9ctl get -w`, a list's
//! resourceVersion followed by a watch from it, `kube9ctl wait --for=...`, `apply --wait`.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kube9_proto::pb::{self, PodPhase};
use serde_json::Value;
use support::*;

/// One test at a time: process pods of clusters running side by side can share a pod uid,
/// and a pod deleted in one must not take a watched pod of another down with it.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A spawned kube9ctl whose stdout is read on a thread.
struct Spawned<T> {
    child: Child,
    rx: mpsc::Receiver<T>,
}

impl<T> Spawned<T> {
    /// The next item, or panics after `timeout`.
    fn next(&mut self, timeout: Duration, what: &str) -> T {
        match self.rx.recv_timeout(timeout) {
            Ok(item) => item,
            Err(e) => {
                let _ = self.child.kill();
                let out = self.child.wait_with_output_ref();
                panic!("no {what} within {timeout:?} ({e}); stderr: {out}");
            }
        }
    }
}

impl<T> Drop for Spawned<T> {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

trait StderrOf {
    fn wait_with_output_ref(&mut self) -> String;
}

impl StderrOf for Child {
    fn wait_with_output_ref(&mut self) -> String {
        use std::io::Read;
        let _ = self.wait();
        let mut text = String::new();
        if let Some(err) = self.stderr.as_mut() {
            let _ = err.read_to_string(&mut text);
        }
        text
    }
}

/// kube9ctl `args`, each JSON document it prints sent as it comes.
fn spawn_json(c: &TestCluster, args: &[&str]) -> Spawned<Value> {
    let mut child = c
        .ctl_command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kube9ctl");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for value in serde_json::Deserializer::from_reader(out).into_iter::<Value>() {
            match value {
                Ok(v) => {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    });
    Spawned { child, rx }
}

/// kube9ctl `args`, each line it prints sent as it comes.
fn spawn_lines(c: &TestCluster, args: &[&str]) -> Spawned<String> {
    let mut child = c
        .ctl_command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kube9ctl");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    Spawned { child, rx }
}

/// Waits for a spawned kube9ctl to exit, or kills it and panics after `timeout`.
fn exit_within(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "kube9ctl still runs after {timeout:?}: {}",
                child.wait_with_output_ref()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn version(doc: &Value) -> u64 {
    doc["metadata"]["resourceVersion"]
        .as_str()
        .expect("metadata.resourceVersion")
        .parse()
        .expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_prints_each_change_of_a_pod_in_order() {
    let _serial = SERIAL.lock().await;
    let c = TestCluster::start(Options::process()).await;
    // No node yet: the pod waits Pending until one comes.
    let job = pod_yaml("job", "100m", "sleep 2; exit 0")
        .replace("spec:\n", "spec:\n  restartPolicy: Never\n");
    c.apply(&job);
    let mut objects = spawn_json(&c, &["get", "pods", "-w", "-o", "json"]);
    let mut events = spawn_json(
        &c,
        &[
            "get",
            "pod",
            "job",
            "--watch",
            "-o",
            "json",
            "--output-watch-events",
        ],
    );
    // The list comes first: the pod as it is now.
    let first = objects.next(secs(10), "listed pod");
    assert_eq!(first["kind"], "Pod", "{first}");
    assert_eq!(first["metadata"]["name"], "job");
    assert_eq!(first["status"]["phase"], "Pending");
    let first_event = events.next(secs(10), "listed pod event");
    assert_eq!(first_event["type"], "ADDED", "{first_event}");
    assert_eq!(first_event["object"]["metadata"]["name"], "job");

    c.healthy_nodes(&[("n1", "4")]).await;
    let mut phases: Vec<String> = vec!["Pending".into()];
    let mut last = version(&first);
    while phases.last().map(String::as_str) != Some("Succeeded") {
        let Ok(doc) = objects.rx.recv_timeout(secs(60)) else {
            let _ = objects.child.kill();
            panic!(
                "no pod change within 60 s after {phases:?}; pods now:\n{}\nkube9ctl: {}\n{}",
                c.ctl_ok(&["get", "pods", "-o", "wide"]),
                objects.child.wait_with_output_ref(),
                c.log_tail()
            );
        };
        assert_eq!(doc["metadata"]["name"], "job", "{doc}");
        let v = version(&doc);
        assert!(v > last, "versions increase: {v} after {last}");
        last = v;
        let phase = doc["status"]["phase"].as_str().unwrap().to_string();
        if phases.last() != Some(&phase) {
            phases.push(phase);
        }
    }
    let at = |p: &str| phases.iter().position(|x| x == p);
    let (pending, running, succeeded) = (at("Pending"), at("Running"), at("Succeeded"));
    assert!(
        pending < running && running < succeeded && running.is_some(),
        "{phases:?}"
    );
    // The same changes, wrapped as watch events.
    let mut types = vec![];
    loop {
        let ev = events.next(secs(30), "pod change event");
        types.push(ev["type"].as_str().unwrap().to_string());
        if ev["object"]["status"]["phase"] == "Succeeded" {
            break;
        }
    }
    assert!(types.iter().all(|t| t == "MODIFIED"), "{types:?}");

    // A table: the header and row first, then a row per change (deletion here).
    let mut table = spawn_lines(&c, &["get", "pods", "-w"]);
    let header = table.next(secs(10), "header");
    assert!(header.starts_with("NAME"), "{header}");
    let row = table.next(secs(10), "row");
    assert!(
        row.starts_with("job ") && row.contains("Completed"),
        "{row}"
    );
    c.ctl_ok(&["delete", "pod", "job"]);
    let row = table.next(secs(30), "row of the deleted pod");
    assert!(row.starts_with("job "), "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_list_version_sees_a_change_made_between_the_two() {
    let _serial = SERIAL.lock().await;
    use futures::StreamExt;
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "4")]).await;
    c.apply(&pod_yaml("before", "100m", "sleep 1000"));
    c.wait_pod_phase("before", PodPhase::Running, secs(30))
        .await;
    let mut client = c.client().await;
    let list = client
        .list_pods(pb::ListPodsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(list.resource_version > 0);
    for pod in &list.pods {
        assert!(pod.resource_version > 0 && pod.resource_version <= list.resource_version);
    }
    // Made after the list, before the watch starts.
    c.apply(&pod_yaml("between", "100m", "sleep 1000"));
    let mut stream = client
        .watch(pb::WatchRequest {
            kinds: vec!["Pod".into()],
            resource_version: list.resource_version,
        })
        .await
        .unwrap()
        .into_inner();
    let ev = tokio::time::timeout(secs(10), stream.next())
        .await
        .expect("the change made between list and watch is replayed")
        .unwrap()
        .unwrap();
    assert_eq!(ev.r#type(), pb::WatchEventType::Added);
    assert!(ev.resource_version > list.resource_version);
    match ev.object {
        Some(pb::watch_event::Object::Pod(p)) => {
            assert_eq!(p.name, "between");
            assert_eq!(p.resource_version, ev.resource_version);
        }
        other => panic!("a pod, got {other:?}"),
    }
    // Nothing about "before" from before the list is repeated: every later event is newer.
    let mut last = ev.resource_version;
    while let Ok(Some(Ok(ev))) = tokio::time::timeout(secs(2), stream.next()).await {
        assert!(ev.resource_version > last);
        last = ev.resource_version;
    }
    // kube9ctl shows the versions.
    let pod = c.ctl_json(&["get", "pod", "between"]);
    assert!(version(&pod) > list.resource_version, "{pod}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_returns_when_the_condition_is_met_and_fails_at_the_timeout() {
    let _serial = SERIAL.lock().await;
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "4")]).await;
    c.apply(&pod_yaml("web", "100m", "sleep 1000"));
    let out = c.ctl(&["wait", "--for=condition=Ready", "pod/web", "--timeout=60s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "pod/web condition met\n");
    let pod = c.pod("web").await;
    assert!(pod.ready && pod.phase() == PodPhase::Running, "{pod:?}");
    let out = c.ctl(&[
        "wait",
        "--for=jsonpath={.status.phase}=Running",
        "pods",
        "-l",
        "app=test",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "pod/web condition met\n");

    // Too big for any node: never Ready.
    c.apply(&pod_yaml("big", "64", "sleep 1000"));
    let started = Instant::now();
    let out = c.ctl(&["wait", "--for=condition=Ready", "pod/big", "--timeout=2s"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        stderr(&out),
        "error: timed out waiting for the condition on pods/big\n"
    );
    assert!(started.elapsed() < secs(15), "{:?}", started.elapsed());
    // A pod that does not exist cannot become ready.
    let out = c.ctl(&["wait", "--for=condition=Ready", "pod/nope", "--timeout=2s"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_delete_returns_once_the_pod_is_gone() {
    let _serial = SERIAL.lock().await;
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "4")]).await;
    c.apply(&pod_yaml("doomed", "100m", "sleep 1000"));
    c.wait_pod_phase("doomed", PodPhase::Running, secs(30))
        .await;
    let mut waiting = spawn_lines(&c, &["wait", "--for=delete", "pod/doomed", "--timeout=60s"]);
    // Still there: the wait goes on.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(waiting.child.try_wait().unwrap().is_none());
    let out = c.ctl(&["delete", "pod", "doomed", "--wait=false"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = waiting.next(secs(60), "condition met");
    assert_eq!(line, "pod/doomed condition met");
    assert!(exit_within(&mut waiting.child, secs(10)).success());
    // Already gone: at once.
    let out = c.ctl(&["wait", "--for=delete", "pod/doomed", "--timeout=5s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "pod/doomed condition met\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_wait_returns_once_the_applied_pods_are_ready() {
    let _serial = SERIAL.lock().await;
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "4")]).await;
    let manifest = format!(
        "{}---\n{}",
        pod_yaml("a1", "100m", "sleep 1000"),
        pod_yaml("a2", "100m", "sleep 1000")
    );
    let out = c.ctl_stdin(
        &["apply", "-f", "-", "--wait", "--timeout=60s"],
        Some(&manifest),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "pod/a1 created",
        "pod/a2 created",
        "pod/a1 ready",
        "pod/a2 ready",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in {text}");
    }
    // Piped: plain lines, no progress line drawn with escapes.
    assert!(!stderr(&out).contains('\r'), "{}", stderr(&out));
    for name in ["a1", "a2"] {
        let pod = c.pod(name).await;
        assert!(pod.ready && pod.phase() == PodPhase::Running, "{pod:?}");
    }
    // A pod no node fits: the wait gives up at the timeout and says so.
    let out = c.ctl_stdin(
        &["apply", "-f", "-", "--wait", "--timeout=2s"],
        Some(&pod_yaml("huge", "64", "sleep 1000")),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("pod/huge created"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("error: timed out waiting for pod/huge to become ready"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_only_prints_just_new_changes_in_scope() {
    let _serial = SERIAL.lock().await;
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "4")]).await;
    c.apply(&pod_yaml("old", "100m", "sleep 1000"));
    c.wait_pod_phase("old", PodPhase::Running, secs(30)).await;
    let mut pods = spawn_lines(&c, &["get", "pods", "-A", "-l", "app=web", "--watch-only"]);
    let mut events = spawn_lines(&c, &["get", "events", "--watch-only", "-o", "name"]);
    let mut named = spawn_lines(
        &c,
        &[
            "get",
            "pods",
            "--watch-only",
            "--field-selector",
            "metadata.name=web",
            "-o",
            "name",
        ],
    );
    // Let the watches start: what came before is not printed.
    std::thread::sleep(Duration::from_millis(1500));
    c.apply(&pod_yaml("other", "100m", "sleep 1000"));
    c.apply(&pod_yaml("web", "100m", "sleep 1000").replace("app: test", "app: web"));
    let header = pods.next(secs(10), "header");
    assert!(
        header.starts_with("NAMESPACE") && header.contains("NAME"),
        "{header}"
    );
    let row = pods.next(secs(10), "row");
    assert!(row.starts_with("default") && row.contains(" web "), "{row}");
    let event = events.next(secs(10), "event");
    assert!(event.starts_with("event/"), "{event}");
    // Only web's changes follow, never old's or other's.
    while let Ok(row) = pods.rx.recv_timeout(Duration::from_millis(1500)) {
        assert!(row.contains(" web "), "{row}");
    }
    // The field selector holds under watch too.
    assert_eq!(named.next(secs(10), "named"), "pod/web");
    while let Ok(row) = named.rx.recv_timeout(Duration::from_millis(500)) {
        assert_eq!(row, "pod/web");
    }
}
