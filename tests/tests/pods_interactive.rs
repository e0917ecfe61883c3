//! Working with running pods, as kubectl users do: `logs -f` follows what a container writes,
//! `exec` runs a command and returns its output and exit code, READY and RESTARTS columns, and
//! memory requests that steer scheduling. Nodes are local processes here.

mod support;

use std::io::Read;
use std::process::Stdio;

use kube9_proto::pb::{NodeStatus, PodPhase};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_streams_new_lines_until_interrupted() {
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "2")]).await;
    c.apply(&pod_yaml(
        "ticker",
        "100m",
        "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done",
    ));
    c.wait_pod_phase("ticker", PodPhase::Running, secs(30))
        .await;

    // Read until a line printed after the follow started shows up.
    let (mut follow, text) = follow_until(&c, &["logs", "-f", "ticker"], |text| {
        text.lines().filter(|l| l.starts_with("tick ")).count() >= 15
    })
    .await;
    let ticks: Vec<u32> = text
        .lines()
        .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
        .collect();
    assert!(ticks.len() >= 15, "followed output: {text}");
    assert!(
        ticks.windows(2).all(|w| w[1] == w[0] + 1),
        "lines arrive in order, none lost: {ticks:?}"
    );
    // Still running: following has no end of its own.
    assert!(follow.try_wait().unwrap().is_none());
    follow.kill().unwrap();
    let _ = follow.wait();

    // A pod that does not exist is an error, not a hang.
    let out = c.ctl(&["logs", "-f", "nope"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pod \"nope\" not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.finish().await;
}

/// `logs -l SELECTOR -f` follows every matching pod at once, as kubectl: whole lines,
/// prefixed with `--prefix`, and no more pods than `--max-log-requests`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_every_pod_a_selector_matches() {
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "2")]).await;
    for name in ["tick-a", "tick-b"] {
        c.apply(&pod_yaml(
            name,
            "100m",
            &format!("i=0; while true; do i=$((i+1)); echo {name} $i; sleep 0.2; done"),
        ));
    }
    for name in ["tick-a", "tick-b"] {
        c.wait_pod_phase(name, PodPhase::Running, secs(30)).await;
    }
    let args = ["logs", "-l", "app=test", "-f", "--prefix", "--tail", "1"];
    let (mut follow, text) = follow_until(&c, &args, |text| {
        let from = |pod: &str| {
            (text.lines())
                .filter(|l| l.contains(&format!("] {pod} ")))
                .count()
        };
        from("tick-a") >= 8 && from("tick-b") >= 8
    })
    .await;
    for pod in ["tick-a", "tick-b"] {
        let prefix = format!("[pod/{pod}/main] {pod} ");
        let ticks: Vec<u32> = text
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix)?.parse().ok())
            .collect();
        assert!(ticks.len() >= 8, "{pod} in the followed output:\n{text}");
        assert!(
            ticks.windows(2).all(|w| w[1] == w[0] + 1),
            "{pod}'s lines in order, none lost or cut: {ticks:?}"
        );
    }
    assert!(
        text.lines().all(|l| l.starts_with("[pod/tick-")),
        "every line whole and prefixed:\n{text}"
    );
    assert!(follow.try_wait().unwrap().is_none(), "following has no end");
    follow.kill().unwrap();
    let _ = follow.wait();

    let out = c.ctl(&["logs", "-l", "app=test", "-f", "--max-log-requests", "1"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "you are attempting to follow 2 log streams, but maximum allowed concurrency is 1"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_returns_output_and_the_commands_exit_code() {
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "2")]).await;
    c.apply(&format!(
        "{}    env:\n    - name: GREETING\n      value: hello\n",
        pod_yaml("box", "100m", "sleep 1000")
    ));
    c.wait_pod_phase("box", PodPhase::Running, secs(30)).await;

    let out = c.ctl_ok(&["exec", "box", "--", "sh", "-c", "echo $GREETING from exec"]);
    assert_eq!(out, "hello from exec\n");

    let out = c.ctl(&[
        "exec",
        "box",
        "--",
        "sh",
        "-c",
        "echo to stderr >&2; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "exit code passes through");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("to stderr"), "{stderr}");
    assert!(
        stderr.contains("command terminated with exit code 7"),
        "{stderr}"
    );

    let out = c.ctl(&["exec", "box", "-c", "other", "--", "true"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("container \"other\" not found in pod box"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = c.ctl(&["exec", "box"]);
    assert!(!out.status.success(), "a command is required");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_exec_default_to_the_first_container_or_the_annotated_one() {
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "2")]).await;
    let pod = |name: &str, annotations: &str| {
        format!(
            "apiVersion: v1
kind: Pod
metadata: {{name: {name}{annotations}}}
spec:
  containers:
  - {{name: app, image: {BUSYBOX}, command: [sh, -c, 'echo app says hi; sleep 1000'], env: [{{name: WHO, value: app}}]}}
  - {{name: sidecar, image: {BUSYBOX}, command: [sh, -c, 'echo sidecar says hi; sleep 1000'], env: [{{name: WHO, value: sidecar}}]}}
"
        )
    };
    c.apply(&pod("two", ""));
    c.apply(&pod(
        "annotated",
        ", annotations: {kubectl.kubernetes.io/default-container: sidecar}",
    ));
    for name in ["two", "annotated"] {
        c.wait_pod_phase(name, PodPhase::Running, secs(30)).await;
    }

    let out = c.ctl(&["exec", "two", "--", "sh", "-c", "echo $WHO"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "app\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Defaulted container \"app\" out of: app, sidecar\n"
    );
    let out = c.ctl_ok(&["exec", "annotated", "--", "sh", "-c", "echo $WHO"]);
    assert_eq!(out, "sidecar\n");
    let logs = c
        .wait_for("the sidecar's log", secs(20), || async {
            let out = c.ctl(&["logs", "annotated"]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            (!text.is_empty()).then_some(text)
        })
        .await;
    assert_eq!(logs, "sidecar says hi\n");
    let out = c.ctl_ok(&["logs", "two", "-c", "sidecar"]);
    assert_eq!(out, "sidecar says hi\n");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_and_restarts_show_as_kubectl_shows_them() {
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "2")]).await;
    c.apply(&pod_yaml("web", "100m", "sleep 1000"));
    let pod = c.wait_pod_phase("web", PodPhase::Running, secs(30)).await;
    let pod = if pod.ready {
        pod
    } else {
        c.wait_for("web ready", secs(10), || async {
            let p = c.pod("web").await;
            p.ready.then_some(p)
        })
        .await
    };
    assert!(pod.containers[0].ready);

    let table = c.ctl_ok(&["get", "pods"]);
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("NAME") && header.contains("READY") && header.contains("RESTARTS"),
        "{table}"
    );
    let row = table.lines().find(|l| l.starts_with("web ")).unwrap();
    assert!(row.contains("1/1") && row.contains("Running"), "{table}");

    let json = c.ctl_json(&["get", "pod", "web"]);
    assert_eq!(json["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(json["status"]["conditions"][0]["status"], "True");
    assert_eq!(json["status"]["containerStatuses"][0]["ready"], true);

    let mut client = c.client().await;
    let health = client
        .pod_health(kube9_proto::pb::PodHealthRequest {
            name: "web".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(health.healthy, "{health:?}");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_requests_steer_scheduling_and_wait_with_a_reason() {
    let c = TestCluster::start(Options::process()).await;
    c.ctl_ok(&["create", "node", "roomy", "--cpu", "1", "--memory", "2Gi"]);
    c.ctl_ok(&["create", "node", "tight", "--cpu", "1", "--memory", "256Mi"]);
    c.wait_node_status("roomy", NodeStatus::Healthy, secs(30))
        .await;
    c.wait_node_status("tight", NodeStatus::Healthy, secs(30))
        .await;
    let node = c.ctl_json(&["get", "node", "tight"]);
    assert_eq!(node["status"]["capacity"]["memory"], "256Mi", "{node}");

    let with_memory = |name: &str, memory: &str| {
        pod_yaml(name, "100m", "sleep 1000").replace(
            "        cpu: \"100m\"\n",
            &format!("        cpu: \"100m\"\n        memory: \"{memory}\"\n"),
        )
    };
    // Both have the CPU; only roomy has the memory.
    c.apply(&with_memory("big", "1Gi"));
    let big = c.wait_pod_phase("big", PodPhase::Running, secs(30)).await;
    assert_eq!(big.node, "roomy");
    assert_eq!(c.node("roomy").await.memory_allocated_bytes, 1 << 30);

    c.apply(&with_memory("huge", "4Gi"));
    let huge = c
        .wait_for("huge explained", secs(10), || async {
            let p = c.pod("huge").await;
            p.reason.contains("memory").then_some(p)
        })
        .await;
    assert_eq!(huge.phase(), PodPhase::Pending);
    assert!(huge.reason.contains("4Gi free memory"), "{}", huge.reason);

    // Bad memory on the command line is refused before anything is created.
    let out = c.ctl(&["create", "node", "bad", "--cpu", "1", "--memory", "lots"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--memory"));
    assert!(c.nodes().await.iter().all(|n| n.name != "bad"));
    c.finish().await;
}

/// Starts `kube9ctl args` and reads what it prints until `enough` holds for all of it (or it
/// ends): the command, still running, and the text.
async fn follow_until(
    c: &TestCluster,
    args: &[&str],
    enough: impl Fn(&str) -> bool + Send + 'static,
) -> (std::process::Child, String) {
    let mut follow = c
        .ctl_command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = follow.stdout.take().unwrap();
    let text = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            if enough(&String::from_utf8_lossy(&seen)) {
                break;
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    })
    .await
    .unwrap();
    (follow, text)
}
