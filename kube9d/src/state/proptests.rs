//! Property test of the control-plane state machine: random sequences of what agents, users
//! and the health loop do to a [`Cluster`], with its invariants checked after every step.
//!
//! Bounds: 256 cases of 1 to 60 operations each, on 3 external node names; the whole run
//! takes under a second (about 0.7 s in a debug build). Time is simulated: `health_tick` gets
//! a clock the test advances, and an accepted heartbeat is dated at that clock.
//!
//! The property found two bugs, fixed and kept as regression tests at the end: a node
//! re-registering with another CPU capacity left the scheduler's free figure stale, and a
//! finished pod reported Running again ran without its CPU counted. One pattern stays left
//! out: an agent re-registering with less CPU than its bound pods request overcommits the
//! node by design (its running pods stay, as a kubelet's do), which "allocated ≤ capacity"
//! would flag.
//!
//! Invariants, after every operation:
//! - CPU accounting is exact: each node's allocated CPU is the sum of the requests of the
//!   non-terminal pods bound to it, and never more than its capacity (nor negative).
//! - Bindings agree both ways: a bound pod is in its node's pod list, and every name in a
//!   node's pod list is a pod bound to that node (so no pod is bound to two nodes).
//! - An unbound pod is Pending and in the pending queue; the queue holds only unbound pods.
//! - No pod is lost: every pod added and not deleted still exists; a pod whose deletion was
//!   requested is Terminating while it exists; nothing deleted comes back.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use kube9_proto::pb::{self, NodeStatus, PodPhase};
use proptest::prelude::*;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::time::Instant;

use super::tests::{add, assert_cpu_invariant, cluster, conn, pod};
use super::{Cluster, PendingKey};

const NODES: [&str; 3] = ["n0", "n1", "n2"];
const NODE_CPU: [i64; 3] = [1000, 2000, 4000];
/// The last one fits no node.
const POD_CPU: [i64; 7] = [100, 250, 500, 1000, 1500, 3000, 10_000];
const TICK_MS: [u64; 5] = [100, 1500, 3000, 15_000, 70_000];

#[derive(Debug, Clone)]
enum Op {
    /// An agent attaches (joining the node if unknown) and sends its first heartbeat.
    Join {
        node: usize,
        cpu: usize,
    },
    /// An agent attaches again without a heartbeat yet, reporting the pods bound to its node
    /// as running (`report`) or nothing (it lost them).
    Rejoin {
        node: usize,
        cpu: usize,
        report: bool,
    },
    AddPod {
        cpu: usize,
    },
    DeletePod {
        pod: usize,
        grace_ms: u64,
    },
    Heartbeat {
        node: usize,
    },
    /// The agent's stream ends.
    Detach {
        node: usize,
    },
    /// The agent says goodbye (or an admin deregisters the node).
    Deregister {
        node: usize,
    },
    PermanentlyFail {
        node: usize,
    },
    Tick {
        ms: usize,
    },
    /// The agent of the pod's node reports a phase for it.
    Report {
        pod: usize,
        phase: PodPhase,
    },
    /// The agent of the pod's node confirms its containers are gone.
    ReportDeleted {
        pod: usize,
    },
    /// Another node's agent reports the pod (a stale copy).
    ReportElsewhere {
        pod: usize,
        node: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let node = 0..NODES.len();
    let cpu = 0..NODE_CPU.len();
    let pod = any::<usize>();
    prop_oneof![
        2 => (node.clone(), cpu.clone()).prop_map(|(node, cpu)| Op::Join { node, cpu }),
        1 => (node.clone(), cpu, any::<bool>())
            .prop_map(|(node, cpu, report)| Op::Rejoin { node, cpu, report }),
        4 => (0..POD_CPU.len()).prop_map(|cpu| Op::AddPod { cpu }),
        2 => (pod, prop_oneof![Just(0u64), Just(1000u64)])
            .prop_map(|(pod, grace_ms)| Op::DeletePod { pod, grace_ms }),
        3 => node.clone().prop_map(|node| Op::Heartbeat { node }),
        1 => node.clone().prop_map(|node| Op::Detach { node }),
        1 => node.clone().prop_map(|node| Op::Deregister { node }),
        1 => node.clone().prop_map(|node| Op::PermanentlyFail { node }),
        2 => (0..TICK_MS.len()).prop_map(|ms| Op::Tick { ms }),
        3 => (
            pod,
            prop_oneof![Just(PodPhase::Running), Just(PodPhase::Succeeded)]
        )
            .prop_map(|(pod, phase)| Op::Report { pod, phase }),
        1 => pod.prop_map(|pod| Op::ReportDeleted { pod }),
        1 => (pod, node).prop_map(|(pod, node)| Op::ReportElsewhere { pod, node }),
    ]
}

/// The cluster and what the test knows of it.
struct Sim {
    c: Cluster,
    now: Instant,
    /// The current connection of each node's agent, as the agent sees it.
    agents: HashMap<String, (u64, UnboundedReceiver<pb::ControlMessage>)>,
    next_conn: u64,
    /// Every pod ever added, in order (names are never reused).
    added: Vec<String>,
    delete_requested: BTreeSet<String>,
    gone: BTreeSet<String>,
}

impl Sim {
    fn new() -> Self {
        Sim {
            c: cluster(),
            now: Instant::now(),
            agents: HashMap::new(),
            next_conn: 1,
            added: Vec::new(),
            delete_requested: BTreeSet::new(),
            gone: BTreeSet::new(),
        }
    }

    fn pick_pod(&self, i: usize) -> Option<String> {
        (!self.added.is_empty()).then(|| self.added[i % self.added.len()].clone())
    }

    /// Whether `node`'s agent holds the connection kube9d knows as current: only then do its
    /// messages count (the agent service checks the same before applying them).
    fn current_conn(&self, node: &str) -> Option<u64> {
        let (id, _) = self.agents.get(node)?;
        let live = self.c.nodes.get(node)?.agent.as_ref()?.id;
        (live == *id).then_some(*id)
    }

    fn attach(&mut self, node: &str, cpu: i64, reported: Vec<pb::PodStatus>) -> Option<u64> {
        // A known node keeps the capacity it joined with: shrinking below what its pods
        // request overcommits it by design (see the module's doc).
        let cpu = self
            .c
            .nodes
            .get(node)
            .map_or(cpu, |e| e.node.cpu_capacity_millis);
        let id = self.next_conn;
        self.next_conn += 1;
        let (tx, rx) = unbounded_channel();
        let reg = pb::Register {
            node_name: node.into(),
            cpu_capacity_millis: cpu,
            pods: reported,
            ..Default::default()
        };
        // The agent's old stream is gone once it reconnects.
        self.agents.remove(node);
        self.c.attach(&reg, conn(id, tx)).ok()?;
        self.agents.insert(node.to_string(), (id, rx));
        Some(id)
    }

    fn heartbeat(&mut self, node: &str) {
        let Some(id) = self.current_conn(node) else {
            return;
        };
        let counts = self.c.nodes[node].status() != NodeStatus::PermanentlyFailed;
        self.c.heartbeat(node, id, pb::Heartbeat::default());
        if counts {
            // Dated on the simulated clock the health loop judges by.
            self.c.nodes.get_mut(node).expect("present").last_heartbeat = Some(self.now);
        }
    }

    /// A status for `name` as its node's agent would send it.
    fn status(p: &pb::Pod, phase: PodPhase, deleted: bool) -> pb::PodStatus {
        pb::PodStatus {
            pod_name: p.name.clone(),
            pod_namespace: p.ns().to_string(),
            pod_uid: p.uid.clone(),
            phase: phase as i32,
            deleted,
            ..Default::default()
        }
    }

    /// The bound node of `name` and its status, if that node's agent is connected.
    fn report_from_bound(
        &self,
        name: &str,
        phase: PodPhase,
        deleted: bool,
    ) -> Option<(String, pb::PodStatus)> {
        let p = self.c.pods.get(name)?;
        if p.node.is_empty() {
            return None;
        }
        self.current_conn(&p.node)?;
        Some((p.node.clone(), Self::status(p, phase, deleted)))
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Join { node, cpu } => {
                let name = NODES[node];
                if self.attach(name, NODE_CPU[cpu], Vec::new()).is_some() {
                    self.heartbeat(name);
                }
            }
            Op::Rejoin { node, cpu, report } => {
                let name = NODES[node];
                let reported = if report {
                    self.c
                        .pods
                        .values()
                        .filter(|p| p.node == name && !p.phase().is_terminal())
                        .map(|p| Self::status(p, PodPhase::Running, false))
                        .collect()
                } else {
                    Vec::new()
                };
                self.attach(name, NODE_CPU[cpu], reported);
            }
            Op::AddPod { cpu } => {
                let name = format!("p{}", self.added.len());
                add(&mut self.c, pod(&name, POD_CPU[cpu]));
                self.added.push(format!("default/{name}"));
            }
            Op::DeletePod { pod, grace_ms } => {
                let Some(name) = self.pick_pod(pod) else {
                    return;
                };
                let existed = self.c.pods.contains_key(&name);
                let result = self.c.delete_pod(&name, grace_ms);
                assert_eq!(result.is_ok(), existed, "delete {name}");
                if existed {
                    self.delete_requested.insert(name);
                }
            }
            Op::Heartbeat { node } => self.heartbeat(NODES[node]),
            Op::Detach { node } => {
                let name = NODES[node];
                if let Some((id, _rx)) = self.agents.remove(name) {
                    self.c.detach(name, id);
                }
            }
            Op::Deregister { node } => {
                let name = NODES[node];
                if self.c.nodes.contains_key(name) {
                    self.c.deregister(name, "test");
                }
            }
            Op::PermanentlyFail { node } => {
                self.c
                    .transition(NODES[node], NodeStatus::PermanentlyFailed, "test");
            }
            Op::Tick { ms } => {
                self.now += Duration::from_millis(TICK_MS[ms]);
                self.c.health_tick(self.now);
            }
            Op::Report { pod, phase } => {
                let Some(name) = self.pick_pod(pod) else {
                    return;
                };
                // A finished pod reported running again (a stale report) stays finished.
                if let Some((node, status)) = self.report_from_bound(&name, phase, false) {
                    self.c.apply_pod_status(&node, status);
                }
            }
            Op::ReportDeleted { pod } => {
                let Some(name) = self.pick_pod(pod) else {
                    return;
                };
                if let Some((node, status)) =
                    self.report_from_bound(&name, PodPhase::Unspecified, true)
                {
                    self.c.apply_pod_status(&node, status);
                }
            }
            Op::ReportElsewhere { pod, node } => {
                let (Some(name), node) = (self.pick_pod(pod), NODES[node]) else {
                    return;
                };
                let Some(p) = self.c.pods.get(&name) else {
                    return;
                };
                if p.node == node || self.current_conn(node).is_none() {
                    return;
                }
                let status = Self::status(p, PodPhase::Running, false);
                self.c.apply_pod_status(node, status);
            }
        }
        // Agents read their streams; nothing piles up.
        for (_, rx) in self.agents.values_mut() {
            while rx.try_recv().is_ok() {}
        }
    }

    fn check(&mut self) {
        let c = &self.c;
        assert_cpu_invariant(c);
        for (name, entry) in &c.nodes {
            let cap = entry.node.cpu_capacity_millis;
            assert!(
                (0..=cap).contains(&entry.allocated.cpu),
                "node {name}: {} CPU allocated of {cap}",
                entry.allocated.cpu
            );
            for p in &entry.pods {
                let bound = c.pods.get(p).map(|p| p.node.as_str());
                assert_eq!(bound, Some(name.as_str()), "{p} in node {name}'s list");
            }
        }
        let pending: BTreeSet<&str> = c.pending.iter().map(|k| k.name.as_str()).collect();
        for (key, p) in &c.pods {
            if p.node.is_empty() {
                assert_eq!(p.phase(), PodPhase::Pending, "unbound {key}");
                assert!(
                    c.pending.contains(&PendingKey::of(p)),
                    "unbound {key} not queued"
                );
            } else {
                let entry = c.nodes.get(&p.node);
                assert!(
                    entry.is_some_and(|e| e.pods.contains(key)),
                    "{key} bound to {} but not in its list",
                    p.node
                );
                assert!(!pending.contains(key.as_str()), "bound {key} still queued");
            }
        }
        for name in &pending {
            assert!(
                c.pods.get(*name).is_some_and(|p| p.node.is_empty()),
                "queued {name} is gone or bound"
            );
        }
        for name in &self.added {
            match c.pods.get(name) {
                Some(p) => {
                    assert!(!self.gone.contains(name), "deleted {name} came back");
                    if self.delete_requested.contains(name) {
                        assert_eq!(p.phase(), PodPhase::Terminating, "{name} being deleted");
                    }
                }
                None => {
                    assert!(self.delete_requested.contains(name), "{name} lost");
                    self.gone.insert(name.clone());
                }
            }
        }
        assert_eq!(
            c.pods.len(),
            self.added.len() - self.gone.len(),
            "unknown pods"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_operations_keep_the_cluster_consistent(ops in prop::collection::vec(op(), 1..=60)) {
        let mut sim = Sim::new();
        for op in &ops {
            sim.apply(op);
            sim.check();
        }
    }
}

/// Found by the property above (fixed): an external node whose agent
/// re-registers with a smaller CPU capacity gets its record updated (`attach`), but the
/// scheduler's free CPU for it is not, so pods are still placed against the old capacity and
/// the node ends up with more CPU allocated than it has. (With pods already bound, the new
/// capacity is also simply below what is allocated.)
#[test]
fn a_node_rejoining_with_less_cpu_is_not_overcommitted() {
    let mut sim = Sim::new();
    sim.apply(&Op::Join { node: 0, cpu: 1 }); // n0 with 2000m
    let (tx, _rx) = unbounded_channel();
    let reg = pb::Register {
        node_name: "n0".into(),
        cpu_capacity_millis: 1000,
        ..Default::default()
    };
    sim.c.attach(&reg, conn(100, tx)).unwrap();
    sim.c.heartbeat("n0", 100, pb::Heartbeat::default());
    assert_eq!(sim.c.nodes["n0"].node.cpu_capacity_millis, 1000);
    add(&mut sim.c, pod("big", 1500));
    // Failed before the fix: "big" was bound to n0, 1500m allocated of 1000m.
    assert_eq!(
        sim.c.pods["default/big"].node, "",
        "placed on a node too small"
    );
    assert_eq!(sim.c.pods["default/big"].phase(), PodPhase::Pending);
    assert_cpu_invariant(&sim.c);
}

/// Found by the property above (fixed; a finished pod now stays finished): a status report that moves a
/// finished (Succeeded) pod back to Running is applied, but the CPU released when it finished
/// is not reserved again, so the node runs a pod its allocation does not count (and the
/// scheduler may fill that CPU twice). `apply_pod_status` only accounts terminal-ward moves.
#[test]
fn a_finished_pod_reported_running_again_keeps_the_cpu_accounting_exact() {
    let mut sim = Sim::new();
    sim.apply(&Op::Join { node: 0, cpu: 0 });
    sim.apply(&Op::AddPod { cpu: 0 });
    assert_eq!(sim.c.pods["default/p0"].node, "n0");
    let report = |c: &mut Cluster, phase: PodPhase| {
        let status = Sim::status(&c.pods["default/p0"], phase, false);
        c.apply_pod_status("n0", status);
    };
    report(&mut sim.c, PodPhase::Succeeded);
    sim.check();
    report(&mut sim.c, PodPhase::Running);
    // Failed before the fix: p0 was Running on n0 again, and n0 had 0 CPU allocated.
    assert_eq!(sim.c.pods["default/p0"].phase(), PodPhase::Succeeded);
    sim.check();
}
