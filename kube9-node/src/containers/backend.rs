//! How a pod's containers are run: the one thing that differs between running pods as
//! processes on the node ([`ProcessBackend`]) and as containers from their images through a
//! container engine ([`CriBackend`], see [`crate::cri`]). The pod lifecycle in [`super::pod`]
//! (init containers, restarts, back-off, probes, status) is the same for both.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::FutureExt;
use kube9_proto::pb;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::sync::mpsc;
use tracing::warn;

use super::exec::{self as process_exec, ExecOutcome};
use super::isolation::{self, Identity, Isolation, PodDirs};
use super::logs;
use super::logwriter;
use super::spawn::{self, SpawnContext};
use crate::kubelet::probe;
use crate::paths::is_path_component;

/// Which container of a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Init(usize),
    App(usize),
}

impl Slot {
    /// The container's spec in `pod`.
    pub fn of<'a>(&self, pod: &'a pb::Pod) -> &'a pb::Container {
        match *self {
            Slot::Init(i) => &pod.init_containers[i],
            Slot::App(i) => &pod.containers[i],
        }
    }
}

/// How a container's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exited {
    pub code: i32,
    /// The kernel killed it for going over its memory limit.
    pub oom_killed: bool,
    pub message: String,
}

/// A pod, set up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prepared {
    /// The pod IP, if it has one.
    pub ip: Option<String>,
    /// Its containers are an earlier agent's, taken over (their runs are [`Resumed`]).
    pub taken_over: bool,
}

/// A started container.
pub struct Started {
    /// The runtime's id of it (`pid://N` for a process).
    pub id: String,
    /// Its process on the node, where there is one to name.
    pub pid: i32,
    /// Shown in the container's status while it runs.
    pub note: String,
    /// Resolves when it has exited.
    pub exit: BoxFuture<'static, Exited>,
    /// Unix milliseconds of its start, as the runtime recorded it (`None`: just now).
    pub started_ms: Option<i64>,
    /// Set when this is a run an earlier agent started, taken over rather than started.
    pub resumed: Option<Resumed>,
}

/// A run an earlier agent of this node started (see [`super::adopt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resumed {
    /// How many runs came before it.
    pub restarts: u32,
}

/// Why a container did not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// It could not even be created (`ErrImagePull`, `ErrImageNeverPull`,
    /// `CreateContainerError`): it waits with this reason and is tried again after a back-off.
    Waiting { reason: String, message: String },
    /// It was created but could not run (a missing program): it counts as run and exited.
    Exited(Exited),
}

/// Runs a pod's containers. One per node, shared by all its pods.
#[async_trait]
pub trait PodBackend: Send + Sync {
    /// `process` or `docker`, as the agent reports it.
    fn kind(&self) -> &'static str;

    /// Runs once when the agent starts, before it registers (and so before any pod): finds
    /// what an earlier agent of this node left.
    async fn startup(&self) -> Result<(), String> {
        Ok(())
    }

    /// Pods (by uid) an earlier agent left running that this one can take over.
    fn adoptable(&self) -> Vec<String> {
        Vec::new()
    }

    /// kube9d's answer to [`Self::adoptable`]: the pods in `keep` are taken over when their
    /// RunPod comes; everything else an earlier agent left is removed. Only the first call
    /// does anything.
    async fn adopt_only(&self, _keep: &[String]) {}

    /// Sets the pod up before its first container starts.
    async fn prepare(&self, pod: &pb::Pod) -> Result<Prepared, String>;

    /// Starts a container of the pod (`restart`: it ran before).
    async fn start(&self, pod: &pb::Pod, slot: Slot, restart: bool) -> Result<Started, StartError>;

    /// Stops a started container in the background: SIGTERM, SIGKILL after `grace`.
    fn kill(&self, id: &str, grace: Duration);

    /// Stops everything the pod runs (SIGTERM, SIGKILL after `grace`) and removes what the
    /// pod left on the node. `running` are the ids of its containers that were started.
    async fn teardown(&self, pod: &pb::Pod, running: Vec<String>, grace: Duration);

    /// Where the container's probes connect and how they run commands in it.
    fn prober(&self, pod: &pb::Pod, slot: Slot, id: &str) -> (String, Arc<dyn probe::Exec>);

    /// The container's output (`previous`: of the run before its last restart).
    async fn logs(
        &self,
        pod: &str,
        container: &str,
        tail: u32,
        previous: bool,
    ) -> Result<Vec<u8>, String>;

    /// The container's output as it is written, into `sink` until it closes.
    async fn follow(
        &self,
        pod: &str,
        container: &str,
        tail: u32,
        sink: mpsc::Sender<Vec<u8>>,
    ) -> Result<(), String>;

    /// Runs `command` in the running container.
    async fn exec(
        &self,
        pod: &pb::Pod,
        container: &str,
        command: &[String],
    ) -> Result<ExecOutcome, String>;

    /// Bytes used by each of the pod's disk emptyDirs that have a `sizeLimit`, by volume name
    /// (see [`super::eviction`]); none while the pod is not set up. Processes have no
    /// volumes of their own.
    async fn empty_dir_usage(&self, _pod: &pb::Pod) -> Result<Vec<(String, u64)>, String> {
        Ok(Vec::new())
    }
}

// ----------------------------------------------------------------------------------------------
// Processes
// ----------------------------------------------------------------------------------------------

/// Pods as processes on the node: each container a process group with its output in a log
/// file, the pod's `work/` directory as working directory, as the pod's own user when the
/// agent is root (see [`isolation`]). The image is not run.
pub struct ProcessBackend {
    pub ctx: SpawnContext,
    pub state_dir: PathBuf,
    pub isolation: Arc<Isolation>,
}

impl ProcessBackend {
    /// The user `container` of `pod` runs as (`None`: the agent's), or why it may not run.
    fn identity(
        &self,
        pod: &pb::Pod,
        container: &pb::Container,
    ) -> Result<Option<Identity>, StartError> {
        self.isolation
            .container_identity(pod, container)
            .map_err(|message| StartError::Waiting {
                reason: isolation::CONFIG_ERROR.into(),
                message,
            })
    }

    fn work_dir(&self, pod: &pb::Pod) -> PathBuf {
        PodDirs::work(&logs::pod_dir(&self.state_dir, &pod.key()))
    }

    /// SIGTERM to the pod's process groups, SIGKILL after `grace` to what is left of them.
    async fn stop_processes(&self, pod: &pb::Pod, running: Vec<String>, grace: Duration) {
        let pids: Vec<Pid> = running.iter().filter_map(|id| pid_of(id)).collect();
        if pids.is_empty() {
            return;
        }
        for pid in &pids {
            signal_group(*pid, Signal::SIGTERM);
        }
        let gone = |pids: &[Pid]| pids.iter().all(|p| !process_exists(*p));
        let deadline = tokio::time::Instant::now() + grace;
        while !gone(&pids) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !gone(&pids) {
            warn!(pod = %pod.name, "grace period over, killing");
        }
        // The leaders are gone or get SIGKILL now; whatever they left in their groups too.
        for pid in &pids {
            signal_group(*pid, Signal::SIGKILL);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while !gone(&pids) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// How long an exit waits for the container's output to reach its log: a process it left
/// behind may hold the pipe open for much longer.
const LOG_DRAIN_WAIT: Duration = Duration::from_secs(1);

/// The exit of a container process, once its output is in its log (or [`LOG_DRAIN_WAIT`] has
/// passed): whoever sees the exit can read everything it wrote.
async fn exited(
    exit: tokio::sync::oneshot::Receiver<super::reaper::Exit>,
    log_drained: tokio::sync::oneshot::Receiver<()>,
) -> Exited {
    let exit = exit.await;
    let _ = tokio::time::timeout(LOG_DRAIN_WAIT, log_drained).await;
    match exit {
        Ok(exit) => Exited {
            code: exit.code(),
            oom_killed: false,
            message: exit.describe(),
        },
        Err(_) => Exited {
            code: -1,
            oom_killed: false,
            message: "exit status lost".into(),
        },
    }
}

fn pid_of(id: &str) -> Option<Pid> {
    id.strip_prefix("pid://")?.parse().ok().map(Pid::from_raw)
}

fn signal_group(pid: Pid, signal: Signal) {
    match killpg(pid, signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(error) => {
            warn!(pgid = pid.as_raw(), %signal, %error, "failed to signal process group")
        }
    }
}

fn process_exists(pid: Pid) -> bool {
    // The reaper collects every child, so a live /proc entry that is no zombie is a live one.
    std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw()))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}

#[async_trait]
impl PodBackend for ProcessBackend {
    fn kind(&self) -> &'static str {
        "process"
    }

    async fn startup(&self) -> Result<(), String> {
        // A process pod outlives an agent killed with SIGKILL (or crashed), and cannot be
        // taken over: it is stopped before this agent registers, so that kube9d starts it
        // again here once, not beside the old copy.
        let (state_dir, isolation) = (self.state_dir.clone(), self.isolation.clone());
        tokio::task::spawn_blocking(move || {
            super::leftovers::stop_leftovers(&state_dir, &isolation);
            // Their files go before their uids are handed out again.
            if matches!(isolation.mode(), isolation::Mode::PerPod { .. }) {
                PodDirs::remove_all_work(&state_dir.join("pods"));
            }
        })
        .await
        .map_err(|e| format!("failed to stop what an earlier agent left: {e}"))
    }

    async fn prepare(&self, pod: &pb::Pod) -> Result<Prepared, String> {
        if !is_path_component(&pod.name) || !is_path_component(pod.ns()) {
            return Err(format!("invalid pod name {:?}", pod.key()));
        }
        let dir = logs::pod_dir(&self.state_dir, &pod.key());
        // The working directory belongs to the pod's own user (none: the agent's user).
        let owner = match self.isolation.mode() {
            isolation::Mode::AgentUser(_) => None,
            isolation::Mode::PerPod { .. } => Some(
                self.isolation
                    .pod_identity(&pod.uid)
                    .ok_or_else(|| "no pod uid left on this node".to_string())?,
            ),
        };
        PodDirs::create(&self.state_dir.join("pods"), &dir, owner)
            .map_err(|e| format!("failed to create pod directory {}: {e}", dir.display()))?;
        Ok(Prepared::default())
    }

    async fn start(&self, pod: &pb::Pod, slot: Slot, restart: bool) -> Result<Started, StartError> {
        let container = slot.of(pod);
        let failed = |exit_code, message| {
            StartError::Exited(Exited {
                code: exit_code,
                oom_killed: false,
                message,
            })
        };
        if !is_path_component(&container.name) {
            return Err(failed(
                126,
                format!("invalid container name {:?}", container.name),
            ));
        }
        let identity = self.identity(pod, container)?;
        let log = logs::log_path(&self.state_dir, &pod.key(), &container.name);
        if restart {
            // The previous run's output stays readable with --previous.
            let previous = logs::previous_log_path(&self.state_dir, &pod.key(), &container.name);
            if let Err(error) = logwriter::move_set(&log, &previous) {
                warn!(pod = %pod.key(), container = %container.name, %error, "failed to keep the previous run's log");
            }
        }
        let work_dir = self.work_dir(pod);
        match spawn::spawn(pod, container, &work_dir, &log, &self.ctx, identity) {
            Ok(started) => {
                let pid = started.pid.as_raw();
                let exit = exited(started.exit, started.log_drained).boxed();
                Ok(Started {
                    id: format!("pid://{pid}"),
                    pid,
                    note: format!(
                        "runs as a process on the node: image {} is not run",
                        container.image
                    ),
                    exit,
                    started_ms: None,
                    resumed: None,
                })
            }
            Err(failure) => Err(failed(failure.exit_code, failure.message)),
        }
    }

    fn kill(&self, id: &str, grace: Duration) {
        let Some(pid) = pid_of(id) else {
            return;
        };
        signal_group(pid, Signal::SIGTERM);
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            signal_group(pid, Signal::SIGKILL);
        });
    }

    async fn teardown(&self, pod: &pb::Pod, running: Vec<String>, grace: Duration) {
        self.stop_processes(pod, running, grace).await;
        let stopped = std::time::Instant::now();
        // Whatever left the pod's process groups (a daemon, `setsid`) still has its uid.
        if let Some(own) = self.isolation.existing_pod_identity(&pod.uid) {
            if matches!(self.isolation.mode(), isolation::Mode::PerPod { .. }) {
                let strays = isolation::processes_of_stopped(own.uid, stopped).await;
                if !strays.is_empty() {
                    warn!(pod = %pod.key(), uid = own.uid, count = strays.len(), "killing what the pod left running");
                }
                for pid in strays {
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
        // Its files go with it, before its uid can go to another pod.
        let dir = logs::pod_dir(&self.state_dir, &pod.key());
        if let Err(error) = PodDirs::remove_work(&dir) {
            warn!(pod = %pod.key(), %error, "failed to remove the pod's working directory");
        }
        self.isolation.release(&pod.uid);
    }

    fn prober(&self, pod: &pb::Pod, slot: Slot, _id: &str) -> (String, Arc<dyn probe::Exec>) {
        let exec = ProcessExec {
            pod: pod.clone(),
            slot,
            work_dir: self.work_dir(pod),
            ctx: self.ctx.clone(),
            isolation: self.isolation.clone(),
        };
        // A process listens on the node's loopback.
        ("127.0.0.1".into(), Arc::new(exec))
    }

    async fn logs(
        &self,
        pod: &str,
        container: &str,
        tail: u32,
        previous: bool,
    ) -> Result<Vec<u8>, String> {
        let (state_dir, pod, container) = (
            self.state_dir.clone(),
            pod.to_string(),
            container.to_string(),
        );
        tokio::task::spawn_blocking(move || {
            let names = vec![container.clone()];
            logs::fetch(&state_dir, &pod, Some(names), &container, tail, previous)
        })
        .await
        .unwrap_or_else(|error| Err(format!("failed to read logs: {error}")))
    }

    async fn follow(
        &self,
        pod: &str,
        container: &str,
        tail: u32,
        sink: mpsc::Sender<Vec<u8>>,
    ) -> Result<(), String> {
        let path = logs::log_path(&self.state_dir, pod, container);
        process_exec::follow(&path, tail, sink).await;
        Ok(())
    }

    async fn exec(
        &self,
        pod: &pb::Pod,
        container: &str,
        command: &[String],
    ) -> Result<ExecOutcome, String> {
        let c = pod
            .containers
            .iter()
            .find(|c| c.name == container)
            .ok_or_else(|| format!("container {container} not found in pod {}", pod.name))?;
        let identity = (self.isolation.container_identity(pod, c))
            .map_err(|e| format!("container {container} cannot run: {e}"))?;
        process_exec::exec(pod, c, &self.work_dir(pod), &self.ctx, identity, command).await
    }
}

/// Probe commands of a process container: run as the container's own process is (same user).
struct ProcessExec {
    pod: pb::Pod,
    slot: Slot,
    work_dir: PathBuf,
    ctx: SpawnContext,
    isolation: Arc<Isolation>,
}

impl probe::Exec for ProcessExec {
    fn exec(&self, command: Vec<String>) -> BoxFuture<'static, Result<i32, String>> {
        let (pod, work_dir, ctx, slot) = (
            self.pod.clone(),
            self.work_dir.clone(),
            self.ctx.clone(),
            self.slot,
        );
        let identity = self.isolation.container_identity(&pod, slot.of(&pod));
        Box::pin(async move {
            let identity = identity?;
            let outcome =
                process_exec::exec(&pod, slot.of(&pod), &work_dir, &ctx, identity, &command);
            outcome.await.map(|o| o.exit_code)
        })
    }
}
