//! A pod means what it means in Kubernetes: restart policies with crash-loop back-off,
//! restart counts, the previous run's logs, phases. Nodes are local processes here; the
//! back-off is shortened with kube9d's --crash-backoff-ms.

mod support;

use kube9_proto::pb::PodPhase;
use support::*;

fn cluster_options() -> Options {
    Options::process()
        .arg("--crash-backoff-ms=200")
        .arg("--crash-backoff-max-ms=400")
}

fn with_policy(name: &str, script: &str, policy: &str) -> String {
    format!(
        "{}  restartPolicy: {policy}\n",
        pod_yaml(name, "100m", script)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_container_restarts_with_back_off_and_keeps_its_previous_logs() {
    let c = TestCluster::start(cluster_options()).await;
    c.healthy_nodes(&[("n1", "2")]).await;
    c.apply(&with_policy(
        "crashy",
        "echo run at $(date +%s%N); exit 3",
        "Always",
    ));
    let pod = c
        .wait_for("three restarts", secs(30), || async {
            let p = c.pod("crashy").await;
            (p.containers[0].restarts >= 3).then_some(p)
        })
        .await;
    assert_eq!(
        pod.phase(),
        PodPhase::Running,
        "a restarting pod is Running"
    );
    let last = pod.containers[0].last_state.clone().expect("lastState");
    assert_eq!(last.exit_code, 3);
    assert_eq!(last.reason, "Error");

    let table = c.ctl_ok(&["get", "pods"]);
    let row = table.lines().find(|l| l.starts_with("crashy ")).unwrap();
    assert!(
        row.contains("CrashLoopBackOff") || row.contains("Running"),
        "{table}"
    );
    let restarts: u32 = row.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(restarts >= 3, "{table}");

    let json = c.ctl_json(&["get", "pod", "crashy"]);
    let status = &json["status"]["containerStatuses"][0];
    assert!(status["restartCount"].as_u64().unwrap() >= 3, "{status}");
    assert_eq!(status["lastState"]["terminated"]["exitCode"], 3, "{status}");

    let previous = c.ctl_ok(&["logs", "crashy", "--previous"]);
    assert!(previous.starts_with("run at "), "{previous:?}");
    assert_eq!(
        previous.lines().count(),
        1,
        "only the previous run: {previous:?}"
    );

    // Back-off: restarts are spaced out, not immediate (200 ms doubling to 400 ms).
    let events = c.ctl_ok(&["describe", "pod", "crashy"]);
    assert!(
        events.contains("Restarts") || events.contains("restart"),
        "{events}"
    );
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_failure_restarts_until_success_and_never_does_not_restart() {
    let c = TestCluster::start(cluster_options()).await;
    c.healthy_nodes(&[("n1", "2")]).await;
    // In the pod's working directory, which outlives its container's runs (kube9d's data
    // directory is not the pod's to write).
    c.apply(&with_policy(
        "retry",
        "if [ -e tried-once ]; then echo done; exit 0; fi; touch tried-once; exit 1",
        "OnFailure",
    ));
    c.apply(&with_policy("once", "exit 5", "Never"));
    c.apply(&with_policy("ok", "exit 0", "Never"));

    let retry = c
        .wait_pod_phase("retry", PodPhase::Succeeded, secs(30))
        .await;
    assert_eq!(retry.containers[0].restarts, 1);
    let once = c.wait_pod_phase("once", PodPhase::Failed, secs(30)).await;
    assert_eq!(once.containers[0].restarts, 0);
    assert_eq!(once.containers[0].exit_code, 5);
    let ok = c.wait_pod_phase("ok", PodPhase::Succeeded, secs(30)).await;
    assert_eq!(ok.containers[0].restarts, 0);

    // Finished pods hold no CPU.
    c.assert_cpu_invariant().await;
    assert_eq!(c.node("n1").await.cpu_allocated_millis, 0);
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_containers_finish_in_order_before_the_app_starts() {
    let c = TestCluster::start(cluster_options()).await;
    c.healthy_nodes(&[("n1", "2")]).await;
    // Process pods share their pod directory as working directory: the init containers hand
    // their work to the app through it.
    c.apply(
        "apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  initContainers:
  - {name: fetch, image: busybox, command: [sh, -c, 'sleep 1; echo fetched > handoff']}
  - {name: check, image: busybox, command: [sh, -c, 'grep -q fetched handoff && echo checked >> handoff']}
  containers:
  - {name: app, image: busybox, command: [sh, -c, 'cat handoff; sleep 1000']}
",
    );
    let initializing = c
        .wait_for("Init:0/2", secs(10), || async {
            let p = c.pod("web").await;
            (p.status_reason == "Init:0/2").then_some(p)
        })
        .await;
    assert_eq!(initializing.phase(), PodPhase::Scheduled);
    let table = c.ctl_ok(&["get", "pods"]);
    assert!(table.contains("Init:0/2"), "{table}");
    c.wait_for("web ready", secs(30), || async {
        c.pod("web").await.ready.then_some(())
    })
    .await;
    let logs = c.ctl_ok(&["logs", "web", "-c", "app"]);
    assert_eq!(logs, "fetched\nchecked\n");
    let json = c.ctl_json(&["get", "pod", "web"]);
    let inits = json["status"]["initContainerStatuses"].as_array().unwrap();
    assert_eq!(inits.len(), 2);
    assert_eq!(inits[1]["state"]["terminated"]["exitCode"], 0, "{json}");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_restart_a_dead_container_and_flip_ready() {
    let c = TestCluster::start(cluster_options()).await;
    c.healthy_nodes(&[("n1", "2")]).await;
    let dir = c.data_dir.display();
    c.apply(&format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: probed}}
spec:
  containers:
  - name: main
    image: busybox
    command: [sleep, '1000']
    livenessProbe:
      exec: {{command: [test, -e, {dir}/alive]}}
      periodSeconds: 1
      failureThreshold: 1
    readinessProbe:
      exec: {{command: [test, -e, {dir}/ready]}}
      periodSeconds: 1
      failureThreshold: 1
"
    ));
    std::fs::write(c.data_dir.join("alive"), "").unwrap();
    let running = c
        .wait_pod_phase("probed", PodPhase::Running, secs(30))
        .await;
    assert!(
        !running.ready,
        "not ready before its readiness probe passes"
    );
    let row = |c: &TestCluster| {
        let table = c.ctl_ok(&["get", "pods"]);
        table
            .lines()
            .find(|l| l.starts_with("probed "))
            .unwrap()
            .to_string()
    };
    assert!(row(&c).contains("0/1"), "{}", row(&c));

    std::fs::write(c.data_dir.join("ready"), "").unwrap();
    c.wait_for("ready", secs(10), || async {
        c.pod("probed").await.ready.then_some(())
    })
    .await;
    assert!(row(&c).contains("1/1"), "{}", row(&c));

    std::fs::remove_file(c.data_dir.join("alive")).unwrap();
    let restarted = c
        .wait_for("a liveness restart", secs(20), || async {
            let p = c.pod("probed").await;
            (p.containers[0].restarts >= 1).then_some(p)
        })
        .await;
    let last = restarted.containers[0].last_state.clone().unwrap();
    assert!(last.message.contains("liveness probe failed"), "{last:?}");
    c.finish().await;
}

/// `spec.terminationGracePeriodSeconds` is how long a container that ignores SIGTERM keeps
/// running after a delete (kube9d's default is 2 s); `delete --grace-period` beats it. `delete`
/// waits until the pod is gone, so how long it takes is at least the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pods_termination_grace_period_is_how_long_a_delete_gives_it() {
    let c = TestCluster::start(cluster_options()).await;
    c.healthy_nodes(&[("n1", "2")]).await;
    let stubborn = |name: &str, seconds: u32| {
        format!(
            "{}  terminationGracePeriodSeconds: {seconds}\n",
            pod_yaml(name, "100m", "trap '' TERM; while true; do sleep 1; done")
        )
    };
    let manifest = format!("{}---\n{}", stubborn("slow", 4), stubborn("told", 8));
    let out = c.ctl_stdin(&["apply", "-f", "-"], Some(&manifest));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains("ignored"),
        "the field is read, not ignored: {err}"
    );
    let slow = c.wait_pod_phase("slow", PodPhase::Running, secs(30)).await;
    let told = c.wait_pod_phase("told", PodPhase::Running, secs(30)).await;
    assert_eq!(
        c.ctl_json(&["get", "pod", "slow"])["spec"]["terminationGracePeriodSeconds"],
        4
    );

    let started = std::time::Instant::now();
    c.ctl_ok(&["delete", "pod", "told", "--grace-period", "1"]);
    let took = started.elapsed();
    assert!(!process_alive(told.containers[0].pid));
    assert!(
        took < secs(7),
        "--grace-period 1 waited {took:?}, as for the pod's 8 s"
    );

    let started = std::time::Instant::now();
    c.ctl_ok(&["delete", "pod", "slow"]);
    let took = started.elapsed();
    assert!(!process_alive(slow.containers[0].pid));
    assert!(
        took >= std::time::Duration::from_millis(3900),
        "killed {took:?} after the delete: its 4 s were not given"
    );
    c.finish().await;
}
