//! Cordon, uncordon and drain.
//!
//! A cordoned node (`Node.unschedulable`) takes no new pod; what it runs stays. Draining
//! cordons the node, then evicts its pods one by one without ever running one twice: each is
//! marked `Terminating` with `evicting` set and its agent is told to stop it (CPU stays
//! reserved on the node). Only once the agent confirms the copy stopped (a `deleted` status,
//! or a resync that no longer reports it) does the pod go back to the queue and get placed
//! elsewhere by best fit ([`Cluster::requeue`]). An agent that never confirms keeps its pods
//! where they are until it is fenced: the node then fails and is given up, and the usual
//! rescheduling of [`super::reschedule`] moves them.
//!
//! ```text
//! Running ──drain──▶ Terminating (evicting) ──agent confirmed stop──▶ Pending ──fits──▶ Scheduled elsewhere
//! ```

use std::time::Duration;

use kube9_proto::pb::{self, control_message::Msg, NodeStatus, PodPhase};
use tokio::time::Instant;

use super::reschedule::{Displaced, Eviction};
use super::{not_found, Cluster, Error, Result};

/// How long an eviction waits for the agent's confirmation before it asks again.
pub const EVICTION_RETRY: Duration = Duration::from_secs(10);

impl Cluster {
    /// Cordons (`true`) or uncordons (`false`) a node; an event records a change.
    pub fn set_unschedulable(&mut self, name: &str, unschedulable: bool) -> Result<pb::Node> {
        let entry = self
            .nodes
            .get_mut(name)
            .ok_or_else(|| not_found("node", name))?;
        if entry.node.unschedulable != unschedulable {
            if !unschedulable && entry.status() == NodeStatus::Draining {
                return Err(Error::FailedPrecondition(format!(
                    "node {name} is being deleted; it cannot be uncordoned"
                )));
            }
            entry.node.unschedulable = unschedulable;
            let schedulable = entry.schedulable();
            self.scheduler.set_schedulable(name, schedulable);
            self.scheduler.set_cordoned(name, unschedulable);
            self.save_node(name, pb::WatchEventType::Modified);
            let (reason, msg) = if unschedulable {
                (
                    "NodeNotSchedulable",
                    "node cordoned: no new pods are placed on it",
                )
            } else {
                (
                    "NodeSchedulable",
                    "node uncordoned: it takes new pods again",
                )
            };
            self.event("Node", name, false, reason, msg.into());
            if unschedulable {
                self.explain_pending();
            } else {
                self.place_pending();
            }
        }
        Ok(self.nodes[name].view())
    }

    /// Cordons `name` and starts evicting every pod that runs (or is about to run) on it.
    /// Returns the pods being evicted (`namespace/name`), largest CPU request first.
    pub fn drain(&mut self, name: &str, grace_ms: u64) -> Result<Vec<String>> {
        self.set_unschedulable(name, true)?;
        let entry = &self.nodes[name];
        let mut movers: Vec<(i64, String)> = entry
            .pods
            .iter()
            .filter_map(|p| self.pods.get(p))
            .filter(|p| !p.phase().is_terminal() && p.phase() != PodPhase::Terminating)
            .map(|p| (p.cpu_request_millis, p.key()))
            .collect();
        movers.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let mut evicting: Vec<String> = Vec::new();
        for (_, pod) in movers {
            self.start_eviction(&pod, name, grace_ms);
            evicting.push(pod);
        }
        // Pods whose eviction started earlier (a drain again, after a timeout) are reported too.
        for pod in self.nodes[name].pods.iter() {
            if self.pods.get(pod).is_some_and(|p| p.evicting) && !evicting.contains(pod) {
                evicting.push(pod.clone());
            }
        }
        self.event(
            "Node",
            name,
            false,
            "NodeDrain",
            format!("draining: evicting {} pod(s)", evicting.len()),
        );
        Ok(evicting)
    }

    /// Tells the agent to stop `pod` on `node`; the pod keeps its place (and CPU) until the
    /// agent confirms.
    fn start_eviction(&mut self, pod: &str, node: &str, grace_ms: u64) {
        let Some(grace_ms) = self.pods.get(pod).map(|p| self.grace_ms(p, grace_ms)) else {
            return;
        };
        let Some(p) = self.pods.get_mut(pod) else {
            return;
        };
        p.set_phase(PodPhase::Terminating);
        p.evicting = true;
        p.reason = format!("evicting: node {node} is drained");
        let msg = Msg::DeletePod(pb::DeletePod {
            pod_name: p.name.clone(),
            pod_uid: p.uid.clone(),
            grace_period_ms: grace_ms,
            pod_namespace: p.ns().to_string(),
        });
        let deadline = Instant::now() + Duration::from_millis(grace_ms) + EVICTION_RETRY;
        self.terminating.insert(pod.to_string(), deadline);
        self.send(node, msg);
        self.save_pod(pod, pb::WatchEventType::Modified);
        self.event(
            "Pod",
            pod,
            false,
            "Evicted",
            format!("stopping the pod on {node} to move it (node drained)"),
        );
    }

    /// The agent of `node` confirmed (or showed by no longer reporting it) that `pod` stopped
    /// there: a deletion is finished, an eviction moves the pod.
    pub fn pod_stopped(&mut self, pod: &str, node: &str, msg: &str) {
        if self.pods.get(pod).is_some_and(|p| p.evicting) {
            let displaced = Displaced {
                from: node.to_string(),
                why: Eviction::Drained,
                message: Eviction::Drained.describe(node),
            };
            self.unbind(pod);
            self.requeue(pod, displaced);
            self.explain_pending();
        } else {
            self.finish_delete(pod, msg);
        }
    }

    /// An eviction whose confirmation is late: asked again while the agent is attached; moved
    /// once the agent is gone and its fence time has passed (it stopped its pods by then).
    pub(super) fn eviction_overdue(&mut self, pod: &str, now: Instant) {
        let Some(p) = self.pods.get(pod) else {
            self.terminating.remove(pod);
            return;
        };
        let node = p.node.clone();
        let attached = self.nodes.get(&node).is_some_and(|e| e.agent.is_some());
        let fenced = !attached && self.fence_ends(&node).is_some_and(|t| t <= now);
        if node.is_empty() || fenced {
            self.pod_stopped(pod, &node, "");
            return;
        }
        let msg = Msg::DeletePod(pb::DeletePod {
            pod_name: p.name.clone(),
            pod_uid: p.uid.clone(),
            grace_period_ms: 0,
            pod_namespace: p.ns().to_string(),
        });
        self.send(&node, msg);
        self.terminating
            .insert(pod.to_string(), now + EVICTION_RETRY);
    }
}
