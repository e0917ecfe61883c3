//! Pods as containers from their images, through a [`ContainerRuntime`] (see [`crate::cri`]):
//! one sandbox per pod holding its network namespace and volumes, one container per run of
//! each container. Containers an earlier agent of this node left running are taken over
//! (see [`super::adopt`]) rather than started again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use kube9_proto::pb;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use std::sync::atomic::{AtomicBool, Ordering};

use super::adopt::{self, Leftover};
use super::backend::{Exited, PodBackend, Prepared, Resumed, Slot, StartError, Started};
use super::exec::ExecOutcome;
use super::logs;
use crate::cri::{
    self, ContainerId, ContainerInfo, ContainerRuntime, ContainerState, PullPolicy, SandboxId,
};
use crate::kubelet::policy::reason;
use crate::kubelet::probe;

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
    /// What an earlier agent of this node left, by pod uid, until kube9d says what to keep.
    leftovers: Mutex<HashMap<String, Leftover>>,
    /// The first [`PodBackend::adopt_only`] has not run yet.
    sweep_pending: AtomicBool,
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
    /// Per container: the run an earlier agent started, taken over at its next start.
    adopted: HashMap<String, ContainerInfo>,
}

impl CriBackend {
    pub fn new(runtime: Arc<dyn ContainerRuntime>, cluster: &str, node: &str) -> Self {
        CriBackend {
            runtime,
            cluster: cluster.to_string(),
            node: node.to_string(),
            network: None,
            pods: Mutex::new(HashMap::new()),
            leftovers: Mutex::new(HashMap::new()),
            sweep_pending: AtomicBool::new(false),
        }
    }

    /// The pod's containers as an earlier agent left them, recorded as this binding's own:
    /// the sandbox, each container's newest run (taken over at its start) and the run before.
    /// Returns the pod IP.
    async fn take_over(&self, pod: &pb::Pod, left: Leftover) -> Result<Option<String>, String> {
        let sandbox = left.sandbox.as_ref().ok_or("no sandbox")?;
        let sandbox = SandboxId(sandbox.id.0.clone());
        let ip = (self.runtime.inspect_sandbox(&sandbox).await)
            .map_err(engine_error)?
            .ip;
        let mut record = CriPod {
            uid: pod.uid.clone(),
            sandbox: Some(sandbox),
            ip: ip.clone(),
            ..Default::default()
        };
        for (name, (newest, before)) in left.runs() {
            let attempt = newest.attempt().unwrap_or(0);
            record
                .current
                .insert(name.clone(), (newest.id.clone(), attempt));
            if let Some(before) = before {
                record.previous.insert(name.clone(), before.id);
            }
            record.adopted.insert(name, newest);
        }
        tracing::info!(pod = %pod.name, uid = %pod.uid, "taking over the pod's containers");
        self.pods.lock().insert(pod.key(), record);
        Ok(ip)
    }

    /// The run of `container` an earlier agent started, as a started run of this agent; `None`
    /// when there is none to take over (or it never started: a new run is made instead).
    async fn resume(&self, pod: &pb::Pod, container: &str) -> Option<Started> {
        let info = {
            let mut pods = self.pods.lock();
            let record = pods.get_mut(&pod.key()).filter(|r| r.uid == pod.uid)?;
            record.adopted.remove(container)?
        };
        let resumed = Resumed {
            restarts: info.attempt().unwrap_or(0),
        };
        let exit = match info.state {
            ContainerState::Running => exit_of(self.runtime.clone(), info.id.clone()),
            ContainerState::Exited => {
                let exited = Exited {
                    code: info.exit_code.unwrap_or(-1),
                    oom_killed: info.oom_killed,
                    message: info.error.clone().unwrap_or_default(),
                };
                futures::future::ready(exited).boxed()
            }
            ContainerState::Created | ContainerState::Unknown => return None,
        };
        let pid = match self.runtime.inspect_container(&info.id).await {
            Ok(now) => now.pid.unwrap_or(0) as i32,
            Err(_) => 0,
        };
        Some(Started {
            id: info.id.to_string(),
            pid,
            note: String::new(),
            exit,
            started_ms: info.started_ms,
            resumed: Some(resumed),
        })
    }

    /// Removes every container and volume of pods an earlier agent left that are not in
    /// `keep` (nor run by this agent).
    async fn sweep(&self, keep: &[String]) {
        let gone: Vec<Leftover> = {
            let mut leftovers = self.leftovers.lock();
            let uids: Vec<String> = leftovers
                .keys()
                .filter(|uid| !keep.contains(uid))
                .cloned()
                .collect();
            uids.iter().filter_map(|u| leftovers.remove(u)).collect()
        };
        let containers: Vec<ContainerId> = gone
            .iter()
            .flat_map(|l| l.all().map(|c| c.id.clone()))
            .collect();
        if !containers.is_empty() {
            tracing::info!(
                pods = gone.len(),
                containers = containers.len(),
                "removing what an earlier agent left of pods no longer bound here"
            );
        }
        for id in containers {
            if let Err(e) = self.runtime.remove_container(&id).await {
                warn!(container = %id, error = %e, "failed to remove a leftover container");
            }
        }
        let volumes = match self.runtime.list_volumes(&self.node_selector()).await {
            Ok(volumes) => volumes,
            Err(e) => {
                warn!(error = %e, "failed to list leftover volumes");
                return;
            }
        };
        let running: Vec<String> = self.pods.lock().values().map(|r| r.uid.clone()).collect();
        for v in volumes {
            let uid = v.labels.get(cri::labels::POD_UID);
            if uid.is_some_and(|u| keep.contains(u) || running.contains(u)) {
                continue;
            }
            if let Err(e) = self.runtime.remove_volume(&v.name).await {
                warn!(volume = %v.name, error = %e, "failed to remove a leftover volume");
            }
        }
    }

    /// Labels of everything this node's agents made in the engine.
    fn node_selector(&self) -> cri::Labels {
        cri::Labels::from([
            (cri::labels::CLUSTER.to_string(), self.cluster.clone()),
            (cri::labels::NODE.to_string(), self.node.clone()),
        ])
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

/// Resolves when the container has exited, with how.
fn exit_of(runtime: Arc<dyn ContainerRuntime>, id: ContainerId) -> BoxFuture<'static, Exited> {
    async move {
        match runtime.wait_container(&id).await {
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
    .boxed()
}

#[async_trait]
impl PodBackend for CriBackend {
    fn kind(&self) -> &'static str {
        "docker"
    }

    /// Finds the containers an earlier agent of this node left in the engine; kube9d says
    /// which to take over once the agent has registered ([`Self::adopt_only`]).
    async fn startup(&self) -> Result<(), String> {
        let found =
            (self.runtime.list_containers(&self.node_selector()).await).map_err(engine_error)?;
        let leftovers = adopt::group(found);
        if !leftovers.is_empty() {
            let adoptable = leftovers.values().filter(|l| l.adoptable()).count();
            tracing::info!(
                pods = leftovers.len(),
                adoptable,
                "found containers an earlier agent of this node left"
            );
        }
        *self.leftovers.lock() = leftovers;
        self.sweep_pending.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn adoptable(&self) -> Vec<String> {
        let leftovers = self.leftovers.lock();
        (leftovers.iter())
            .filter(|(_, l)| l.adoptable())
            .map(|(uid, _)| uid.clone())
            .collect()
    }

    async fn adopt_only(&self, keep: &[String]) {
        if self.sweep_pending.swap(false, Ordering::SeqCst) {
            self.sweep(keep).await;
        }
    }

    async fn prepare(&self, pod: &pb::Pod) -> Result<Prepared, String> {
        let left = self.leftovers.lock().remove(&pod.uid);
        if let Some(left) = left.filter(Leftover::adoptable) {
            match self.take_over(pod, left).await {
                Ok(ip) => {
                    return Ok(Prepared {
                        ip,
                        taken_over: true,
                    })
                }
                Err(e) => {
                    warn!(pod = %pod.name, error = %e, "could not take the pod's containers over; starting it again")
                }
            }
        }
        let meta = cri::spec::pod_meta(pod, &self.cluster, &self.node);
        let files = cri::spec::volume_files(&meta, pod).map_err(engine_error)?;
        for volume in cri::spec::engine_volumes(pod) {
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
        // configMap and secret files go into their tmpfs volumes through the sandbox, which
        // keeps those mounted (a tmpfs exists only while mounted).
        for (volume, files) in files.iter().filter(|(_, files)| !files.is_empty()) {
            if let Err(e) = self.runtime.write_files(&sandbox, volume, files).await {
                // Its volumes go at teardown, by the pod's labels.
                if let Err(e) = self.runtime.remove_sandbox(&sandbox).await {
                    warn!(pod = %pod.name, error = %e, "failed to remove the pod's sandbox");
                }
                return Err(engine_error(e));
            }
        }
        let ip = self
            .runtime
            .inspect_sandbox(&sandbox)
            .await
            .map_err(engine_error)?
            .ip;
        self.pods.lock().insert(
            pod.key(),
            CriPod {
                uid: pod.uid.clone(),
                sandbox: Some(sandbox),
                ip: ip.clone(),
                ..Default::default()
            },
        );
        Ok(Prepared {
            ip,
            taken_over: false,
        })
    }

    async fn start(
        &self,
        pod: &pb::Pod,
        slot: Slot,
        _restart: bool,
    ) -> Result<Started, StartError> {
        let container = slot.of(pod);
        if let Some(started) = self.resume(pod, &container.name).await {
            return Ok(started);
        }
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
        cri::spec::verify_run_as_non_root(pod, container, &image)
            .map_err(|message| waiting(reason::CREATE_CONTAINER_CONFIG_ERROR, message))?;
        let (sandbox, attempt, ip) = {
            let pods = self.pods.lock();
            let record = pods.get(&pod.key()).filter(|r| r.uid == pod.uid);
            let sandbox = record.and_then(|r| r.sandbox.clone());
            let attempt = record
                .and_then(|r| r.current.get(&container.name))
                .map_or(0, |(_, attempt)| attempt + 1);
            (sandbox, attempt, record.and_then(|r| r.ip.clone()))
        };
        let sandbox = sandbox.ok_or_else(|| {
            waiting(
                reason::CREATE_ERROR,
                format!("pod {} has no sandbox", pod.name),
            )
        })?;
        let meta = cri::spec::pod_meta(pod, &self.cluster, &self.node);
        // `fieldRef: status.podIP` reads the pod's address, known since its sandbox started.
        let pod = &pb::Pod {
            pod_ip: ip.unwrap_or_default(),
            ..pod.clone()
        };
        let mut config = cri::spec::container_config(&meta, pod, container, &image.id, attempt)
            .map_err(|e| waiting(reason::CREATE_ERROR, e.to_string()))?;
        config.security.image_user = image.user.clone();
        let id = self
            .runtime
            .create_container(&sandbox, &config)
            .await
            .map_err(|e| waiting(reason::CREATE_ERROR, e.to_string()))?;
        // From here on the run counts: the run before becomes the previous one.
        let stale = {
            let mut pods = self.pods.lock();
            let record = pods.entry(pod.key()).or_default();
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
        let (pid, started_ms) = match self.runtime.inspect_container(&id).await {
            Ok(info) => (info.pid.unwrap_or(0) as i32, info.started_ms),
            Err(_) => (0, None),
        };
        Ok(Started {
            id: id.to_string(),
            pid,
            note: String::new(),
            exit: exit_of(self.runtime.clone(), id),
            started_ms,
            resumed: None,
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
        let record = self.pods.lock().remove(&pod.key());
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
        let ip = (self.pods.lock().get(&pod.key())).and_then(|r| r.ip.clone());
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
        let id = self.container_id(&pod.key(), container, false)?;
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

    /// Measured in the pod's sandbox, which keeps every emptyDir of the pod mounted.
    async fn empty_dir_usage(&self, pod: &pb::Pod) -> Result<Vec<(String, u64)>, String> {
        let names: Vec<String> = cri::spec::engine_volumes(pod)
            .into_iter()
            .filter(|v| v.medium == cri::Medium::Disk && v.size_limit_bytes.is_some())
            .map(|v| v.name)
            .collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let sandbox = {
            let pods = self.pods.lock();
            let record = pods.get(&pod.key()).filter(|r| r.uid == pod.uid);
            record.and_then(|r| r.sandbox.clone())
        };
        let Some(sandbox) = sandbox else {
            return Ok(Vec::new());
        };
        let meta = cri::spec::pod_meta(pod, &self.cluster, &self.node);
        let volumes: Vec<String> = (names.iter())
            .map(|name| cri::labels::volume_name(&meta, name))
            .collect();
        let used = (self.runtime.volume_usage(&sandbox, &volumes).await).map_err(engine_error)?;
        Ok(names.into_iter().zip(used).collect())
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
