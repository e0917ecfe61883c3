//! Kubernetes' rules for a pod's containers, as pure functions: whether an exited container
//! restarts (`restartPolicy`), how long it waits first (crash-loop back-off), which phase the
//! pod is in, and what `kubectl get pods` shows in STATUS. The pod worker applies them; nothing
//! here does I/O.

use std::time::Duration;

use kube9_proto::pb::{self, ContainerState, PodPhase};

/// `spec.restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// The policy a pod asks for (empty: Always, as in Kubernetes).
    pub fn of(pod: &pb::Pod) -> Self {
        match pod.restart_policy.as_str() {
            "OnFailure" => RestartPolicy::OnFailure,
            "Never" => RestartPolicy::Never,
            _ => RestartPolicy::Always,
        }
    }

    /// Whether an app container that exited with `exit_code` is started again.
    pub fn restarts(self, exit_code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => exit_code != 0,
            RestartPolicy::Never => false,
        }
    }

    /// Whether a failed init container is tried again (Kubernetes: unless the policy is Never).
    pub fn retries_init(self) -> bool {
        self != RestartPolicy::Never
    }
}

/// Crash-loop back-off: the wait before restart `n` doubles from `base` up to `max`
/// (Kubernetes: 10 s doubling to 5 min), and starts over once a container ran for `reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    pub reset: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(10),
            max: Duration::from_secs(300),
            reset: Duration::from_secs(600),
        }
    }
}

impl Backoff {
    /// The wait before the restart that follows `restarts` earlier ones (0: the first restart).
    pub fn delay(&self, restarts: u32) -> Duration {
        let factor = 2u32.saturating_pow(restarts.min(31));
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// Why an app container is waiting or ended, for its status `reason`.
pub mod reason {
    pub const CONTAINER_CREATING: &str = "ContainerCreating";
    pub const POD_INITIALIZING: &str = "PodInitializing";
    pub const CRASH_LOOP: &str = "CrashLoopBackOff";
    pub const ERR_IMAGE_PULL: &str = "ErrImagePull";
    pub const IMAGE_PULL_BACKOFF: &str = "ImagePullBackOff";
    pub const ERR_IMAGE_NEVER_PULL: &str = "ErrImageNeverPull";
    pub const CREATE_ERROR: &str = "CreateContainerError";
    /// The container's config cannot be applied (`runAsNonRoot` on an image that runs as root).
    pub const CREATE_CONTAINER_CONFIG_ERROR: &str = "CreateContainerConfigError";
    pub const COMPLETED: &str = "Completed";
    pub const ERROR: &str = "Error";
    pub const OOM_KILLED: &str = "OOMKilled";
    /// The kubelet evicted the pod (an emptyDir over its `sizeLimit`): the pod's reason, and
    /// its containers' as they were stopped.
    pub const EVICTED: &str = "Evicted";
}

/// The `reason` of a container that exited: OOMKilled, Completed or Error.
pub fn exit_reason(exit_code: i32, oom_killed: bool) -> &'static str {
    match (oom_killed, exit_code) {
        (true, _) => reason::OOM_KILLED,
        (false, 0) => reason::COMPLETED,
        (false, _) => reason::ERROR,
    }
}

fn state(c: &pb::ContainerStatus) -> ContainerState {
    c.state()
}

/// Whether this exited app container is done for good under `policy`.
fn finished(c: &pb::ContainerStatus, policy: RestartPolicy) -> bool {
    state(c) == ContainerState::Terminated && !policy.restarts(c.exit_code)
}

/// The pod's phase, as Kubernetes derives it: `Scheduled` (our word for a bound pod whose
/// containers have not all started: Kubernetes says Pending) until init containers are done
/// and every app container has started once; `Succeeded`/`Failed` when every app container
/// has ended for good; `Running` otherwise (also while a container waits to restart).
pub fn phase(
    init: &[pb::ContainerStatus],
    app: &[pb::ContainerStatus],
    policy: RestartPolicy,
) -> PodPhase {
    // A failed init container that is not retried fails the pod.
    if init.iter().any(|c| {
        state(c) == ContainerState::Terminated && c.exit_code != 0 && !policy.retries_init()
    }) {
        return PodPhase::Failed;
    }
    let init_done = init
        .iter()
        .all(|c| state(c) == ContainerState::Terminated && c.exit_code == 0);
    let all_started = app
        .iter()
        .all(|c| state(c) != ContainerState::Waiting || c.restarts > 0 || c.last_state.is_some());
    if !init_done || !all_started || app.is_empty() {
        return PodPhase::Scheduled;
    }
    if app.iter().all(|c| finished(c, policy)) {
        return if app.iter().all(|c| c.exit_code == 0) {
            PodPhase::Succeeded
        } else {
            PodPhase::Failed
        };
    }
    PodPhase::Running
}

/// What `kubectl get pods` shows in STATUS when it says more than the phase (empty when the
/// phase says it all): `Init:1/2`, `Init:Error`, `Init:CrashLoopBackOff`, `CrashLoopBackOff`,
/// `ErrImagePull`, `ImagePullBackOff`, `OOMKilled`, `Error`, `Completed`.
pub fn status_reason(init: &[pb::ContainerStatus], app: &[pb::ContainerStatus]) -> String {
    let init_done = init
        .iter()
        .filter(|c| state(c) == ContainerState::Terminated && c.exit_code == 0)
        .count();
    if init_done < init.len() {
        for c in init {
            match state(c) {
                ContainerState::Terminated if c.exit_code != 0 => {
                    return format!("Init:{}", non_empty(&c.reason, reason::ERROR))
                }
                ContainerState::Waiting
                    if !c.reason.is_empty()
                        && c.reason != reason::CONTAINER_CREATING
                        && c.reason != reason::POD_INITIALIZING =>
                {
                    return format!("Init:{}", c.reason)
                }
                _ => {}
            }
        }
        return format!("Init:{init_done}/{}", init.len());
    }
    // As kubectl: the last container with something to say wins; a running one says Running.
    let mut shown = String::new();
    for c in app {
        match state(c) {
            ContainerState::Waiting if !c.reason.is_empty() => shown = c.reason.clone(),
            ContainerState::Terminated => {
                shown = non_empty(&c.reason, exit_reason(c.exit_code, false)).to_string()
            }
            _ => {}
        }
    }
    if app.iter().any(|c| state(c) == ContainerState::Running)
        && !app
            .iter()
            .any(|c| state(c) == ContainerState::Waiting && c.reason == reason::CRASH_LOOP)
    {
        return String::new();
    }
    shown
}

fn non_empty<'a>(s: &'a str, fallback: &'a str) -> &'a str {
    if s.is_empty() {
        fallback
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ContainerState::*;

    fn c(state: ContainerState, exit_code: i32, reason: &str) -> pb::ContainerStatus {
        pb::ContainerStatus {
            state: state as i32,
            exit_code,
            reason: reason.into(),
            ..Default::default()
        }
    }

    fn restarted(mut s: pb::ContainerStatus) -> pb::ContainerStatus {
        s.restarts = 1;
        s
    }

    #[test]
    fn restart_policies_decide_which_exits_restart() {
        use RestartPolicy::*;
        assert!(Always.restarts(0) && Always.restarts(1));
        assert!(!OnFailure.restarts(0) && OnFailure.restarts(1));
        assert!(!Never.restarts(0) && !Never.restarts(1));
        assert!(Always.retries_init() && OnFailure.retries_init() && !Never.retries_init());
        let pod = |p: &str| pb::Pod {
            restart_policy: p.into(),
            ..Default::default()
        };
        assert_eq!(RestartPolicy::of(&pod("")), Always);
        assert_eq!(RestartPolicy::of(&pod("OnFailure")), OnFailure);
        assert_eq!(RestartPolicy::of(&pod("Never")), Never);
    }

    #[test]
    fn back_off_doubles_from_ten_seconds_to_five_minutes() {
        let b = Backoff::default();
        let secs: Vec<u64> = (0..8).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(secs, [10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(300));
        let fast = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(400),
            ..Default::default()
        };
        assert_eq!(fast.delay(3), Duration::from_millis(400));
    }

    #[test]
    fn phases_follow_kubernetes() {
        use RestartPolicy::*;
        let none: &[pb::ContainerStatus] = &[];
        assert_eq!(
            phase(none, &[c(Waiting, 0, "")], Always),
            PodPhase::Scheduled
        );
        assert_eq!(phase(none, &[c(Running, 0, "")], Always), PodPhase::Running);
        // Ended for good.
        assert_eq!(
            phase(none, &[c(Terminated, 0, "")], Never),
            PodPhase::Succeeded
        );
        assert_eq!(
            phase(none, &[c(Terminated, 0, "")], OnFailure),
            PodPhase::Succeeded
        );
        assert_eq!(
            phase(none, &[c(Terminated, 1, "")], Never),
            PodPhase::Failed
        );
        // Will restart: still Running, even while it waits in back-off.
        assert_eq!(
            phase(none, &[c(Terminated, 1, "")], OnFailure),
            PodPhase::Running
        );
        assert_eq!(
            phase(none, &[c(Terminated, 0, "")], Always),
            PodPhase::Running
        );
        assert_eq!(
            phase(
                none,
                &[restarted(c(Waiting, 0, reason::CRASH_LOOP))],
                Always
            ),
            PodPhase::Running
        );
        // One done, one running.
        assert_eq!(
            phase(none, &[c(Terminated, 0, ""), c(Running, 0, "")], Never),
            PodPhase::Running
        );
        // Init containers first.
        let init = [c(Terminated, 0, ""), c(Running, 0, "")];
        assert_eq!(
            phase(&init, &[c(Waiting, 0, "")], Always),
            PodPhase::Scheduled
        );
        let failed_init = [c(Terminated, 1, "")];
        assert_eq!(
            phase(&failed_init, &[c(Waiting, 0, "")], Never),
            PodPhase::Failed
        );
        assert_eq!(
            phase(&failed_init, &[c(Waiting, 0, "")], Always),
            PodPhase::Scheduled
        );
    }

    #[test]
    fn status_column_says_what_kubectl_says() {
        let none: &[pb::ContainerStatus] = &[];
        let init = [c(Terminated, 0, ""), c(Running, 0, "")];
        assert_eq!(status_reason(&init, &[c(Waiting, 0, "")]), "Init:1/2");
        let init = [c(Terminated, 2, "")];
        assert_eq!(status_reason(&init, &[c(Waiting, 0, "")]), "Init:Error");
        let init = [c(Waiting, 1, reason::CRASH_LOOP)];
        assert_eq!(
            status_reason(&init, &[c(Waiting, 0, "")]),
            "Init:CrashLoopBackOff"
        );
        assert_eq!(
            status_reason(none, &[c(Waiting, 0, reason::CRASH_LOOP)]),
            "CrashLoopBackOff"
        );
        assert_eq!(
            status_reason(
                none,
                &[c(Running, 0, ""), c(Waiting, 0, reason::CRASH_LOOP)]
            ),
            "CrashLoopBackOff"
        );
        assert_eq!(
            status_reason(none, &[c(Waiting, 0, reason::ERR_IMAGE_PULL)]),
            "ErrImagePull"
        );
        assert_eq!(
            status_reason(none, &[c(Terminated, 137, reason::OOM_KILLED)]),
            "OOMKilled"
        );
        assert_eq!(status_reason(none, &[c(Terminated, 0, "")]), "Completed");
        assert_eq!(status_reason(none, &[c(Terminated, 3, "")]), "Error");
        assert_eq!(status_reason(none, &[c(Running, 0, "")]), "");
        assert_eq!(
            status_reason(none, &[c(Running, 0, ""), c(Terminated, 0, "")]),
            ""
        );
    }

    #[test]
    fn exits_get_their_reason() {
        assert_eq!(exit_reason(0, false), "Completed");
        assert_eq!(exit_reason(1, false), "Error");
        assert_eq!(exit_reason(137, true), "OOMKilled");
    }
}
