//! `kube9ctl`, the Kube-9 command-line client: a kubectl look-alike over the ClusterService gRPC
//! API.
//!
//! # Layout
//! - [`cli`]: the command-line grammar (clap).
//! - [`client`]: dialing kube9d and turning gRPC statuses into errors.
//! - [`error`]: the errors this edge prints (`Error from server (NotFound): ...`).
//! - [`commands`]: one file per subcommand (`apply`, `get`, `delete`, `node`, ...).
//! - [`output`]: tables, Kubernetes-shaped JSON/YAML, ages and timestamps.

#![forbid(unsafe_code)]

pub mod cli;
pub mod client;
pub mod commands;
pub mod error;
pub mod output;

/// Runs one parsed command line.
pub async fn run(cli: cli::Cli) -> anyhow::Result<()> {
    commands::run(cli).await
}
