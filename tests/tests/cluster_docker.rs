//! Nodes as Docker containers: real containers per node, whose agents run each pod as
//! containers from its image beside the node (through the engine's socket), the container
//! monitor, deregistration on `docker stop`, node deletion and adoption after a kube9d
//! restart. Docker is required: a missing engine fails these tests.

mod support;

use std::collections::HashMap;

use kube9_proto::pb::{NodeStatus, PodPhase};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_nodes_run_their_pods_as_containers_beside_them() {
    let c = TestCluster::start(Options::docker()).await;
    c.healthy_nodes(&[("d1", "2"), ("d2", "2"), ("d3", "4")])
        .await;

    let docker = docker().await.unwrap();
    let containers = list_containers(&docker, &c.id).await;
    assert_eq!(containers.len(), 3, "one container per node");
    let wide = c.ctl_ok(&["get", "nodes", "-o", "wide"]);
    for n in c.nodes().await {
        let rt = n.runtime.clone().unwrap();
        assert_eq!(rt.kind, "docker");
        assert!(
            containers.contains(&rt.id),
            "node {} points at an unknown container",
            n.name
        );
        assert_eq!(rt.container_name, format!("{}-{}", c.id, n.name));
        assert!(!rt.ip.is_empty());
        assert!(
            wide.contains(&rt.ip),
            "get nodes -o wide does not show {}:\n{wide}",
            rt.ip
        );
    }
    let describe = c.ctl_ok(&["describe", "node", "d1"]);
    assert!(
        describe.contains(&c.node("d1").await.runtime.unwrap().id[..12]),
        "{describe}"
    );

    c.apply(&format!(
        "{}---\n{}",
        pod_yaml("web-a", "1500m", "echo marker-web-a; exec sleep 1001"),
        pod_yaml("web-b", "3", "echo marker-web-b; exec sleep 1002")
    ));
    let a = c.wait_pod_phase("web-a", PodPhase::Running, secs(30)).await;
    let b = c.wait_pod_phase("web-b", PodPhase::Running, secs(30)).await;
    assert_eq!(b.node, "d3");
    // Seen by Docker itself, not only by what the agent reports: each pod is a sandbox and
    // its container, labelled with the node that runs it.
    let of_a = pod_containers(&c.id, "web-a").await;
    let mut made: Vec<(&str, &str)> = of_a
        .iter()
        .map(|p| (p.node.as_str(), p.container.as_str()))
        .collect();
    made.sort();
    assert_eq!(
        made,
        [(a.node.as_str(), "POD"), (a.node.as_str(), "main")],
        "{of_a:?}"
    );
    let of_b = pod_containers(&c.id, "web-b").await;
    assert!(
        of_b.len() == 2 && of_b.iter().all(|p| p.node == "d3"),
        "{of_b:?}"
    );
    assert!(!b.pod_ip.is_empty(), "{b:?}");

    // A pod's signals reach only its own processes: `kill -TERM 1` and `kill -9 -1` inside
    // it leave its node (whose agent was PID 1 of the node container, once) and the other
    // pod alone. Watched for two heartbeat deadlines.
    c.ctl(&[
        "exec",
        "web-a",
        "--",
        "sh",
        "-c",
        "kill -TERM 1; kill -9 -1",
    ]);
    for _ in 0..20 {
        assert_eq!(c.node(&a.node).await.status(), NodeStatus::Healthy);
        assert_eq!(c.node("d3").await.status(), NodeStatus::Healthy);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let b_after = c.pod("web-b").await;
    assert_eq!(
        (b_after.phase(), b_after.containers[0].restarts),
        (PodPhase::Running, 0)
    );

    let logs = c
        .wait_for("logs of web-b", secs(10), || async {
            let out = c.ctl(&["logs", "web-b"]);
            let s = String::from_utf8_lossy(&out.stdout).into_owned();
            s.contains("marker-web-b").then_some(s)
        })
        .await;
    assert!(logs.contains("marker-web-b"));
    c.assert_cpu_invariant().await;
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_container_fails_its_node_with_the_reason() {
    // No recovery attempts: the failure is final, so its reason can be read at leisure.
    let c = TestCluster::start(
        Options::docker()
            .arg("--max-recovery-attempts")
            .arg("0")
            .arg("--no-node-replacement"),
    )
    .await;
    c.healthy_nodes(&[("victim", "2")]).await;
    let docker = docker().await.unwrap();
    docker
        .kill_container(
            &format!("{}-victim", c.id),
            None::<bollard::query_parameters::KillContainerOptions>,
        )
        .await
        .unwrap();
    c.wait_for("NodeFailed with the container's exit", secs(15), || async {
        c.events().await.into_iter().find(|e| {
            e.object_name == "victim"
                && e.reason == "NodeFailed"
                && e.message.contains("container exited with code 137")
        })
    })
    .await;
    // With no recovery attempts allowed, the failure is final and its reason stays visible.
    let node = c
        .wait_node_status("victim", NodeStatus::PermanentlyFailed, secs(10))
        .await;
    assert!(
        node.reason.contains("container exited with code 137"),
        "{}",
        node.reason
    );
    let wide = c.ctl_ok(&["get", "nodes", "-o", "wide"]);
    assert!(
        wide.contains("137"),
        "get nodes -o wide does not show the reason:\n{wide}"
    );
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_stop_is_a_leave_its_pods_move_and_docker_start_rejoins() {
    let c = TestCluster::start(Options::docker()).await;
    c.healthy_nodes(&[("s1", "2"), ("s2", "2")]).await;
    c.apply(&pod_yaml("mover", "1500m", "sleep 1000"));
    let pod = c.wait_pod_phase("mover", PodPhase::Running, secs(30)).await;
    let from = pod.node.clone();
    let to = if from == "s1" { "s2" } else { "s1" };

    let container = format!("{}-{from}", c.id);
    docker_stop(&container).await;
    // Left at once: the agent said goodbye before it exited, so no heartbeat timeout is
    // involved (it would fail the node), and the stopped container is neither restarted nor
    // reaped.
    let node = c.wait_node_status(&from, NodeStatus::Left, secs(3)).await;
    assert!(node.reason.contains("agent left"), "{}", node.reason);
    let pod = c
        .wait_for("mover to run on the other node", secs(30), || async {
            let p = c.pod("mover").await;
            (p.phase() == PodPhase::Running && p.node == to).then_some(p)
        })
        .await;
    assert_eq!(pod.reschedules, 1);
    // Its containers went with the node that stopped: only the new ones remain, on `to`.
    let mover = pod_containers(&c.id, "mover").await;
    assert!(
        mover.len() == 2 && mover.iter().all(|p| p.node == to),
        "{mover:?}"
    );
    c.assert_cpu_invariant().await;
    tokio::time::sleep(secs(2)).await;
    assert_eq!(
        c.node(&from).await.status(),
        NodeStatus::Left,
        "a left node stays left"
    );
    // Started again (docker start, or the engine coming back), the same container rejoins,
    // empty: its pod stays where it moved.
    docker()
        .await
        .unwrap()
        .start_container(
            &container,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .unwrap();
    let node = c
        .wait_node_status(&from, NodeStatus::Healthy, secs(20))
        .await;
    assert_eq!(node.pods, Vec::<String>::new());
    assert_eq!(c.pod("mover").await.node, to);
    assert!(node_reasons(&c, &from)
        .await
        .iter()
        .any(|r| r == "NodeLeft"));
    c.assert_cpu_invariant().await;
    c.finish().await;
}

/// The event reasons of node `name`, oldest first.
async fn node_reasons(c: &TestCluster, name: &str) -> Vec<String> {
    c.events()
        .await
        .into_iter()
        .filter(|e| e.object_kind == "Node" && e.object_name == name)
        .map(|e| e.reason)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_docker_node_moves_its_pods_and_removes_its_container() {
    let c = TestCluster::start(Options::docker()).await;
    c.healthy_nodes(&[("keep", "4"), ("gone", "2")]).await;
    c.apply(&format!(
        "{}---\n{}",
        pod_yaml("p1", "2", "sleep 1000"),
        pod_yaml("p2", "1", "sleep 1000")
    ));
    c.wait_pod_phase("p1", PodPhase::Running, secs(30)).await;
    c.wait_pod_phase("p2", PodPhase::Running, secs(30)).await;
    // best fit: p1 (2 CPU) goes to gone (2 free), p2 (1 CPU) to keep.
    assert_eq!(c.pod("p1").await.node, "gone");
    let gone_container = c.node("gone").await.runtime.unwrap().id;

    c.ctl_ok(&["delete", "node", "gone"]);
    let out = c.ctl(&["get", "node", "gone"]);
    assert_eq!(out.status.code(), Some(1));
    let docker = docker().await.unwrap();
    assert!(
        docker
            .inspect_container(&gone_container, None)
            .await
            .is_err_and(|e| is_not_found(&e)),
        "container of deleted node still exists"
    );
    for p in ["p1", "p2"] {
        let pod = c.wait_pod_phase(p, PodPhase::Running, secs(30)).await;
        assert_eq!(pod.node, "keep");
    }
    assert_eq!(c.node("keep").await.cpu_allocated_millis, 3000);
    c.assert_cpu_invariant().await;
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_kube9d_adopts_its_containers_and_removes_orphans() {
    let mut c = TestCluster::start(Options::docker()).await;
    c.healthy_nodes(&[("r1", "2"), ("r2", "2")]).await;
    c.apply(&pod_yaml("survivor", "1", "sleep 1000"));
    let before = c
        .wait_pod_phase("survivor", PodPhase::Running, secs(30))
        .await;
    let docker = docker().await.unwrap();
    let mut containers_before = list_containers(&docker, &c.id).await;
    containers_before.sort();

    c.kill_server();
    // An orphan: labelled for this cluster, owned by no node.
    let mut labels = HashMap::new();
    labels.insert("io.kube9.cluster".to_string(), c.id.clone());
    labels.insert("io.kube9.node".to_string(), "ghost".to_string());
    let image = format!("kube9-node:{}", env!("CARGO_PKG_VERSION"));
    let body = bollard::models::ContainerCreateBody {
        image: Some(image),
        labels: Some(labels),
        entrypoint: Some(vec!["/bin/sleep".into(), "1000".into()]),
        ..Default::default()
    };
    let orphan = docker
        .create_container(
            Some(
                bollard::query_parameters::CreateContainerOptionsBuilder::new()
                    .name(&format!("{}-ghost", c.id))
                    .build(),
            ),
            body,
        )
        .await
        .unwrap()
        .id;
    c.restart_server().await;

    for n in ["r1", "r2"] {
        c.wait_for(&format!("{n} to reattach"), secs(30), || async {
            let node = c.node(n).await;
            (node.agent_connected && node.status() == NodeStatus::Healthy).then_some(())
        })
        .await;
    }
    c.wait_for("the orphan to be removed", secs(15), || async {
        docker
            .inspect_container(&orphan, None)
            .await
            .is_err_and(|e| is_not_found(&e))
            .then_some(())
    })
    .await;
    let mut containers_after = list_containers(&docker, &c.id).await;
    containers_after.sort();
    assert_eq!(
        containers_after, containers_before,
        "containers were not adopted as they were"
    );
    let after = c.pod("survivor").await;
    assert_eq!(after.phase(), PodPhase::Running);
    assert_eq!(
        (after.node.clone(), after.uid.clone()),
        (before.node, before.uid)
    );
    c.assert_cpu_invariant().await;
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_the_client_abandons_still_completes_and_the_node_can_be_deleted() {
    let c = TestCluster::start(Options::docker()).await;
    c.healthy_nodes(&[("first", "1")]).await;
    let mut req = tonic::Request::new(kube9_proto::pb::CreateNodeRequest {
        name: "hasty".into(),
        cpu_millis: 1000,
        ..Default::default()
    });
    // Far shorter than a container launch: the client gives up mid-way.
    req.set_timeout(std::time::Duration::from_millis(20));
    let err = c.client().await.create_node(req).await.unwrap_err();
    assert!(
        matches!(
            err.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        ),
        "{err:?}"
    );
    let node = c
        .wait_node_status("hasty", NodeStatus::Healthy, secs(30))
        .await;
    assert!(
        !node.runtime.unwrap().id.is_empty(),
        "the launch was not recorded"
    );
    c.ctl_ok(&["delete", "node", "hasty", "--timeout", "30s"]);
    let docker = docker().await.unwrap();
    assert_eq!(list_containers(&docker, &c.id).await.len(), 1);
    c.finish().await;
}
