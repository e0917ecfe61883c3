//! Lifecycle logic in isolation: agents are channels, time is passed in.

use std::time::Duration;

use kube9_proto::pb::{self, control_message::Msg, NodeStatus, PodPhase};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::time::Instant;

use super::{AgentConn, Cluster};
use crate::config::Settings;

pub(super) fn cluster() -> Cluster {
    let mut c = Cluster {
        settings: Settings::default(),
        ..Default::default()
    };
    c.ensure_default_namespace();
    c
}

/// Attaches an agent for `node` (an external node if unknown) and makes it healthy.
pub(super) fn join(
    c: &mut Cluster,
    node: &str,
    cpu: i64,
    conn_id: u64,
) -> UnboundedReceiver<pb::ControlMessage> {
    let (tx, rx) = unbounded_channel();
    let reg = pb::Register {
        node_name: node.into(),
        cpu_capacity_millis: cpu,
        ..Default::default()
    };
    c.attach(&reg, conn(conn_id, tx)).unwrap();
    c.heartbeat(node, conn_id, pb::Heartbeat::default());
    assert_eq!(c.nodes[node].status(), NodeStatus::Healthy);
    rx
}

/// A connection of the agent process "agent".
pub(super) fn conn(
    id: u64,
    tx: tokio::sync::mpsc::UnboundedSender<pb::ControlMessage>,
) -> AgentConn {
    AgentConn {
        id,
        instance: "agent".into(),
        tx,
        address: format!("10.0.0.{id}:1"),
    }
}

pub(super) fn pod(name: &str, cpu: i64) -> pb::Pod {
    pb::Pod {
        name: name.into(),
        cpu_request_millis: cpu,
        containers: vec![pb::Container {
            name: "main".into(),
            image: "busybox".into(),
            cpu_request_millis: cpu,
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub(super) fn add(c: &mut Cluster, p: pb::Pod) {
    c.insert_pod(p);
    c.place_pending();
    c.explain_pending();
}

/// Every message queued for an agent so far, once the changes that queued them are durable
/// (here: at once).
pub(super) fn drain(c: &mut Cluster, rx: &mut UnboundedReceiver<pb::ControlMessage>) -> Vec<Msg> {
    c.deliver_commands();
    let mut out = vec![];
    while let Ok(m) = rx.try_recv() {
        out.extend(m.msg);
    }
    out
}

pub(super) fn runs(msgs: &[Msg], pod: &str) -> bool {
    msgs.iter()
        .any(|m| matches!(m, Msg::RunPod(r) if r.pod.as_ref().unwrap().name == pod))
}

pub(super) fn deletes(msgs: &[Msg], pod: &str) -> bool {
    msgs.iter()
        .any(|m| matches!(m, Msg::DeletePod(d) if d.pod_name == pod))
}

pub(super) fn assert_cpu_invariant(c: &Cluster) {
    for (name, entry) in &c.nodes {
        let sum: i64 = c
            .pods
            .values()
            .filter(|p| p.node == *name && !p.phase().is_terminal())
            .map(|p| p.cpu_request_millis)
            .sum();
        assert_eq!(entry.allocated.cpu, sum, "node {name}");
    }
}

#[test]
fn pods_move_off_a_permanently_failed_node_and_its_stale_copies_are_stopped() {
    let mut c = cluster();
    // No fence time: the pods of a node kube9d cannot remove move at once.
    c.settings.node_fence = Duration::ZERO;
    let mut n1 = join(&mut c, "n1", 2000, 1);
    let mut n2 = join(&mut c, "n2", 2000, 2);
    add(&mut c, pod("p", 1000));
    assert_eq!(c.pods["default/p"].node, "n1", "tie goes to the first name");
    let old_uid = c.pods["default/p"].uid.clone();
    assert!(runs(&drain(&mut c, &mut n1), "p"));

    c.transition("n1", NodeStatus::PermanentlyFailed, "test");
    let p = &c.pods["default/p"];
    assert_eq!(
        (p.node.as_str(), p.phase(), p.reschedules),
        ("n2", PodPhase::Scheduled, 1)
    );
    assert_ne!(p.uid, old_uid, "a new binding gets a new uid");
    assert!(runs(&drain(&mut c, &mut n2), "p"));
    assert!(
        deletes(&drain(&mut c, &mut n1), "p"),
        "the failed node is told to stop its copy"
    );
    assert_cpu_invariant(&c);

    // The node (joined by hand: kube9d cannot remove it) comes back, still running the old
    // copy: it rejoins empty, and the copy is stopped.
    let (tx, mut rx) = unbounded_channel();
    let stale = pb::PodStatus {
        pod_name: "p".into(),
        pod_uid: old_uid,
        phase: PodPhase::Running as i32,
        ..Default::default()
    };
    let reg = pb::Register {
        node_name: "n1".into(),
        pods: vec![stale],
        ..Default::default()
    };
    c.attach(&reg, conn(3, tx)).unwrap();
    let msgs = drain(&mut c, &mut rx);
    assert!(deletes(&msgs, "p"));
    assert!(!msgs.iter().any(|m| matches!(m, Msg::Terminate(_))));
    assert_eq!(c.nodes["n1"].status(), NodeStatus::Initializing);
    assert!(c.nodes["n1"].pods.is_empty());
    assert_eq!(c.pods["default/p"].node, "n2");
    assert_cpu_invariant(&c);
}

#[test]
fn a_node_that_left_rejoins_empty() {
    let mut c = cluster();
    let _n1 = join(&mut c, "n1", 2000, 1);
    let _n2 = join(&mut c, "n2", 2000, 2);
    add(&mut c, pod("p", 1000));
    c.deregister("n1", "agent received SIGTERM");
    assert_eq!(c.nodes["n1"].status(), NodeStatus::Left);
    // A left node is not judged: no failure, no recovery, no reap.
    c.health_tick(Instant::now() + Duration::from_secs(600));
    assert_eq!(c.nodes["n1"].status(), NodeStatus::Left);
    let (tx, _rx) = unbounded_channel();
    let reg = pb::Register {
        node_name: "n1".into(),
        ..Default::default()
    };
    c.attach(&reg, conn(3, tx)).unwrap();
    assert_eq!(c.nodes["n1"].status(), NodeStatus::Initializing);
    c.heartbeat("n1", 3, pb::Heartbeat::default());
    assert_eq!(c.nodes["n1"].status(), NodeStatus::Healthy);
    assert_eq!(c.pods["default/p"].node, "n2");
    assert!(node_events(&c, "n1", "NodeLeft").len() == 1);
    assert_cpu_invariant(&c);
}

#[test]
fn a_reconnecting_agent_stops_what_it_should_not_run_and_restarts_what_it_lost() {
    let mut c = cluster();
    let _n1 = join(&mut c, "n1", 4000, 1);
    add(&mut c, pod("kept", 1000));
    add(&mut c, pod("gone", 1000));
    let kept_uid = c.pods["default/kept"].uid.clone();
    let gone_uid = c.pods["default/gone"].uid.clone();
    c.detach("n1", 1);
    // Deleted while its node was away: removed at once, CPU released.
    c.delete_pod("default/gone", 1000).unwrap();
    assert!(!c.pods.contains_key("default/gone"));
    assert_eq!(c.nodes["n1"].allocated.cpu, 1000);

    // The agent returns running only "gone" (it lost "kept", e.g. it restarted).
    let (tx, mut rx) = unbounded_channel();
    let running = pb::PodStatus {
        pod_name: "gone".into(),
        pod_uid: gone_uid,
        phase: PodPhase::Running as i32,
        ..Default::default()
    };
    let reg = pb::Register {
        node_name: "n1".into(),
        pods: vec![running],
        ..Default::default()
    };
    c.attach(&reg, conn(2, tx)).unwrap();
    let msgs = drain(&mut c, &mut rx);
    assert!(deletes(&msgs, "gone"), "stale copy not stopped: {msgs:?}");
    assert!(runs(&msgs, "kept"), "lost pod not restarted: {msgs:?}");
    assert_eq!(c.pods["default/kept"].uid, kept_uid, "same binding");
    assert_cpu_invariant(&c);
}

#[test]
fn a_new_agent_takes_over_only_the_pods_still_bound_to_its_node() {
    let mut c = cluster();
    let _n1 = join(&mut c, "n1", 4000, 1);
    add(&mut c, pod("kept", 1000));
    add(&mut c, pod("gone", 1000));
    let status = |name: &str, uid: &str| pb::PodStatus {
        pod_name: name.into(),
        pod_uid: uid.into(),
        phase: PodPhase::Running as i32,
        containers: vec![pb::ContainerStatus {
            name: "main".into(),
            state: pb::ContainerState::Running as i32,
            ..Default::default()
        }],
        ..Default::default()
    };
    let kept_uid = c.pods["default/kept"].uid.clone();
    let gone_uid = c.pods["default/gone"].uid.clone();
    c.apply_pod_status("n1", status("kept", &kept_uid));
    assert_eq!(c.pods["default/kept"].phase(), PodPhase::Running);
    c.detach("n1", 1);
    c.delete_pod("default/gone", 0).unwrap();

    // A new agent process finds both pods' containers still running in its engine.
    let (tx, mut rx) = unbounded_channel();
    let reg = pb::Register {
        node_name: "n1".into(),
        adoptable_pod_uids: vec![kept_uid.clone(), gone_uid, "unknown".into()],
        ..Default::default()
    };
    c.attach(&reg, conn(2, tx)).unwrap();
    let msgs = drain(&mut c, &mut rx);
    let Some(Msg::Registered(registered)) = msgs.first() else {
        panic!("Registered comes first: {msgs:?}");
    };
    assert_eq!(registered.adopt_pod_uids, vec![kept_uid.clone()]);
    assert!(runs(&msgs, "kept"), "the agent needs the spec: {msgs:?}");
    // Taken over, not restarted: the pod stays Running, with no Restarting event.
    assert_eq!(c.pods["default/kept"].phase(), PodPhase::Running);
    assert_eq!(c.pods["default/kept"].uid, kept_uid);
    assert!(!c.events.iter().any(|e| e.reason == "Restarting"));
}

#[test]
fn a_deleted_pod_holds_its_cpu_until_the_agent_confirms() {
    let mut c = cluster();
    let mut n1 = join(&mut c, "n1", 2000, 1);
    add(&mut c, pod("p", 1500));
    let uid = c.pods["default/p"].uid.clone();
    c.delete_pod("default/p", 1000).unwrap();
    assert_eq!(c.pods["default/p"].phase(), PodPhase::Terminating);
    assert_eq!(c.nodes["n1"].allocated.cpu, 1500);
    assert!(deletes(&drain(&mut c, &mut n1), "p"));
    c.apply_pod_status(
        "n1",
        pb::PodStatus {
            pod_name: "p".into(),
            pod_uid: uid,
            deleted: true,
            ..Default::default()
        },
    );
    assert!(!c.pods.contains_key("default/p"));
    assert_eq!(c.nodes["n1"].allocated.cpu, 0);
}

#[test]
fn an_unconfirmed_deletion_expires() {
    let mut c = cluster();
    let _n1 = join(&mut c, "n1", 2000, 1);
    add(&mut c, pod("p", 1500));
    c.delete_pod("default/p", 1000).unwrap();
    c.health_tick(Instant::now());
    assert!(c.pods.contains_key("default/p"));
    c.heartbeat("n1", 1, pb::Heartbeat::default());
    c.health_tick(Instant::now() + c.settings.delete_grace + Duration::from_secs(11));
    assert!(!c.pods.contains_key("default/p"));
    assert_eq!(c.nodes["n1"].allocated.cpu, 0);
}

#[test]
fn finished_pods_release_their_cpu_and_make_room() {
    let mut c = cluster();
    let _n1 = join(&mut c, "n1", 1000, 1);
    add(&mut c, pod("job", 1000));
    add(&mut c, pod("next", 1000));
    assert_eq!(c.pods["default/next"].phase(), PodPhase::Pending);
    assert_eq!(c.pods["default/next"].reason, "0/1 nodes have 1 free CPU");
    let uid = c.pods["default/job"].uid.clone();
    c.apply_pod_status(
        "n1",
        pb::PodStatus {
            pod_name: "job".into(),
            pod_uid: uid,
            phase: PodPhase::Succeeded as i32,
            ..Default::default()
        },
    );
    assert_eq!(c.pods["default/job"].phase(), PodPhase::Succeeded);
    assert_eq!(
        c.pods["default/next"].node, "n1",
        "the freed CPU went to the waiting pod"
    );
    assert_cpu_invariant(&c);
}

#[test]
fn pending_pods_are_placed_largest_first_when_capacity_appears() {
    let mut c = cluster();
    add(&mut c, pod("small", 500));
    add(&mut c, pod("large", 1500));
    add(&mut c, pod("medium", 1000));
    assert!(c.pods.values().all(|p| p.phase() == PodPhase::Pending));
    let _n = join(&mut c, "n", 2000, 1);
    assert_eq!(c.pods["default/large"].node, "n");
    assert_eq!(c.pods["default/small"].node, "n");
    assert_eq!(
        c.pods["default/medium"].phase(),
        PodPhase::Pending,
        "1000m no longer fits after 1500m + 500m"
    );
    assert_cpu_invariant(&c);
}

#[test]
fn a_silent_node_fails_gets_recovery_attempts_then_is_given_up() {
    let mut c = cluster();
    let _n1 = join(&mut c, "n1", 2000, 1);
    let _n2 = join(&mut c, "n2", 2000, 2);
    add(&mut c, pod("p", 1000));
    let t0 = Instant::now();
    c.heartbeat("n2", 2, pb::Heartbeat::default());
    c.health_tick(t0 + Duration::from_millis(500));
    assert_eq!(
        c.nodes["n1"].status(),
        NodeStatus::Healthy,
        "within the deadline"
    );

    let mut t = t0 + c.settings.heartbeat_deadline() + Duration::from_millis(100);
    c.nodes.get_mut("n2").unwrap().last_heartbeat = Some(t);
    c.health_tick(t);
    assert_eq!(c.nodes["n1"].status(), NodeStatus::Failed);
    assert!(
        c.nodes["n1"].node.reason.starts_with("missed 2 heartbeats"),
        "{}",
        c.nodes["n1"].node.reason
    );
    // Attempts (an external node has nothing to restart, so each just waits), then give up.
    let mut seen = vec![];
    for _ in 0..20 {
        t += Duration::from_secs(5);
        c.nodes.get_mut("n2").unwrap().last_heartbeat = Some(t);
        c.health_tick(t);
        seen.push(c.nodes["n1"].status());
        if c.nodes["n1"].status() == NodeStatus::PermanentlyFailed {
            break;
        }
    }
    assert!(seen.contains(&NodeStatus::Recovering), "{seen:?}");
    assert_eq!(
        c.nodes["n1"].status(),
        NodeStatus::PermanentlyFailed,
        "{seen:?}"
    );
    // Nothing can remove an external node: its pods move once its agent has fenced itself.
    assert_eq!(c.pods["default/p"].node, "n1");
    let fenced = c.fence_ends("n1").expect("an external node is fenced");
    c.nodes.get_mut("n2").unwrap().last_heartbeat = Some(fenced);
    c.health_tick(fenced);
    assert_eq!(c.pods["default/p"].node, "n2");
    assert_cpu_invariant(&c);
}

/// The node's events with `reason`.
fn node_events(c: &Cluster, node: &str, reason: &str) -> Vec<pb::Event> {
    c.events
        .iter()
        .filter(|e| e.object_name == node && e.reason == reason)
        .cloned()
        .collect()
}

#[test]
fn an_unreachable_nodes_pods_move_only_once_its_agent_has_fenced_itself() {
    let mut c = cluster();
    let mut n1 = join(&mut c, "n1", 2000, 1);
    let mut n2 = join(&mut c, "n2", 2000, 2);
    add(&mut c, pod("p", 1000));
    assert_eq!(c.pods["default/p"].node, "n1");
    let uid = c.pods["default/p"].uid.clone();
    drain(&mut c, &mut n1);
    c.detach("n1", 1);
    let last_heartbeat = c.nodes["n1"].last_heartbeat.unwrap();
    let fence = c.settings.node_fence;
    assert_eq!(fence, Duration::from_secs(60), "the default");
    assert_eq!(c.fence_ends("n1"), Some(last_heartbeat + fence));

    c.transition("n1", NodeStatus::PermanentlyFailed, "gave up");
    let before_the_fence = last_heartbeat + fence - Duration::from_millis(1);
    for now in [last_heartbeat, before_the_fence] {
        c.nodes.get_mut("n2").unwrap().last_heartbeat = Some(now);
        c.health_tick(now);
        let p = &c.pods["default/p"];
        assert_eq!((p.node.as_str(), p.uid.as_str()), ("n1", uid.as_str()));
    }
    assert!(!deletes(&drain(&mut c, &mut n1), "p"));
    assert!(!runs(&drain(&mut c, &mut n2), "p"));
    let said = node_events(&c, "n1", "AwaitingFence");
    assert_eq!(said.len(), 1, "said once: {said:?}");
    assert!(
        said[0]
            .message
            .starts_with("pods move in 60.0s, once the agent's fence time (60s) has passed"),
        "{}",
        said[0].message
    );
    assert_cpu_invariant(&c);

    let fenced = last_heartbeat + fence;
    c.nodes.get_mut("n2").unwrap().last_heartbeat = Some(fenced);
    c.health_tick(fenced);
    let p = &c.pods["default/p"];
    assert_eq!((p.node.as_str(), p.reschedules), ("n2", 1));
    assert!(runs(&drain(&mut c, &mut n2), "p"));
    assert_cpu_invariant(&c);
}

#[test]
fn a_deregistered_nodes_pods_move_at_once() {
    let mut c = cluster();
    let _n1 = join(&mut c, "n1", 2000, 1);
    let mut n2 = join(&mut c, "n2", 2000, 2);
    add(&mut c, pod("p", 1000));
    assert_eq!(c.pods["default/p"].node, "n1");
    // The agent stopped its pods before it said goodbye.
    c.deregister("n1", "agent received SIGTERM");
    assert_eq!(c.nodes["n1"].status(), NodeStatus::Left);
    assert_eq!(c.pods["default/p"].node, "n2");
    assert!(runs(&drain(&mut c, &mut n2), "p"));
    c.health_tick(Instant::now());
    assert!(node_events(&c, "n1", "AwaitingFence").is_empty());
    assert_cpu_invariant(&c);
}

#[test]
fn heartbeats_are_acknowledged_on_their_own_stream_only() {
    let mut c = cluster();
    let mut old = join(&mut c, "n1", 2000, 1);
    let mut new = join(&mut c, "n1", 2000, 2);
    drain(&mut c, &mut old);
    drain(&mut c, &mut new);
    let hb = |seq| pb::Heartbeat {
        seq,
        ..Default::default()
    };
    c.heartbeat("n1", 2, hb(7));
    c.heartbeat("n1", 1, hb(8));
    let acks = |msgs: Vec<Msg>| -> Vec<u64> {
        msgs.iter()
            .filter_map(|m| match m {
                Msg::HeartbeatAck(ack) => Some(ack.seq),
                _ => None,
            })
            .collect()
    };
    assert_eq!(acks(drain(&mut c, &mut new)), [7]);
    assert!(acks(drain(&mut c, &mut old)).is_empty());

    // Given up, with its agent still attached: its heartbeats no longer count, so the agent
    // fences itself before the pods move.
    c.transition("n1", NodeStatus::PermanentlyFailed, "gave up");
    let before = c.nodes["n1"].last_heartbeat;
    std::thread::sleep(Duration::from_millis(2));
    c.heartbeat("n1", 2, hb(9));
    assert!(acks(drain(&mut c, &mut new)).is_empty());
    assert_eq!(c.nodes["n1"].last_heartbeat, before);
}

#[test]
fn a_failed_critical_component_fails_the_node_and_its_return_heals_it() {
    let mut c = cluster();
    let _n1 = join(&mut c, "n1", 2000, 1);
    let bad = pb::Component {
        name: "kubelet".into(),
        healthy: false,
        critical: true,
        message: "boom".into(),
    };
    c.heartbeat(
        "n1",
        1,
        pb::Heartbeat {
            seq: 1,
            components: vec![bad.clone()],
            ..Default::default()
        },
    );
    assert_eq!(c.nodes["n1"].status(), NodeStatus::Failed);
    assert_eq!(c.nodes["n1"].node.reason, "component kubelet failed: boom");
    // A non-critical failure does not matter.
    let proxy = pb::Component {
        name: "kube-proxy".into(),
        healthy: false,
        critical: false,
        ..Default::default()
    };
    let good = pb::Component {
        healthy: true,
        ..bad
    };
    c.heartbeat(
        "n1",
        1,
        pb::Heartbeat {
            seq: 2,
            components: vec![good, proxy],
            ..Default::default()
        },
    );
    assert_eq!(c.nodes["n1"].status(), NodeStatus::Healthy);
}

#[test]
fn heartbeats_from_a_replaced_connection_are_ignored() {
    let mut c = cluster();
    let _old = join(&mut c, "n1", 2000, 1);
    let _new = join(&mut c, "n1", 2000, 2);
    let before = c.nodes["n1"].last_heartbeat;
    std::thread::sleep(Duration::from_millis(2));
    c.heartbeat("n1", 1, pb::Heartbeat::default());
    assert_eq!(c.nodes["n1"].last_heartbeat, before);
    c.detach("n1", 1);
    assert!(
        c.nodes["n1"].agent.is_some(),
        "the old stream ending must not detach the new one"
    );
}

#[test]
fn a_second_agent_cannot_take_over_a_node_while_the_first_is_attached() {
    let mut c = cluster();
    let first = join(&mut c, "n1", 2000, 1);
    let (tx, _rx) = unbounded_channel();
    let reg = pb::Register {
        node_name: "n1".into(),
        ..Default::default()
    };
    let intruder = AgentConn {
        id: 2,
        instance: "other".into(),
        tx: tx.clone(),
        address: "x".into(),
    };
    let err = c.attach(&reg, intruder).unwrap_err();
    assert!(
        err.to_string().contains("already has an agent attached"),
        "{err}"
    );
    assert_eq!(c.nodes["n1"].agent.as_ref().unwrap().id, 1);
    // Once the first agent's stream is gone, a new process may attach.
    drop(first);
    let newcomer = AgentConn {
        id: 3,
        instance: "other".into(),
        tx,
        address: "x".into(),
    };
    c.attach(&reg, newcomer).unwrap();
    assert_eq!(c.nodes["n1"].agent.as_ref().unwrap().id, 3);
}

#[test]
fn a_pod_being_deleted_cannot_be_applied_again_until_it_is_gone() {
    let mut c = cluster();
    let _n1 = join(&mut c, "n1", 2000, 1);
    add(&mut c, pod("p", 500));
    c.delete_pod("default/p", 1000).unwrap();
    let err = c.admit_pod(&pod("p", 500)).err().expect("refused");
    assert!(err.to_string().contains("being deleted"), "{err}");
}

#[test]
fn an_unconfirmed_deletion_waits_out_the_pods_own_grace_period() {
    let mut c = cluster();
    let _n1 = join(&mut c, "n1", 2000, 1);
    add(&mut c, pod("p", 500));
    c.delete_pod("default/p", 30_000).unwrap();
    let t = Instant::now();
    c.heartbeat("n1", 1, pb::Heartbeat::default());
    c.health_tick(t + Duration::from_secs(20));
    assert!(
        c.pods.contains_key("default/p"),
        "removed before its 30 s grace period ended"
    );
    c.nodes.get_mut("n1").unwrap().last_heartbeat = Some(t + Duration::from_secs(41));
    c.health_tick(t + Duration::from_secs(41));
    assert!(!c.pods.contains_key("default/p"));
}

#[test]
fn a_restored_terminating_pod_gets_a_deletion_deadline_again() {
    let node = pb::Node {
        name: "n1".into(),
        status: NodeStatus::Healthy as i32,
        cpu_capacity_millis: 2000,
        ..Default::default()
    };
    let mut p = pod("p", 500);
    p.node = "n1".into();
    p.set_phase(PodPhase::Terminating);
    let mut c = cluster();
    c.restore(crate::store::Snapshot {
        nodes: vec![node],
        pods: vec![p],
        ..Default::default()
    });
    assert_eq!(
        c.nodes["n1"].allocated.cpu, 500,
        "still holds its CPU until confirmed"
    );
    let deadline = c
        .terminating
        .get("default/p")
        .copied()
        .expect("no deadline after restore");
    c.health_tick(deadline + Duration::from_millis(1));
    assert!(!c.pods.contains_key("default/p"));
    assert_eq!(c.nodes["n1"].allocated.cpu, 0);
}

#[test]
fn removing_a_node_refreshes_why_pods_wait() {
    let mut c = cluster();
    let _n1 = join(&mut c, "n1", 1000, 1);
    add(&mut c, pod("big", 2000));
    assert_eq!(c.pods["default/big"].reason, "0/1 nodes have 2 free CPU");
    c.remove_node("n1");
    assert_eq!(c.pods["default/big"].reason, "0/0 nodes have 2 free CPU");
}

#[test]
fn only_the_agent_kube9d_started_may_attach_to_a_runtime_node() {
    let mut c = cluster();
    let spec = pb::NodeSpec {
        name: "n1".into(),
        cpu_millis: 1000,
        ..Default::default()
    };
    c.add_node(&spec, crate::runtime::RuntimeKind::Process)
        .unwrap();
    let expected = c.nodes["n1"].node.instance_id.clone();
    assert!(!expected.is_empty());
    let reg = pb::Register {
        node_name: "n1".into(),
        ..Default::default()
    };
    // No stream is attached (e.g. right after a kube9d restart): still refused.
    let (tx, _rx) = unbounded_channel();
    let impostor = AgentConn {
        id: 1,
        instance: "hand-started".into(),
        tx,
        address: "x".into(),
    };
    let err = c.attach(&reg, impostor).unwrap_err();
    assert!(err.to_string().contains("another one"), "{err}");
    assert!(c.nodes["n1"].agent.is_none());
    let (tx, _rx2) = unbounded_channel();
    let ours = AgentConn {
        id: 2,
        instance: expected,
        tx,
        address: "y".into(),
    };
    c.attach(&reg, ours).unwrap();
    assert_eq!(c.nodes["n1"].agent.as_ref().unwrap().id, 2);
}

#[test]
fn pods_of_one_name_live_in_two_namespaces_and_a_namespace_takes_its_pods_along() {
    let mut c = cluster();
    let _n1 = join(&mut c, "n1", 4000, 1);
    let in_ns = |ns: &str| pb::Pod {
        namespace: ns.into(),
        ..pod("web", 100)
    };
    assert!(
        c.admit_pod(&in_ns("staging")).is_err(),
        "no such namespace yet"
    );
    c.put_namespace(pb::Namespace {
        name: "staging".into(),
        ..Default::default()
    });
    for ns in ["default", "staging"] {
        assert!(matches!(
            c.admit_pod(&in_ns(ns)).unwrap(),
            super::pods::Admission::Created
        ));
        add(&mut c, in_ns(ns));
    }
    assert_eq!(c.pods.len(), 2);
    assert!(c.pods.contains_key("staging/web") && c.pods.contains_key("default/web"));
    assert_cpu_invariant(&c);

    // The agent is gone: deletion is immediate, and the namespace goes with its last pod.
    c.detach("n1", 1);
    c.delete_namespace("staging").unwrap();
    assert!(!c.namespaces.contains_key("staging"));
    assert!(!c.pods.contains_key("staging/web"));
    assert!(c.pods.contains_key("default/web"));
    assert!(c.delete_namespace("default").is_err(), "default stays");
    assert_cpu_invariant(&c);
}

#[test]
fn a_pod_waits_for_its_secret_and_is_sent_once_it_exists() {
    let mut c = cluster();
    let mut n1 = join(&mut c, "n1", 4000, 1);
    let mut p = pod("app", 100);
    p.containers[0].env.push(pb::EnvVar {
        name: "PASSWORD".into(),
        value: String::new(),
        value_from: Some(pb::EnvVarSource {
            source: Some(pb::env_var_source::Source::SecretKeyRef(pb::KeySelector {
                name: "creds".into(),
                key: "password".into(),
                optional: false,
            })),
        }),
    });
    add(&mut c, p);
    let msgs = drain(&mut c, &mut n1);
    assert!(!runs(&msgs, "app"), "sent without its secret: {msgs:?}");
    let waiting = &c.pods["default/app"];
    assert_eq!(waiting.status_reason, "CreateContainerConfigError");
    assert_eq!(waiting.reason, "secret \"creds\" not found");

    c.put_secret(pb::Secret {
        name: "creds".into(),
        data: [("password".to_string(), b"hunter2".to_vec())].into(),
        ..Default::default()
    });
    let msgs = drain(&mut c, &mut n1);
    let sent = msgs.iter().find_map(|m| match m {
        Msg::RunPod(r) => r.pod.clone(),
        _ => None,
    });
    let sent = sent.expect("sent once the secret exists");
    assert_eq!(sent.containers[0].env[0].value, "hunter2");
    assert!(c.pods["default/app"].status_reason.is_empty());
    // The stored pod keeps the reference, never the value.
    assert!(c.pods["default/app"].containers[0].env[0].value.is_empty());
    assert!(!c.events.iter().any(|e| e.message.contains("hunter2")));
}

fn privileged(mut p: pb::Pod, init: bool) -> pb::Pod {
    let c = pb::Container {
        name: "root".into(),
        image: "busybox".into(),
        security_context: Some(pb::SecurityContext {
            privileged: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    if init {
        p.init_containers.push(c);
    } else {
        p.containers.push(c);
    }
    p
}

fn host_path(mut p: pb::Pod, path: &str) -> pb::Pod {
    p.volumes.push(pb::Volume {
        name: "engine".into(),
        kind: "hostPath".into(),
        source: path.into(),
        ..Default::default()
    });
    p
}

#[test]
fn privileged_containers_are_refused_unless_allowed() {
    let mut c = cluster();
    for init in [false, true] {
        let err = c.admit_pod(&privileged(pod("p", 100), init)).err();
        let err = err.expect("refused");
        assert!(matches!(err, super::Error::Invalid(_)), "{err:?}");
        let kind = if init { "init container" } else { "container" };
        assert_eq!(
            err.to_string(),
            format!("pod \"p\": {kind} \"root\" sets securityContext.privileged, which kube9d refuses unless it runs with --allow-privileged")
        );
    }
    // Set but false is fine.
    let mut p = pod("p", 100);
    p.containers[0].security_context = Some(pb::SecurityContext {
        privileged: false,
        run_as_user: Some(0),
        ..Default::default()
    });
    assert!(c.admit_pod(&p).is_ok());
    c.settings.allow_privileged = true;
    assert!(c.admit_pod(&privileged(pod("p", 100), false)).is_ok());
    assert!(c.admit_pod(&privileged(pod("p", 100), true)).is_ok());
}

#[test]
fn a_host_path_of_the_engine_socket_is_refused_unless_allowed() {
    let mut c = cluster();
    for path in [
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/run/docker.sock/",
        "//var//run/",
        "/var/run",
        "/run",
        "/var",
        "/",
        "/srv/../run/./",
    ] {
        let err = c.admit_pod(&host_path(pod("p", 100), path)).err();
        let err = err.unwrap_or_else(|| panic!("{path} admitted"));
        assert!(matches!(err, super::Error::Invalid(_)), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("volume \"engine\""), "{msg}");
        assert!(msg.contains("docker.sock"), "{msg}");
        assert!(msg.contains("--allow-privileged"), "{msg}");
    }
    for path in ["/var/log", "/run/user", "/var/run/docker.sock.d", "/srv"] {
        assert!(
            c.admit_pod(&host_path(pod("p", 100), path)).is_ok(),
            "{path} refused"
        );
    }
    c.settings.allow_privileged = true;
    assert!(c
        .admit_pod(&host_path(pod("p", 100), "/var/run/docker.sock"))
        .is_ok());
}

#[test]
fn allow_privileged_is_off_by_default() {
    assert!(!Settings::default().allow_privileged);
    use clap::Parser;
    let config = crate::config::Config::parse_from(["kube9d", "--allow-privileged"]);
    assert!(config.settings().allow_privileged);
}

/// The grace period each DeletePod carries for `pod`.
fn grace_sent(msgs: &[Msg], pod: &str) -> Vec<u64> {
    msgs.iter()
        .filter_map(|m| match m {
            Msg::DeletePod(d) if d.pod_name == pod => Some(d.grace_period_ms),
            _ => None,
        })
        .collect()
}

#[test]
fn a_pods_termination_grace_period_is_what_its_deletes_and_drains_give_unless_the_delete_says() {
    let mut c = cluster();
    let mut n1 = join(&mut c, "n1", 4000, 1);
    let graceful = |name: &str, seconds: Option<i64>| pb::Pod {
        termination_grace_period_seconds: seconds,
        ..pod(name, 100)
    };
    add(&mut c, graceful("slow", Some(45)));
    add(&mut c, graceful("plain", None));
    add(&mut c, graceful("now", Some(0)));
    add(&mut c, graceful("told", Some(45)));
    add(&mut c, graceful("drained", Some(7)));
    drain(&mut c, &mut n1);
    for name in ["slow", "plain", "now"] {
        c.delete_pod(&format!("default/{name}"), 0).unwrap();
    }
    // `delete --grace-period 3` beats the pod's own.
    c.delete_pod("default/told", 3000).unwrap();
    c.drain("n1", 0).unwrap();
    let sent = drain(&mut c, &mut n1);
    assert_eq!(grace_sent(&sent, "slow"), [45_000]);
    let default = c.settings.delete_grace.as_millis() as u64;
    assert_eq!(grace_sent(&sent, "plain"), [default]);
    // 0 is "at once": 1 ms on the wire, where 0 means the agent's default.
    assert_eq!(grace_sent(&sent, "now"), [1]);
    assert_eq!(grace_sent(&sent, "told"), [3000]);
    assert_eq!(grace_sent(&sent, "drained"), [7000]);
    // kube9d waits for the agent's confirmation as long as the pod's grace period (and its
    // margin) before it gives up on it.
    let slow = c.terminating["default/slow"];
    let plain = c.terminating["default/plain"];
    assert!(
        slow > plain + Duration::from_secs(40),
        "{slow:?} vs {plain:?}"
    );
}

#[test]
fn a_pods_failed_event_says_how_it_ended() {
    let mut c = cluster();
    let _n1 = join(&mut c, "n1", 2000, 1);
    add(&mut c, pod("p", 100));
    let uid = c.pods["default/p"].uid.clone();
    let report = |phase: PodPhase, message: &str| {
        let mut s = pb::PodStatus {
            pod_name: "p".into(),
            pod_uid: uid.clone(),
            message: message.into(),
            ..Default::default()
        };
        s.set_phase(phase);
        s
    };
    c.apply_pod_status("n1", report(PodPhase::Running, ""));
    c.apply_pod_status(
        "n1",
        report(PodPhase::Failed, "container main: Error (exit code 3)"),
    );
    let messages: Vec<&str> = (c.events.iter())
        .filter(|e| e.object_name == "default/p" || e.object_name == "p")
        .map(|e| e.message.as_str())
        .collect();
    assert!(
        messages.contains(&"Running -> Failed on n1: container main: Error (exit code 3)"),
        "{messages:?}"
    );
}
