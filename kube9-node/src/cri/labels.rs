//! Labels and names of the engine objects a node creates for its pods.
//!
//! Every container and volume carries the cluster, node and pod labels below, so an agent
//! that restarts finds (and adopts or removes) exactly its own objects with a label filter,
//! and never touches anything else on a shared engine. Names include the pod uid, so two
//! same-named pods (in two namespaces, or two bindings of one name) never collide:
//!
//! ```text
//! k9_<container>_<pod>_<namespace>_<uid>_<attempt>     app containers
//! k9_POD_<pod>_<namespace>_<uid>_<attempt>             the pod's sandbox
//! k9v_<volume>_<pod>_<namespace>_<uid>                 emptyDir, configMap and secret volumes
//! ```
//!
//! `_` cannot appear in a Kubernetes name or in a uid, so the parts stay unambiguous, and
//! `POD` (upper case) cannot be an app container's name.

use std::collections::HashMap;

use super::types::{ContainerInfo, PodMeta, SandboxId};

/// Cluster id (as in kube9d's node containers).
pub const CLUSTER: &str = "io.kube9.cluster";
/// Node name (as in kube9d's node containers).
pub const NODE: &str = "io.kube9.node";
/// The pod's namespace.
pub const POD_NAMESPACE: &str = "io.kube9.pod.namespace";
/// The pod's name.
pub const POD_NAME: &str = "io.kube9.pod.name";
/// The pod binding's uid.
pub const POD_UID: &str = "io.kube9.pod.uid";
/// The container's name in the pod spec; [`SANDBOX_CONTAINER_NAME`] on sandboxes.
pub const CONTAINER_NAME: &str = "io.kube9.container.name";
/// How many times this container was created before (0 for the first run).
pub const ATTEMPT: &str = "io.kube9.container.attempt";
/// `"true"` on sandbox containers, and only there.
pub const SANDBOX: &str = "io.kube9.sandbox";
/// On app containers: the id of the sandbox whose namespaces they join.
pub const SANDBOX_ID: &str = "io.kube9.sandbox.id";
/// On volumes: the volume's name in the pod spec.
pub const VOLUME_NAME: &str = "io.kube9.volume.name";

/// The name sandboxes go by, in [`CONTAINER_NAME`] and in their engine name.
pub const SANDBOX_CONTAINER_NAME: &str = "POD";

/// Prefix of every container name (`k9_…`).
const CONTAINER_PREFIX: &str = "k9";
/// Prefix of every volume name (`k9v_…`).
const VOLUME_PREFIX: &str = "k9v";

/// The labels every object of `pod` carries.
pub fn pod_labels(pod: &PodMeta) -> HashMap<String, String> {
    HashMap::from([
        (CLUSTER.to_string(), pod.cluster.clone()),
        (NODE.to_string(), pod.node.clone()),
        (POD_NAMESPACE.to_string(), pod.namespace.clone()),
        (POD_NAME.to_string(), pod.name.clone()),
        (POD_UID.to_string(), pod.uid.clone()),
    ])
}

/// The pod a set of labels names, if it has every pod label.
pub fn pod_of(labels: &HashMap<String, String>) -> Option<PodMeta> {
    let get = |key: &str| labels.get(key).cloned();
    Some(PodMeta {
        cluster: get(CLUSTER)?,
        node: get(NODE)?,
        namespace: get(POD_NAMESPACE)?,
        name: get(POD_NAME)?,
        uid: get(POD_UID)?,
    })
}

/// `k9_<container>_<pod>_<namespace>_<uid>_<attempt>`.
pub fn container_name(pod: &PodMeta, container: &str, attempt: u32) -> String {
    format!(
        "{CONTAINER_PREFIX}_{container}_{}_{}_{}_{attempt}",
        pod.name, pod.namespace, pod.uid
    )
}

/// `k9_POD_<pod>_<namespace>_<uid>_<attempt>`.
pub fn sandbox_name(pod: &PodMeta, attempt: u32) -> String {
    container_name(pod, SANDBOX_CONTAINER_NAME, attempt)
}

/// `k9v_<volume>_<pod>_<namespace>_<uid>`.
pub fn volume_name(pod: &PodMeta, volume: &str) -> String {
    format!(
        "{VOLUME_PREFIX}_{volume}_{}_{}_{}",
        pod.name, pod.namespace, pod.uid
    )
}

/// The parts of a container name made by [`container_name`]: container name, pod name,
/// namespace, uid, attempt. `None` for any other name.
pub fn parse_container_name(name: &str) -> Option<(&str, &str, &str, &str, u32)> {
    let name = name.strip_prefix('/').unwrap_or(name);
    let mut parts = name.split('_');
    if parts.next()? != CONTAINER_PREFIX {
        return None;
    }
    let (container, pod, namespace, uid) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let attempt = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some((container, pod, namespace, uid, attempt))
}

/// Reading an engine container's labels.
impl ContainerInfo {
    /// The pod it belongs to, from its labels.
    pub fn pod(&self) -> Option<PodMeta> {
        pod_of(&self.labels)
    }

    /// Its name in the pod spec (`POD` for a sandbox).
    pub fn container_name(&self) -> Option<&str> {
        self.labels.get(CONTAINER_NAME).map(String::as_str)
    }

    /// Its attempt number.
    pub fn attempt(&self) -> Option<u32> {
        self.labels.get(ATTEMPT)?.parse().ok()
    }

    /// Whether it is a pod sandbox.
    pub fn is_sandbox(&self) -> bool {
        self.labels.get(SANDBOX).map(String::as_str) == Some("true")
    }

    /// For an app container: the sandbox it joined.
    pub fn sandbox_id(&self) -> Option<SandboxId> {
        self.labels.get(SANDBOX_ID).cloned().map(SandboxId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(namespace: &str) -> PodMeta {
        PodMeta {
            cluster: "c1".into(),
            node: "n1".into(),
            namespace: namespace.into(),
            name: "web-1".into(),
            uid: "0badf00d00000001".into(),
        }
    }

    #[test]
    fn names_carry_the_pod_uid_and_namespace() {
        assert_eq!(
            container_name(&pod("default"), "app", 2),
            "k9_app_web-1_default_0badf00d00000001_2"
        );
        assert_eq!(
            sandbox_name(&pod("default"), 0),
            "k9_POD_web-1_default_0badf00d00000001_0"
        );
        assert_eq!(
            volume_name(&pod("default"), "cache"),
            "k9v_cache_web-1_default_0badf00d00000001"
        );
        assert_ne!(
            container_name(&pod("a"), "app", 0),
            container_name(&pod("b"), "app", 0)
        );
    }

    #[test]
    fn a_container_name_parses_back_into_its_parts() {
        let name = format!("/{}", container_name(&pod("prod"), "side-car", 7));
        assert_eq!(
            parse_container_name(&name),
            Some(("side-car", "web-1", "prod", "0badf00d00000001", 7))
        );
        assert_eq!(parse_container_name("kube9-n1"), None);
        assert_eq!(parse_container_name("k9_a_b_c_d_x"), None);
        assert_eq!(parse_container_name("k9_a_b_c_d_1_extra"), None);
    }

    #[test]
    fn pod_labels_round_trip() {
        let labels = pod_labels(&pod("default"));
        assert_eq!(pod_of(&labels), Some(pod("default")));
        let mut partial = labels.clone();
        partial.remove(POD_UID);
        assert_eq!(pod_of(&partial), None);
    }
}
