//! Rescheduling: moving every pod off a node that is gone for good (permanently failed,
//! deleted, or left initializing by a previous run), largest CPU request first, each placed by
//! best fit at once or left `Pending` with the reason it waits.

use std::fmt;

use kube9_proto::pb::{self, control_message::Msg, PodPhase};

use super::{Cluster, PendingKey};
use crate::scheduler::Resources;

/// Why a node's pods move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// The node was given up after failing.
    PermanentlyFailed,
    /// The node is being deleted (drained).
    Deleted,
    /// A previous kube9d left the node initializing; it is removed at start-up.
    LeftInitializing,
    /// The node's agent said goodbye (it stopped its pods first).
    Left,
    /// The node is drained (`kube9ctl drain`): its agent stopped the pod first.
    Drained,
}

impl Eviction {
    pub(super) fn describe(self, node: &str) -> String {
        match self {
            Eviction::PermanentlyFailed => format!("node {node} permanently failed"),
            Eviction::Deleted => format!("node {node} deleted"),
            Eviction::LeftInitializing => "node left initializing by a previous run".into(),
            Eviction::Left => format!("node {node} left"),
            Eviction::Drained => format!("node {node} drained"),
        }
    }
}

/// A pod moved off a node and not placed again yet: when it is, its event says where it came
/// from (`PodRescheduled`) rather than a first `Scheduled`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Displaced {
    pub from: String,
    pub why: Eviction,
    /// The node's reason as it read when the pod moved.
    pub message: String,
}

impl fmt::Display for Displaced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "moved off {} ({})", self.from, self.message)
    }
}

impl Cluster {
    /// Moves every non-terminal pod off `node`: largest CPU request first; the node's agent is
    /// told to stop its copies. Pods that were being deleted are simply removed.
    pub fn evict_pods(&mut self, node: &str, why: Eviction) {
        let Some(entry) = self.nodes.get(node) else {
            return;
        };
        let message = why.describe(node);
        let mut movers: Vec<(i64, String)> = entry
            .pods
            .iter()
            .filter_map(|p| self.pods.get(p))
            .filter(|p| !p.phase().is_terminal())
            .map(|p| (p.cpu_request_millis, p.key()))
            .collect();
        movers.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        for (_, name) in movers {
            let (pod_name, pod_namespace, pod_uid) = self
                .pods
                .get(&name)
                .map(|p| (p.name.clone(), p.ns().to_string(), p.uid.clone()))
                .unwrap_or_default();
            self.send(
                node,
                Msg::DeletePod(pb::DeletePod {
                    pod_name,
                    pod_uid,
                    grace_period_ms: 0,
                    pod_namespace,
                }),
            );
            self.unbind(&name);
            let Some(pod) = self.pods.get_mut(&name) else {
                continue;
            };
            if pod.phase() == PodPhase::Terminating && !pod.evicting {
                // It was being deleted anyway.
                self.terminating.remove(&name);
                let pod = self.pods.remove(&name).expect("present");
                self.forget_pod_record(pod);
                self.event(
                    "Pod",
                    &name,
                    false,
                    "Deleted",
                    format!("pod deleted ({message})"),
                );
                continue;
            }
            let displaced = Displaced {
                from: node.to_string(),
                why,
                message: message.clone(),
            };
            self.requeue(&name, displaced);
        }
        self.explain_pending();
    }

    /// Puts an unbound pod back in the queue as moved off a node, and places it at once if a
    /// node fits (one at a time, largest first, so big pods get the room).
    pub(super) fn requeue(&mut self, name: &str, displaced: Displaced) {
        self.terminating.remove(name);
        let Some(pod) = self.pods.get_mut(name) else {
            return;
        };
        pod.set_phase(PodPhase::Pending);
        pod.evicting = false;
        pod.uid.clear();
        pod.started_ms = 0;
        pod.reschedules += 1;
        pod.reason = displaced.to_string();
        super::pods::back_to_waiting(pod);
        let key = PendingKey::of(pod);
        self.pending.insert(key);
        self.displaced.insert(name.to_string(), displaced);
        self.save_pod(name, pb::WatchEventType::Modified);
        if let Some(target) = self
            .scheduler
            .pick(Resources::of(&self.pods[name]))
            .map(str::to_string)
        {
            self.bind(name, &target);
        }
    }
}
