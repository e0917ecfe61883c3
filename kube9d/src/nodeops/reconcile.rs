//! Start-up reconciliation: brings memory in line with what the runtime really runs after
//! kube9d (re)starts. Nodes a previous run left initializing are removed, instances of known
//! nodes are adopted, and labelled instances no node owns are removed.

use kube9_proto::pb::{self, NodeStatus};

use super::NodeOps;
use crate::state::reschedule::Eviction;

impl NodeOps {
    /// Runs once, before the control loops start.
    pub async fn reconcile(&self) {
        let (Ok(runtime), Some(kind)) = (self.runtime(), self.runtime_kind()) else {
            return;
        };
        let stale: Vec<(String, Option<pb::RuntimeHandle>)> = self.control.read(|c| {
            c.nodes
                .values()
                .filter(|e| e.status() == NodeStatus::Initializing)
                .map(|e| (e.node.name.clone(), c.owned_handle(&e.node.name)))
                .collect()
        });
        for (name, handle) in stale {
            if let Some(handle) = handle {
                if let Err(e) = runtime.remove(&handle).await {
                    tracing::warn!(node = %name, error = %e, "failed to remove a stale node instance");
                }
            }
            let (_, commit) = self.control.mutate(|c| {
                c.evict_pods(&name, Eviction::LeftInitializing);
                c.remove_node(&name);
            });
            let _ = commit.wait().await;
            tracing::info!(node = %name, "removed a node left initializing by a previous run");
        }
        let owned = match runtime.list_owned().await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(error = %e, "could not list node instances for adoption");
                return;
            }
        };
        for inst in owned {
            let keep = self.control.read(|c| {
                c.nodes.get(&inst.node_name).is_some_and(|e| {
                    !matches!(
                        e.status(),
                        NodeStatus::PermanentlyFailed | NodeStatus::Draining
                    ) && e.node.runtime.as_ref().is_some_and(|h| kind.matches(h))
                })
            });
            if keep {
                let mut handle = inst.handle.clone();
                handle.state = inst.observed.label();
                tracing::info!(node = %inst.node_name, id = %handle.id, "adopted node instance");
                self.control
                    .mutate_detached(|c| c.set_runtime_handle(&inst.node_name, handle));
            } else {
                tracing::info!(node = %inst.node_name, id = %inst.handle.id, "removing orphaned node instance");
                if let Err(e) = runtime.remove(&inst.handle).await {
                    tracing::warn!(node = %inst.node_name, error = %e, "failed to remove an orphaned node instance");
                }
            }
        }
    }
}
