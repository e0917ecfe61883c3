//! The agent stream: the one connection from this node to kube9d.
//!
//! # Layout
//! - [`Agent`] (this file): the reconnect loop around sessions, with backoff.
//! - [`session`]: one connected stream: register, heartbeats, command dispatch, deregister.
//! - [`components`]: the component health sent in heartbeats.
//! - [`backoff`]: reconnect delays.
//!
//! ```text
//!   connecting ──Registered──▶ serving ──stream ends / fails──▶ backing off ──▶ connecting
//!        │ attach refused (PermissionDenied, FailedPrecondition): longest backoff, retry
//!   serving ──SIGTERM──▶ Deregister + stop pods ──▶ exit 0
//!   serving ──Terminate──▶ stop pods ──▶ exit 0
//! ```
//! Pods keep running while disconnected; the next Register carries their statuses.

pub mod backoff;
pub mod components;
pub mod session;

use std::time::Duration;

use kube9_proto::pb;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use self::backoff::Backoff;
use self::components::Components;
use self::session::SessionEnd;
use crate::config::Config;
use crate::containers::{Supervisor, DEFAULT_GRACE};

/// Set to `Some(reason)` (e.g. `"SIGTERM"`) to make the agent deregister and exit.
pub type ShutdownRx = watch::Receiver<Option<&'static str>>;

/// Why the agent stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// A shutdown was requested (SIGTERM/SIGINT).
    Shutdown,
    /// kube9d sent Terminate with this reason.
    Terminated(String),
}

/// The node agent: its configuration, its pods, and what survives reconnects (component
/// health, paused heartbeats, the heartbeat sequence).
pub struct Agent {
    config: Config,
    supervisor: Supervisor,
    components: Components,
    heartbeats_paused: bool,
    seq: u64,
}

impl Agent {
    /// An agent that runs pods through `supervisor`.
    pub fn new(config: Config, supervisor: Supervisor) -> Self {
        Agent {
            config,
            supervisor,
            components: Components::default(),
            heartbeats_paused: false,
            seq: 0,
        }
    }

    /// Connects, serves and reconnects until shut down or terminated; then stops every pod.
    /// `updates` is the supervisor's status channel.
    pub async fn run(
        mut self,
        mut updates: mpsc::UnboundedReceiver<pb::PodStatus>,
        mut shutdown: ShutdownRx,
    ) -> Exit {
        let mut backoff = Backoff::default();
        // Failed attempts since the last registration; warn on the 1st, 2nd, 3rd, 5th, 9th, ...
        let mut failures: u32 = 0;
        let exit = loop {
            match session::run(&mut self, &mut updates, &mut shutdown).await {
                SessionEnd::Shutdown => break Exit::Shutdown,
                SessionEnd::Terminate(reason) => {
                    info!(%reason, "terminated by the server");
                    break Exit::Terminated(reason);
                }
                SessionEnd::Lost { registered, error } => {
                    if registered {
                        backoff.reset();
                        failures = 0;
                    }
                    let error = error_chain(&error);
                    if failures == 0 || failures.is_power_of_two() {
                        warn!(server = %self.config.server, %error, failures, "agent stream lost, reconnecting");
                    } else {
                        debug!(server = %self.config.server, %error, failures, "reconnect failed");
                    }
                    failures += 1;
                }
                SessionEnd::Rejected(status) => {
                    backoff.saturate();
                    if failures == 0 || failures.is_power_of_two() {
                        warn!(server = %self.config.server, code = ?status.code(), detail = %status.message(),
                            failures, "server refused this node, retrying");
                    }
                    failures += 1;
                }
            }
            let delay = backoff.next_delay();
            tokio::select! {
                _ = shutdown_requested(&mut shutdown) => break Exit::Shutdown,
                _ = tokio::time::sleep(delay) => {}
            }
        };
        self.supervisor.stop_all(DEFAULT_GRACE).await;
        info!(?exit, "agent stopped");
        exit
    }
}

/// Resolves (with the reason) once a shutdown was requested.
pub async fn shutdown_requested(shutdown: &mut ShutdownRx) -> &'static str {
    match shutdown.wait_for(Option::is_some).await {
        Ok(reason) => reason.unwrap_or("shutdown"),
        Err(_) => "shutdown",
    }
}

/// An error with its sources: "failed to connect: transport error: connection refused".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Converts a DeletePod grace period (0: default).
pub fn grace_period(grace_period_ms: u64) -> Duration {
    match grace_period_ms {
        0 => DEFAULT_GRACE,
        ms => Duration::from_millis(ms),
    }
}
