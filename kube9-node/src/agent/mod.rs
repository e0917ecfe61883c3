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
//!        │ attach refused (PermissionDenied, FailedPrecondition): longest backoff, retry
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

pub mod backoff;
pub mod components;
pub mod dial;
pub mod fence;
pub mod instance;
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
    /// kube9d will never accept this agent (PermissionDenied: wrong cluster id, and later a bad
    /// join token): retrying cannot help.
    Refused(String),
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
                    let error = error_chain(&error);
                    if failures == 0 || failures.is_power_of_two() {
                        warn!(server = %self.config.server, %error, failures, "agent stream lost, reconnecting");
                    } else {
                        debug!(server = %self.config.server, %error, failures, "reconnect failed");
                    }
                    failures += 1;
                }
                SessionEnd::Rejected(status) if status.code() == tonic::Code::Unauthenticated => {
                    // A token may be made or fixed meanwhile: keep trying, slowly.
                    backoff.saturate();
                    if failures == 0 || failures.is_power_of_two() {
                        self.log_rejection(&status, failures);
                    }
                    failures += 1;
                }
                SessionEnd::Rejected(status) if status.code() == tonic::Code::PermissionDenied => {
                    self.log_rejection(&status, failures);
                    break Exit::Refused(status.message().to_string());
                }
                SessionEnd::Rejected(status) => {
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

    fn log_rejection(&self, status: &tonic::Status, failures: u32) {
        let node = &self.config.name;
        let server = &self.config.server;
        let detail = status.message();
        if status.code() == tonic::Code::Unauthenticated {
            tracing::error!(%server, %detail, failures,
                "kube9d refused this agent's token; check --token or --token-file (kube9ctl token join-command makes one); retrying");
        } else if status.code() == tonic::Code::FailedPrecondition {
            warn!(%server, %node, %detail, failures,
                "refused: another agent is attached as node {node}; retrying until it leaves");
        } else {
            warn!(%server, code = ?status.code(), %detail, failures, "server refused this node, retrying");
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
