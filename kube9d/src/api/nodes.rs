//! Node operations of `ClusterService` that call the runtime: create (launch), delete
//! (drain, then remove), fault injection, recovery and force cleanup. They run to completion
//! in their own task (see `to_completion` in `cluster.rs`) and fence runtime calls per node with
//! its `busy` flag (`claim`, `wait_idle`).

use std::time::Duration;

use kube9_proto::pb::{self, control_message::Msg, FailureMode, NodeStatus};
use tonic::{Request, Response, Status};

use super::ClusterApi;
use crate::state::agents::PARTITION_FAULT;
use crate::state::{not_found, Error};

impl ClusterApi {
    /// Creates node records and starts their agents through the runtime. On a launch failure
    /// the record is removed again, so nothing half-made stays behind.
    pub async fn create_nodes(&self, specs: Vec<pb::NodeSpec>) -> Result<Vec<pb::Node>, Status> {
        let runtime = self
            .control
            .runtime()
            .cloned()
            .ok_or_else(|| Status::failed_precondition("kube9d runs without a node runtime"))?;
        // Every record in one change, all or nothing; each is busy until its launch is done,
        // so a concurrent delete waits for it (see `wait_idle`).
        let (r, commit) = self.control.mutate(|c| {
            for spec in &specs {
                c.admit_node(spec)?;
            }
            for spec in &specs {
                c.add_node(spec, runtime.kind())?;
                c.nodes.get_mut(&spec.name).expect("just added").busy = true;
            }
            Ok::<_, Error>(())
        });
        r?;
        commit.wait().await.map_err(Error::from)?;
        let mut launched: Vec<(String, pb::RuntimeHandle)> = Vec::new();
        for spec in &specs {
            let result = match crate::monitor::launch_spec(&self.control, &spec.name) {
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
                    return Err(Status::unavailable(format!(
                        "failed to start node {}: {e}",
                        spec.name
                    )));
                }
            }
        }
        let (_, commit) = self.control.mutate(|c| {
            for (name, handle) in launched {
                if let Some(e) = c.nodes.get_mut(&name) {
                    e.busy = false;
                }
                c.set_runtime_handle(&name, handle);
                let msg = format!("started the node's agent ({} runtime)", runtime.kind());
                c.event("Node", &name, false, "NodeStarted", msg);
            }
        });
        commit.wait().await.map_err(Error::from)?;
        let created = specs
            .iter()
            .map(|s| self.node_view(&s.name))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(created)
    }

    /// The node's wire view and its runtime handle (empty for nodes without one).
    fn node_and_handle(&self, name: &str) -> Result<(pb::Node, pb::RuntimeHandle), Status> {
        self.control
            .read(|c| {
                c.nodes
                    .get(name)
                    .map(|e| (e.view(), e.node.runtime.clone().unwrap_or_default()))
            })
            .ok_or_else(|| not_found("node", name).into())
    }

    /// Waits until no runtime call is in flight for `name`, then marks one in flight (the
    /// caller's) and returns the node's current handle. The caller clears `busy` when done.
    async fn claim(&self, name: &str) -> Result<pb::RuntimeHandle, Status> {
        loop {
            self.wait_idle(name).await?;
            let (claimed, _) = self.control.mutate(|c| {
                let e = c
                    .nodes
                    .get_mut(name)
                    .ok_or_else(|| not_found("node", name))?;
                if e.busy {
                    return Ok(None);
                }
                e.busy = true;
                Ok::<_, Error>(Some(e.node.runtime.clone().unwrap_or_default()))
            });
            if let Some(handle) = claimed? {
                return Ok(handle);
            }
        }
    }

    /// Waits until no runtime call (launch, restart, reap) is in flight for `name`, so the
    /// caller's own runtime call sees the latest handle. Returns early if the node is gone.
    async fn wait_idle(&self, name: &str) -> Result<(), Status> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self
            .control
            .read(|c| c.nodes.get(name).is_some_and(|e| e.busy))
        {
            if tokio::time::Instant::now() > deadline {
                return Err(Status::unavailable(format!(
                    "node {name} is busy with a runtime call; try again"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    pub(super) async fn do_create_node(
        &self,
        request: Request<pb::CreateNodeRequest>,
    ) -> Result<Response<pb::Node>, Status> {
        let r = request.into_inner();
        let spec = pb::NodeSpec {
            name: r.name,
            cpu_millis: r.cpu_millis,
            labels: r.labels,
        };
        let mut nodes = self.create_nodes(vec![spec]).await?;
        Ok(Response::new(nodes.remove(0)))
    }

    pub(super) async fn do_delete_node(
        &self,
        request: Request<pb::DeleteNodeRequest>,
    ) -> Result<Response<pb::Node>, Status> {
        let name = request.into_inner().name;
        let (r, commit) = self.control.mutate(|c| {
            if !c.nodes.contains_key(&name) {
                return Err(not_found("node", &name));
            }
            c.transition(&name, NodeStatus::Draining, "node deleted");
            c.evict_pods(&name, &format!("node {name} deleted"));
            c.send(
                &name,
                Msg::Terminate(pb::Terminate {
                    reason: "node deleted".into(),
                }),
            );
            Ok(())
        });
        r?;
        commit.wait().await.map_err(Error::from)?;
        // A launch or restart in flight would otherwise leave an instance behind.
        self.wait_idle(&name).await?;
        let handle = self
            .control
            .read(|c| c.nodes.get(&name).and_then(|e| e.node.runtime.clone()))
            .unwrap_or_default();
        if let Some(runtime) = self.control.runtime() {
            if handle.kind == runtime.kind() && !handle.id.is_empty() {
                runtime.remove(&handle).await.map_err(Error::from)?;
            }
        }
        let (view, commit) = self.control.mutate(|c| c.remove_node(&name));
        commit.wait().await.map_err(Error::from)?;
        view.map(Response::new)
            .ok_or_else(|| not_found("node", &name).into())
    }

    pub(super) async fn do_simulate_node_failure(
        &self,
        request: Request<pb::SimulateNodeFailureRequest>,
    ) -> Result<Response<pb::Node>, Status> {
        let r = request.into_inner();
        let mode = FailureMode::try_from(r.mode).unwrap_or(FailureMode::Unspecified);
        let (node, handle) = self.node_and_handle(&r.name)?;
        if matches!(
            node.status(),
            NodeStatus::PermanentlyFailed | NodeStatus::Draining
        ) {
            return Err(Status::failed_precondition(format!(
                "node {} is {}",
                r.name,
                node.status().label()
            )));
        }
        let mut cut_here = false;
        let fault = match mode {
            FailureMode::Heartbeat => {
                self.control
                    .read(|c| c.send(&r.name, Msg::StopHeartbeats(pb::StopHeartbeats {})));
                "heartbeat".to_string()
            }
            FailureMode::Component => {
                let known: Vec<String> = node.components.iter().map(|c| c.name.clone()).collect();
                if !r.component.is_empty() && !known.is_empty() && !known.contains(&r.component) {
                    return Err(Status::invalid_argument(format!(
                        "node {} has no component \"{}\" (components: {})",
                        r.name,
                        r.component,
                        known.join(", ")
                    )));
                }
                if r.component.is_empty() {
                    return Err(Status::invalid_argument(
                        "mode component needs a component name (component=kubelet)",
                    ));
                }
                let msg = Msg::SetComponent(pb::SetComponentHealth {
                    component: r.component.clone(),
                    healthy: false,
                    message: "injected failure".into(),
                });
                self.control.read(|c| c.send(&r.name, msg));
                format!("component={}", r.component)
            }
            FailureMode::Crash => {
                let runtime = self
                    .control
                    .runtime()
                    .filter(|rt| rt.kind() == handle.kind && !handle.id.is_empty());
                let runtime = runtime.ok_or_else(|| {
                    Status::failed_precondition(format!(
                        "node {} has no container or process to crash",
                        r.name
                    ))
                })?;
                runtime.kill(&handle).await.map_err(Error::from)?;
                "crash".to_string()
            }
            FailureMode::Partition => {
                let runtime = self
                    .control
                    .runtime()
                    .filter(|rt| rt.kind() == handle.kind && !handle.id.is_empty());
                let cut = match runtime {
                    Some(rt) => rt.set_partitioned(&handle, true).await,
                    None => Err(crate::runtime::Error::Unsupported("partition", "external")),
                };
                match cut {
                    Ok(()) => {}
                    // No network to cut: kube9d refuses the node's stream itself (below, in the
                    // same change that records the fault, so the agent cannot slip back in).
                    Err(crate::runtime::Error::Unsupported(..)) => cut_here = true,
                    Err(e) => return Err(Error::from(e).into()),
                }
                PARTITION_FAULT.to_string()
            }
            FailureMode::Unspecified => {
                return Err(Status::invalid_argument(
                    "unknown failure mode (heartbeat, crash, component=<name>, partition)",
                ))
            }
        };
        let (_, commit) = self.control.mutate(|c| {
            if let Some(e) = c.nodes.get_mut(&r.name) {
                if cut_here {
                    e.agent = None;
                }
                e.node.injected_fault = fault.clone();
                c.save_node(&r.name, pb::WatchEventType::Modified);
                c.event(
                    "Node",
                    &r.name,
                    true,
                    "FaultInjected",
                    format!("injected fault: {fault}"),
                );
            }
        });
        commit.wait().await.map_err(Error::from)?;
        Ok(Response::new(self.node_view(&r.name)?))
    }

    pub(super) async fn do_recover_node(
        &self,
        request: Request<pb::RecoverNodeRequest>,
    ) -> Result<Response<pb::Node>, Status> {
        let name = request.into_inner().name;
        let (node, handle) = self.node_and_handle(&name)?;
        if matches!(
            node.status(),
            NodeStatus::PermanentlyFailed | NodeStatus::Draining
        ) {
            return Err(Status::failed_precondition(format!(
                "node {name} is {}; delete it and create a new one",
                node.status().label()
            )));
        }
        let fault = node.injected_fault.clone();
        if fault.is_empty() && node.status() == NodeStatus::Healthy {
            // Nothing to do (it may have recovered by itself); restarting a working node would
            // only kill its pods.
            return Ok(Response::new(node));
        }
        let runtime = self
            .control
            .runtime()
            .filter(|rt| rt.kind() == handle.kind && !handle.id.is_empty())
            .cloned();
        if fault == "heartbeat" {
            self.control
                .read(|c| c.send(&name, Msg::ResumeHeartbeats(pb::ResumeHeartbeats {})));
        } else if let Some(component) = fault.strip_prefix("component=") {
            let msg = Msg::SetComponent(pb::SetComponentHealth {
                component: component.into(),
                healthy: true,
                message: String::new(),
            });
            self.control.read(|c| c.send(&name, msg));
        } else if fault == PARTITION_FAULT {
            if let Some(rt) = &runtime {
                match rt.set_partitioned(&handle, false).await {
                    Ok(()) | Err(crate::runtime::Error::Unsupported(..)) => {}
                    Err(e) => return Err(Error::from(e).into()),
                }
            }
        } else if let Some(rt) = runtime
            .as_ref()
            .filter(|_| node.status() != NodeStatus::Healthy)
        {
            // Crashed, or failed for a reason of its own: start it again, unless the health
            // loop is already doing that.
            let handle = self.claim(&name).await?;
            let restarted = match crate::monitor::launch_spec(&self.control, &name) {
                Some(spec) => rt.restart(&handle, &spec).await.map(Some),
                None => Ok(None),
            };
            self.control.mutate_detached(|c| {
                if let Some(e) = c.nodes.get_mut(&name) {
                    e.busy = false;
                }
                if let Ok(Some(h)) = &restarted {
                    c.set_runtime_handle(&name, h.clone());
                }
            });
            restarted.map_err(Error::from)?;
        }
        let (_, commit) = self.control.mutate(|c| {
            if let Some(e) = c.nodes.get_mut(&name) {
                e.node.injected_fault.clear();
                c.save_node(&name, pb::WatchEventType::Modified);
                c.event(
                    "Node",
                    &name,
                    false,
                    "FaultLifted",
                    format!(
                        "recovery requested (fault: {})",
                        if fault.is_empty() { "none" } else { &fault }
                    ),
                );
            }
        });
        commit.wait().await.map_err(Error::from)?;
        Ok(Response::new(self.node_view(&name)?))
    }

    pub(super) async fn do_force_cleanup_node(
        &self,
        request: Request<pb::ForceCleanupNodeRequest>,
    ) -> Result<Response<pb::Node>, Status> {
        let name = request.into_inner().name;
        self.wait_idle(&name).await?;
        let (res, commit) = self.control.mutate(|c| {
            let entry = c.nodes.get(&name).ok_or_else(|| not_found("node", &name))?;
            if entry.busy {
                return Err(Error::Unavailable(format!("node {name} is busy with a recovery attempt; try again")));
            }
            match entry.status() {
                NodeStatus::Healthy | NodeStatus::Initializing => {
                    return Err(Error::FailedPrecondition(format!(
                        "node {name} is {}; force cleanup is for failed nodes (use delete node to remove a working one)",
                        entry.status().label()
                    )))
                }
                NodeStatus::Failed | NodeStatus::Recovering => {
                    c.transition(&name, NodeStatus::PermanentlyFailed, "force cleanup requested");
                }
                _ => {}
            }
            // The reap queued above (if any) runs through the same path; take it here instead.
            c.actions.clear();
            let entry = c.nodes.get_mut(&name).expect("present");
            entry.busy = true;
            Ok(entry.node.runtime.clone().unwrap_or_default())
        });
        let handle = res?;
        commit.wait().await.map_err(Error::from)?;
        crate::monitor::run_action(
            &self.control,
            crate::monitor::Action::Reap {
                node: name.clone(),
                handle,
            },
        )
        .await;
        Ok(Response::new(self.node_view(&name)?))
    }
}
