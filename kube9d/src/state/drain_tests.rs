//! Cordon, uncordon and drain, in isolation.

use kube9_proto::pb::{self, NodeStatus, PodPhase};
use tokio::time::Instant;

use super::tests::{add, assert_cpu_invariant, cluster, deletes, drain, join, pod, runs};

fn stopped(c: &mut super::Cluster, node: &str, name: &str) {
    let uid = c.pods[&format!("default/{name}")].uid.clone();
    c.apply_pod_status(
        node,
        pb::PodStatus {
            pod_name: name.into(),
            pod_uid: uid,
            deleted: true,
            ..Default::default()
        },
    );
}

#[test]
fn a_cordoned_node_takes_no_new_pods_and_uncordon_lets_waiting_pods_in() {
    let mut c = cluster();
    let _n1 = join(&mut c, "n1", 2000, 1);
    let _n2 = join(&mut c, "n2", 4000, 2);
    c.set_unschedulable("n1", true).unwrap();
    assert!(c.nodes["n1"].node.unschedulable);
    // Best fit would be n1 (least free CPU that fits).
    add(&mut c, pod("a", 1000));
    assert_eq!(c.pods["default/a"].node, "n2");
    // Nothing fits but the cordoned node: the pod waits.
    add(&mut c, pod("b", 3500));
    assert_eq!(c.pods["default/b"].phase(), PodPhase::Pending);
    // A heartbeat (healthy again) does not uncordon.
    c.heartbeat("n1", 1, pb::Heartbeat::default());
    add(&mut c, pod("c", 500));
    assert_eq!(c.pods["default/c"].node, "n2");
    let events: Vec<_> = c
        .events
        .iter()
        .filter(|e| e.object_name == "n1" && e.reason == "NodeNotSchedulable")
        .collect();
    assert_eq!(events.len(), 1);

    c.set_unschedulable("n1", false).unwrap();
    assert!(
        c.pods["default/b"].node.is_empty(),
        "b needs 3.5 CPU; n1 has 2"
    );
    add(&mut c, pod("d", 1500));
    assert_eq!(c.pods["default/d"].node, "n1");
    assert_cpu_invariant(&c);
}

#[test]
fn a_cordon_survives_a_failure_and_recovery_of_the_node() {
    let mut c = cluster();
    let _n1 = join(&mut c, "n1", 2000, 1);
    let _n2 = join(&mut c, "n2", 4000, 2);
    c.set_unschedulable("n1", true).unwrap();
    c.transition("n1", NodeStatus::Failed, "test");
    c.transition("n1", NodeStatus::Healthy, "test");
    add(&mut c, pod("a", 500));
    assert_eq!(c.pods["default/a"].node, "n2");
}

#[test]
fn drain_moves_a_pod_only_once_its_agent_confirms_it_stopped() {
    let mut c = cluster();
    let mut n1 = join(&mut c, "n1", 2000, 1);
    let mut n2 = join(&mut c, "n2", 4000, 2);
    add(&mut c, pod("p", 1000));
    add(&mut c, pod("q", 500));
    assert_eq!(c.pods["default/p"].node, "n1");
    drain(&mut c, &mut n1);
    drain(&mut c, &mut n2);

    let evicting = c.drain("n1", 1000).unwrap();
    assert_eq!(evicting, vec!["default/p", "default/q"]);
    assert!(c.nodes["n1"].node.unschedulable);
    let sent = drain(&mut c, &mut n1);
    assert!(deletes(&sent, "p") && deletes(&sent, "q"));
    // Not started elsewhere yet: the old copies may still run.
    let sent = drain(&mut c, &mut n2);
    assert!(!runs(&sent, "p") && !runs(&sent, "q"));
    let p = &c.pods["default/p"];
    assert_eq!((p.phase(), p.node.as_str()), (PodPhase::Terminating, "n1"));
    assert_eq!(c.nodes["n1"].allocated.cpu, 1500);

    stopped(&mut c, "n1", "p");
    let p = &c.pods["default/p"];
    assert_eq!((p.phase(), p.node.as_str()), (PodPhase::Scheduled, "n2"));
    assert!(!p.evicting);
    assert_eq!(p.reschedules, 1);
    let sent = drain(&mut c, &mut n2);
    assert!(runs(&sent, "p") && !runs(&sent, "q"));
    assert_eq!(
        c.pods["default/q"].node, "n1",
        "q still waits for its confirmation"
    );

    // An unconfirmed eviction is asked again, not given up on, while the agent is attached.
    let now = Instant::now();
    c.terminating.insert("default/q".into(), now);
    c.health_tick(now);
    assert_eq!(c.pods["default/q"].node, "n1");
    assert!(deletes(&drain(&mut c, &mut n1), "q"));

    stopped(&mut c, "n1", "q");
    assert_eq!(c.pods["default/q"].node, "n2");
    assert!(c.nodes["n1"].pods.is_empty());
    assert!(c.nodes["n1"].node.unschedulable, "drained stays cordoned");
    assert!(c
        .events
        .iter()
        .any(|e| e.reason == "PodRescheduled" && e.message.contains("node n1 drained")));
    assert_cpu_invariant(&c);
}

#[test]
fn a_drained_pod_with_no_room_elsewhere_waits_pending() {
    let mut c = cluster();
    let mut n1 = join(&mut c, "n1", 4000, 1);
    let _n2 = join(&mut c, "n2", 1000, 2);
    add(&mut c, pod("big", 3000));
    assert_eq!(c.pods["default/big"].node, "n1");
    c.drain("n1", 0).unwrap();
    drain(&mut c, &mut n1);
    stopped(&mut c, "n1", "big");
    let p = &c.pods["default/big"];
    assert_eq!(p.phase(), PodPhase::Pending);
    assert!(p.node.is_empty());
    assert!(
        p.reason.starts_with("0/2 nodes have 3 free CPU"),
        "{}",
        p.reason
    );
    // Not back on the cordoned node, even though it has the room.
    c.place_pending();
    assert!(c.pods["default/big"].node.is_empty());
    c.set_unschedulable("n1", false).unwrap();
    assert_eq!(c.pods["default/big"].node, "n1");
}

#[test]
fn deleting_a_pod_being_evicted_deletes_it() {
    let mut c = cluster();
    let mut n1 = join(&mut c, "n1", 2000, 1);
    let _n2 = join(&mut c, "n2", 2000, 2);
    add(&mut c, pod("p", 1000));
    c.drain("n1", 0).unwrap();
    c.delete_pod("default/p", 0).unwrap();
    drain(&mut c, &mut n1);
    stopped(&mut c, "n1", "p");
    assert!(!c.pods.contains_key("default/p"));
}

#[test]
fn an_agent_that_reattaches_without_the_evicted_pod_lets_it_move() {
    let mut c = cluster();
    let _n1 = join(&mut c, "n1", 2000, 1);
    let _n2 = join(&mut c, "n2", 2000, 2);
    add(&mut c, pod("p", 1000));
    c.drain("n1", 0).unwrap();
    // The agent restarts and reports nothing running.
    let _n1 = join(&mut c, "n1", 2000, 3);
    assert_eq!(c.pods["default/p"].node, "n2");
    assert_eq!(c.pods["default/p"].phase(), PodPhase::Scheduled);
}

fn set(kind: &str, name: &str, pairs: &[(&str, &str)], remove: &[&str]) -> pb::SetMetadataRequest {
    pb::SetMetadataRequest {
        kind: kind.into(),
        name: name.into(),
        set: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        remove: remove.iter().map(|k| k.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn labels_change_only_with_overwrite_and_bad_keys_change_nothing() {
    let mut c = cluster();
    let _n1 = join(&mut c, "n1", 2000, 1);
    add(&mut c, pod("p", 100));
    let r = c
        .set_metadata(&set("pod", "p", &[("app", "web")], &[]))
        .unwrap();
    assert!(r.changed);
    assert_eq!(c.pods["default/p"].labels["app"], "web");
    let e = c
        .set_metadata(&set("po", "p", &[("app", "db")], &[]))
        .unwrap_err();
    assert!(e.to_string().contains("--overwrite is false"), "{e}");
    let same = c.set_metadata(&set("pods", "p", &[("app", "web")], &[]));
    assert!(!same.unwrap().changed, "the same value needs no overwrite");
    let mut r = set("pod", "p", &[("app", "db")], &[]);
    r.overwrite = true;
    c.set_metadata(&r).unwrap();
    assert_eq!(c.pods["default/p"].labels["app"], "db");

    for (key, value) in [("bad key", "x"), ("x", "bad value"), ("UP.example/x", "y")] {
        let e = c
            .set_metadata(&set("pod", "p", &[("tier", "front"), (key, value)], &[]))
            .unwrap_err();
        assert!(matches!(e, super::Error::Invalid(_)), "{key}={value}: {e}");
        assert!(!c.pods["default/p"].labels.contains_key("tier"));
    }
    c.set_metadata(&set("pod", "p", &[], &["app"])).unwrap();
    assert!(c.pods["default/p"].labels.is_empty());

    c.set_metadata(&set("node", "n1", &[("zone", "a")], &[]))
        .unwrap();
    assert_eq!(c.nodes["n1"].node.labels["zone"], "a");
    c.set_metadata(&set("namespace", "default", &[("team", "core")], &[]))
        .unwrap();
    assert_eq!(c.namespaces["default"].labels["team"], "core");
    assert!(c
        .set_metadata(&set("pod", "nope", &[("a", "b")], &[]))
        .is_err());
    assert!(c
        .set_metadata(&set("deployment", "x", &[("a", "b")], &[]))
        .is_err());
}

#[test]
fn annotations_take_free_text_values_on_pods_only() {
    let mut c = cluster();
    let _n1 = join(&mut c, "n1", 2000, 1);
    add(&mut c, pod("p", 100));
    let mut r = set("pod", "p", &[("note", "free text, any: thing")], &[]);
    r.annotations = true;
    c.set_metadata(&r).unwrap();
    assert_eq!(
        c.pods["default/p"].annotations["note"],
        "free text, any: thing"
    );
    assert!(c.pods["default/p"].labels.is_empty());
    let mut r = set("node", "n1", &[("note", "x")], &[]);
    r.annotations = true;
    assert!(c.set_metadata(&r).is_err());
}

#[test]
fn a_restored_cluster_keeps_cordons_and_evictions() {
    let node = |name: &str, unschedulable: bool| pb::Node {
        name: name.into(),
        status: NodeStatus::Healthy as i32,
        cpu_capacity_millis: 2000,
        unschedulable,
        ..Default::default()
    };
    let mut p = pod("p", 500);
    p.node = "n1".into();
    p.uid = "u1".into();
    p.set_phase(PodPhase::Terminating);
    p.evicting = true;
    let mut c = cluster();
    c.restore(crate::store::Snapshot {
        nodes: vec![node("n1", true), node("n2", false)],
        pods: vec![p],
        ..Default::default()
    });
    add(&mut c, pod("new", 100));
    assert_eq!(c.pods["default/new"].node, "n2", "n1 is still cordoned");
    // The eviction goes on: once n1's agent is back and confirms, the pod moves (not deleted).
    let _n1 = join(&mut c, "n1", 2000, 1);
    assert_eq!(c.pods["default/p"].node, "n2");
    assert_eq!(c.pods["default/p"].phase(), PodPhase::Scheduled);
}
