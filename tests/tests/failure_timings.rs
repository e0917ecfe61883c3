//! Failure timings with the default settings: measured and printed, never asserted (speed is
//! tracked in BENCHMARKS.md, not in timed tests). Run with
//! `cargo test -p kube9-e2e --test failure_timings -- --ignored --nocapture --test-threads 1`
//! (`TIMING_RUNS`, default 5, sets the runs per scenario).

mod support;

use kube9_proto::pb::{self, FailureMode, NodeStatus, PodPhase};
use support::*;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Kill the container or process; the node can come back.
    Crash,
    /// Stop heartbeats; the node can come back.
    Heartbeat,
    /// A lasting partition: the node cannot come back.
    Partition,
    /// Docker only: the container is removed; the node cannot come back.
    Removed,
}

/// One run: returns (failure -> NodeFailed event, failure -> every pod Running again).
async fn one_run(runtime: Runtime, fault: Fault) -> (i64, i64) {
    let c = TestCluster::start(Options::of(runtime)).await;
    c.healthy_nodes(&[("n1", "2"), ("n2", "2")]).await;
    c.apply(&format!(
        "{}---\n{}",
        pod_yaml("a", "1", "sleep 1000"),
        pod_yaml("b", "500m", "sleep 1000")
    ));
    c.wait_pod_phase("a", PodPhase::Running, secs(30)).await;
    c.wait_pod_phase("b", PodPhase::Running, secs(30)).await;
    let mut client = c.client().await;
    let t0 = now_ms();
    match (fault, runtime) {
        (Fault::Crash, _) => {
            let req = pb::SimulateNodeFailureRequest {
                name: "n1".into(),
                mode: FailureMode::Crash as i32,
                ..Default::default()
            };
            client.simulate_node_failure(req).await.unwrap();
        }
        (Fault::Heartbeat, _) => {
            let req = pb::SimulateNodeFailureRequest {
                name: "n1".into(),
                mode: FailureMode::Heartbeat as i32,
                ..Default::default()
            };
            client.simulate_node_failure(req).await.unwrap();
        }
        (Fault::Removed, _) => {
            let id = c.node("n1").await.runtime.unwrap().id;
            let docker = docker().await.unwrap();
            let opts = bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                .force(true)
                .build();
            docker.remove_container(&id, Some(opts)).await.unwrap();
        }
        (Fault::Partition, _) => {
            let req = pb::SimulateNodeFailureRequest {
                name: "n1".into(),
                mode: FailureMode::Partition as i32,
                ..Default::default()
            };
            client.simulate_node_failure(req).await.unwrap();
        }
    }
    let detected = c
        .wait_for("NodeFailed", secs(30), || async {
            c.events()
                .await
                .into_iter()
                .find(|e| e.object_name == "n1" && e.reason == "NodeFailed")
                .map(|e| e.time_ms)
        })
        .await;
    let running = c
        .wait_for("pods Running again", secs(60), || async {
            let pods = c.pods().await;
            let nodes = c.nodes().await;
            let healthy = |n: &str| {
                nodes
                    .iter()
                    .any(|x| x.name == n && x.status() == NodeStatus::Healthy)
            };
            pods.iter()
                .all(|p| {
                    p.phase() == PodPhase::Running
                        && healthy(&p.node)
                        && p.containers.iter().all(|k| k.started_ms >= t0)
                })
                .then(now_ms)
        })
        .await;
    (detected - t0, running - t0)
}

fn median(mut v: Vec<i64>) -> i64 {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement for BENCHMARKS.md; run explicitly"]
async fn failure_timings() {
    let runs: usize = std::env::var("TIMING_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    println!("\n| runtime | fault | failure -> detected (median) | failure -> pods Running (median) | runs |");
    println!("|---|---|---|---|---|");
    for runtime in [Runtime::Process, Runtime::Docker] {
        for fault in [
            Fault::Heartbeat,
            Fault::Crash,
            Fault::Partition,
            Fault::Removed,
        ] {
            if matches!((runtime, fault), (Runtime::Process, Fault::Removed)) {
                continue;
            }
            let mut det = vec![];
            let mut run = vec![];
            for _ in 0..runs {
                let (d, r) = one_run(runtime, fault).await;
                det.push(d);
                run.push(r);
            }
            println!(
                "| {runtime:?} | {fault:?} | {:.2} s | {:.2} s | {runs} (detected {det:?} ms, running {run:?} ms) |",
                median(det.clone()) as f64 / 1000.0,
                median(run.clone()) as f64 / 1000.0
            );
        }
    }
}
