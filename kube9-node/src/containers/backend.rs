//! How a pod's containers are run: the one thing that differs between running pods as
//! processes on the node ([`ProcessBackend`]) and as containers from their images through a
//! container engine ([`CriBackend`], see [`crate::cri`]). The pod lifecycle in [`super::pod`]
//! (init containers, restarts, back-off, probes, status) is the same for both.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use kube9_proto::pb;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::exec::{self as process_exec, ExecOutcome};
use super::logs;
use super::spawn::{self, SpawnContext};
use crate::config::is_path_component;
use crate::cri::{self, ContainerId, ContainerRuntime, PullPolicy, SandboxId};
use crate::kubelet::policy::reason;
use crate::kubelet::probe;

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

    /// Runs once when the agent starts, before it registers (and so before any pod).
    async fn startup(&self) -> Result<(), String> {
        Ok(())
    }

    /// Sets the pod up before its first container starts; returns the pod IP, if it has one.
    async fn prepare(&self, pod: &pb::Pod) -> Result<Option<String>, String>;

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
}

// ----------------------------------------------------------------------------------------------
// Processes
// ----------------------------------------------------------------------------------------------

/// Pods as processes on the node: each container a process group with its output in a log
/// file, the pod directory as working directory. The image is not run.
pub struct ProcessBackend {
    pub ctx: SpawnContext,
    pub state_dir: PathBuf,
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

    async fn prepare(&self, pod: &pb::Pod) -> Result<Option<String>, String> {
        if !is_path_component(&pod.name) {
            return Err(format!("invalid pod name {:?}", pod.name));
        }
        let dir = logs::pod_dir(&self.state_dir, &pod.name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("failed to create pod directory {}: {e}", dir.display()))?;
        Ok(None)
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
        let log = logs::log_path(&self.state_dir, &pod.name, &container.name);
        if restart {
            // The previous run's output stays readable with --previous.
            let previous = logs::previous_log_path(&self.state_dir, &pod.name, &container.name);
            let _ = std::fs::rename(&log, previous);
        }
        let pod_dir = logs::pod_dir(&self.state_dir, &pod.name);
        match spawn::spawn(pod, container, &pod_dir, &log, &self.ctx) {
            Ok(started) => {
                let pid = started.pid.as_raw();
                let exit = started
                    .exit
                    .map(|exit| match exit {
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
                    })
                    .boxed();
                Ok(Started {
                    id: format!("pid://{pid}"),
                    pid,
                    note: format!(
                        "runs as a process on the node: image {} is not run",
                        container.image
                    ),
                    exit,
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

    fn prober(&self, pod: &pb::Pod, slot: Slot, _id: &str) -> (String, Arc<dyn probe::Exec>) {
        let exec = ProcessExec {
            pod: pod.clone(),
            slot,
            pod_dir: logs::pod_dir(&self.state_dir, &pod.name),
            ctx: self.ctx.clone(),
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
        let pod_dir = logs::pod_dir(&self.state_dir, &pod.name);
        process_exec::exec(pod, c, &pod_dir, &self.ctx, command).await
    }
}

/// Probe commands of a process container: run as the container's own process is.
struct ProcessExec {
    pod: pb::Pod,
    slot: Slot,
    pod_dir: PathBuf,
    ctx: SpawnContext,
}

impl probe::Exec for ProcessExec {
    fn exec(&self, command: Vec<String>) -> BoxFuture<'static, Result<i32, String>> {
        let (pod, pod_dir, ctx, slot) = (
            self.pod.clone(),
            self.pod_dir.clone(),
            self.ctx.clone(),
            self.slot,
        );
        Box::pin(async move {
            let outcome = process_exec::exec(&pod, slot.of(&pod), &pod_dir, &ctx, &command);
            outcome.await.map(|o| o.exit_code)
        })
    }
}

// ----------------------------------------------------------------------------------------------
// Containers through a container engine
// ----------------------------------------------------------------------------------------------

/// Pods as containers from their images, through a [`ContainerRuntime`]: one sandbox per pod
/// holding its network namespace and volumes, one container per run of each container (the
/// run before the last restart is kept for `logs --previous`).
pub struct CriBackend {
    pub runtime: Arc<dyn ContainerRuntime>,
    pub cluster: String,
    pub node: String,
    /// Engine network the pod sandboxes join (`None`: the engine's default one).
    pub network: Option<String>,
    pods: Mutex<HashMap<String, CriPod>>,
}

/// What the backend made for one pod binding.
#[derive(Default)]
struct CriPod {
    uid: String,
    sandbox: Option<SandboxId>,
    ip: Option<String>,
    /// Per container: its current run (id, attempt) and the run before.
    current: HashMap<String, (ContainerId, u32)>,
    previous: HashMap<String, ContainerId>,
}

impl CriBackend {
    pub fn new(runtime: Arc<dyn ContainerRuntime>, cluster: &str, node: &str) -> Self {
        CriBackend {
            runtime,
            cluster: cluster.to_string(),
            node: node.to_string(),
            network: None,
            pods: Mutex::new(HashMap::new()),
        }
    }

    fn container_id(
        &self,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<ContainerId, String> {
        let pods = self.pods.lock();
        let record = pods
            .get(pod)
            .ok_or_else(|| format!("pod {pod} not found on this node"))?;
        let found = if previous {
            record.previous.get(container).cloned()
        } else {
            record.current.get(container).map(|(id, _)| id.clone())
        };
        found.ok_or_else(|| {
            if previous {
                format!("previous terminated container \"{container}\" in pod \"{pod}\" not found")
            } else {
                format!("container {container} of pod {pod} has not started")
            }
        })
    }
}

fn engine_error(e: cri::Error) -> String {
    e.to_string()
}

#[async_trait]
impl PodBackend for CriBackend {
    fn kind(&self) -> &'static str {
        "docker"
    }

    /// Removes every container and volume an earlier agent of this node left in the engine.
    /// The agent does not adopt them (yet): kube9d sends the node's pods again once it has
    /// registered, and they must not run twice.
    async fn startup(&self) -> Result<(), String> {
        let selector = cri::Labels::from([
            (cri::labels::CLUSTER.to_string(), self.cluster.clone()),
            (cri::labels::NODE.to_string(), self.node.clone()),
        ]);
        let found = (self.runtime.list_containers(&selector).await).map_err(engine_error)?;
        if !found.is_empty() {
            tracing::info!(
                containers = found.len(),
                "removing containers a previous agent left"
            );
        }
        for c in found {
            if let Err(e) = self.runtime.remove_container(&c.id).await {
                warn!(container = %c.name, error = %e, "failed to remove a leftover container");
            }
        }
        for v in (self.runtime.list_volumes(&selector).await).map_err(engine_error)? {
            if let Err(e) = self.runtime.remove_volume(&v.name).await {
                warn!(volume = %v.name, error = %e, "failed to remove a leftover volume");
            }
        }
        Ok(())
    }

    async fn prepare(&self, pod: &pb::Pod) -> Result<Option<String>, String> {
        let meta = cri::spec::pod_meta(pod, &self.cluster, &self.node);
        for volume in cri::spec::empty_dirs(pod) {
            self.runtime
                .create_empty_dir(&meta, &volume)
                .await
                .map_err(engine_error)?;
        }
        let config = cri::spec::sandbox_config(&meta, pod, 0, self.network.clone());
        let sandbox = self
            .runtime
            .run_sandbox(&config)
            .await
            .map_err(engine_error)?;
        let ip = self
            .runtime
            .inspect_sandbox(&sandbox)
            .await
            .map_err(engine_error)?
            .ip;
        self.pods.lock().insert(
            pod.name.clone(),
            CriPod {
                uid: pod.uid.clone(),
                sandbox: Some(sandbox),
                ip: ip.clone(),
                ..Default::default()
            },
        );
        Ok(ip)
    }

    async fn start(
        &self,
        pod: &pb::Pod,
        slot: Slot,
        _restart: bool,
    ) -> Result<Started, StartError> {
        let container = slot.of(pod);
        let waiting = |reason: &str, message: String| StartError::Waiting {
            reason: reason.to_string(),
            message,
        };
        let policy = PullPolicy::resolve(&container.image_pull_policy, &container.image);
        let image = match self.runtime.ensure_image(&container.image, policy).await {
            Ok(image) => image,
            Err(e @ cri::Error::ImageNeverPull { .. }) => {
                return Err(waiting(reason::ERR_IMAGE_NEVER_PULL, e.to_string()))
            }
            Err(e) => return Err(waiting(reason::ERR_IMAGE_PULL, e.to_string())),
        };
        let (sandbox, attempt) = {
            let pods = self.pods.lock();
            let record = pods.get(&pod.name).filter(|r| r.uid == pod.uid);
            let sandbox = record.and_then(|r| r.sandbox.clone());
            let attempt = record
                .and_then(|r| r.current.get(&container.name))
                .map_or(0, |(_, attempt)| attempt + 1);
            (sandbox, attempt)
        };
        let sandbox = sandbox.ok_or_else(|| {
            waiting(
                reason::CREATE_ERROR,
                format!("pod {} has no sandbox", pod.name),
            )
        })?;
        let meta = cri::spec::pod_meta(pod, &self.cluster, &self.node);
        let config = cri::spec::container_config(&meta, pod, container, &image.id, attempt)
            .map_err(|e| waiting(reason::CREATE_ERROR, e.to_string()))?;
        let id = self
            .runtime
            .create_container(&sandbox, &config)
            .await
            .map_err(|e| waiting(reason::CREATE_ERROR, e.to_string()))?;
        // From here on the run counts: the run before becomes the previous one.
        let stale = {
            let mut pods = self.pods.lock();
            let record = pods.entry(pod.name.clone()).or_default();
            let before = record
                .current
                .insert(container.name.clone(), (id.clone(), attempt))
                .map(|(id, _)| id);
            match before {
                Some(before) => record.previous.insert(container.name.clone(), before),
                None => None,
            }
        };
        if let Some(stale) = stale {
            if let Err(e) = self.runtime.remove_container(&stale).await {
                debug!(error = %e, "failed to remove a container two runs old");
            }
        }
        if let Err(e) = self.runtime.start_container(&id).await {
            return Err(StartError::Exited(Exited {
                code: 128,
                oom_killed: false,
                message: e.to_string(),
            }));
        }
        let pid = match self.runtime.inspect_container(&id).await {
            Ok(info) => info.pid.unwrap_or(0) as i32,
            Err(_) => 0,
        };
        let runtime = self.runtime.clone();
        let waited = id.clone();
        let exit = async move {
            match runtime.wait_container(&waited).await {
                Ok(info) => Exited {
                    code: info.exit_code.unwrap_or(-1),
                    oom_killed: info.oom_killed,
                    message: info.error.unwrap_or_default(),
                },
                Err(e) => Exited {
                    code: -1,
                    oom_killed: false,
                    message: format!("lost track of the container: {e}"),
                },
            }
        }
        .boxed();
        Ok(Started {
            id: id.to_string(),
            pid,
            note: String::new(),
            exit,
        })
    }

    fn kill(&self, id: &str, grace: Duration) {
        let runtime = self.runtime.clone();
        let id = ContainerId(id.to_string());
        tokio::spawn(async move {
            if let Err(e) = runtime.stop_container(&id, grace).await {
                warn!(container = %id, error = %e, "failed to stop container");
            }
        });
    }

    async fn teardown(&self, pod: &pb::Pod, _running: Vec<String>, grace: Duration) {
        let record = self.pods.lock().remove(&pod.name);
        let meta = cri::spec::pod_meta(pod, &self.cluster, &self.node);
        if let Some(sandbox) = record.and_then(|r| r.sandbox) {
            if let Err(e) = self.runtime.stop_sandbox(&sandbox, grace).await {
                warn!(pod = %pod.name, error = %e, "failed to stop the pod's containers");
            }
            if let Err(e) = self.runtime.remove_sandbox(&sandbox).await {
                warn!(pod = %pod.name, error = %e, "failed to remove the pod's containers");
            }
        }
        let selector = cri::labels::pod_labels(&meta);
        match self.runtime.list_volumes(&selector).await {
            Ok(volumes) => {
                for volume in volumes {
                    if let Err(e) = self.runtime.remove_volume(&volume.name).await {
                        warn!(pod = %pod.name, volume = %volume.name, error = %e, "failed to remove a volume");
                    }
                }
            }
            Err(e) => warn!(pod = %pod.name, error = %e, "failed to list the pod's volumes"),
        }
    }

    fn prober(&self, pod: &pb::Pod, _slot: Slot, id: &str) -> (String, Arc<dyn probe::Exec>) {
        let ip = (self.pods.lock().get(&pod.name)).and_then(|r| r.ip.clone());
        let exec = CriExec {
            runtime: self.runtime.clone(),
            id: ContainerId(id.to_string()),
        };
        (ip.unwrap_or_else(|| "127.0.0.1".into()), Arc::new(exec))
    }

    async fn logs(
        &self,
        pod: &str,
        container: &str,
        tail: u32,
        previous: bool,
    ) -> Result<Vec<u8>, String> {
        let id = self.container_id(pod, container, previous)?;
        let tail = (tail > 0).then_some(tail);
        let mut stream = self
            .runtime
            .container_logs(&id, tail, false)
            .await
            .map_err(engine_error)?;
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend(chunk.map_err(engine_error)?);
            if out.len() as u64 > logs::MAX_LOG_BYTES {
                break;
            }
        }
        Ok(out)
    }

    async fn follow(
        &self,
        pod: &str,
        container: &str,
        tail: u32,
        sink: mpsc::Sender<Vec<u8>>,
    ) -> Result<(), String> {
        let id = self.container_id(pod, container, false)?;
        let tail = (tail > 0).then_some(tail);
        let mut stream = self
            .runtime
            .container_logs(&id, tail, true)
            .await
            .map_err(engine_error)?;
        loop {
            tokio::select! {
                chunk = stream.next() => match chunk {
                    Some(Ok(bytes)) => {
                        if sink.send(bytes).await.is_err() {
                            return Ok(());
                        }
                    }
                    Some(Err(e)) => return Err(engine_error(e)),
                    None => return Ok(()),
                },
                _ = sink.closed() => return Ok(()),
            }
        }
    }

    async fn exec(
        &self,
        pod: &pb::Pod,
        container: &str,
        command: &[String],
    ) -> Result<ExecOutcome, String> {
        let id = self.container_id(&pod.name, container, false)?;
        let out = self
            .runtime
            .exec(&id, command)
            .await
            .map_err(engine_error)?;
        Ok(ExecOutcome {
            stdout: out.stdout,
            stderr: out.stderr,
            exit_code: out.exit_code,
        })
    }
}

/// Probe commands of an engine container: exec in it.
struct CriExec {
    runtime: Arc<dyn ContainerRuntime>,
    id: ContainerId,
}

impl probe::Exec for CriExec {
    fn exec(&self, command: Vec<String>) -> BoxFuture<'static, Result<i32, String>> {
        let (runtime, id) = (self.runtime.clone(), self.id.clone());
        Box::pin(async move {
            let out = runtime.exec(&id, &command).await;
            out.map(|o| o.exit_code).map_err(|e| e.to_string())
        })
    }
}
