//! What goes into a [`ContainerRuntime`](super::ContainerRuntime) and what comes out: our own
//! types, so the agent never sees an engine's, and a second runtime can implement the trait.

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;

use futures::Stream;

/// A label selector: every key must be present with exactly this value.
pub type Labels = HashMap<String, String>;

/// A stream of a container's output (stdout and stderr interleaved, as written).
pub type LogStream = Pin<Box<dyn Stream<Item = super::Result<Vec<u8>>> + Send>>;

/// The engine's id of an app container.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerId(pub String);

/// The engine's id of a pod sandbox (a container too, on Docker).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SandboxId(pub String);

macro_rules! id_impls {
    ($t:ty) => {
        impl $t {
            /// The id as the engine spells it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
id_impls!(ContainerId);
id_impls!(SandboxId);

/// The pod an engine object belongs to; its labels and names are made from this.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodMeta {
    /// Cluster id (kube9d's `--cluster-id`).
    pub cluster: String,
    /// The node running the pod.
    pub node: String,
    /// Namespace (`default` until namespaces exist).
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// The binding's uid: changes every time the pod is (re)bound.
    pub uid: String,
}

/// An image the engine has, as returned by `ensure_image`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The reference as the pod spec wrote it.
    pub name: String,
    /// The engine's image id (`sha256:…`): containers are created from this, so a tag that
    /// moves later does not change what a restart runs.
    pub id: String,
    /// Whether it was pulled just now (`false`: already present on the node).
    pub pulled: bool,
    /// The image's `USER` (`1000`, `app:staff`; empty: root), which a container runs as
    /// unless its [`Security::run_as_user`] is set.
    pub user: String,
}

impl ImageRef {
    /// Whether the image's `USER` is root: unset, `root` or uid 0 (a group after `:` does
    /// not matter). A user name other than `root` is taken for non-root, as the engine
    /// resolves it only inside the image.
    pub fn runs_as_root(&self) -> bool {
        let user = self.user.split(':').next().unwrap_or_default().trim();
        user.is_empty() || user == "root" || user.parse::<u64>() == Ok(0)
    }
}

/// A pod's sandbox: the container that holds the network namespace (and keeps the pod's
/// volumes mounted) while app containers come and go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSandboxConfig {
    /// The pod.
    pub pod: PodMeta,
    /// How many sandboxes this pod binding had before (0 for the first).
    pub attempt: u32,
    /// The pod's hostname, shared by its containers (Kubernetes: the pod name).
    pub hostname: String,
    /// Engine network to attach the sandbox to; `None`: the engine's default network.
    pub network: Option<String>,
    /// Engine volumes (from `create_empty_dir`) the sandbox keeps mounted for the pod's
    /// lifetime: a `Memory` emptyDir (and the tmpfs of a configMap or secret volume) exists
    /// only while mounted somewhere, `subPath` mounts of it need it to exist before they are
    /// made, and configMap and secret files are written into it through the sandbox.
    pub volumes: Vec<String>,
}

/// An emptyDir volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmptyDir {
    /// The volume's name in the pod spec.
    pub name: String,
    /// Where its files live.
    pub medium: Medium,
    /// `sizeLimit`: for `Memory` the tmpfs size; a `Disk` one is not bounded by the engine,
    /// so the agent measures it and evicts the pod once it passes the limit, as Kubernetes
    /// does (see [`crate::containers::eviction`]).
    pub size_limit_bytes: Option<u64>,
}

/// A file to write into a pod's volume: one key of a configMap or secret volume, resolved by
/// kube9d. Its `Debug` shows the content's length only, since it may be a secret value.
#[derive(Clone, PartialEq, Eq)]
pub struct FileToWrite {
    /// Relative path in the volume; may contain directories (`db/password`), never `..`.
    pub path: String,
    /// The file's bytes.
    pub content: Vec<u8>,
    /// Its permission bits (`0o644`, `0o400`).
    pub mode: u32,
}

impl fmt::Debug for FileToWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileToWrite")
            .field("path", &self.path)
            .field("content", &format_args!("<{} bytes>", self.content.len()))
            .field("mode", &format_args!("{:#o}", self.mode))
            .finish()
    }
}

/// emptyDir `medium`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    /// The node's disk (an engine volume).
    Disk,
    /// RAM (a tmpfs engine volume); counts against nothing yet.
    Memory,
}

/// An engine volume of ours, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    /// Engine volume name.
    pub name: String,
    /// Its labels (the pod's, and [`super::labels::VOLUME_NAME`]).
    pub labels: HashMap<String, String>,
}

/// One app container of a pod, resolved from the spec: `$(VAR)` references are already
/// expanded and volumes are resolved to engine sources (see [`super::spec`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerConfig {
    /// The container's name in the pod spec.
    pub name: String,
    /// How many times this container was created before in this pod binding.
    pub attempt: u32,
    /// What to create it from (an [`ImageRef::id`], or a name the engine has).
    pub image: String,
    /// Replaces the image's ENTRYPOINT when non-empty; the image's CMD is then dropped too.
    pub command: Vec<String>,
    /// Replaces the image's CMD when non-empty.
    pub args: Vec<String>,
    /// Added to the image's environment, in order (a later duplicate wins).
    pub env: Vec<(String, String)>,
    /// Replaces the image's WORKDIR when set.
    pub working_dir: Option<String>,
    /// CPU and memory.
    pub resources: Resources,
    /// Volume mounts.
    pub mounts: Vec<Mount>,
    /// What the container may do (its `securityContext`).
    pub security: Security,
}

/// A container's `securityContext`, as the runtime applies it. The default is the engine's
/// default: the image's user, a writable root filesystem, the engine's capabilities.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Security {
    /// `runAsUser`: the uid the process runs as (the image's `USER` when unset).
    pub run_as_user: Option<u32>,
    /// `runAsGroup`: its primary gid (the user's, or 0, when unset).
    pub run_as_group: Option<u32>,
    /// `readOnlyRootFilesystem`: the root filesystem is mounted read-only (volumes are not).
    pub read_only_root_filesystem: bool,
    /// `capabilities.add`, as Kubernetes writes them (`NET_ADMIN`, `ALL`).
    pub capabilities_add: Vec<String>,
    /// `capabilities.drop`.
    pub capabilities_drop: Vec<String>,
    /// `allowPrivilegeEscalation: false`: the process and its children can never gain
    /// privileges (`no_new_privs`: setuid binaries and file capabilities do nothing).
    pub no_new_privileges: bool,
    /// `privileged` (kube9d admits it only with `--allow-privileged`).
    pub privileged: bool,
    /// The image's `USER` ([`ImageRef::user`]), for a `runAsGroup` without `runAsUser`.
    pub image_user: String,
}

impl Security {
    /// The engine's `User` (`uid`, `uid:gid`), or `None` to keep the image's. A `runAsGroup`
    /// without `runAsUser` keeps the image's user ([`Self::image_user`]; root when the image
    /// has none) with that group.
    pub fn user(&self) -> Option<String> {
        match (self.run_as_user, self.run_as_group) {
            (Some(uid), Some(gid)) => Some(format!("{uid}:{gid}")),
            (Some(uid), None) => Some(uid.to_string()),
            (None, Some(gid)) => {
                let user = self.image_user.split(':').next().unwrap_or_default().trim();
                let user = if user.is_empty() { "0" } else { user };
                Some(format!("{user}:{gid}"))
            }
            (None, None) => None,
        }
    }
}

/// CPU and memory of one container; `None` means not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resources {
    /// CPU request in millicores: the container's share of a contended CPU.
    pub cpu_request_millis: Option<u64>,
    /// CPU limit in millicores: a CFS quota (100 ms period).
    pub cpu_limit_millis: Option<u64>,
    /// Memory limit in bytes: the container is OOM-killed above it (no swap).
    pub memory_limit_bytes: Option<u64>,
}

/// A volume mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it appears in the container.
    pub container_path: String,
    /// What is mounted.
    pub source: MountSource,
    /// Mounted read-only.
    pub read_only: bool,
    /// A relative path inside the source to mount instead of its root (created when
    /// missing); never absolute and never containing `..`.
    pub sub_path: Option<String>,
}

/// The source of a [`Mount`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// An engine volume (an emptyDir, or the tmpfs of a configMap or secret volume), by
    /// engine name.
    Volume(String),
    /// A path on the engine's host (hostPath); created as a directory when missing.
    HostPath(String),
}

/// A container's state, as the CRI names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    /// Created, never started.
    Created,
    /// Running (or paused, or being restarted by the engine).
    Running,
    /// Its process ended.
    Exited,
    /// Anything else the engine reports (being removed, …).
    Unknown,
}

/// What the engine knows about a container (a sandbox or an app container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Engine id.
    pub id: ContainerId,
    /// Engine name (see [`super::labels`]).
    pub name: String,
    /// The image it was created from, as given at creation.
    pub image: String,
    /// Created, running, exited.
    pub state: ContainerState,
    /// Set once it exited.
    pub exit_code: Option<i32>,
    /// The kernel killed it for going over its memory limit.
    pub oom_killed: bool,
    /// Why the engine could not start it (`exec: "x": executable file not found`), if so.
    pub error: Option<String>,
    /// Host pid of its process while it runs.
    pub pid: Option<u32>,
    /// Unix milliseconds of the last start.
    pub started_ms: Option<i64>,
    /// Unix milliseconds of the last exit.
    pub finished_ms: Option<i64>,
    /// Its labels (the pod's, the container's name and attempt, sandbox markers).
    pub labels: HashMap<String, String>,
}

/// A sandbox, inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxInfo {
    /// The sandbox container.
    pub container: ContainerInfo,
    /// The pod IP: the sandbox's address on its network (`None` while it is not running).
    pub ip: Option<String>,
}

/// What an exec printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecOutput {
    /// Its standard output.
    pub stdout: Vec<u8>,
    /// Its standard error.
    pub stderr: Vec<u8>,
    /// Its exit code (126/127 when the command could not be run).
    pub exit_code: i32,
}
