//! The control loops that keep nodes honest.
//!
//! - **Health** ([`health_loop`]): every tick, nodes whose heartbeats stopped are failed, failed
//!   nodes get recovery attempts (with backoff) until they heartbeat again or the attempts run
//!   out, and permanently failed nodes are reaped.
//! - **Containers** ([`container_loop`]): one `list_owned` call per period tells which node
//!   containers (or processes) are not running; their nodes are failed with the reason.
//!
//! Decisions are made under the state lock ([`crate::state::Cluster`]); runtime calls (Docker,
//! processes) are [`Action`]s run afterwards, outside it, and report back through `mutate`.

use std::collections::HashMap;
use std::time::Duration;

use crate::shutdown::Shutdown;
use kube9_proto::pb::{self, NodeStatus};
use tokio::time::Instant;

use crate::runtime::{NodeLaunch, Observed};
use crate::state::{Cluster, Control};

/// How long a failed reap waits before it is tried again.
const REAP_RETRY: Duration = Duration::from_secs(2);

/// Runtime work decided under the lock and run outside it.
#[derive(Debug, Clone)]
pub enum Action {
    /// Restart a failed node's container or process (recovery attempt `attempt`).
    Restart {
        node: String,
        handle: pb::RuntimeHandle,
        attempt: u32,
    },
    /// Remove a permanently failed node's container or process.
    Reap {
        node: String,
        handle: pb::RuntimeHandle,
    },
}

/// Runs actions in the background.
pub fn spawn_actions(control: Control, actions: Vec<Action>) {
    for action in actions {
        let control = control.clone();
        tokio::spawn(async move { run_action(&control, action).await });
    }
}

/// Runs one action and records its outcome.
pub async fn run_action(control: &Control, action: Action) {
    let Some(runtime) = control.runtime().cloned() else {
        // Nothing to restart or remove (external nodes); just clear the flag.
        control.mutate_detached(|c| {
            let (Action::Reap { node, .. } | Action::Restart { node, .. }) = &action;
            if let Some(e) = c.nodes.get_mut(node) {
                e.busy = false;
                e.reaped = true;
            }
        });
        return;
    };
    match action {
        Action::Restart {
            node,
            handle,
            attempt,
        } => {
            let spec = launch_spec(control, &node);
            let result = match spec {
                Some(spec) => runtime.restart(&handle, &spec).await,
                None => return,
            };
            control.mutate_detached(|c| {
                let Some(entry) = c.nodes.get_mut(&node) else {
                    return;
                };
                entry.busy = false;
                match result {
                    Ok(new_handle) => {
                        // The attempt's wait for a heartbeat starts now that the node runs again.
                        if entry.status() == NodeStatus::Recovering {
                            entry.attempt_deadline =
                                Some(Instant::now() + c.settings.recovery_timeout);
                        }
                        c.set_runtime_handle(&node, new_handle);
                        c.event(
                            "Node",
                            &node,
                            false,
                            "RecoveryAttempt",
                            format!(
                                "restarted the node ({} runtime), attempt {attempt}",
                                runtime.kind()
                            ),
                        );
                    }
                    Err(e) => {
                        let why = format!("recovery attempt {attempt} failed: {e}");
                        c.event("Node", &node, true, "RecoveryFailed", why.clone());
                        c.transition(&node, NodeStatus::Failed, &why);
                    }
                }
            });
        }
        Action::Reap { node, handle } => {
            let result = runtime.remove(&handle).await;
            control.mutate_detached(|c| {
                let Some(entry) = c.nodes.get_mut(&node) else {
                    return;
                };
                entry.busy = false;
                match result {
                    Ok(()) => {
                        entry.reaped = true;
                        c.reap_retry_at.remove(&node);
                        if let Some(h) = entry.node.runtime.as_mut() {
                            h.state = "removed".into();
                        }
                        c.save_node(&node, pb::WatchEventType::Modified);
                        c.event(
                            "Node",
                            &node,
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
                        c.reap_retry_at
                            .insert(node.clone(), Instant::now() + REAP_RETRY);
                    }
                }
            });
        }
    }
}

/// What the runtime needs to (re)start `node`.
pub fn launch_spec(control: &Control, node: &str) -> Option<NodeLaunch> {
    let interval = control.read(|c| c.settings.heartbeat_interval.as_millis() as u64);
    control.read(|c| {
        c.nodes.get(node).map(|e| NodeLaunch {
            name: node.to_string(),
            cpu_millis: e.node.cpu_capacity_millis,
            cluster_id: control.cluster_id().to_string(),
            server_port: control.server_port(),
            heartbeat_interval_ms: interval,
            instance_id: e.node.instance_id.clone(),
        })
    })
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

impl Cluster {
    /// One pass of the health loop.
    pub fn health_tick(&mut self, now: Instant) {
        let deadline = self.settings.heartbeat_deadline();
        let init_timeout = self.settings.init_timeout;
        let max_attempts = self.settings.max_recovery_attempts;
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for name in names {
            let entry = &self.nodes[&name];
            let silent_for = entry
                .last_heartbeat
                .map(|t| now.saturating_duration_since(t));
            match entry.status() {
                NodeStatus::Initializing => {
                    if silent_for.is_none()
                        && now.saturating_duration_since(entry.since) > init_timeout
                    {
                        self.transition(
                            &name,
                            NodeStatus::Failed,
                            "the agent never sent a heartbeat",
                        );
                    } else if silent_for.is_some_and(|s| s > deadline) {
                        self.transition(
                            &name,
                            NodeStatus::Failed,
                            &missed(silent_for.unwrap_or_default(), &self.settings),
                        );
                    }
                }
                NodeStatus::Healthy => {
                    if let Some(silent) = silent_for.filter(|s| *s > deadline) {
                        self.transition(&name, NodeStatus::Failed, &missed(silent, &self.settings));
                    }
                }
                NodeStatus::Failed => {
                    if entry.busy {
                        continue;
                    }
                    let attempts = entry.node.recovery_attempts;
                    if attempts >= max_attempts {
                        // No backoff here: waiting would only delay moving the pods.
                        let why = format!(
                            "gave up after {attempts} recovery attempts ({})",
                            entry.node.reason
                        );
                        self.transition(&name, NodeStatus::PermanentlyFailed, &why);
                        continue;
                    }
                    if entry.next_attempt_at.is_some_and(|t| t > now) {
                        continue;
                    }
                    let attempt = attempts + 1;
                    let handle = entry.node.runtime.clone().unwrap_or_default();
                    let restartable = handle.kind == self.runtime_kind && !handle.id.is_empty();
                    let entry = self.nodes.get_mut(&name).expect("present");
                    entry.node.recovery_attempts = attempt;
                    if restartable {
                        entry.busy = true;
                        self.actions.push(Action::Restart {
                            node: name.clone(),
                            handle,
                            attempt,
                        });
                    }
                    let how = if restartable {
                        "restarting it"
                    } else {
                        "waiting for its agent"
                    };
                    self.transition(
                        &name,
                        NodeStatus::Recovering,
                        &format!("recovery attempt {attempt}/{max_attempts}: {how}"),
                    );
                }
                NodeStatus::Recovering
                    if !entry.busy && entry.attempt_deadline.is_some_and(|t| t <= now) =>
                {
                    let why = format!(
                        "recovery attempt {} got no heartbeat",
                        entry.node.recovery_attempts
                    );
                    self.transition(&name, NodeStatus::Failed, &why);
                }
                NodeStatus::PermanentlyFailed => self.queue_reap(&name),
                _ => {}
            }
        }
        self.expire_terminating(now);
    }

    /// A pod whose agent never confirms its deletion is removed after its grace period and a
    /// margin, so a wedged agent cannot hold CPU forever.
    fn expire_terminating(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .terminating
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for name in expired {
            if self
                .pods
                .get(&name)
                .is_some_and(|p| p.phase() == pb::PodPhase::Terminating)
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

    /// Applies what the container monitor saw: nodes whose instance is not running fail.
    pub fn observe_instances(
        &mut self,
        kind: &str,
        seen: &HashMap<String, (pb::RuntimeHandle, Observed)>,
    ) {
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for name in names {
            let entry = &self.nodes[&name];
            let Some(handle) = entry.node.runtime.clone() else {
                continue;
            };
            if handle.kind != kind || handle.id.is_empty() || entry.busy {
                continue;
            }
            let observed = match seen.get(&name) {
                Some((h, obs)) if h.id == handle.id => obs.clone(),
                Some((_, _)) | None => Observed::Missing,
            };
            let label = observed.label();
            if handle.state != label && !(entry.reaped && observed == Observed::Missing) {
                let e = self.nodes.get_mut(&name).expect("present");
                if let Some(h) = e.node.runtime.as_mut() {
                    h.state = label.clone();
                }
                self.save_node(&name, pb::WatchEventType::Modified);
            }
            let status = self.nodes[&name].status();
            if observed != Observed::Running
                && matches!(
                    status,
                    NodeStatus::Healthy | NodeStatus::Initializing | NodeStatus::Recovering
                )
            {
                let why = match observed {
                    Observed::Exited { oom: true, .. } => "container was OOM-killed".to_string(),
                    Observed::Exited { code, .. } => {
                        format!("{} exited with code {code}", noun(kind))
                    }
                    Observed::Missing => format!("{} is missing", noun(kind)),
                    Observed::Running => unreachable!(),
                };
                self.transition(&name, NodeStatus::Failed, &why);
            }
        }
    }
}

fn noun(kind: &str) -> &'static str {
    if kind == "docker" {
        "container"
    } else {
        "process"
    }
}

fn missed(silent: Duration, s: &crate::config::Settings) -> String {
    format!(
        "missed {} heartbeats (last one {:.1}s ago)",
        s.missed_heartbeats,
        silent.as_secs_f64()
    )
}

/// Fails silent nodes, drives recovery and reaping, until shutdown.
pub async fn health_loop(control: Control, mut shutdown: Shutdown) {
    let tick = control.read(|c| {
        (c.settings.heartbeat_interval / 4)
            .clamp(Duration::from_millis(20), Duration::from_millis(250))
    });
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.wait() => return,
        }
        let (_, commit) = control.mutate(|c| c.health_tick(Instant::now()));
        drop(commit);
    }
}

/// Watches node containers (or processes) through the runtime, until shutdown.
pub async fn container_loop(control: Control, mut shutdown: Shutdown) {
    let Some(runtime) = control.runtime().cloned() else {
        return;
    };
    let period = control.read(|c| c.settings.container_check);
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.wait() => return,
        }
        let epoch = control.read(|c| c.instance_epoch);
        match runtime.list_owned().await {
            Ok(list) => {
                let seen: HashMap<String, (pb::RuntimeHandle, Observed)> = list
                    .into_iter()
                    .map(|i| (i.node_name, (i.handle, i.observed)))
                    .collect();
                control.mutate_detached(|c| {
                    // A node (re)started while we listed: the listing may predate it.
                    if c.instance_epoch == epoch {
                        c.observe_instances(runtime.kind(), &seen);
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "container monitor could not list node instances"),
        }
    }
}
