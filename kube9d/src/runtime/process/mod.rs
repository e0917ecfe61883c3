//! Node agents as local `kube9-node` processes, for machines without Docker.
//!
//! Each agent gets `<data_dir>/nodes/<name>/` as its state directory and `agent.log` there for
//! its output. The agent calls `setsid()` itself, so its session id is its pid and every pod
//! process it starts stays in that session: killing a node means killing that session.
//! Agents run as kube9d's user; as root they run each pod as a user of its own, which must
//! pass through `<data_dir>` and `nodes/` to reach its directory: `prepare` makes those two
//! 0711 (searchable, not listable) when kube9d is root.
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
//!
//! The `/proc` scanning lives in `procfs`; this module spawns, watches and kills agents.

mod procfs;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::os::unix::fs::PermissionsExt;
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

use self::procfs::{find_agents, probe, session_members, stat, Agent, Owner, Probe};
use super::{Error, NodeLaunch, NodeRuntime, Observed, OwnedInstance, Result, RuntimeKind};

/// Settings of the process runtime.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    pub cluster_id: String,
    /// The `kube9-node` executable to run.
    pub node_binary: PathBuf,
    /// Agents keep their state and logs under `<data_dir>/nodes/<name>/`.
    pub data_dir: PathBuf,
    /// The join token (file) and CA (file) the agents get.
    pub auth: crate::runtime::NodeAuth,
}

/// An agent this kube9d spawned.
#[derive(Debug, Clone)]
struct Child {
    node_name: String,
    /// Set by the task that waits for the child; `None` while it runs.
    exit_code: Option<i64>,
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
            owner: Owner::new(&config.cluster_id, &config.data_dir),
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
            kind: RuntimeKind::Process.as_str().into(),
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
        let auth = &self.config.auth;
        let mut cmd = tokio::process::Command::new(binary);
        // Only what kube9d says here: not a token or server the caller's shell exported.
        for var in [
            "KUBE9_TOKEN",
            "KUBE9_TOKEN_FILE",
            "KUBE9_CA_FILE",
            "KUBE9_CA_CERT_HASH",
            "KUBE9_INSECURE",
            "KUBE9_SERVER",
        ] {
            cmd.env_remove(var);
        }
        match &auth.token_file {
            Some(file) => cmd.env("KUBE9_TOKEN_FILE", file),
            None => cmd.env("KUBE9_TOKEN", &auth.token),
        };
        match (&auth.ca_file, auth.tls()) {
            (Some(file), true) => cmd.env("KUBE9_CA_FILE", file),
            (None, true) => cmd.env("KUBE9_CA_CERT_HASH", &auth.ca_hash),
            (_, false) => cmd.env("KUBE9_INSECURE", "true"),
        };
        cmd.arg("--cluster-id")
            .arg(&self.config.cluster_id)
            .arg("--name")
            .arg(&spec.name)
            .arg("--server")
            .arg(auth.server_url("127.0.0.1", spec.server_port))
            .arg("--cpu-millis")
            .arg(spec.cpu_millis.to_string())
            .arg("--heartbeat-interval-ms")
            .arg(spec.heartbeat_interval_ms.to_string())
            .arg("--state-dir")
            .arg(&dir)
            .env("KUBE9_INSTANCE_ID", &spec.instance_id)
            // Process nodes run their pods as processes too, engine or not.
            .env("KUBE9_POD_RUNTIME", "process")
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
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Process
    }

    async fn prepare(&self) -> Result<()> {
        let nodes = self.config.data_dir.join("nodes");
        tokio::fs::create_dir_all(&nodes).await?;
        if nix::unistd::geteuid().is_root() {
            // Our agents run as root and give each process pod a user of its own, whose
            // working directory is under `nodes/<node>/pods/`: the pod must be able to pass
            // through the data directory and `nodes/` (x for others), not to list them (no r).
            // Everything in them stays private: `store/` 0700, files 0600. The store makes the
            // data directory 0700 again at each start, before this runs.
            for dir in [&self.config.data_dir, &nodes] {
                tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).await?;
            }
        }
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
        Err(Error::Unsupported(
            "partition",
            RuntimeKind::Process.as_str(),
        ))
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
    let owner = Owner::new(&config.cluster_id, &config.data_dir);
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
        let members = session_members(pid);
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
