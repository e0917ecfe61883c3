//! Node reaping: removing the container or process a permanently failed node left behind, once,
//! with a pause between failed tries. (The agent's own zombie reaper is another thing:
//! `kube9-node/src/containers/reaper.rs`.)
//!
//! The health decision queues a reap ([`Cluster::queue_reap`]) as an [`Action`]; the node
//! operations carry it out and report back through [`Cluster::reap_done`].
//!
//! A node the runtime does not own (its agent joined by hand, maybe on another host) cannot be
//! removed. Its agent fences itself instead: cut off from kube9d for the fence time
//! (`--node-fence-ms`, sent in `Registered`), it stops its pods. So such a node's pods move
//! only once that time has passed since its last heartbeat ([`Cluster::evict_once_fenced`]),
//! unless its agent said goodbye (deregistered), having stopped them itself.

use std::time::Duration;

use kube9_proto::pb;
use tokio::time::Instant;

use super::reschedule::Eviction;
use super::{Action, Cluster};

/// How long a failed reap waits before it is tried again.
pub const REAP_RETRY: Duration = Duration::from_secs(2);

/// `RuntimeHandle.state` of a reaped instance.
pub const REMOVED: &str = "removed";

impl Cluster {
    /// Asks the runtime to remove a permanently failed node's container or process, unless it
    /// is done, in flight, or waiting out a failed try. Nodes the runtime does not own have
    /// nothing to remove. Returns whether a reap was queued now.
    pub fn queue_reap(&mut self, name: &str) -> bool {
        if self
            .reap_retry_at
            .get(name)
            .is_some_and(|t| *t > Instant::now())
        {
            return false;
        }
        let Some(entry) = self.nodes.get(name) else {
            return false;
        };
        if entry.reaped || entry.is_busy() {
            return false;
        }
        match self.owned_handle(name) {
            Some(handle) => {
                if !self.claim(name).unwrap_or(false) {
                    return false;
                }
                self.actions.push(Action::Reap {
                    node: name.to_string(),
                    handle,
                });
                true
            }
            None => {
                self.nodes.get_mut(name).expect("present").reaped = true;
                false
            }
        }
    }

    /// Records how removing `handle` went and releases the node; a failure is tried again
    /// after [`REAP_RETRY`].
    pub fn reap_done(
        &mut self,
        node: &str,
        handle: &pb::RuntimeHandle,
        result: &crate::runtime::Result<()>,
    ) {
        self.release(node);
        let Some(entry) = self.nodes.get_mut(node) else {
            return;
        };
        match result {
            Ok(()) => {
                entry.reaped = true;
                if let Some(h) = entry.node.runtime.as_mut() {
                    h.state = REMOVED.into();
                }
                self.reap_retry_at.remove(node);
                self.save_node(node, pb::WatchEventType::Modified);
                self.event(
                    "Node",
                    node,
                    false,
                    "NodeReaped",
                    format!(
                        "removed the node's {} instance {}",
                        handle.kind,
                        short(&handle.id)
                    ),
                );
            }
            Err(e) => {
                tracing::warn!(node = %node, error = %e, "reaping failed; will retry");
                self.reap_retry_at
                    .insert(node.to_string(), Instant::now() + REAP_RETRY);
            }
        }
        // The pods waited for this try; whether or not it removed everything, they move now.
        if self.nodes.get(node).map(|e| e.status()) == Some(pb::NodeStatus::PermanentlyFailed) {
            self.evict_pods(node, super::reschedule::Eviction::PermanentlyFailed);
        }
    }

    /// When the agent of `name` has stopped its pods by itself if it lost kube9d: the fence
    /// time after the node's last heartbeat (after it entered its status, if it never sent
    /// one). `None` for a node the runtime owns (it is reaped instead) or an unknown one.
    pub fn fence_ends(&self, name: &str) -> Option<Instant> {
        if self.owned_handle(name).is_some() {
            return None;
        }
        let entry = self.nodes.get(name)?;
        Some(entry.last_heartbeat.unwrap_or(entry.since) + self.settings.node_fence)
    }

    /// Moves the pods off permanently failed `name` once nothing can run them there any more:
    /// at once when the runtime owns the node (its reap is done), else once its agent's fence
    /// time has passed. Until then they stay bound, and an event says (once) when they move.
    pub fn evict_once_fenced(&mut self, name: &str, now: Instant) {
        match self.fence_ends(name) {
            Some(ends) if ends > now => self.announce_fence(name, ends - now),
            _ => self.evict_pods(name, Eviction::PermanentlyFailed),
        }
    }

    /// Records, once per node, that its pods wait `left` more for its agent's fence time.
    fn announce_fence(&mut self, name: &str, left: Duration) {
        let Some(entry) = self.nodes.get_mut(name) else {
            return;
        };
        if std::mem::replace(&mut entry.awaiting_fence, true) {
            return;
        }
        let fence = self.settings.node_fence.as_secs_f64();
        let message = format!(
            "pods move in {:.1}s, once the agent's fence time ({fence}s) has passed since its last heartbeat (kube9d cannot remove this node; its agent stops them by then)",
            left.as_secs_f64()
        );
        tracing::info!(node = %name, %message, "awaiting the agent's fence");
        self.event("Node", name, false, "AwaitingFence", message);
    }

    /// Records that a node without a runtime instance has nothing left to remove.
    pub fn nothing_to_reap(&mut self, node: &str) {
        self.release(node);
        if let Some(entry) = self.nodes.get_mut(node) {
            entry.reaped = true;
        }
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
