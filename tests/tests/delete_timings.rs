//! "1,000 pods deleted and gone" on process nodes: measured and printed, never asserted
//! (speed is tracked in BENCHMARKS.md, not in timed tests). Run with
//! `cargo test -p kube9-e2e --test delete_timings -- --ignored --nocapture --test-threads 1`
//! (`DELETE_PODS`, default 1000, sets the number of pods; `TIMING_RUNS`, default 3, the runs).
//!
//! Each run starts a cluster with one process node, applies the pods in one manifest, waits
//! until every one is Running, then times `kube9ctl delete pods --all` and, in a second batch,
//! `kube9ctl delete pod NAME...` with every name: from the command's start to its exit, which
//! is when kube9d saw every pod gone (the agent stopped its processes); then checks none is
//! left.

mod support;

use kube9_proto::pb::PodPhase;
use std::time::Instant;
use support::*;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn running_pods(c: &TestCluster, prefix: &str, n: usize) -> Vec<String> {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i:04}")).collect();
    let manifest: Vec<String> = names
        .iter()
        .map(|p| pod_yaml(p, "1m", "sleep 100000"))
        .collect();
    c.apply(&manifest.join("---\n"));
    c.wait_for("every pod Running", secs(600), || async {
        let pods = c.pods().await;
        (pods.len() == n && pods.iter().all(|p| p.phase() == PodPhase::Running)).then_some(())
    })
    .await;
    names
}

fn timed(c: &TestCluster, args: &[&str]) -> f64 {
    let t0 = Instant::now();
    let out = c.ctl(args);
    let took = t0.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement for BENCHMARKS.md; run explicitly"]
async fn delete_timings() {
    let n = env_or("DELETE_PODS", 1000);
    let runs = env_or("TIMING_RUNS", 3);
    let (mut all, mut named) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let c = TestCluster::start(Options::process()).await;
        c.healthy_nodes(&[("n1", "8")]).await;
        running_pods(&c, "a", n).await;
        let took = timed(&c, &["delete", "pods", "--all"]);
        assert!(c.pods().await.is_empty());
        println!("run {run}: delete pods --all, {n} pods: {took:.2} s");
        all.push(took);

        let names = running_pods(&c, "b", n).await;
        let mut args = vec!["delete", "pod"];
        args.extend(names.iter().map(String::as_str));
        let took = timed(&c, &args);
        assert!(c.pods().await.is_empty());
        println!("run {run}: delete pod NAME x{n}: {took:.2} s");
        named.push(took);
        c.finish().await;
    }
    println!(
        "median of {runs}: delete pods --all {:.2} s, delete pod NAME... {:.2} s ({n} pods)",
        median(all),
        median(named)
    );
}
