//! Fault injection (`kube9ctl node fail NAME --mode …`) and lifting it (`node recover`).
//!
//! | fault | injected by | lifted by |
//! |---|---|---|
//! | `heartbeat` | telling the agent to stop heartbeats | telling it to resume |
//! | `component=NAME` | telling the agent the component failed | telling it it is healthy |
//! | `crash` | killing the node's container or process | restarting it |
//! | `partition` | cutting the node off the network, or, where the runtime has no network (processes, external nodes), kube9d refusing the node's stream | reconnecting it / accepting the stream again |
//!
//! The fault is recorded on the node (`injected_fault`) and cleared when the node is healthy
//! again ([`crate::state::Cluster::transition`]).

use kube9_proto::fault::Fault;
use kube9_proto::pb::{self, control_message::Msg, NodeStatus};

use super::NodeOps;
use crate::state::{Error, Result};

impl NodeOps {
    /// Injects `fault` into node `name`.
    pub async fn inject(&self, name: &str, fault: Fault) -> Result<pb::Node> {
        let node = self.node_view(name)?;
        if matches!(
            node.status(),
            NodeStatus::PermanentlyFailed | NodeStatus::Draining
        ) {
            return Err(Error::FailedPrecondition(format!(
                "node {name} is {}",
                node.status().label()
            )));
        }
        let owned = self.control.read(|c| c.owned_handle(name));
        let runtime = self.runtime.as_ref().zip(owned);
        // Without a network to cut, kube9d refuses the node's stream itself (below, in the
        // same change that records the fault, so the agent cannot slip back in).
        let mut cut_here = false;
        match &fault {
            Fault::Heartbeat => {
                self.control
                    .read(|c| c.send_now(name, Msg::StopHeartbeats(pb::StopHeartbeats {})));
            }
            Fault::Component(component) => {
                let known: Vec<&str> = node.components.iter().map(|c| c.name.as_str()).collect();
                if !known.is_empty() && !known.contains(&component.as_str()) {
                    return Err(Error::Invalid(format!(
                        "node {name} has no component \"{component}\" (components: {})",
                        known.join(", ")
                    )));
                }
                let msg = Msg::SetComponent(pb::SetComponentHealth {
                    component: component.clone(),
                    healthy: false,
                    message: "injected failure".into(),
                });
                self.control.read(|c| c.send_now(name, msg));
            }
            Fault::Crash => {
                let (runtime, handle) = runtime.ok_or_else(|| {
                    Error::FailedPrecondition(format!(
                        "node {name} has no container or process to crash"
                    ))
                })?;
                runtime.kill(&handle).await?;
            }
            Fault::Partition => match runtime {
                Some((runtime, handle)) => match runtime.set_partitioned(&handle, true).await {
                    Ok(()) => {}
                    Err(crate::runtime::Error::Unsupported(..)) => cut_here = true,
                    Err(e) => return Err(e.into()),
                },
                None => cut_here = true,
            },
        }
        let (_, commit) = self.control.mutate(|c| {
            if let Some(e) = c.nodes.get_mut(name) {
                if cut_here {
                    e.agent = None;
                }
                e.node.injected_fault = fault.to_string();
                c.save_node(name, pb::WatchEventType::Modified);
                c.event(
                    "Node",
                    name,
                    true,
                    "FaultInjected",
                    format!("injected fault: {fault}"),
                );
            }
        });
        commit.wait().await?;
        self.node_view(name)
    }

    /// Lifts whatever fault node `name` has; a node that failed by itself (or crashed) is
    /// restarted. A healthy node with no fault is left alone: restarting a working node would
    /// only kill its pods.
    pub async fn recover(&self, name: &str) -> Result<pb::Node> {
        let node = self.node_view(name)?;
        if matches!(
            node.status(),
            NodeStatus::PermanentlyFailed | NodeStatus::Draining
        ) {
            return Err(Error::FailedPrecondition(format!(
                "node {name} is {}; delete it and create a new one",
                node.status().label()
            )));
        }
        let fault = Fault::recorded(&node);
        if fault.is_none() && node.status() == NodeStatus::Healthy {
            return Ok(node);
        }
        let owned = self.control.read(|c| c.owned_handle(name));
        match &fault {
            Some(Fault::Heartbeat) => {
                self.control
                    .read(|c| c.send_now(name, Msg::ResumeHeartbeats(pb::ResumeHeartbeats {})));
            }
            Some(Fault::Component(component)) => {
                let msg = Msg::SetComponent(pb::SetComponentHealth {
                    component: component.clone(),
                    healthy: true,
                    message: String::new(),
                });
                self.control.read(|c| c.send_now(name, msg));
            }
            Some(Fault::Partition) => {
                if let Some((runtime, handle)) = self.runtime.as_ref().zip(owned) {
                    match runtime.set_partitioned(&handle, false).await {
                        Ok(()) | Err(crate::runtime::Error::Unsupported(..)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            // Crashed, or failed for a reason of its own: start it again, unless the health
            // loop is already doing that (the claim waits for it).
            Some(Fault::Crash) | None
                if owned.is_some() && node.status() != NodeStatus::Healthy =>
            {
                match self.claim(name).await? {
                    Some(handle) => self.restart(name, &handle, None).await?,
                    None => self.control.mutate_detached(|c| c.release(name)),
                }
            }
            Some(Fault::Crash) | None => {}
        }
        let lifted = fault.map_or_else(|| "none".to_string(), |f| f.to_string());
        let (_, commit) = self.control.mutate(|c| {
            if let Some(e) = c.nodes.get_mut(name) {
                e.node.injected_fault.clear();
                c.save_node(name, pb::WatchEventType::Modified);
                c.event(
                    "Node",
                    name,
                    false,
                    "FaultLifted",
                    format!("recovery requested (fault: {lifted})"),
                );
            }
        });
        commit.wait().await?;
        self.node_view(name)
    }
}
