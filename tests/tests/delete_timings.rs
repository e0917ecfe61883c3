//! "1,000 pods deleted and gone" on process nodes: measured and printed, never asserted
//! (speed is tracked in BENCHMARKS.md, not in timed tests). Run with
//! `cargo test -p kube9-e2e --test delete_timings -- --ignored --nocapture --test-threads 1`
//! (`DELETE_PODS`, default 1000, sets the number of pods; `TIMING_RUNS`, default 3, the runs).
//!
//! Each run starts a cluster with one process node (30 missed heartbeats fail it, not 2),
//! applies the pods 100 at a time, waits until every one is Running, then times `kube9ctl delete pods --all` and, in a second batch,
//! `kube9ctl delete pod NAME...` with every name: from the command's start to its exit, which
//! is when kube9d saw every pod gone (the agent stopped its processes); then checks none is
//! left.

mod support;

use kube9_proto::pb;
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
    let t0 = Instant::now();
    // A hundred at a time: a thousand process starts at once starve the agent's heartbeats.
    for batch in manifest.chunks(100) {
        c.apply(&batch.join("---\n"));
        wait_running(c, t0).await;
    }
    assert_eq!(c.pods().await.len(), n);
    println!("{n} pods Running after {:.1} s", t0.elapsed().as_secs_f64());
    names
}

/// Until every pod is Running.
async fn wait_running(c: &TestCluster, t0: Instant) {
    // Asked once a second, and only for a pod not Running yet: polling the whole list would
    // compete with the pods' start for the two cores.
    let mut client = c.client().await;
    loop {
        let not_running = pb::ListPodsRequest {
            field_selector: "status.phase!=Running".into(),
            limit: 1,
            ..Default::default()
        };
        let page = client.list_pods(not_running).await.unwrap().into_inner();
        if page.pods.is_empty() {
            break;
        }
        assert!(
            t0.elapsed() < secs(1800),
            "pods still not Running: {:?}",
            page.pods[0].name
        );
        tokio::time::sleep(secs(1)).await;
    }
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
        // Slow heartbeats under the load of starting pods do not fail the node.
        let c = TestCluster::start(Options::process().arg("--missed-heartbeats=30")).await;
        c.healthy_nodes(&[("n1", "8")]).await;
        running_pods(&c, "a", n).await;
        let took = timed(&c, &["delete", "pods", "--all"]);
        assert!(c.pods().await.is_empty());
        println!("run {run}: delete pods --all, {n} pods: {took:.2} s");
        if let Ok(dir) = std::env::var("DELETE_LOGS") {
            // Where the time went: kube9d's and the agent's logs of the run.
            let _ = std::fs::copy(c.data_dir.join("kube9d.log"), format!("{dir}/kube9d.log"));
            let agent = c.data_dir.join("nodes/n1/agent.log");
            let _ = std::fs::copy(agent, format!("{dir}/agent.log"));
        }
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
