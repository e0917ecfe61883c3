//! Best-fit placement on CPU, with memory as a constraint.
//!
//! Among the schedulable (healthy) nodes with at least the requested free CPU and free memory,
//! the node with the *least* free CPU wins; ties go to the node whose name sorts first, so
//! placement is deterministic. Free CPU per node is kept in an ordered set, so a placement is
//! one `O(log n)` range query (plus a skip past nodes short of memory) instead of a scan over
//! every node. A node with no memory capacity (0) does not track memory: every pod fits it.

use std::collections::{BTreeSet, HashMap, HashSet};

use kube9_proto::pb;
use kube9_proto::quantity::{format_cpu, format_memory};

/// CPU (millicores) and memory (bytes): what a pod requests, or what a node has free.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu: i64,
    pub memory: i64,
}

impl Resources {
    /// What a pod requests.
    pub fn of(pod: &pb::Pod) -> Self {
        Resources {
            cpu: pod.cpu_request_millis,
            memory: pod.memory_request_bytes,
        }
    }

    /// What a node with this capacity has free after `allocated`. Memory of a node without a
    /// memory capacity is unbounded.
    pub fn free(node: &pb::Node, allocated: Resources) -> Self {
        Resources {
            cpu: node.cpu_capacity_millis - allocated.cpu,
            memory: if node.memory_capacity_bytes > 0 {
                node.memory_capacity_bytes - allocated.memory
            } else {
                UNTRACKED
            },
        }
    }
}

impl std::ops::AddAssign for Resources {
    fn add_assign(&mut self, o: Self) {
        self.cpu += o.cpu;
        self.memory += o.memory;
    }
}

impl std::ops::SubAssign for Resources {
    fn sub_assign(&mut self, o: Self) {
        self.cpu -= o.cpu;
        self.memory -= o.memory;
    }
}

/// Free memory of a node that does not track memory: more than any pod can ask for, with room
/// to subtract every request.
const UNTRACKED: i64 = i64::MAX / 4;

/// Free resources of every node, and which nodes may take new pods.
#[derive(Debug, Default)]
pub struct Scheduler {
    /// `(free millicores, node name)` of schedulable nodes.
    by_free: BTreeSet<(i64, String)>,
    /// Free resources of every known node, schedulable or not.
    free: HashMap<String, Resources>,
    schedulable: HashMap<String, bool>,
    /// Nodes cordoned (unschedulable whatever their health), only to say so in [`Self::explain`].
    cordoned: HashSet<String>,
}

impl Scheduler {
    /// Adds or updates a node with its free resources and whether it may take new pods.
    pub fn upsert(&mut self, node: &str, free: Resources, schedulable: bool) {
        self.unindex(node);
        self.free.insert(node.to_string(), free);
        self.schedulable.insert(node.to_string(), schedulable);
        if schedulable {
            self.by_free.insert((free.cpu, node.to_string()));
        }
    }

    /// Marks a node as able (or not) to take new pods, keeping its free CPU.
    pub fn set_schedulable(&mut self, node: &str, schedulable: bool) {
        if let Some(&free) = self.free.get(node) {
            self.upsert(node, free, schedulable);
        }
    }

    /// Records whether a node is cordoned (its schedulability is set apart, with the rest).
    pub fn set_cordoned(&mut self, node: &str, cordoned: bool) {
        if cordoned {
            self.cordoned.insert(node.to_string());
        } else {
            self.cordoned.remove(node);
        }
    }

    pub fn remove(&mut self, node: &str) {
        self.cordoned.remove(node);
        self.unindex(node);
        self.free.remove(node);
        self.schedulable.remove(node);
    }

    /// The best-fit node for `request`, if any.
    pub fn pick(&self, request: Resources) -> Option<&str> {
        self.by_free
            .range((request.cpu, String::new())..)
            .find(|(_, name)| self.free[name].memory >= request.memory)
            .map(|(_, name)| name.as_str())
    }

    /// Takes `r` from a node's free resources (a pod was bound to it).
    pub fn reserve(&mut self, node: &str, r: Resources) {
        self.adjust(node, |free| *free -= r);
    }

    /// Gives `r` back to a node (a pod left it).
    pub fn release(&mut self, node: &str, r: Resources) {
        self.adjust(node, |free| *free += r);
    }

    /// Most free CPU on any schedulable node (`None` when no node is schedulable).
    pub fn max_free(&self) -> Option<i64> {
        self.by_free.last().map(|(free, _)| *free)
    }

    /// Why `request` fits nowhere, e.g. `0/3 nodes have 2 free CPU (1 not healthy)`.
    pub fn explain(&self, request: Resources) -> String {
        // O(1): explain runs once per pending pod, and there may be many of both.
        let total = self.free.len();
        let unschedulable = total - self.by_free.len();
        let mut msg = format!("0/{total} nodes have {} free CPU", format_cpu(request.cpu));
        if request.memory > 0 {
            msg.push_str(&format!(
                " and {} free memory",
                format_memory(request.memory)
            ));
        }
        let cordoned = self.cordoned.len().min(unschedulable);
        match (unschedulable - cordoned, cordoned) {
            (0, 0) => {}
            (sick, 0) => msg.push_str(&format!(" ({sick} not healthy)")),
            (0, cordoned) => msg.push_str(&format!(" ({cordoned} cordoned)")),
            (sick, cordoned) => {
                msg.push_str(&format!(" ({sick} not healthy, {cordoned} cordoned)"))
            }
        }
        msg
    }

    fn adjust(&mut self, node: &str, change: impl FnOnce(&mut Resources)) {
        let Some(&free) = self.free.get(node) else {
            return;
        };
        let mut free = free;
        change(&mut free);
        let schedulable = self.schedulable.get(node).copied().unwrap_or(false);
        self.upsert(node, free, schedulable);
    }

    fn unindex(&mut self, node: &str) {
        if let Some(free) = self.free.get(node) {
            self.by_free.remove(&(free.cpu, node.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(millis: i64) -> Resources {
        Resources {
            cpu: millis,
            memory: 0,
        }
    }

    fn sched(nodes: &[(&str, i64)]) -> Scheduler {
        let mut s = Scheduler::default();
        for (name, free) in nodes {
            s.upsert(
                name,
                Resources {
                    cpu: *free,
                    memory: UNTRACKED,
                },
                true,
            );
        }
        s
    }

    #[test]
    fn least_free_cpu_that_fits_wins() {
        let s = sched(&[("a", 4000), ("b", 1000), ("c", 2000)]);
        assert_eq!(s.pick(cpu(1500)), Some("c"));
        assert_eq!(s.pick(cpu(1000)), Some("b"));
        assert_eq!(s.pick(cpu(3000)), Some("a"));
    }

    #[test]
    fn ties_go_to_the_first_name() {
        let s = sched(&[("n3", 2000), ("n1", 2000), ("n2", 2000)]);
        assert_eq!(s.pick(cpu(500)), Some("n1"));
    }

    #[test]
    fn nothing_fits_is_explained() {
        let mut s = sched(&[("a", 1000), ("b", 1500)]);
        s.upsert("c", cpu(8000), false);
        assert_eq!(s.pick(cpu(2000)), None);
        assert_eq!(
            s.explain(cpu(2000)),
            "0/3 nodes have 2 free CPU (1 not healthy)"
        );
        s.upsert("d", cpu(8000), false);
        s.set_cordoned("d", true);
        assert_eq!(s.pick(cpu(2000)), None);
        assert_eq!(
            s.explain(cpu(2000)),
            "0/4 nodes have 2 free CPU (1 not healthy, 1 cordoned)"
        );
    }

    #[test]
    fn cordoned_nodes_are_skipped_until_uncordoned() {
        let mut s = sched(&[("a", 1000), ("b", 3000)]);
        s.set_schedulable("a", false);
        s.set_cordoned("a", true);
        assert_eq!(s.pick(cpu(500)), Some("b"));
        assert_eq!(s.pick(cpu(3500)), None);
        assert_eq!(
            s.explain(cpu(3500)),
            "0/2 nodes have 3500m free CPU (1 cordoned)"
        );
        s.set_cordoned("a", false);
        s.set_schedulable("a", true);
        assert_eq!(s.pick(cpu(500)), Some("a"));
    }

    #[test]
    fn reserve_and_release_move_a_node_in_the_order() {
        let mut s = sched(&[("a", 4000), ("b", 3000)]);
        s.reserve("a", cpu(2000));
        assert_eq!(s.pick(cpu(1000)), Some("a"));
        s.release("a", cpu(2000));
        assert_eq!(s.pick(cpu(1000)), Some("b"));
        assert_eq!(s.max_free(), Some(4000));
    }

    #[test]
    fn unschedulable_nodes_are_skipped_but_keep_their_accounting() {
        let mut s = sched(&[("a", 1000), ("b", 3000)]);
        s.set_schedulable("a", false);
        assert_eq!(s.pick(cpu(500)), Some("b"));
        s.reserve("a", cpu(500));
        s.set_schedulable("a", true);
        assert_eq!(s.pick(cpu(500)), Some("a"));
        assert_eq!(s.pick(cpu(600)), Some("b"));
    }

    #[test]
    fn zero_request_fits_a_full_node() {
        let s = sched(&[("full", 0), ("roomy", 4000)]);
        assert_eq!(s.pick(cpu(0)), Some("full"));
    }

    #[test]
    fn memory_is_a_constraint_and_untracked_memory_always_fits() {
        let mut s = Scheduler::default();
        let gib = 1 << 30;
        s.upsert(
            "small-mem",
            Resources {
                cpu: 1000,
                memory: gib,
            },
            true,
        );
        s.upsert(
            "big-mem",
            Resources {
                cpu: 2000,
                memory: 4 * gib,
            },
            true,
        );
        let want = Resources {
            cpu: 500,
            memory: 2 * gib,
        };
        // Best fit on CPU would be small-mem; it lacks the memory.
        assert_eq!(s.pick(want), Some("big-mem"));
        s.reserve(
            "big-mem",
            Resources {
                cpu: 0,
                memory: 3 * gib,
            },
        );
        assert_eq!(s.pick(want), None);
        assert_eq!(
            s.explain(want),
            "0/2 nodes have 500m free CPU and 2Gi free memory"
        );
        s.upsert(
            "untracked",
            Resources {
                cpu: 4000,
                memory: UNTRACKED,
            },
            true,
        );
        assert_eq!(s.pick(want), Some("untracked"));
    }
}
