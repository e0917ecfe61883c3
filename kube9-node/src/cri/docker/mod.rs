//! [`ContainerRuntime`] on the Docker engine, through bollard.
//!
//! The engine may be the node's own (a host agent) or the one beside it (a node container
//! with the engine socket mounted, like Nomad's docker driver): either way pod containers are
//! siblings, created by this agent and labelled with its cluster, node and pod (see
//! [`labels`]). The runtime acts only on containers that carry those labels.
//!
//! - [`image`]: pull policies, in-memory builds, the pause image;
//! - `archive`: in-memory tar archives of the files written into configMap and secret volumes;
//! - `create`: our configs into create bodies (ENTRYPOINT/CMD, resources, mounts);
//! - `inspect`: inspect answers into [`ContainerInfo`];
//! - `io`: logs and exec;
//! - `errors`: engine errors into [`Error`].

mod archive;
mod create;
mod errors;
pub mod image;
mod inspect;
mod io;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bollard::models::{ContainerInspectResponse, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptions,
    StartContainerOptions, StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use bollard::{body_full, Docker};
use futures::StreamExt;
use tracing::{debug, info};

use self::errors::{engine, is_not_found, on, status_of};
use crate::containers::logs::LogLimits;
use crate::cri::types::{
    ContainerConfig, ContainerId, ContainerInfo, EmptyDir, ExecOutput, FileToWrite, ImageRef,
    Labels, LogStream, Medium, MountSource, PodMeta, PodSandboxConfig, SandboxId, SandboxInfo,
    VolumeInfo,
};
use crate::cri::{labels, ContainerRuntime, Error, PullPolicy, Result};

/// What the Docker runtime needs besides the engine.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// Tag of the sandbox image, built when missing (default `kube9/pause:<version>`).
    pub pause_image: String,
    /// The static `kube9-node` binary the pause image is built from (default: this process's
    /// own executable).
    pub pause_program: PathBuf,
    /// The `max-size` and `max-file` of every container's json-file log (the agent's
    /// `--container-log-max-size` and `--container-log-max-files`).
    pub log_limits: LogLimits,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            pause_image: format!("kube9/pause:{}", env!("CARGO_PKG_VERSION")),
            pause_program: PathBuf::from("/proc/self/exe"),
            log_limits: LogLimits::default(),
        }
    }
}

/// Runs pods as Docker containers; cheap to clone (the client is a shared connection pool).
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    config: DockerConfig,
    /// Containers this runtime was asked to stop, until they are removed: their SIGKILL is
    /// ours, not the kernel's OOM killer.
    stopping: std::sync::Arc<parking_lot::Mutex<HashSet<String>>>,
}

impl DockerRuntime {
    /// Connects to the engine (`DOCKER_HOST` or the local socket) and negotiates the API
    /// version (bollard's default is newer than some engines).
    pub async fn connect(config: DockerConfig) -> Result<Self> {
        let docker = Docker::connect_with_defaults()
            .map_err(|e| Error::Connect(Box::new(e)))?
            .negotiate_version()
            .await
            .map_err(|e| Error::Connect(Box::new(e)))?;
        Ok(DockerRuntime {
            docker,
            config,
            stopping: Default::default(),
        })
    }

    /// The engine client, for what the trait does not cover (tests, image builds).
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Inspects a container that must carry the pod labels; anything else is not found.
    async fn inspect_ours(&self, kind: &'static str, id: &str) -> Result<ContainerInspectResponse> {
        let options = None::<InspectContainerOptions>;
        let found = (self.docker.inspect_container(id, options).await).map_err(on(
            kind,
            id,
            format!("inspect {kind} {id}"),
        ))?;
        let labels = found.config.as_ref().and_then(|c| c.labels.as_ref());
        if labels.and_then(labels::pod_of).is_none() {
            return Err(Error::NotFound {
                kind,
                id: id.to_string(),
            });
        }
        Ok(found)
    }

    /// The app containers of a sandbox.
    async fn sandbox_members(&self, sandbox: &SandboxId) -> Result<Vec<ContainerInfo>> {
        let selector = Labels::from([(labels::SANDBOX_ID.to_string(), sandbox.to_string())]);
        self.list_containers(&selector).await
    }

    /// The host directories of the volumes `config` mounts with a `subPath`.
    async fn sub_path_mountpoints(
        &self,
        config: &ContainerConfig,
    ) -> Result<HashMap<String, String>> {
        let mut mountpoints = HashMap::new();
        for m in &config.mounts {
            if let (MountSource::Volume(volume), Some(_)) = (&m.source, &m.sub_path) {
                let found = (self.docker.inspect_volume(volume).await).map_err(on(
                    "volume",
                    volume,
                    format!("inspect volume {volume}"),
                ))?;
                mountpoints.insert(volume.clone(), found.mountpoint);
            }
        }
        Ok(mountpoints)
    }
}

/// `label=k=v` filters for every pair of `selector`.
fn label_filters(selector: &Labels) -> HashMap<&'static str, Vec<String>> {
    let labels = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
    HashMap::from([("label", labels)])
}

/// Docker's stop timeout: whole seconds, rounded up.
fn grace_seconds(grace: Duration) -> i32 {
    let seconds = grace.as_millis().div_ceil(1000);
    i32::try_from(seconds).unwrap_or(i32::MAX)
}

#[async_trait]
impl ContainerRuntime for DockerRuntime {
    async fn version(&self) -> Result<String> {
        let version = (self.docker.version().await).map_err(engine("read the engine version"))?;
        Ok(format!(
            "docker {}, API {}",
            version.version.unwrap_or_default(),
            version.api_version.unwrap_or_default()
        ))
    }

    async fn ensure_image(&self, image: &str, policy: PullPolicy) -> Result<ImageRef> {
        image::ensure(&self.docker, image, policy).await
    }

    async fn create_empty_dir(&self, pod: &PodMeta, volume: &EmptyDir) -> Result<String> {
        let name = labels::volume_name(pod, &volume.name);
        let mut volume_labels = labels::pod_labels(pod);
        volume_labels.insert(labels::VOLUME_NAME.to_string(), volume.name.clone());
        let driver_opts = match volume.medium {
            Medium::Disk => None,
            Medium::Memory => {
                let mut options = "mode=1777".to_string();
                if let Some(size) = volume.size_limit_bytes {
                    options.push_str(&format!(",size={size}"));
                }
                Some(HashMap::from([
                    ("type".to_string(), "tmpfs".to_string()),
                    ("device".to_string(), "tmpfs".to_string()),
                    ("o".to_string(), options),
                ]))
            }
        };
        let request = VolumeCreateRequest {
            name: Some(name.clone()),
            driver: Some("local".to_string()),
            driver_opts,
            labels: Some(volume_labels),
            ..Default::default()
        };
        // Creating an existing volume returns it: a retry after a crash is fine.
        (self.docker.create_volume(request).await)
            .map_err(engine(format!("create volume {name}")))?;
        debug!(volume = %name, "created volume");
        Ok(name)
    }

    async fn write_files(
        &self,
        sandbox: &SandboxId,
        volume: &str,
        files: &[FileToWrite],
    ) -> Result<()> {
        let refused = |why: String| Error::InvalidConfig {
            what: format!("volume {volume}"),
            why,
        };
        // Only into a volume the sandbox mounts: the same path in the sandbox's own
        // filesystem would put the files on the node's disk.
        let dir = format!("{}/{volume}", create::SANDBOX_VOLUMES_DIR);
        let found = self.inspect_ours("sandbox", sandbox.as_str()).await?;
        let mounted = (found.mounts.iter().flatten()).any(|m| {
            m.name.as_deref() == Some(volume) && m.destination.as_deref() == Some(dir.as_str())
        });
        if !mounted {
            return Err(refused(format!("sandbox {sandbox} does not hold it")));
        }
        let tar = archive::files_tar(files).map_err(refused)?;
        let options = UploadToContainerOptionsBuilder::new().path(&dir).build();
        (self.docker)
            .upload_to_container(sandbox.as_str(), Some(options), body_full(tar.into()))
            .await
            .map_err(on(
                "sandbox",
                sandbox.as_str(),
                format!("write {} files into volume {volume}", files.len()),
            ))?;
        debug!(volume, files = files.len(), "wrote files into volume");
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        match self
            .docker
            .remove_volume(name, None::<RemoveVolumeOptions>)
            .await
        {
            Err(e) if !is_not_found(&e) => Err(engine(format!("remove volume {name}"))(e)),
            _ => Ok(()),
        }
    }

    async fn list_volumes(&self, selector: &Labels) -> Result<Vec<VolumeInfo>> {
        let options = ListVolumesOptionsBuilder::new()
            .filters(&label_filters(selector))
            .build();
        let listed =
            (self.docker.list_volumes(Some(options)).await).map_err(engine("list volumes"))?;
        Ok(listed
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| VolumeInfo {
                name: v.name,
                labels: v.labels,
            })
            .collect())
    }

    async fn run_sandbox(&self, config: &PodSandboxConfig) -> Result<SandboxId> {
        let image = &self.config.pause_image;
        image::ensure_pause(&self.docker, image, &self.config.pause_program).await?;
        let name = labels::sandbox_name(&config.pod, config.attempt);
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let body = create::sandbox_body(config, image, self.config.log_limits);
        let created = (self.docker.create_container(Some(options), body).await)
            .map_err(engine(format!("create sandbox {name}")))?;
        let id = SandboxId(created.id);
        if let Err(e) = (self.docker)
            .start_container(id.as_str(), None::<StartContainerOptions>)
            .await
        {
            // A sandbox that never ran is useless: do not leave it behind.
            let _ = self.remove_sandbox(&id).await;
            return Err(engine(format!("start sandbox {name}"))(e));
        }
        info!(pod = %config.pod.name, sandbox = %name, "sandbox running");
        Ok(id)
    }

    async fn inspect_sandbox(&self, id: &SandboxId) -> Result<SandboxInfo> {
        let found = self.inspect_ours("sandbox", id.as_str()).await?;
        let container = inspect::container_info(&found);
        if !container.is_sandbox() {
            return Err(Error::NotFound {
                kind: "sandbox",
                id: id.to_string(),
            });
        }
        let network = (found.host_config.as_ref())
            .and_then(|h| h.network_mode.as_deref())
            .filter(|mode| !matches!(*mode, "" | "default"));
        Ok(SandboxInfo {
            ip: inspect::ip_address(&found, network),
            container,
        })
    }

    async fn stop_sandbox(&self, id: &SandboxId, grace: Duration) -> Result<()> {
        let members = self.sandbox_members(id).await?;
        let stops = members.iter().map(|c| self.stop_container(&c.id, grace));
        for result in futures::future::join_all(stops).await {
            result?;
        }
        self.stop_container(&ContainerId(id.to_string()), grace)
            .await
    }

    async fn remove_sandbox(&self, id: &SandboxId) -> Result<()> {
        for member in self.sandbox_members(id).await? {
            self.remove_container(&member.id).await?;
        }
        self.remove_container(&ContainerId(id.to_string())).await
    }

    async fn create_container(
        &self,
        sandbox: &SandboxId,
        config: &ContainerConfig,
    ) -> Result<ContainerId> {
        let found = self.inspect_ours("sandbox", sandbox.as_str()).await?;
        let pod = (found.config.as_ref())
            .and_then(|c| c.labels.as_ref())
            .and_then(labels::pod_of)
            .expect("inspect_ours checked the pod labels");
        let name = labels::container_name(&pod, &config.name, config.attempt);
        let mountpoints = self.sub_path_mountpoints(config).await?;
        let limits = self.config.log_limits;
        let body = create::container_body(config, &pod, sandbox, &mountpoints, limits);
        let body = body.map_err(|why| Error::InvalidConfig {
            what: format!("container {}", config.name),
            why,
        })?;
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = (self.docker.create_container(Some(options), body).await).map_err(on(
            "image",
            &config.image,
            format!("create container {name}"),
        ))?;
        debug!(pod = %pod.name, container = %name, "created container");
        Ok(ContainerId(created.id))
    }

    async fn start_container(&self, id: &ContainerId) -> Result<()> {
        (self.docker)
            .start_container(id.as_str(), None::<StartContainerOptions>)
            .await
            .map_err(on(
                "container",
                id.as_str(),
                format!("start container {id}"),
            ))
    }

    async fn stop_container(&self, id: &ContainerId, grace: Duration) -> Result<()> {
        self.stopping.lock().insert(id.as_str().to_string());
        let options = StopContainerOptionsBuilder::new()
            .t(grace_seconds(grace))
            .build();
        match self.docker.stop_container(id.as_str(), Some(options)).await {
            // 304: already stopped; 404: already gone. Stopping is idempotent.
            Err(e) if !matches!(status_of(&e), Some(304 | 404)) => {
                Err(engine(format!("stop container {id}"))(e))
            }
            _ => Ok(()),
        }
    }

    async fn remove_container(&self, id: &ContainerId) -> Result<()> {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        self.stopping.lock().remove(id.as_str());
        match self
            .docker
            .remove_container(id.as_str(), Some(options))
            .await
        {
            Err(e) if !is_not_found(&e) => Err(engine(format!("remove container {id}"))(e)),
            _ => Ok(()),
        }
    }

    async fn inspect_container(&self, id: &ContainerId) -> Result<ContainerInfo> {
        let found = self.inspect_ours("container", id.as_str()).await?;
        Ok(inspect::container_info(&found))
    }

    async fn wait_container(&self, id: &ContainerId) -> Result<ContainerInfo> {
        let options = WaitContainerOptionsBuilder::new()
            .condition("not-running")
            .build();
        let mut waiting = self.docker.wait_container(id.as_str(), Some(options));
        match waiting.next().await {
            // bollard reports a non-zero exit as an error; it is an exit all the same.
            Some(Ok(_)) | None => {}
            Some(Err(bollard::errors::Error::DockerContainerWaitError { .. })) => {}
            Some(Err(e)) => {
                return Err(on(
                    "container",
                    id.as_str(),
                    format!("wait for container {id}"),
                )(e))
            }
        }
        let found = self.inspect_ours("container", id.as_str()).await?;
        let mut info = inspect::container_info(&found);
        // The engine learns of an OOM kill from a kernel notification it can lose when
        // containers start and die together (1 in 5 with six at once, on cgroup v1 with
        // Docker 20.10). A SIGKILL under a memory limit that this runtime did not send is
        // the OOM killer's in all but the rarest case (`docker kill` by hand), and saying
        // OOMKilled there is what tells the user to raise the limit.
        if inspect::may_be_unreported_oom_kill(&found)
            && !self.stopping.lock().contains(id.as_str())
        {
            debug!(container = %id, "SIGKILL under a memory limit, not ours: OOMKilled");
            info.oom_killed = true;
        }
        Ok(info)
    }

    async fn list_containers(&self, selector: &Labels) -> Result<Vec<ContainerInfo>> {
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&label_filters(selector))
            .build();
        let listed = (self.docker.list_containers(Some(options)).await)
            .map_err(engine("list containers"))?;
        let mut found = Vec::with_capacity(listed.len());
        for summary in listed {
            let Some(id) = summary.id else { continue };
            match self.inspect_ours("container", &id).await {
                Ok(c) => found.push(inspect::container_info(&c)),
                // Removed between the list and the inspect, or not one of ours.
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }

    async fn container_logs(
        &self,
        id: &ContainerId,
        tail: Option<u32>,
        follow: bool,
    ) -> Result<LogStream> {
        self.inspect_ours("container", id.as_str()).await?;
        Ok(io::logs(&self.docker, id, tail, follow))
    }

    async fn exec(&self, id: &ContainerId, command: &[String]) -> Result<ExecOutput> {
        self.inspect_ours("container", id.as_str()).await?;
        io::exec(&self.docker, id, command).await
    }

    /// `/pause du /volumes/<volume>...` in the sandbox, which mounts every volume of its pod
    /// there (see [`crate::usage`]).
    async fn volume_usage(&self, sandbox: &SandboxId, volumes: &[String]) -> Result<Vec<u64>> {
        if volumes.is_empty() {
            return Ok(Vec::new());
        }
        let paths: Vec<String> = volumes
            .iter()
            .map(|v| format!("{}/{v}", create::SANDBOX_VOLUMES_DIR))
            .collect();
        let mut command = vec![
            image::PAUSE_PROGRAM.to_string(),
            crate::usage::SUBCOMMAND.to_string(),
        ];
        command.extend(paths.iter().cloned());
        let id = ContainerId(sandbox.0.clone());
        self.inspect_ours("sandbox", id.as_str()).await?;
        let out = io::exec(&self.docker, &id, &command).await?;
        let failed = |why: String| Error::Engine {
            action: format!("measure the volumes of sandbox {sandbox}"),
            source: why.into(),
        };
        if out.exit_code != 0 {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(failed(format!(
                "{command:?} exited {}: {}",
                out.exit_code,
                stderr.trim()
            )));
        }
        crate::usage::parse(&String::from_utf8_lossy(&out.stdout), &paths).map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_is_rounded_up_to_whole_seconds() {
        assert_eq!(grace_seconds(Duration::ZERO), 0);
        assert_eq!(grace_seconds(Duration::from_millis(1)), 1);
        assert_eq!(grace_seconds(Duration::from_millis(2000)), 2);
        assert_eq!(grace_seconds(Duration::from_millis(2001)), 3);
    }

    #[test]
    fn the_default_pause_image_carries_the_version() {
        let config = DockerConfig::default();
        assert_eq!(
            config.pause_image,
            format!("kube9/pause:{}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(config.pause_program, PathBuf::from("/proc/self/exe"));
    }
}
