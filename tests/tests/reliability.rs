//! Nodes that come back: a node whose agent left (SIGTERM) rejoins when started again, and a
//! kube9d started with `--nodes N` starts the ones that left; a loopback `--listen` that Docker
//! nodes could never reach is refused at start.

mod support;

use std::process::{Command, Stdio};

use kube9_proto::pb::NodeStatus;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube9d_with_nodes_starts_again_the_nodes_that_left() {
    let mut c = TestCluster::start(Options::process().arg("--nodes").arg("2")).await;
    c.wait_node_status("node-1", NodeStatus::Healthy, secs(30))
        .await;
    c.wait_node_status("node-2", NodeStatus::Healthy, secs(30))
        .await;
    let instance = c.node("node-1").await.instance_id;
    let pid: i32 = c.node("node-1").await.runtime.unwrap().id.parse().unwrap();
    // The agent is stopped as a shutdown would: it leaves.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let node = c
        .wait_node_status("node-1", NodeStatus::Left, secs(10))
        .await;
    assert!(node.reason.contains("agent left"), "{}", node.reason);
    // kube9d started again with the same size brings it back: same node, same instance.
    c.restart_server().await;
    let node = c
        .wait_node_status("node-1", NodeStatus::Healthy, secs(30))
        .await;
    assert_eq!(node.instance_id, instance);
    assert_eq!(c.nodes().await.len(), 2);
    c.finish().await;
}

#[test]
fn a_loopback_listen_with_docker_nodes_is_refused_with_the_reason() {
    let dir = std::env::temp_dir().join(format!("kube9-loopback-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(bin("kube9d"))
        .args([
            "--runtime",
            "docker",
            "--listen",
            "127.0.0.1:0",
            "--nodes",
            "1",
        ])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("KUBE9_CONFIG", dir.join("config"))
        .stdin(Stdio::null())
        .output()
        .expect("run kube9d");
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "kube9d started: {err}");
    assert!(
        err.contains("Docker nodes cannot reach") && err.contains("--runtime process"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_name_delete_rides_out_a_kube9d_restart() {
    let mut c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "4")]).await;
    // Pods that ignore SIGTERM: each delete waits out its grace period.
    let script = "trap '' TERM; while true; do sleep 0.2; done";
    let names = ["d1", "d2", "d3"];
    let manifest: Vec<String> = names.iter().map(|n| pod_yaml(n, "100m", script)).collect();
    c.apply(&manifest.join("---\n"));
    for n in names {
        c.wait_pod_phase(n, kube9_proto::pb::PodPhase::Running, secs(30))
            .await;
    }
    let child = c
        .ctl_command()
        .args(["delete", "pod", "d1", "d2", "d3", "--grace-period", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // kube9d dies while the first delete waits, and comes back a little later.
    tokio::time::sleep(secs(1)).await;
    c.restart_server_after(secs(2)).await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    for n in names {
        assert!(
            stdout.contains(&format!("pod \"{n}\" deleted")),
            "{stdout}\n{stderr}"
        );
    }
    assert!(
        stderr.contains("kube9d is unreachable; retrying"),
        "{stderr}"
    );
    assert!(c.pods().await.is_empty());
    c.finish().await;
}
