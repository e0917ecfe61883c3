//! Node agents as local `kube9-node` processes, for machines without Docker.
//!
//! Each agent gets `<data_dir>/nodes/<name>/` as its state directory and `agent.log` there for
//! its output. The agent calls `setsid()` itself, so its session id is its pid and every pod
//! process it starts stays in that session: killing a node means killing that session.
//!
//! Agents outlive kube9d on purpose, like containers do. After a kube9d restart an agent is no
//! longer our child, so it is recognised through `/proc`: alive, not a zombie, and started
//! with `--cluster-id <id> --name <node> … --state-dir <data_dir>/nodes/<node>`. The state
//! directory is what tells our agents from one a person started by hand for the same cluster
//! (an "external" node), which this runtime must never claim or kill. The runtime passes it as
//! an absolute path, so a kube9d started again from another directory still recognises it.
//!
//! A pid can be reused once its process is gone, so the runtime also remembers each agent's
//! start time (`/proc/<pid>/stat`) from launch, or from the first time it verifies an adopted
//! agent, and treats a pid with another start time as someone else's.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use kube9_proto::pb::RuntimeHandle;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tracing::{debug, info, warn};

use super::{Error, NodeLaunch, NodeRuntime, Observed, OwnedInstance, Result};

/// Settings of the process runtime.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    pub cluster_id: String,
    /// The `kube9-node` executable to run.
    pub node_binary: PathBuf,
    /// Agents keep their state and logs under `<data_dir>/nodes/<name>/`.
    pub data_dir: PathBuf,
}

/// An agent this kube9d spawned.
#[derive(Debug, Clone)]
struct Child {
    node_name: String,
    /// Set by the task that waits for the child; `None` while it runs.
    exit_code: Option<i64>,
}

/// What makes a process one of this runtime's agents.
#[derive(Debug, Clone)]
struct Owner {
    cluster_id: String,
    /// `<data_dir>/nodes`, absolute: agents run with `--state-dir <nodes_root>/<name>`.
    nodes_root: PathBuf,
}

impl Owner {
    fn of(config: &ProcessConfig) -> Self {
        // Canonical when the data dir exists (kube9d creates it first), so two spellings of
        // one directory agree; absolute otherwise.
        let data_dir = std::fs::canonicalize(&config.data_dir)
            .or_else(|_| std::path::absolute(&config.data_dir))
            .unwrap_or_else(|_| config.data_dir.clone());
        Self {
            cluster_id: config.cluster_id.clone(),
            nodes_root: data_dir.join("nodes"),
        }
    }

    /// The node name if `args` are those of an agent this runtime launched
    /// (`… --cluster-id <id> --name <node> … --state-dir <nodes_root>/<node> …`).
    fn node_name(&self, args: &[String]) -> Option<String> {
        let value_of = |flag: &str| {
            let at = args.iter().position(|a| a == flag)?;
            args.get(at + 1)
        };
        if *value_of("--cluster-id")? != self.cluster_id {
            return None;
        }
        let name = value_of("--name")?;
        let state_dir = Path::new(value_of("--state-dir")?);
        let expected = self.nodes_root.join(name);
        // A relative path would be relative to the agent's working directory, not ours.
        let ours = state_dir.is_absolute()
            && (state_dir == expected
                || matches!(
                    (std::fs::canonicalize(state_dir), std::fs::canonicalize(&expected)),
                    (Ok(a), Ok(b)) if a == b
                ));
        ours.then(|| name.clone())
    }
}

/// Runs node agents as local processes. See the module docs.
pub struct ProcessRuntime {
    config: ProcessConfig,
    owner: Owner,
    /// Agents spawned by this instance, by pid.
    children: Arc<parking_lot::Mutex<HashMap<i32, Child>>>,
    /// Start time (clock ticks after boot) of each agent verified as ours, by pid: a pid with
    /// another start time was reused and is left alone.
    start_times: parking_lot::Mutex<HashMap<i32, u64>>,
}

impl ProcessRuntime {
    pub fn new(config: ProcessConfig) -> Self {
        Self {
            owner: Owner::of(&config),
            config,
            children: Arc::default(),
            start_times: parking_lot::Mutex::default(),
        }
    }

    pub fn config(&self) -> &ProcessConfig {
        &self.config
    }

    /// `<data_dir>/nodes/<name>` as an absolute path: the agent's state directory, holding
    /// `agent.log`.
    pub fn node_dir(&self, name: &str) -> PathBuf {
        self.owner.nodes_root.join(name)
    }

    fn handle(pid: i32, state: String) -> RuntimeHandle {
        RuntimeHandle {
            kind: "process".into(),
            id: pid.to_string(),
            ip: "127.0.0.1".into(),
            state,
            container_name: String::new(),
        }
    }

    fn observe(&self, pid: i32) -> Observed {
        if let Some(child) = self.children.lock().get(&pid) {
            return match child.exit_code {
                Some(code) => Observed::Exited { code, oom: false },
                None => Observed::Running,
            };
        }
        match self.probe(pid) {
            Probe::Agent { .. } => Observed::Running,
            Probe::Gone | Probe::Stranger => Observed::Missing,
        }
    }

    /// [`probe`] against the start time recorded for `pid`; records it the first time an
    /// adopted agent is verified.
    fn probe(&self, pid: i32) -> Probe {
        let known = self.start_times.lock().get(&pid).copied();
        let found = probe(pid, &self.owner, known);
        if let Probe::Agent { started, .. } = found {
            self.start_times.lock().entry(pid).or_insert(started);
        }
        found
    }

    /// Kills the agent's process tree off the async threads (it sleeps between sweeps).
    async fn kill_tree(&self, pid: i32) -> Result<bool> {
        let owner = self.owner.clone();
        let started = self.start_times.lock().get(&pid).copied();
        tokio::task::spawn_blocking(move || kill_agent_tree(pid, &owner, started))
            .await
            .map_err(|e| Error::Other(format!("failed to kill node process {pid}: {e}")))
    }

    fn spawn_agent(&self, spec: &NodeLaunch) -> Result<tokio::process::Child> {
        let dir = self.node_dir(&spec.name);
        std::fs::create_dir_all(&dir)?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("agent.log"))?;
        let binary = &self.config.node_binary;
        tokio::process::Command::new(binary)
            .arg("--cluster-id")
            .arg(&self.config.cluster_id)
            .arg("--name")
            .arg(&spec.name)
            .arg("--server")
            .arg(format!("http://127.0.0.1:{}", spec.server_port))
            .arg("--cpu-millis")
            .arg(spec.cpu_millis.to_string())
            .arg("--heartbeat-interval-ms")
            .arg(spec.heartbeat_interval_ms.to_string())
            .arg("--state-dir")
            .arg(&dir)
            .env("KUBE9_INSTANCE_ID", &spec.instance_id)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // The agent makes its own session; it must survive kube9d.
            .kill_on_drop(false)
            .spawn()
            .map_err(|e| spawn_error(binary, e))
    }

    /// Records the child's exit status once it ends, so `inspect` can report it.
    fn watch(&self, pid: i32, mut child: tokio::process::Child) {
        let children = Arc::clone(&self.children);
        tokio::spawn(async move {
            let code = match child.wait().await {
                Ok(status) => status
                    .code()
                    .map(i64::from)
                    .unwrap_or_else(|| 128 + i64::from(status.signal().unwrap_or(0))),
                Err(e) => {
                    warn!(pid, error = %e, "failed to wait for node process");
                    -1
                }
            };
            debug!(pid, code, "node process exited");
            // Removed nodes have no entry any more; do not bring it back.
            if let Some(entry) = children.lock().get_mut(&pid) {
                entry.exit_code = Some(code);
            }
        });
    }
}

#[async_trait]
impl NodeRuntime for ProcessRuntime {
    fn kind(&self) -> super::RuntimeKind {
        super::RuntimeKind::Process
    }

    async fn prepare(&self) -> Result<()> {
        tokio::fs::create_dir_all(self.config.data_dir.join("nodes")).await?;
        Ok(())
    }

    async fn launch(&self, spec: &NodeLaunch) -> Result<RuntimeHandle> {
        let owner = self.owner.clone();
        let name = spec.name.clone();
        let stale = tokio::task::spawn_blocking(move || {
            let stale: Vec<Agent> = (find_agents(&owner).into_iter())
                .filter(|agent| agent.node == name)
                .collect();
            for agent in &stale {
                kill_agent_tree(agent.pid, &owner, Some(agent.started));
            }
            stale.into_iter().map(|agent| agent.pid).collect::<Vec<_>>()
        })
        .await
        .map_err(|e| Error::Other(format!("failed to look for stale node processes: {e}")))?;
        if !stale.is_empty() {
            info!(node = %spec.name, pids = ?stale, "killed stale node processes");
        }

        let child = self.spawn_agent(spec)?;
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| Error::Other(format!("node process {} has no pid", spec.name)))?;
        let entry = Child {
            node_name: spec.name.clone(),
            exit_code: None,
        };
        self.children.lock().insert(pid, entry);
        // Set at fork, kept across exec; readable even if the agent already exited, since
        // nothing has reaped it yet.
        if let Some(stat) = stat(pid) {
            self.start_times.lock().insert(pid, stat.started);
        }
        self.watch(pid, child);
        info!(node = %spec.name, pid, "started node process");
        Ok(Self::handle(pid, Observed::Running.label()))
    }

    async fn inspect(&self, handle: &RuntimeHandle) -> Result<Observed> {
        Ok(self.observe(parse_pid(handle)?))
    }

    async fn restart(&self, handle: &RuntimeHandle, spec: &NodeLaunch) -> Result<RuntimeHandle> {
        self.remove(handle).await?;
        self.launch(spec).await
    }

    async fn stop(&self, handle: &RuntimeHandle, grace: Duration) -> Result<()> {
        let pid = parse_pid(handle)?;
        if self.observe(pid) == Observed::Running {
            // The agent deregisters on SIGTERM; a failure here means it is already gone.
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            let deadline = Instant::now() + grace;
            while self.observe(pid) == Observed::Running && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // Kills the agent if it outlived the grace period, and its pods in any case.
        self.kill_tree(pid).await?;
        Ok(())
    }

    async fn kill(&self, handle: &RuntimeHandle) -> Result<()> {
        let pid = parse_pid(handle)?;
        let found = self.kill_tree(pid).await?;
        if !found && self.observe(pid) == Observed::Missing {
            return Err(Error::NotFound(format!("process {pid}")));
        }
        Ok(())
    }

    async fn remove(&self, handle: &RuntimeHandle) -> Result<()> {
        let pid = parse_pid(handle)?;
        self.kill_tree(pid).await?;
        self.children.lock().remove(&pid);
        self.start_times.lock().remove(&pid);
        Ok(())
    }

    async fn set_partitioned(&self, _handle: &RuntimeHandle, _partitioned: bool) -> Result<()> {
        Err(Error::Unsupported("partition", "process"))
    }

    async fn list_owned(&self) -> Result<Vec<OwnedInstance>> {
        let owner = self.owner.clone();
        let running = tokio::task::spawn_blocking(move || find_agents(&owner))
            .await
            .map_err(|e| Error::Other(format!("failed to scan /proc: {e}")))?;
        let mut owned: HashMap<i32, OwnedInstance> = HashMap::new();
        for agent in running {
            let known = *(self.start_times.lock())
                .entry(agent.pid)
                .or_insert(agent.started);
            if known != agent.started {
                // The pid of an agent we knew, reused by another one: not that instance.
                continue;
            }
            let instance = OwnedInstance {
                node_name: agent.node,
                handle: Self::handle(agent.pid, Observed::Running.label()),
                observed: Observed::Running,
            };
            owned.insert(agent.pid, instance);
        }
        // Our own children are ours without a scan: one may not have made its session yet,
        // and those that exited are still instances, like exited containers.
        for (pid, child) in self.children.lock().iter() {
            let observed = match child.exit_code {
                Some(code) => Observed::Exited { code, oom: false },
                None => Observed::Running,
            };
            owned.entry(*pid).or_insert_with(|| OwnedInstance {
                node_name: child.node_name.clone(),
                handle: Self::handle(*pid, observed.label()),
                observed,
            });
        }
        Ok(owned.into_values().collect())
    }
}

/// Kills every node agent that a runtime with `config` launched on this machine (same cluster
/// id and data dir), together with its pods; agents started by hand are left alone. Blocking;
/// meant for cleanup (tests, `kube9d` teardown).
pub fn kill_cluster_processes(config: &ProcessConfig) {
    let owner = Owner::of(config);
    for agent in find_agents(&owner) {
        debug!(pid = agent.pid, node = %agent.node, "killing node process");
        kill_agent_tree(agent.pid, &owner, Some(agent.started));
    }
}

fn parse_pid(handle: &RuntimeHandle) -> Result<i32> {
    (handle.id.parse::<i32>().ok())
        .filter(|pid| *pid > 0)
        .ok_or_else(|| Error::Other(format!("invalid process handle id {:?}", handle.id)))
}

fn spawn_error(binary: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::Other(format!(
            "kube9-node not found at {}: build it with `cargo build --release -p kube9-node` \
             or set --node-binary/KUBE9_NODE_BINARY",
            binary.display()
        ))
    } else {
        Error::Other(format!("failed to start {}: {e}", binary.display()))
    }
}

/// What a pid is, as far as this runtime is concerned.
#[derive(Debug, PartialEq, Eq)]
enum Probe {
    /// A live agent this runtime launched, serving `node`, started at `started`. `leader`:
    /// it leads its session, as agents do once started (a pod the agent forked shows the
    /// agent's command line until it execs, but not its session).
    Agent {
        node: String,
        started: u64,
        leader: bool,
    },
    /// No such process, or a zombie.
    Gone,
    /// A live process that is not one of this runtime's agents: another program, an agent
    /// started by hand, or a reused pid (its start time is not `expected_start`).
    Stranger,
}

fn probe(pid: i32, owner: &Owner, expected_start: Option<u64>) -> Probe {
    match stat(pid) {
        None => Probe::Gone,
        Some(stat) if stat.state == 'Z' || stat.state == 'X' => Probe::Gone,
        Some(stat) if expected_start.is_some_and(|t| t != stat.started) => Probe::Stranger,
        Some(stat) => match cmdline(pid).and_then(|args| owner.node_name(&args)) {
            Some(node) => Probe::Agent {
                node,
                started: stat.started,
                leader: stat.session == pid,
            },
            None => Probe::Stranger,
        },
    }
}

/// SIGKILLs the agent `pid` and every process in its session (its pods). Returns whether
/// anything was killed. A live pid that is not our agent (or not the instance started at
/// `expected_start`) is left alone, and so is its session. A dead leader's session is swept:
/// Linux does not hand out a pid while it still names a session, so leftover members can
/// only be that agent's pods.
fn kill_agent_tree(pid: i32, owner: &Owner, expected_start: Option<u64>) -> bool {
    let mut killed = false;
    match probe(pid, owner, expected_start) {
        Probe::Stranger => return false,
        Probe::Agent { .. } => killed |= kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok(),
        Probe::Gone => {}
    }
    // Several rounds: a pod may fork while its siblings are being killed.
    for _ in 0..10 {
        let members: Vec<i32> = all_pids()
            .filter(|p| *p != pid)
            .filter(|p| stat(*p).is_some_and(|s| s.session == pid && s.state != 'Z'))
            .collect();
        if members.is_empty() {
            break;
        }
        for member in members {
            killed |= kill(Pid::from_raw(member), Signal::SIGKILL).is_ok();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    killed
}

/// A live agent found in `/proc`.
struct Agent {
    pid: i32,
    node: String,
    started: u64,
}

/// Live agents this runtime (`owner`) launched that lead their session: a process that has
/// not called `setsid` yet is either an agent still starting (our own children are known
/// without a scan) or a pod about to exec.
fn find_agents(owner: &Owner) -> Vec<Agent> {
    let me = std::process::id() as i32;
    all_pids()
        .filter(|pid| *pid != me)
        .filter_map(|pid| match probe(pid, owner, None) {
            Probe::Agent {
                node,
                started,
                leader: true,
            } => Some(Agent { pid, node, started }),
            _ => None,
        })
        .collect()
}

fn all_pids() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
}

struct Stat {
    state: char,
    session: i32,
    /// Start time in clock ticks after boot: with the pid, it names one process.
    started: u64,
}

/// The state (field 3), session id (6) and start time (22) from `/proc/<pid>/stat`.
fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let session = fields.nth(2)?.parse().ok()?;
    let started = fields.nth(15)?.parse().ok()?;
    Some(Stat {
        state,
        session,
        started,
    })
}

fn cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(args)
}

#[cfg(test)]
mod tests {
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

    fn session_members(leader: i32) -> Vec<i32> {
        all_pids()
            .filter(|p| *p != leader)
            .filter(|p| stat(*p).is_some_and(|s| s.session == leader && s.state != 'Z'))
            .collect()
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
}
