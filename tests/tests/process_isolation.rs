//! Process pods of a root agent (kube9d's process nodes, as these tests run as root) run as a
//! user of their own: not root, unable to read /etc/shadow, kube9d's data directory or another
//! pod's files; `runAsUser: 0` waits until kube9d allows root (`--allow-root-process-pods`).

mod support;

use kube9_proto::pb::{ContainerState, PodPhase};
use support::*;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `pod_yaml` with a container-level securityContext.
fn pod_as(name: &str, script: &str, security_context: &str) -> String {
    format!(
        "{}    securityContext: {security_context}\n",
        pod_yaml(name, "100m", script)
    )
}

async fn wait_log(c: &TestCluster, pod: &str, marker: &str) -> String {
    c.wait_for(&format!("{marker} in {pod}'s log"), secs(20), || async {
        let out = c.ctl(&["logs", pod]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains(marker).then_some(text)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_pods_run_as_their_own_unprivileged_user() {
    if !is_root() {
        eprintln!("skipped: the agent must run as root to give pods users of their own");
        return;
    }
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "4")]).await;
    let node = c.node("n1").await;
    assert_eq!(node.pod_isolation, "pods run as uid 200000+ (one per pod)");
    let describe = c.ctl_ok(&["describe", "node", "n1"]);
    assert!(
        describe.contains("Pod isolation:") && describe.contains("pods run as uid 200000+"),
        "{describe}"
    );

    let data = c.data_dir.display().to_string();
    let script = format!(
        "id -u; cat /etc/shadow || echo shadow-denied; ls {data}/store || echo store-denied; \
         ls {data} || echo data-denied; cat {data}/secret.key || echo key-denied; \
         echo hush > mine; echo started; sleep 1000"
    );
    c.apply(&pod_yaml("first", "100m", &script));
    c.wait_pod_phase("first", PodPhase::Running, secs(30)).await;
    let log = wait_log(&c, "first", "started").await;
    let uid: u32 = log.lines().next().unwrap().trim().parse().expect("a uid");
    assert!(uid >= 200_000, "pod runs as uid {uid}:\n{log}");
    for denied in ["shadow-denied", "store-denied", "data-denied", "key-denied"] {
        assert!(log.contains(denied), "missing {denied}:\n{log}");
    }
    assert!(!log.contains("root:"), "read /etc/shadow:\n{log}");

    // exec runs as the pod's user too, in its working directory.
    let exec = c.ctl_ok(&["exec", "first", "--", "sh", "-c", "id -u; cat mine"]);
    assert_eq!(exec, format!("{uid}\nhush\n"));

    // Another pod has another user and cannot see the first pod's files or logs.
    let first_dir = c.data_dir.join("nodes/n1/pods/default/first");
    let first_dir = first_dir.display();
    let spy = format!(
        "id -u; ls {first_dir}/work || echo work-denied; cat {first_dir}/work/mine || echo file-denied; \
         cat {first_dir}/main.log || echo log-denied; echo spied; sleep 1000"
    );
    c.apply(&pod_yaml("second", "100m", &spy));
    c.wait_pod_phase("second", PodPhase::Running, secs(30))
        .await;
    let log = wait_log(&c, "second", "spied").await;
    let second_uid: u32 = log.lines().next().unwrap().trim().parse().expect("a uid");
    assert!(second_uid >= 200_000 && second_uid != uid, "{log}");
    for denied in ["work-denied", "file-denied", "log-denied"] {
        assert!(log.contains(denied), "missing {denied}:\n{log}");
    }
    assert!(!log.contains("hush"), "{log}");

    // runAsUser picks the user; root is refused unless kube9d allows it.
    c.apply(&pod_as("chosen", "id -u; sleep 1000", "{runAsUser: 4242}"));
    assert_eq!(wait_log(&c, "chosen", "4242").await, "4242\n");
    c.apply(&pod_as("rooted", "id -u; sleep 1000", "{runAsUser: 0}"));
    let waiting = c
        .wait_for("rooted to wait", secs(20), || async {
            let pod = c.pod("rooted").await;
            let main = pod.containers.first()?;
            (main.state() == ContainerState::Waiting && main.reason == "CreateContainerConfigError")
                .then_some(pod)
        })
        .await;
    assert_eq!(
        waiting.containers[0].message,
        "runAsUser 0 is not allowed on process nodes (kube9d --allow-root-process-pods)"
    );
    assert_ne!(waiting.phase(), PodPhase::Running);
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_process_pods_run_once_kube9d_allows_them() {
    if !is_root() {
        eprintln!("skipped: needs a root agent");
        return;
    }
    let c = TestCluster::start(Options::process().arg("--allow-root-process-pods")).await;
    c.healthy_nodes(&[("n1", "2")]).await;
    c.apply(&pod_as("rooted", "id -u; sleep 1000", "{runAsUser: 0}"));
    c.wait_pod_phase("rooted", PodPhase::Running, secs(30))
        .await;
    assert_eq!(wait_log(&c, "rooted", "0").await, "0\n");
    c.finish().await;
}
