//! The node health decision: heartbeats, silence, component health and what the container
//! monitor saw decide when a node fails, when a recovery attempt starts, when it has failed
//! and when the node is given up (see the lifecycle in [`super::nodes`]).
//!
//! Everything here runs under the state lock with time passed in; the loops that call it live
//! in [`crate::monitor`], and the restarts it asks for are carried out by [`crate::nodeops`].

use std::collections::HashMap;
use std::time::Duration;

use kube9_proto::pb::{self, control_message::Msg, NodeStatus};
use tokio::time::Instant;

use super::{now_ms, Action, Cluster};
use crate::config::Settings;
use crate::runtime::{Observed, RuntimeKind};

impl Cluster {
    /// A heartbeat arrived on connection `conn_id`. It is acknowledged, unless the node was
    /// given up: then it no longer counts, so that the agent fences itself by the time the
    /// node's pods move (see [`Cluster::fence_ends`]).
    pub fn heartbeat(&mut self, node: &str, conn_id: u64, hb: pb::Heartbeat) {
        let Some(entry) = self.nodes.get_mut(node) else {
            return;
        };
        if entry.agent.as_ref().map(|a| a.id) != Some(conn_id)
            || entry.status() == NodeStatus::PermanentlyFailed
        {
            return;
        }
        entry.last_heartbeat = Some(Instant::now());
        entry.usage = hb.pod_usage;
        // Kept in memory only: persisting every heartbeat would put an fsync on the hottest path.
        entry.node.last_heartbeat_ms = now_ms();
        let status = entry.status();
        // The agent dates its contact from when it sent this heartbeat, so it stops its pods
        // no later than they may move.
        self.send_now(node, Msg::HeartbeatAck(pb::HeartbeatAck { seq: hb.seq }));
        self.update_components(node, hb.components);
        match (status, self.failed_component(node)) {
            (
                NodeStatus::Healthy | NodeStatus::Initializing | NodeStatus::Recovering,
                Some(why),
            ) => {
                self.transition(node, NodeStatus::Failed, &why);
            }
            (NodeStatus::Failed, Some(why)) if self.nodes[node].node.reason != why => {
                let entry = self.nodes.get_mut(node).expect("present");
                entry.node.reason = why;
                self.save_node(node, pb::WatchEventType::Modified);
            }
            (NodeStatus::Initializing | NodeStatus::Failed | NodeStatus::Recovering, None) => {
                let why = if status == NodeStatus::Initializing {
                    "first heartbeat"
                } else {
                    "heartbeats resumed"
                };
                self.transition(node, NodeStatus::Healthy, why);
                self.explain_pending();
            }
            _ => {}
        }
    }

    /// Components changed; persist them.
    fn update_components(&mut self, name: &str, components: Vec<pb::Component>) {
        let Some(entry) = self.nodes.get_mut(name) else {
            return;
        };
        if entry.node.components != components {
            entry.node.components = components;
            self.save_node(name, pb::WatchEventType::Modified);
        }
    }

    /// The first failed critical component, if any: `component kubelet failed: <message>`.
    pub fn failed_component(&self, name: &str) -> Option<String> {
        let entry = self.nodes.get(name)?;
        entry
            .node
            .components
            .iter()
            .find(|c| c.critical && !c.healthy)
            .map(|c| {
                if c.message.is_empty() {
                    format!("component {} failed", c.name)
                } else {
                    format!("component {} failed: {}", c.name, c.message)
                }
            })
    }

    /// One pass of the health loop: silent nodes fail, failed nodes get recovery attempts
    /// until they are given up, given-up nodes are reaped, unconfirmed deletions expire.
    pub fn health_tick(&mut self, now: Instant) {
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for name in names {
            self.judge(&name, now);
        }
        self.expire_terminating(now);
    }

    /// The health decision for one node.
    fn judge(&mut self, name: &str, now: Instant) {
        let deadline = self.settings.heartbeat_deadline();
        let entry = &self.nodes[name];
        let silent_for = entry
            .last_heartbeat
            .map(|t| now.saturating_duration_since(t));
        match entry.status() {
            NodeStatus::Initializing => {
                if silent_for.is_none()
                    && now.saturating_duration_since(entry.since) > self.settings.init_timeout
                {
                    self.transition(name, NodeStatus::Failed, "the agent never sent a heartbeat");
                } else if let Some(silent) = silent_for.filter(|s| *s > deadline) {
                    self.transition(name, NodeStatus::Failed, &missed(silent, &self.settings));
                }
            }
            NodeStatus::Healthy => {
                if let Some(silent) = silent_for.filter(|s| *s > deadline) {
                    self.transition(name, NodeStatus::Failed, &missed(silent, &self.settings));
                }
            }
            NodeStatus::Failed if !entry.is_busy() => self.next_recovery_step(name, now),
            NodeStatus::Recovering
                if !entry.is_busy() && entry.attempt_deadline.is_some_and(|t| t <= now) =>
            {
                let why = format!(
                    "recovery attempt {} got no heartbeat",
                    entry.node.recovery_attempts
                );
                self.transition(name, NodeStatus::Failed, &why);
            }
            // Pods still bound here wait for the reap (or, on a node the runtime does not own,
            // for its agent's fence time); then they move.
            NodeStatus::PermanentlyFailed
                if !self.queue_reap(name)
                    && !self.nodes[name].is_busy()
                    && self.holds_pods(name) =>
            {
                self.evict_once_fenced(name, now);
            }
            _ => {}
        }
    }

    /// A failed node: give it up when its attempts are used, else start the next attempt once
    /// its backoff has passed (a restart when the runtime owns it, a wait for its agent if not).
    fn next_recovery_step(&mut self, name: &str, now: Instant) {
        let max_attempts = self.settings.max_recovery_attempts;
        let entry = &self.nodes[name];
        let attempts = entry.node.recovery_attempts;
        if attempts >= max_attempts {
            // No backoff here: waiting would only delay moving the pods.
            let why = format!(
                "gave up after {attempts} recovery attempts ({})",
                entry.node.reason
            );
            self.transition(name, NodeStatus::PermanentlyFailed, &why);
            return;
        }
        if entry.next_attempt_at.is_some_and(|t| t > now) {
            return;
        }
        let attempt = attempts + 1;
        self.nodes
            .get_mut(name)
            .expect("present")
            .node
            .recovery_attempts = attempt;
        let restart = self.owned_handle(name);
        let how = match restart {
            Some(handle) if self.claim(name).unwrap_or(false) => {
                self.actions.push(Action::Restart {
                    node: name.to_string(),
                    handle,
                    attempt,
                });
                "restarting it"
            }
            _ => "waiting for its agent",
        };
        self.transition(
            name,
            NodeStatus::Recovering,
            &format!("recovery attempt {attempt}/{max_attempts}: {how}"),
        );
    }

    /// Records how a restart went and releases the node. `attempt` is the recovery attempt
    /// the health decision started (`None` for a restart someone asked for): a failed attempt
    /// fails the node again, a requested one only reports.
    pub fn restart_done(
        &mut self,
        node: &str,
        attempt: Option<u32>,
        result: &crate::runtime::Result<pb::RuntimeHandle>,
    ) {
        self.release(node);
        let Some(entry) = self.nodes.get_mut(node) else {
            return;
        };
        match (result, attempt) {
            (Ok(handle), _) => {
                // The attempt's wait for a heartbeat starts now that the node runs again.
                if entry.status() == NodeStatus::Recovering {
                    entry.attempt_deadline = Some(Instant::now() + self.settings.recovery_timeout);
                }
                let kind = RuntimeKind::of(handle).unwrap_or(RuntimeKind::External);
                self.set_runtime_handle(node, handle.clone());
                if let Some(attempt) = attempt {
                    self.event(
                        "Node",
                        node,
                        false,
                        "RecoveryAttempt",
                        format!("restarted the node ({kind} runtime), attempt {attempt}"),
                    );
                }
            }
            (Err(e), Some(attempt)) => {
                let why = format!("recovery attempt {attempt} failed: {e}");
                self.event("Node", node, true, "RecoveryFailed", why.clone());
                self.transition(node, NodeStatus::Failed, &why);
            }
            (Err(_), None) => {}
        }
    }

    /// Applies what the container monitor saw of the runtime `kind`: nodes whose instance is
    /// not running fail.
    pub fn observe_instances(
        &mut self,
        kind: RuntimeKind,
        seen: &HashMap<String, (pb::RuntimeHandle, Observed)>,
    ) {
        // Only the nodes this runtime owns: the rest (joined by hand, simulated) are skipped
        // below anyway, and 10,000 of them made every pass clone 10,000 names (issue 14).
        let names: Vec<String> = (self.nodes.iter())
            .filter(|(_, e)| e.node.runtime.as_ref().is_some_and(|h| kind.owns(h)))
            .map(|(name, _)| name.clone())
            .collect();
        for name in names {
            let entry = &self.nodes[&name];
            let Some(handle) = entry.node.runtime.clone() else {
                continue;
            };
            if !kind.owns(&handle) || entry.is_busy() {
                continue;
            }
            let observed = match seen.get(&name) {
                Some((h, obs)) if h.id == handle.id => obs.clone(),
                Some((_, _)) | None => Observed::Missing,
            };
            let label = observed.label();
            if handle.state != label && !(entry.reaped && observed == Observed::Missing) {
                let e = self.nodes.get_mut(&name).expect("present");
                if let Some(h) = e.node.runtime.as_mut() {
                    h.state = label.clone();
                }
                self.save_node(&name, pb::WatchEventType::Modified);
            }
            let status = self.nodes[&name].status();
            // A Docker node that left keeps its stopped container; a missing one was removed
            // (`docker rm`) and nothing is left to start again and rejoin: given up, so that
            // it is replaced (capacity heals) rather than staying Left for good. A process
            // that left has exited, which is how it looks missing: `--nodes` starts it again.
            if status == NodeStatus::Left
                && observed == Observed::Missing
                && kind == RuntimeKind::Docker
            {
                let why = format!("it left and its {} is gone", kind.noun());
                self.transition(&name, NodeStatus::PermanentlyFailed, &why);
                continue;
            }
            if observed != Observed::Running
                && matches!(
                    status,
                    NodeStatus::Healthy | NodeStatus::Initializing | NodeStatus::Recovering
                )
            {
                let why = match observed {
                    Observed::Exited { oom: true, .. } => "container was OOM-killed".to_string(),
                    Observed::Exited { code, .. } => {
                        format!("{} exited with code {code}", kind.noun())
                    }
                    Observed::Missing => format!("{} is missing", kind.noun()),
                    Observed::Running => unreachable!(),
                };
                self.transition(&name, NodeStatus::Failed, &why);
            }
        }
    }
}

fn missed(silent: Duration, s: &Settings) -> String {
    format!(
        "missed {} heartbeats (last one {:.1}s ago)",
        s.missed_heartbeats,
        silent.as_secs_f64()
    )
}
