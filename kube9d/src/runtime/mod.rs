//! Where nodes live. A [`NodeRuntime`] starts, inspects, restarts and removes the machine a
//! node agent runs on: a Docker container ([`docker`]), a local process ([`process`]), or
//! nothing at all for agents that joined by themselves ("external" nodes).
//!
//! kube9d never talks to the agent through the runtime: the agent dials kube9d. The runtime
//! only owns the box the agent runs in.

pub mod docker;
#[cfg(test)]
pub mod fake;
mod kind;
pub mod process;

pub use kind::RuntimeKind;

use std::time::Duration;

use std::path::PathBuf;

use async_trait::async_trait;
use kube9_proto::pb::RuntimeHandle;

/// Labels (Docker) and argument markers (processes) that tie an instance to its cluster.
pub const LABEL_CLUSTER: &str = "io.kube9.cluster";
/// The node an instance belongs to.
pub const LABEL_NODE: &str = "io.kube9.node";
/// Set on the containers of pods (which the agents create beside their node's container,
/// with the cluster and node labels too): they are never node instances.
pub const LABEL_POD_UID: &str = "io.kube9.pod.uid";

/// What a runtime needs to start one node agent.
#[derive(Debug, Clone)]
pub struct NodeLaunch {
    pub name: String,
    pub cpu_millis: i64,
    pub cluster_id: String,
    /// The port kube9d serves gRPC on; the runtime decides which address the agent dials.
    pub server_port: u16,
    pub heartbeat_interval_ms: u64,
    /// Passed to the agent (`KUBE9_INSTANCE_ID`); kube9d accepts only this agent for the node.
    pub instance_id: String,
}

/// How the agents kube9d starts prove themselves and check kube9d: the join token, and the
/// cluster CA (pinned by hash in a node container, read from its file by a node process).
#[derive(Debug, Clone, Default)]
pub struct NodeAuth {
    /// The join token (`<id>.<secret>`).
    pub token: String,
    /// Where the join token is (process nodes read it there: nothing in argv or env).
    pub token_file: Option<PathBuf>,
    /// `sha256:<hex>` of the cluster CA; empty when kube9d serves plain text (`--insecure`).
    pub ca_hash: String,
    /// The cluster CA's file.
    pub ca_file: Option<PathBuf>,
}

impl NodeAuth {
    /// Whether kube9d serves TLS.
    pub fn tls(&self) -> bool {
        !self.ca_hash.is_empty()
    }

    /// The URL agents dial at `host:port`.
    pub fn server_url(&self, host: &str, port: u16) -> String {
        let scheme = if self.tls() { "https" } else { "http" };
        format!("{scheme}://{host}:{port}")
    }
}

/// What the runtime observed about a node's container or process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    Running,
    /// Exited (or was killed) with this code; `oom` when the kernel killed it for memory.
    Exited {
        code: i64,
        oom: bool,
    },
    /// No such container or process.
    Missing,
}

impl Observed {
    /// Short word stored in `RuntimeHandle.state`.
    pub fn label(&self) -> String {
        match self {
            Observed::Running => "running".into(),
            Observed::Exited { oom: true, .. } => "oom-killed".into(),
            Observed::Exited { code, .. } => format!("exited({code})"),
            Observed::Missing => "missing".into(),
        }
    }
}

/// An instance the runtime found that carries this cluster's label.
#[derive(Debug, Clone)]
pub struct OwnedInstance {
    pub node_name: String,
    pub handle: RuntimeHandle,
    /// What the instance is doing now, so one `list_owned` call serves the container monitor.
    pub observed: Observed,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} is not supported by the {1} runtime")]
    Unsupported(&'static str, &'static str),
    #[error("no container or process for node {0}")]
    NotFound(String),
    #[error("docker: {0}")]
    Docker(#[from] bollard::errors::Error),
    #[error("failed to build the node image: {0}")]
    Image(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The box a node agent runs in. Implementations must be idempotent where noted: the monitor
/// and the reaper may repeat a call after a crash.
#[async_trait]
pub trait NodeRuntime: Send + Sync + 'static {
    /// Docker or Process: the kind of every handle this runtime hands out.
    fn kind(&self) -> RuntimeKind;

    /// One-time setup before the first launch (network, image). Safe to call again.
    async fn prepare(&self) -> Result<()>;

    /// Addresses the agents dial kube9d on besides this host's own (the Docker network's
    /// gateway), known after [`Self::prepare`]: kube9d's certificate must name them.
    fn server_addresses(&self) -> Vec<String> {
        Vec::new()
    }

    /// Starts a node agent; returns where it runs.
    async fn launch(&self, spec: &NodeLaunch) -> Result<RuntimeHandle>;

    /// What the container or process is doing now.
    async fn inspect(&self, handle: &RuntimeHandle) -> Result<Observed>;

    /// Starts the node again after a failure (recovery). May return a new handle.
    async fn restart(&self, handle: &RuntimeHandle, spec: &NodeLaunch) -> Result<RuntimeHandle>;

    /// Graceful stop: SIGTERM, then SIGKILL after `grace`. The agent deregisters on SIGTERM.
    async fn stop(&self, handle: &RuntimeHandle, grace: Duration) -> Result<()>;

    /// Abrupt kill, for fault injection (`node fail --mode crash`).
    async fn kill(&self, handle: &RuntimeHandle) -> Result<()>;

    /// Kills and deletes the instance. Idempotent: a missing instance is not an error.
    async fn remove(&self, handle: &RuntimeHandle) -> Result<()>;

    /// Cuts the node off the cluster network (true) or reconnects it (false).
    async fn set_partitioned(&self, handle: &RuntimeHandle, partitioned: bool) -> Result<()>;

    /// Every instance labelled with this cluster, running or not.
    async fn list_owned(&self) -> Result<Vec<OwnedInstance>>;
}
