//! The pods this node runs: as containers from their images through a container engine, or
//! as processes where there is none (`--pod-runtime`).
//!
//! # Layout
//! - [`Supervisor`] (this file): the pods by name; run, delete, stop all, snapshot, logs, exec.
//! - [`pod`]: one pod's lifecycle and status, the same for every backend: init containers,
//!   restarts with back-off, probes, stop with grace.
//! - [`backend`]: how containers run: [`backend::ProcessBackend`] or, through
//!   [`crate::cri`], [`engine::CriBackend`].
//! - [`adopt`]: taking over the containers an earlier agent of this node left running.
//! - [`leftovers`]: stopping the processes an earlier agent of this node left running.
//! - [`eviction`]: evicting a pod whose disk emptyDir passes its `sizeLimit`.
//! - [`spawn`]: container spec to process (command line, environment, log file).
//! - [`exec`]: exec and log following for processes.
//! - [`isolation`]: the user each process pod runs as, and its directories.
//! - [`reaper`]: the process-wide `waitpid(-1)` loop that collects every child and orphan.
//! - [`logs`]: log file paths, FetchLogs (tail, container choice) and following a log.
//! - [`logwriter`]: copying a process's output into its log, rotated, whatever the disk says.
//!
//! Status changes of running pods are sent on the channel returned by [`Supervisor::new`];
//! the agent forwards them to kube9d.

pub mod adopt;
pub mod backend;
pub mod engine;
pub mod eviction;
pub mod exec;
pub mod isolation;
pub mod leftovers;
pub mod logs;
pub mod logwriter;
pub mod pod;
pub mod procstat;
pub mod reaper;
pub mod spawn;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use kube9_proto::{namespace, pb};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::info;

use self::backend::{PodBackend, ProcessBackend};
use self::engine::CriBackend;
use self::pod::PodShared;
use self::spawn::SpawnContext;
use crate::kubelet::policy::Backoff;

/// Grace period between SIGTERM and SIGKILL when neither the stop nor the pod gives one.
pub const DEFAULT_GRACE: Duration = Duration::from_millis(2000);

/// The pod's own grace period (`spec.terminationGracePeriodSeconds`; 0: killed at once), or
/// [`DEFAULT_GRACE`]: for the stops kube9d gives no grace period (a copy it no longer wants,
/// a binding replaced) and for a container its liveness probe restarts, as in Kubernetes.
pub fn pod_grace(spec: &pb::Pod) -> Duration {
    spec.termination_grace().unwrap_or(DEFAULT_GRACE)
}

/// Resolves when one binding of a pod has stopped (cheap to clone, await many times).
pub type Stopping = Shared<BoxFuture<'static, ()>>;

/// What the supervisor needs from the agent's configuration.
#[derive(Clone)]
pub struct SupervisorConfig {
    /// Pod directories and logs live under `<state_dir>/pods`.
    pub state_dir: PathBuf,
    /// Node name (exported to containers).
    pub node_name: String,
    /// Program implementing `standin`, for containers without a command.
    pub standin_program: PathBuf,
    /// Runs pods as containers from their images through this engine; `None`: as processes.
    pub engine: Option<Arc<dyn crate::cri::ContainerRuntime>>,
    /// Cluster id, for the labels of engine containers.
    pub cluster_id: String,
    /// Engine network for pod sandboxes (`None`: the engine's default).
    pub pod_network: Option<String>,
    /// How often size-limited disk emptyDirs are measured, with an engine (see [`eviction`];
    /// normally [`eviction::EVICTION_INTERVAL`]).
    pub eviction_interval: Duration,
    /// When process containers' logs are rotated (engine containers get theirs from the
    /// engine, see [`crate::cri::DockerConfig`]).
    pub log_limits: logs::LogLimits,
}

/// Handle to the pods of this node; cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    shared: Arc<SupervisorShared>,
}

struct SupervisorShared {
    state_dir: PathBuf,
    backend: Arc<dyn PodBackend>,
    /// Users of process pods; `None` with an engine.
    isolation: Option<Arc<isolation::Isolation>>,
    pods: Mutex<HashMap<String, PodEntry>>,
    /// Bindings being stopped, by pod key; a new binding of the key waits for them.
    stopping: Mutex<HashMap<String, Stopping>>,
    events: mpsc::UnboundedSender<pb::PodStatus>,
    /// Crash-loop back-off for pods started from now on (kube9d sets it in `Registered`).
    backoff: Mutex<Backoff>,
}

struct PodEntry {
    pod: Arc<PodShared>,
    task: JoinHandle<()>,
    spec: Arc<pb::Pod>,
}

impl Supervisor {
    /// A supervisor with no pods, and the receiver of its status updates. Process pods get
    /// users from [`isolation::DEFAULT_POD_UID_BASE`] on when the agent is root.
    pub fn new(config: SupervisorConfig) -> (Self, mpsc::UnboundedReceiver<pb::PodStatus>) {
        let isolation = isolation::Isolation::detect(isolation::DEFAULT_POD_UID_BASE);
        Self::with_isolation(config, isolation)
    }

    /// [`Supervisor::new`], process pods isolated as `isolation` says.
    pub fn with_isolation(
        config: SupervisorConfig,
        isolation: isolation::Isolation,
    ) -> (Self, mpsc::UnboundedReceiver<pb::PodStatus>) {
        let (events, updates) = mpsc::unbounded_channel();
        let isolation = Arc::new(isolation);
        let path = std::env::var("PATH")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| spawn::DEFAULT_PATH.to_string());
        let measures_volumes = config.engine.is_some();
        let process_isolation = config.engine.is_none().then(|| isolation.clone());
        let backend: Arc<dyn PodBackend> = match config.engine {
            Some(engine) => {
                let mut cri = CriBackend::new(engine, &config.cluster_id, &config.node_name);
                cri.network = config.pod_network.clone();
                Arc::new(cri)
            }
            None => Arc::new(ProcessBackend {
                ctx: SpawnContext {
                    node_name: config.node_name,
                    standin_program: config.standin_program,
                    path,
                    log_limits: config.log_limits,
                    log_warnings: Arc::default(),
                },
                state_dir: config.state_dir.clone(),
                isolation,
            }),
        };
        let shared = SupervisorShared {
            state_dir: config.state_dir,
            backend,
            isolation: process_isolation,
            pods: Mutex::new(HashMap::new()),
            stopping: Mutex::new(HashMap::new()),
            events,
            backoff: Mutex::new(Backoff::default()),
        };
        let shared = Arc::new(shared);
        if measures_volumes {
            // Processes have no volumes of their own to measure.
            let interval = config.eviction_interval;
            tokio::spawn(eviction::run(Arc::downgrade(&shared), interval));
        }
        (Supervisor { shared }, updates)
    }

    /// Start-up work of the pod runtime (finding what an earlier agent left); before the
    /// agent registers.
    pub async fn startup(&self) -> Result<(), String> {
        self.shared.backend.startup().await
    }

    /// Pods (by uid) an earlier agent of this node left running, for Register.
    pub fn adoptable(&self) -> Vec<String> {
        self.shared.backend.adoptable()
    }

    /// kube9d's answer in Registered: take over these pods when their RunPod comes, remove
    /// the rest an earlier agent left. Only the first call after start-up does anything.
    pub async fn adopt_only(&self, keep: &[String]) {
        self.shared.backend.adopt_only(keep).await
    }

    /// How pods run here: `process` or `docker`.
    pub fn runtime_kind(&self) -> &'static str {
        self.shared.backend.kind()
    }

    /// How pods are kept apart here, for Register (`pod_isolation`).
    pub fn pod_isolation(&self) -> String {
        match &self.shared.isolation {
            Some(isolation) => isolation.describe(),
            None => "pods run in containers".to_string(),
        }
    }

    /// kube9d's `allow_root_pods`: whether process pods may run as root (`runAsUser: 0`).
    pub fn set_allow_root_pods(&self, allow: bool) {
        if let Some(isolation) = &self.shared.isolation {
            isolation.set_allow_root(allow);
        }
    }

    /// Sets the crash-loop back-off of pods started from now on.
    pub fn set_backoff(&self, backoff: Backoff) {
        *self.shared.backoff.lock() = backoff;
    }

    /// Runs `pod` unless this binding (same uid) already runs, in which case its status is
    /// sent again. A different binding of the same name is stopped first.
    pub fn run_pod(&self, mut spec: pb::Pod) {
        spec.namespace = spec.ns().to_string();
        let key = spec.key();
        let shared = &self.shared;
        let mut pods = shared.pods.lock();
        if let Some(entry) = pods.get(&key) {
            if entry.pod.uid == spec.uid {
                let _ = shared.events.send(entry.pod.status());
                return;
            }
            info!(pod = %key, old_uid = %entry.pod.uid, uid = %spec.uid, "replacing pod binding");
        }
        if let Some(old) = pods.remove(&key) {
            // Runs in the background; the new binding waits for it through `stopping`.
            let grace = pod_grace(&old.spec);
            drop(self.begin_stop(old, grace));
        }
        let previous = shared.stopping.lock().get(&key).cloned();
        let pod = PodShared::new(
            &spec,
            *shared.backoff.lock(),
            shared.backend.clone(),
            shared.events.clone(),
        );
        info!(pod = %key, uid = %spec.uid, containers = spec.containers.len(), runtime = shared.backend.kind(), "running pod");
        let task = tokio::spawn(pod.clone().supervise(previous));
        let spec = Arc::new(spec);
        pods.insert(key, PodEntry { pod, task, spec });
    }

    /// Stops and forgets pod `key` (`namespace/name`, or a name in `default`) when `uid`
    /// matches (or is empty), then reports it deleted; its containers get `grace` (`None`: the
    /// pod's own, see [`pod_grace`]). The returned future does the waiting; the pod is
    /// forgotten before it is first polled.
    pub fn delete_pod(
        &self,
        key: &str,
        uid: &str,
        grace: impl Into<Option<Duration>>,
    ) -> BoxFuture<'static, ()> {
        let grace = grace.into();
        let name = &pod_key(key);
        let entry = {
            let mut pods = self.shared.pods.lock();
            match pods.get(name) {
                Some(entry) if uid.is_empty() || entry.pod.uid == uid => pods.remove(name),
                Some(entry) => {
                    info!(pod = %name, uid = %uid, running_uid = %entry.pod.uid, "delete of another binding, leaving the pod running");
                    None
                }
                None => None,
            }
        };
        let stopped = entry.map(|entry| {
            let grace = grace.unwrap_or_else(|| pod_grace(&entry.spec));
            self.begin_stop(entry, grace)
        });
        let events = self.shared.events.clone();
        let (namespace, pod_name) = namespace::split(name);
        let deleted = pb::PodStatus {
            pod_name: pod_name.to_string(),
            pod_namespace: namespace.to_string(),
            pod_uid: uid.to_string(),
            deleted: true,
            ..Default::default()
        };
        async move {
            if let Some(stopped) = stopped {
                stopped.await;
            }
            info!(pod = %deleted.pod_name, uid = %deleted.pod_uid, "pod deleted");
            let _ = events.send(deleted);
        }
        .boxed()
    }

    /// Stops every pod (each with `grace`) and waits for all of them.
    pub async fn stop_all(&self, grace: Duration) {
        let entries: Vec<PodEntry> = self.shared.pods.lock().drain().map(|(_, e)| e).collect();
        for entry in entries {
            // Awaited below, together with stops already in flight.
            drop(self.begin_stop(entry, grace));
        }
        let stopping: Vec<Stopping> = self.shared.stopping.lock().values().cloned().collect();
        futures::future::join_all(stopping).await;
    }

    /// The status of every pod, for Register.
    pub fn snapshot(&self) -> Vec<pb::PodStatus> {
        let pods = self.shared.pods.lock();
        let mut statuses: Vec<pb::PodStatus> = pods.values().map(|e| e.pod.status()).collect();
        statuses
            .sort_by(|a, b| (&a.pod_namespace, &a.pod_name).cmp(&(&b.pod_namespace, &b.pod_name)));
        statuses
    }

    /// The logs of `pod`/`container` (see [`logs::fetch`]); the file is read on the blocking
    /// pool.
    pub async fn fetch_logs(
        &self,
        pod: &str,
        container: &str,
        tail_lines: u32,
        previous: bool,
    ) -> Result<Vec<u8>, String> {
        let pod = &pod_key(pod);
        let containers = self.shared.pods.lock().get(pod).map(|e| {
            let mut names = e.pod.containers.clone();
            names.extend(e.pod.init_containers.iter().cloned());
            names
        });
        if self.shared.backend.kind() != "process" {
            let names = containers.ok_or_else(|| format!("pod {pod} not found on this node"))?;
            let chosen = logs::choose_container(pod, &names, container)?;
            return (self.shared.backend.logs(pod, &chosen, tail_lines, previous)).await;
        }
        // Process logs are files, readable after the pod is gone too.
        let state_dir = self.shared.state_dir.clone();
        let (pod, container) = (pod.to_string(), container.to_string());
        tokio::task::spawn_blocking(move || {
            logs::fetch(
                &state_dir, &pod, containers, &container, tail_lines, previous,
            )
        })
        .await
        .unwrap_or_else(|error| Err(format!("failed to read logs: {error}")))
    }

    /// Runs `command` in container `container` of `pod` (see [`exec::exec`]).
    pub async fn exec(
        &self,
        pod: &str,
        container: &str,
        command: &[String],
    ) -> Result<exec::ExecOutcome, String> {
        let pod = &pod_key(pod);
        let spec = self
            .shared
            .pods
            .lock()
            .get(pod)
            .map(|e| e.spec.clone())
            .ok_or_else(|| format!("pod {pod} is not running on this node"))?;
        let names: Vec<String> = spec.containers.iter().map(|c| c.name.clone()).collect();
        let chosen = logs::choose_container(pod, &names, container)?;
        self.shared.backend.exec(&spec, &chosen, command).await
    }

    /// Streams the log of `pod`/`container` into `sink` as it grows (see [`exec::follow`]),
    /// until `sink` closes.
    pub async fn follow_logs(
        &self,
        pod: &str,
        container: &str,
        tail_lines: u32,
        sink: mpsc::Sender<Vec<u8>>,
    ) -> Result<(), String> {
        let pod = &pod_key(pod);
        let names = self
            .shared
            .pods
            .lock()
            .get(pod)
            .map(|e| {
                let mut names = e.pod.containers.clone();
                names.extend(e.pod.init_containers.iter().cloned());
                names
            })
            .ok_or_else(|| format!("pod {pod} is not running on this node"))?;
        let chosen = logs::choose_container(pod, &names, container)?;
        self.shared
            .backend
            .follow(pod, &chosen, tail_lines, sink)
            .await
    }

    /// Starts stopping a forgotten pod in the background; the result resolves when it (and
    /// any earlier binding of its name) has stopped.
    fn begin_stop(&self, entry: PodEntry, grace: Duration) -> Stopping {
        let name = entry.spec.key();
        let mut stopping = self.shared.stopping.lock();
        stopping.retain(|_, s| s.peek().is_none());
        let earlier = stopping.get(&name).cloned();
        let stopped = async move {
            let own = async {
                entry.pod.stop(grace).await;
                // Exits are all recorded (or given up on); nothing is left to supervise.
                entry.task.abort();
            };
            match earlier {
                Some(earlier) => {
                    futures::future::join(earlier, own).await;
                }
                None => own.await,
            }
        }
        .boxed()
        .shared();
        stopping.insert(name, stopped.clone());
        tokio::spawn(stopped.clone());
        stopped
    }
}

/// A pod's key as the supervisor indexes it: `namespace/name`; a bare name is in `default`.
fn pod_key(pod: &str) -> String {
    let (namespace, name) = namespace::split(pod);
    namespace::key(namespace, name)
}

#[cfg(test)]
mod tests;
