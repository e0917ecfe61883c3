//! What the agent stream changes: attach (register and resynchronise), deregistration and
//! disconnects. Heartbeats are judged in [`super::health`].

use kube9_proto::fault::Fault;
use kube9_proto::pb::{self, control_message::Msg, NodeStatus, PodPhase};

use super::reschedule::Eviction;
use super::{AgentConn, Cluster, Error, Result};
use crate::config::Settings;
use crate::runtime::RuntimeKind;

impl Cluster {
    /// A node's agent opened its stream. Unknown nodes join as "external" nodes. Returns the
    /// `Registered` reply, already queued on `conn`.
    pub fn attach(&mut self, reg: &pb::Register, conn: AgentConn) -> Result<()> {
        let name = reg.node_name.clone();
        if !self.nodes.contains_key(&name) {
            let spec = pb::NodeSpec {
                name: name.clone(),
                cpu_millis: reg.cpu_capacity_millis,
                labels: Default::default(),
                memory_bytes: reg.memory_capacity_bytes,
            };
            self.add_node(&spec, RuntimeKind::External)?;
        }
        let entry = self.nodes.get_mut(&name).expect("present");
        if !entry.node.instance_id.is_empty() && conn.instance != entry.node.instance_id {
            // Not the agent kube9d started for this node: never let it run the node's pods.
            return Err(Error::FailedPrecondition(format!(
                "node {name} runs the agent kube9d started for it; this agent ({}) is another one",
                conn.address
            )));
        }
        if let Some(live) = entry.agent.as_ref().filter(|a| !a.tx.is_closed()) {
            if live.instance != conn.instance {
                // Two agents claiming one node would run its pods twice.
                return Err(Error::FailedPrecondition(format!(
                    "node {name} already has an agent attached from {}; a second agent cannot take its place",
                    live.address
                )));
            }
        }
        if Fault::recorded(&entry.node) == Some(Fault::Partition) {
            // A partition on a runtime without networks: kube9d refuses the stream itself.
            return Err(Error::Unavailable(format!(
                "node {name} is partitioned from the control plane"
            )));
        }
        let status = entry.status();
        // A node that left comes back; so does a given-up node kube9d cannot remove (joined by
        // hand): both empty, their pods having moved. A given-up node kube9d owns is being
        // removed (and replaced): its old agent must go.
        let owned = self.owned_handle(&name).is_some();
        if status == NodeStatus::Left || (status == NodeStatus::PermanentlyFailed && !owned) {
            let why = format!("its agent rejoined (it was {})", status.label());
            self.transition(&name, NodeStatus::Initializing, &why);
            let entry = self.nodes.get_mut(&name).expect("present");
            entry.reaped = false;
            entry.awaiting_fence = false;
        }
        let entry = self.nodes.get_mut(&name).expect("present");
        let status = entry.status();
        if matches!(status, NodeStatus::PermanentlyFailed | NodeStatus::Draining) {
            // Not welcome back: stop whatever it still runs, then tell it to go.
            let _ = conn.tx.send(registered(&name, &self.settings, Vec::new()));
            for p in &reg.pods {
                let _ = conn.tx.send(pb::ControlMessage {
                    msg: Some(Msg::DeletePod(pb::DeletePod {
                        pod_name: p.pod_name.clone(),
                        pod_uid: p.pod_uid.clone(),
                        grace_period_ms: 0,
                        pod_namespace: p.pod_namespace.clone(),
                    })),
                });
            }
            let _ = conn.tx.send(pb::ControlMessage {
                msg: Some(Msg::Terminate(pb::Terminate {
                    reason: format!("node {name} is {}", status.label()),
                })),
            });
            return Err(Error::FailedPrecondition(format!(
                "node {name} is {}; it cannot rejoin",
                status.label()
            )));
        }
        let adopt = self.adoptable(&name, &reg.adoptable_pod_uids);
        let _ = conn
            .tx
            .send(registered(&name, &self.settings, adopt.clone()));
        let address = conn.address.clone();
        let entry = self.nodes.get_mut(&name).expect("present");
        entry.agent = Some(conn);
        entry.node.agent_version = reg.agent_version.clone();
        entry.node.pod_isolation = reg.pod_isolation.clone();
        if reg.cpu_capacity_millis > 0
            && entry
                .node
                .runtime
                .as_ref()
                .is_some_and(|r| RuntimeKind::External.matches(r))
        {
            entry.node.cpu_capacity_millis = reg.cpu_capacity_millis;
            entry.node.memory_capacity_bytes = reg.memory_capacity_bytes;
            // The scheduler places by free capacity: it must see the new size at once.
            let free = crate::scheduler::Resources::free(&entry.node, entry.allocated);
            let schedulable = entry.schedulable();
            self.scheduler.upsert(&name, free, schedulable);
        }
        tracing::info!(node = %name, %address, pods = reg.pods.len(), "agent attached");
        self.resync(&name, &reg.pods, &adopt);
        self.save_node(&name, pb::WatchEventType::Modified);
        Ok(())
    }

    /// Of the pods whose containers a new agent found left in its engine (`found`, by uid),
    /// those it should take over: still bound to `node`, neither finished nor being deleted.
    fn adoptable(&self, node: &str, found: &[String]) -> Vec<String> {
        let Some(entry) = self.nodes.get(node) else {
            return Vec::new();
        };
        entry
            .pods
            .iter()
            .filter_map(|name| self.pods.get(name))
            .filter(|pod| {
                !pod.phase().is_terminal()
                    && pod.phase() != PodPhase::Terminating
                    && found.contains(&pod.uid)
            })
            .map(|pod| pod.uid.clone())
            .collect()
    }

    /// Reconciles what an agent runs with what is bound to it: stale copies are stopped,
    /// missing pods are (re)started, reported statuses are applied. Pods in `adopt` are sent
    /// again as they are: the agent takes over their running containers.
    fn resync(&mut self, node: &str, reported: &[pb::PodStatus], adopt: &[String]) {
        for status in reported {
            // Stale copies get a DeletePod inside apply_pod_status.
            self.apply_pod_status(node, status.clone());
        }
        let bound: Vec<String> = self.nodes[node].pods.iter().cloned().collect();
        for name in bound {
            let Some(pod) = self.pods.get(&name) else {
                continue;
            };
            if pod.phase().is_terminal() {
                continue;
            }
            let known = reported.iter().any(|s| {
                s.pod_name == pod.name
                    && kube9_proto::namespace::or_default(&s.pod_namespace) == pod.ns()
                    && s.pod_uid == pod.uid
                    && !s.deleted
            });
            if pod.phase() == PodPhase::Terminating {
                let msg = Msg::DeletePod(pb::DeletePod {
                    pod_name: pod.name.clone(),
                    pod_uid: pod.uid.clone(),
                    grace_period_ms: 0,
                    pod_namespace: pod.ns().to_string(),
                });
                if known {
                    self.send(node, msg);
                } else {
                    self.pod_stopped(&name, node, &format!("containers gone from {node}"));
                }
                continue;
            }
            if !known {
                let pod = self.pods.get_mut(&name).expect("present");
                if adopt.contains(&pod.uid) {
                    tracing::info!(node, pod = %name, "the agent takes over the pod's containers");
                } else if pod.phase() == PodPhase::Running {
                    pod.set_phase(PodPhase::Scheduled);
                    pod.started_ms = 0;
                    pod.reason = format!("restarting on {node}: the agent no longer runs it");
                    super::pods::back_to_waiting(pod);
                    let why = pod.reason.clone();
                    self.save_pod(&name, pb::WatchEventType::Modified);
                    self.event("Pod", &name, true, "Restarting", why);
                }
                self.dispatch(&name);
            }
        }
    }

    /// The agent said goodbye (it got SIGTERM): a graceful leave. The node shows as left,
    /// not failed, and is neither recovered nor reaped; the same agent (or its container)
    /// started again rejoins.
    pub fn deregister(&mut self, node: &str, reason: &str) {
        let why = if reason.is_empty() {
            "agent left".to_string()
        } else {
            format!("agent left: {reason}")
        };
        // The agent stopped its pods before it said goodbye: they move at once.
        if self.transition(node, NodeStatus::Left, &why) {
            self.evict_pods(node, Eviction::Left);
        } else if self.nodes.get(node).map(|e| e.status()) == Some(NodeStatus::PermanentlyFailed) {
            self.evict_pods(node, Eviction::PermanentlyFailed);
        }
    }

    /// The stream of connection `conn_id` ended.
    pub fn detach(&mut self, node: &str, conn_id: u64) {
        let Some(entry) = self.nodes.get_mut(node) else {
            return;
        };
        if entry.agent.as_ref().map(|a| a.id) == Some(conn_id) {
            entry.agent = None;
            tracing::info!(node, "agent detached");
            self.save_node(node, pb::WatchEventType::Modified);
        }
    }
}

/// The reply to Register: the settings every agent of this cluster follows.
fn registered(node: &str, settings: &Settings, adopt_pod_uids: Vec<String>) -> pb::ControlMessage {
    pb::ControlMessage {
        msg: Some(Msg::Registered(pb::Registered {
            node_name: node.to_string(),
            heartbeat_interval_ms: settings.heartbeat_interval.as_millis() as u64,
            cluster_id: String::new(),
            crash_backoff_base_ms: settings.crash_backoff_base.as_millis() as u64,
            crash_backoff_max_ms: settings.crash_backoff_max.as_millis() as u64,
            adopt_pod_uids,
            fence_ms: settings.node_fence.as_millis() as u64,
            allow_root_pods: settings.allow_root_process_pods,
        })),
    }
}
