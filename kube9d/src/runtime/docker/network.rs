//! The cluster's Docker network (`<cluster>-net`) and network partitions.
//!
//! The network is created with an explicit subnet (one Docker picked itself for a throwaway
//! probe network) because Docker only lets a container join with a fixed address on networks
//! whose subnet was user configured, and a healed partition must give a node its old address
//! back: the agent's open connection to kube9d is bound to it.
//!
//! A partition disconnects a node's container from the network; healing connects it again
//! with the address it had.

use std::collections::HashMap;

use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerInspectResponse, EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig,
    NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest, NetworkInspect,
};
use bollard::query_parameters::ListNetworksOptionsBuilder;
use bollard::Docker;
use tracing::{debug, info, warn};

use super::config::DockerConfig;
use super::errors::{is_not_found, is_pool_overlap, status_of};
use crate::runtime::{Error, Result, LABEL_CLUSTER, LABEL_NODE};

/// One cluster's network: creates it, removes it, and cuts containers off it and back.
pub(super) struct ClusterNetwork {
    docker: Docker,
    config: DockerConfig,
    /// Gateway of the cluster network: the address agents dial kube9d on.
    gateway: parking_lot::Mutex<Option<String>>,
    /// Serializes network creation within this process.
    lock: tokio::sync::Mutex<()>,
    /// Address each partitioned container had on the cluster network, by container id, so
    /// healing the partition can give it back.
    partitioned_ips: parking_lot::Mutex<HashMap<String, String>>,
}

impl ClusterNetwork {
    pub(super) fn new(docker: Docker, config: DockerConfig) -> Self {
        Self {
            docker,
            config,
            gateway: parking_lot::Mutex::new(None),
            lock: tokio::sync::Mutex::new(()),
            partitioned_ips: parking_lot::Mutex::default(),
        }
    }

    /// `<cluster>-net`.
    pub(super) fn name(&self) -> String {
        self.config.network_name()
    }

    /// The network's gateway IP, known once [`Self::ensure`] succeeded.
    pub(super) fn gateway(&self) -> Option<String> {
        self.gateway.lock().clone()
    }

    /// The container's address on the cluster network, if it is connected.
    pub(super) fn ip_of(&self, container: &ContainerInspectResponse) -> Option<String> {
        let net = self.name();
        (container.network_settings.as_ref())
            .and_then(|s| s.networks.as_ref())
            .and_then(|n| n.get(&net))
            .and_then(|e| e.ip_address.clone())
    }

    /// Creates the cluster network unless it exists; returns its gateway. Refuses a network
    /// of that name without this cluster's label: it is someone else's.
    pub(super) async fn ensure(&self) -> Result<String> {
        let _serialized = self.lock.lock().await;
        let net = self.name();
        let network = match self.docker.inspect_network(&net, None).await {
            Ok(network) => network,
            Err(e) if is_not_found(&e) => {
                self.create(&net).await?;
                self.docker.inspect_network(&net, None).await?
            }
            Err(e) => return Err(e.into()),
        };
        if !self.config.is_ours(network.labels.as_ref()) {
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

    /// Removes the cluster network (if it is labelled for this cluster) and any subnet probe
    /// network a crash left behind. The containers must be gone first.
    pub(super) async fn remove(&self) -> Result<()> {
        let net = self.name();
        match self.docker.inspect_network(&net, None).await {
            Ok(n) if self.config.is_ours(n.labels.as_ref()) => {
                match self.docker.remove_network(&net).await {
                    Err(e) if !is_not_found(&e) => return Err(e.into()),
                    _ => info!(network = %net, "removed the cluster network"),
                }
            }
            Ok(_) => warn!(network = %net, "network is not labelled for this cluster; left alone"),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
        for probe in self.labelled(&self.probe_prefix()).await? {
            if let Err(e) = self.docker.remove_network(&probe).await {
                debug!(network = %probe, error = %e, "probe network already gone");
            }
        }
        Ok(())
    }

    /// Creates the cluster network with an explicit subnet (see the module docs). Another
    /// creator may take the probed subnet before we do ("Pool overlaps"): probe again.
    async fn create(&self, net: &str) -> Result<()> {
        const ATTEMPTS: u32 = 5;
        info!(network = %net, "creating the cluster network");
        for attempt in 1..=ATTEMPTS {
            let (subnet, gateway) = self.probe_subnet().await?;
            let request = NetworkCreateRequest {
                name: net.to_string(),
                driver: Some("bridge".into()),
                labels: Some(self.config.labels(None)),
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
        self.drop_duplicates(net).await
    }

    /// `<cluster>-net-probe-`: names of the throwaway networks [`Self::probe_subnet`] makes.
    pub(super) fn probe_prefix(&self) -> String {
        format!("{}-probe-", self.name())
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
            // Labelled, so `remove` finds it if we die before removing it.
            labels: Some(self.config.labels(None)),
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
    pub(super) async fn labelled(&self, prefix: &str) -> Result<Vec<String>> {
        let label = self.config.label_filter();
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
    async fn drop_duplicates(&self, net: &str) -> Result<()> {
        let label = self.config.label_filter();
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

    /// Disconnects `container` from the cluster network (`partitioned`) or connects it again.
    /// Healing reconnects the container with the address it had: remembered at the
    /// disconnect, or after a kube9d restart `handle_ip`. Only when Docker refuses that
    /// address (a network made by an older kube9d without a user subnet, or the address was
    /// taken meanwhile) does the node get a new one, and its agent has to reconnect.
    /// Repeated calls change nothing.
    pub(super) async fn set_partitioned(
        &self,
        container: &ContainerInspectResponse,
        handle_ip: &str,
        partitioned: bool,
    ) -> Result<()> {
        let id = container.id.clone().unwrap_or_default();
        let net = self.name();
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
                info!(container = %container_name(container), "disconnected from the cluster network");
            }
        } else if endpoint.is_none() {
            let remembered = self.partitioned_ips.lock().get(&id).cloned();
            let ip = remembered.or_else(|| Some(handle_ip.to_string()).filter(|ip| !ip.is_empty()));
            let ip = self.reconnect(container, ip).await?;
            self.partitioned_ips.lock().remove(&id);
            info!(container = %container_name(container), ip = %ip,
                "reconnected to the cluster network");
        } else {
            self.partitioned_ips.lock().remove(&id);
        }
        Ok(())
    }

    /// Forgets the address remembered for a partitioned container (it was removed).
    pub(super) fn forget(&self, container_id: &str) {
        self.partitioned_ips.lock().remove(container_id);
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
        let net = self.name();
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
        // The container was checked to be ours by the caller, and labels never change.
        let reconnected = match self.docker.inspect_container(&id, None).await {
            Ok(c) => c,
            Err(e) if is_not_found(&e) => return Err(Error::NotFound(id)),
            Err(e) => return Err(e.into()),
        };
        Ok(self.ip_of(&reconnected).unwrap_or_default())
    }
}

/// The container's name without Docker's leading `/`.
pub(super) fn container_name(container: &ContainerInspectResponse) -> String {
    let name = container.name.as_deref().unwrap_or_default();
    name.trim_start_matches('/').to_string()
}

fn gateway_of(network: &NetworkInspect) -> Option<String> {
    let configs = network.ipam.as_ref()?.config.as_ref()?;
    configs
        .iter()
        .filter_map(|c| c.gateway.clone())
        .find(|g| g.parse::<std::net::Ipv4Addr>().is_ok())
}

/// `a.b.c.d/n`.
pub(super) fn is_ipv4_subnet(subnet: &str) -> bool {
    subnet
        .split_once('/')
        .is_some_and(|(addr, _)| addr.parse::<std::net::Ipv4Addr>().is_ok())
}
