//! Kube-9 wire types and the rules every client and the server share.
//!
//! # Layout
//! - [`pb`]: the generated gRPC code for `kube9.proto` (package `kube9.v1`).
//! - [`fault`]: injected node faults (`heartbeat`, `crash`, `component=NAME`, `partition`).
//! - [`quantity`]: Kubernetes quantities (`500m`, `0.5`, `2`, `64Mi`).
//! - [`manifest`]: Kubernetes-shaped YAML manifests (Pod, Node, Namespace, ConfigMap, Secret)
//!   into wire objects.
//! - [`validate`]: the checks kube9d applies to every object before it stores it.
//! - [`selector`]: label selectors (`app=web,tier!=db,env in (a,b)`).
//! - [`fields`]: field selectors (`status.phase=Running,spec.nodeName!=n1`).
//! - [`namespace`]: the default namespace and object keys (`namespace/name`).
//! - [`client`]: tokens, the client config file, TLS and the CA pin, for every client.
//! - [`base64`]: standard base64, as Kubernetes writes Secret and ConfigMap bytes.

pub mod base64;
pub mod client;
pub mod fault;
pub mod fields;
pub mod manifest;
pub mod namespace;
pub mod quantity;
pub mod selector;
pub mod validate;

/// Generated code for `kube9.proto`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("kube9.v1");
}

/// The encoded `FileDescriptorSet` of `kube9.proto`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/kube9_descriptor.bin"));

/// Default address kube9d listens on and kube9ctl dials.
pub const DEFAULT_PORT: u16 = 7209;

impl pb::NodeStatus {
    /// The word shown to people: `Healthy`, `PermanentlyFailed`, ...
    pub fn label(self) -> &'static str {
        use pb::NodeStatus::*;
        match self {
            Unspecified => "Unknown",
            Initializing => "Initializing",
            Healthy => "Healthy",
            Failed => "Failed",
            Recovering => "Recovering",
            PermanentlyFailed => "PermanentlyFailed",
            Draining => "Draining",
            Left => "Left",
        }
    }
}

impl pb::PodPhase {
    /// The word shown to people: `Pending`, `Running`, ...
    pub fn label(self) -> &'static str {
        use pb::PodPhase::*;
        match self {
            Unspecified => "Unknown",
            Pending => "Pending",
            Scheduled => "Scheduled",
            Running => "Running",
            Succeeded => "Succeeded",
            Failed => "Failed",
            Terminating => "Terminating",
        }
    }

    /// Succeeded and Failed pods hold no CPU.
    pub fn is_terminal(self) -> bool {
        matches!(self, pb::PodPhase::Succeeded | pb::PodPhase::Failed)
    }
}

impl pb::Pod {
    /// `spec.terminationGracePeriodSeconds` as a duration (0: killed at once); `None`: unset,
    /// the stopper's default applies.
    pub fn termination_grace(&self) -> Option<std::time::Duration> {
        (self.termination_grace_period_seconds)
            .map(|s| std::time::Duration::from_secs(u64::try_from(s).unwrap_or(0)))
    }
}

impl pb::ContainerState {
    /// The word shown to people: `Waiting`, `Running`, `Terminated`.
    pub fn label(self) -> &'static str {
        use pb::ContainerState::*;
        match self {
            Unspecified => "Unknown",
            Waiting => "Waiting",
            Running => "Running",
            Terminated => "Terminated",
        }
    }
}
