//! Kube-9 node agent: dials kube9d, registers the node, heartbeats, and runs the pods bound
//! to it as real processes.
//!
//! # Layout
//! - [`config`]: command line and environment ([`Cli`], [`Config`]).
//! - [`agent`]: the stream to kube9d: register, heartbeats, command dispatch, reconnect.
//! - [`containers`]: process supervision: spawn, reaper, logs, stop.
//! - [`cri`]: the container runtime interface and its Docker implementation (pods as real
//!   containers from their images, one sandbox per pod).
//! - [`kubelet`]: Kubernetes' rules for a pod's containers (restart policy, back-off, phase).
//! - [`logging`]: the agent's own log, which a full disk or a closed stderr cannot fail.
//! - [`pause`]: the process of a pod's sandbox container (`kube9-node pause`).
//! - [`simulate`]: `--simulate N`, many agents in one process whose pods are only reported.
//! - [`standin`]: the built-in long-lived process for containers without a command.
//! - [`usage`]: `kube9-node du`, run in a pod's sandbox to measure its emptyDir volumes.
//!
//! [`run`] ties them together; `main.rs` only parses arguments, installs the signal handlers
//! (first: as PID 1 an unhandled SIGTERM is ignored), prepares the process and calls it.

pub mod agent;
pub mod config;
pub mod containers;
pub mod cri;
pub mod kubelet;
pub mod logging;
mod paths;
pub mod pause;
pub mod simulate;
pub mod standin;
pub mod usage;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;
use tracing::{debug, info};

pub use crate::agent::Exit;
pub use crate::config::{Cli, Command, Config};
use crate::containers::{Supervisor, SupervisorConfig};

/// Errors that stop the agent before it can serve.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state directory cannot be created.
    #[error("failed to create state directory {path}: {source}")]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `--pod-runtime docker` and no engine answers.
    #[error("--pod-runtime docker: {0}")]
    Engine(cri::Error),
}

/// Runs the agent until `shutdown` resolves (with the signal's name, e.g. `"SIGTERM"`) or
/// kube9d sends Terminate. Either way every pod is stopped before this returns.
pub async fn run<F>(config: Config, shutdown: F) -> Result<Exit, Error>
where
    F: Future<Output = &'static str> + Send + 'static,
{
    let pods_dir = config.state_dir.join("pods");
    std::fs::create_dir_all(&pods_dir).map_err(|source| Error::StateDir {
        path: pods_dir,
        source,
    })?;
    let engine = pod_engine(config.pod_runtime, config.log_limits).await?;
    let isolation = containers::isolation::Isolation::detect(config.pod_uid_base);
    if engine.is_none() {
        reachable_pod_dirs(&config.state_dir, &isolation)?;
    }
    let (supervisor, updates) = Supervisor::with_isolation(
        SupervisorConfig {
            state_dir: config.state_dir.clone(),
            node_name: config.name.clone(),
            standin_program: config.standin_program.clone(),
            engine,
            cluster_id: config.cluster_id.clone(),
            pod_network: config.pod_network.clone(),
            eviction_interval: config.eviction_interval,
            log_limits: config.log_limits,
        },
        isolation,
    );
    if let Err(error) = supervisor.startup().await {
        tracing::warn!(%error, "pod runtime start-up failed");
    }
    // Reap from the start: as PID 1 the agent inherits orphans even before its first pod.
    containers::reaper::Reaper::global();
    let (stop_tx, stop_rx) = watch::channel(None);
    tokio::spawn(async move {
        let reason = shutdown.await;
        let _ = stop_tx.send(Some(reason));
    });
    info!(node = %config.name, server = %config.server, state_dir = %config.state_dir.display(),
        version = env!("CARGO_PKG_VERSION"), "node agent starting");
    Ok(agent::Agent::new(config, supervisor)
        .run(updates, stop_rx)
        .await)
}

/// Process pods of their own users must reach their working directories by path (see
/// [`containers::isolation::PodDirs`]): the agent's state directory and `pods/` are made
/// searchable, not readable, by others (0711); a directory above them that is not searchable
/// is warned about (the agent leaves what is not its own alone).
fn reachable_pod_dirs(
    state_dir: &std::path::Path,
    isolation: &containers::isolation::Isolation,
) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    if !matches!(isolation.mode(), containers::isolation::Mode::PerPod { .. }) {
        return Ok(());
    }
    for dir in [state_dir.to_path_buf(), state_dir.join("pods")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))
            .map_err(|source| Error::StateDir { path: dir, source })?;
    }
    if let Some(dir) = containers::isolation::unreachable_ancestor(&state_dir.join("pods")) {
        tracing::info!(dir = %dir.display(), work_root = containers::isolation::FALLBACK_WORK_ROOT,
            "the state directory is below a directory other users cannot pass through; pods work in the fallback root");
    }
    Ok(())
}

/// The engine pods run through, per `--pod-runtime`: `None` for processes. Its containers'
/// logs are capped by `log_limits`.
async fn pod_engine(
    choice: config::PodRuntime,
    log_limits: containers::logs::LogLimits,
) -> Result<Option<Arc<dyn cri::ContainerRuntime>>, Error> {
    use config::PodRuntime;
    if choice == PodRuntime::Process {
        return Ok(None);
    }
    let docker = cri::DockerConfig {
        log_limits,
        ..Default::default()
    };
    match cri::DockerRuntime::connect(docker).await {
        Ok(docker) => {
            let version = cri::ContainerRuntime::version(&docker).await.ok();
            info!(engine = ?version, "pods run as containers from their images");
            Ok(Some(Arc::new(docker)))
        }
        Err(e) if choice == PodRuntime::Auto => {
            info!(error = %e, "no container engine answers; pods run as processes");
            Ok(None)
        }
        Err(e) => Err(Error::Engine(e)),
    }
}

/// Resolves with the signal's name on the first SIGTERM or SIGINT. Call it first thing: the
/// handlers are installed when this returns.
pub fn termination_signal() -> std::io::Result<impl Future<Output = &'static str> + Send + 'static>
{
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        }
    })
}

/// Process-level setup for the agent (not the stand-in): its own session, so kube9d's process
/// runtime can kill the agent and its pods as one unit (this fails harmlessly when already a
/// session or group leader, e.g. PID 1); and child subreaper, so orphans of pod processes are
/// reaped here rather than by init.
pub fn prepare_process() {
    if let Err(error) = nix::unistd::setsid() {
        debug!(%error, "setsid failed (already a group leader)");
    }
    if let Err(error) = nix::sys::prctl::set_child_subreaper(true) {
        debug!(%error, "failed to become a child subreaper");
    }
}
