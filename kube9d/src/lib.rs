//! kube9d: the Kube-9 control plane.
//!
//! # Layout
//! - [`config`]: command line and control-loop timings.
//! - [`store`]: durable state (sled) behind one [`store::Store`] handle, with group commit.
//! - [`state`]: the working state in memory and every lifecycle decision, one file per concern:
//!   node status machine (`nodes.rs`), node health and heartbeats (`health.rs`), agent streams
//!   (`agents.rs`), pods (`pods.rs`), rescheduling off lost nodes (`reschedule.rs`), node
//!   reaping (`reaping.rs`).
//! - [`scheduler`]: best-fit placement on CPU.
//! - [`nodeops`]: every runtime call for a node (create, delete, restart, reap, fault
//!   injection in `faults.rs`, start-up reconciliation); `state` hands it [`state::Action`]s.
//! - [`relay`]: requests relayed to agents over their stream (logs, `logs -f`, exec).
//! - [`monitor`]: the control loops (health tick, container monitor), nothing else.
//! - [`runtime`]: where nodes live: Docker containers or local processes (`NodeRuntime`).
//! - [`api`]: the gRPC services (`ClusterService`, `AgentService`), plus reflection and health;
//!   errors become gRPC statuses in `api/status.rs` only.
//! - [`auth`]: bearer tokens and roles checked in one layer before every call, the cluster CA
//!   and serving certificate, the join token and client config written at start.
//! - [`dashboard`]: the web dashboard: a page and a JSON/server-sent-events bridge onto the
//!   same `ClusterService` code and token checks as gRPC.
//! - [`server`]: start-up (store, runtime, reconciliation) and serving until shutdown.
//!
//! Dependencies point one way: `dashboard` → `api` → `auth`, `api` → `nodeops` → `state` → `scheduler`/`store`/`runtime`
//! types; `monitor` drives `state` and `nodeops`. Nothing imports back.

pub mod api;
pub mod auth;
pub mod config;
pub mod dashboard;
pub mod monitor;
pub mod nodeops;
pub mod relay;
pub mod runtime;
pub mod scheduler;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod store;

pub use config::Config;
pub use server::run;
