//! Tests of the process runtime. Most run real processes: a shell script stands in for
//! `kube9-node`, leads its own session like the agent and starts one "pod" in it.

use super::procfs::{cmdline, session_members, stat, Owner};
use super::*;

/// Stands in for kube9-node: becomes a session leader like the real agent (util-linux
/// `setsid` execs in place when the caller leads no process group), logs its arguments
/// and starts one "pod" that lives in its session.
const FAKE_AGENT: &str = r#"#!/bin/sh
if [ -z "$K9RT_IN_SESSION" ]; then
    export K9RT_IN_SESSION=1
    exec setsid "$0" "$@"
fi
echo "fake agent $*"
sleep 1000 &
wait
"#;

/// A cluster with its own data dir and fake agent; kills its processes and deletes the
/// directory when dropped, even by a failing test.
struct Fixture {
    runtime: ProcessRuntime,
}

impl Fixture {
    async fn new(test: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let cluster_id = format!("k9rt-{}-{test}-{nanos}", std::process::id());
        let data_dir = std::env::temp_dir().join(&cluster_id);
        std::fs::create_dir_all(&data_dir).unwrap();
        let node_binary = data_dir.join("kube9-node");
        std::fs::write(&node_binary, FAKE_AGENT).unwrap();
        std::fs::set_permissions(
            &node_binary,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let runtime = ProcessRuntime::new(ProcessConfig {
            cluster_id,
            node_binary,
            data_dir,
            auth: Default::default(),
        });
        runtime.prepare().await.unwrap();
        Self { runtime }
    }

    fn spec(&self, name: &str) -> NodeLaunch {
        NodeLaunch {
            name: name.into(),
            cpu_millis: 1000,
            cluster_id: self.runtime.config.cluster_id.clone(),
            server_port: 7777,
            heartbeat_interval_ms: 500,
            instance_id: format!("test-{name}"),
        }
    }

    /// Another runtime of the same cluster: kube9d after a restart.
    fn successor(&self) -> ProcessRuntime {
        ProcessRuntime::new(self.runtime.config.clone())
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        kill_cluster_processes(&self.runtime.config);
        let _ = std::fs::remove_dir_all(&self.runtime.config.data_dir);
    }
}

async fn wait_for(runtime: &ProcessRuntime, handle: &RuntimeHandle, want: Observed) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = runtime.inspect(handle).await.unwrap();
        if seen == want {
            return;
        }
        assert!(Instant::now() < deadline, "wanted {want:?}, still {seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the fake agent runs in its own session with its pod started.
async fn wait_for_pod(handle: &RuntimeHandle) -> Vec<i32> {
    let pid = parse_pid(handle).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pods = session_members(pid);
        if !pods.is_empty() {
            return pods;
        }
        assert!(Instant::now() < deadline, "agent {pid} started no pod");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_launched_agent_is_listed_and_a_kill_takes_its_pods_along() {
    let fx = Fixture::new("kill").await;
    let rt = &fx.runtime;
    let handle = rt.launch(&fx.spec("n1")).await.unwrap();
    assert_eq!(
        (handle.kind.as_str(), handle.ip.as_str()),
        ("process", "127.0.0.1")
    );
    assert_eq!(rt.inspect(&handle).await.unwrap(), Observed::Running);
    let pods = wait_for_pod(&handle).await;

    let owned = rt.list_owned().await.unwrap();
    assert_eq!(owned.len(), 1);
    assert_eq!(
        (owned[0].node_name.as_str(), &owned[0].handle.id),
        ("n1", &handle.id)
    );

    let log = std::fs::read_to_string(rt.node_dir("n1").join("agent.log")).unwrap();
    let cluster_id = &rt.config.cluster_id;
    assert!(
        log.contains(&format!("--cluster-id {cluster_id} --name n1")),
        "{log}"
    );
    assert!(log.contains("--server http://127.0.0.1:7777"), "{log}");

    rt.kill(&handle).await.unwrap();
    wait_for(
        rt,
        &handle,
        Observed::Exited {
            code: 137,
            oom: false,
        },
    )
    .await;
    assert!(pods.iter().all(|p| stat(*p).is_none_or(|s| s.state == 'Z')));
    rt.kill(&handle).await.unwrap();

    rt.remove(&handle).await.unwrap();
    rt.remove(&handle).await.unwrap();
    assert_eq!(rt.inspect(&handle).await.unwrap(), Observed::Missing);
    assert!(matches!(rt.kill(&handle).await, Err(Error::NotFound(_))));
}

#[tokio::test]
async fn stop_terminates_the_agent_then_sweeps_its_session() {
    let fx = Fixture::new("stop").await;
    let rt = &fx.runtime;
    let handle = rt.launch(&fx.spec("n1")).await.unwrap();
    wait_for_pod(&handle).await;
    let started = Instant::now();
    rt.stop(&handle, Duration::from_secs(5)).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "SIGTERM alone ends the agent"
    );
    assert_eq!(
        rt.inspect(&handle).await.unwrap(),
        Observed::Exited {
            code: 128 + 15,
            oom: false
        }
    );
    assert!(session_members(parse_pid(&handle).unwrap()).is_empty());
}

#[tokio::test]
async fn agents_outlive_kube9d_and_are_found_again_through_proc() {
    let fx = Fixture::new("adopt").await;
    let handle = fx.runtime.launch(&fx.spec("n1")).await.unwrap();
    wait_for_pod(&handle).await;

    let successor = fx.successor();
    assert_eq!(successor.inspect(&handle).await.unwrap(), Observed::Running);
    let owned = successor.list_owned().await.unwrap();
    assert_eq!(owned.len(), 1);
    assert_eq!(owned[0].node_name, "n1");

    successor.kill(&handle).await.unwrap();
    wait_for(
        &fx.runtime,
        &handle,
        Observed::Exited {
            code: 137,
            oom: false,
        },
    )
    .await;
    assert_eq!(successor.inspect(&handle).await.unwrap(), Observed::Missing);
    assert!(session_members(parse_pid(&handle).unwrap()).is_empty());
}

#[tokio::test]
async fn restart_and_relaunch_replace_the_agent() {
    let fx = Fixture::new("restart").await;
    let rt = &fx.runtime;
    let first = rt.launch(&fx.spec("n1")).await.unwrap();
    wait_for_pod(&first).await;
    let second = rt.restart(&first, &fx.spec("n1")).await.unwrap();
    assert_ne!(first.id, second.id);
    assert_eq!(rt.inspect(&first).await.unwrap(), Observed::Missing);
    wait_for_pod(&second).await;

    // A launch for a node that still runs (say, from before a crash) replaces it.
    let third = fx.successor().launch(&fx.spec("n1")).await.unwrap();
    wait_for_pod(&third).await;
    wait_for(
        rt,
        &second,
        Observed::Exited {
            code: 137,
            oom: false,
        },
    )
    .await;
    let owned = rt.list_owned().await.unwrap();
    let running: Vec<_> = owned
        .iter()
        .filter(|o| o.handle.state == "running")
        .collect();
    assert_eq!(running.len(), 1, "{owned:?}, third is {third:?}");
    assert_eq!(running[0].handle.id, third.id);
}

#[tokio::test]
async fn other_clusters_and_partitions_are_out_of_reach() {
    let fx = Fixture::new("scope").await;
    let handle = fx.runtime.launch(&fx.spec("n1")).await.unwrap();
    wait_for_pod(&handle).await;

    let other = Fixture::new("other").await;
    assert!(other.runtime.list_owned().await.unwrap().is_empty());
    assert_eq!(
        other.runtime.inspect(&handle).await.unwrap(),
        Observed::Missing
    );
    other.runtime.remove(&handle).await.unwrap();
    assert_eq!(
        fx.runtime.inspect(&handle).await.unwrap(),
        Observed::Running
    );

    let refused = fx.runtime.set_partitioned(&handle, true).await;
    assert!(matches!(
        refused,
        Err(Error::Unsupported("partition", "process"))
    ));
}

/// A fake agent started by hand (not through the runtime); killed with its session when
/// dropped.
struct ExternalAgent {
    child: std::process::Child,
    handle: RuntimeHandle,
}

impl ExternalAgent {
    fn start(binary: &Path, args: &[&str]) -> Self {
        let child = std::process::Command::new(binary)
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let handle = ProcessRuntime::handle(pid, "running".into());
        Self { child, handle }
    }

    fn alive(&self) -> bool {
        let pid = self.child.id() as i32;
        stat(pid).is_some_and(|s| s.state != 'Z') && !session_members(pid).is_empty()
    }
}

impl Drop for ExternalAgent {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        for member in session_members(pid) {
            let _ = kill(Pid::from_raw(member), Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn an_agent_started_by_hand_for_the_same_cluster_is_never_claimed() {
    let fx = Fixture::new("external").await;
    let rt = &fx.runtime;
    let ours = rt.launch(&fx.spec("n1")).await.unwrap();
    wait_for_pod(&ours).await;
    // Same cluster and node name, its own state dir: an "external" node.
    let other_dir = rt.config.data_dir.join("by-hand").join("n1");
    let cluster_id = rt.config.cluster_id.as_str();
    let external = ExternalAgent::start(
        &rt.config.node_binary,
        &[
            "--cluster-id",
            cluster_id,
            "--name",
            "n1",
            "--state-dir",
            other_dir.to_str().unwrap(),
        ],
    );
    wait_for_pod(&external.handle).await;

    // kube9d after a restart: only our agent is adopted, the other one is out of reach.
    let successor = fx.successor();
    let owned = successor.list_owned().await.unwrap();
    let ids: Vec<&str> = owned.iter().map(|o| o.handle.id.as_str()).collect();
    assert_eq!(ids, [ours.id.as_str()]);
    assert_eq!(
        successor.inspect(&external.handle).await.unwrap(),
        Observed::Missing
    );
    successor.remove(&external.handle).await.unwrap();
    assert!(matches!(
        successor.kill(&external.handle).await,
        Err(Error::NotFound(_))
    ));
    successor
        .stop(&external.handle, Duration::ZERO)
        .await
        .unwrap();
    assert!(external.alive(), "an agent started by hand was killed");

    // Relaunching n1 replaces our agent only.
    let relaunched = successor.launch(&fx.spec("n1")).await.unwrap();
    wait_for_pod(&relaunched).await;
    assert_eq!(successor.inspect(&ours).await.unwrap(), Observed::Missing);
    assert!(external.alive(), "an agent started by hand was killed");
    kill_cluster_processes(&rt.config);
    assert!(external.alive(), "an agent started by hand was killed");
}

#[tokio::test]
async fn a_process_with_agent_arguments_outside_its_own_session_is_not_adopted() {
    // What a pod looks like between the agent's fork and its exec.
    let fx = Fixture::new("fork").await;
    let state_dir = fx.runtime.node_dir("n1");
    let mut lookalike = std::process::Command::new("/bin/sh")
        .args(["-c", "read line", "sh", "--cluster-id"])
        .arg(&fx.runtime.config.cluster_id)
        .args(["--name", "n1", "--state-dir"])
        .arg(&state_dir)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = lookalike.id() as i32;
    // The command line reads empty until the exec has set it up.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut args = cmdline(pid).unwrap_or_default();
    while args.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
        args = cmdline(pid).unwrap_or_default();
    }
    assert_eq!(
        fx.runtime.owner.node_name(&args).as_deref(),
        Some("n1"),
        "{args:?}"
    );
    let listed = fx.successor().list_owned().await;
    let _ = lookalike.kill();
    let _ = lookalike.wait();
    assert!(listed.unwrap().is_empty());
}

#[tokio::test]
async fn a_pid_with_another_start_time_is_not_our_agent() {
    let fx = Fixture::new("reuse").await;
    let handle = fx.runtime.launch(&fx.spec("n1")).await.unwrap();
    wait_for_pod(&handle).await;
    let pid = parse_pid(&handle).unwrap();

    // After a restart, the first verification records the start time.
    let successor = fx.successor();
    assert_eq!(successor.inspect(&handle).await.unwrap(), Observed::Running);
    let started = successor.start_times.lock()[&pid];
    assert_eq!(started, stat(pid).unwrap().started);

    // As if the agent had died and its pid gone to another process of the same shape.
    successor.start_times.lock().insert(pid, started - 1);
    assert_eq!(successor.inspect(&handle).await.unwrap(), Observed::Missing);
    assert!(successor.list_owned().await.unwrap().is_empty());
    successor.remove(&handle).await.unwrap();
    assert_eq!(
        fx.runtime.inspect(&handle).await.unwrap(),
        Observed::Running
    );
    assert!(!session_members(pid).is_empty(), "its pods were killed");
}

#[test]
fn agent_arguments_identify_cluster_node_and_state_dir() {
    let owner = |cluster_id: &str| Owner {
        cluster_id: cluster_id.into(),
        nodes_root: "/data/nodes".into(),
    };
    let args = |state_dir: &str| -> Vec<String> {
        let args = ["kube9-node", "--cluster-id", "c1", "--name", "n1"];
        (args.into_iter().chain(["--state-dir", state_dir]))
            .map(String::from)
            .collect()
    };
    let ours = args("/data/nodes/n1");
    assert_eq!(owner("c1").node_name(&ours).as_deref(), Some("n1"));
    assert_eq!(
        owner("c1").node_name(&args("/data/nodes/n1/")).as_deref(),
        Some("n1")
    );
    assert_eq!(owner("c2").node_name(&ours), None);
    assert_eq!(owner("c1").node_name(&ours[..5]), None, "no state dir");
    assert_eq!(owner("c1").node_name(&args("/data/nodes/n2")), None);
    assert_eq!(owner("c1").node_name(&args("/elsewhere/nodes/n1")), None);
    assert_eq!(owner("c1").node_name(&args("nodes/n1")), None, "relative");
}

#[test]
fn the_state_dir_passed_to_agents_is_absolute() {
    let runtime = ProcessRuntime::new(ProcessConfig {
        cluster_id: "c1".into(),
        node_binary: "kube9-node".into(),
        data_dir: "relative-data-dir-that-does-not-exist".into(),
        auth: Default::default(),
    });
    let dir = runtime.node_dir("n1");
    assert!(dir.is_absolute(), "{}", dir.display());
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        dir,
        cwd.join("relative-data-dir-that-does-not-exist/nodes/n1")
    );
}

#[test]
fn stat_reads_the_start_time() {
    let me = std::process::id() as i32;
    let first = stat(me).unwrap();
    assert!(first.started > 0);
    assert_eq!(stat(me).unwrap().started, first.started);
    assert_eq!(first.session, nix::unistd::getsid(None).unwrap().as_raw());
}
