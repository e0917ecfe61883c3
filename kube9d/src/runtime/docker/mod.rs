//! Node agents in Docker containers, one per node, on a user-defined bridge network per cluster
//! (`<cluster>-net`). Talks to the engine through bollard only.
//!
//! Every container and the network carry [`LABEL_CLUSTER`] (and containers [`LABEL_NODE`]);
//! this runtime never acts on a container without its cluster's label. Containers have no
//! restart policy: kube9d decides about recovery. The agent dials kube9d back through the
//! network's gateway, so kube9d listens on 0.0.0.0 when it runs nodes in Docker.
//!
//! This module holds [`DockerRuntime`] and what it does with containers. The rest has a home
//! of its own, and none of it depends on this module:
//! - `config`: [`DockerConfig`], its defaults, names and labels;
//! - `network`: the cluster network (with its user-configured subnet) and partitions;
//! - [`image`]: the node image, built by kube9d itself;
//! - `errors`: what an engine error means (missing, not running, subnet taken, …).
//!
//! [`LABEL_CLUSTER`]: crate::runtime::LABEL_CLUSTER
//! [`LABEL_NODE`]: crate::runtime::LABEL_NODE

mod config;
mod errors;
pub mod image;
mod network;

pub use config::{default_image_tag, DockerConfig};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, ContainerSummary,
    ContainerSummaryStateEnum, EndpointSettings, HostConfig, NetworkingConfig, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, KillContainerOptions,
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
    StopContainerOptionsBuilder,
};
use bollard::Docker;
use kube9_proto::pb::RuntimeHandle;
use tracing::{debug, info, warn};

use self::errors::{is_not_found, is_not_running, looks_like_capability_refusal, status_of};
use self::image::ensure_image;
use self::network::{container_name, ClusterNetwork};
use super::{Error, NodeLaunch, NodeRuntime, Observed, OwnedInstance, Result};
use super::{RuntimeKind, LABEL_NODE, LABEL_POD_UID};

/// How a node's agent reaches the engine its pods run on: the engine's socket mounted at the
/// default path (the agent is then as powerful as root on this host, like a kubelet; no pod
/// ever gets the socket), or, for an engine kube9d reaches over TCP, the same DOCKER_HOST.
fn engine_access() -> (Vec<String>, Vec<String>) {
    const SOCKET: &str = "/var/run/docker.sock";
    match std::env::var("DOCKER_HOST") {
        Ok(host) if host.starts_with("unix://") => {
            let path = host.trim_start_matches("unix://");
            (vec![format!("{path}:{SOCKET}")], vec![])
        }
        Ok(host) if !host.is_empty() => (vec![], vec![format!("DOCKER_HOST={host}")]),
        _ => (vec![format!("{SOCKET}:{SOCKET}")], vec![]),
    }
}

/// Where the agent keeps its state inside the container.
const STATE_DIR: &str = "/var/lib/kube9-node";

/// Whether a Docker engine answers a ping within two seconds (for `--runtime auto`).
pub async fn docker_available() -> bool {
    let Ok(docker) = Docker::connect_with_defaults() else {
        return false;
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), docker.ping()).await,
        Ok(Ok(_))
    )
}

/// Runs node agents as Docker containers. See the module docs.
pub struct DockerRuntime {
    docker: Docker,
    config: DockerConfig,
    /// The cluster network: its gateway, creation, and partitioned containers.
    network: ClusterNetwork,
    /// Set once the engine refused `cap_add: SYS_ADMIN`; later containers go without it.
    cap_add_refused: AtomicBool,
}

impl DockerRuntime {
    /// Connects to the engine (`DOCKER_HOST` or the local socket) and negotiates the API
    /// version (bollard's default is newer than some engines).
    pub async fn connect(config: DockerConfig) -> Result<Self> {
        let docker = Docker::connect_with_defaults()?.negotiate_version().await?;
        Ok(Self {
            network: ClusterNetwork::new(docker.clone(), config.clone()),
            docker,
            config,
            cap_add_refused: AtomicBool::new(false),
        })
    }

    pub fn config(&self) -> &DockerConfig {
        &self.config
    }

    /// The engine client, for callers that need more than the trait offers.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// `<cluster>-net`.
    pub fn network_name(&self) -> String {
        self.config.network_name()
    }

    /// `<cluster>-<node>`.
    pub fn container_name(&self, node: &str) -> String {
        self.config.container_name(node)
    }

    /// The cluster network's gateway IP, known after [`NodeRuntime::prepare`] or a launch.
    pub fn gateway(&self) -> Option<String> {
        self.network.gateway()
    }

    /// Waits (up to 5 s) until a killed container is no longer running.
    async fn wait_stopped(&self, id: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            match self.docker.inspect_container(id, None).await {
                Ok(c) if observed(&c) == Observed::Running => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                _ => return,
            }
        }
    }

    /// Force-removes every container labelled with this cluster, then the cluster network (and
    /// any subnet probe network a crash left behind).
    pub async fn remove_cluster(&self) -> Result<()> {
        for container in self.list_labelled().await?.into_iter().filter_map(|c| c.id) {
            let options = RemoveContainerOptionsBuilder::new()
                .force(true)
                .v(true)
                .build();
            match self
                .docker
                .remove_container(&container, Some(options))
                .await
            {
                Err(e) if !is_not_found(&e) => return Err(e.into()),
                _ => debug!(container = %container, "removed container"),
            }
        }
        self.remove_volumes(&[self.config.label_filter().as_str()])
            .await?;
        self.network.remove().await
    }

    /// The node a handle of this cluster names (its container is `<cluster>-<node>`).
    fn node_of(&self, handle: &RuntimeHandle) -> Option<String> {
        let prefix = format!("{}-", self.config.cluster_id);
        (handle.container_name.strip_prefix(&prefix))
            .filter(|n| !n.is_empty())
            .map(str::to_string)
    }

    /// Removes the containers and volumes the agent of `node` made for its pods: a node that
    /// is gone takes its pods with it, so they never run twice once they move.
    async fn remove_pods_of(&self, node: &str) -> Result<()> {
        let node_label = format!("{LABEL_NODE}={node}");
        let cluster_label = self.config.label_filter();
        let filters = HashMap::from([(
            "label",
            vec![cluster_label.as_str(), node_label.as_str(), LABEL_POD_UID],
        )]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let pods = self.docker.list_containers(Some(options)).await?;
        for id in pods.into_iter().filter_map(|c| c.id) {
            self.force_remove(&id).await?;
        }
        self.remove_volumes(&[cluster_label.as_str(), node_label.as_str()])
            .await
    }

    /// Removes the volumes (pods' emptyDirs) carrying every label in `labels`.
    async fn remove_volumes(&self, labels: &[&str]) -> Result<()> {
        let filters = HashMap::from([("label", labels.to_vec())]);
        let options = bollard::query_parameters::ListVolumesOptionsBuilder::new()
            .filters(&filters)
            .build();
        let volumes = self.docker.list_volumes(Some(options)).await?;
        for v in volumes.volumes.unwrap_or_default() {
            match self
                .docker
                .remove_volume(
                    &v.name,
                    None::<bollard::query_parameters::RemoveVolumeOptions>,
                )
                .await
            {
                Err(e) if !is_not_found(&e) => return Err(e.into()),
                _ => debug!(volume = %v.name, "removed volume"),
            }
        }
        Ok(())
    }

    /// All containers (running or not) labelled with this cluster.
    async fn list_labelled(&self) -> Result<Vec<ContainerSummary>> {
        let label = self.config.label_filter();
        let filters = HashMap::from([("label", vec![label.as_str()])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        Ok(self.docker.list_containers(Some(options)).await?)
    }

    /// Inspects a container; `None` if it does not exist, an error if it is not ours.
    async fn inspect_owned(&self, target: &str) -> Result<Option<ContainerInspectResponse>> {
        let options = None::<InspectContainerOptions>;
        let container = match self.docker.inspect_container(target, options).await {
            Ok(c) => c,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let labels = container.config.as_ref().and_then(|c| c.labels.as_ref());
        if !self.config.is_ours(labels) {
            return Err(Error::Other(format!(
                "container {target} does not belong to cluster {}; not touching it",
                self.config.cluster_id
            )));
        }
        Ok(Some(container))
    }

    /// Like [`Self::inspect_owned`], but a missing container is [`Error::NotFound`].
    async fn existing(&self, handle: &RuntimeHandle) -> Result<ContainerInspectResponse> {
        (self.inspect_owned(target(handle)).await?)
            .ok_or_else(|| Error::NotFound(handle.container_name.clone()))
    }

    fn handle_of(&self, container: &ContainerInspectResponse) -> RuntimeHandle {
        let ip = self.network.ip_of(container).unwrap_or_default();
        RuntimeHandle {
            kind: RuntimeKind::Docker.as_str().into(),
            id: container.id.clone().unwrap_or_default(),
            ip,
            state: observed(container).label(),
            container_name: container_name(container),
        }
    }

    async fn refreshed_handle(&self, id: &str) -> Result<RuntimeHandle> {
        let container =
            (self.inspect_owned(id).await?).ok_or_else(|| Error::NotFound(id.to_string()))?;
        Ok(self.handle_of(&container))
    }

    /// Removes a leftover container of the same name (ours only).
    async fn remove_stale(&self, name: &str) -> Result<()> {
        if let Some(stale) = self.inspect_owned(name).await? {
            info!(container = %name, "removing a stale node container");
            let id = stale.id.unwrap_or_else(|| name.to_string());
            self.force_remove(&id).await?;
        }
        Ok(())
    }

    async fn force_remove(&self, id: &str) -> Result<()> {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(options)).await {
            Err(e) if !is_not_found(&e) => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn create_and_start(&self, spec: &NodeLaunch, gateway: &str) -> Result<String> {
        let name = self.container_name(&spec.name);
        let with_caps = !self.cap_add_refused.load(Ordering::Relaxed);
        match self
            .try_create_and_start(spec, &name, gateway, with_caps)
            .await
        {
            Err(Error::Docker(e)) if with_caps && looks_like_capability_refusal(&e) => {
                warn!(node = %spec.name, error = %e,
                    "the engine refused CAP_SYS_ADMIN; starting node containers without it \
                     (pod volumes will not work)");
                self.force_remove(&name).await?;
                let id = self
                    .try_create_and_start(spec, &name, gateway, false)
                    .await?;
                self.cap_add_refused.store(true, Ordering::Relaxed);
                Ok(id)
            }
            other => other,
        }
    }

    async fn try_create_and_start(
        &self,
        spec: &NodeLaunch,
        name: &str,
        gateway: &str,
        with_caps: bool,
    ) -> Result<String> {
        let net = self.network_name();
        let auth = &self.config.auth;
        let mut env = vec![
            format!(
                "KUBE9_SERVER={}",
                auth.server_url(gateway, spec.server_port)
            ),
            format!("KUBE9_NODE_NAME={}", spec.name),
            format!("KUBE9_CPU_MILLIS={}", spec.cpu_millis),
            format!("KUBE9_CLUSTER_ID={}", spec.cluster_id),
            format!("KUBE9_HEARTBEAT_MS={}", spec.heartbeat_interval_ms),
            format!("KUBE9_INSTANCE_ID={}", spec.instance_id),
            format!("KUBE9_STATE_DIR={STATE_DIR}"),
            // Pods run beside the node through the engine (the way dockershim did), on the
            // cluster's network, where the agent can probe them.
            "KUBE9_POD_RUNTIME=docker".to_string(),
            format!("KUBE9_POD_NETWORK={net}"),
            // The token is in the container's environment, readable only through the engine,
            // which is root-equivalent anyway (SECURITY.md).
            format!("KUBE9_TOKEN={}", auth.token),
        ];
        if auth.tls() {
            env.push(format!("KUBE9_CA_CERT_HASH={}", auth.ca_hash));
        } else {
            env.push("KUBE9_INSECURE=true".to_string());
        }
        let (binds, engine_env) = engine_access();
        env.extend(engine_env);
        let endpoint = EndpointSettings {
            aliases: Some(vec![spec.name.clone()]),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(self.config.image_tag.clone()),
            hostname: Some(spec.name.clone()),
            env: Some(env),
            labels: Some(self.config.labels(Some(&spec.name))),
            entrypoint: self.config.entrypoint_override.clone(),
            stop_signal: Some("SIGTERM".into()),
            host_config: Some(HostConfig {
                network_mode: Some(net.clone()),
                cap_add: with_caps.then(|| vec!["SYS_ADMIN".to_string()]),
                binds: Some(binds),
                restart_policy: self.config.restart_with_engine.then_some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(net, endpoint)])),
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        let created = self.docker.create_container(Some(options), body).await?;
        debug!(node = %spec.name, id = %created.id, "created node container");
        self.docker
            .start_container(&created.id, None::<StartContainerOptions>)
            .await?;
        Ok(created.id)
    }
}

#[async_trait]
impl NodeRuntime for DockerRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Docker
    }

    fn server_addresses(&self) -> Vec<String> {
        self.gateway().into_iter().collect()
    }

    async fn prepare(&self) -> Result<()> {
        ensure_image(&self.docker, &self.config).await?;
        let gateway = self.network.ensure().await?;
        info!(network = %self.network_name(), gateway = %gateway, "docker runtime ready");
        Ok(())
    }

    async fn launch(&self, spec: &NodeLaunch) -> Result<RuntimeHandle> {
        let gateway = self.network.ensure().await?;
        self.remove_stale(&self.container_name(&spec.name)).await?;
        let id = self.create_and_start(spec, &gateway).await?;
        let handle = self.refreshed_handle(&id).await?;
        info!(node = %spec.name, container = %handle.container_name, ip = %handle.ip,
            "started node container");
        Ok(handle)
    }

    async fn inspect(&self, handle: &RuntimeHandle) -> Result<Observed> {
        Ok(match self.inspect_owned(target(handle)).await? {
            Some(container) => observed(&container),
            None => Observed::Missing,
        })
    }

    async fn restart(&self, handle: &RuntimeHandle, spec: &NodeLaunch) -> Result<RuntimeHandle> {
        // A removed container is a node that cannot come back: recovery fails and the node is
        // permanently failed, rather than silently replaced.
        let Some(container) = self.inspect_owned(target(handle)).await? else {
            return Err(Error::NotFound(spec.name.clone()));
        };
        let id = container
            .id
            .clone()
            .unwrap_or_else(|| target(handle).to_string());
        if observed(&container) == Observed::Running {
            // SIGKILL, not `docker restart`: on SIGTERM the agent would deregister, and a node
            // being recovered must not be given up for good.
            match self
                .docker
                .kill_container(&id, None::<KillContainerOptions>)
                .await
            {
                Err(e) if !is_not_found(&e) && !is_not_running(&e) => return Err(e.into()),
                _ => {}
            }
            self.wait_stopped(&id).await;
        }
        let options = None::<StartContainerOptions>;
        self.docker.start_container(&id, options).await?;
        info!(node = %spec.name, "restarted node container");
        self.refreshed_handle(&id).await
    }

    async fn stop(&self, handle: &RuntimeHandle, grace: Duration) -> Result<()> {
        let Some(container) = self.inspect_owned(target(handle)).await? else {
            return Ok(());
        };
        let id = container.id.unwrap_or_default();
        let secs = i32::try_from(grace.as_secs_f64().ceil() as i64).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::new().t(secs).build();
        match self.docker.stop_container(&id, Some(options)).await {
            Err(e) if !is_not_found(&e) => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn kill(&self, handle: &RuntimeHandle) -> Result<()> {
        let id = self.existing(handle).await?.id.unwrap_or_default();
        match self
            .docker
            .kill_container(&id, None::<KillContainerOptions>)
            .await
        {
            // 409: not running, which is what a kill wants.
            Err(e) if status_of(&e) == Some(409) => Ok(()),
            Err(e) if is_not_found(&e) => Err(Error::NotFound(handle.container_name.clone())),
            other => Ok(other?),
        }
    }

    async fn remove(&self, handle: &RuntimeHandle) -> Result<()> {
        match self.inspect_owned(target(handle)).await? {
            Some(container) => {
                let id = container.id.unwrap_or_default();
                self.network.forget(&id);
                self.force_remove(&id).await?;
                let node = (container.config.as_ref())
                    .and_then(|c| c.labels.as_ref())
                    .and_then(|l| l.get(LABEL_NODE).cloned());
                match node.or_else(|| self.node_of(handle)) {
                    Some(node) => self.remove_pods_of(&node).await,
                    None => Ok(()),
                }
            }
            // The node's container is gone already (removed by hand): its pods may not be.
            None => match self.node_of(handle) {
                Some(node) => self.remove_pods_of(&node).await,
                None => Ok(()),
            },
        }
    }

    /// Healing reconnects the container with the address it had (the trait returns no
    /// handle, and needs none: the address is unchanged). See `ClusterNetwork::set_partitioned`.
    async fn set_partitioned(&self, handle: &RuntimeHandle, partitioned: bool) -> Result<()> {
        let container = self.existing(handle).await?;
        (self.network)
            .set_partitioned(&container, &handle.ip, partitioned)
            .await
    }

    async fn list_owned(&self) -> Result<Vec<OwnedInstance>> {
        let net = self.network_name();
        let mut owned = Vec::new();
        for summary in self.list_labelled().await? {
            if (summary.labels.as_ref()).is_some_and(|l| l.contains_key(LABEL_POD_UID)) {
                // A pod's container, made by an agent: not a node.
                continue;
            }
            let node_name = (summary.labels.as_ref())
                .and_then(|l| l.get(LABEL_NODE).cloned())
                .unwrap_or_default();
            let running = matches!(
                summary.state,
                Some(ContainerSummaryStateEnum::RUNNING)
                    | Some(ContainerSummaryStateEnum::RESTARTING)
                    | Some(ContainerSummaryStateEnum::PAUSED)
            );
            let (handle, observed) = if running {
                // The steady state, polled by the monitor: the list says enough.
                let ip = (summary.network_settings.as_ref())
                    .and_then(|s| s.networks.as_ref())
                    .and_then(|n| n.get(&net))
                    .and_then(|e| e.ip_address.clone())
                    .unwrap_or_default();
                let name = summary.names.as_ref().and_then(|n| n.first().cloned());
                let handle = RuntimeHandle {
                    kind: RuntimeKind::Docker.as_str().into(),
                    id: summary.id.clone().unwrap_or_default(),
                    ip,
                    state: Observed::Running.label(),
                    container_name: name.unwrap_or_default().trim_start_matches('/').into(),
                };
                (handle, Observed::Running)
            } else {
                // Exit code and OOM flag are only in the container's inspect.
                let id = summary.id.clone().unwrap_or_default();
                match self.inspect_owned(&id).await? {
                    Some(container) => (self.handle_of(&container), observed(&container)),
                    None => continue, // removed between the list and the inspect
                }
            };
            owned.push(OwnedInstance {
                node_name,
                handle,
                observed,
            });
        }
        Ok(owned)
    }
}

/// The container id when known, else its name.
fn target(handle: &RuntimeHandle) -> &str {
    if handle.id.is_empty() {
        &handle.container_name
    } else {
        &handle.id
    }
}

fn observed(container: &ContainerInspectResponse) -> Observed {
    let Some(state) = container.state.as_ref() else {
        return Observed::Missing;
    };
    match state.status {
        Some(ContainerStateStatusEnum::RUNNING)
        | Some(ContainerStateStatusEnum::RESTARTING)
        | Some(ContainerStateStatusEnum::PAUSED) => Observed::Running,
        _ if state.running == Some(true) => Observed::Running,
        _ => Observed::Exited {
            code: state.exit_code.unwrap_or_default(),
            oom: state.oom_killed.unwrap_or_default(),
        },
    }
}

#[cfg(test)]
mod tests {
    //! These tests need a Docker engine and fail without one. They build the node image from
    //! the `kube9-node` binary next to the test executable (`cargo build -p kube9-node`), or
    //! from `KUBE9_NODE_BINARY`.

    use std::path::PathBuf;
    use std::time::Instant;

    use bollard::models::NetworkCreateRequest;

    use super::*;

    const TEST_IMAGE: &str = "kube9-node:rt-test";

    /// Parallel tests share the test image; one build at a time.
    static IMAGE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    fn node_binary() -> PathBuf {
        if let Some(path) = std::env::var_os("KUBE9_NODE_BINARY") {
            return path.into();
        }
        // target/<triple>/debug/deps/kube9d-<hash> -> target/<triple>/debug/kube9-node
        let exe = std::env::current_exe().expect("current_exe");
        let path = exe
            .parent()
            .and_then(|deps| deps.parent())
            .unwrap()
            .join("kube9-node");
        assert!(
            path.exists(),
            "{} is missing: run `cargo build -p kube9-node` first",
            path.display()
        );
        path
    }

    fn config(cluster_id: &str, entrypoint: Option<&[&str]>) -> DockerConfig {
        let busybox = std::env::var_os("KUBE9_BUSYBOX").unwrap_or_else(|| "/bin/busybox".into());
        DockerConfig {
            image_tag: TEST_IMAGE.into(),
            entrypoint_override: entrypoint.map(|e| e.iter().map(|s| s.to_string()).collect()),
            ..DockerConfig::new(cluster_id, node_binary(), busybox.into())
        }
    }

    fn unique_cluster_id(test: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        format!("k9rt-{}-{test}-{nanos}", std::process::id())
    }

    /// Removes the cluster's containers and network when the test ends, even by a panic.
    struct Cleanup(String);

    impl Drop for Cleanup {
        fn drop(&mut self) {
            let cluster_id = self.0.clone();
            // A fresh thread and runtime: the test's runtime may be the one unwinding.
            let cleaned = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let runtime = DockerRuntime::connect(config(&cluster_id, None)).await?;
                    runtime.remove_cluster().await
                })
            })
            .join();
            if !matches!(cleaned, Ok(Ok(()))) {
                eprintln!("cleanup of cluster {} failed: {cleaned:?}", self.0);
            }
        }
    }

    async fn prepared(test: &str, entrypoint: Option<&[&str]>) -> (DockerRuntime, Cleanup) {
        prepared_with(test, entrypoint, true).await
    }

    /// [`prepared`], with the restart policy on or off.
    async fn prepared_with(
        test: &str,
        entrypoint: Option<&[&str]>,
        restart_with_engine: bool,
    ) -> (DockerRuntime, Cleanup) {
        let cluster_id = unique_cluster_id(test);
        let cleanup = Cleanup(cluster_id.clone());
        let config = DockerConfig {
            restart_with_engine,
            ..config(&cluster_id, entrypoint)
        };
        let runtime = DockerRuntime::connect(config)
            .await
            .expect("these tests need a Docker engine");
        {
            let _one_build = IMAGE_LOCK.lock().await;
            let started = Instant::now();
            runtime.prepare().await.expect("prepare");
            eprintln!("prepare (image, network): {:?}", started.elapsed());
        }
        (runtime, cleanup)
    }

    fn spec(runtime: &DockerRuntime, name: &str) -> NodeLaunch {
        NodeLaunch {
            name: name.into(),
            cpu_millis: 2000,
            cluster_id: runtime.config.cluster_id.clone(),
            server_port: 7777,
            heartbeat_interval_ms: 500,
            instance_id: format!("test-{name}"),
        }
    }

    async fn wait_for(runtime: &DockerRuntime, handle: &RuntimeHandle, want: Observed) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen = runtime.inspect(handle).await.unwrap();
            if seen == want {
                return;
            }
            assert!(Instant::now() < deadline, "wanted {want:?}, still {seen:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn connected(runtime: &DockerRuntime, handle: &RuntimeHandle) -> bool {
        let container = runtime.existing(handle).await.unwrap();
        let networks = container
            .network_settings
            .unwrap()
            .networks
            .unwrap_or_default();
        networks.contains_key(&runtime.network_name())
    }

    #[tokio::test]
    async fn an_exiting_node_is_seen_exited_restarted_listed_and_removed() {
        // Without the restart policy, which would start it again at once.
        let (rt, _cleanup) = prepared_with("exit", Some(&["/bin/sh", "-c", "exit 3"]), false).await;
        let n1 = spec(&rt, "n1");
        let handle = rt.launch(&n1).await.unwrap();
        assert_eq!(handle.kind, "docker");
        assert_eq!(handle.container_name, rt.container_name("n1"));
        wait_for(
            &rt,
            &handle,
            Observed::Exited {
                code: 3,
                oom: false,
            },
        )
        .await;

        let container = rt.existing(&handle).await.unwrap();
        let env = container.config.unwrap().env.unwrap();
        let gateway = rt.gateway().unwrap();
        assert!(
            env.contains(&format!("KUBE9_SERVER=http://{gateway}:7777")),
            "{env:?}"
        );
        assert!(env.contains(&"KUBE9_NODE_NAME=n1".to_string()), "{env:?}");
        assert!(env.contains(&"KUBE9_STATE_DIR=/var/lib/kube9-node".to_string()));

        let owned = rt.list_owned().await.unwrap();
        assert_eq!(owned.len(), 1);
        assert_eq!(owned[0].node_name, "n1");
        assert_eq!(owned[0].handle.state, "exited(3)");

        let restarted = rt.restart(&handle, &n1).await.unwrap();
        assert_eq!(
            restarted.id, handle.id,
            "an existing container is started again"
        );
        wait_for(
            &rt,
            &restarted,
            Observed::Exited {
                code: 3,
                oom: false,
            },
        )
        .await;

        rt.remove(&handle).await.unwrap();
        rt.remove(&handle).await.unwrap();
        assert_eq!(rt.inspect(&handle).await.unwrap(), Observed::Missing);
        assert!(rt.list_owned().await.unwrap().is_empty());

        // A removed container is a node that cannot come back.
        let err = rt.restart(&handle, &n1).await.unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err}");
        assert!(rt.list_owned().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_running_node_can_be_partitioned_killed_restarted_and_stopped() {
        let (rt, _cleanup) = prepared("run", Some(&["/bin/sleep", "1000"])).await;
        let started = Instant::now();
        let handle = rt.launch(&spec(&rt, "n1")).await.unwrap();
        wait_for(&rt, &handle, Observed::Running).await;
        eprintln!("create -> running: {:?}", started.elapsed());
        assert!(!handle.ip.is_empty(), "{handle:?}");
        assert_eq!(handle.state, "running");

        for _ in 0..2 {
            rt.set_partitioned(&handle, true).await.unwrap();
            assert!(!connected(&rt, &handle).await);
        }
        for _ in 0..2 {
            rt.set_partitioned(&handle, false).await.unwrap();
            assert!(connected(&rt, &handle).await);
        }

        // Restarted by the engine when the engine restarts; a kill (kube9d's crash fault) is a
        // manual stop, which the policy leaves down: recovery stays kube9d's.
        let inspected = rt.docker.inspect_container(&handle.id, None).await;
        let policy = inspected
            .unwrap()
            .host_config
            .unwrap()
            .restart_policy
            .unwrap();
        assert_eq!(policy.name, Some(RestartPolicyNameEnum::UNLESS_STOPPED));
        rt.kill(&handle).await.unwrap();
        let exited = Observed::Exited {
            code: 137,
            oom: false,
        };
        wait_for(&rt, &handle, exited.clone()).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            rt.inspect(&handle).await.unwrap(),
            exited,
            "the engine left it down"
        );
        rt.kill(&handle).await.unwrap();

        let handle = rt.restart(&handle, &spec(&rt, "n1")).await.unwrap();
        assert_eq!(rt.inspect(&handle).await.unwrap(), Observed::Running);
        assert!(!handle.ip.is_empty());

        // sleep is PID 1 and ignores SIGTERM, so this also exercises the SIGKILL fallback.
        rt.stop(&handle, Duration::from_secs(1)).await.unwrap();
        assert!(matches!(
            rt.inspect(&handle).await.unwrap(),
            Observed::Exited { .. }
        ));
        rt.remove(&handle).await.unwrap();
        assert!(matches!(rt.kill(&handle).await, Err(Error::NotFound(_))));
    }

    fn ip_of(container: &ContainerInspectResponse, net: &str) -> Option<String> {
        let networks = container.network_settings.as_ref()?.networks.as_ref()?;
        networks.get(net)?.ip_address.clone()
    }

    #[tokio::test]
    async fn a_healed_partition_gives_the_node_its_address_back() {
        let (rt, _cleanup) = prepared("heal", Some(&["/bin/sleep", "1000"])).await;
        let net = rt.network_name();
        let ip_now = |handle: RuntimeHandle| {
            let rt = &rt;
            async move { ip_of(&rt.existing(&handle).await.unwrap(), &rt.network_name()) }
        };
        let n0 = rt.launch(&spec(&rt, "n0")).await.unwrap();
        let handle = rt.launch(&spec(&rt, "n1")).await.unwrap();
        wait_for(&rt, &handle, Observed::Running).await;
        let ip = handle.ip.clone();
        assert!(!ip.is_empty(), "{handle:?}");

        // The engine hands out the lowest free address: with n0's freed, a reconnect that
        // let Docker choose would move n1 there.
        rt.set_partitioned(&handle, true).await.unwrap();
        assert!(!connected(&rt, &handle).await);
        rt.remove(&n0).await.unwrap();
        rt.set_partitioned(&handle, false).await.unwrap();
        assert!(connected(&rt, &handle).await);
        assert_eq!(ip_now(handle.clone()).await, Some(ip.clone()));
        assert_eq!(rt.refreshed_handle(&handle.id).await.unwrap().ip, ip);

        // Repeated calls change nothing.
        for partitioned in [true, true, false, false] {
            rt.set_partitioned(&handle, partitioned).await.unwrap();
            assert_eq!(connected(&rt, &handle).await, !partitioned);
        }
        assert_eq!(ip_now(handle.clone()).await, Some(ip.clone()));

        // A node that joined meanwhile took the address: n1 still heals, with a new one.
        rt.set_partitioned(&handle, true).await.unwrap();
        let joiner = rt.launch(&spec(&rt, "j1")).await.unwrap();
        rt.set_partitioned(&handle, false).await.unwrap();
        assert!(connected(&rt, &handle).await);
        let moved = ip_now(handle.clone()).await.unwrap();
        assert!(!moved.is_empty() && moved != joiner.ip, "{moved} on {net}");
    }

    #[tokio::test]
    async fn cluster_networks_created_at_once_get_user_subnets_of_their_own() {
        // Clusters creating their networks at the same time compete for the subnets they
        // probed ("Pool overlaps"). (Two creators of one cluster are not covered: this engine
        // accepts duplicate names, see `drop_duplicate_networks`.)
        let ids: Vec<String> = (0..5)
            .map(|i| unique_cluster_id(&format!("subnet{i}")))
            .collect();
        let _cleanups: Vec<Cleanup> = ids.iter().cloned().map(Cleanup).collect();
        let mut runtimes = Vec::new();
        for id in &ids {
            runtimes.push(DockerRuntime::connect(config(id, None)).await.unwrap());
        }
        let gateways = futures::future::join_all(runtimes.iter().map(|rt| rt.network.ensure()))
            .await
            .into_iter()
            .collect::<Result<Vec<_>>>()
            .unwrap();
        let distinct: std::collections::HashSet<_> = gateways.iter().collect();
        assert_eq!(distinct.len(), gateways.len(), "{gateways:?}");

        // A second kube9d of the first cluster finds the network as it is.
        let again = DockerRuntime::connect(config(&ids[0], None)).await.unwrap();
        assert_eq!(again.network.ensure().await.unwrap(), gateways[0]);

        for rt in &runtimes {
            let net = rt
                .docker
                .inspect_network(&rt.network_name(), None)
                .await
                .unwrap();
            assert!(rt.config.is_ours(net.labels.as_ref()), "{:?}", net.labels);
            let config = &net.ipam.unwrap().config.unwrap()[0];
            assert!(
                config
                    .subnet
                    .as_deref()
                    .is_some_and(network::is_ipv4_subnet),
                "{config:?}"
            );
            assert_eq!(config.gateway.as_ref(), rt.gateway().as_ref());
            assert_eq!(
                rt.network.labelled(&rt.network_name()).await.unwrap().len(),
                1
            );
            assert!(rt
                .network
                .labelled(&rt.network.probe_prefix())
                .await
                .unwrap()
                .is_empty());
        }
    }

    #[tokio::test]
    async fn a_network_from_before_user_subnets_still_heals_with_a_new_address() {
        let cluster_id = unique_cluster_id("legacy");
        let _cleanup = Cleanup(cluster_id.clone());
        let rt = DockerRuntime::connect(config(&cluster_id, Some(&["/bin/sleep", "1000"])))
            .await
            .unwrap();
        let request = NetworkCreateRequest {
            name: rt.network_name(),
            driver: Some("bridge".into()),
            labels: Some(rt.config.labels(None)),
            ..Default::default()
        };
        rt.docker.create_network(request).await.unwrap();
        {
            let _one_build = IMAGE_LOCK.lock().await;
            rt.prepare().await.unwrap();
        }
        let handle = rt.launch(&spec(&rt, "n1")).await.unwrap();
        rt.set_partitioned(&handle, true).await.unwrap();
        rt.set_partitioned(&handle, false).await.unwrap();
        assert!(connected(&rt, &handle).await);
        let container = rt.existing(&handle).await.unwrap();
        assert!(ip_of(&container, &rt.network_name()).is_some_and(|ip| !ip.is_empty()));
    }

    #[tokio::test]
    async fn an_unlabelled_network_with_the_cluster_name_is_refused() {
        let cluster_id = unique_cluster_id("foreign");
        let rt = DockerRuntime::connect(config(&cluster_id, None))
            .await
            .unwrap();
        let net = rt.network_name();
        let request = NetworkCreateRequest {
            name: net.clone(),
            ..Default::default()
        };
        rt.docker.create_network(request).await.unwrap();
        let refused = rt.network.ensure().await;
        // remove_cluster leaves an unlabelled network alone, so remove it here.
        rt.docker.remove_network(&net).await.unwrap();
        let err = refused.unwrap_err().to_string();
        assert!(err.contains("not labelled"), "{err}");
        assert!(rt.gateway().is_none());
    }

    #[tokio::test]
    async fn launch_replaces_a_stale_container_and_other_clusters_stay_untouched() {
        let (rt, _cleanup) = prepared("stale", Some(&["/bin/sleep", "1000"])).await;
        let first = rt.launch(&spec(&rt, "n1")).await.unwrap();
        let second = rt.launch(&spec(&rt, "n1")).await.unwrap();
        assert_ne!(first.id, second.id);
        assert_eq!(rt.inspect(&first).await.unwrap(), Observed::Missing);
        assert_eq!(rt.inspect(&second).await.unwrap(), Observed::Running);

        let other = DockerRuntime::connect(config(&unique_cluster_id("other"), None))
            .await
            .unwrap();
        assert!(other.list_owned().await.unwrap().is_empty());
        assert!(other.remove(&second).await.is_err(), "not its container");
        assert_eq!(rt.inspect(&second).await.unwrap(), Observed::Running);

        rt.remove_cluster().await.unwrap();
        assert!(rt.list_owned().await.unwrap().is_empty());
        let net = rt.network_name();
        let gone = rt.docker.inspect_network(&net, None).await.unwrap_err();
        assert!(is_not_found(&gone), "{gone}");
    }

    #[tokio::test]
    async fn the_node_image_runs_the_agent_from_scratch() {
        let (rt, _cleanup) = prepared("image", None).await;
        let image = rt.docker.inspect_image(TEST_IMAGE).await.unwrap();
        let config = image.config.unwrap();
        assert_eq!(config.entrypoint.unwrap(), ["/kube9-node"]);
        assert!(config.env.unwrap().contains(&"PATH=/bin".to_string()));
        let labels = config.labels.unwrap();
        assert!(labels.contains_key(image::LABEL_CONTENT_HASH));
        // A second prepare finds the image up to date and builds nothing.
        let before = image.id;
        rt.prepare().await.unwrap();
        let after = rt.docker.inspect_image(TEST_IMAGE).await.unwrap().id;
        assert_eq!(before, after);
    }

    #[tokio::test]
    async fn pod_containers_beside_a_node_are_not_taken_for_node_instances() {
        let (rt, _cleanup) = prepared("podlabel", Some(&["/bin/sleep", "1000"])).await;
        let node = rt.launch(&spec(&rt, "n1")).await.unwrap();
        // What an agent makes for a pod: the cluster's and the node's labels, and the pod's.
        let mut labels = rt.config.labels(Some("n1"));
        labels.insert(LABEL_POD_UID.to_string(), "uid-1".to_string());
        let body = bollard::models::ContainerCreateBody {
            image: Some(TEST_IMAGE.to_string()),
            entrypoint: Some(vec!["/bin/sleep".into(), "1000".into()]),
            labels: Some(labels),
            ..Default::default()
        };
        let name = format!("{}-pod-uid-1", rt.config.cluster_id);
        let options = bollard::query_parameters::CreateContainerOptionsBuilder::new()
            .name(&name)
            .build();
        rt.docker
            .create_container(Some(options), body)
            .await
            .unwrap();
        rt.docker
            .start_container(
                &name,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .unwrap();
        let owned = rt.list_owned().await.unwrap();
        assert_eq!(owned.len(), 1, "{owned:?}");
        assert_eq!(owned[0].handle.id, node.id);
        // Tearing the cluster down takes the pod's container too.
        rt.remove_cluster().await.unwrap();
        assert!(rt.list_labelled().await.unwrap().is_empty());
    }
}
