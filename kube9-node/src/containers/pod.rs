//! One pod on this node: its status, its containers' processes, and how it stops.
//!
//! ```text
//!   Scheduled ──every container started──▶ Running ──every container exited──▶ Succeeded
//!   (containers Waiting)                                                   └──▶ Failed
//! ```
//! A container that cannot be spawned counts as started and exited (127/126). Restart policies
//! are not applied yet: an exited container stays exited.
//!
//! Starting (spawning every process) and stopping both take the pod's `lifecycle` lock, so a
//! stop either sees every pid or prevents the spawns. Once stopping, the pod no longer reports
//! status: the owner of the stop sends the final word (`deleted`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::stream::{FuturesUnordered, StreamExt};
use kube9_proto::pb::{self, ContainerState, PodPhase};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use super::logs;
use super::reaper::Exit;
use super::spawn::{self, SpawnContext};
use crate::config::is_path_component;

/// How long to wait for processes to die after SIGKILL before giving up on them.
const KILL_WAIT: Duration = Duration::from_secs(1);

/// The phase a pod is in given its containers (see the module diagram).
pub fn phase(containers: &[pb::ContainerStatus]) -> PodPhase {
    let state = |c: &pb::ContainerStatus| c.state();
    if containers
        .iter()
        .any(|c| state(c) != ContainerState::Running && state(c) != ContainerState::Terminated)
    {
        return PodPhase::Scheduled;
    }
    if containers
        .iter()
        .any(|c| state(c) == ContainerState::Running)
    {
        return PodPhase::Running;
    }
    if containers.iter().all(|c| c.exit_code == 0) {
        PodPhase::Succeeded
    } else {
        PodPhase::Failed
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[derive(Debug, Default)]
struct Lifecycle {
    stopping: bool,
}

/// A pod's shared state: read by the supervisor, written by its task and by `stop`.
#[derive(Debug)]
pub struct PodShared {
    /// Pod name.
    pub name: String,
    /// Pod uid (one binding of the pod).
    pub uid: String,
    /// Container names, in spec order.
    pub containers: Vec<String>,
    lifecycle: Mutex<Lifecycle>,
    status: watch::Sender<pb::PodStatus>,
    events: mpsc::UnboundedSender<pb::PodStatus>,
}

impl PodShared {
    /// A pod whose containers are all still waiting.
    pub fn new(spec: &pb::Pod, events: mpsc::UnboundedSender<pb::PodStatus>) -> Arc<Self> {
        let containers: Vec<pb::ContainerStatus> = spec
            .containers
            .iter()
            .map(|c| pb::ContainerStatus {
                name: c.name.clone(),
                state: ContainerState::Waiting as i32,
                ..Default::default()
            })
            .collect();
        let status = pb::PodStatus {
            pod_name: spec.name.clone(),
            pod_uid: spec.uid.clone(),
            phase: phase(&containers) as i32,
            containers,
            ..Default::default()
        };
        Arc::new(PodShared {
            name: spec.name.clone(),
            uid: spec.uid.clone(),
            containers: spec.containers.iter().map(|c| c.name.clone()).collect(),
            lifecycle: Mutex::new(Lifecycle::default()),
            status: watch::channel(status).0,
            events,
        })
    }

    /// The current status.
    pub fn status(&self) -> pb::PodStatus {
        self.status.borrow().clone()
    }

    /// Runs the pod: waits for `previous` (an earlier binding of the same name still
    /// stopping), starts every container, then records each exit.
    pub async fn supervise(
        self: Arc<Self>,
        spec: pb::Pod,
        ctx: Arc<SpawnContext>,
        state_dir: std::path::PathBuf,
        previous: Option<super::Stopping>,
    ) {
        if let Some(previous) = previous {
            previous.await;
        }
        let Some(exits) = self.start(&spec, &ctx, &state_dir) else {
            return;
        };
        let mut pending: FuturesUnordered<_> = exits
            .into_iter()
            .map(|(index, exit)| async move { (index, exit.await) })
            .collect();
        while let Some((index, exit)) = pending.next().await {
            self.record_exit(index, exit.ok());
        }
    }

    /// Spawns every container; `None` when the pod is already stopping.
    fn start(
        &self,
        spec: &pb::Pod,
        ctx: &SpawnContext,
        state_dir: &std::path::Path,
    ) -> Option<Vec<(usize, oneshot::Receiver<Exit>)>> {
        let lifecycle = self.lifecycle.lock();
        if lifecycle.stopping {
            return None;
        }
        let pod_dir = logs::pod_dir(state_dir, &spec.name);
        let dir_error = if is_path_component(&spec.name) {
            std::fs::create_dir_all(&pod_dir)
                .err()
                .map(|e| format!("failed to create pod directory {}: {e}", pod_dir.display()))
        } else {
            Some(format!("invalid pod name {:?}", spec.name))
        };
        let mut exits = Vec::new();
        for (index, container) in spec.containers.iter().enumerate() {
            let log = logs::log_path(state_dir, &spec.name, &container.name);
            let result = match &dir_error {
                Some(message) => Err(spawn::SpawnFailure {
                    exit_code: 126,
                    message: message.clone(),
                }),
                None if !is_path_component(&container.name) => Err(spawn::SpawnFailure {
                    exit_code: 126,
                    message: format!("invalid container name {:?}", container.name),
                }),
                None => spawn::spawn(spec, container, &pod_dir, &log, ctx),
            };
            let now = now_ms();
            let update = match result {
                Ok(started) => {
                    info!(pod = %spec.name, container = %container.name, pid = started.pid.as_raw(), "container started");
                    exits.push((index, started.exit));
                    pb::ContainerStatus {
                        state: ContainerState::Running as i32,
                        started_ms: now,
                        pid: started.pid.as_raw(),
                        ..Default::default()
                    }
                }
                Err(failure) => {
                    warn!(pod = %spec.name, container = %container.name, error = %failure.message, "container failed to start");
                    pb::ContainerStatus {
                        state: ContainerState::Terminated as i32,
                        exit_code: failure.exit_code,
                        finished_ms: now,
                        message: failure.message,
                        ..Default::default()
                    }
                }
            };
            self.status.send_modify(|status| {
                let slot = &mut status.containers[index];
                *slot = pb::ContainerStatus {
                    name: std::mem::take(&mut slot.name),
                    ..update
                };
                refresh(status);
            });
        }
        self.emit(&lifecycle);
        Some(exits)
    }

    /// Records that container `index` exited (`None`: its status was lost).
    fn record_exit(&self, index: usize, exit: Option<Exit>) {
        let lifecycle = self.lifecycle.lock();
        let (code, message) = match exit {
            Some(exit) => (exit.code(), exit.describe()),
            None => (-1, "exit status lost".to_string()),
        };
        info!(pod = %self.name, container = %self.containers[index], code, "container exited");
        self.status.send_modify(|status| {
            let slot = &mut status.containers[index];
            slot.state = ContainerState::Terminated as i32;
            slot.exit_code = code;
            slot.finished_ms = now_ms();
            slot.message = message;
            refresh(status);
        });
        self.emit(&lifecycle);
    }

    fn emit(&self, lifecycle: &Lifecycle) {
        if !lifecycle.stopping {
            let _ = self.events.send(self.status());
        }
    }

    /// Stops the pod: SIGTERM to every container's process group, SIGKILL to what is left
    /// after `grace`. Returns once every process has been reaped (or given up on).
    pub async fn stop(&self, grace: Duration) {
        let pids: Vec<Pid> = {
            let mut lifecycle = self.lifecycle.lock();
            lifecycle.stopping = true;
            running_pids(&self.status.borrow())
        };
        if pids.is_empty() {
            return;
        }
        info!(pod = %self.name, uid = %self.uid, grace_ms = grace.as_millis() as u64, "stopping pod");
        signal_groups(&pids, Signal::SIGTERM);
        let mut status = self.status.subscribe();
        let all_exited = |s: &pb::PodStatus| running_pids(s).is_empty();
        if tokio::time::timeout(grace, status.wait_for(all_exited))
            .await
            .is_err()
        {
            let left = running_pids(&self.status.borrow());
            warn!(pod = %self.name, pids = ?left, "grace period over, killing");
            signal_groups(&left, Signal::SIGKILL);
            if tokio::time::timeout(KILL_WAIT, status.wait_for(all_exited))
                .await
                .is_err()
            {
                warn!(pod = %self.name, "processes survived SIGKILL, giving up on them");
            }
        }
        // The leaders are gone; take whatever they left behind in their groups with them.
        signal_groups(&pids, Signal::SIGKILL);
        debug!(pod = %self.name, "pod stopped");
    }
}

fn running_pids(status: &pb::PodStatus) -> Vec<Pid> {
    status
        .containers
        .iter()
        .filter(|c| c.state() == ContainerState::Running && c.pid > 0)
        .map(|c| Pid::from_raw(c.pid))
        .collect()
}

fn signal_groups(pids: &[Pid], signal: Signal) {
    for pid in pids {
        match killpg(*pid, signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(error) => {
                warn!(pgid = pid.as_raw(), %signal, %error, "failed to signal process group")
            }
        }
    }
}

/// Derives the pod-level fields from its containers. Without probes (processes), a container
/// is ready while it runs, and the pod while all of them do.
fn refresh(status: &mut pb::PodStatus) {
    for c in &mut status.containers {
        c.ready = c.state() == ContainerState::Running;
    }
    status.phase = phase(&status.containers) as i32;
    status.message = summary(&status.containers);
    status.ready = !status.containers.is_empty() && status.containers.iter().all(|c| c.ready);
}

/// A pod-level message: why a failed pod failed.
fn summary(containers: &[pb::ContainerStatus]) -> String {
    if phase(containers) != PodPhase::Failed {
        return String::new();
    }
    containers
        .iter()
        .find(|c| c.exit_code != 0)
        .map(|c| format!("container {}: {}", c.name, c.message))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(state: ContainerState, exit_code: i32) -> pb::ContainerStatus {
        pb::ContainerStatus {
            state: state as i32,
            exit_code,
            ..Default::default()
        }
    }

    #[test]
    fn a_pod_is_running_once_every_container_started() {
        use ContainerState::*;
        assert_eq!(
            phase(&[container(Waiting, 0), container(Running, 0)]),
            PodPhase::Scheduled
        );
        assert_eq!(
            phase(&[container(Running, 0), container(Running, 0)]),
            PodPhase::Running
        );
        assert_eq!(
            phase(&[container(Running, 0), container(Terminated, 1)]),
            PodPhase::Running
        );
    }

    #[test]
    fn a_pod_succeeds_only_when_every_container_exited_zero() {
        use ContainerState::*;
        assert_eq!(
            phase(&[container(Terminated, 0), container(Terminated, 0)]),
            PodPhase::Succeeded
        );
        assert_eq!(
            phase(&[container(Terminated, 0), container(Terminated, 3)]),
            PodPhase::Failed
        );
        assert_eq!(phase(&[container(Terminated, 137)]), PodPhase::Failed);
    }
}
