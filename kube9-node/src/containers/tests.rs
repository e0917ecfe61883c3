//! Supervisor tests with real processes (sh, sleep) and the real reaper.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kube9_proto::pb::{self, ContainerState, PodPhase};
use tokio::sync::mpsc;

use super::*;

const DEADLINE: Duration = Duration::from_secs(10);

fn temp_state_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("kube9-node-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn supervisor() -> (Supervisor, mpsc::UnboundedReceiver<pb::PodStatus>, PathBuf) {
    let state_dir = temp_state_dir();
    let (supervisor, events) = Supervisor::new(SupervisorConfig {
        state_dir: state_dir.clone(),
        node_name: "test-node".into(),
        standin_program: PathBuf::from("/nonexistent/kube9-node"),
    });
    (supervisor, events, state_dir)
}

fn pod(name: &str, command: &[&str]) -> pb::Pod {
    pb::Pod {
        name: name.into(),
        uid: format!("{name}-uid"),
        containers: vec![pb::Container {
            name: "main".into(),
            image: "busybox".into(),
            command: command.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The next status update matching `pred`, within the deadline.
async fn wait_for_status(
    events: &mut mpsc::UnboundedReceiver<pb::PodStatus>,
    pred: impl Fn(&pb::PodStatus) -> bool,
) -> pb::PodStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(status)) if pred(&status) => return status,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("status channel closed"),
            Err(_) => panic!("no matching status within {DEADLINE:?}"),
        }
    }
}

fn process_exists(pid: i32) -> bool {
    // Zombies are reaped by the reaper, so a live /proc entry means a live process.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}

#[tokio::test]
async fn a_failing_container_reports_its_exit_code_and_logs_both_streams() {
    let (supervisor, mut events, state_dir) = supervisor();
    supervisor.run_pod(pod(
        "echo",
        &["sh", "-c", "echo hello; echo oops >&2; exit 3"],
    ));
    let status = wait_for_status(&mut events, |s| s.phase() == PodPhase::Failed).await;
    let container = &status.containers[0];
    assert_eq!(container.state(), ContainerState::Terminated);
    assert_eq!(container.exit_code, 3);
    assert!(container.finished_ms >= container.started_ms);
    let log = std::fs::read_to_string(logs::log_path(&state_dir, "echo", "main")).unwrap();
    assert!(log.contains("hello\n"), "log: {log:?}");
    assert!(log.contains("oops\n"), "log: {log:?}");
    let fetched = supervisor.fetch_logs("echo", "", 1).await.unwrap();
    assert_eq!(fetched.len(), 5, "one of the two lines: {fetched:?}");
}

#[tokio::test]
async fn a_container_that_exits_zero_makes_the_pod_succeed() {
    let (supervisor, mut events, _) = supervisor();
    supervisor.run_pod(pod("ok", &["true"]));
    let status = wait_for_status(&mut events, |s| s.phase().is_terminal()).await;
    assert_eq!(status.phase(), PodPhase::Succeeded);
}

#[tokio::test]
async fn a_missing_command_exits_127_with_a_message() {
    let (supervisor, mut events, state_dir) = supervisor();
    supervisor.run_pod(pod("missing", &["/definitely/not/here"]));
    let status = wait_for_status(&mut events, |s| s.phase() == PodPhase::Failed).await;
    let container = &status.containers[0];
    assert_eq!(container.exit_code, 127);
    assert!(
        container.message.contains("/definitely/not/here"),
        "{}",
        container.message
    );
    let log = std::fs::read_to_string(logs::log_path(&state_dir, "missing", "main")).unwrap();
    assert!(log.contains("failed to start"), "log: {log:?}");
}

#[tokio::test]
async fn deleting_a_pod_terminates_its_process_within_the_grace_period() {
    let (supervisor, mut events, _) = supervisor();
    supervisor.run_pod(pod("sleeper", &["sleep", "100"]));
    let running = wait_for_status(&mut events, |s| s.phase() == PodPhase::Running).await;
    let pid = running.containers[0].pid;
    assert!(pid > 0 && process_exists(pid));

    let started = Instant::now();
    supervisor
        .delete_pod("sleeper", "sleeper-uid", Duration::from_secs(5))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert!(!process_exists(pid));
    let deleted = wait_for_status(&mut events, |s| s.deleted).await;
    assert_eq!(deleted.pod_name, "sleeper");
    assert!(supervisor.snapshot().is_empty());
}

#[tokio::test]
async fn a_process_ignoring_sigterm_is_killed_after_the_grace_period() {
    let (supervisor, mut events, state_dir) = supervisor();
    supervisor.run_pod(pod(
        "stubborn",
        &["sh", "-c", "trap '' TERM; echo ready; sleep 100"],
    ));
    let running = wait_for_status(&mut events, |s| s.phase() == PodPhase::Running).await;
    let pid = running.containers[0].pid;
    // SIGTERM must not arrive before the trap is set.
    let log = logs::log_path(&state_dir, "stubborn", "main");
    let deadline = Instant::now() + DEADLINE;
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(Instant::now() < deadline, "the container never got ready");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let started = Instant::now();
    supervisor
        .delete_pod("stubborn", "", Duration::from_millis(300))
        .await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300), "took {took:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(!process_exists(pid));
}

#[tokio::test]
async fn running_the_same_binding_twice_only_resends_its_status() {
    let (supervisor, mut events, _) = supervisor();
    let spec = pod("twice", &["sleep", "100"]);
    supervisor.run_pod(spec.clone());
    let first = wait_for_status(&mut events, |s| s.phase() == PodPhase::Running).await;
    supervisor.run_pod(spec);
    let again = wait_for_status(&mut events, |_| true).await;
    assert_eq!(again.containers[0].pid, first.containers[0].pid);
    supervisor.stop_all(Duration::from_secs(2)).await;
    assert!(!process_exists(first.containers[0].pid));
}

#[tokio::test]
async fn a_new_binding_replaces_the_old_one() {
    let (supervisor, mut events, _) = supervisor();
    let mut spec = pod("moved", &["sleep", "100"]);
    supervisor.run_pod(spec.clone());
    let first = wait_for_status(&mut events, |s| s.phase() == PodPhase::Running).await;
    spec.uid = "second".into();
    supervisor.run_pod(spec);
    let second = wait_for_status(&mut events, |s| {
        s.pod_uid == "second" && s.phase() == PodPhase::Running
    })
    .await;
    assert_ne!(second.containers[0].pid, first.containers[0].pid);
    assert!(!process_exists(first.containers[0].pid));
    assert_eq!(supervisor.snapshot().len(), 1);
    supervisor.stop_all(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn deleting_an_unknown_pod_still_reports_it_deleted() {
    let (supervisor, mut events, _) = supervisor();
    supervisor.delete_pod("ghost", "u1", DEFAULT_GRACE).await;
    let deleted = wait_for_status(&mut events, |s| s.deleted).await;
    assert_eq!(
        (deleted.pod_name.as_str(), deleted.pod_uid.as_str()),
        ("ghost", "u1")
    );
}

#[tokio::test]
async fn containers_see_the_pod_environment() {
    let (supervisor, mut events, state_dir) = supervisor();
    let mut spec = pod(
        "envy",
        &["sh", "-c", "echo $HOSTNAME $KUBE9_NODE_NAME $GREETING; pwd"],
    );
    spec.config_items.push(pb::ConfigItem {
        name: "GREETING".into(),
        kind: "env".into(),
        value: "hi".into(),
    });
    supervisor.run_pod(spec);
    wait_for_status(&mut events, |s| s.phase() == PodPhase::Succeeded).await;
    let log = std::fs::read_to_string(logs::log_path(&state_dir, "envy", "main")).unwrap();
    let pod_dir = logs::pod_dir(&state_dir, "envy");
    assert_eq!(log, format!("envy test-node hi\n{}\n", pod_dir.display()));
}
