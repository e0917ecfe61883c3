//! Taking over what an earlier agent of this node left in the engine.
//!
//! Pod containers outlive the agent, as they outlive a kubelet: an agent that crashed, was
//! killed, or whose node container was restarted finds its pods still running when it comes
//! back. It takes them over instead of starting them again, keeping their container ids:
//!
//! ```text
//!   start-up:    list the engine's containers of this cluster and node, grouped by pod uid
//!                (Leftovers); a pod whose sandbox still runs can be taken over
//!   Register:    adoptable_pod_uids = those pods
//!   Registered:  adopt_pod_uids = the ones kube9d still binds here; everything else the
//!                earlier agent left (containers and volumes) is removed, once
//!   RunPod:      the pod's sandbox and newest run of each container are used as they are; a
//!                container that exited meanwhile is treated as having just exited
//! ```

use std::collections::HashMap;

use crate::cri::{ContainerInfo, ContainerState};

/// What an earlier agent left of one pod binding.
#[derive(Debug, Clone, Default)]
pub struct Leftover {
    /// The pod's newest sandbox.
    pub sandbox: Option<ContainerInfo>,
    /// Every other container of the pod (app and init container runs, older sandboxes).
    pub containers: Vec<ContainerInfo>,
}

impl Leftover {
    /// Whether the pod can be taken over: its sandbox (network namespace, volumes) still runs.
    pub fn adoptable(&self) -> bool {
        self.sandbox
            .as_ref()
            .is_some_and(|s| s.state == ContainerState::Running)
    }

    /// Per container name: its newest run and the run before it, if any.
    pub fn runs(&self) -> HashMap<String, (ContainerInfo, Option<ContainerInfo>)> {
        let mut by_name: HashMap<String, Vec<&ContainerInfo>> = HashMap::new();
        for c in self.containers.iter().filter(|c| !c.is_sandbox()) {
            if let Some(name) = c.container_name() {
                by_name.entry(name.to_string()).or_default().push(c);
            }
        }
        by_name
            .into_iter()
            .map(|(name, mut runs)| {
                runs.sort_by_key(|c| std::cmp::Reverse(c.attempt().unwrap_or(0)));
                let newest = runs[0].clone();
                let before = runs.get(1).map(|c| (*c).clone());
                (name, (newest, before))
            })
            .collect()
    }

    /// Every engine container of the pod, sandbox included.
    pub fn all(&self) -> impl Iterator<Item = &ContainerInfo> {
        self.sandbox.iter().chain(&self.containers)
    }
}

/// Groups the engine's containers of this node by the pod binding (uid) they belong to.
/// Containers without pod labels are not ours to touch and are left out.
pub fn group(found: Vec<ContainerInfo>) -> HashMap<String, Leftover> {
    let mut pods: HashMap<String, Leftover> = HashMap::new();
    for c in found {
        let Some(pod) = c.pod() else { continue };
        let left = pods.entry(pod.uid).or_default();
        if !c.is_sandbox() {
            left.containers.push(c);
            continue;
        }
        let newer = left
            .sandbox
            .as_ref()
            .is_none_or(|s| c.attempt().unwrap_or(0) >= s.attempt().unwrap_or(0));
        if newer {
            if let Some(older) = left.sandbox.replace(c) {
                left.containers.push(older);
            }
        } else {
            left.containers.push(c);
        }
    }
    pods
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri::{labels, ContainerId};

    fn info(uid: &str, container: &str, attempt: u32, state: ContainerState) -> ContainerInfo {
        let mut l = HashMap::from([
            (labels::CLUSTER.to_string(), "c".to_string()),
            (labels::NODE.to_string(), "n".to_string()),
            (labels::POD_NAMESPACE.to_string(), "default".to_string()),
            (labels::POD_NAME.to_string(), "web".to_string()),
            (labels::POD_UID.to_string(), uid.to_string()),
            (labels::CONTAINER_NAME.to_string(), container.to_string()),
            (labels::ATTEMPT.to_string(), attempt.to_string()),
        ]);
        if container == labels::SANDBOX_CONTAINER_NAME {
            l.insert(labels::SANDBOX.to_string(), "true".to_string());
        }
        ContainerInfo {
            id: ContainerId(format!("{uid}-{container}-{attempt}")),
            name: String::new(),
            image: String::new(),
            state,
            exit_code: None,
            oom_killed: false,
            error: None,
            pid: None,
            started_ms: None,
            finished_ms: None,
            labels: l,
        }
    }

    #[test]
    fn containers_are_grouped_by_pod_binding_with_the_newest_sandbox() {
        use ContainerState::*;
        let mut stranger = info("u3", "app", 0, Running);
        stranger.labels.remove(labels::POD_UID);
        let pods = group(vec![
            info("u1", "POD", 0, Exited),
            info("u1", "POD", 1, Running),
            info("u1", "app", 0, Exited),
            info("u1", "app", 2, Running),
            info("u1", "app", 1, Exited),
            info("u2", "app", 0, Running),
            stranger,
        ]);
        assert_eq!(
            pods.len(),
            2,
            "the container without pod labels is not ours"
        );
        let u1 = &pods["u1"];
        assert!(u1.adoptable());
        assert_eq!(u1.sandbox.as_ref().unwrap().id.as_str(), "u1-POD-1");
        assert_eq!(u1.all().count(), 5);
        let runs = u1.runs();
        let (newest, before) = &runs["app"];
        assert_eq!(newest.id.as_str(), "u1-app-2");
        assert_eq!(before.as_ref().unwrap().id.as_str(), "u1-app-1");
        assert!(
            !pods["u2"].adoptable(),
            "no sandbox: its network namespace is gone"
        );
    }

    #[test]
    fn a_pod_whose_sandbox_stopped_cannot_be_taken_over() {
        let pods = group(vec![
            info("u1", "POD", 0, ContainerState::Exited),
            info("u1", "app", 0, ContainerState::Running),
        ]);
        assert!(!pods["u1"].adoptable());
    }
}
