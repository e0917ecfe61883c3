//! The failure path, for both runtimes, by fault injection: stopped heartbeats, a crashed node,
//! a failed component, a partition and a deregistration. Each test checks the node's status
//! sequence (from its events), that every pod ends Running exactly once on a healthy node (or
//! Pending with a reason when nothing fits), and the CPU invariant.

mod support;

use kube9_proto::pb::{NodeStatus, PodPhase};
use support::*;

/// A pod whose shell carries a marker, so its copies can be counted in /proc (Docker
/// containers' processes are visible there too).
fn marked_pod(c: &TestCluster, name: &str, cpu: &str) -> String {
    let marker = format!("mark-{}-{name}", c.id);
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: main\n    image: {BUSYBOX}\n    imagePullPolicy: Never\n    command: [\"sh\", \"-c\", \"while true; do sleep 1; done\", \"{marker}\"]\n    resources:\n      requests:\n        cpu: \"{cpu}\"\n"
    )
}

/// Live processes whose command line carries the pod's marker.
fn copies(c: &TestCluster, pod: &str) -> usize {
    marked_copies(&format!("mark-{}-{pod}", c.id))
}

/// Waits until every pod runs exactly once, on a healthy node.
async fn all_running_once(c: &TestCluster, pods: &[&str]) {
    for p in pods {
        c.wait_for(
            &format!("{p} to run exactly once on a healthy node"),
            secs(45),
            || async {
                let pod = c.pod(p).await;
                if pod.phase() != PodPhase::Running {
                    return None;
                }
                // The pod and its node are two reads: a given-up node can be replaced (its
                // record gone for a moment) between them, after the pod moved away.
                let node = (c.nodes().await.into_iter()).find(|n| n.name == pod.node)?;
                (node.status() == NodeStatus::Healthy && copies(c, p) == 1).then_some(())
            },
        )
        .await;
    }
    c.assert_cpu_invariant().await;
}

/// The node's event reasons, oldest first.
async fn node_reasons(c: &TestCluster, node: &str) -> Vec<String> {
    c.events()
        .await
        .into_iter()
        .filter(|e| e.object_kind == "Node" && e.object_name == node)
        .map(|e| e.reason)
        .collect()
}

/// Waits until the node has had an event with `reason`.
async fn wait_node_event(c: &TestCluster, node: &str, reason: &str) {
    c.wait_for(&format!("{node}: {reason}"), secs(20), || async {
        node_reasons(c, node)
            .await
            .iter()
            .any(|r| r == reason)
            .then_some(())
    })
    .await;
}

/// The pod still runs the same copy: same node, same binding, same process.
fn assert_same_copy(before: &kube9_proto::pb::Pod, after: &kube9_proto::pb::Pod) {
    assert_eq!((&after.node, &after.uid), (&before.node, &before.uid));
    assert_eq!(
        after.containers[0].pid, before.containers[0].pid,
        "pod was restarted"
    );
}

fn assert_sequence(reasons: &[String], expected: &[&str]) {
    let mut it = reasons.iter();
    for want in expected {
        assert!(
            it.any(|r| r == want),
            "status sequence {expected:?} not found in {reasons:?}"
        );
    }
}

/// Two nodes, two pods on `n1` (best fit puts both there).
async fn two_nodes_two_pods(c: &TestCluster) {
    c.healthy_nodes(&[("n1", "2"), ("n2", "2")]).await;
    c.apply(&format!(
        "{}---\n{}",
        marked_pod(c, "a", "1"),
        marked_pod(c, "b", "500m")
    ));
    all_running_once(c, &["a", "b"]).await;
    assert_eq!(c.pod("a").await.node, "n1");
    assert_eq!(c.pod("b").await.node, "n1");
}

async fn recovers_after(runtime: Runtime, mode: &str, failed_because: &str) {
    let c = TestCluster::start(Options::of(runtime)).await;
    two_nodes_two_pods(&c).await;
    let started_before = c.pod("a").await.containers[0].started_ms;
    let containers_before = match runtime {
        Runtime::Docker => pod_containers(&c.id, "a").await,
        Runtime::Process => Vec::new(),
    };
    c.ctl_ok(&["node", "fail", "n1", "--mode", mode]);
    c.wait_for("NodeFailed with the reason", secs(20), || async {
        c.events().await.into_iter().find(|e| {
            e.object_name == "n1" && e.reason == "NodeFailed" && e.message.contains(failed_because)
        })
    })
    .await;
    c.wait_for("n1 to recover", secs(30), || async {
        node_reasons(&c, "n1")
            .await
            .iter()
            .any(|r| r == "NodeRecovered")
            .then_some(())
    })
    .await;
    assert_sequence(
        &node_reasons(&c, "n1").await,
        &["NodeReady", "NodeFailed", "NodeRecovering", "NodeRecovered"],
    );
    all_running_once(&c, &["a", "b"]).await;
    let a = c.pod("a").await;
    assert_eq!(a.node, "n1");
    assert_eq!(a.reschedules, 0);
    match (mode, runtime) {
        // The node's pods were processes in it: they started again with the node.
        ("crash", Runtime::Process) => assert!(
            a.containers[0].started_ms > started_before,
            "pod a was not restarted after the crash"
        ),
        // Pod containers outlive the node's agent: its new agent took them over.
        (_, Runtime::Docker) => {
            assert_eq!(pod_containers(&c.id, "a").await, containers_before);
            assert_eq!(a.containers[0].started_ms, started_before, "restarted");
        }
        _ => {}
    }
    assert!(c.node("n1").await.injected_fault.is_empty());
    c.finish().await;
}

async fn moves_pods_after_partition(runtime: Runtime) {
    let c = TestCluster::start(Options::of(runtime)).await;
    two_nodes_two_pods(&c).await;
    c.ctl_ok(&["node", "fail", "n1", "--mode", "partition"]);
    // Given up, reaped, then replaced: the status may pass too quickly to poll.
    c.wait_for("n1 to be given up", secs(45), || async {
        node_reasons(&c, "n1")
            .await
            .iter()
            .any(|r| r == "NodePermanentlyFailed")
            .then_some(())
    })
    .await;
    assert_sequence(
        &node_reasons(&c, "n1").await,
        &["NodeFailed", "NodeRecovering", "NodePermanentlyFailed"],
    );
    all_running_once(&c, &["a", "b"]).await;
    for p in ["a", "b"] {
        let pod = c.pod(p).await;
        assert_eq!(pod.node, "n2");
        assert_eq!(pod.reschedules, 1);
    }
    c.wait_for("n1 to be reaped", secs(20), || async {
        node_reasons(&c, "n1")
            .await
            .iter()
            .any(|r| r == "NodeReaped")
            .then_some(())
    })
    .await;
    // Capacity heals: n1 comes back as a fresh instance under its name, empty.
    wait_node_event(&c, "n1", "NodeReplaced").await;
    let n1 = c
        .wait_node_status("n1", NodeStatus::Healthy, secs(30))
        .await;
    assert!(n1.pods.is_empty() && n1.cpu_allocated_millis == 0, "{n1:?}");
    assert!(n1.injected_fault.is_empty(), "{n1:?}");
    all_running_once(&c, &["a", "b"]).await;
    assert_eq!(
        c.pod("a").await.node,
        "n2",
        "moved pods stay where they run"
    );
    c.assert_cpu_invariant().await;
    c.finish().await;
}

async fn moves_pods_after_deregistration(runtime: Runtime) {
    let c = TestCluster::start(Options::of(runtime)).await;
    c.healthy_nodes(&[("n1", "2"), ("n2", "1")]).await;
    // big can only fit n1; small fills n2 (best fit).
    c.apply(&format!(
        "{}---\n{}",
        marked_pod(&c, "big", "1500m"),
        marked_pod(&c, "small", "1")
    ));
    all_running_once(&c, &["big", "small"]).await;
    assert_eq!(c.pod("big").await.node, "n1");
    assert_eq!(c.pod("small").await.node, "n2");

    // The agent gets SIGTERM (docker stop, or a signal to the process) and says goodbye.
    let handle = c.node("n1").await.runtime.unwrap();
    match runtime {
        Runtime::Docker => {
            docker_stop(&handle.id).await;
        }
        Runtime::Process => {
            let pid = nix::unistd::Pid::from_raw(handle.id.parse().unwrap());
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        }
    }
    let n1 = c.wait_node_status("n1", NodeStatus::Left, secs(10)).await;
    assert!(n1.reason.contains("agent left"), "{}", n1.reason);
    // Nothing has room for big: it waits, with a reason, and is never dropped.
    let pod = c
        .wait_for("big to be pending with a reason", secs(10), || async {
            let p = c.pod("big").await;
            (p.phase() == PodPhase::Pending && p.reason.contains("free CPU")).then_some(p)
        })
        .await;
    assert!(
        pod.reason.contains("0/2 nodes have 1500m free CPU"),
        "{}",
        pod.reason
    );
    assert_eq!(
        copies(&c, "big"),
        0,
        "big still runs on the deregistered node"
    );
    c.assert_cpu_invariant().await;
    // Capacity appears: it is placed.
    c.create_node("n3", "2");
    all_running_once(&c, &["big", "small"]).await;
    assert_eq!(c.pod("big").await.node, "n3");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_node_recovers_after_heartbeats_stop() {
    recovers_after(Runtime::Process, "heartbeat", "missed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_node_recovers_after_heartbeats_stop() {
    recovers_after(Runtime::Docker, "heartbeat", "missed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_node_recovers_after_a_crash() {
    recovers_after(Runtime::Process, "crash", "exited").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_node_recovers_after_a_crash() {
    recovers_after(Runtime::Docker, "crash", "exited").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_node_recovers_after_a_component_fails() {
    recovers_after(Runtime::Process, "component=kubelet", "kubelet").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_node_recovers_after_a_component_fails() {
    recovers_after(
        Runtime::Docker,
        "component=container-runtime",
        "container-runtime",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_node_partition_moves_its_pods() {
    moves_pods_after_partition(Runtime::Process).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_node_partition_moves_its_pods() {
    moves_pods_after_partition(Runtime::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_node_deregistration_moves_its_pods() {
    moves_pods_after_deregistration(Runtime::Process).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_node_deregistration_moves_its_pods() {
    moves_pods_after_deregistration(Runtime::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_heartbeats_again_by_itself_keeps_its_pods() {
    // No recovery attempts are made in time (long backoff): the node comes back on its own.
    let c = TestCluster::start(
        Options::process()
            .arg("--recovery-backoff-ms")
            .arg("60000")
            .arg("--max-recovery-attempts")
            .arg("5"),
    )
    .await;
    two_nodes_two_pods(&c).await;
    let before = c.pod("a").await;
    c.ctl_ok(&["node", "fail", "n1", "--mode", "heartbeat"]);
    wait_node_event(&c, "n1", "NodeFailed").await;
    c.ctl_ok(&["node", "recover", "n1"]);
    c.wait_node_status("n1", NodeStatus::Healthy, secs(20))
        .await;
    assert_same_copy(&before, &c.pod("a").await);
    all_running_once(&c, &["a", "b"]).await;
    let describe = c.ctl_ok(&["describe", "node", "n1"]);
    assert!(
        describe.contains("NodeFailed") && describe.contains("NodeRecovered"),
        "{describe}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_cleanup_removes_a_failed_nodes_instance() {
    let c = TestCluster::start(
        Options::process()
            .arg("--no-node-replacement")
            .arg("--max-recovery-attempts")
            .arg("5")
            .arg("--recovery-backoff-ms")
            .arg("60000"),
    )
    .await;
    two_nodes_two_pods(&c).await;
    let pid: i32 = c.node("n1").await.runtime.unwrap().id.parse().unwrap();
    // A healthy node is refused.
    let out = c.ctl(&["node", "cleanup", "n2"]);
    assert_eq!(out.status.code(), Some(1));
    c.ctl_ok(&["node", "fail", "n1", "--mode", "heartbeat"]);
    wait_node_event(&c, "n1", "NodeFailed").await;
    c.ctl_ok(&["node", "cleanup", "n1"]);
    let n1 = c.node("n1").await;
    assert_eq!(n1.status(), NodeStatus::PermanentlyFailed);
    c.wait_for("n1's agent to be gone", secs(10), || async {
        (!process_alive(pid)).then_some(())
    })
    .await;
    all_running_once(&c, &["a", "b"]).await;
    assert_eq!(c.pod("a").await.node, "n2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_node_whose_container_is_removed_moves_its_pods() {
    let c = TestCluster::start(Options::docker().arg("--no-node-replacement")).await;
    two_nodes_two_pods(&c).await;
    let id = c.node("n1").await.runtime.unwrap().id;
    let opts = bollard::query_parameters::RemoveContainerOptionsBuilder::new()
        .force(true)
        .build();
    docker()
        .await
        .unwrap()
        .remove_container(&id, Some(opts))
        .await
        .unwrap();
    // The monitor may see the container mid-removal (killed, exit 137) before it is gone;
    // either way kube9d then finds no container to restart.
    c.wait_for("NodeFailed: container missing", secs(15), || async {
        c.events().await.into_iter().find(|e| {
            e.object_name == "n1"
                && e.reason == "NodeFailed"
                && (e.message.contains("container is missing")
                    || e.message.contains("no container or process for node n1"))
        })
    })
    .await;
    // Restarting a removed container fails: the node cannot come back, its pods move.
    let n1 = c
        .wait_node_status("n1", NodeStatus::PermanentlyFailed, secs(20))
        .await;
    assert!(
        n1.reason.contains("gave up after 2 recovery attempts"),
        "{}",
        n1.reason
    );
    assert!(node_reasons(&c, "n1")
        .await
        .iter()
        .any(|r| r == "RecoveryFailed"));
    all_running_once(&c, &["a", "b"]).await;
    assert_eq!(c.pod("a").await.node, "n2");
    assert_eq!(c.pod("b").await.node, "n2");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovering_a_healthy_node_changes_nothing_and_typos_are_refused() {
    let c = TestCluster::start(Options::process()).await;
    two_nodes_two_pods(&c).await;
    let before = c.pod("a").await.containers[0].pid;
    assert_eq!(
        c.ctl_ok(&["node", "recover", "n1"]).trim(),
        "node/n1 is healthy"
    );
    // A component the node does not have is a typo, not a fault to inject.
    let out = c.ctl(&["node", "fail", "n1", "--mode", "component=kubelt"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no component \"kubelt\""));
    assert!(c.node("n1").await.injected_fault.is_empty());
    assert_eq!(c.pod("a").await.containers[0].pid, before);
    assert!(process_alive(before));
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_briefly_partitioned_docker_node_heals_and_keeps_its_pods() {
    // Recovery waits long enough for the partition to heal first.
    let opts = Options::docker().arg("--recovery-backoff-ms").arg("30000");
    let c = TestCluster::start(opts).await;
    two_nodes_two_pods(&c).await;
    let before = c.pod("a").await;
    let ip = c.node("n1").await.runtime.unwrap().ip;
    c.ctl_ok(&["node", "fail", "n1", "--mode", "partition"]);
    wait_node_event(&c, "n1", "NodeFailed").await;
    c.ctl_ok(&["node", "recover", "n1"]);
    c.wait_node_status("n1", NodeStatus::Healthy, secs(20))
        .await;
    let reasons = node_reasons(&c, "n1").await;
    assert!(
        !reasons.iter().any(|r| r == "RecoveryAttempt"),
        "the node was restarted: {reasons:?}"
    );
    assert_eq!(
        c.node("n1").await.runtime.unwrap().ip,
        ip,
        "the node came back with another address"
    );
    assert_same_copy(&before, &c.pod("a").await);
    all_running_once(&c, &["a", "b"]).await;
    c.finish().await;
}

/// Milliseconds since the Unix epoch (kube9d's event and heartbeat times are in these).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The fence time of the fencing tests, and timings that give a silent node up long before it
/// ends (about a second after its last heartbeat).
const FENCE_MS: i64 = 8000;

fn fencing_cluster() -> Options {
    Options::process()
        .arg(&format!("--node-fence-ms={FENCE_MS}"))
        .arg("--heartbeat-interval-ms=200")
        .arg("--max-recovery-attempts=1")
        .arg("--recovery-backoff-ms=100")
        .arg("--recovery-timeout-ms=500")
}

/// A hand-joined node `edge` running the marked pod `a`, and a node `n2` with room for it.
async fn a_pod_on_a_hand_joined_node(c: &TestCluster) -> std::process::Child {
    let agent = hand_started_agent(c, "edge", &c.data_dir.join("edge"), &[]);
    c.wait_node_status("edge", NodeStatus::Healthy, secs(30))
        .await;
    c.apply(&marked_pod(c, "a", "1"));
    all_running_once(c, &["a"]).await;
    assert_eq!(c.pod("a").await.node, "edge");
    c.healthy_nodes(&[("n2", "2")]).await;
    agent
}

/// When kube9d moved `pod` off its node (its `PodRescheduled` event), by kube9d's clock, give
/// or take the few milliseconds between its monotonic and its wall clock readings.
async fn rescheduled_at(c: &TestCluster, pod: &str) -> i64 {
    let event = c
        .events()
        .await
        .into_iter()
        .find(|e| e.object_name == pod && e.reason == "PodRescheduled")
        .unwrap_or_else(|| panic!("{pod} was not rescheduled"));
    event.time_ms + 5
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_hand_joined_nodes_pods_move_only_once_its_fence_time_has_passed() {
    use nix::sys::signal::{kill, Signal};
    let c = TestCluster::start(fencing_cluster()).await;
    let mut agent = a_pod_on_a_hand_joined_node(&c).await;
    let pid = nix::unistd::Pid::from_raw(agent.id() as i32);

    // The agent freezes: no heartbeats, and no fencing either.
    kill(pid, Signal::SIGSTOP).unwrap();
    let edge = c
        .wait_node_status("edge", NodeStatus::PermanentlyFailed, secs(30))
        .await;
    let fence_ends = edge.last_heartbeat_ms + FENCE_MS;
    assert!(
        now_ms() < fence_ends - 2000,
        "given up too late to see the pod wait"
    );
    // Given up, but kube9d cannot remove the node: the pod stays bound to it.
    wait_node_event(&c, "edge", "AwaitingFence").await;
    let pod = c.ctl_json(&["get", "pod", "a"]);
    assert_eq!(pod["spec"]["nodeName"], "edge", "{pod}");
    assert!(now_ms() < fence_ends, "too slow to check before the fence");
    // Once the fence time has passed since its last heartbeat, it moves.
    c.wait_for("a to run on n2", secs(30), || async {
        let pod = c.ctl_json(&["get", "pod", "a"]);
        (pod["spec"]["nodeName"] == "n2" && pod["status"]["phase"] == "Running").then_some(())
    })
    .await;
    assert!(
        rescheduled_at(&c, "a").await >= fence_ends,
        "moved before the fence time had passed"
    );
    kill(pid, Signal::SIGKILL).unwrap();
    agent.wait().unwrap();
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_joined_agent_cut_off_from_kube9d_fences_itself_and_its_pod_never_runs_twice() {
    let c = TestCluster::start(fencing_cluster()).await;
    let mut agent = a_pod_on_a_hand_joined_node(&c).await;
    let old = c.pod("a").await.containers[0].pid;

    // kube9d refuses the agent's stream: it is alive, and cut off.
    c.ctl_ok(&["node", "fail", "edge", "--mode", "partition"]);
    c.wait_for("a to run on n2, once", secs(45), || async {
        let copies = copies(&c, "a");
        assert!(copies <= 1, "a runs {copies} times");
        let pod = c.pod("a").await;
        (pod.node == "n2" && pod.phase() == PodPhase::Running && copies == 1).then_some(())
    })
    .await;
    assert!(!process_alive(old), "the fenced copy still runs");
    let log = std::fs::read_to_string(c.data_dir.join("agent-edge.log")).unwrap();
    assert!(
        log.contains("fenced: no contact with kube9d for"),
        "the agent did not fence:\n{log}"
    );
    let edge = c.node("edge").await;
    assert_eq!(edge.status(), NodeStatus::PermanentlyFailed);
    assert!(rescheduled_at(&c, "a").await >= edge.last_heartbeat_ms + FENCE_MS);
    all_running_once(&c, &["a"]).await;
    let _ = agent.kill();
    let _ = agent.wait();
    c.finish().await;
}
