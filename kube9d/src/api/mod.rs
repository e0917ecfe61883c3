//! The gRPC surface: [`ClusterApi`] for people and scripts, [`AgentApi`] for node agents.

mod agent;
mod apply;
mod cluster;
mod logs;
mod lookup;
mod node_admin;
mod nodes;
mod objects;
mod select;
mod snapshot;
mod status;
mod tokens;
mod watch;

pub use agent::AgentApi;
pub use cluster::ClusterApi;
