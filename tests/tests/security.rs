//! `securityContext` end to end: what would hand a pod the node (a privileged container, a
//! hostPath of the engine's socket) is refused at apply unless kube9d runs with
//! `--allow-privileged`, and what a container may do is applied by the engine on a node whose
//! agent runs pods with `--pod-runtime docker`.

mod support;

use kube9_proto::pb::PodPhase;
use support::*;

fn privileged_pod(name: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  containers:
  - name: root
    image: {BUSYBOX}
    imagePullPolicy: Never
    command: [sleep, '1000']
    securityContext: {{privileged: true}}
"
    )
}

fn socket_pod(name: &str, path: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  containers:
  - name: main
    image: {BUSYBOX}
    imagePullPolicy: Never
    command: [sleep, '1000']
    volumeMounts:
    - {{name: engine, mountPath: /engine}}
  volumes:
  - name: engine
    hostPath: {{path: {path}}}
"
    )
}

/// `kube9ctl apply` of `manifest`, expected to fail: its stderr.
fn refused(c: &TestCluster, manifest: &str) -> String {
    let out = c.ctl_stdin(&["apply", "-f", "-"], Some(manifest));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "applied: {}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_privileged_pod_and_a_host_path_of_the_engine_socket_are_refused_and_not_stored() {
    let c = TestCluster::start(Options::process()).await;
    let mut agent = docker_agent(&c, &["--cpu-millis", "2000"]).await;

    let stderr = refused(&c, &privileged_pod("root"));
    assert!(
        stderr.contains(
            "pod \"root\": container \"root\" sets securityContext.privileged, which kube9d refuses unless it runs with --allow-privileged"
        ),
        "{stderr}"
    );
    for (name, path) in [("sock", "/var/run/docker.sock"), ("run", "/run")] {
        let stderr = refused(&c, &socket_pod(name, path));
        assert!(
            stderr.contains(&format!(
                "pod \"{name}\": volume \"engine\" is hostPath \"{path}\""
            )) && stderr.contains("container engine's socket")
                && stderr.contains("--allow-privileged"),
            "{stderr}"
        );
    }
    // All or nothing: a good pod applied with a refused one is not stored either.
    let both = format!(
        "{}---\n{}",
        pod_yaml("fine", "100m", "sleep 1000"),
        privileged_pod("root")
    );
    let stderr = refused(&c, &both);
    assert!(stderr.contains("--allow-privileged"), "{stderr}");

    let table = c.ctl_ok(&["get", "pods"]);
    for name in ["root", "sock", "run", "fine"] {
        assert!(
            !table
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "{name} stored:\n{table}"
        );
    }
    assert!(c.pods().await.is_empty());
    assert!(pod_containers(&c.id, "root").await.is_empty());

    let _ = agent.kill();
    let _ = agent.wait();
    docker_cleanup(&c.id);
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_privileged_admits_a_privileged_pod_and_a_host_path_of_the_engine_socket() {
    let c = TestCluster::start(Options::process().arg("--allow-privileged")).await;
    let mut agent = docker_agent(&c, &["--cpu-millis", "2000"]).await;
    c.apply(&privileged_pod("root"));
    c.apply(&socket_pod("sock", "/var/run/docker.sock"));
    // Admitted, stored and sent to the node. (Whether the engine can run a privileged
    // container depends on the engine: a rootless or nested one refuses to.)
    for name in ["root", "sock"] {
        let pod = c
            .wait_for("bound to dnode", secs(30), || async {
                let p = c.pod(name).await;
                (p.node == "dnode").then_some(p)
            })
            .await;
        assert_ne!(pod.phase(), PodPhase::Pending, "{pod:?}");
    }
    let table = c.ctl_ok(&["get", "pods"]);
    assert!(table.contains("root") && table.contains("sock"), "{table}");
    c.ctl_ok(&["delete", "pod", "root"]);
    c.ctl_ok(&["delete", "pod", "sock"]);

    let _ = agent.kill();
    let _ = agent.wait();
    docker_cleanup(&c.id);
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pods_security_context_is_applied_on_the_engine() {
    let c = TestCluster::start(Options::process()).await;
    let mut agent = docker_agent(&c, &["--cpu-millis", "2000"]).await;
    c.apply(&format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: locked}}
spec:
  restartPolicy: Never
  securityContext: {{runAsUser: 1000, runAsGroup: 3000}}
  containers:
  - name: main
    image: {BUSYBOX}
    imagePullPolicy: Never
    command: [sh, -c, 'id -u; id -g; touch /x 2>&1 || echo ro; grep CapEff /proc/self/status']
    securityContext:
      readOnlyRootFilesystem: true
      runAsNonRoot: true
      capabilities: {{drop: [ALL]}}
"
    ));
    let pod = c
        .wait_for("locked done", secs(60), || async {
            let p = c.pod("locked").await;
            matches!(p.phase(), PodPhase::Succeeded | PodPhase::Failed).then_some(p)
        })
        .await;
    let logs = c.ctl_ok(&["logs", "locked"]);
    assert_eq!(pod.phase(), PodPhase::Succeeded, "{pod:?}\n{logs}");
    let lines: Vec<String> = (logs.lines())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        [
            "1000",
            "3000",
            "touch: /x: Read-only file system",
            "ro",
            "CapEff: 0000000000000000"
        ],
        "{logs}"
    );

    // runAsNonRoot on an image that runs as root: never created, waiting with the reason.
    c.apply(&format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: rooty}}
spec:
  containers:
  - name: main
    image: {BUSYBOX}
    imagePullPolicy: Never
    command: [sleep, '1000']
    securityContext: {{runAsNonRoot: true}}
"
    ));
    c.wait_for("CreateContainerConfigError", secs(60), || async {
        (c.pod("rooty").await.status_reason == "CreateContainerConfigError").then_some(())
    })
    .await;
    let json = c.ctl_json(&["get", "pod", "rooty"]);
    let waiting = &json["status"]["containerStatuses"][0]["state"]["waiting"];
    assert_eq!(waiting["reason"], "CreateContainerConfigError", "{json}");
    assert!(
        waiting["message"]
            .as_str()
            .unwrap()
            .starts_with("container has runAsNonRoot and image will run as root"),
        "{json}"
    );
    assert_eq!(
        pod_containers(&c.id, "rooty").await.len(),
        1,
        "only the sandbox"
    );

    c.ctl_ok(&["delete", "pod", "locked"]);
    c.ctl_ok(&["delete", "pod", "rooty"]);
    let _ = agent.kill();
    let _ = agent.wait();
    docker_cleanup(&c.id);
    c.finish().await;
}
