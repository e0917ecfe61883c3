//! kube9d: the Kube-9 control plane.
//!
//! # Layout
//! - [`config`]: command line and control-loop timings.
//! - [`store`]: durable state (sled) behind one [`store::Store`] handle, with group commit.
//! - [`state`]: the working state in memory and every lifecycle transition (nodes, pods, agents).
//! - [`scheduler`]: best-fit placement on CPU.
//! - [`monitor`]: heartbeat and container monitors, recovery, reaping.
//! - [`runtime`]: where nodes live: Docker containers or local processes.
//! - [`api`]: the gRPC services (`ClusterService`, `AgentService`), plus reflection and health.
//! - [`server`]: start-up (store, runtime, reconciliation) and serving until shutdown.

pub mod api;
pub mod config;
pub mod monitor;
pub mod runtime;
pub mod scheduler;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod store;

pub use config::Config;
pub use server::run;
