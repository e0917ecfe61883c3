//! `kube9-node --simulate N` against a real kube9d: the simulated nodes join with the join
//! token and CA as hand-joined agents do, take pods and report them Running, fail when a
//! fault is injected, and their pods move by the normal lifecycle.

mod support;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};

use kube9_proto::pb::{self, NodeStatus, PodPhase};
use support::*;

/// Simulated nodes in this test.
const NODES: usize = 20;
/// Pods applied: 300m each, 13 fit a 4-core node, so best fit must use at least 16 nodes.
const PODS: usize = 200;

/// The simulating process, killed when the test ends however it ends.
struct Simulator(Child);

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_simulator(c: &TestCluster) -> Simulator {
    let log = std::fs::File::create(c.data_dir.join("simulate.log")).expect("log file");
    let mut cmd = Command::new(bin("kube9-node"));
    for var in CLIENT_VARS {
        cmd.env_remove(var);
    }
    // `--cluster-id <id>` first: how the harness finds (and kills) the cluster's agents.
    cmd.args(["--cluster-id", &c.cluster_id, "--server", &c.server])
        .args([
            "--simulate",
            &NODES.to_string(),
            "--simulate-prefix",
            "sim-",
        ])
        .args(["--cpu-millis", "4000", "--simulate-memory", "8Gi"])
        .arg("--token-file")
        .arg(c.join_token_file())
        .arg("--ca-file")
        .arg(c.ca_file())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    Simulator(cmd.spawn().expect("start kube9-node --simulate"))
}

fn pods_manifest() -> String {
    (0..PODS)
        .map(|i| {
            format!(
                "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: sim-pod-{i}\nspec:\n  containers:\n  - name: main\n    image: busybox\n    resources:\n      requests:\n        cpu: 300m\n"
            )
        })
        .collect()
}

/// Waits until all `PODS` pods are Running on nodes other than `avoid`; returns pod → node.
async fn all_running_off(c: &TestCluster, avoid: &[String]) -> HashMap<String, String> {
    let what = format!("{PODS} pods Running off {avoid:?}");
    c.wait_for(&what, secs(90), || async {
        let pods = c.pods().await;
        let done = pods.len() == PODS
            && pods
                .iter()
                .all(|p| p.phase() == PodPhase::Running && !avoid.contains(&p.node));
        done.then(|| pods.into_iter().map(|p| (p.name, p.node)).collect())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_nodes_run_pods_fail_and_their_pods_move() {
    // Short failure handling, so a silent node is given up within seconds: a node the
    // runtime does not own moves its pods a fence time after its last heartbeat.
    let c = TestCluster::start(
        Options::process()
            .arg("--max-recovery-attempts")
            .arg("1")
            .arg("--recovery-timeout-ms")
            .arg("1000")
            .arg("--recovery-backoff-ms")
            .arg("100")
            .arg("--node-fence-ms")
            .arg("6000"),
    )
    .await;
    let mut simulator = start_simulator(&c);

    let healthy = c
        .wait_for(
            &format!("{NODES} healthy simulated nodes"),
            secs(60),
            || async {
                let nodes = c.nodes().await;
                let healthy: Vec<pb::Node> = nodes
                    .into_iter()
                    .filter(|n| n.status() == NodeStatus::Healthy && n.name.starts_with("sim-"))
                    .collect();
                (healthy.len() == NODES).then_some(healthy)
            },
        )
        .await;
    for node in &healthy {
        assert_eq!(node.cpu_capacity_millis, 4000, "{}", node.name);
        assert_eq!(node.memory_capacity_bytes, 8 << 30, "{}", node.name);
    }

    c.apply(&pods_manifest());
    let placed = all_running_off(&c, &[]).await;
    let used: HashSet<&String> = placed.values().collect();
    assert!(
        used.len() >= 16,
        "{PODS} pods of 300m need at least 16 four-core nodes, got {used:?}"
    );
    assert!(used.iter().all(|n| n.starts_with("sim-")));
    c.assert_cpu_invariant().await;
    // Reported by the agent as a real one reports: ready, with the binding's uid.
    let one = c.pod("sim-pod-0").await;
    assert!(one.ready, "{one:?}");

    // Two faults as kube9d injects them into a node it does not own: heartbeats stop on one,
    // a critical component fails on the other.
    let mut by_load: Vec<(usize, String)> = used
        .iter()
        .map(|n| (placed.values().filter(|m| m == n).count(), n.to_string()))
        .collect();
    by_load.sort();
    let silent = by_load.pop().unwrap().1;
    let broken = by_load.pop().unwrap().1;
    c.ctl_ok(&["node", "fail", &silent, "--mode", "heartbeat"]);
    c.ctl_ok(&["node", "fail", &broken, "--mode", "component=kubelet"]);
    for node in [&silent, &broken] {
        c.wait_node_status(node, NodeStatus::PermanentlyFailed, secs(60))
            .await;
    }
    let failed = [silent.clone(), broken.clone()];
    let moved = all_running_off(&c, &failed).await;
    for (pod, node) in &placed {
        if failed.contains(node) {
            assert_ne!(&moved[pod], node, "{pod} did not move");
        }
    }
    c.assert_cpu_invariant().await;
    // Failed first, for the reason the fault gives, by the normal lifecycle.
    let events = c.events().await;
    let failed_for = |node: &str, why: &str| {
        events
            .iter()
            .any(|e| e.object_name == node && e.reason == "NodeFailed" && e.message.contains(why))
    };
    assert!(failed_for(&silent, "missed"), "{silent}: {events:?}");
    assert!(
        failed_for(&broken, "component kubelet failed"),
        "{broken}: {events:?}"
    );

    // SIGTERM: every simulated node that still serves deregisters, as a real agent does.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(simulator.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = simulator.0.wait().unwrap();
    assert!(
        status.success(),
        "kube9-node --simulate exited with {status}"
    );
    c.wait_for(
        "the healthy simulated nodes to have left",
        secs(30),
        || async {
            let nodes = c.nodes().await;
            nodes
                .iter()
                .filter(|n| !failed.contains(&n.name))
                .all(|n| n.status() == NodeStatus::Left)
                .then_some(())
        },
    )
    .await;
    drop(simulator);
    c.finish().await;
}
