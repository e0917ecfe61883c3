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
    let mut agent = docker_agent(&c, &[]).await;
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
async fn pod_containers_outlive_a_killed_agent_and_a_restarted_kube9d_and_are_taken_over() {
    let mut c = TestCluster::start(Options::process()).await;
    let dir = c.data_dir.join("docker-node");
    let args = ["--pod-runtime", "docker"];
    let mut agent = docker_agent(&c, &[]).await;
    let pod = |name: &str| {
        format!(
            "apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  containers:
  - {{name: main, image: '{BUSYBOX}', imagePullPolicy: Never, command: [sleep, '1000']}}
"
        )
    };
    c.apply(&pod("keeper"));
    c.apply(&pod("goner"));
    for name in ["keeper", "goner"] {
        c.wait_for("pods ready", secs(60), || async {
            c.pod(name).await.ready.then_some(())
        })
        .await;
    }
    let before = pod_containers(&c.id, "keeper").await;
    assert_eq!(before.len(), 2, "{before:?}");
    let uid = c.pod("keeper").await.uid;
    let started = started_at(&before).await;

    // Like a kubelet's: the pod's containers do not die with the agent.
    agent.kill().unwrap();
    agent.wait().unwrap();
    assert_eq!(pod_containers(&c.id, "keeper").await, before);
    // Deleted while its node's agent was away: nothing is left to run it.
    c.ctl_ok(&["delete", "pod", "goner", "--grace-period", "0"]);
    c.wait_for("goner gone", secs(60), || async {
        (!c.pods().await.iter().any(|p| p.name == "goner")).then_some(())
    })
    .await;

    // The new agent takes the pod over: same containers, not restarted, same binding; what
    // was left of the deleted pod is removed.
    let mut agent = hand_started_agent(&c, "dnode", &dir, &args);
    c.wait_for("the agent back", secs(60), || async {
        let log = std::fs::read_to_string(c.data_dir.join("agent-dnode.log")).ok()?;
        log.contains("container taken over").then_some(())
    })
    .await;
    c.wait_for("goner's containers removed", secs(30), || async {
        pod_containers(&c.id, "goner")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    let keeper = c
        .wait_for("keeper ready again", secs(60), || async {
            let p = c.pod("keeper").await;
            p.ready.then_some(p)
        })
        .await;
    assert_eq!(keeper.uid, uid, "the same binding, not a new one");
    assert_eq!(pod_containers(&c.id, "keeper").await, before);
    assert_eq!(started_at(&before).await, started, "not restarted");

    // kube9d restarting changes nothing either.
    c.restart_server().await;
    c.wait_for("the agent attached to the new kube9d", secs(30), || async {
        // Attached three times: at first, after the agent's restart, after kube9d's.
        let log = std::fs::read_to_string(c.data_dir.join("kube9d.log")).ok()?;
        (log.matches("agent attached node=dnode").count() >= 3).then_some(())
    })
    .await;
    let keeper = c
        .wait_for("keeper ready after the restart", secs(60), || async {
            let p = c.pod("keeper").await;
            p.ready.then_some(p)
        })
        .await;
    assert_eq!(keeper.uid, uid);
    assert_eq!(pod_containers(&c.id, "keeper").await, before);
    assert_eq!(started_at(&before).await, started, "not restarted");

    c.ctl_ok(&["delete", "pod", "keeper"]);
    assert!(pod_containers(&c.id, "keeper").await.is_empty());
    let _ = agent.kill();
    let _ = agent.wait();
    docker_cleanup(&c.id);
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_whose_disk_empty_dir_passes_its_size_limit_is_evicted() {
    let c = TestCluster::start(Options::process()).await;
    let mut agent = docker_agent(&c, &["--eviction-interval-ms", "300"]).await;
    let pod = |name: &str, mib: u32| {
        format!(
            "apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: Always
  containers:
  - name: main
    image: {BUSYBOX}
    imagePullPolicy: Never
    command: [sh, -c, 'dd if=/dev/zero of=/cache/f bs=1M count={mib}; sleep 1000']
    volumeMounts: [{{name: cache, mountPath: /cache}}]
  volumes:
  - name: cache
    emptyDir: {{sizeLimit: 1Mi}}
"
        )
    };
    c.apply(&pod("modest", 0));
    c.wait_for("modest ready", secs(60), || async {
        c.pod("modest").await.ready.then_some(())
    })
    .await;
    c.apply(&pod("hog", 4));
    c.wait_for("hog evicted", secs(60), || async {
        let table = c.ctl_ok(&["get", "pod", "hog"]);
        table.contains("Evicted").then_some(())
    })
    .await;
    let json = c.ctl_json(&["get", "pod", "hog"]);
    assert_eq!(json["status"]["phase"], "Failed", "{json}");
    assert_eq!(
        json["status"]["reason"], "Usage of EmptyDir volume \"cache\" exceeds the limit \"1Mi\".",
        "{json}"
    );
    let main = &json["status"]["containerStatuses"][0];
    assert_eq!(main["state"]["terminated"]["reason"], "Evicted", "{json}");
    assert!(
        pod_containers(&c.id, "hog").await.is_empty(),
        "an evicted pod's containers are removed"
    );

    // It stays Failed (nothing restarts it), and the pod under its limit runs on.
    tokio::time::sleep(secs(1)).await;
    assert_eq!(c.pod("hog").await.phase(), PodPhase::Failed);
    assert!(pod_containers(&c.id, "hog").await.is_empty());
    let modest = c.pod("modest").await;
    assert!(modest.ready, "{modest:?}");
    assert_eq!(pod_containers(&c.id, "modest").await.len(), 2);

    c.ctl_ok(&["delete", "pod", "hog"]);
    c.wait_for("hog gone", secs(30), || async {
        (!c.pods().await.iter().any(|p| p.name == "hog")).then_some(())
    })
    .await;
    c.ctl_ok(&["delete", "pod", "modest"]);
    let _ = agent.kill();
    let _ = agent.wait();
    docker_cleanup(&c.id);
    c.finish().await;
}

/// When each of these containers last started, as the engine says.
async fn started_at(containers: &[PodContainer]) -> Vec<String> {
    let docker = docker().await.unwrap();
    let mut times = Vec::new();
    for container in containers {
        let info = docker
            .inspect_container(
                &container.id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .unwrap();
        times.push(info.state.and_then(|s| s.started_at).unwrap_or_default());
    }
    times
}
