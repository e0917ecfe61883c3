//! The first working cluster, with nodes as local processes: nodes join, pods land where best
//! fit says and really run, logs come back, deletion frees CPU, pending pods wait for room, and
//! a killed kube9d comes back with everything.

mod support;

use kube9_proto::pb::{self, NodeStatus, PodPhase};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_land_by_best_fit_run_for_real_and_free_cpu_when_deleted() {
    let c = TestCluster::start(Options::process()).await;
    c.create_node("big", "4");
    c.create_node("small", "2");
    c.create_node("mid", "3");
    for n in ["big", "small", "mid"] {
        c.wait_node_status(n, NodeStatus::Healthy, secs(30)).await;
    }

    // small has the least free CPU that fits 1500m; then mid (3000) beats big (4000) for 1000m.
    c.apply(&pod_yaml(
        "first",
        "1500m",
        "echo hello from first; sleep 1000",
    ));
    assert_eq!(
        c.wait_pod_phase("first", PodPhase::Running, secs(30))
            .await
            .node,
        "small"
    );
    c.apply(&pod_yaml("second", "1", "sleep 1000"));
    assert_eq!(
        c.wait_pod_phase("second", PodPhase::Running, secs(30))
            .await
            .node,
        "mid"
    );
    c.apply(&pod_yaml("third", "2.5", "sleep 1000"));
    assert_eq!(
        c.wait_pod_phase("third", PodPhase::Running, secs(30))
            .await
            .node,
        "big"
    );

    // kube9ctl shows it Running, as JSON.
    let json = c.ctl_json(&["get", "pod", "first"]);
    assert_eq!(json["status"]["phase"], "Running");
    assert_eq!(json["spec"]["nodeName"], "small");

    // The container is a real process, inside the agent's session.
    let pod = c.pod("first").await;
    let pid = pod.containers[0].pid;
    assert!(pid > 0, "no pid reported: {pod:?}");
    assert!(
        process_alive(pid),
        "process {pid} of pod first is not running"
    );
    assert!(
        cmdline(pid).contains("hello from first"),
        "unexpected process: {}",
        cmdline(pid)
    );

    // Logs come from the agent through kube9d.
    let logs = c
        .wait_for("first's log line", secs(10), || async {
            let out = c.ctl(&["logs", "first"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.contains("hello from first").then_some(text)
        })
        .await;
    assert_eq!(logs.trim(), "hello from first");
    let out = c.ctl(&["logs", "first", "-c", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("container \"nope\" not found"));

    c.assert_cpu_invariant().await;
    assert_eq!(c.node("small").await.cpu_allocated_millis, 1500);

    // Deleting frees the CPU and stops the process.
    c.ctl_ok(&["delete", "pod", "first"]);
    let out = c.ctl(&["get", "pod", "first"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    assert_eq!(c.node("small").await.cpu_allocated_millis, 0);
    c.wait_for("the deleted pod's process to exit", secs(10), || async {
        (!process_alive(pid)).then_some(())
    })
    .await;
    c.assert_cpu_invariant().await;

    // Tables for people.
    let table = c.ctl_ok(&["get", "nodes"]);
    for col in ["NAME", "STATUS", "CPU", "PODS", "AGE"] {
        assert!(table.contains(col), "missing column {col}:\n{table}");
    }
    assert!(table.contains("Healthy"), "{table}");
    let table = c.ctl_ok(&["get", "pods"]);
    for col in ["NAME", "STATUS", "NODE", "CPU", "AGE"] {
        assert!(table.contains(col), "missing column {col}:\n{table}");
    }
    let events = c.ctl_ok(&["get", "events"]);
    assert!(events.contains("Scheduled"), "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_pod_waits_pending_and_is_placed_when_a_big_node_joins() {
    let c = TestCluster::start(Options::process()).await;
    c.create_node("n1", "1");
    c.wait_node_status("n1", NodeStatus::Healthy, secs(30))
        .await;

    c.apply(&pod_yaml("huge", "3", "sleep 1000"));
    let pod = c.pod("huge").await;
    assert_eq!(pod.phase(), PodPhase::Pending);
    assert!(
        pod.reason.contains("0/1 nodes have 3 free CPU"),
        "reason: {}",
        pod.reason
    );
    let json = c.ctl_json(&["get", "pod", "huge"]);
    assert_eq!(json["status"]["phase"], "Pending");

    c.create_node("n2", "4");
    let pod = c.wait_pod_phase("huge", PodPhase::Running, secs(30)).await;
    assert_eq!(pod.node, "n2");
    assert_eq!(c.node("n2").await.cpu_allocated_millis, 3000);
    c.assert_cpu_invariant().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_kube9d_restarts_with_every_node_and_pod_and_agents_reattach() {
    // A 1 s failure deadline, shorter than the agents' 2 s reconnect backoff cap: only the
    // start-up grace keeps nodes from being failed for kube9d's own absence.
    let opts = Options::process()
        .arg("--heartbeat-interval-ms")
        .arg("500")
        .arg("--missed-heartbeats")
        .arg("2");
    let mut c = TestCluster::start(opts).await;
    c.create_node("a", "2");
    c.create_node("b", "2");
    c.wait_node_status("a", NodeStatus::Healthy, secs(30)).await;
    c.wait_node_status("b", NodeStatus::Healthy, secs(30)).await;
    c.apply(&format!(
        "{}---\n{}",
        pod_yaml("keep-1", "1", "sleep 1000"),
        pod_yaml("keep-2", "1500m", "sleep 1000")
    ));
    let before_1 = c
        .wait_pod_phase("keep-1", PodPhase::Running, secs(30))
        .await;
    let before_2 = c
        .wait_pod_phase("keep-2", PodPhase::Running, secs(30))
        .await;
    let agents_before = agent_pids(&c.id);
    assert_eq!(agents_before.len(), 2, "expected two agent processes");

    // Down for longer than the heartbeat deadline: nodes must not be failed (or restarted)
    // for kube9d's own absence.
    c.restart_server_after(secs(5)).await;

    // Everything is still there, the same agents reattach, the pods keep their processes.
    let nodes = c.nodes().await;
    assert_eq!(
        nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
        vec!["a", "b"]
    );
    for n in ["a", "b"] {
        c.wait_for(&format!("agent of {n} to reattach"), secs(30), || async {
            let node = c.node(n).await;
            (node.agent_connected && node.status() == NodeStatus::Healthy).then_some(())
        })
        .await;
    }
    let mut agents_after = agent_pids(&c.id);
    agents_after.sort();
    let mut agents_before = agents_before;
    agents_before.sort();
    assert_eq!(
        agents_after, agents_before,
        "agents were replaced instead of reattaching"
    );
    let after_1 = c.pod("keep-1").await;
    let after_2 = c.pod("keep-2").await;
    assert_eq!(after_1.phase(), PodPhase::Running);
    assert_eq!(after_2.phase(), PodPhase::Running);
    assert_eq!(
        (after_1.node.clone(), after_1.uid.clone()),
        (before_1.node.clone(), before_1.uid.clone())
    );
    assert_eq!(after_2.containers[0].pid, before_2.containers[0].pid);
    assert!(process_alive(after_2.containers[0].pid));
    c.assert_cpu_invariant().await;
    // Give a wrongly started heartbeat clock time to fire, then check nothing failed.
    tokio::time::sleep(secs(3)).await;
    for n in c.nodes().await {
        assert_eq!(n.status(), NodeStatus::Healthy, "{}: {}", n.name, n.reason);
    }
    assert!(
        !c.events().await.iter().any(|e| e.reason == "NodeFailed"),
        "a node was failed across the restart:\n{}",
        c.log_tail()
    );
    // Events survived too.
    assert!(c
        .events()
        .await
        .iter()
        .any(|e| e.object_name == "keep-1" && e.reason == "Scheduled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_loses_nothing() {
    let mut c = TestCluster::start(Options::process()).await;
    c.create_node("g", "2");
    c.wait_node_status("g", NodeStatus::Healthy, secs(30)).await;
    c.apply(&pod_yaml("stay", "500m", "sleep 1000"));
    c.wait_pod_phase("stay", PodPhase::Running, secs(30)).await;
    assert!(
        c.stop_server_gracefully(),
        "kube9d did not exit 0 on SIGTERM:\n{}",
        c.log_tail()
    );
    c.restart_server().await;
    let pod = c.pod("stay").await;
    assert_eq!(pod.node, "g");
    c.wait_node_status("g", NodeStatus::Healthy, secs(30)).await;
    assert_eq!(c.node("g").await.cpu_allocated_millis, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_error_and_stores_nothing() {
    let c = TestCluster::start(Options::process()).await;
    c.create_node("n", "2");
    c.apply(&pod_yaml("exists", "100m", "sleep 1000"));

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "malformed YAML",
            "apiVersion: v1\nkind: Pod\nmetadata: [unclosed\n".into(),
            "line",
        ),
        (
            "unknown kind",
            "apiVersion: v1\nkind: Deployment\nmetadata:\n  name: d\n".into(),
            "unknown kind",
        ),
        ("negative CPU", pod_yaml("neg", "-1", "true"), "negative"),
        ("garbage CPU", pod_yaml("garbage", "lots", "true"), "lots"),
        (
            "invalid name",
            pod_yaml("Bad_Name", "100m", "true"),
            "Bad_Name",
        ),
        (
            "duplicate pod name",
            pod_yaml("exists", "200m", "sleep 5"),
            "already exists",
        ),
        (
            "duplicate in one file, with a valid pod before it",
            format!(
                "{}---\n{}---\n{}",
                pod_yaml("fine", "100m", "true"),
                pod_yaml("twice", "100m", "true"),
                pod_yaml("twice", "100m", "true")
            ),
            "twice",
        ),
    ];
    for (what, manifest, needle) in cases {
        let out = c.ctl_stdin(&["apply", "-f", "-"], Some(&manifest));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{what}: expected exit 1, stderr: {stderr}"
        );
        assert!(
            stderr.contains(needle),
            "{what}: error should mention {needle:?}: {stderr}"
        );
    }
    // Nothing but the first pod was stored.
    let names: Vec<String> = c.pods().await.into_iter().map(|p| p.name).collect();
    assert_eq!(names, vec!["exists"]);
    assert_eq!(c.pod("exists").await.cpu_request_millis, 100);

    // The server refuses bad objects on its own too (a client that skips validation).
    let mut client = c.client().await;
    let bad = pb::Pod {
        name: "raw".into(),
        containers: vec![pb::Container {
            name: "c".into(),
            image: "x".into(),
            cpu_request_millis: -5,
            ..Default::default()
        }],
        ..Default::default()
    };
    let err = client
        .apply(pb::ApplyRequest {
            pods: vec![bad],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    let err = client
        .create_node(pb::CreateNodeRequest {
            name: "n".into(),
            cpu_millis: 1000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists);
    let err = client
        .create_node(pb::CreateNodeRequest {
            name: "zero".into(),
            cpu_millis: 0,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(c.nodes().await.len(), 1);
    assert_eq!(c.pods().await.len(), 1);

    // Unknown objects are NotFound with exit 1.
    let out = c.ctl(&["delete", "pod", "ghost"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NotFound"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_the_proto_lists_services_through_reflection() {
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };
    let c = TestCluster::start(Options::process()).await;
    // No token: reflection and health are open to anyone who trusts the CA.
    let channel = c.channel().await;
    let mut client = ServerReflectionClient::new(channel.clone());
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(futures::stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream
        .message()
        .await
        .unwrap()
        .expect("a reflection response");
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected response {resp:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "kube9.v1.ClusterService",
        "kube9.v1.AgentService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} not listed: {names:?}"
        );
    }

    // And the health service answers like grpcurl's health check would.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let resp = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "kube9.v1.ClusterService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        resp.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_object_changes_as_they_happen() {
    use futures::StreamExt;
    let c = TestCluster::start(Options::process()).await;
    let mut client = c.client().await;
    let mut stream = client
        .watch(pb::WatchRequest {
            kinds: vec!["Pod".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    c.create_node("w", "1");
    c.apply(&pod_yaml("watched", "100m", "sleep 1000"));
    let mut phases = vec![];
    let deadline = tokio::time::Instant::now() + secs(30);
    while !phases.contains(&PodPhase::Running) {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("watch went quiet");
        let ev = next.expect("watch ended").expect("watch error");
        match ev.object {
            Some(pb::watch_event::Object::Pod(p)) => {
                assert_eq!(p.name, "watched");
                phases.push(p.phase());
            }
            other => panic!("asked for pods only, got {other:?}"),
        }
    }
    assert_eq!(phases.first(), Some(&PodPhase::Pending), "{phases:?}");
    assert!(phases.contains(&PodPhase::Scheduled), "{phases:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_left_initializing_by_a_previous_run_are_cleaned_up() {
    // An "agent" that never dials kube9d: its node stays Initializing.
    let dir = std::env::temp_dir().join(format!("kube9-e2e-mute-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mute = dir.join("kube9-node");
    std::fs::write(&mute, "#!/bin/sh\nwhile :; do sleep 1; done\n").unwrap();
    std::fs::set_permissions(&mute, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut c = TestCluster::start(
        Options::process()
            .arg("--node-binary")
            .arg(mute.to_str().unwrap()),
    )
    .await;
    c.create_node("mute", "1");
    let node = c.node("mute").await;
    assert_eq!(node.status(), NodeStatus::Initializing);
    let pid: i32 = node.runtime.unwrap().id.parse().unwrap();
    assert!(process_alive(pid));

    c.restart_server().await;
    let err = c
        .client()
        .await
        .get_node(pb::GetNodeRequest {
            name: "mute".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    c.wait_for("the stale node's process to be gone", secs(10), || async {
        (!process_alive(pid)).then_some(())
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_manifest_runs_and_every_output_format_works() {
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "2")]).await;
    // An ordinary image with no command (a process node runs a stand-in for it).
    let manifest = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {app: web}\nspec:\n  containers:\n  - name: nginx\n    image: nginx:1.27-alpine\n    resources:\n      requests: {cpu: 500m, memory: 64Mi}\n      limits: {cpu: '1', memory: 128Mi}\n";
    let file = c.data_dir.join("web.yaml");
    std::fs::write(&file, manifest).unwrap();
    let example = file.to_str().unwrap();
    assert_eq!(
        c.ctl_ok(&["apply", "-f", example]).trim(),
        "pod/web created"
    );
    assert_eq!(
        c.ctl_ok(&["apply", "-f", example]).trim(),
        "pod/web unchanged"
    );

    // `image: nginx` with no command runs the agent's stand-in for the image.
    c.wait_pod_phase("web", PodPhase::Running, secs(30)).await;
    c.wait_for("the stand-in's start line", secs(10), || async {
        let out = c.ctl(&["logs", "web"]);
        String::from_utf8_lossy(&out.stdout)
            .contains("kube9 stand-in for image nginx:1.27-alpine started")
            .then_some(())
    })
    .await;
    let health = c
        .client()
        .await
        .pod_health(pb::PodHealthRequest {
            name: "web".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(health.healthy, "{health:?}");
    assert_eq!(health.node, "n1");

    assert_eq!(c.ctl_ok(&["get", "pods", "-o", "name"]).trim(), "pod/web");
    // Several names, one missing: the others are shown, the missing one reported, exit 1.
    let out = c.ctl(&["get", "pods", "web", "ghost", "-o", "name"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "pod/web");
    assert!(String::from_utf8_lossy(&out.stderr).contains("pod \"ghost\" not found"));
    let yaml = c.ctl_ok(&["get", "pod", "web", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: Pod") && yaml.contains("phase: Running"),
        "{yaml}"
    );
    let list = c.ctl_json(&["get", "nodes"]);
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["status"]["phase"], "Healthy");
    assert_eq!(list["items"][0]["status"]["cpuAllocatedMillis"], 500);
    let wide = c.ctl_ok(&["get", "pods", "-o", "wide"]);
    assert!(wide.contains("RESTARTS") && wide.contains("1/1"), "{wide}");

    // delete -f removes what the file declares.
    c.ctl_ok(&["delete", "-f", example]);
    assert!(c.pods().await.is_empty());
    assert_eq!(c.node("n1").await.cpu_allocated_millis, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_whose_node_cannot_start_stores_nothing() {
    let c = TestCluster::start(
        Options::process()
            .arg("--node-binary")
            .arg("/nonexistent/kube9-node"),
    )
    .await;
    let manifest = "apiVersion: v1\nkind: Node\nmetadata:\n  name: one\nspec:\n  capacity:\n    cpu: 2\n---\n\
                    apiVersion: v1\nkind: Node\nmetadata:\n  name: two\nspec:\n  capacity:\n    cpu: 2\n---\n"
        .to_string()
        + &pod_yaml("rider", "100m", "sleep 1000");
    let out = c.ctl_stdin(&["apply", "-f", "-"], Some(&manifest));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("failed to start node"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(c.nodes().await.is_empty(), "nodes left behind");
    assert!(
        c.pods().await.is_empty(),
        "pods stored although the apply failed"
    );
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joined_by_hand_survives_a_kube9d_restart() {
    let mut c = TestCluster::start(Options::process()).await;
    let state = c.data_dir.join("by-hand");
    let mut agent = hand_started_agent(&c, "edge", &state, &["--cpu-millis", "1500"]);
    let node = c
        .wait_node_status("edge", NodeStatus::Healthy, secs(30))
        .await;
    assert_eq!(node.runtime.unwrap().kind, "external");
    assert_eq!(node.cpu_capacity_millis, 1500);
    c.apply(&pod_yaml("edgy", "1", "sleep 1000"));
    assert_eq!(
        c.wait_pod_phase("edgy", PodPhase::Running, secs(30))
            .await
            .node,
        "edge"
    );

    c.restart_server().await;
    c.wait_for("edge to reattach", secs(30), || async {
        let n = c.node("edge").await;
        (n.agent_connected && n.status() == NodeStatus::Healthy).then_some(())
    })
    .await;
    assert!(
        agent.try_wait().unwrap().is_none(),
        "kube9d killed an agent it does not own"
    );
    assert_eq!(c.pod("edgy").await.phase(), PodPhase::Running);
    // SIGTERM: the agent leaves and exits; its pod waits for room elsewhere.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(agent.wait().unwrap().success());
    c.wait_node_status("edge", NodeStatus::Left, secs(10)).await;
    assert_eq!(c.pod("edgy").await.phase(), PodPhase::Pending);
    // The same agent started again rejoins, and the pod that waited for room runs there.
    let mut agent = hand_started_agent(&c, "edge", &state, &["--cpu-millis", "1500"]);
    c.wait_node_status("edge", NodeStatus::Healthy, secs(30))
        .await;
    c.wait_pod_phase("edgy", PodPhase::Running, secs(30)).await;
    let _ = agent.kill();
    let _ = agent.wait();
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_agent_cannot_take_a_node_even_while_kube9d_is_down() {
    let mut c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "2")]).await;
    c.apply(&pod_yaml("precious", "1", "sleep 1000"));
    let pod = c
        .wait_pod_phase("precious", PodPhase::Running, secs(30))
        .await;

    c.kill_server();
    // A hand-started agent claiming n1 waits for kube9d to come back, racing the real one.
    let state = c.data_dir.join("impostor");
    let mut impostor = hand_started_agent(&c, "n1", &state, &[]);
    tokio::time::sleep(secs(1)).await;
    c.restart_server().await;
    c.wait_for("n1's own agent to reattach", secs(30), || async {
        let n = c.node("n1").await;
        (n.agent_connected && n.status() == NodeStatus::Healthy).then_some(())
    })
    .await;
    // Give the impostor several tries.
    tokio::time::sleep(secs(4)).await;
    let after = c.pod("precious").await;
    assert_eq!(
        after.containers[0].pid, pod.containers[0].pid,
        "the pod was restarted"
    );
    let ran_pods = std::fs::read_dir(state.join("pods"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(ran_pods, 0, "the impostor ran pods");
    assert!(
        impostor.try_wait().unwrap().is_none(),
        "the impostor should still be retrying"
    );
    let _ = impostor.kill();
    let _ = impostor.wait();
    c.finish().await;
}

/// The README's quick start applies `examples/pods.yaml`; on process nodes (`scripts/up
/// --runtime process`, and `scripts/up` where Docker does not answer) every pod of it runs and
/// the web server's readiness probe passes, as on Docker nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_starts_example_pods_run_on_process_nodes() {
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "4")]).await;
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/pods.yaml");
    c.ctl_ok(&["apply", "-f", examples]);
    for pod in ["hello", "ticker", "web-with-sidecar"] {
        c.wait_pod_phase(pod, PodPhase::Running, secs(30)).await;
    }
    c.wait_for("web-with-sidecar to be Ready", secs(60), || async {
        c.pod("web-with-sidecar").await.ready.then_some(())
    })
    .await;
    let web = c.pod("web-with-sidecar").await;
    assert!(
        web.containers.iter().all(|s| s.restarts == 0),
        "{:?}",
        web.containers
    );
    c.finish().await;
}
