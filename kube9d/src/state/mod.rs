//! The control plane's working state: every node and pod in memory, behind one short-held lock.
//!
//! [`Control`] is the cheap-to-clone handle the API, the agent streams and the monitor share.
//! Every change goes through [`Control::mutate`]: the closure edits the in-memory [`Cluster`]
//! (no I/O while the lock is held), and the store operations, watch events and agent commands it
//! produced are queued *in the order they were made* before the lock is released. The caller
//! then awaits durability outside the lock, so many writers share one fsync (see
//! [`crate::store`]). Runtime work the change asks for ([`Action`]) goes to whoever took the
//! receiver from [`Control::load`] (the node operations in [`crate::nodeops`]); this module
//! never calls a runtime itself.
//!
//! Each concern of the lifecycles has its own file:
//! - [`nodes`]: the node status machine ([`Cluster::transition`]), node records, runtime claims.
//! - [`health`]: heartbeats, silence, component and container state: when a node fails,
//!   recovers or is given up.
//! - [`agents`]: what the agent stream changes (attach and resynchronise, deregister, detach).
//! - [`pods`]: pod admission, binding (best fit), phases reported by agents, deletion.
//! - [`reschedule`]: moving pods off nodes that are gone for good or drained.
//! - [`reaping`]: removing what a permanently failed node left behind.
//! - [`config`]: namespaces, ConfigMaps and Secrets.
//! - [`dispatch`]: sending a bound pod to its node, its ConfigMap and Secret references
//!   resolved (or waiting with `CreateContainerConfigError`).
//!
//! Pods, ConfigMaps and Secrets are keyed `namespace/name` ([`kube9_proto::namespace::key`]);
//! nodes and namespaces by name.

pub mod agents;
pub mod config;
pub mod dispatch;
pub mod drain;
#[cfg(test)]
mod drain_tests;
pub mod health;
pub mod history;
pub mod metadata;
pub mod nodes;
pub mod pods;
#[cfg(test)]
mod proptests;
pub mod reaping;
pub mod reschedule;
#[cfg(test)]
mod rollback_tests;
#[cfg(test)]
mod tests;
pub mod top;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kube9_proto::pb;
use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::config::Settings;
use crate::runtime::RuntimeKind;
use crate::scheduler::{Resources, Scheduler};
use crate::store::{Batch, Commit, Op, Snapshot, Store};

/// How many events are kept (in memory and on disk); older ones are dropped.
pub const EVENT_RETENTION: usize = 10_000;

/// Errors a user can act on; converted to gRPC statuses in one place (`api::status`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{kind} \"{name}\" not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Unavailable(String),
    /// A runtime call for the node is in flight (launch, restart, reap).
    #[error("node {0} is busy with a runtime call; try again")]
    Busy(String),
    /// Not found, with a message that says more than kind and name.
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    DeadlineExceeded(String),
    #[error("{0}")]
    Cancelled(String),
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub fn not_found(kind: &'static str, name: &str) -> Error {
    Error::NotFound {
        kind,
        name: name.to_string(),
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Where control messages for one connected agent go.
#[derive(Debug, Clone)]
pub struct AgentConn {
    /// Distinguishes a reconnect from the stream it replaced.
    pub id: u64,
    /// The agent process's own id (`Register.instance_id`): fences a second agent that claims
    /// the same node name.
    pub instance: String,
    pub tx: mpsc::UnboundedSender<pb::ControlMessage>,
    pub address: String,
}

/// A node and the bookkeeping the control plane keeps beside its wire record.
#[derive(Debug)]
pub struct NodeEntry {
    /// The stored record; `pods` and the allocations are filled in on read.
    pub node: pb::Node,
    pub pods: BTreeSet<String>,
    /// Sum of the requests of the non-terminal pods bound here.
    pub allocated: Resources,
    pub last_heartbeat: Option<Instant>,
    /// When the current status was entered.
    pub since: Instant,
    /// Failed: when the next recovery attempt may start.
    pub next_attempt_at: Option<Instant>,
    /// Recovering: when the attempt is given up if no heartbeat came.
    pub attempt_deadline: Option<Instant>,
    /// A runtime call (launch, restart, remove) is in flight; everyone else leaves the node's
    /// instance alone. Set and cleared only by [`Cluster::claim`] and [`Cluster::release`].
    busy: bool,
    /// The container or process of a permanently failed node has been removed.
    pub reaped: bool,
    /// A permanently failed node's pods wait for its agent's fence time, and an event said so.
    pub awaiting_fence: bool,
    pub agent: Option<AgentConn>,
    /// What the node's pods used at its last heartbeat (memory only, never stored).
    pub usage: Vec<pb::PodUsage>,
}

impl NodeEntry {
    pub fn new(node: pb::Node, last_heartbeat: Option<Instant>) -> Self {
        NodeEntry {
            node,
            pods: BTreeSet::new(),
            allocated: Resources::default(),
            last_heartbeat,
            since: Instant::now(),
            next_attempt_at: None,
            attempt_deadline: None,
            busy: false,
            reaped: false,
            awaiting_fence: false,
            agent: None,
            usage: Vec::new(),
        }
    }

    pub fn status(&self) -> pb::NodeStatus {
        self.node.status()
    }

    /// Whether new pods may be placed here: healthy and not cordoned.
    pub fn schedulable(&self) -> bool {
        self.status() == pb::NodeStatus::Healthy && !self.node.unschedulable
    }

    /// Whether a runtime call for this node is in flight.
    pub fn is_busy(&self) -> bool {
        self.busy
    }

    /// The wire view with derived fields filled in.
    pub fn view(&self) -> pb::Node {
        let mut n = self.node.clone();
        n.pods = self.pods.iter().cloned().collect();
        n.cpu_allocated_millis = self.allocated.cpu;
        n.memory_allocated_bytes = self.allocated.memory;
        n.agent_connected = self.agent.is_some();
        if let Some(a) = &self.agent {
            n.agent_address = a.address.clone();
        }
        n
    }
}

/// Everything the control plane knows, in memory.
#[derive(Default)]
pub struct Cluster {
    pub nodes: HashMap<String, NodeEntry>,
    /// By `namespace/name`, in key order (lists page through it).
    pub pods: BTreeMap<String, pb::Pod>,
    /// By name.
    pub namespaces: BTreeMap<String, pb::Namespace>,
    /// By `namespace/name`.
    pub config_maps: HashMap<String, pb::ConfigMap>,
    /// By `namespace/name`; encrypted by the store, never in events or logs.
    pub secrets: HashMap<String, pb::Secret>,
    pub scheduler: Scheduler,
    /// Unbound pods, largest CPU request first, then oldest.
    pub pending: BTreeSet<PendingKey>,
    pub events: VecDeque<pb::Event>,
    next_event_id: u64,
    next_seq: u64,
    /// The last resource version handed out ([`Cluster::next_version`]); see [`history`].
    version: u64,
    /// Store operations produced by the current mutation.
    batch: Batch,
    /// Watch notifications produced by the current mutation.
    watch_out: Vec<pb::WatchEvent>,
    /// Agent commands produced by the current mutation, delivered once it is durable.
    commands: Vec<(
        mpsc::UnboundedSender<pb::ControlMessage>,
        pb::ControlMessage,
    )>,
    /// Runtime work the current mutation asks for, handed to the node operations outside the lock.
    pub actions: Vec<Action>,
    /// Pods waiting for their agent to confirm deletion, and when kube9d stops waiting.
    pub terminating: HashMap<String, Instant>,
    /// Failed reaps wait until then before the next try.
    pub reap_retry_at: HashMap<String, Instant>,
    /// Bumped whenever a node's instance is (re)started: a container listing taken before
    /// that is stale and must not fail the node.
    pub instance_epoch: u64,
    /// The runtime nodes live in; handles of another kind (from a run with another runtime)
    /// are never restarted or reaped through this one. `None` without a runtime.
    pub runtime_kind: Option<RuntimeKind>,
    /// Pods moved off a node and not placed again yet, and why they moved.
    pub displaced: HashMap<String, reschedule::Displaced>,
    pub settings: Settings,
}

/// Order of the pending queue: largest CPU request first, then first come.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PendingKey {
    pub neg_cpu: i64,
    pub created_ms: i64,
    pub name: String,
}

impl PendingKey {
    pub fn of(pod: &pb::Pod) -> Self {
        PendingKey {
            neg_cpu: -pod.cpu_request_millis,
            created_ms: pod.created_ms,
            name: pod.key(),
        }
    }
}

/// Runtime work decided under the lock and carried out by [`crate::nodeops`] outside it. The
/// node is claimed ([`Cluster::claim`]) when the action is queued; carrying it out releases it.
#[derive(Debug, Clone, PartialEq)]
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

impl Action {
    /// The node the action is for.
    pub fn node(&self) -> &str {
        match self {
            Action::Restart { node, .. } | Action::Reap { node, .. } => node,
        }
    }
}

impl Cluster {
    /// A fresh resource version for a change being made: greater than every earlier one.
    /// Versions are handed out under the state lock, so in the order changes are made, which
    /// is the order they are published in (see [`history`]).
    pub fn next_version(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    /// The version of the latest change made in memory: a list taken under the same lock
    /// holds every change up to it (see [`history`]).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Queues a watch notification for the current change, stamped with its version (already
    /// on the object).
    fn notify(&mut self, kind: pb::WatchEventType, version: u64, object: pb::watch_event::Object) {
        self.watch_out.push(pb::WatchEvent {
            r#type: kind as i32,
            object: Some(object),
            resource_version: version,
        });
    }

    /// The node's runtime handle if this kube9d's runtime can act on it (see
    /// [`RuntimeKind::owns`]): the one ownership check.
    pub fn owned_handle(&self, node: &str) -> Option<pb::RuntimeHandle> {
        let handle = self.nodes.get(node)?.node.runtime.as_ref()?;
        self.runtime_kind
            .is_some_and(|k| k.owns(handle))
            .then(|| handle.clone())
    }

    /// Marks a runtime call in flight for `node`. Returns false when one already is; the caller
    /// then waits or leaves the node alone. Whoever claimed calls [`Cluster::release`].
    pub fn claim(&mut self, node: &str) -> Result<bool> {
        let entry = self
            .nodes
            .get_mut(node)
            .ok_or_else(|| not_found("node", node))?;
        if entry.busy {
            return Ok(false);
        }
        entry.busy = true;
        Ok(true)
    }

    /// Ends the runtime call [`Cluster::claim`] started.
    pub fn release(&mut self, node: &str) {
        if let Some(entry) = self.nodes.get_mut(node) {
            entry.busy = false;
        }
    }

    /// Records an event (persisted, broadcast, retained up to [`EVENT_RETENTION`]).
    /// `name` is the object's key: `namespace/name` for pods, the name for nodes and
    /// namespaces.
    pub fn event(&mut self, kind: &str, name: &str, warning: bool, reason: &str, message: String) {
        self.next_event_id += 1;
        let (namespace, name) = match kind {
            "Pod" | "ConfigMap" | "Secret" => kube9_proto::namespace::split(name),
            _ => ("", name),
        };
        let version = self.next_version();
        let ev = pb::Event {
            resource_version: version,
            id: self.next_event_id,
            time_ms: now_ms(),
            namespace: namespace.to_string(),
            object_kind: kind.to_string(),
            object_name: name.to_string(),
            reason: reason.to_string(),
            message,
            r#type: if warning { "Warning" } else { "Normal" }.to_string(),
        };
        tracing::debug!(kind, name, reason, message = %ev.message, "event");
        self.batch.push(Op::PutEvent(ev.clone()));
        self.notify(
            pb::WatchEventType::Added,
            version,
            pb::watch_event::Object::Event(ev.clone()),
        );
        self.events.push_back(ev);
        while self.events.len() > EVENT_RETENTION {
            if let Some(old) = self.events.pop_front() {
                self.batch.push(Op::DeleteEvent(old.id));
            }
        }
    }

    /// Persists a node's record and tells watchers.
    pub fn save_node(&mut self, name: &str, kind: pb::WatchEventType) {
        if !self.nodes.contains_key(name) {
            return;
        }
        let version = self.next_version();
        if let Some(entry) = self.nodes.get_mut(name) {
            entry.node.resource_version = version;
            self.batch.push(Op::PutNode(entry.node.clone()));
            let view = entry.view();
            self.notify(kind, version, pb::watch_event::Object::Node(view));
        }
    }

    /// Persists a pod and tells watchers.
    pub fn save_pod(&mut self, name: &str, kind: pb::WatchEventType) {
        if !self.pods.contains_key(name) {
            return;
        }
        let version = self.next_version();
        if let Some(pod) = self.pods.get_mut(name) {
            pod.resource_version = version;
            let pod = pod.clone();
            self.batch.push(Op::PutPod(pod.clone()));
            self.notify(kind, version, pb::watch_event::Object::Pod(pod));
        }
    }

    pub fn forget_pod_record(&mut self, mut pod: pb::Pod) {
        self.batch.push(Op::DeletePod(pod.key()));
        let version = self.next_version();
        pod.resource_version = version;
        let deleted = pb::WatchEventType::Deleted;
        self.notify(deleted, version, pb::watch_event::Object::Pod(pod));
    }

    pub fn forget_node_record(&mut self, mut node: pb::Node) {
        self.batch.push(Op::DeleteNode(node.name.clone()));
        let version = self.next_version();
        node.resource_version = version;
        let deleted = pb::WatchEventType::Deleted;
        self.notify(deleted, version, pb::watch_event::Object::Node(node));
    }

    pub fn put_meta(&mut self, key: &str, value: &str) {
        self.batch
            .push(Op::PutMeta(key.to_string(), value.to_string()));
    }

    /// Queues a command for a node's agent, if it is connected: it is delivered once the
    /// change that made it is durable (never, if that change is rolled back), and commands
    /// reach each agent in the order the state changed. Returns whether the agent is connected.
    pub fn send(&mut self, node: &str, msg: pb::control_message::Msg) -> bool {
        match self.nodes.get(node).and_then(|n| n.agent.as_ref()) {
            Some(agent) if !agent.tx.is_closed() => {
                let msg = pb::ControlMessage { msg: Some(msg) };
                self.commands.push((agent.tx.clone(), msg));
                true
            }
            _ => false,
        }
    }

    /// Tests of the lifecycle logic without a store: delivers the queued agent commands as a
    /// durable change would.
    #[cfg(test)]
    pub fn deliver_commands(&mut self) {
        for (tx, msg) in self.commands.drain(..) {
            let _ = tx.send(msg);
        }
    }

    /// Sends a message to a node's agent now, if it is connected: for what changes no state
    /// (heartbeat acknowledgements, log requests, injected faults).
    pub fn send_now(&self, node: &str, msg: pb::control_message::Msg) -> bool {
        match self.nodes.get(node).and_then(|n| n.agent.as_ref()) {
            Some(agent) => agent.tx.send(pb::ControlMessage { msg: Some(msg) }).is_ok(),
            None => false,
        }
    }

    /// A fresh identifier for a pod binding.
    pub fn new_uid(&mut self) -> String {
        self.next_seq += 1;
        format!("{:08x}{:08x}", rand::random::<u32>(), self.next_seq as u32)
    }

    /// Gives every node a fresh detection window, `extra` longer than usual: after kube9d
    /// (re)starts, agents need time to notice and reattach (their reconnect backoff is capped
    /// at 2 s), and a node must not be failed, or restarted, for kube9d's own absence.
    pub fn restart_clocks(&mut self, extra: std::time::Duration) {
        let later = Instant::now() + extra;
        let recovery_timeout = self.settings.recovery_timeout;
        for entry in self.nodes.values_mut() {
            entry.last_heartbeat = Some(later);
            entry.since = later;
            match entry.status() {
                pb::NodeStatus::Failed => entry.next_attempt_at = Some(later),
                pb::NodeStatus::Recovering => {
                    entry.attempt_deadline = Some(later + recovery_timeout)
                }
                _ => {}
            }
        }
    }

    /// Replaces the stored state with `snap` (what is durable), after a change the store
    /// refused: nodes keep their agents, clocks and runtime claims, and the bookkeeping that
    /// lives only in memory stays for the pods and nodes that are still there.
    fn roll_back_to(&mut self, snap: Snapshot) {
        let mut fresh = Cluster {
            settings: self.settings.clone(),
            runtime_kind: self.runtime_kind,
            ..Default::default()
        };
        fresh.restore(snap);
        // Only what `snap` holds: a store so old it lacks them is rolled back to as it is.
        fresh.batch = Batch::default();
        fresh.watch_out.clear();
        for (name, entry) in fresh.nodes.iter_mut() {
            if let Some(old) = self.nodes.get_mut(name) {
                entry.last_heartbeat = old.last_heartbeat;
                entry.since = old.since;
                entry.next_attempt_at = old.next_attempt_at;
                entry.attempt_deadline = old.attempt_deadline;
                entry.busy = old.busy;
                entry.awaiting_fence = old.awaiting_fence;
                entry.agent = old.agent.take();
            }
        }
        fresh.next_seq = self.next_seq;
        // Versions never go back, even over changes that were rolled back.
        fresh.version = fresh.version.max(self.version);
        fresh.instance_epoch = self.instance_epoch;
        let pods = &fresh.pods;
        fresh.terminating = std::mem::take(&mut self.terminating);
        (fresh.terminating).retain(|k, _| {
            pods.get(k)
                .is_some_and(|p| p.phase() == pb::PodPhase::Terminating)
        });
        fresh.displaced = std::mem::take(&mut self.displaced);
        (fresh.displaced).retain(|k, _| pods.get(k).is_some_and(|p| p.node.is_empty()));
        fresh.reap_retry_at = std::mem::take(&mut self.reap_retry_at);
        *self = fresh;
    }

    /// Rebuilds memory from a snapshot: derived fields (allocations, pod lists, the scheduler
    /// index) are recomputed from the pods, never trusted from disk.
    fn restore(&mut self, snap: Snapshot) {
        let now = Instant::now();
        for node in snap.nodes {
            let name = node.name.clone();
            let mut entry = NodeEntry::new(node, Some(now));
            // Reaping is done once: its result is the handle's state.
            entry.reaped = entry.status() == pb::NodeStatus::PermanentlyFailed
                && entry.node.runtime.as_ref().is_none_or(|h| {
                    h.state == reaping::REMOVED || RuntimeKind::External.matches(h)
                });
            self.nodes.insert(name, entry);
        }
        for mut pod in snap.pods {
            let bound = !pod.node.is_empty() && self.nodes.contains_key(&pod.node);
            if !pod.node.is_empty() && !bound {
                // Its node is gone: back to the queue.
                pod.node.clear();
                pod.set_phase(pb::PodPhase::Pending);
                pod.reason = "its node no longer exists".into();
            }
            if pod.phase() == pb::PodPhase::Terminating {
                // Deadlines are not stored: a restarted kube9d gives the agent the pod's grace
                // period (or the default) again.
                let grace = Duration::from_millis(self.grace_ms(&pod, 0));
                let deadline = Instant::now() + grace + pods::TERMINATING_MARGIN;
                self.terminating.insert(pod.key(), deadline);
            }
            if bound {
                let entry = self.nodes.get_mut(&pod.node).expect("checked above");
                entry.pods.insert(pod.key());
                if !pod.phase().is_terminal() {
                    entry.allocated += Resources::of(&pod);
                }
            } else if pod.phase() == pb::PodPhase::Pending {
                self.pending.insert(PendingKey::of(&pod));
            }
            self.pods.insert(pod.key(), pod);
        }
        for entry in self.nodes.values() {
            self.scheduler.upsert(
                &entry.node.name,
                Resources::free(&entry.node, entry.allocated),
                entry.schedulable(),
            );
            (self.scheduler).set_cordoned(&entry.node.name, entry.node.unschedulable);
        }
        self.next_event_id = snap.events.last().map(|e| e.id).unwrap_or(0);
        // Versions go on from the newest one stored, so they keep increasing across restarts.
        self.version = (self.pods.values().map(|p| p.resource_version))
            .chain(self.nodes.values().map(|n| n.node.resource_version))
            .chain(snap.events.iter().map(|e| e.resource_version))
            .chain(snap.namespaces.iter().map(|n| n.resource_version))
            .chain(snap.config_maps.iter().map(|c| c.resource_version))
            .chain(snap.secrets.iter().map(|s| s.resource_version))
            .fold(self.version, u64::max);
        self.events = snap.events.into();
        for ns in snap.namespaces {
            self.namespaces.insert(ns.name.clone(), ns);
        }
        for cm in snap.config_maps {
            self.config_maps.insert(cm.key(), cm);
        }
        for s in snap.secrets {
            self.secrets.insert(s.key(), s);
        }
        // Stores from before namespaces, and new ones, get `default`; a namespace whose
        // deletion was interrupted finishes.
        self.ensure_default_namespace();
        self.finish_namespaces();
    }
}

/// What one change makes known outside, held until the change is durable.
struct Outbox {
    watch: Vec<pb::WatchEvent>,
    commands: Vec<(
        mpsc::UnboundedSender<pb::ControlMessage>,
        pb::ControlMessage,
    )>,
    actions: Vec<Action>,
}

impl Outbox {
    fn is_empty(&self) -> bool {
        self.watch.is_empty() && self.commands.is_empty() && self.actions.is_empty()
    }

    fn publish(self, inner: &Shared) {
        if !self.watch.is_empty() {
            // Recorded and sent under the history's lock: a watch that starts replaying from
            // the history (`Control::watch_from`) gets each change exactly once.
            let mut history = inner.history.lock();
            for ev in self.watch {
                history.record(ev.clone());
                let _ = inner.watch.send(ev);
            }
        }
        for (tx, msg) in self.commands {
            // An agent that went away resynchronises when it attaches again.
            let _ = tx.send(msg);
        }
        for action in self.actions {
            // Nobody takes actions only in unit tests and at shutdown.
            let _ = inner.actions.send(action);
        }
    }
}

/// Shared handle to the control plane's state, store and runtime.
#[derive(Clone)]
pub struct Control {
    inner: Arc<Shared>,
}

struct Shared {
    state: Mutex<Cluster>,
    store: Store,
    watch: broadcast::Sender<pb::WatchEvent>,
    /// The recent watch events, for watches that start from a version.
    history: Mutex<history::History>,
    actions: mpsc::UnboundedSender<Action>,
    cluster_id: String,
    server_port: AtomicU16,
    next_conn: AtomicU64,
    relay: crate::relay::Relay,
}

impl Control {
    /// Loads the stored state and returns the handle, and the receiver of the runtime work
    /// ([`Action`]s) that changes ask for, for the node operations to carry out.
    pub fn load(
        store: Store,
        settings: Settings,
        runtime_kind: Option<RuntimeKind>,
        cluster_id: String,
    ) -> Result<(Self, mpsc::UnboundedReceiver<Action>)> {
        let snap = store.load()?;
        let mut cluster = Cluster {
            settings,
            runtime_kind,
            ..Default::default()
        };
        cluster.restore(snap);
        let history = history::History::new(history::CAPACITY, cluster.version());
        let (watch, _) = broadcast::channel(16_384);
        let (actions, actions_rx) = mpsc::unbounded_channel();
        let control = Control {
            inner: Arc::new(Shared {
                state: Mutex::new(cluster),
                store,
                watch,
                history: Mutex::new(history),
                actions,
                cluster_id,
                server_port: AtomicU16::new(0),
                next_conn: AtomicU64::new(1),
                relay: Default::default(),
            }),
        };
        Ok((control, actions_rx))
    }

    /// Applies `f` to the state; returns its result and the durability of what it changed.
    ///
    /// What the change makes known outside goes out only once it is durable, in the order
    /// changes were made: watch events, agent commands, and the runtime actions `f` asked for
    /// (restarts, reaping; carried out by the action receiver's owner, outside the lock). A
    /// change the store refuses is rolled back ([`Control::roll_back`]) and none of it goes
    /// out; the returned commit then fails with the store's reason.
    pub fn mutate<R>(&self, f: impl FnOnce(&mut Cluster) -> R) -> (R, Commit) {
        let mut c = self.inner.state.lock();
        let r = f(&mut c);
        let batch = std::mem::take(&mut c.batch);
        let out = Outbox {
            watch: std::mem::take(&mut c.watch_out),
            commands: std::mem::take(&mut c.commands),
            actions: std::mem::take(&mut c.actions),
        };
        if batch.is_empty() && out.is_empty() {
            return (r, Commit::done());
        }
        let wrote = !batch.is_empty();
        let shared = Arc::downgrade(&self.inner);
        // Submitted under the lock, so changes reach the store (and go out) in their order.
        let commit = self.inner.store.submit_then(
            batch,
            Box::new(move |result| {
                let Some(inner) = shared.upgrade() else {
                    return;
                };
                match result {
                    Ok(()) => out.publish(&inner),
                    Err(e) => Control { inner }.roll_back(wrote, out, e),
                }
            }),
        );
        (r, commit)
    }

    /// Undoes a change the store refused: the state is rebuilt from what is durable, keeping
    /// what lives only in memory (connected agents, heartbeat clocks, runtime calls in
    /// flight), and the nodes the change's actions claimed are released. Runs on the store's
    /// writer thread, before anything submitted later is acknowledged.
    fn roll_back(&self, wrote: bool, out: Outbox, why: &crate::store::Error) {
        let mut c = self.inner.state.lock();
        if wrote {
            match self.inner.store.load() {
                Ok(snap) => {
                    c.roll_back_to(snap);
                    tracing::warn!(error = %why, "a change was refused by the store and rolled back");
                }
                Err(e) => tracing::error!(error = %e, "cannot roll back to the durable state"),
            }
        }
        for action in &out.actions {
            c.release(action.node());
        }
    }

    /// Like [`Control::mutate`] for changes nobody waits on (status reports): the store write
    /// is queued without waiting for its acknowledgement.
    pub fn mutate_detached<R>(&self, f: impl FnOnce(&mut Cluster) -> R) -> R {
        self.mutate(f).0
    }

    /// Reads the state.
    pub fn read<R>(&self, f: impl FnOnce(&Cluster) -> R) -> R {
        f(&self.inner.state.lock())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<pb::WatchEvent> {
        self.inner.watch.subscribe()
    }

    /// A watch from `version` (0: from now on): the published changes after it, then the
    /// receiver of every later one, with nothing missed or repeated between the two. Fails
    /// when the history no longer holds every change after `version`.
    pub fn watch_from(
        &self,
        version: u64,
    ) -> Result<(Vec<pb::WatchEvent>, broadcast::Receiver<pb::WatchEvent>), history::Expired> {
        let history = self.inner.history.lock();
        let rx = self.inner.watch.subscribe();
        Ok((history.since(version)?, rx))
    }

    pub fn cluster_id(&self) -> &str {
        &self.inner.cluster_id
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn set_server_port(&self, port: u16) {
        self.inner.server_port.store(port, Ordering::Relaxed);
    }

    pub fn server_port(&self) -> u16 {
        self.inner.server_port.load(Ordering::Relaxed)
    }

    pub fn next_conn_id(&self) -> u64 {
        self.inner.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Requests relayed to agents and their replies.
    pub fn relay(&self) -> &crate::relay::Relay {
        &self.inner.relay
    }
}
