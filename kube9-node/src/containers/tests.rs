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

/// A process supervisor whose pods run as the test's own user, so they can write where the
/// test reads (per-pod users: [`pods_of_a_root_agent_run_as_their_own_user`]).
fn supervisor() -> (Supervisor, mpsc::UnboundedReceiver<pb::PodStatus>, PathBuf) {
    let me = isolation::Identity {
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
    };
    isolated_supervisor(isolation::Isolation::new(isolation::Mode::AgentUser(me)))
}

fn isolated_supervisor(
    isolation: isolation::Isolation,
) -> (Supervisor, mpsc::UnboundedReceiver<pb::PodStatus>, PathBuf) {
    let state_dir = temp_state_dir();
    let config = SupervisorConfig {
        state_dir: state_dir.clone(),
        node_name: "test-node".into(),
        standin_program: PathBuf::from("/nonexistent/kube9-node"),
        engine: None,
        cluster_id: "test".into(),
        pod_network: None,
        eviction_interval: eviction::EVICTION_INTERVAL,
        log_limits: logs::LogLimits::default(),
    };
    let (supervisor, events) = Supervisor::with_isolation(config, isolation);
    (supervisor, events, state_dir)
}

/// A one-container pod that runs once (restartPolicy Never), as most tests here want.
fn pod(name: &str, command: &[&str]) -> pb::Pod {
    pb::Pod {
        name: name.into(),
        uid: format!("{name}-uid"),
        restart_policy: "Never".into(),
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
    let fetched = supervisor.fetch_logs("echo", "", 1, false).await.unwrap();
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

/// Waits until container `main` of `pod` has written `text` to its log.
async fn wait_for_log(state_dir: &std::path::Path, pod: &str, text: &str) {
    let log = logs::log_path(state_dir, pod, "main");
    let deadline = Instant::now() + DEADLINE;
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains(text)
    {
        assert!(Instant::now() < deadline, "{pod} never wrote {text:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A DeletePod without a grace period (a copy kube9d no longer wants, a pod it gave up on)
/// gives the pod its own `terminationGracePeriodSeconds`, not the agent's default (2 s).
#[tokio::test]
async fn a_delete_without_a_grace_period_gives_the_pod_its_own() {
    let (supervisor, mut events, state_dir) = supervisor();
    let mut spec = pod(
        "patient",
        &["sh", "-c", "trap '' TERM; echo ready; sleep 100"],
    );
    spec.termination_grace_period_seconds = Some(3);
    supervisor.run_pod(spec);
    let running = wait_for_status(&mut events, |s| s.phase() == PodPhase::Running).await;
    let pid = running.containers[0].pid;
    wait_for_log(&state_dir, "patient", "ready").await;

    let started = Instant::now();
    supervisor.delete_pod("patient", "", None).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(3), "took {took:?}");
    assert!(!process_exists(pid));
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
    wait_for_log(&state_dir, "stubborn", "ready").await;

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
    let work_dir = isolation::PodDirs::work(&logs::pod_dir(&state_dir, "envy"));
    assert_eq!(log, format!("envy test-node hi\n{}\n", work_dir.display()));
}

#[tokio::test]
async fn pods_of_a_root_agent_run_as_their_own_user() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let iso = isolation::Isolation::new(isolation::Mode::PerPod { base: 310_000 });
    let (supervisor, mut events, state_dir) = isolated_supervisor(iso);
    assert_eq!(
        supervisor.pod_isolation(),
        "pods run as uid 310000+ (one per pod)"
    );
    let script =
        "id -u; id -g; id -G; echo x > mine && cat mine; cat ../main.log || echo log-denied; \
                  setsid sleep 1000 &";
    supervisor.run_pod(pod("a", &["sh", "-c", script]));
    wait_for_status(&mut events, |s| s.phase() == PodPhase::Succeeded).await;
    let log = std::fs::read_to_string(logs::log_path(&state_dir, "a", "main")).unwrap();
    assert_eq!(
        log.lines().collect::<Vec<_>>()[..3],
        ["310000", "310000", "310000"],
        "{log}"
    );
    assert!(
        log.contains("x\n"),
        "the pod writes its own directory: {log}"
    );
    assert!(log.contains("log-denied"), "{log}");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(logs::log_path(&state_dir, "a", "main")).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600));

    // A second pod gets the next uid and sees nothing of the first.
    let spy =
        "id -u; ls ../../a/work || echo work-denied; cat ../../a/work/mine || echo file-denied";
    supervisor.run_pod(pod("b", &["sh", "-c", spy]));
    wait_for_status(&mut events, |s| {
        s.pod_name == "b" && s.phase() == PodPhase::Succeeded
    })
    .await;
    let log = std::fs::read_to_string(logs::log_path(&state_dir, "b", "main")).unwrap();
    assert!(log.starts_with("310001\n"), "{log}");
    assert!(
        log.contains("work-denied") && log.contains("file-denied"),
        "{log}"
    );

    // runAsUser 0 waits until kube9d allows it.
    let mut root = pod("r", &["sh", "-c", "id -u"]);
    root.containers[0].security_context = Some(pb::SecurityContext {
        run_as_user: Some(0),
        ..Default::default()
    });
    supervisor.run_pod(root);
    let waiting = wait_for_status(&mut events, |s| {
        s.pod_name == "r" && s.containers[0].reason == isolation::CONFIG_ERROR
    })
    .await;
    assert_eq!(waiting.containers[0].message, isolation::ROOT_REFUSED);

    // Deleted: its working directory goes, its uid is free again (after the others).
    let work = isolation::PodDirs::work(&logs::pod_dir(&state_dir, "a"));
    assert!(work.exists());
    assert_eq!(
        std::fs::metadata(&work).unwrap().permissions().mode() & 0o777,
        0o770
    );
    assert!(
        !isolation::processes_of(310_000).is_empty(),
        "the stray runs"
    );
    supervisor.delete_pod("a", "", DEFAULT_GRACE).await;
    assert!(!work.exists());
    // What left the pod's process groups went with it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(isolation::processes_of(310_000), Vec::<i32>::new());
    supervisor.stop_all(Duration::from_secs(2)).await;
    let _ = std::fs::remove_dir_all(&state_dir);
}

fn container(name: &str, script: &str) -> pb::Container {
    pb::Container {
        name: name.into(),
        image: "busybox".into(),
        command: vec!["sh".into(), "-c".into(), script.into()],
        ..Default::default()
    }
}

/// A supervisor whose crash-loop back-off is short enough for tests.
fn fast_supervisor() -> (Supervisor, mpsc::UnboundedReceiver<pb::PodStatus>, PathBuf) {
    let (supervisor, events, dir) = supervisor();
    supervisor.set_backoff(crate::kubelet::policy::Backoff {
        base: Duration::from_millis(50),
        max: Duration::from_millis(200),
        reset: Duration::from_secs(600),
    });
    (supervisor, events, dir)
}

#[tokio::test]
async fn restart_policy_always_restarts_with_back_off_and_keeps_the_previous_run() {
    let (supervisor, mut events, state_dir) = fast_supervisor();
    let mut spec = pod("loop", &[]);
    spec.restart_policy = "Always".into();
    spec.containers = vec![container("main", "echo run; exit 3")];
    supervisor.run_pod(spec);
    let crashing = wait_for_status(&mut events, |s| {
        s.containers[0].restarts >= 2 && s.containers[0].reason == "CrashLoopBackOff"
    })
    .await;
    assert_eq!(crashing.phase(), PodPhase::Running, "restarting is Running");
    assert_eq!(crashing.status_reason, "CrashLoopBackOff");
    let c = &crashing.containers[0];
    assert_eq!(c.state(), ContainerState::Waiting);
    let last = c.last_state.as_ref().expect("lastState");
    assert_eq!((last.exit_code, last.reason.as_str()), (3, "Error"));
    assert!(!crashing.ready);
    let previous = supervisor.fetch_logs("loop", "", 0, true).await.unwrap();
    assert_eq!(previous, b"run\n");
    supervisor.delete_pod("loop", "", DEFAULT_GRACE).await;
    let _ = state_dir;
}

/// A process supervisor whose containers' logs rotate at `max_size` bytes, two files each.
fn small_log_supervisor(
    max_size: u64,
) -> (Supervisor, mpsc::UnboundedReceiver<pb::PodStatus>, PathBuf) {
    let me = isolation::Identity {
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
    };
    let state_dir = temp_state_dir();
    let config = SupervisorConfig {
        state_dir: state_dir.clone(),
        node_name: "test-node".into(),
        standin_program: PathBuf::from("/nonexistent/kube9-node"),
        engine: None,
        cluster_id: "test".into(),
        pod_network: None,
        eviction_interval: eviction::EVICTION_INTERVAL,
        log_limits: logs::LogLimits {
            max_size,
            max_files: 2,
        },
    };
    let isolation = isolation::Isolation::new(isolation::Mode::AgentUser(me));
    let (supervisor, events) = Supervisor::with_isolation(config, isolation);
    (supervisor, events, state_dir)
}

#[tokio::test]
async fn a_container_writing_past_the_log_cap_keeps_two_bounded_files_and_its_newest_lines() {
    let (supervisor, mut events, state_dir) = small_log_supervisor(4096);
    supervisor.run_pod(pod(
        "chatty",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done",
        ],
    ));
    let status = wait_for_status(&mut events, |s| s.phase().is_terminal()).await;
    assert_eq!(status.phase(), PodPhase::Succeeded);
    let path = logs::log_path(&state_dir, "chatty", "main");
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    assert!(size(&path) > 0 && size(&path) <= 4096, "{}", size(&path));
    let rotated = logs::rotated_path(&path, 1);
    assert!(
        size(&rotated) > 0 && size(&rotated) <= 4096,
        "{}",
        size(&rotated)
    );
    assert!(!logs::rotated_path(&path, 2).exists(), "two files at most");
    let last = supervisor.fetch_logs("chatty", "", 2, false).await.unwrap();
    assert_eq!(last, b"line-2998\nline-2999\n");
    let all = supervisor.fetch_logs("chatty", "", 0, false).await.unwrap();
    assert!(all.len() as u64 > 4096, "the rotated file is read too");
    let _ = std::fs::remove_dir_all(&state_dir);
}

#[tokio::test]
async fn a_restart_keeps_the_previous_run_with_its_rotated_file_and_starts_a_fresh_log() {
    let (supervisor, mut events, state_dir) = small_log_supervisor(1024);
    supervisor.set_backoff(crate::kubelet::policy::Backoff {
        base: Duration::from_millis(50),
        max: Duration::from_millis(200),
        reset: Duration::from_secs(600),
    });
    let mut spec = pod("again", &[]);
    spec.restart_policy = "Always".into();
    let script = "i=0; while [ $i -lt 300 ]; do echo run-$i; i=$((i+1)); done; exit 1";
    spec.containers = vec![container("main", script)];
    supervisor.run_pod(spec);
    wait_for_status(&mut events, |s| s.containers[0].restarts >= 1).await;
    let previous = supervisor.fetch_logs("again", "", 1, true).await.unwrap();
    assert_eq!(previous, b"run-299\n");
    let path = logs::previous_log_path(&state_dir, "again", "main");
    assert!(logs::rotated_path(&path, 1).exists());
    supervisor.delete_pod("again", "", DEFAULT_GRACE).await;
    let _ = std::fs::remove_dir_all(&state_dir);
}

#[tokio::test]
async fn restart_policy_on_failure_stops_once_the_container_succeeds() {
    let (supervisor, mut events, state_dir) = fast_supervisor();
    let marker = state_dir.join("tried");
    let mut spec = pod("retry", &[]);
    spec.restart_policy = "OnFailure".into();
    spec.containers = vec![container(
        "main",
        &format!(
            "if [ -e {m} ]; then exit 0; fi; touch {m}; exit 1",
            m = marker.display()
        ),
    )];
    std::fs::create_dir_all(&state_dir).unwrap();
    supervisor.run_pod(spec);
    let done = wait_for_status(&mut events, |s| s.phase().is_terminal()).await;
    assert_eq!(done.phase(), PodPhase::Succeeded);
    assert_eq!(done.containers[0].restarts, 1);
    assert_eq!(done.status_reason, "Completed");
}

#[tokio::test]
async fn restart_policy_never_fails_the_pod_on_the_first_error() {
    let (supervisor, mut events, _) = fast_supervisor();
    let mut spec = pod("once", &[]);
    spec.containers = vec![container("main", "exit 4")];
    supervisor.run_pod(spec);
    let done = wait_for_status(&mut events, |s| s.phase().is_terminal()).await;
    assert_eq!(done.phase(), PodPhase::Failed);
    assert_eq!(done.containers[0].restarts, 0);
}

#[tokio::test]
async fn init_containers_run_in_order_to_completion_before_the_app_starts() {
    let (supervisor, mut events, state_dir) = fast_supervisor();
    let out = state_dir.join("order");
    std::fs::create_dir_all(&state_dir).unwrap();
    let mut spec = pod("inits", &[]);
    spec.restart_policy = "Always".into();
    spec.init_containers = vec![
        container("first", &format!("echo first >> {}", out.display())),
        container(
            "second",
            &format!("sleep 0.3; echo second >> {}", out.display()),
        ),
    ];
    spec.containers = vec![container(
        "app",
        &format!("echo app >> {}; sleep 100", out.display()),
    )];
    supervisor.run_pod(spec);
    let initializing = wait_for_status(&mut events, |s| s.status_reason == "Init:1/2").await;
    assert_eq!(initializing.phase(), PodPhase::Scheduled);
    let running = wait_for_status(&mut events, |s| s.phase() == PodPhase::Running && s.ready).await;
    assert!(running
        .init_containers
        .iter()
        .all(|c| c.exit_code == 0 && c.state() == ContainerState::Terminated));
    assert!(running.ready);
    // The app writes once it runs; Running is reported as it is spawned.
    let deadline = Instant::now() + DEADLINE;
    let mut order = String::new();
    while Instant::now() < deadline && !order.ends_with("app\n") {
        tokio::time::sleep(Duration::from_millis(20)).await;
        order = std::fs::read_to_string(&out).unwrap_or_default();
    }
    assert_eq!(order, "first\nsecond\napp\n");
    supervisor.delete_pod("inits", "", DEFAULT_GRACE).await;
}

#[tokio::test]
async fn a_failing_init_container_fails_the_pod_under_never_and_blocks_the_app() {
    let (supervisor, mut events, _) = fast_supervisor();
    let mut spec = pod("badinit", &[]);
    spec.init_containers = vec![container("setup", "exit 2")];
    spec.containers = vec![container("app", "echo should not run")];
    supervisor.run_pod(spec);
    let failed = wait_for_status(&mut events, |s| s.phase() == PodPhase::Failed).await;
    assert_eq!(failed.status_reason, "Init:Error");
    assert_eq!(failed.containers[0].state(), ContainerState::Waiting);
    assert!(
        failed.message.contains("init container setup"),
        "{}",
        failed.message
    );
}

fn exec_probe(script: &str, failures: u32) -> pb::Probe {
    pb::Probe {
        handler: Some(pb::probe::Handler::Exec(pb::ExecAction {
            command: vec!["sh".into(), "-c".into(), script.into()],
        })),
        period_seconds: 1,
        failure_threshold: failures,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_failing_liveness_probe_restarts_the_container() {
    let (supervisor, mut events, state_dir) = fast_supervisor();
    std::fs::create_dir_all(&state_dir).unwrap();
    let alive = state_dir.join("alive");
    std::fs::write(&alive, "").unwrap();
    let mut spec = pod("live", &[]);
    spec.restart_policy = "Always".into();
    let mut c = container("main", "sleep 100");
    c.liveness_probe = Some(exec_probe(&format!("test -e {}", alive.display()), 1));
    spec.containers = vec![c];
    supervisor.run_pod(spec);
    wait_for_status(&mut events, |s| s.ready).await;
    std::fs::remove_file(&alive).unwrap();
    let restarted = wait_for_status(&mut events, |s| {
        s.containers[0].restarts == 1 && s.containers[0].state() == ContainerState::Running
    })
    .await;
    let last = restarted.containers[0].last_state.clone().unwrap();
    assert!(
        last.message.starts_with("liveness probe failed"),
        "{last:?}"
    );
    supervisor.delete_pod("live", "", DEFAULT_GRACE).await;
}

#[tokio::test]
async fn a_readiness_probe_decides_whether_the_pod_is_ready() {
    let (supervisor, mut events, state_dir) = fast_supervisor();
    std::fs::create_dir_all(&state_dir).unwrap();
    let flag = state_dir.join("ready");
    let mut spec = pod("ready", &["sleep", "100"]);
    spec.containers[0].readiness_probe =
        Some(exec_probe(&format!("test -e {}", flag.display()), 1));
    supervisor.run_pod(spec);
    let running = wait_for_status(&mut events, |s| s.phase() == PodPhase::Running).await;
    assert!(!running.ready && !running.containers[0].ready);
    std::fs::write(&flag, "").unwrap();
    wait_for_status(&mut events, |s| s.ready && s.containers[0].ready).await;
    std::fs::remove_file(&flag).unwrap();
    let unready = wait_for_status(&mut events, |s| !s.ready).await;
    assert_eq!(
        unready.phase(),
        PodPhase::Running,
        "not ready is not restarted"
    );
    assert_eq!(unready.containers[0].restarts, 0);
    supervisor.delete_pod("ready", "", DEFAULT_GRACE).await;
}

#[tokio::test]
async fn an_evicted_pod_is_killed_not_restarted_and_stays_failed_until_deleted() {
    let (supervisor, mut events, _) = supervisor();
    let mut spec = pod("evictee", &["sleep", "100"]);
    spec.restart_policy = "Always".into();
    supervisor.run_pod(spec.clone());
    let running = wait_for_status(&mut events, |s| s.phase() == PodPhase::Running).await;
    let pid = running.containers[0].pid;
    assert!(supervisor
        .evict("evictee", "other-uid", "x".into())
        .is_none());

    let message = eviction::message("cache", 1 << 20);
    let evicted = supervisor.evict("evictee", "evictee-uid", message.clone());
    assert!(
        supervisor
            .evict("evictee", "evictee-uid", "again".into())
            .is_none(),
        "evicted once"
    );
    tokio::time::timeout(DEADLINE, evicted.unwrap())
        .await
        .unwrap();
    assert!(!process_exists(pid));
    let status = wait_for_status(&mut events, |s| s.phase().is_terminal()).await;
    assert_eq!(status.phase(), PodPhase::Failed);
    assert_eq!(status.status_reason, "Evicted");
    assert_eq!(status.message, message);
    assert!(!status.ready);
    let c = &status.containers[0];
    assert_eq!(c.state(), ContainerState::Terminated);
    assert_eq!((c.exit_code, c.reason.as_str()), (137, "Evicted"));
    // Nothing restarts it, and it stays listed as evicted (also when kube9d sends it again).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(events.try_recv().is_err(), "nothing after the final status");
    assert_eq!(supervisor.snapshot(), std::slice::from_ref(&status));
    supervisor.run_pod(spec);
    assert_eq!(wait_for_status(&mut events, |_| true).await, status);

    supervisor
        .delete_pod("evictee", "evictee-uid", DEFAULT_GRACE)
        .await;
    let deleted = wait_for_status(&mut events, |_| true).await;
    assert!(deleted.deleted, "{deleted:?}");
    assert!(supervisor.snapshot().is_empty());
}
