//! The control loops, and nothing else: each ticks until shutdown and hands the decision to
//! the module that owns it.
//!
//! - [`health_loop`]: every tick, [`crate::state::Cluster::health_tick`] (the node health
//!   decision in `state/health.rs`): silent nodes fail, failed ones get recovery attempts or
//!   are given up, given-up ones are reaped, unconfirmed deletions expire.
//! - [`container_loop`]: every `--container-check-ms`, [`NodeOps::observe_instances`]: node
//!   containers (or processes) that are not running fail their node.

use std::time::Duration;

use tokio::time::Instant;

use crate::nodeops::NodeOps;
use crate::shutdown::Shutdown;
use crate::state::Control;

/// Fails silent nodes, drives recovery and reaping, until shutdown.
pub async fn health_loop(control: Control, mut shutdown: Shutdown) {
    let tick = control.read(|c| {
        (c.settings.heartbeat_interval / 4)
            .clamp(Duration::from_millis(20), Duration::from_millis(250))
    });
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.wait() => return,
        }
        let (_, commit) = control.mutate(|c| c.health_tick(Instant::now()));
        drop(commit);
    }
}

/// Watches node containers (or processes) through the runtime, until shutdown.
pub async fn container_loop(ops: NodeOps, mut shutdown: Shutdown) {
    if ops.runtime_kind().is_none() {
        return;
    }
    let period = ops.control().read(|c| c.settings.container_check);
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.wait() => return,
        }
        ops.observe_instances().await;
    }
}
