//! Settings of the Docker runtime ([`DockerConfig`]) and the defaults and names derived from
//! them: the node image tag, the cluster network and container names, and the labels that
//! mark what belongs to a cluster.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::runtime::{LABEL_CLUSTER, LABEL_NODE};

/// Settings of the Docker runtime.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    pub cluster_id: String,
    /// Static `kube9-node` binary copied into the node image.
    pub node_binary: PathBuf,
    /// Static busybox copied into the node image.
    pub busybox: PathBuf,
    /// Tag of the node image; [`default_image_tag`] by default.
    pub image_tag: String,
    /// Replaces the image's entrypoint (the agent). For tests that need a container which
    /// exits or stays up on its own, e.g. `["/bin/sleep", "1000"]`.
    pub entrypoint_override: Option<Vec<String>>,
    /// The join token and CA pin the node containers get.
    pub auth: crate::runtime::NodeAuth,
    /// Node containers carry Docker's `unless-stopped` restart policy, so a Docker daemon
    /// restart (which stops every container) starts them again and their agents rejoin. A
    /// container a person or kube9d stops or kills stays down (Docker counts both as a
    /// manual stop), so kube9d's own failure handling is unchanged; an agent that exits by
    /// itself is started again at once. Tests of containers that exit on their own turn it
    /// off.
    pub restart_with_engine: bool,
}

/// `kube9-node:<kube9d version>`.
pub fn default_image_tag() -> String {
    format!("kube9-node:{}", env!("CARGO_PKG_VERSION"))
}

impl DockerConfig {
    /// A config with the default image tag and the agent as entrypoint.
    pub fn new(cluster_id: impl Into<String>, node_binary: PathBuf, busybox: PathBuf) -> Self {
        Self {
            cluster_id: cluster_id.into(),
            node_binary,
            busybox,
            image_tag: default_image_tag(),
            entrypoint_override: None,
            auth: Default::default(),
            restart_with_engine: true,
        }
    }

    /// `<cluster>-net`.
    pub(super) fn network_name(&self) -> String {
        format!("{}-net", self.cluster_id)
    }

    /// `<cluster>-<node>`.
    pub(super) fn container_name(&self, node: &str) -> String {
        format!("{}-{node}", self.cluster_id)
    }

    /// The labels of this cluster's network (`node: None`) or of a node's container.
    pub(super) fn labels(&self, node: Option<&str>) -> HashMap<String, String> {
        let mut labels = HashMap::from([(LABEL_CLUSTER.to_string(), self.cluster_id.clone())]);
        if let Some(node) = node {
            labels.insert(LABEL_NODE.to_string(), node.to_string());
        }
        labels
    }

    /// Whether a container or network with these labels belongs to this cluster.
    pub(super) fn is_ours(&self, labels: Option<&HashMap<String, String>>) -> bool {
        labels.and_then(|l| l.get(LABEL_CLUSTER)) == Some(&self.cluster_id)
    }

    /// `io.kube9.cluster=<cluster>`: the label filter that lists this cluster's objects.
    pub(super) fn label_filter(&self) -> String {
        format!("{LABEL_CLUSTER}={}", self.cluster_id)
    }
}
