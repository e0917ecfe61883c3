//! kube9d's command line and the timing settings the control loops run on.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Which runtime hosts the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeChoice {
    /// Docker when the engine answers, local processes otherwise.
    Auto,
    /// Every node is a Docker container (bollard).
    Docker,
    /// Every node is a local `kube9-node` process.
    Process,
}

/// kube9d: the Kube-9 control plane.
#[derive(Debug, Clone, Parser)]
#[command(name = "kube9d", version, about)]
pub struct Config {
    /// Without a command, kube9d serves.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address the gRPC API (and agents) connect to. Docker nodes need an address reachable
    /// from the cluster network, hence 0.0.0.0 by default.
    #[arg(long, env = "KUBE9_LISTEN", default_value = "0.0.0.0:7209")]
    pub listen: SocketAddr,

    /// Where the store lives.
    #[arg(long, env = "KUBE9_DATA_DIR", default_value = ".kube9")]
    pub data_dir: PathBuf,

    /// The key that encrypts Secrets at rest (32 bytes; created with mode 0600 when missing).
    /// Default: `<data-dir>/secret.key`.
    #[arg(long, env = "KUBE9_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,

    /// Serve plain text: no TLS, tokens and pod specs cross the network readable by anyone on
    /// the path. Logged as a warning at start and on every connection. Tokens are still
    /// required.
    #[arg(long, env = "KUBE9_INSECURE")]
    pub insecure: bool,

    /// Extra names or addresses for the server certificate (repeatable, or comma-separated):
    /// what clients and hand-joined agents dial when it is not one of this host's addresses.
    #[arg(long = "tls-san", env = "KUBE9_TLS_SAN", value_delimiter = ',')]
    pub tls_san: Vec<String>,

    /// The client config kube9d writes its context into at start (server, CA, an admin
    /// token). Default: `$KUBE9_CONFIG`, else `~/.kube9/config`.
    #[arg(long = "client-config", value_name = "PATH")]
    pub client_config: Option<PathBuf>,

    /// Address of the web dashboard (plain HTTP, a token login). Loopback by default: listen
    /// elsewhere only behind TLS you provide, since tokens cross it. When the default port is
    /// taken kube9d serves without a dashboard and says so; an address given here must bind.
    #[arg(long, env = "KUBE9_DASHBOARD_LISTEN", value_name = "ADDR")]
    pub dashboard_listen: Option<SocketAddr>,

    /// Serve no web dashboard.
    #[arg(long, env = "KUBE9_NO_DASHBOARD", conflicts_with = "dashboard_listen")]
    pub no_dashboard: bool,

    /// Streams (logs -f, exec, watches) one token may hold open at once.
    #[arg(long, env = "KUBE9_MAX_STREAMS_PER_CLIENT", default_value_t = 64)]
    pub max_streams_per_client: usize,

    /// Calls one connection may have in flight at once.
    #[arg(long, env = "KUBE9_MAX_CALLS_PER_CONNECTION", default_value_t = 256)]
    pub max_calls_per_connection: usize,

    /// Seconds a call may take before kube9d answers DeadlineExceeded (streams: until their
    /// first reply).
    #[arg(long, env = "KUBE9_REQUEST_TIMEOUT", default_value_t = 120)]
    pub request_timeout_secs: u64,

    /// Node runtime.
    #[arg(long, env = "KUBE9_RUNTIME", value_enum, default_value = "auto")]
    pub runtime: RuntimeChoice,

    /// Names this cluster's containers, network and processes (`<id>-<node>`). Stored on first
    /// start; later starts must match or omit it.
    #[arg(long, env = "KUBE9_CLUSTER_ID")]
    pub cluster_id: Option<String>,

    /// Make sure this many nodes (`node-1` ... `node-N`) exist at start-up.
    #[arg(long, env = "KUBE9_NODES", default_value_t = 0)]
    pub nodes: u32,

    /// CPU of the nodes created by `--nodes`, in cores.
    #[arg(long, env = "KUBE9_NODE_CPU", default_value_t = 4)]
    pub node_cpu: u32,

    /// Memory of the nodes created by `--nodes` (a quantity: `4Gi`, `512Mi`); `0` leaves
    /// memory untracked on them.
    #[arg(long, env = "KUBE9_NODE_MEMORY", default_value = "4Gi", value_parser = parse_memory)]
    pub node_memory: i64,

    /// The `kube9-node` agent binary (default: next to this executable).
    #[arg(long, env = "KUBE9_NODE_BINARY")]
    pub node_binary: Option<PathBuf>,

    /// Static busybox for the node image.
    #[arg(long, env = "KUBE9_BUSYBOX", default_value = "/bin/busybox")]
    pub busybox: PathBuf,

    /// How often agents heartbeat.
    #[arg(long, env = "KUBE9_HEARTBEAT_INTERVAL_MS", default_value_t = 1000)]
    pub heartbeat_interval_ms: u64,

    /// Missed heartbeats after which a node is failed.
    #[arg(long, env = "KUBE9_MISSED_HEARTBEATS", default_value_t = 2)]
    pub missed_heartbeats: u32,

    /// Recovery attempts before a node is permanently failed.
    #[arg(long, env = "KUBE9_MAX_RECOVERY_ATTEMPTS", default_value_t = 2)]
    pub max_recovery_attempts: u32,

    /// How long a recovery attempt waits for the node's first heartbeat.
    #[arg(long, env = "KUBE9_RECOVERY_TIMEOUT_MS", default_value_t = 2000)]
    pub recovery_timeout_ms: u64,

    /// Base backoff between recovery attempts (doubles each attempt).
    #[arg(long, env = "KUBE9_RECOVERY_BACKOFF_MS", default_value_t = 250)]
    pub recovery_backoff_ms: u64,

    /// How often the container monitor inspects node containers or processes.
    #[arg(long, env = "KUBE9_CONTAINER_CHECK_MS", default_value_t = 500)]
    pub container_check_ms: u64,

    /// Crash-loop back-off of restarted containers: first wait, doubling up to the max
    /// (Kubernetes' 10 s and 5 min). Agents get it when they register.
    #[arg(long, env = "KUBE9_CRASH_BACKOFF_MS", default_value_t = 10_000)]
    pub crash_backoff_ms: u64,
    #[arg(long, env = "KUBE9_CRASH_BACKOFF_MAX_MS", default_value_t = 300_000)]
    pub crash_backoff_max_ms: u64,

    /// How long a new node may take to send its first heartbeat.
    #[arg(long, env = "KUBE9_INIT_TIMEOUT_MS", default_value_t = 30_000)]
    pub init_timeout_ms: u64,

    /// The fence time: an agent cut off from kube9d for this long stops its pods, so the pods
    /// of a given-up node kube9d cannot remove (one whose agent joined by hand) move only this
    /// long after its last heartbeat. Longer than a kube9d restart takes. Agents get it when
    /// they register; 0 moves such pods at once (they may then run twice).
    #[arg(long, env = "KUBE9_NODE_FENCE_MS", default_value_t = 60_000)]
    pub node_fence_ms: u64,

    /// Admit pods that can take the node over: a container with `securityContext.privileged`,
    /// or a hostPath volume of the container engine's socket (or a directory holding it). Off
    /// by default: such pods are refused at apply.
    #[arg(long, env = "KUBE9_ALLOW_PRIVILEGED")]
    pub allow_privileged: bool,

    /// Let process pods run as root (`securityContext.runAsUser: 0`); sent to agents in
    /// Registered. Off by default: such a container waits with CreateContainerConfigError.
    #[arg(long, env = "KUBE9_ALLOW_ROOT_PROCESS_PODS")]
    pub allow_root_process_pods: bool,

    /// Do not replace given-up nodes. By default a node kube9d manages (made with
    /// `create node` or `--nodes`) that is given up and reaped is replaced by a fresh
    /// instance under the same name, so the cluster returns to its size.
    #[arg(long, env = "KUBE9_NO_NODE_REPLACEMENT")]
    pub no_node_replacement: bool,
}

/// What kube9d does instead of serving.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Store snapshots (take one from a running kube9d with `kube9ctl snapshot save FILE`).
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
}

#[derive(Debug, Clone, Subcommand)]
pub enum SnapshotCommand {
    /// Write a new store from a snapshot file into a data directory that holds none (offline:
    /// kube9d then starts on it with `--data-dir DIR`).
    Restore(RestoreArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// The snapshot file `kube9ctl snapshot save` wrote.
    pub file: PathBuf,

    /// The data directory to restore into; refused when it already holds a store.
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,

    /// The key the snapshot's Secrets are sealed with (the secret.key of the cluster it was
    /// taken from): every Secret must open with it. Default: `<data-dir>/secret.key` when it
    /// exists; without one the Secrets are restored unchecked, and kube9d needs that key to
    /// read them.
    #[arg(long, value_name = "FILE")]
    pub secret_key_file: Option<PathBuf>,
}

fn parse_memory(s: &str) -> Result<i64, String> {
    kube9_proto::quantity::parse_memory(s).map_err(|e| e.to_string())
}

impl Config {
    /// Memory of the nodes `--nodes` creates, in bytes.
    pub fn node_memory_bytes(&self) -> i64 {
        self.node_memory
    }

    pub fn settings(&self) -> Settings {
        Settings {
            heartbeat_interval: Duration::from_millis(self.heartbeat_interval_ms.max(50)),
            missed_heartbeats: self.missed_heartbeats.max(1),
            max_recovery_attempts: self.max_recovery_attempts,
            recovery_timeout: Duration::from_millis(self.recovery_timeout_ms),
            recovery_backoff: Duration::from_millis(self.recovery_backoff_ms),
            container_check: Duration::from_millis(self.container_check_ms.max(50)),
            init_timeout: Duration::from_millis(self.init_timeout_ms),
            delete_grace: Duration::from_secs(2),
            crash_backoff_base: Duration::from_millis(self.crash_backoff_ms.max(1)),
            crash_backoff_max: Duration::from_millis(
                self.crash_backoff_max_ms.max(self.crash_backoff_ms.max(1)),
            ),
            node_fence: Duration::from_millis(self.node_fence_ms),
            allow_privileged: self.allow_privileged,
            allow_root_process_pods: self.allow_root_process_pods,
            replace_nodes: !self.no_node_replacement,
        }
    }
}

/// Timings of the control loops, and what admission allows.
#[derive(Debug, Clone)]
pub struct Settings {
    pub heartbeat_interval: Duration,
    pub missed_heartbeats: u32,
    pub max_recovery_attempts: u32,
    pub recovery_timeout: Duration,
    pub recovery_backoff: Duration,
    pub container_check: Duration,
    pub init_timeout: Duration,
    /// Grace period between SIGTERM and SIGKILL when a pod is deleted.
    pub delete_grace: Duration,
    /// Crash-loop back-off of restarted containers, sent to agents.
    pub crash_backoff_base: Duration,
    pub crash_backoff_max: Duration,
    /// How long after its last heartbeat an unreachable agent has stopped its pods (see
    /// [`Config::node_fence_ms`]), sent to agents.
    pub node_fence: Duration,
    /// Admit privileged containers and hostPaths of the engine's socket
    /// ([`Config::allow_privileged`]).
    pub allow_privileged: bool,
    /// Process pods may run as root ([`Config::allow_root_process_pods`]), sent to agents.
    pub allow_root_process_pods: bool,
    /// Replace given-up nodes kube9d manages ([`Config::no_node_replacement`]).
    pub replace_nodes: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Config::parse_from(["kube9d"]).settings()
    }
}

impl Settings {
    /// Silence after which a heartbeating node is failed.
    pub fn heartbeat_deadline(&self) -> Duration {
        self.heartbeat_interval * self.missed_heartbeats
    }

    /// Backoff before recovery attempt `n` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.recovery_backoff * 2u32.saturating_pow(attempt.saturating_sub(1)).min(16)
    }
}
