//! Pod lifecycle: admission, binding (best fit), phases reported by agents and deletion.
//! Moving pods off lost nodes is [`super::reschedule`].
//!
//! ```text
//! Pending ──node fits──▶ Scheduled ──agent started all──▶ Running ──▶ Succeeded | Failed
//!    ▲  no node fits: waits with a reason     │                          (CPU released)
//!    └──── node permanently failed / drained ─┘
//! any ──delete──▶ Terminating ──agent confirmed (or node gone)──▶ removed
//! ```
//! A node's allocated CPU is always the sum of the requests of its non-terminal bound pods:
//! [`Cluster::bind`] and [`Cluster::unbind`] are the only places that change it.

use kube9_proto::pb::{self, control_message::Msg, PodPhase};
use kube9_proto::quantity::format_cpu;

use std::time::Duration;

use tokio::time::Instant;

use super::{now_ms, Cluster, Error, PendingKey, Result};
use crate::scheduler::Resources;

/// How much longer than its grace period a deletion waits for the agent to confirm.
pub const TERMINATING_MARGIN: Duration = Duration::from_secs(10);

/// Where container engines listen: a container that can reach one of these can start any
/// container on the node, so mounting it is as good as `privileged`.
pub const ENGINE_SOCKETS: [&str; 2] = ["/var/run/docker.sock", "/run/docker.sock"];

/// What `apply` did with one object.
pub enum Admission {
    Created,
    /// An existing object gets new contents (ConfigMaps, Secrets, namespace labels).
    Configured,
    Unchanged,
}

impl Cluster {
    /// Checks that `pod` may be created; `Unchanged` when an identical pod already exists.
    pub fn admit_pod(&self, pod: &pb::Pod) -> Result<Admission> {
        self.admit_pod_with(pod, &std::collections::HashSet::new())
    }

    /// [`Self::admit_pod`], counting the namespaces in `creating` (made by the same apply) as
    /// existing.
    pub fn admit_pod_with(
        &self,
        pod: &pb::Pod,
        creating: &std::collections::HashSet<String>,
    ) -> Result<Admission> {
        kube9_proto::validate::validate_pod(pod).map_err(|e| Error::Invalid(e.to_string()))?;
        if !self.settings.allow_privileged {
            refuse_privileged(pod)?;
        }
        self.admit_into_with(pod.ns(), creating)?;
        let (name, ns) = (&pod.name, pod.ns());
        match self.pods.get(&pod.key()) {
            None => Ok(Admission::Created),
            Some(existing) if existing.phase() == PodPhase::Terminating => Err(Error::AlreadyExists(format!(
                "pod \"{name}\" in namespace \"{ns}\" is being deleted; apply it again once it is gone"
            ))),
            Some(existing) if same_spec(existing, pod) => Ok(Admission::Unchanged),
            Some(_) => Err(Error::AlreadyExists(format!(
                "pod \"{name}\" already exists in namespace \"{ns}\" with a different spec (pods are immutable: delete it first)"
            ))),
        }
    }

    /// Stores a new pod as Pending (it is placed by [`Cluster::place_pending`]).
    pub fn insert_pod(&mut self, mut pod: pb::Pod) {
        pod.namespace = pod.ns().to_string();
        pod.node.clear();
        pod.uid.clear();
        pod.set_phase(PodPhase::Pending);
        pod.reason = "waiting to be scheduled".into();
        pod.created_ms = now_ms();
        pod.scheduled_ms = 0;
        pod.started_ms = 0;
        pod.reschedules = 0;
        for c in pod
            .containers
            .iter_mut()
            .chain(pod.init_containers.iter_mut())
        {
            *c = spec_only(c);
        }
        back_to_waiting(&mut pod);
        // Decoding grew these by pushing, to room for four containers (~3 KB a pod with one,
        // issue 14); the pod is kept for its life, so it keeps only what it holds.
        pod.containers.shrink_to_fit();
        pod.init_containers.shrink_to_fit();
        pod.volumes.shrink_to_fit();
        let name = pod.key();
        self.pending.insert(PendingKey::of(&pod));
        self.pods.insert(name.clone(), pod);
        self.save_pod(&name, pb::WatchEventType::Added);
        self.event("Pod", &name, false, "Created", "pod created".into());
    }

    /// Places every pending pod that fits, largest CPU request first.
    pub fn place_pending(&mut self) {
        let Some(max_free) = self.scheduler.max_free() else {
            return;
        };
        // Pods asking for more than any node has free cannot fit: start past them.
        let start = PendingKey {
            neg_cpu: -max_free,
            created_ms: i64::MIN,
            name: String::new(),
        };
        let candidates: Vec<PendingKey> = self.pending.range(start..).cloned().collect();
        for key in candidates {
            let request = Resources::of(&self.pods[&key.name]);
            if let Some(node) = self.scheduler.pick(request).map(str::to_string) {
                self.bind(&key.name, &node);
            }
        }
    }

    /// Records why every pending pod waits (after the set of nodes changed).
    pub fn explain_pending(&mut self) {
        let names: Vec<String> = self.pending.iter().map(|k| k.name.clone()).collect();
        self.explain_pods(&names);
    }

    /// Records why these pods wait, for those still pending (after a placement round).
    pub fn explain_pods(&mut self, names: &[String]) {
        for name in names {
            let Some(pod) = self.pods.get_mut(name) else {
                continue;
            };
            if pod.phase() != PodPhase::Pending || !pod.node.is_empty() {
                continue;
            }
            let reason = self.scheduler.explain(Resources::of(pod));
            if pod.reason != reason {
                pod.reason = reason.clone();
                self.save_pod(name, pb::WatchEventType::Modified);
                self.event("Pod", name, true, "FailedScheduling", reason);
            }
        }
    }

    /// Binds a pending pod to `node`, reserving its CPU, and tells the node's agent to run it.
    pub fn bind(&mut self, pod_name: &str, node: &str) {
        let uid = self.new_uid();
        let Some(pod) = self.pods.get_mut(pod_name) else {
            return;
        };
        self.pending.remove(&PendingKey::of(pod));
        let request = Resources::of(pod);
        pod.node = node.to_string();
        pod.uid = uid;
        pod.set_phase(PodPhase::Scheduled);
        pod.reason.clear();
        pod.scheduled_ms = now_ms();
        let entry = self
            .nodes
            .get_mut(node)
            .expect("scheduler only offers known nodes");
        entry.pods.insert(pod_name.to_string());
        entry.allocated += request;
        self.scheduler.reserve(node, request);
        self.save_pod(pod_name, pb::WatchEventType::Modified);
        self.save_node(node, pb::WatchEventType::Modified);
        let (reason, msg) = match self.displaced.remove(pod_name) {
            Some(moved) => ("PodRescheduled", format!("{moved}, now on {node}")),
            None => (
                "Scheduled",
                format!("assigned to {node} ({} CPU)", format_cpu(request.cpu)),
            ),
        };
        self.event("Pod", pod_name, false, reason, msg);
        self.dispatch(pod_name);
    }

    /// Unbinds a pod from its node, releasing its CPU if it still held any.
    pub fn unbind(&mut self, pod_name: &str) -> Option<String> {
        let pod = self.pods.get_mut(pod_name)?;
        if pod.node.is_empty() {
            return None;
        }
        let node = std::mem::take(&mut pod.node);
        let holds = !pod.phase().is_terminal();
        let request = Resources::of(pod);
        if let Some(entry) = self.nodes.get_mut(&node) {
            entry.pods.remove(pod_name);
            if holds {
                entry.allocated -= request;
                self.scheduler.release(&node, request);
            }
            self.save_node(&node, pb::WatchEventType::Modified);
        }
        Some(node)
    }

    /// How long `pod`'s containers get between SIGTERM and SIGKILL: `requested_ms` when the
    /// caller gives one (`delete --grace-period`), else the pod's
    /// `terminationGracePeriodSeconds` (0: killed at once; 1 ms on the wire, where 0 means the
    /// agent's default), else kube9d's default (`Settings::delete_grace`).
    pub fn grace_ms(&self, pod: &pb::Pod, requested_ms: u64) -> u64 {
        if requested_ms > 0 {
            return requested_ms;
        }
        let grace = pod
            .termination_grace()
            .unwrap_or(self.settings.delete_grace);
        (grace.as_millis() as u64).max(1)
    }

    /// Starts deleting a pod, its containers given `grace_ms` to stop (0: see
    /// [`Cluster::grace_ms`]). Returns the pod as it is now (Terminating, or already gone).
    pub fn delete_pod(&mut self, name: &str, grace_ms: u64) -> Result<pb::Pod> {
        let pod = self
            .pods
            .get(name)
            .ok_or_else(|| super::not_found("pod", name))?
            .clone();
        let grace_ms = self.grace_ms(&pod, grace_ms);
        let agent_up = !pod.node.is_empty()
            && self
                .nodes
                .get(&pod.node)
                .map(|n| n.agent.is_some())
                .unwrap_or(false);
        if !pod.node.is_empty() {
            let msg = Msg::DeletePod(pb::DeletePod {
                pod_name: pod.name.clone(),
                pod_uid: pod.uid.clone(),
                grace_period_ms: grace_ms,
                pod_namespace: pod.ns().to_string(),
            });
            self.send(&pod.node, msg);
        }
        if agent_up && !pod.phase().is_terminal() {
            // Keep the CPU reserved until the agent confirms the processes are gone.
            let p = self.pods.get_mut(name).expect("present");
            // A pod being evicted is now deleted instead of moved.
            p.evicting = false;
            p.set_phase(PodPhase::Terminating);
            p.reason = "deletion requested".into();
            let deadline = Instant::now() + Duration::from_millis(grace_ms) + TERMINATING_MARGIN;
            self.terminating.insert(name.to_string(), deadline);
            self.save_pod(name, pb::WatchEventType::Modified);
            self.event(
                "Pod",
                name,
                false,
                "Killing",
                format!("stopping the pod's containers on {}", pod.node),
            );
            return Ok(self.pods[name].clone());
        }
        Ok(self.finish_delete(name, "pod deleted"))
    }

    /// Removes a pod record and releases whatever it held.
    pub fn finish_delete(&mut self, name: &str, msg: &str) -> pb::Pod {
        self.terminating.remove(name);
        self.displaced.remove(name);
        self.unbind(name);
        let pod = self.pods.remove(name).expect("caller checked");
        self.pending.remove(&PendingKey::of(&pod));
        self.forget_pod_record(pod.clone());
        self.event("Pod", name, false, "Deleted", msg.to_string());
        self.place_pending();
        if self.namespace_terminating(pod.ns()) {
            self.finish_namespaces();
        }
        pod
    }

    /// A pod whose agent never confirms its deletion is removed after its grace period and a
    /// margin, so a wedged agent cannot hold CPU forever.
    pub(super) fn expire_terminating(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .terminating
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for name in expired {
            if self.pods.get(&name).is_some_and(|p| p.evicting) {
                self.eviction_overdue(&name, now);
            } else if self
                .pods
                .get(&name)
                .is_some_and(|p| p.phase() == PodPhase::Terminating)
            {
                self.finish_delete(
                    &name,
                    "its node did not confirm the deletion in time; removed",
                );
            } else {
                self.terminating.remove(&name);
            }
        }
    }

    /// Applies a status report from the agent of `node`.
    pub fn apply_pod_status(&mut self, node: &str, status: pb::PodStatus) {
        let name = kube9_proto::namespace::key(&status.pod_namespace, &status.pod_name);
        let current = self.pods.get(&name);
        let ours = current
            .map(|p| p.node == node && (status.pod_uid.is_empty() || p.uid == status.pod_uid))
            .unwrap_or(false);
        if !ours {
            if !status.deleted {
                // A copy this node should not run (moved away, or deleted while it was gone).
                tracing::info!(node, pod = %name, "stopping stale pod copy");
                self.send(
                    node,
                    Msg::DeletePod(pb::DeletePod {
                        pod_name: status.pod_name,
                        pod_uid: status.pod_uid,
                        grace_period_ms: 0,
                        pod_namespace: status.pod_namespace,
                    }),
                );
            }
            return;
        }
        if status.deleted {
            if self.pods[&name].phase() == PodPhase::Terminating {
                self.pod_stopped(&name, node, &format!("containers stopped on {node}"));
            }
            return;
        }
        let pod = self.pods.get_mut(&name).expect("checked");
        if pod.phase() == PodPhase::Terminating {
            return;
        }
        copy_statuses(&mut pod.containers, &status.containers);
        copy_statuses(&mut pod.init_containers, &status.init_containers);
        pod.pod_ip = status.pod_ip.clone();
        if status.ready && !pod.ready {
            // When the control plane first sees the pod Ready (scripts/bench-pod-start).
            tracing::debug!(node, pod = %name, "pod ready");
        }
        pod.ready = status.ready;
        pod.status_reason = status.status_reason.clone();
        let from = pod.phase();
        let to = status.phase();
        // A finished pod stays finished (as in Kubernetes): a report that would start it again
        // is stale, and would run it without its resources counted.
        if to != PodPhase::Unspecified
            && to != from
            && !matches!(to, PodPhase::Pending | PodPhase::Terminating)
            && (!from.is_terminal() || to.is_terminal())
        {
            pod.set_phase(to);
            pod.reason = status.message.clone();
            if to == PodPhase::Running && pod.started_ms == 0 {
                pod.started_ms = now_ms();
            }
            let request = Resources::of(pod);
            if to.is_terminal() && !from.is_terminal() {
                // Finished pods hold no resources.
                if let Some(entry) = self.nodes.get_mut(node) {
                    entry.allocated -= request;
                    self.scheduler.release(node, request);
                }
                self.save_node(node, pb::WatchEventType::Modified);
            }
            let (warn, reason) = match to {
                PodPhase::Running => (false, "Started"),
                PodPhase::Succeeded => (false, "Completed"),
                PodPhase::Failed => (true, "Failed"),
                _ => (false, "PhaseChanged"),
            };
            self.event(
                "Pod",
                &name,
                warn,
                reason,
                match status.message.as_str() {
                    // How it ended, for a finished pod (the agent's words: exit codes, OOM).
                    why if to.is_terminal() && !why.is_empty() => {
                        format!("{} -> {} on {node}: {why}", from.label(), to.label())
                    }
                    _ => format!("{} -> {} on {node}", from.label(), to.label()),
                },
            );
            if to.is_terminal() {
                self.place_pending();
            }
        }
        self.save_pod(&name, pb::WatchEventType::Modified);
    }
}

/// A pod about to run again (on another node, or restarted on its own): nothing of it runs,
/// nothing is ready, it has no address. Restart counts stay.
pub(super) fn back_to_waiting(pod: &mut pb::Pod) {
    pod.pod_ip.clear();
    pod.ready = false;
    pod.status_reason.clear();
    for c in pod
        .containers
        .iter_mut()
        .chain(pod.init_containers.iter_mut())
    {
        c.set_state(pb::ContainerState::Waiting);
        c.pid = 0;
        c.ready = false;
        c.container_id.clear();
    }
}

/// Copies what the agent reports of each container onto the pod's containers of that name.
fn copy_statuses(containers: &mut [pb::Container], statuses: &[pb::ContainerStatus]) {
    for cs in statuses {
        if let Some(c) = containers.iter_mut().find(|c| c.name == cs.name) {
            c.state = cs.state;
            c.exit_code = cs.exit_code;
            c.restarts = cs.restarts;
            c.started_ms = cs.started_ms;
            c.finished_ms = cs.finished_ms;
            c.message = cs.message.clone();
            c.pid = cs.pid;
            c.ready = cs.ready;
            c.reason = cs.reason.clone();
            c.last_state = cs.last_state.clone();
            c.container_id = cs.container_id.clone();
        }
    }
}

/// Whether two pods have the same user-written spec.
/// Refuses what would give `pod` the node (kube9d without `--allow-privileged`): a privileged
/// container or init container, and a hostPath volume of the engine's socket or of a
/// directory that holds it.
fn refuse_privileged(pod: &pb::Pod) -> Result<()> {
    let name = &pod.name;
    let containers = (pod.init_containers.iter().map(|c| ("init container", c)))
        .chain(pod.containers.iter().map(|c| ("container", c)));
    for (kind, c) in containers {
        if c.security_context.as_ref().is_some_and(|s| s.privileged) {
            return Err(Error::Invalid(format!(
                "pod \"{name}\": {kind} \"{}\" sets securityContext.privileged, which kube9d refuses unless it runs with --allow-privileged",
                c.name
            )));
        }
    }
    for v in pod.volumes.iter().filter(|v| v.kind == "hostPath") {
        if let Some(socket) = exposed_socket(&v.source) {
            return Err(Error::Invalid(format!(
                "pod \"{name}\": volume \"{}\" is hostPath {:?}, which exposes the container engine's socket {socket}; kube9d refuses it unless it runs with --allow-privileged",
                v.name, v.source
            )));
        }
    }
    Ok(())
}

/// The engine socket `host_path` is, or holds (`/var/run`, `/`); paths are compared after
/// `.`, `..` and repeated or trailing slashes are resolved.
fn exposed_socket(host_path: &str) -> Option<&'static str> {
    use std::path::{Component, Path, PathBuf};
    let mut path = PathBuf::from("/");
    for component in Path::new(host_path).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::ParentDir => {
                path.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    ENGINE_SOCKETS
        .into_iter()
        .find(|socket| Path::new(socket).starts_with(&path))
}

fn same_spec(a: &pb::Pod, b: &pb::Pod) -> bool {
    let strip = |p: &pb::Pod| {
        let spec = |cs: &[pb::Container]| cs.iter().map(spec_only).collect::<Vec<_>>();
        (
            p.labels.clone(),
            spec(&p.containers),
            spec(&p.init_containers),
            p.volumes.clone(),
            p.config_items.clone(),
            p.restart_policy.clone(),
            p.annotations.clone(),
            p.ns().to_string(),
        )
    };
    strip(a) == strip(b)
}

/// A container as written by its user, without anything the agent reports.
fn spec_only(c: &pb::Container) -> pb::Container {
    pb::Container {
        state: 0,
        exit_code: 0,
        restarts: 0,
        started_ms: 0,
        finished_ms: 0,
        message: String::new(),
        pid: 0,
        ready: false,
        reason: String::new(),
        last_state: None,
        container_id: String::new(),
        ..c.clone()
    }
}
