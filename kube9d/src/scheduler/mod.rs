//! Best-fit placement on CPU.
//!
//! Among the schedulable (healthy) nodes with at least the requested free CPU, the node with the
//! *least* free CPU wins; ties go to the node whose name sorts first, so placement is
//! deterministic. Free CPU per node is kept in an ordered set, so a placement is one
//! `O(log n)` range query instead of a scan over every node.

use std::collections::{BTreeSet, HashMap};

use kube9_proto::quantity::format_cpu;

/// Free CPU of every node, and which nodes may take new pods.
#[derive(Debug, Default)]
pub struct Scheduler {
    /// `(free millicores, node name)` of schedulable nodes.
    by_free: BTreeSet<(i64, String)>,
    /// Free millicores of every known node, schedulable or not.
    free: HashMap<String, i64>,
    schedulable: HashMap<String, bool>,
}

impl Scheduler {
    /// Adds or updates a node with its free CPU and whether it may take new pods.
    pub fn upsert(&mut self, node: &str, free_millis: i64, schedulable: bool) {
        self.unindex(node);
        self.free.insert(node.to_string(), free_millis);
        self.schedulable.insert(node.to_string(), schedulable);
        if schedulable {
            self.by_free.insert((free_millis, node.to_string()));
        }
    }

    /// Marks a node as able (or not) to take new pods, keeping its free CPU.
    pub fn set_schedulable(&mut self, node: &str, schedulable: bool) {
        if let Some(&free) = self.free.get(node) {
            self.upsert(node, free, schedulable);
        }
    }

    pub fn remove(&mut self, node: &str) {
        self.unindex(node);
        self.free.remove(node);
        self.schedulable.remove(node);
    }

    /// The best-fit node for `request` millicores, if any.
    pub fn pick(&self, request: i64) -> Option<&str> {
        self.by_free
            .range((request, String::new())..)
            .next()
            .map(|(_, name)| name.as_str())
    }

    /// Takes `millis` from a node's free CPU (a pod was bound to it).
    pub fn reserve(&mut self, node: &str, millis: i64) {
        self.adjust(node, -millis);
    }

    /// Gives `millis` back to a node (a pod left it).
    pub fn release(&mut self, node: &str, millis: i64) {
        self.adjust(node, millis);
    }

    /// Most free CPU on any schedulable node (`None` when no node is schedulable).
    pub fn max_free(&self) -> Option<i64> {
        self.by_free.last().map(|(free, _)| *free)
    }

    /// Why `request` fits nowhere, e.g. `0/3 nodes have 2 free CPU (1 not healthy)`.
    pub fn explain(&self, request: i64) -> String {
        // O(1): explain runs once per pending pod, and there may be many of both.
        let total = self.free.len();
        let unschedulable = total - self.by_free.len();
        let mut msg = format!("0/{total} nodes have {} free CPU", format_cpu(request));
        if unschedulable > 0 {
            msg.push_str(&format!(" ({unschedulable} not healthy)"));
        }
        msg
    }

    fn adjust(&mut self, node: &str, delta: i64) {
        let Some(&free) = self.free.get(node) else {
            return;
        };
        let schedulable = self.schedulable.get(node).copied().unwrap_or(false);
        self.upsert(node, free + delta, schedulable);
    }

    fn unindex(&mut self, node: &str) {
        if let Some(&free) = self.free.get(node) {
            self.by_free.remove(&(free, node.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(nodes: &[(&str, i64)]) -> Scheduler {
        let mut s = Scheduler::default();
        for (name, free) in nodes {
            s.upsert(name, *free, true);
        }
        s
    }

    #[test]
    fn least_free_cpu_that_fits_wins() {
        let s = sched(&[("a", 4000), ("b", 1000), ("c", 2000)]);
        assert_eq!(s.pick(1500), Some("c"));
        assert_eq!(s.pick(1000), Some("b"));
        assert_eq!(s.pick(3000), Some("a"));
    }

    #[test]
    fn ties_go_to_the_first_name() {
        let s = sched(&[("n3", 2000), ("n1", 2000), ("n2", 2000)]);
        assert_eq!(s.pick(500), Some("n1"));
    }

    #[test]
    fn nothing_fits_is_explained() {
        let mut s = sched(&[("a", 1000), ("b", 1500)]);
        s.upsert("c", 8000, false);
        assert_eq!(s.pick(2000), None);
        assert_eq!(s.explain(2000), "0/3 nodes have 2 free CPU (1 not healthy)");
    }

    #[test]
    fn reserve_and_release_move_a_node_in_the_order() {
        let mut s = sched(&[("a", 4000), ("b", 3000)]);
        s.reserve("a", 2000);
        assert_eq!(s.pick(1000), Some("a"));
        s.release("a", 2000);
        assert_eq!(s.pick(1000), Some("b"));
        assert_eq!(s.max_free(), Some(4000));
    }

    #[test]
    fn unschedulable_nodes_are_skipped_but_keep_their_accounting() {
        let mut s = sched(&[("a", 1000), ("b", 3000)]);
        s.set_schedulable("a", false);
        assert_eq!(s.pick(500), Some("b"));
        s.reserve("a", 500);
        s.set_schedulable("a", true);
        assert_eq!(s.pick(500), Some("a"));
        assert_eq!(s.pick(600), Some("b"));
    }

    #[test]
    fn zero_request_fits_a_full_node() {
        let s = sched(&[("full", 0), ("roomy", 4000)]);
        assert_eq!(s.pick(0), Some("full"));
    }
}
