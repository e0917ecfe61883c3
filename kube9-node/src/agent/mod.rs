//! The agent stream: the one connection from this node to kube9d.
//!
//! # Layout
//! - [`Agent`] (this file): the reconnect loop around sessions, with backoff.
//! - [`session`]: one connected stream: register, heartbeats, command dispatch, deregister.
//! - [`components`]: the component health sent in heartbeats.
//! - [`backoff`]: reconnect delays.
//! - [`fence`]: self-fencing: cut off from kube9d for the fence time, the agent stops its pods.
//! - [`instance`]: the per-process instance id sent in Register.
//!
//! ```text
//!   connecting ──Registered──▶ serving ──stream ends / fails──▶ backing off ──▶ connecting
//!        │ attach refused (Unauthenticated, PermissionDenied, FailedPrecondition): logged,
//!        │ longest backoff, retry
//!   serving ──SIGTERM──▶ Deregister + stop pods ──▶ exit 0
//!   connecting / backing off ──SIGTERM──▶ farewell (new stream: Register, Deregister; ≤ 1.5 s)
//!                                          + stop pods ──▶ exit 0
//!   serving ──Terminate──▶ stop pods ──▶ exit 0
//!   connecting / backing off, no contact for the fence time ──▶ stop pods (fenced), go on
//! ```
//! Pods keep running while disconnected, up to the fence time (see [`fence`]: kube9d may move
//! them after it); the next Register carries their statuses. The farewell on SIGTERM while not
//! serving is best effort: it tells kube9d that the node was stopped on purpose (so it does not
//! try to recover it), and gives up quietly when kube9d cannot be reached in time.
//!
//! A refusal is never final: a join token may be created after the agent starts, another
//! agent may leave the node. The agent logs why (as an error for credentials: a missing,
//! unknown or revoked token, a token without the node role, another cluster) and keeps
//! trying; to the fence it is no contact, as a lost connection is.

pub mod backoff;
pub mod components;
pub mod dial;
pub mod fence;
pub mod instance;
pub mod meter;
pub mod session;

use std::time::Duration;

use kube9_proto::pb;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use self::backoff::Backoff;
use self::components::Components;
use self::fence::Fence;
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
/// health, paused heartbeats, the heartbeat sequence, the instance id, the fence).
pub struct Agent {
    config: Config,
    supervisor: Supervisor,
    /// Random per process; see [`instance`].
    instance_id: String,
    components: Components,
    heartbeats_paused: bool,
    seq: u64,
    /// Contact with kube9d and the fence time it set.
    fence: Fence,
    /// How kube9d is dialed (TLS, token).
    dialer: dial::Dialer,
    /// What the pods use, reported with each heartbeat.
    meter: meter::Meter,
}

impl Agent {
    /// An agent that runs pods through `supervisor`, with the instance id kube9d gave it or a
    /// fresh one.
    pub fn new(config: Config, supervisor: Supervisor) -> Self {
        let instance_id = config
            .instance_id
            .clone()
            .unwrap_or_else(instance::generate);
        Agent {
            fence: Fence::new(config.fence, Instant::now()),
            dialer: dial::Dialer::new(&config),
            config,
            supervisor,
            instance_id,
            components: Components::default(),
            heartbeats_paused: false,
            seq: 0,
            meter: meter::Meter::default(),
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
        // The signal, when it arrived while no registered stream could carry a Deregister.
        let mut farewell = None;
        let exit = loop {
            match session::run(&mut self, &mut updates, &mut shutdown).await {
                SessionEnd::Shutdown {
                    signal,
                    deregistered,
                } => {
                    farewell = (!deregistered).then_some(signal);
                    break Exit::Shutdown;
                }
                SessionEnd::Terminate(reason) => {
                    info!(%reason, "terminated by the server");
                    break Exit::Terminated(reason);
                }
                SessionEnd::Lost { registered, error } => {
                    if registered {
                        backoff.reset();
                        failures = 0;
                    }
                    self.log_lost(&error, failures);
                    failures += 1;
                }
                SessionEnd::Rejected(status) => {
                    // Not welcome now; maybe later (a token made, another agent gone): slowly.
                    backoff.saturate();
                    if failures == 0 || failures.is_power_of_two() {
                        self.log_rejection(&status, failures);
                    }
                    failures += 1;
                }
            }
            let delay = backoff.next_delay();
            tokio::select! {
                signal = shutdown_requested(&mut shutdown) => {
                    farewell = Some(signal);
                    break Exit::Shutdown;
                }
                _ = tokio::time::sleep(delay) => {}
                // Then reconnect at once.
                () = fence::due(self.fence.deadline()) => self.fence().await,
            }
        };
        match farewell {
            Some(signal) => {
                info!(signal, "shutting down while not connected: deregistering (best effort) and stopping pods");
                // Built before the pods start stopping, so Register carries what ran.
                let farewell = session::farewell(&self, signal);
                tokio::join!(farewell, self.supervisor.stop_all(DEFAULT_GRACE));
            }
            None => self.supervisor.stop_all(DEFAULT_GRACE).await,
        }
        info!(?exit, "agent stopped");
        exit
    }

    /// Stops every pod, and what an earlier agent left, because kube9d may move them once the
    /// fence time has passed without contact; they are stopped by then.
    async fn fence(&mut self) {
        let lost_for = self.fence.fence(Instant::now());
        let pods = self.supervisor.snapshot().len();
        let left = self.supervisor.adoptable().len();
        if pods + left == 0 {
            debug!(
                lost_ms = lost_for.as_millis() as u64,
                "fenced: no contact with kube9d; no pods to stop"
            );
            return;
        }
        warn!(
            pods,
            left_by_an_earlier_agent = left,
            fence_ms = self.fence.time().as_millis() as u64,
            "fenced: no contact with kube9d for {:.1}s; stopping pods",
            lost_for.as_secs_f64()
        );
        // Taking none over removes the rest. The statuses this sends are older than the next
        // Register, which drops them.
        tokio::join!(
            self.supervisor.stop_all(self.fence.stop_grace()),
            self.supervisor.adopt_only(&[])
        );
        info!("fenced: pods stopped; reconnecting");
    }

    /// Logs a failed or lost connection: the 1st, 2nd, 3rd, 5th, 9th, ... in a row as a
    /// warning (the others at debug), with the whole cause (a TLS failure's root cause is at
    /// the end of the chain). A CA that does not match the pin is an error every time: it
    /// will not fix itself, and it may be someone impersonating kube9d.
    fn log_lost(&self, error: &session::Error, failures: u32) {
        let server = &self.config.server;
        let mut chain = error_chain(error);
        if let Some(hint) = dial::hint(server, &chain) {
            chain = format!("{chain} ({hint})");
        }
        if error.is_pin_mismatch() {
            tracing::error!(%server, failures,
                "refusing to talk to {server}: {chain}; check --ca-cert-hash (kube9ctl token join-command prints this cluster's); retrying");
        } else if failures == 0 || failures.is_power_of_two() {
            warn!(%server, error = %chain, failures, "agent stream lost, reconnecting");
        } else {
            debug!(%server, error = %chain, failures, "reconnect failed");
        }
    }

    /// Logs a refusal in words: credentials (Unauthenticated, PermissionDenied) are errors
    /// that name the flags to check; a node held by another agent is a warning.
    fn log_rejection(&self, status: &tonic::Status, failures: u32) {
        let node = &self.config.name;
        let server = &self.config.server;
        let detail = status.message();
        match status.code() {
            tonic::Code::Unauthenticated => tracing::error!(%server, failures,
                "kube9d refused this agent: {detail}; check --token or --token-file (kube9ctl token join-command makes a node token); retrying"),
            tonic::Code::PermissionDenied => tracing::error!(%server, failures,
                "kube9d refused this agent: {detail}; check --token (it must be a node token) and --cluster-id; retrying"),
            tonic::Code::FailedPrecondition => warn!(%server, %node, %detail, failures,
                "refused: another agent is attached as node {node}; retrying until it leaves"),
            code => warn!(%server, ?code, %detail, failures, "server refused this node, retrying"),
        }
    }
}

/// Resolves (with the reason) once a shutdown was requested.
pub async fn shutdown_requested(shutdown: &mut ShutdownRx) -> &'static str {
    match shutdown.wait_for(Option::is_some).await {
        Ok(reason) => reason.unwrap_or("shutdown"),
        Err(_) => "shutdown",
    }
}

/// An error with its sources: "failed to connect: transport error: connection refused". A
/// cause whose text is already there (wrappers that print their source) is not repeated.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Converts a DeletePod grace period (0, `None`: the pod's own, or the default).
pub fn grace_period(grace_period_ms: u64) -> Option<Duration> {
    (grace_period_ms > 0).then(|| Duration::from_millis(grace_period_ms))
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to connect")]
    struct Outer(#[source] Wrapper);

    /// Prints its source, as tonic's and hyper's wrappers do.
    #[derive(Debug, thiserror::Error)]
    #[error("transport error: {0}")]
    struct Wrapper(#[source] std::io::Error);

    #[test]
    fn a_chain_names_each_cause_once() {
        let root = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        assert_eq!(
            error_chain(&Outer(Wrapper(root))),
            "failed to connect: transport error: invalid peer certificate: UnknownIssuer"
        );
    }
}
