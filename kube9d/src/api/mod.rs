//! The gRPC surface: [`ClusterApi`] for people and scripts, [`AgentApi`] for node agents.

mod agent;
mod cluster;
mod logs;
mod nodes;
mod status;

pub use agent::AgentApi;
pub use cluster::ClusterApi;
