//! Node agents in Docker containers, one per node, on a user-defined bridge network per cluster
//! (`<cluster>-net`). Talks to the engine through bollard only.
//!
//! Every container and the network carry [`LABEL_CLUSTER`] (and containers [`LABEL_NODE`]);
//! this runtime never acts on a container without its cluster's label. Containers have no
//! restart policy: kube9d decides about recovery. The agent dials kube9d back through the
//! network's gateway, so kube9d listens on 0.0.0.0 when it runs nodes in Docker.
//!
//! The network is created with an explicit subnet (one Docker picked itself for a throwaway
//! probe network) because Docker only lets a container join with a fixed address on networks
//! whose subnet was user configured, and a healed partition must give a node its old address
//! back: the agent's open connection to kube9d is bound to it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, ContainerSummary,
    ContainerSummaryStateEnum, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig,
    NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest, NetworkInspect,
    NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, KillContainerOptions,
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder,
    StartContainerOptions, StopContainerOptionsBuilder,
};
use bollard::Docker;
use kube9_proto::pb::RuntimeHandle;
use tracing::{debug, info, warn};

use super::image::{default_image_tag, ensure_image};
use super::{Error, NodeLaunch, NodeRuntime, Observed, OwnedInstance, Result};
use super::{LABEL_CLUSTER, LABEL_NODE};

/// Where the agent keeps its state inside the container.
const STATE_DIR: &str = "/var/lib/kube9-node";

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
        }
    }
}

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
    /// Gateway of the cluster network: the address agents dial kube9d on.
    gateway: parking_lot::Mutex<Option<String>>,
    /// Serializes network creation within this process.
    network_lock: tokio::sync::Mutex<()>,
    /// Set once the engine refused `cap_add: SYS_ADMIN`; later containers go without it.
    cap_add_refused: AtomicBool,
    /// Address each partitioned container had on the cluster network, by container id, so
    /// healing the partition can give it back.
    partitioned_ips: parking_lot::Mutex<HashMap<String, String>>,
}

impl DockerRuntime {
    /// Connects to the engine (`DOCKER_HOST` or the local socket) and negotiates the API
    /// version (bollard's default is newer than some engines).
    pub async fn connect(config: DockerConfig) -> Result<Self> {
        let docker = Docker::connect_with_defaults()?.negotiate_version().await?;
        Ok(Self {
            docker,
            config,
            gateway: parking_lot::Mutex::new(None),
            network_lock: tokio::sync::Mutex::new(()),
            cap_add_refused: AtomicBool::new(false),
            partitioned_ips: parking_lot::Mutex::default(),
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
        format!("{}-net", self.config.cluster_id)
    }

    /// `<cluster>-<node>`.
    pub fn container_name(&self, node: &str) -> String {
        format!("{}-{node}", self.config.cluster_id)
    }

    /// The cluster network's gateway IP, known after [`NodeRuntime::prepare`] or a launch.
    pub fn gateway(&self) -> Option<String> {
        self.gateway.lock().clone()
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
        let net = self.network_name();
        match self.docker.inspect_network(&net, None).await {
            Ok(n) if self.is_ours(n.labels.as_ref()) => {
                match self.docker.remove_network(&net).await {
                    Err(e) if !is_not_found(&e) => return Err(e.into()),
                    _ => info!(network = %net, "removed the cluster network"),
                }
            }
            Ok(_) => warn!(network = %net, "network is not labelled for this cluster; left alone"),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
        for probe in self.labelled_networks(&self.probe_prefix()).await? {
            if let Err(e) = self.docker.remove_network(&probe).await {
                debug!(network = %probe, error = %e, "probe network already gone");
            }
        }
        Ok(())
    }

    fn labels(&self, node: Option<&str>) -> HashMap<String, String> {
        let mut labels =
            HashMap::from([(LABEL_CLUSTER.to_string(), self.config.cluster_id.clone())]);
        if let Some(node) = node {
            labels.insert(LABEL_NODE.to_string(), node.to_string());
        }
        labels
    }

    fn is_ours(&self, labels: Option<&HashMap<String, String>>) -> bool {
        labels.and_then(|l| l.get(LABEL_CLUSTER)) == Some(&self.config.cluster_id)
    }

    /// All containers (running or not) labelled with this cluster.
    async fn list_labelled(&self) -> Result<Vec<ContainerSummary>> {
        let label = format!("{LABEL_CLUSTER}={}", self.config.cluster_id);
        let filters = HashMap::from([("label", vec![label.as_str()])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        Ok(self.docker.list_containers(Some(options)).await?)
    }

    /// Creates the cluster network unless it exists; returns its gateway. Refuses a network
    /// of that name without this cluster's label: it is someone else's.
    async fn ensure_network(&self) -> Result<String> {
        let _serialized = self.network_lock.lock().await;
        let net = self.network_name();
        let network = match self.docker.inspect_network(&net, None).await {
            Ok(network) => network,
            Err(e) if is_not_found(&e) => {
                self.create_network(&net).await?;
                self.docker.inspect_network(&net, None).await?
            }
            Err(e) => return Err(e.into()),
        };
        if !self.is_ours(network.labels.as_ref()) {
            return Err(Error::Other(format!(
                "a docker network named {net} exists but is not labelled {LABEL_CLUSTER}={}: \
                 it belongs to something else; remove or rename it, or use another cluster id",
                self.config.cluster_id
            )));
        }
        let gateway = gateway_of(&network)
            .ok_or_else(|| Error::Other(format!("network {net} has no IPv4 gateway")))?;
        *self.gateway.lock() = Some(gateway.clone());
        Ok(gateway)
    }

    /// Creates the cluster network with an explicit subnet (see the module docs). Another
    /// creator may take the probed subnet before we do ("Pool overlaps"): probe again.
    async fn create_network(&self, net: &str) -> Result<()> {
        const ATTEMPTS: u32 = 5;
        info!(network = %net, "creating the cluster network");
        for attempt in 1..=ATTEMPTS {
            let (subnet, gateway) = self.probe_subnet().await?;
            let request = NetworkCreateRequest {
                name: net.to_string(),
                driver: Some("bridge".into()),
                labels: Some(self.labels(None)),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(subnet.clone()),
                        gateway: Some(gateway),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            };
            match self.docker.create_network(request).await {
                Ok(_) => {
                    debug!(network = %net, subnet = %subnet, "created the cluster network");
                    break;
                }
                Err(e) if status_of(&e) == Some(409) => {
                    debug!(network = %net, "created concurrently");
                    break;
                }
                Err(e) if is_pool_overlap(&e) && attempt < ATTEMPTS => {
                    // Perhaps a concurrent creator of this very network took it.
                    if self.docker.inspect_network(net, None).await.is_ok() {
                        debug!(network = %net, "created concurrently");
                        break;
                    }
                    debug!(network = %net, subnet = %subnet, attempt, "subnet taken meanwhile");
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.drop_duplicate_networks(net).await
    }

    /// `<cluster>-net-probe-`: names of the throwaway networks [`Self::probe_subnet`] makes.
    fn probe_prefix(&self) -> String {
        format!("{}-probe-", self.network_name())
    }

    /// A free IPv4 subnet and its gateway, as Docker picks them: creates a network without a
    /// subnet under a throwaway name, reads what it got, and removes it again.
    async fn probe_subnet(&self) -> Result<(String, String)> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let probe = format!("{}{}-{nanos}", self.probe_prefix(), std::process::id());
        let request = NetworkCreateRequest {
            name: probe.clone(),
            driver: Some("bridge".into()),
            // Labelled, so `remove_cluster` finds it if we die before removing it.
            labels: Some(self.labels(None)),
            ..Default::default()
        };
        let created = self.docker.create_network(request).await?;
        let inspected = self.docker.inspect_network(&created.id, None).await;
        if let Err(e) = self.docker.remove_network(&created.id).await {
            warn!(network = %probe, error = %e, "failed to remove the subnet probe network");
        }
        let configs = (inspected?.ipam)
            .and_then(|ipam| ipam.config)
            .unwrap_or_default();
        configs
            .into_iter()
            .filter(|c| c.subnet.as_deref().is_some_and(is_ipv4_subnet))
            .find_map(|c| Some((c.subnet?, c.gateway?)))
            .ok_or_else(|| Error::Other("docker gave a new network no IPv4 subnet".into()))
    }

    /// Names of the networks labelled with this cluster whose name starts with `prefix`.
    async fn labelled_networks(&self, prefix: &str) -> Result<Vec<String>> {
        let label = format!("{LABEL_CLUSTER}={}", self.config.cluster_id);
        let filters = HashMap::from([("label", vec![label.as_str()])]);
        let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
        let networks = self.docker.list_networks(Some(options)).await?;
        Ok((networks.into_iter())
            .filter_map(|n| n.name)
            .filter(|name| name.starts_with(prefix))
            .collect())
    }

    /// Engines before API 1.44 accept two networks with one name when two creates race (the
    /// request has no CheckDuplicate field in bollard). Every racer keeps the lowest id.
    async fn drop_duplicate_networks(&self, net: &str) -> Result<()> {
        let label = format!("{LABEL_CLUSTER}={}", self.config.cluster_id);
        let filters = HashMap::from([("name", vec![net]), ("label", vec![label.as_str()])]);
        let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
        let mut ids: Vec<String> = (self.docker.list_networks(Some(options)).await?)
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(net))
            .filter_map(|n| n.id)
            .collect();
        ids.sort();
        for duplicate in ids.iter().skip(1) {
            warn!(network = %net, id = %duplicate, "removing a duplicate cluster network");
            if let Err(e) = self.docker.remove_network(duplicate).await {
                debug!(network = %net, error = %e, "duplicate network already gone");
            }
        }
        Ok(())
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
        if !self.is_ours(labels) {
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
        let net = self.network_name();
        let ip = (container.network_settings.as_ref())
            .and_then(|s| s.networks.as_ref())
            .and_then(|n| n.get(&net))
            .and_then(|e| e.ip_address.clone())
            .unwrap_or_default();
        RuntimeHandle {
            kind: "docker".into(),
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

    /// Connects a partitioned container to the cluster network again, with `ip` when given
    /// and Docker accepts it, else with an address Docker picks. Returns the address it got.
    async fn reconnect(
        &self,
        container: &ContainerInspectResponse,
        ip: Option<String>,
    ) -> Result<String> {
        let id = container.id.clone().unwrap_or_default();
        let name = container_name(container);
        let net = self.network_name();
        let node = (container.config.as_ref())
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(LABEL_NODE).cloned());
        let connect = |ip: Option<String>| {
            let endpoint = EndpointSettings {
                aliases: node.clone().map(|n| vec![n]),
                ipam_config: ip.map(|ip| EndpointIpamConfig {
                    ipv4_address: Some(ip),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let request = NetworkConnectRequest {
                container: id.clone(),
                endpoint_config: Some(endpoint),
            };
            self.docker.connect_network(&net, request)
        };
        match ip {
            Some(ip) => match connect(Some(ip.clone())).await {
                Ok(()) => return Ok(ip),
                // e.g. "user specified IP address is supported only when connecting to
                // networks with user configured subnets", or the address is in use.
                Err(e @ DockerError::DockerResponseServerError { .. }) => {
                    warn!(container = %name, ip = %ip, error = %e,
                        "could not reconnect with the same address; the node gets a new one \
                         and its agent must reconnect")
                }
                Err(e) => return Err(e.into()),
            },
            None => warn!(container = %name,
                "no address known from before the partition; the node gets a new one"),
        }
        connect(None).await?;
        let ip = self.refreshed_handle(&id).await?.ip;
        Ok(ip)
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
        let env = vec![
            format!("KUBE9_SERVER=http://{gateway}:{}", spec.server_port),
            format!("KUBE9_NODE_NAME={}", spec.name),
            format!("KUBE9_CPU_MILLIS={}", spec.cpu_millis),
            format!("KUBE9_CLUSTER_ID={}", spec.cluster_id),
            format!("KUBE9_HEARTBEAT_MS={}", spec.heartbeat_interval_ms),
            format!("KUBE9_INSTANCE_ID={}", spec.instance_id),
            format!("KUBE9_STATE_DIR={STATE_DIR}"),
        ];
        let endpoint = EndpointSettings {
            aliases: Some(vec![spec.name.clone()]),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(self.config.image_tag.clone()),
            hostname: Some(spec.name.clone()),
            env: Some(env),
            labels: Some(self.labels(Some(&spec.name))),
            entrypoint: self.config.entrypoint_override.clone(),
            stop_signal: Some("SIGTERM".into()),
            host_config: Some(HostConfig {
                network_mode: Some(net.clone()),
                cap_add: with_caps.then(|| vec!["SYS_ADMIN".to_string()]),
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
    fn kind(&self) -> super::RuntimeKind {
        super::RuntimeKind::Docker
    }

    async fn prepare(&self) -> Result<()> {
        ensure_image(&self.docker, &self.config).await?;
        let gateway = self.ensure_network().await?;
        info!(network = %self.network_name(), gateway = %gateway, "docker runtime ready");
        Ok(())
    }

    async fn launch(&self, spec: &NodeLaunch) -> Result<RuntimeHandle> {
        let gateway = self.ensure_network().await?;
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
                self.partitioned_ips.lock().remove(&id);
                self.force_remove(&id).await
            }
            None => Ok(()),
        }
    }

    /// Healing reconnects the container with the address it had (the trait returns no
    /// handle, and needs none: the address is unchanged). Only when Docker refuses that
    /// address (a network made by an older kube9d without a user subnet, or the address was
    /// taken meanwhile) does the node get a new one, and its agent has to reconnect.
    async fn set_partitioned(&self, handle: &RuntimeHandle, partitioned: bool) -> Result<()> {
        let container = self.existing(handle).await?;
        let id = container.id.clone().unwrap_or_default();
        let net = self.network_name();
        let endpoint = (container.network_settings.as_ref())
            .and_then(|s| s.networks.as_ref())
            .and_then(|n| n.get(&net));
        if partitioned {
            if let Some(endpoint) = endpoint {
                let ip = endpoint.ip_address.clone().filter(|ip| !ip.is_empty());
                if let Some(ip) = ip {
                    self.partitioned_ips.lock().insert(id.clone(), ip);
                }
                let request = NetworkDisconnectRequest {
                    container: id,
                    force: Some(true),
                };
                self.docker.disconnect_network(&net, request).await?;
                info!(container = %container_name(&container), "disconnected from the cluster network");
            }
        } else if endpoint.is_none() {
            // Remembered at the disconnect; after a kube9d restart, the handle's address.
            let remembered = self.partitioned_ips.lock().get(&id).cloned();
            let ip = remembered.or_else(|| Some(handle.ip.clone()).filter(|ip| !ip.is_empty()));
            let ip = self.reconnect(&container, ip).await?;
            self.partitioned_ips.lock().remove(&id);
            info!(container = %container_name(&container), ip = %ip,
                "reconnected to the cluster network");
        } else {
            self.partitioned_ips.lock().remove(&id);
        }
        Ok(())
    }

    async fn list_owned(&self) -> Result<Vec<OwnedInstance>> {
        let net = self.network_name();
        let mut owned = Vec::new();
        for summary in self.list_labelled().await? {
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
                    kind: "docker".into(),
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

fn container_name(container: &ContainerInspectResponse) -> String {
    let name = container.name.as_deref().unwrap_or_default();
    name.trim_start_matches('/').to_string()
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

fn gateway_of(network: &NetworkInspect) -> Option<String> {
    let configs = network.ipam.as_ref()?.config.as_ref()?;
    configs
        .iter()
        .filter_map(|c| c.gateway.clone())
        .find(|g| g.parse::<std::net::Ipv4Addr>().is_ok())
}

fn status_of(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

pub(crate) fn is_not_found(e: &DockerError) -> bool {
    status_of(e) == Some(404)
}

/// 409 from kill: the container already stopped.
fn is_not_running(e: &DockerError) -> bool {
    status_of(e) == Some(409)
}

/// "Pool overlaps with other one on this address space": the subnet is taken.
fn is_pool_overlap(e: &DockerError) -> bool {
    matches!(e, DockerError::DockerResponseServerError { message, .. }
        if message.to_ascii_lowercase().contains("pool overlaps"))
}

/// `a.b.c.d/n`.
fn is_ipv4_subnet(subnet: &str) -> bool {
    subnet
        .split_once('/')
        .is_some_and(|(addr, _)| addr.parse::<std::net::Ipv4Addr>().is_ok())
}

/// Whether the engine refused the container because of `cap_add: SYS_ADMIN` itself. Only
/// messages that name the capability count: any other "permission denied" is a real error,
/// not a reason to drop the capability for every later node.
fn looks_like_capability_refusal(e: &DockerError) -> bool {
    let DockerError::DockerResponseServerError { message, .. } = e else {
        return false;
    };
    let message = message.to_ascii_lowercase();
    ["sys_admin", "capabilit", "apply caps"]
        .iter()
        .any(|word| message.contains(word))
}

#[cfg(test)]
mod tests {
    //! These tests need a Docker engine and fail without one. They build the node image from
    //! the `kube9-node` binary next to the test executable (`cargo build -p kube9-node`), or
    //! from `KUBE9_NODE_BINARY`.

    use std::time::Instant;

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
        let cluster_id = unique_cluster_id(test);
        let cleanup = Cleanup(cluster_id.clone());
        let runtime = DockerRuntime::connect(config(&cluster_id, entrypoint))
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
        let (rt, _cleanup) = prepared("exit", Some(&["/bin/sh", "-c", "exit 3"])).await;
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

        rt.kill(&handle).await.unwrap();
        wait_for(
            &rt,
            &handle,
            Observed::Exited {
                code: 137,
                oom: false,
            },
        )
        .await;
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
        let gateways = futures::future::join_all(runtimes.iter().map(|rt| rt.ensure_network()))
            .await
            .into_iter()
            .collect::<Result<Vec<_>>>()
            .unwrap();
        let distinct: std::collections::HashSet<_> = gateways.iter().collect();
        assert_eq!(distinct.len(), gateways.len(), "{gateways:?}");

        // A second kube9d of the first cluster finds the network as it is.
        let again = DockerRuntime::connect(config(&ids[0], None)).await.unwrap();
        assert_eq!(again.ensure_network().await.unwrap(), gateways[0]);

        for rt in &runtimes {
            let net = rt
                .docker
                .inspect_network(&rt.network_name(), None)
                .await
                .unwrap();
            assert!(rt.is_ours(net.labels.as_ref()), "{:?}", net.labels);
            let config = &net.ipam.unwrap().config.unwrap()[0];
            assert!(
                config.subnet.as_deref().is_some_and(is_ipv4_subnet),
                "{config:?}"
            );
            assert_eq!(config.gateway.as_ref(), rt.gateway().as_ref());
            assert_eq!(
                rt.labelled_networks(&rt.network_name())
                    .await
                    .unwrap()
                    .len(),
                1
            );
            assert!(rt
                .labelled_networks(&rt.probe_prefix())
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
            labels: Some(rt.labels(None)),
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
        let refused = rt.ensure_network().await;
        // remove_cluster leaves an unlabelled network alone, so remove it here.
        rt.docker.remove_network(&net).await.unwrap();
        let err = refused.unwrap_err().to_string();
        assert!(err.contains("not labelled"), "{err}");
        assert!(rt.gateway().is_none());
    }

    #[test]
    fn only_messages_about_the_capability_drop_sys_admin() {
        let refusal = |message: &str| {
            looks_like_capability_refusal(&DockerError::DockerResponseServerError {
                status_code: 500,
                message: message.into(),
            })
        };
        assert!(refusal("unknown capability: \"CAP_SYS_ADMIN\""));
        assert!(refusal(
            "OCI runtime create failed: unable to apply caps: operation not permitted"
        ));
        assert!(refusal("capabilities are not allowed here"));
        assert!(!refusal("open /var/lib/docker/x: permission denied"));
        assert!(!refusal("failed to create shim task: escape from cap"));
        assert!(!refusal("Cannot start container: port already allocated"));
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
        assert!(labels.contains_key(super::super::image::LABEL_CONTENT_HASH));
        // A second prepare finds the image up to date and builds nothing.
        let before = image.id;
        rt.prepare().await.unwrap();
        let after = rt.docker.inspect_image(TEST_IMAGE).await.unwrap().id;
        assert_eq!(before, after);
    }
}
