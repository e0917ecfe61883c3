//! One pod on this node: its status, its containers' processes, and how it stops.
//!
//! ```text
//!   init containers, in order, each to completion (a failure is retried with back-off,
//!   unless restartPolicy is Never: the pod fails)
//!     └─▶ app containers, all at once; each one that exits is started again when the
//!         restart policy says so, after the crash-loop back-off (CrashLoopBackOff meanwhile)
//! ```
//! Phase and STATUS follow Kubernetes ([`crate::kubelet::policy`]). A container that cannot be
//! spawned counts as started and exited (127/126). On a restart the container's log (with its
//! rotated files) moves to `<container>.previous.log` (`kube9ctl logs --previous`).
//!
//! Starting a process and stopping the pod both take the pod's `lifecycle` lock, so a stop
//! either sees every pid or prevents the spawn. Once stopping, the pod no longer reports
//! status: the owner of the stop sends the final word (`deleted`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kube9_proto::pb::{self, ContainerState, PodPhase};
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

pub use super::backend::Slot;
use super::backend::{Exited, PodBackend, StartError};
use crate::kubelet::policy::{self, reason, Backoff, RestartPolicy};
use crate::kubelet::probe::{self, ProbeEvent};

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

/// A pod's shared state: read by the supervisor, written by its task and by `stop`.
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
    backend: Arc<dyn PodBackend>,
    spec: pb::Pod,
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
        backend: Arc<dyn PodBackend>,
        events: mpsc::UnboundedSender<pb::PodStatus>,
    ) -> Arc<Self> {
        let app_waits = if spec.init_containers.is_empty() {
            reason::CONTAINER_CREATING
        } else {
            reason::POD_INITIALIZING
        };
        let mut status = pb::PodStatus {
            pod_name: spec.name.clone(),
            pod_namespace: spec.ns().to_string(),
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
            backend,
            spec: spec.clone(),
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
    pub async fn supervise(self: Arc<Self>, previous: Option<super::Stopping>) {
        if let Some(previous) = previous {
            previous.await;
        }
        match self.backend.prepare(&self.spec).await {
            Ok(prepared) => {
                let lifecycle = self.lifecycle.lock();
                self.status
                    .send_modify(|s| s.pod_ip = prepared.ip.unwrap_or_default());
                // Taken over: the containers still run, and their first status says so (a
                // status with every container waiting would only flap the pod's phase).
                if !prepared.taken_over {
                    self.emit(&lifecycle);
                }
            }
            Err(message) => {
                // Nothing of the pod can run: every container counts as run and failed.
                warn!(pod = %self.name, error = %message, "failed to set the pod up");
                let slots = (0..self.spec.init_containers.len())
                    .map(Slot::Init)
                    .chain((0..self.spec.containers.len()).map(Slot::App));
                for slot in slots {
                    let exited = Exited {
                        code: 126,
                        oom_killed: false,
                        message: message.clone(),
                    };
                    self.record_exit(slot, exited, None);
                }
                return;
            }
        }
        for index in 0..self.spec.init_containers.len() {
            if !self.run_to_completion(Slot::Init(index)).await {
                return;
            }
        }
        let apps = (0..self.spec.containers.len()).map(|index| self.keep_running(Slot::App(index)));
        futures::future::join_all(apps).await;
    }

    /// Runs an init container until it exits 0 (retrying with back-off unless the policy is
    /// Never). False when the pod cannot go on.
    async fn run_to_completion(&self, slot: Slot) -> bool {
        let mut crashes = 0;
        let mut restart = false;
        loop {
            let code = match self.run_once(slot, restart).await {
                Run::Stopping => return false,
                Run::NotCreated => {
                    self.back_off(slot, &mut crashes).await;
                    continue;
                }
                Run::Exited(code) => code,
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
    async fn keep_running(&self, slot: Slot) {
        let mut crashes = 0;
        let mut restart = false;
        loop {
            let code = match self.run_once(slot, restart).await {
                Run::Stopping => return,
                // Not created (its image is missing, ...): tried again whatever the policy.
                Run::NotCreated => {
                    self.back_off(slot, &mut crashes).await;
                    continue;
                }
                Run::Exited(code) => code,
            };
            if !self.policy.restarts(code) {
                return;
            }
            self.back_off(slot, &mut crashes).await;
            restart = true;
        }
    }

    /// Starts the container and waits for it to exit.
    async fn run_once(&self, slot: Slot, restart: bool) -> Run {
        let started = match self.start(slot, restart).await {
            None => return Run::Stopping,
            Some(Err(StartError::Waiting { reason, message })) => {
                warn!(pod = %self.name, container = %slot.of(&self.spec).name, %reason, %message, "container not created");
                let lifecycle = self.lifecycle.lock();
                self.update(slot, |c| {
                    c.state = ContainerState::Waiting as i32;
                    c.reason = reason;
                    c.message = message;
                });
                self.emit(&lifecycle);
                return Run::NotCreated;
            }
            Some(Err(StartError::Exited(exited))) => {
                warn!(pod = %self.name, container = %slot.of(&self.spec).name, error = %exited.message, "container failed to start");
                return Run::Exited(self.record_exit(slot, exited, None));
            }
            Some(Ok(started)) => started,
        };
        let exit = started.exit;
        let container = slot.of(&self.spec);
        let probed = container.liveness_probe.is_some()
            || container.readiness_probe.is_some()
            || container.startup_probe.is_some();
        let Slot::App(index) = slot else {
            return Run::Exited(self.record_exit(slot, exit.await, None));
        };
        if !probed {
            self.set_gate(index, true);
            let outcome = exit.await;
            self.set_gate(index, false);
            return Run::Exited(self.record_exit(slot, outcome, None));
        }
        let (host, exec) = self.backend.prober(&self.spec, slot, &started.id);
        let (tx, mut events) = mpsc::unbounded_channel();
        let watcher = tokio::spawn(probe::watch(container.clone(), host, exec, tx));
        let mut killed = None;
        let mut exit = exit;
        let outcome = loop {
            tokio::select! {
                out = &mut exit => break out,
                Some(event) = events.recv() => match event {
                    ProbeEvent::Started => {}
                    ProbeEvent::Ready(ready) => self.set_gate(index, ready),
                    ProbeEvent::Kill(why) => {
                        info!(pod = %self.name, container = %container.name, %why, "killing container");
                        self.backend.kill(&started.id, super::pod_grace(&self.spec));
                        killed = Some(why);
                    }
                },
            }
        };
        watcher.abort();
        self.set_gate(index, false);
        Run::Exited(self.record_exit(slot, outcome, killed))
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

    /// Starts one container; `None` when the pod is stopping (what started meanwhile is
    /// stopped again).
    async fn start(
        &self,
        slot: Slot,
        restart: bool,
    ) -> Option<Result<super::backend::Started, StartError>> {
        if self.lifecycle.lock().stopping {
            return None;
        }
        let container = slot.of(&self.spec);
        let result = self.backend.start(&self.spec, slot, restart).await;
        let lifecycle = self.lifecycle.lock();
        if lifecycle.stopping {
            // The stop did not see this run: take it down here.
            if let Ok(started) = &result {
                self.backend.kill(&started.id, Duration::ZERO);
            }
            return None;
        }
        let now = now_ms();
        match &result {
            Ok(started) => {
                let (resumed, started_ms) = (started.resumed, started.started_ms);
                match resumed {
                    Some(_) => {
                        info!(pod = %self.name, container = %container.name, id = %started.id, "container taken over")
                    }
                    None => {
                        info!(pod = %self.name, container = %container.name, id = %started.id, restart, "container started")
                    }
                }
                self.update(slot, |c| {
                    match resumed {
                        Some(r) => c.restarts = r.restarts,
                        None if restart => c.restarts += 1,
                        None => {}
                    }
                    c.state = ContainerState::Running as i32;
                    c.reason.clear();
                    // Said plainly where people look (describe, -o json).
                    c.message = started.note.clone();
                    c.exit_code = 0;
                    c.started_ms = started_ms.unwrap_or(now);
                    c.finished_ms = 0;
                    c.pid = started.pid;
                    c.container_id = started.id.clone();
                });
            }
            Err(StartError::Exited(_)) if restart => self.update(slot, |c| c.restarts += 1),
            Err(_) => {}
        }
        self.emit(&lifecycle);
        Some(result)
    }

    /// Records that a container exited (`exit: None` and no failure: its status was lost).
    /// Returns its exit code.
    fn record_exit(&self, slot: Slot, exited: Exited, killed: Option<String>) -> i32 {
        let lifecycle = self.lifecycle.lock();
        let Exited {
            code,
            oom_killed,
            message,
        } = exited;
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
            c.reason = policy::exit_reason(code, oom_killed).to_string();
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
            let crashes_now = *crashes;
            drop(status);
            self.update(slot, |c| {
                if c.state() == ContainerState::Waiting {
                    // Never created (its image, ...): after the first failed pull the waits
                    // show the pull back-off, the engine's words kept.
                    if c.reason == reason::ERR_IMAGE_PULL && crashes_now > 1 {
                        c.reason = reason::IMAGE_PULL_BACKOFF.into();
                    }
                    return;
                }
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

    /// Whether the pod is stopping (deleted, replaced or evicted): nothing of it starts again.
    pub fn is_stopping(&self) -> bool {
        self.lifecycle.lock().stopping
    }

    /// Marks the pod stopping for an eviction and returns its status as it was then; `None`
    /// when it was already stopping. [`Self::stop`] it next, then [`Self::evicted`].
    pub fn begin_eviction(&self) -> Option<pb::PodStatus> {
        let mut lifecycle = self.lifecycle.lock();
        if lifecycle.stopping {
            return None;
        }
        lifecycle.stopping = true;
        Some(self.status())
    }

    /// The final status of a pod evicted from `before` (from [`Self::begin_eviction`]), once
    /// its containers are stopped and its task is gone: Failed with reason `Evicted` and
    /// `message`, every container that had not finished terminated (killed: 137). It is the
    /// pod's status from now on; the caller sends it (the pod no longer emits, being stopping).
    pub fn evicted(&self, before: pb::PodStatus, message: &str) -> pb::PodStatus {
        let now = now_ms();
        let mut status = before;
        for c in status
            .containers
            .iter_mut()
            .chain(status.init_containers.iter_mut())
        {
            c.ready = false;
            if c.state() == ContainerState::Terminated {
                continue;
            }
            c.state = ContainerState::Terminated as i32;
            c.exit_code = 137;
            c.reason = reason::EVICTED.into();
            c.message = message.to_string();
            c.finished_ms = now;
            c.pid = 0;
        }
        status.phase = PodPhase::Failed as i32;
        status.status_reason = reason::EVICTED.into();
        status.message = message.to_string();
        status.ready = false;
        // Its sandbox is gone, and its address with it.
        status.pod_ip.clear();
        self.status.send_replace(status.clone());
        status
    }

    /// Stops the pod: SIGTERM to every container, SIGKILL to what is left after `grace`, and
    /// removes what the pod left on the node. Returns once that is done.
    pub async fn stop(&self, grace: Duration) {
        let running: Vec<String> = {
            let mut lifecycle = self.lifecycle.lock();
            lifecycle.stopping = true;
            let status = self.status.borrow();
            status
                .containers
                .iter()
                .chain(&status.init_containers)
                .filter(|c| c.state() == ContainerState::Running && !c.container_id.is_empty())
                .map(|c| c.container_id.clone())
                .collect()
        };
        info!(pod = %self.name, uid = %self.uid, grace_ms = grace.as_millis() as u64, "stopping pod");
        self.backend.teardown(&self.spec, running, grace).await;
        debug!(pod = %self.name, "pod stopped");
    }
}

/// How one run of a container went.
enum Run {
    Exited(i32),
    /// It could not be created; it waits with the reason and is tried again.
    NotCreated,
    /// The pod is stopping.
    Stopping,
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
        return format!("init container {}: {}", c.name, how_it_ended(c));
    }
    app.iter()
        .find(|c| c.exit_code != 0)
        .map(|c| format!("container {}: {}", c.name, how_it_ended(c)))
        .unwrap_or_default()
}

/// A terminated container's message, or when it has none (the engine rarely says more than
/// the exit), its reason and exit code.
fn how_it_ended(c: &pb::ContainerStatus) -> String {
    match (c.message.is_empty(), c.reason.is_empty()) {
        (false, _) => c.message.clone(),
        (true, false) => format!("{} (exit code {})", c.reason, c.exit_code),
        (true, true) => format!("exit code {}", c.exit_code),
    }
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

    #[test]
    fn a_failed_pod_says_which_container_ended_how() {
        use ContainerState::*;
        let named = |name: &str, reason: &str, message: &str, code: i32| pb::ContainerStatus {
            name: name.into(),
            reason: reason.into(),
            message: message.into(),
            ..container(Terminated, code)
        };
        let ok = named("side", "Completed", "", 0);
        let oom = named("hog", "OOMKilled", "", 137);
        assert_eq!(
            summary(PodPhase::Failed, &[], &[ok.clone(), oom.clone()]),
            "container hog: OOMKilled (exit code 137)"
        );
        let said = named("app", "Error", "exec: \"nope\": not found", 127);
        assert_eq!(
            summary(PodPhase::Failed, &[], &[said]),
            "container app: exec: \"nope\": not found"
        );
        assert_eq!(
            summary(PodPhase::Failed, &[named("init", "", "", 2)], &[]),
            "init container init: exit code 2"
        );
        assert_eq!(summary(PodPhase::Running, &[], &[oom]), "");
    }
}
