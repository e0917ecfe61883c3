//! The container runtime interface: how the agent runs a pod's containers from their images,
//! in the spirit of Kubernetes' CRI, with the Docker engine as the first implementation.
//!
//! A pod is one *sandbox* plus its app containers. The sandbox is a tiny container running
//! `kube9-node pause` (see [`crate::pause`]) that owns the pod's network namespace and keeps
//! its volumes mounted; every app container joins that namespace, so the containers of a pod
//! reach each other on `localhost` and share one IP, the pod IP (the sandbox's address).
//! App containers keep their own PID namespaces: `kill 1` in one container ends only it.
//!
//! A pod's life through the trait:
//!
//! ```text
//! ensure_image (per container) ─┐
//! create_empty_dir (per volume) ├─> run_sandbox ─> write_files ─> create_container ─> start_container
//!                               ┘        │     (configMap, secret)     ▲   (attempt + 1 on restart)
//!                                        │                             └── wait_container / inspect ──┐
//!                                        ▼                                                            │
//!               stop_sandbox (stops its containers) ─> remove_sandbox ─> remove_volume <──────────────┘
//! ```
//!
//! Every object carries the pod's labels (see [`labels`]), so an agent that restarts finds
//! its pods' containers again with [`ContainerRuntime::list_containers`].
//!
//! # Layout
//! - this file: the [`ContainerRuntime`] trait and its [`Error`];
//! - [`types`]: configs and results (ours, not an engine's);
//! - [`labels`]: label keys and object names;
//! - [`spec`]: a `pb::Container` and `pb::Pod` into those configs, with Kubernetes' rules;
//! - [`expand`]: `$(VAR)` expansion in command, args and env;
//! - [`image`]: pull policies and image references;
//! - [`docker`]: the implementation on the Docker engine (bollard).

pub mod docker;
pub mod expand;
pub mod image;
pub mod labels;
pub mod spec;
pub mod types;

use std::time::Duration;

use async_trait::async_trait;

pub use self::docker::{DockerConfig, DockerRuntime};
pub use self::image::PullPolicy;
pub use self::types::*;

/// Boxed source error of an engine call.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a runtime call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No engine answers (socket missing, daemon down, version negotiation failed).
    #[error("failed to connect to the container engine: {0}")]
    Connect(#[source] BoxError),
    /// The image is missing and the pull policy is `Never` (Kubernetes: `ErrImageNeverPull`).
    #[error("failed to find image {image} on the node, and imagePullPolicy is Never")]
    ImageNeverPull {
        /// The image as asked for.
        image: String,
    },
    /// The engine could not pull the image (Kubernetes: `ErrImagePull`, then
    /// `ImagePullBackOff`); `message` is the engine's own.
    #[error("failed to pull image {image}: {message}")]
    ImagePull {
        /// The image as asked for.
        image: String,
        /// What the engine said.
        message: String,
    },
    /// Building a local image (the pause image) failed.
    #[error("failed to build image {image}: {message}")]
    ImageBuild {
        /// The tag being built.
        image: String,
        /// What went wrong.
        message: String,
    },
    /// The object does not exist (anymore).
    #[error("failed to find {kind} {id}")]
    NotFound {
        /// `container`, `sandbox`, `image`, …
        kind: &'static str,
        /// The id or name asked for.
        id: String,
    },
    /// A config the runtime cannot apply (an unsupported volume kind, a `subPath` with `..`).
    #[error("failed to accept {what}: {why}")]
    InvalidConfig {
        /// What was refused (`container app`, `volume data`).
        what: String,
        /// Why.
        why: String,
    },
    /// Any other engine failure.
    #[error("failed to {action}: {source}")]
    Engine {
        /// What was being done (`start container k9_app_…`).
        action: String,
        /// The engine's answer.
        source: BoxError,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs pods' containers from images. Implementations are cheap to share (`Arc<dyn …>`).
///
/// Stop and remove calls are idempotent: an object that is already stopped or gone is not an
/// error, so cleanup after a crash can simply run them all.
#[async_trait]
pub trait ContainerRuntime: Send + Sync {
    /// The engine and its version (`docker 20.10.24, API 1.41`), for logs and node status.
    async fn version(&self) -> Result<String>;

    /// Makes `image` present as `policy` says and returns what containers are created from.
    /// A pull failure is [`Error::ImagePull`] with the engine's message; a missing image under
    /// `Never` is [`Error::ImageNeverPull`].
    async fn ensure_image(&self, image: &str, policy: PullPolicy) -> Result<ImageRef>;

    /// Creates (or finds) the engine volume for one emptyDir of `pod`; returns its engine name.
    async fn create_empty_dir(&self, pod: &PodMeta, volume: &EmptyDir) -> Result<String>;

    /// Writes `files` into `volume` (an engine volume the sandbox holds, see
    /// [`PodSandboxConfig::volumes`]) through the running sandbox: directories in their paths
    /// are made (mode `0755`), each file gets its mode, and an existing file is replaced.
    /// Nothing is staged on the node's disk. A volume the sandbox does not hold is
    /// [`Error::InvalidConfig`].
    async fn write_files(
        &self,
        sandbox: &SandboxId,
        volume: &str,
        files: &[FileToWrite],
    ) -> Result<()>;

    /// Removes an engine volume; a missing one is fine. Fails while a container still uses it.
    async fn remove_volume(&self, name: &str) -> Result<()>;

    /// Our volumes carrying every label in `selector`.
    async fn list_volumes(&self, selector: &Labels) -> Result<Vec<VolumeInfo>>;

    /// Creates and starts the pod's sandbox (building the pause image first if the engine
    /// lacks it).
    async fn run_sandbox(&self, config: &PodSandboxConfig) -> Result<SandboxId>;

    /// The sandbox's state and the pod IP.
    async fn inspect_sandbox(&self, id: &SandboxId) -> Result<SandboxInfo>;

    /// Stops every app container of the sandbox (each with `grace` between SIGTERM and
    /// SIGKILL), then the sandbox.
    async fn stop_sandbox(&self, id: &SandboxId, grace: Duration) -> Result<()>;

    /// Removes every app container of the sandbox, then the sandbox (stopping what runs).
    async fn remove_sandbox(&self, id: &SandboxId) -> Result<()>;

    /// Creates an app container in `sandbox`'s namespaces, labelled with the sandbox's pod.
    async fn create_container(
        &self,
        sandbox: &SandboxId,
        config: &ContainerConfig,
    ) -> Result<ContainerId>;

    /// Starts a created container.
    async fn start_container(&self, id: &ContainerId) -> Result<()>;

    /// SIGTERM (or the image's STOPSIGNAL), then SIGKILL after `grace` (rounded up to whole
    /// seconds on Docker).
    async fn stop_container(&self, id: &ContainerId, grace: Duration) -> Result<()>;

    /// Removes a container (killing it if it runs) with its anonymous volumes.
    async fn remove_container(&self, id: &ContainerId) -> Result<()>;

    /// What the engine knows about a container.
    async fn inspect_container(&self, id: &ContainerId) -> Result<ContainerInfo>;

    /// Resolves once the container is no longer running, with its final state.
    async fn wait_container(&self, id: &ContainerId) -> Result<ContainerInfo>;

    /// Every container (sandboxes too, running or not) carrying every label in `selector`.
    async fn list_containers(&self, selector: &Labels) -> Result<Vec<ContainerInfo>>;

    /// The container's output, stdout and stderr interleaved: the last `tail` lines (all when
    /// `None`), then, with `follow`, what it writes until it exits.
    async fn container_logs(
        &self,
        id: &ContainerId,
        tail: Option<u32>,
        follow: bool,
    ) -> Result<LogStream>;

    /// Runs `command` in a running container and waits for it.
    async fn exec(&self, id: &ContainerId, command: &[String]) -> Result<ExecOutput>;

    /// Bytes used in each of `volumes` (engine volume names, from `create_empty_dir`) held by
    /// the running `sandbox`, in order: the sum of the sizes of the files in it.
    async fn volume_usage(&self, sandbox: &SandboxId, volumes: &[String]) -> Result<Vec<u64>>;
}
