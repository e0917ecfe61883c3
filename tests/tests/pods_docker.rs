//! Pods as real containers from their images: an agent with `--pod-runtime docker` runs each
//! pod through the Docker engine (a sandbox holding the pod's network namespace, then its
//! containers), and everything a kubectl user does works on them. The images are built
//! locally (there is no registry here), so the pods say `imagePullPolicy: Never`.

mod support;

use kube9_proto::pb::PodPhase;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_runs_from_its_image_in_its_own_sandbox_and_goes_with_its_deletion() {
    let c = TestCluster::start(Options::process()).await;
    let dir = c.data_dir.join("docker-node");
    let mut agent = hand_started_agent(
        &c,
        "dnode",
        &dir,
        &["--pod-runtime", "docker", "--cpu-millis", "2000"],
    );
    c.wait_node_status("dnode", kube9_proto::pb::NodeStatus::Healthy, secs(30))
        .await;
    c.apply(&format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: web}}
spec:
  containers:
  - name: server
    image: {BUSYBOX}
    imagePullPolicy: Never
    command: [sh, -c, 'mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www']
    readinessProbe:
      httpGet: {{path: /index.html, port: 8080}}
      periodSeconds: 1
  - name: client
    image: {BUSYBOX}
    imagePullPolicy: Never
    command: [sh, -c, 'echo client on $(hostname); sleep 1000']
"
    ));
    let pod = c
        .wait_for("web ready", secs(60), || async {
            let p = c.pod("web").await;
            p.ready.then_some(p)
        })
        .await;
    assert_eq!(pod.phase(), PodPhase::Running);
    assert!(!pod.pod_ip.is_empty(), "{pod:?}");
    let wide = c.ctl_ok(&["get", "pods", "-o", "wide"]);
    assert!(wide.contains(&pod.pod_ip), "{wide}");
    assert!(wide.contains("2/2"), "{wide}");

    // A sandbox and two containers, labelled so that `docker ps --filter` finds them.
    let names = pod_containers(&c.id, "web").await;
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.iter().all(|n| n.name.contains(&pod.uid)), "{names:?}");

    // The two containers share localhost; the hostname is the pod's name.
    let out = c.ctl_ok(&[
        "exec",
        "web",
        "-c",
        "client",
        "--",
        "wget",
        "-q",
        "-O",
        "-",
        "http://localhost:8080/index.html",
    ]);
    assert_eq!(out, "hello\n");
    let logs = c.ctl_ok(&["logs", "web", "-c", "client"]);
    assert_eq!(logs, "client on web\n");
    let out = c.ctl(&["exec", "web", "-c", "client", "--", "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5));

    c.ctl_ok(&["delete", "pod", "web"]);
    assert!(
        pod_containers(&c.id, "web").await.is_empty(),
        "deleting the pod removes its containers"
    );
    let _ = agent.kill();
    let _ = agent.wait();
    docker_cleanup(&c.id);
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_shows_err_image_pull_then_image_pull_back_off() {
    let c = TestCluster::start(Options::process().arg("--crash-backoff-ms=300")).await;
    let dir = c.data_dir.join("docker-node");
    let mut agent = hand_started_agent(&c, "dnode", &dir, &["--pod-runtime", "docker"]);
    c.wait_node_status("dnode", kube9_proto::pb::NodeStatus::Healthy, secs(30))
        .await;
    c.apply(
        "apiVersion: v1
kind: Pod
metadata: {name: nope}
spec:
  containers:
  - {name: main, image: 'kube9-test/does-not-exist:1', imagePullPolicy: IfNotPresent}
",
    );
    c.wait_for("ErrImagePull", secs(30), || async {
        (c.pod("nope").await.status_reason == "ErrImagePull").then_some(())
    })
    .await;
    c.wait_for("ImagePullBackOff", secs(30), || async {
        (c.pod("nope").await.status_reason == "ImagePullBackOff").then_some(())
    })
    .await;
    let table = c.ctl_ok(&["get", "pods"]);
    assert!(
        table.contains("ImagePullBackOff") || table.contains("ErrImagePull"),
        "{table}"
    );
    let json = c.ctl_json(&["get", "pod", "nope"]);
    let waiting = &json["status"]["containerStatuses"][0]["state"]["waiting"];
    assert!(
        waiting["message"]
            .as_str()
            .unwrap()
            .contains("kube9-test/does-not-exist"),
        "{json}"
    );
    c.ctl_ok(&["delete", "pod", "nope"]);
    let _ = agent.kill();
    let _ = agent.wait();
    docker_cleanup(&c.id);
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_containers_outlive_a_killed_agent_and_never_run_twice_after_it_returns() {
    let c = TestCluster::start(Options::process()).await;
    let dir = c.data_dir.join("docker-node");
    let args = ["--pod-runtime", "docker"];
    let mut agent = hand_started_agent(&c, "dnode", &dir, &args);
    c.wait_node_status("dnode", kube9_proto::pb::NodeStatus::Healthy, secs(30))
        .await;
    c.apply(&format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: keeper}}
spec:
  containers:
  - {{name: main, image: '{BUSYBOX}', imagePullPolicy: Never, command: [sleep, '1000']}}
"
    ));
    c.wait_for("keeper ready", secs(60), || async {
        c.pod("keeper").await.ready.then_some(())
    })
    .await;
    let before = pod_containers(&c.id, "keeper").await;
    assert_eq!(before.len(), 2, "{before:?}");

    // Like a kubelet's: the pod's containers do not die with the agent.
    agent.kill().unwrap();
    agent.wait().unwrap();
    assert_eq!(pod_containers(&c.id, "keeper").await, before);

    let mut agent = hand_started_agent(&c, "dnode", &dir, &args);
    let after = c
        .wait_for("keeper running again", secs(60), || async {
            let names = pod_containers(&c.id, "keeper").await;
            (c.pod("keeper").await.ready && names.len() == 2 && names != before).then_some(names)
        })
        .await;
    assert_eq!(
        after.len(),
        2,
        "one sandbox and one container, not two of each: {after:?}"
    );
    c.ctl_ok(&["delete", "pod", "keeper"]);
    assert!(pod_containers(&c.id, "keeper").await.is_empty());
    let _ = agent.kill();
    let _ = agent.wait();
    docker_cleanup(&c.id);
    c.finish().await;
}
