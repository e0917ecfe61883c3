//! The kubelet's rules: what a pod spec means for its containers over time (restart policy,
//! crash-loop back-off, init containers, phase and status), independent of how containers are
//! run (processes here, the Docker engine through `cri`).
//!
//! # Layout
//! - [`env`]: a container's environment from the pod spec.
//! - [`policy`]: the rules as pure functions, unit-tested against Kubernetes' behaviour.
//! - [`probe`]: liveness, readiness and startup probes for any runtime.

pub mod env;
pub mod policy;
pub mod probe;
