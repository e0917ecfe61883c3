//! Node lifecycle. [`Cluster::transition`] is the one place a node's status changes.
//!
//! ```text
//! initializing ──first heartbeat──▶ healthy ◀──heartbeat── recovering
//!      │                              │  missed heartbeats,        ▲
//!      │ never heartbeats             │  container not running,    │ restart through
//!      ▼                              ▼  critical component failed │ the runtime
//!   failed ◀───────────────────────── failed ──recovery attempt────┘
//!                                     │ attempts used up (or deregistered, from anywhere)
//!                                     ▼
//!                             permanently_failed ──▶ pods rescheduled, container reaped,
//!                                     │              then (managed) replaced by a fresh node
//!                                     │ its agent attaches again (a node kube9d cannot remove)
//!                                     ▼
//!                                initializing (empty: its pods moved)
//! initializing, healthy, failed, recovering ──agent deregisters (SIGTERM)──▶ left
//! left ──its agent attaches again──▶ initializing ──first heartbeat──▶ healthy (empty)
//! any status ──delete──▶ draining ──▶ (removed)
//! ```
//! A failed or recovering node that heartbeats again with healthy components goes straight
//! back to healthy and keeps its pods. What moves a node along these edges is decided in
//! [`super::health`]; this file owns the edges themselves and the node records.

use kube9_proto::pb::{self, NodeStatus};
use tokio::time::Instant;

use super::reschedule::Eviction;
use super::{now_ms, Cluster, Error, NodeEntry, Result};
use crate::runtime::RuntimeKind;
use crate::scheduler::Resources;

/// Whether the lifecycle allows `from -> to`.
pub fn allowed(from: NodeStatus, to: NodeStatus) -> bool {
    use NodeStatus::*;
    match (from, to) {
        (_, Draining) => from != Draining,
        (Draining, _) => false,
        (Left | PermanentlyFailed, Initializing) => true,
        (PermanentlyFailed, _) => false,
        (_, PermanentlyFailed) => true,
        (Initializing | Healthy | Failed | Recovering, Left) => true,
        (Initializing | Failed | Recovering, Healthy) => true,
        (Initializing | Healthy | Recovering, Failed) => true,
        (Failed, Recovering) => true,
        _ => false,
    }
}

impl Cluster {
    /// Checks that a node may be created from `spec`.
    pub fn admit_node(&self, spec: &pb::NodeSpec) -> Result<()> {
        kube9_proto::validate::validate_node_spec(spec)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        if self.nodes.contains_key(&spec.name) {
            return Err(Error::AlreadyExists(format!(
                "node \"{}\" already exists",
                spec.name
            )));
        }
        Ok(())
    }

    /// Adds a node record in `Initializing`.
    pub fn add_node(&mut self, spec: &pb::NodeSpec, runtime_kind: RuntimeKind) -> Result<pb::Node> {
        self.admit_node(spec)?;
        let node = pb::Node {
            name: spec.name.clone(),
            labels: spec.labels.clone(),
            status: NodeStatus::Initializing as i32,
            reason: "waiting for the agent's first heartbeat".into(),
            cpu_capacity_millis: spec.cpu_millis,
            memory_capacity_bytes: spec.memory_bytes,
            created_ms: now_ms(),
            // Agents kube9d starts are told who they are; agents that join by themselves
            // (external nodes) are fenced by their live stream only.
            instance_id: if runtime_kind == RuntimeKind::External {
                String::new()
            } else {
                format!("{:016x}", rand::random::<u64>())
            },
            runtime: Some(runtime_kind.empty_handle()),
            ..Default::default()
        };
        self.nodes
            .insert(spec.name.clone(), NodeEntry::new(node, None));
        let free = Resources::free(&self.nodes[&spec.name].node, Resources::default());
        self.scheduler.upsert(&spec.name, free, false);
        self.save_node(&spec.name, pb::WatchEventType::Added);
        let cpu = kube9_proto::quantity::format_cpu(spec.cpu_millis);
        let memory = match spec.memory_bytes {
            0 => String::new(),
            bytes => format!(", {} memory", kube9_proto::quantity::format_memory(bytes)),
        };
        self.event(
            "Node",
            &spec.name,
            false,
            "NodeCreated",
            format!("node created with {cpu} CPU{memory} ({runtime_kind})"),
        );
        Ok(self.nodes[&spec.name].view())
    }

    /// Records where the node's agent runs.
    pub fn set_runtime_handle(&mut self, name: &str, handle: pb::RuntimeHandle) {
        self.instance_epoch += 1;
        if let Some(entry) = self.nodes.get_mut(name) {
            if entry.node.runtime.as_ref() != Some(&handle) {
                entry.node.runtime = Some(handle);
                self.save_node(name, pb::WatchEventType::Modified);
            }
        }
    }

    /// Moves a node to `to`, recording why. Returns false (and changes nothing) when the
    /// lifecycle does not allow it.
    pub fn transition(&mut self, name: &str, to: NodeStatus, reason: &str) -> bool {
        let Some(entry) = self.nodes.get_mut(name) else {
            return false;
        };
        let from = entry.status();
        if from == to || !allowed(from, to) {
            return false;
        }
        let now = Instant::now();
        entry.node.set_status(to);
        // A healthy node needs no explanation; the event keeps why it became healthy.
        entry.node.reason = if to == NodeStatus::Healthy {
            String::new()
        } else {
            reason.to_string()
        };
        entry.since = now;
        match to {
            NodeStatus::Healthy => {
                // Whatever fault was injected, the node is past it.
                entry.node.injected_fault.clear();
                entry.node.recovery_attempts = 0;
                entry.next_attempt_at = None;
                entry.attempt_deadline = None;
            }
            NodeStatus::Failed => {
                entry.attempt_deadline = None;
                // A short pause first: a node that only hiccuped comes back without a restart.
                entry.next_attempt_at =
                    Some(now + self.settings.backoff(entry.node.recovery_attempts + 1));
            }
            NodeStatus::Recovering => {
                entry.attempt_deadline = Some(now + self.settings.recovery_timeout);
            }
            _ => {
                entry.next_attempt_at = None;
                entry.attempt_deadline = None;
            }
        }
        let schedulable = entry.schedulable();
        self.scheduler.set_schedulable(name, schedulable);
        self.save_node(name, pb::WatchEventType::Modified);
        let (warning, ev_reason) = match to {
            NodeStatus::Healthy if from == NodeStatus::Initializing => (false, "NodeReady"),
            NodeStatus::Healthy => (false, "NodeRecovered"),
            NodeStatus::Failed => (true, "NodeFailed"),
            NodeStatus::Recovering => (false, "NodeRecovering"),
            NodeStatus::PermanentlyFailed => (true, "NodePermanentlyFailed"),
            NodeStatus::Draining => (false, "NodeDraining"),
            NodeStatus::Left => (false, "NodeLeft"),
            NodeStatus::Initializing => (false, "NodeRejoining"),
            _ => (false, "NodeStatusChanged"),
        };
        let msg = if reason.is_empty() {
            format!("{} -> {}", from.label(), to.label())
        } else {
            format!("{} -> {}: {reason}", from.label(), to.label())
        };
        self.event("Node", name, warning, ev_reason, msg);
        tracing::info!(node = %name, from = from.label(), to = to.label(), reason, "node status");
        match to {
            NodeStatus::Healthy => self.place_pending(),
            // What the runtime can remove is removed first (the node's instance and, on Docker,
            // its pods' containers), so that the pods never run twice: they move when the reap
            // is done. What it cannot remove, moves once its agent has fenced itself (the
            // health decision waits for that and says so), or now if that time has passed.
            NodeStatus::PermanentlyFailed
                if !self.queue_reap(name) && self.fence_ends(name).is_none_or(|t| t <= now) =>
            {
                self.evict_pods(name, Eviction::PermanentlyFailed);
            }
            _ => {}
        }
        true
    }

    /// Whether pods that still hold resources are bound to `name`.
    pub fn holds_pods(&self, name: &str) -> bool {
        self.nodes.get(name).is_some_and(|e| {
            e.pods
                .iter()
                .filter_map(|p| self.pods.get(p))
                .any(|p| !p.phase().is_terminal())
        })
    }

    /// Removes a node record for good (after its pods were drained and its container removed).
    pub fn remove_node(&mut self, name: &str) -> Option<pb::Node> {
        let view = self.forget_node(name)?;
        self.event("Node", name, false, "NodeDeleted", "node deleted".into());
        Some(view)
    }

    /// The spec of a fresh instance to replace `name` with, when it is a given-up node kube9d
    /// manages whose instance was removed and whose pods moved (and replacing is on).
    pub fn replacement(&self, name: &str) -> Option<pb::NodeSpec> {
        let entry = self.nodes.get(name)?;
        let managed = entry.node.runtime.as_ref().is_some_and(|h| {
            !RuntimeKind::External.matches(h) && self.runtime_kind.is_some_and(|k| k.matches(h))
        });
        let ready = self.settings.replace_nodes
            && managed
            && entry.status() == NodeStatus::PermanentlyFailed
            && entry.reaped
            && !entry.is_busy()
            && !self.holds_pods(name);
        ready.then(|| pb::NodeSpec {
            name: name.to_string(),
            cpu_millis: entry.node.cpu_capacity_millis,
            labels: entry.node.labels.clone(),
            memory_bytes: entry.node.memory_capacity_bytes,
        })
    }

    /// Removes node `name`'s record (its pods no longer point at it), without an event.
    pub fn forget_node(&mut self, name: &str) -> Option<pb::Node> {
        let entry = self.nodes.remove(name)?;
        self.scheduler.remove(name);
        self.reap_retry_at.remove(name);
        for pod in entry.pods.iter() {
            if let Some(p) = self.pods.get_mut(pod) {
                if p.node == name {
                    // Terminal pods keep their history; they no longer point at a node.
                    p.node.clear();
                }
            }
        }
        let view = entry.view();
        self.forget_node_record(view.clone());
        // "0/N nodes ..." changed for everything still waiting.
        self.explain_pending();
        Some(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NodeStatus::*;

    #[test]
    fn lifecycle_edges() {
        assert!(allowed(Initializing, Healthy));
        assert!(allowed(Healthy, Failed));
        assert!(allowed(Failed, Recovering));
        assert!(allowed(Recovering, Healthy));
        assert!(allowed(Recovering, Failed));
        assert!(allowed(Failed, Healthy));
        assert!(allowed(Healthy, PermanentlyFailed));
        assert!(allowed(PermanentlyFailed, Draining));
        assert!(!allowed(PermanentlyFailed, Healthy));
        assert!(!allowed(Healthy, Recovering));
        assert!(!allowed(Draining, Healthy));
        assert!(!allowed(Draining, Draining));
    }
}
