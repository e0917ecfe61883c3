//! One pod on this node: its status, its containers' processes, and how it stops.
//!
//! ```text
//!   init containers, in order, each to completion (a failure is retried with back-off,
//!   unless restartPolicy is Never: the pod fails)
//!     └─▶ app containers, all at once; each one that exits is started again when the
//!         restart policy says so, after the crash-loop back-off (CrashLoopBackOff meanwhile)
//! ```
//! Phase and STATUS follow Kubernetes ([`crate::kubelet::policy`]). A container that cannot be
//! spawned counts as started and exited (127/126). On a restart the container's log moves to
//! `<container>.previous.log` (`kube9ctl logs --previous`).
//!
//! Starting a process and stopping the pod both take the pod's `lifecycle` lock, so a stop
//! either sees every pid or prevents the spawn. Once stopping, the pod no longer reports
//! status: the owner of the stop sends the final word (`deleted`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
use crate::kubelet::policy::{self, reason, Backoff, RestartPolicy};
use crate::kubelet::probe::{self, ProbeEvent};

/// How long to wait for processes to die after SIGKILL before giving up on them.
const KILL_WAIT: Duration = Duration::from_secs(1);

/// The phase of a pod whose containers are all app containers under `Never` (tests and
/// simple callers).
pub fn phase(containers: &[pb::ContainerStatus]) -> PodPhase {
    policy::phase(&[], containers, RestartPolicy::Never)
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

/// Which container of the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Init(usize),
    App(usize),
}

/// A pod's shared state: read by the supervisor, written by its task and by `stop`.
#[derive(Debug)]
pub struct PodShared {
    /// Pod name.
    pub name: String,
    /// Pod uid (one binding of the pod).
    pub uid: String,
    /// App container names, in spec order.
    pub containers: Vec<String>,
    /// Init container names, in spec order.
    pub init_containers: Vec<String>,
    policy: RestartPolicy,
    backoff: Backoff,
    /// Per app container: whether its probes let it count as ready.
    gates: Mutex<Vec<bool>>,
    lifecycle: Mutex<Lifecycle>,
    status: watch::Sender<pb::PodStatus>,
    events: mpsc::UnboundedSender<pb::PodStatus>,
}

fn waiting(name: &str, why: &str) -> pb::ContainerStatus {
    pb::ContainerStatus {
        name: name.to_string(),
        state: ContainerState::Waiting as i32,
        reason: why.to_string(),
        ..Default::default()
    }
}

impl PodShared {
    /// A pod whose containers are all still waiting.
    pub fn new(
        spec: &pb::Pod,
        backoff: Backoff,
        events: mpsc::UnboundedSender<pb::PodStatus>,
    ) -> Arc<Self> {
        let app_waits = if spec.init_containers.is_empty() {
            reason::CONTAINER_CREATING
        } else {
            reason::POD_INITIALIZING
        };
        let mut status = pb::PodStatus {
            pod_name: spec.name.clone(),
            pod_uid: spec.uid.clone(),
            containers: spec
                .containers
                .iter()
                .map(|c| waiting(&c.name, app_waits))
                .collect(),
            init_containers: spec
                .init_containers
                .iter()
                .map(|c| waiting(&c.name, reason::CONTAINER_CREATING))
                .collect(),
            ..Default::default()
        };
        let policy = RestartPolicy::of(spec);
        let gates = vec![false; spec.containers.len()];
        refresh(&mut status, policy, &gates);
        Arc::new(PodShared {
            name: spec.name.clone(),
            uid: spec.uid.clone(),
            containers: spec.containers.iter().map(|c| c.name.clone()).collect(),
            init_containers: spec
                .init_containers
                .iter()
                .map(|c| c.name.clone())
                .collect(),
            policy,
            backoff,
            gates: Mutex::new(gates),
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
    /// stopping), runs the init containers in order, then every app container, restarting
    /// them as the restart policy says. Returns when nothing is left to run (or the pod stops:
    /// its task is then aborted).
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
        let pod_dir = logs::pod_dir(&state_dir, &spec.name);
        let dir_error = if is_path_component(&spec.name) {
            std::fs::create_dir_all(&pod_dir)
                .err()
                .map(|e| format!("failed to create pod directory {}: {e}", pod_dir.display()))
        } else {
            Some(format!("invalid pod name {:?}", spec.name))
        };
        let run = Run {
            spec: &spec,
            ctx: &ctx,
            state_dir: &state_dir,
            dir_error: dir_error.as_deref(),
        };
        for index in 0..spec.init_containers.len() {
            if !self.run_to_completion(&run, Slot::Init(index)).await {
                return;
            }
        }
        let apps =
            (0..spec.containers.len()).map(|index| self.keep_running(&run, Slot::App(index)));
        futures::future::join_all(apps).await;
    }

    /// Runs an init container until it exits 0 (retrying with back-off unless the policy is
    /// Never). False when the pod cannot go on.
    async fn run_to_completion(&self, run: &Run<'_>, slot: Slot) -> bool {
        let mut crashes = 0;
        let mut restart = false;
        loop {
            let Some(code) = self.run_once(run, slot, restart).await else {
                return false;
            };
            if code == 0 {
                return true;
            }
            if !self.policy.retries_init() {
                return false;
            }
            self.back_off(slot, &mut crashes).await;
            restart = true;
        }
    }

    /// Runs an app container, and again after each exit the restart policy restarts.
    async fn keep_running(&self, run: &Run<'_>, slot: Slot) {
        let mut crashes = 0;
        let mut restart = false;
        loop {
            let Some(code) = self.run_once(run, slot, restart).await else {
                return;
            };
            if !self.policy.restarts(code) {
                return;
            }
            self.back_off(slot, &mut crashes).await;
            restart = true;
        }
    }

    /// Starts the container and waits for it to exit; its exit code, or `None` when the pod
    /// is stopping.
    async fn run_once(&self, run: &Run<'_>, slot: Slot, restart: bool) -> Option<i32> {
        let exit = match self.start(run, slot, restart)? {
            Ok(exit) => exit,
            Err(failure) => return Some(self.record_exit(slot, None, Some(failure), None)),
        };
        let Slot::App(index) = slot else {
            return Some(self.record_exit(slot, exit.await.ok(), None, None));
        };
        let container = &run.spec.containers[index];
        let probed = container.liveness_probe.is_some()
            || container.readiness_probe.is_some()
            || container.startup_probe.is_some();
        if !probed {
            self.set_gate(index, true);
            let outcome = exit.await.ok();
            self.set_gate(index, false);
            return Some(self.record_exit(slot, outcome, None, None));
        }
        // A process listens on the node's loopback; commands run as the container's do.
        let (tx, mut events) = mpsc::unbounded_channel();
        let exec = Arc::new(ProcessExec {
            pod: run.spec.clone(),
            index,
            pod_dir: logs::pod_dir(run.state_dir, &run.spec.name),
            ctx: run.ctx.clone(),
        });
        let watcher = tokio::spawn(probe::watch(
            container.clone(),
            "127.0.0.1".into(),
            exec,
            tx,
        ));
        let mut killed = None;
        tokio::pin!(exit);
        let outcome = loop {
            tokio::select! {
                out = &mut exit => break out.ok(),
                Some(event) = events.recv() => match event {
                    ProbeEvent::Started => {}
                    ProbeEvent::Ready(ready) => self.set_gate(index, ready),
                    ProbeEvent::Kill(why) => {
                        info!(pod = %self.name, container = %container.name, %why, "killing container");
                        self.kill(slot);
                        killed = Some(why);
                    }
                },
            }
        };
        watcher.abort();
        self.set_gate(index, false);
        Some(self.record_exit(slot, outcome, None, killed))
    }

    /// Whether app container `index` counts as ready (its probes say so); emits the change.
    fn set_gate(&self, index: usize, ready: bool) {
        let lifecycle = self.lifecycle.lock();
        let changed = {
            let mut gates = self.gates.lock();
            std::mem::replace(&mut gates[index], ready) != ready
        };
        if changed {
            self.update(Slot::App(index), |_| {});
            self.emit(&lifecycle);
        }
    }

    /// Stops one container for a failed probe: SIGTERM to its group, SIGKILL after the grace.
    fn kill(&self, slot: Slot) {
        let pid = self.slot(&self.status.borrow(), slot).pid;
        if pid <= 0 {
            return;
        }
        let group = [Pid::from_raw(pid)];
        signal_groups(&group, Signal::SIGTERM);
        tokio::spawn(async move {
            tokio::time::sleep(super::DEFAULT_GRACE).await;
            signal_groups(&group, Signal::SIGKILL);
        });
    }

    /// Spawns one container; `None` when the pod is already stopping.
    fn start(
        &self,
        run: &Run<'_>,
        slot: Slot,
        restart: bool,
    ) -> Option<Result<oneshot::Receiver<Exit>, spawn::SpawnFailure>> {
        let lifecycle = self.lifecycle.lock();
        if lifecycle.stopping {
            return None;
        }
        let container = match slot {
            Slot::Init(i) => &run.spec.init_containers[i],
            Slot::App(i) => &run.spec.containers[i],
        };
        let log = logs::log_path(run.state_dir, &run.spec.name, &container.name);
        if restart {
            // The previous run's output stays readable with --previous.
            let _ = std::fs::rename(
                &log,
                logs::previous_log_path(run.state_dir, &run.spec.name, &container.name),
            );
        }
        let pod_dir = logs::pod_dir(run.state_dir, &run.spec.name);
        let result = match run.dir_error {
            Some(message) => Err(spawn::SpawnFailure {
                exit_code: 126,
                message: message.to_string(),
            }),
            None if !is_path_component(&container.name) => Err(spawn::SpawnFailure {
                exit_code: 126,
                message: format!("invalid container name {:?}", container.name),
            }),
            None => spawn::spawn(run.spec, container, &pod_dir, &log, run.ctx),
        };
        let now = now_ms();
        let outcome = match result {
            Ok(started) => {
                info!(pod = %self.name, container = %container.name, pid = started.pid.as_raw(), restart, "container started");
                // Said plainly where people look (describe, -o json): this is not the image.
                let note = format!(
                    "runs as a process on the node: image {} is not run",
                    container.image
                );
                self.update(slot, |c| {
                    if restart {
                        c.restarts += 1;
                    }
                    c.state = ContainerState::Running as i32;
                    c.reason.clear();
                    c.message = note;
                    c.exit_code = 0;
                    c.started_ms = now;
                    c.finished_ms = 0;
                    c.pid = started.pid.as_raw();
                    c.container_id = format!("pid://{}", started.pid.as_raw());
                });
                Ok(started.exit)
            }
            Err(failure) => {
                warn!(pod = %self.name, container = %container.name, error = %failure.message, "container failed to start");
                if restart {
                    self.update(slot, |c| c.restarts += 1);
                }
                Err(failure)
            }
        };
        self.emit(&lifecycle);
        Some(outcome)
    }

    /// Records that a container exited (`exit: None` and no failure: its status was lost).
    /// Returns its exit code.
    fn record_exit(
        &self,
        slot: Slot,
        exit: Option<Exit>,
        failure: Option<spawn::SpawnFailure>,
        killed: Option<String>,
    ) -> i32 {
        let lifecycle = self.lifecycle.lock();
        let (code, message) = match (exit, failure) {
            (_, Some(f)) => (f.exit_code, f.message),
            (Some(exit), None) => (exit.code(), exit.describe()),
            (None, None) => (-1, "exit status lost".to_string()),
        };
        let message = match killed {
            Some(why) => format!("{why}; {message}"),
            None => message,
        };
        let now = now_ms();
        self.update(slot, |c| {
            info!(pod = %self.name, container = %c.name, code, "container exited");
            c.state = ContainerState::Terminated as i32;
            c.exit_code = code;
            c.finished_ms = now;
            c.message = message;
            c.reason = policy::exit_reason(code, false).to_string();
            c.pid = 0;
        });
        self.emit(&lifecycle);
        code
    }

    /// Waits out the crash-loop back-off before a restart, showing `CrashLoopBackOff` with the
    /// run that ended as `lastState`. A container that ran long enough starts the back-off over.
    async fn back_off(&self, slot: Slot, crashes: &mut u32) {
        let delay = {
            let lifecycle = self.lifecycle.lock();
            let status = self.status.borrow();
            let c = self.slot(&status, slot);
            let ran = Duration::from_millis((c.finished_ms - c.started_ms).max(0) as u64);
            if ran >= self.backoff.reset {
                *crashes = 0;
            }
            let delay = self.backoff.delay(*crashes);
            *crashes += 1;
            drop(status);
            self.update(slot, |c| {
                c.last_state = Some(pb::ContainerTermination {
                    exit_code: c.exit_code,
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    started_ms: c.started_ms,
                    finished_ms: c.finished_ms,
                });
                c.state = ContainerState::Waiting as i32;
                c.reason = reason::CRASH_LOOP.into();
                c.message = format!(
                    "back-off {:.0?} restarting failed container {}",
                    delay, c.name
                );
            });
            self.emit(&lifecycle);
            delay
        };
        debug!(pod = %self.name, ?slot, ?delay, "back-off before restart");
        tokio::time::sleep(delay).await;
    }

    fn slot<'a>(&self, status: &'a pb::PodStatus, slot: Slot) -> &'a pb::ContainerStatus {
        match slot {
            Slot::Init(i) => &status.init_containers[i],
            Slot::App(i) => &status.containers[i],
        }
    }

    /// Changes one container's status and derives the pod's from it.
    fn update(&self, slot: Slot, change: impl FnOnce(&mut pb::ContainerStatus)) {
        let policy = self.policy;
        let gates = self.gates.lock().clone();
        self.status.send_modify(|status| {
            let c = match slot {
                Slot::Init(i) => &mut status.init_containers[i],
                Slot::App(i) => &mut status.containers[i],
            };
            change(c);
            refresh(status, policy, &gates);
        });
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

/// Probe commands of a process container: run as the container's own process is.
struct ProcessExec {
    pod: pb::Pod,
    index: usize,
    pod_dir: std::path::PathBuf,
    ctx: SpawnContext,
}

impl probe::Exec for ProcessExec {
    fn exec(
        &self,
        command: Vec<String>,
        timeout: Duration,
    ) -> futures::future::BoxFuture<'static, Result<i32, String>> {
        let (pod, pod_dir, ctx, index) = (
            self.pod.clone(),
            self.pod_dir.clone(),
            self.ctx.clone(),
            self.index,
        );
        Box::pin(async move {
            let run = super::exec::exec(&pod, &pod.containers[index], &pod_dir, &ctx, &command);
            match tokio::time::timeout(timeout, run).await {
                Ok(Ok(outcome)) => Ok(outcome.exit_code),
                Ok(Err(why)) => Err(why),
                Err(_) => Err(format!("command {command:?} timed out after {timeout:?}")),
            }
        })
    }
}

/// What starting a container of the pod needs.
struct Run<'a> {
    spec: &'a pb::Pod,
    ctx: &'a SpawnContext,
    state_dir: &'a std::path::Path,
    /// Why no container of the pod can start (its directory could not be made).
    dir_error: Option<&'a str>,
}

fn running_pids(status: &pb::PodStatus) -> Vec<Pid> {
    status
        .containers
        .iter()
        .chain(&status.init_containers)
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

/// Derives the pod-level fields from its containers: a container is ready while it runs and
/// its probes (`gates`) say so, and the pod while all its app containers are.
fn refresh(status: &mut pb::PodStatus, policy: RestartPolicy, gates: &[bool]) {
    for (c, gate) in status.containers.iter_mut().zip(gates) {
        c.ready = c.state() == ContainerState::Running && *gate;
    }
    let phase = policy::phase(&status.init_containers, &status.containers, policy);
    status.phase = phase as i32;
    status.message = summary(phase, &status.init_containers, &status.containers);
    status.status_reason = policy::status_reason(&status.init_containers, &status.containers);
    status.ready = phase == PodPhase::Running
        && !status.containers.is_empty()
        && status.containers.iter().all(|c| c.ready);
}

/// A pod-level message: why a failed pod failed.
fn summary(phase: PodPhase, init: &[pb::ContainerStatus], app: &[pb::ContainerStatus]) -> String {
    if phase != PodPhase::Failed {
        return String::new();
    }
    if let Some(c) = init
        .iter()
        .find(|c| c.state() == ContainerState::Terminated && c.exit_code != 0)
    {
        return format!("init container {}: {}", c.name, c.message);
    }
    app.iter()
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
