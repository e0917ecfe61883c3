//! The gRPC surface: [`ClusterApi`] for people and scripts, [`AgentApi`] for node agents.

mod agent;
mod apply;
mod cluster;
mod logs;
mod lookup;
mod nodes;
mod objects;
mod select;
mod snapshot;
mod status;
mod tokens;

pub use agent::AgentApi;
pub use cluster::ClusterApi;
