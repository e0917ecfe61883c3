//! Node operations: every runtime call for a node (launch, restart, kill, partition, remove)
//! is made here, and nowhere else in kube9d.
//!
//! The rules that keep those calls safe live in one place each:
//! - **one claim per node**: a runtime call runs only while the node is claimed
//!   ([`crate::state::Cluster::claim`]); [`NodeOps::claim`] waits for a claim held by someone else;
//! - **one ownership check**: only handles this kube9d's runtime owns are acted on
//!   ([`crate::state::Cluster::owned_handle`]);
//! - **one restart sequence** ([`NodeOps::restart`]), used by recovery attempts and by
//!   `node recover`.
//!
//! The lifecycle decides under the state lock and queues [`Action`]s; [`NodeOps::serve`]
//! carries them out and reports back through `mutate`, so `state` never calls a runtime.
//!
//! # Layout
//! - this file: [`NodeOps`], the action executor, create and delete (drain) of nodes, force
//!   cleanup;
//! - [`faults`]: fault injection (`node fail`) and lifting it (`node recover`);
//! - [`reconcile`]: at start-up, what the runtime runs against what the store remembers.

pub mod faults;
pub mod reconcile;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube9_proto::pb::{self, control_message::Msg, NodeStatus};
use tokio::sync::mpsc;

use crate::runtime::{NodeLaunch, NodeRuntime, RuntimeKind};
use crate::state::reschedule::Eviction;
use crate::state::{not_found, Action, Control, Error, Result};

/// How long a caller waits for another runtime call on the same node before giving up.
const CLAIM_TIMEOUT: Duration = Duration::from_secs(30);

/// The node operations: the state handle plus the runtime nodes live in. Cheap to clone.
#[derive(Clone)]
pub struct NodeOps {
    control: Control,
    runtime: Option<Arc<dyn NodeRuntime>>,
}

impl NodeOps {
    pub fn new(control: Control, runtime: Option<Arc<dyn NodeRuntime>>) -> Self {
        NodeOps { control, runtime }
    }

    pub fn control(&self) -> &Control {
        &self.control
    }

    /// The runtime's kind, `None` without one.
    pub fn runtime_kind(&self) -> Option<RuntimeKind> {
        self.runtime.as_ref().map(|r| r.kind())
    }

    /// The runtime, or a clear refusal for operations that need one.
    fn runtime(&self) -> Result<&Arc<dyn NodeRuntime>> {
        self.runtime
            .as_ref()
            .ok_or_else(|| Error::FailedPrecondition("kube9d runs without a node runtime".into()))
    }

    /// Carries out the actions the lifecycle queues, each in its own task, until the sender
    /// (the [`Control`]) is gone.
    pub async fn serve(self, mut actions: mpsc::UnboundedReceiver<Action>) {
        while let Some(action) = actions.recv().await {
            let ops = self.clone();
            tokio::spawn(async move { ops.execute(action).await });
        }
    }

    /// Carries out one action (its node was claimed when it was queued) and records the outcome.
    pub async fn execute(&self, action: Action) {
        match action {
            Action::Restart {
                node,
                handle,
                attempt,
            } => {
                let _ = self.restart(&node, &handle, Some(attempt)).await;
            }
            Action::Reap { node, handle } => self.reap(&node, &handle).await,
        }
    }

    /// The restart sequence, on a claimed node: start the node again through the runtime and
    /// record the new handle (or, for a recovery attempt, the failure). Releases the claim.
    async fn restart(
        &self,
        node: &str,
        handle: &pb::RuntimeHandle,
        attempt: Option<u32>,
    ) -> Result<()> {
        let (Ok(runtime), Some(spec)) = (self.runtime(), self.launch_spec(node)) else {
            self.control.mutate_detached(|c| c.release(node));
            return Ok(());
        };
        let result = runtime.restart(handle, &spec).await;
        self.control
            .mutate_detached(|c| c.restart_done(node, attempt, &result));
        result.map(|_| ()).map_err(Error::from)
    }

    /// Removes a permanently failed node's instance, on a claimed node. Releases the claim.
    async fn reap(&self, node: &str, handle: &pb::RuntimeHandle) {
        match self.runtime() {
            Ok(runtime) if self.runtime_kind().is_some_and(|k| k.owns(handle)) => {
                let result = runtime.remove(handle).await;
                self.control
                    .mutate_detached(|c| c.reap_done(node, handle, &result));
                if let Some(spec) = self.control.read(|c| c.replacement(node)) {
                    let ops = self.clone();
                    tokio::spawn(async move { ops.replace(spec).await });
                }
            }
            // Nothing to remove (external nodes, another runtime's instance).
            _ => self.control.mutate_detached(|c| c.nothing_to_reap(node)),
        }
    }

    /// Waits until no other runtime call is in flight for `name`, then claims the node for the
    /// caller, who must release it. Returns the node's handle if the runtime owns it.
    async fn claim(&self, name: &str) -> Result<Option<pb::RuntimeHandle>> {
        let deadline = tokio::time::Instant::now() + CLAIM_TIMEOUT;
        loop {
            let (claimed, _) = self
                .control
                .mutate(|c| Ok::<_, Error>(c.claim(name)?.then(|| c.owned_handle(name))));
            if let Some(handle) = claimed? {
                return Ok(handle);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Busy(name.to_string()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until no runtime call is in flight for `name` (returns at once if it is gone).
    async fn wait_idle(&self, name: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + CLAIM_TIMEOUT;
        while self
            .control
            .read(|c| c.nodes.get(name).is_some_and(|e| e.is_busy()))
        {
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Busy(name.to_string()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// What the runtime needs to (re)start `node`.
    pub fn launch_spec(&self, node: &str) -> Option<NodeLaunch> {
        self.control.read(|c| {
            c.nodes.get(node).map(|e| NodeLaunch {
                name: node.to_string(),
                cpu_millis: e.node.cpu_capacity_millis,
                cluster_id: self.control.cluster_id().to_string(),
                server_port: self.control.server_port(),
                heartbeat_interval_ms: c.settings.heartbeat_interval.as_millis() as u64,
                instance_id: e.node.instance_id.clone(),
            })
        })
    }

    /// Creates node records and starts their agents through the runtime, all or nothing: on a
    /// launch failure every record and every instance the request started is removed again.
    pub async fn create_nodes(&self, specs: Vec<pb::NodeSpec>) -> Result<Vec<pb::Node>> {
        let runtime = self.runtime()?.clone();
        let kind = runtime.kind();
        // Every record in one change; each stays claimed until its launch is done, so a
        // concurrent delete waits for it.
        let (r, commit) = self.control.mutate(|c| {
            for spec in &specs {
                c.admit_node(spec)?;
            }
            for spec in &specs {
                c.add_node(spec, kind)?;
                c.claim(&spec.name)?;
            }
            Ok::<_, Error>(())
        });
        r?;
        commit.wait().await?;
        let mut launched: Vec<(String, pb::RuntimeHandle)> = Vec::new();
        for spec in &specs {
            let result = match self.launch_spec(&spec.name) {
                Some(launch) => runtime.launch(&launch).await,
                None => Err(crate::runtime::Error::NotFound(spec.name.clone())),
            };
            match result {
                Ok(handle) => launched.push((spec.name.clone(), handle)),
                Err(e) => {
                    tracing::error!(node = %spec.name, error = %e, "failed to start node; rolling back");
                    for (_, handle) in &launched {
                        if let Err(e) = runtime.remove(handle).await {
                            tracing::warn!(error = %e, "failed to remove a node started by the failed request");
                        }
                    }
                    let (_, commit) = self.control.mutate(|c| {
                        for spec in &specs {
                            c.remove_node(&spec.name);
                        }
                    });
                    let _ = commit.wait().await;
                    return Err(Error::Unavailable(format!(
                        "failed to start node {}: {e}",
                        spec.name
                    )));
                }
            }
        }
        let (_, commit) = self.control.mutate(|c| {
            for (name, handle) in launched {
                c.release(&name);
                c.set_runtime_handle(&name, handle);
                let msg = format!("started the node's agent ({kind} runtime)");
                c.event("Node", &name, false, "NodeStarted", msg);
            }
        });
        commit.wait().await?;
        specs.iter().map(|s| self.node_view(&s.name)).collect()
    }

    /// Replaces every given-up node that a previous run reaped but did not replace.
    pub async fn replace_given_up(&self) {
        let names: Vec<String> = self.control.read(|c| {
            (c.nodes.keys())
                .filter(|n| c.replacement(n).is_some())
                .cloned()
                .collect()
        });
        for name in names {
            if let Some(spec) = self.control.read(|c| c.replacement(&name)) {
                self.replace(spec).await;
            }
        }
    }

    /// Replaces a given-up, reaped node kube9d manages with a fresh instance under the same
    /// name (new instance id, no pods), so the cluster returns to its size.
    async fn replace(&self, spec: pb::NodeSpec) {
        let name = spec.name.clone();
        let (gone, commit) = self
            .control
            .mutate(|c| c.replacement(&name).is_some() && c.forget_node(&name).is_some());
        if !gone || commit.wait().await.is_err() {
            return;
        }
        match self.create_nodes(vec![spec]).await {
            Ok(_) => self.control.mutate_detached(|c| {
                let msg =
                    "replaced the given-up node with a fresh instance under the same name".into();
                c.event("Node", &name, false, "NodeReplaced", msg);
            }),
            Err(e) => {
                tracing::error!(node = %name, error = %e, "failed to replace a given-up node");
                self.control.mutate_detached(|c| {
                    let msg = format!("failed to replace the given-up node: {e}");
                    c.event("Node", &name, true, "NodeReplacementFailed", msg);
                });
            }
        }
    }

    /// Deletes a node: drains it (its pods move, its agent is told to go), waits for any
    /// runtime call in flight, removes its instance and then its record.
    pub async fn delete_node(&self, name: &str) -> Result<pb::Node> {
        let (r, commit) = self.control.mutate(|c| {
            if !c.nodes.contains_key(name) {
                return Err(not_found("node", name));
            }
            c.transition(name, NodeStatus::Draining, "node deleted");
            c.evict_pods(name, Eviction::Deleted);
            c.send(
                name,
                Msg::Terminate(pb::Terminate {
                    reason: "node deleted".into(),
                }),
            );
            Ok(())
        });
        r?;
        commit.wait().await?;
        // A launch or restart in flight would otherwise leave an instance behind.
        let handle = self.claim(name).await?;
        let removed = match (&handle, self.runtime()) {
            (Some(handle), Ok(runtime)) => runtime.remove(handle).await.map_err(Error::from),
            _ => Ok(()),
        };
        let (view, commit) = self.control.mutate(|c| {
            c.release(name);
            if removed.is_ok() {
                c.remove_node(name)
            } else {
                None
            }
        });
        removed?;
        commit.wait().await?;
        view.ok_or_else(|| not_found("node", name))
    }

    /// `node cleanup`: gives a failed node up at once and removes its instance now, rather
    /// than waiting for its recovery attempts to run out.
    pub async fn force_cleanup(&self, name: &str) -> Result<pb::Node> {
        self.wait_idle(name).await?;
        let (res, commit) = self.control.mutate(|c| {
            let entry = c.nodes.get(name).ok_or_else(|| not_found("node", name))?;
            match entry.status() {
                NodeStatus::Healthy | NodeStatus::Initializing => {
                    return Err(Error::FailedPrecondition(format!(
                        "node {name} is {}; force cleanup is for failed nodes (use delete node to remove a working one)",
                        entry.status().label()
                    )))
                }
                _ if entry.is_busy() => return Err(Error::Busy(name.to_string())),
                NodeStatus::Failed | NodeStatus::Recovering => {
                    c.transition(name, NodeStatus::PermanentlyFailed, "force cleanup requested");
                    // The reap that queued is done here, now, instead.
                    c.actions.retain(|a| a.node() != name);
                    c.release(name);
                }
                _ => {}
            }
            if !c.claim(name)? {
                return Err(Error::Busy(name.to_string()));
            }
            Ok(c.nodes[name].node.runtime.clone().unwrap_or_default())
        });
        let handle = res?;
        commit.wait().await?;
        self.reap(name, &handle).await;
        self.node_view(name)
    }

    /// One look at what the runtime runs, for the container monitor: nodes whose instance is
    /// not running are failed (see [`crate::state::Cluster::observe_instances`]).
    pub async fn observe_instances(&self) {
        let Ok(runtime) = self.runtime() else {
            return;
        };
        let epoch = self.control.read(|c| c.instance_epoch);
        match runtime.list_owned().await {
            Ok(list) => {
                let seen: HashMap<String, _> = list
                    .into_iter()
                    .map(|i| (i.node_name, (i.handle, i.observed)))
                    .collect();
                self.control.mutate_detached(|c| {
                    // A node (re)started while we listed: the listing may predate it.
                    if c.instance_epoch == epoch {
                        c.observe_instances(runtime.kind(), &seen);
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "container monitor could not list node instances")
            }
        }
    }

    /// The node's wire view.
    pub fn node_view(&self, name: &str) -> Result<pb::Node> {
        self.control
            .read(|c| c.nodes.get(name).map(|e| e.view()))
            .ok_or_else(|| not_found("node", name))
    }
}

#[cfg(test)]
mod tests;
