//! Node operations against the recording fake runtime: what happens when the runtime fails,
//! without Docker. Time is paused, so back-offs and retries are stepped through exactly.

use std::sync::Arc;
use std::time::Duration;

use kube9_proto::fault::Fault;
use kube9_proto::pb::{self, NodeStatus};
use tokio::sync::mpsc;

use super::NodeOps;
use crate::config::Settings;
use crate::runtime::fake::{Call, FakeRuntime, Op};
use crate::runtime::{Error as RuntimeError, NodeRuntime};
use crate::state::{Action, AgentConn, Control};
use crate::store::Store;

struct Harness {
    ops: NodeOps,
    fake: Arc<FakeRuntime>,
    actions: mpsc::UnboundedReceiver<Action>,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn harness(fake: FakeRuntime) -> Harness {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("kube9-nodeops-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&dir).unwrap();
    let fake = Arc::new(fake);
    let runtime: Arc<dyn NodeRuntime> = fake.clone();
    let (control, actions) =
        Control::load(store, Settings::default(), Some(runtime.kind()), "t".into()).unwrap();
    let ops = NodeOps::new(control, Some(runtime));
    let spec = pb::NodeSpec {
        name: "n1".into(),
        cpu_millis: 1000,
        ..Default::default()
    };
    ops.create_nodes(vec![spec]).await.unwrap();
    Harness {
        ops,
        fake,
        actions,
        _dir: TempDir(dir),
    }
}

impl Harness {
    fn control(&self) -> &Control {
        self.ops.control()
    }

    fn node(&self) -> pb::Node {
        self.ops.node_view("n1").unwrap()
    }

    fn busy(&self) -> bool {
        self.control().read(|c| c.nodes["n1"].is_busy())
    }

    fn events(&self, reason: &str) -> Vec<String> {
        self.control().read(|c| {
            c.events
                .iter()
                .filter(|e| e.reason == reason)
                .map(|e| e.message.clone())
                .collect()
        })
    }

    /// One health tick, and the runtime work it queued, carried out.
    async fn tick(&mut self) {
        let ((), commit) = self
            .control()
            .mutate(|c| c.health_tick(tokio::time::Instant::now()));
        // Actions go out once their change is durable.
        commit.wait().await.unwrap();
        while let Ok(action) = self.actions.try_recv() {
            self.ops.execute(action).await;
        }
    }

    async fn transition(&self, to: NodeStatus, why: &str) {
        let ((), commit) = self
            .control()
            .mutate(|c| assert!(c.transition("n1", to, why)));
        commit.wait().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_restart_that_fails_fails_the_node_again_and_frees_it() {
    let mut h = harness(FakeRuntime::new()).await;
    h.transition(NodeStatus::Failed, "missed 2 heartbeats")
        .await;
    h.fake
        .fail_next_restart(RuntimeError::Other("engine said no".into()));
    tokio::time::advance(Duration::from_secs(1)).await;
    h.tick().await;

    assert_eq!(h.fake.calls_of(Op::Restart).len(), 1);
    let node = h.node();
    assert_eq!(node.status(), NodeStatus::Failed);
    assert_eq!(node.recovery_attempts, 1);
    assert!(
        node.reason
            .contains("recovery attempt 1 failed: engine said no"),
        "{}",
        node.reason
    );
    assert_eq!(h.events("RecoveryFailed").len(), 1);
    assert!(!h.busy(), "a failed restart releases the node");

    // The next attempt restarts it for real and records the new handle.
    tokio::time::advance(Duration::from_secs(2)).await;
    h.tick().await;
    assert_eq!(h.fake.calls_of(Op::Restart).len(), 2);
    assert_eq!(h.node().status(), NodeStatus::Recovering);
    assert_eq!(h.events("RecoveryAttempt").len(), 1);
    assert!(!h.busy());
}

#[tokio::test(start_paused = true)]
async fn a_reap_that_fails_is_tried_again_until_it_succeeds() {
    let mut h = harness(FakeRuntime::new()).await;
    let handle = h.fake.handle_of("n1").unwrap();
    h.fake.fail_removes(1);
    h.transition(NodeStatus::PermanentlyFailed, "gave up").await;
    h.tick().await;
    assert_eq!(h.fake.calls_of(Op::Remove).len(), 1);
    assert!(h.events("NodeReaped").is_empty());
    assert!(!h.busy());

    // Within the retry pause nothing is tried.
    tokio::time::advance(Duration::from_millis(500)).await;
    h.tick().await;
    assert_eq!(h.fake.calls_of(Op::Remove).len(), 1);

    tokio::time::advance(crate::state::reaping::REAP_RETRY).await;
    h.tick().await;
    assert_eq!(
        h.fake.calls_of(Op::Remove),
        vec![
            Call::Remove {
                id: handle.id.clone()
            };
            2
        ]
    );
    assert_eq!(h.events("NodeReaped").len(), 1);
    assert_eq!(h.node().runtime.unwrap().state, "removed");
    assert!(h.fake.handle_of("n1").is_none(), "the instance is gone");

    // Reaped once is reaped for good.
    tokio::time::advance(Duration::from_secs(10)).await;
    h.tick().await;
    assert_eq!(h.fake.calls_of(Op::Remove).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_runtime_that_cannot_partition_has_kube9d_refuse_the_stream_instead() {
    let h = harness(FakeRuntime::new().without_partition()).await;
    let instance = h.node().instance_id;
    let (tx, _rx) = mpsc::unbounded_channel();
    let conn = |id: u64| AgentConn {
        id,
        instance: instance.clone(),
        tx: tx.clone(),
        address: "10.0.0.1:1".into(),
    };
    let reg = pb::Register {
        node_name: "n1".into(),
        ..Default::default()
    };
    h.control()
        .mutate_detached(|c| c.attach(&reg, conn(1)))
        .unwrap();

    let node = h.ops.inject("n1", Fault::Partition).await.unwrap();
    assert_eq!(node.injected_fault, "partition");
    assert!(!node.agent_connected, "kube9d dropped the stream itself");
    assert_eq!(
        h.fake.calls_of(Op::SetPartitioned),
        vec![Call::SetPartitioned {
            id: h.fake.handle_of("n1").unwrap().id,
            partitioned: true
        }]
    );
    let refused = h.control().mutate_detached(|c| c.attach(&reg, conn(2)));
    assert!(refused
        .unwrap_err()
        .to_string()
        .contains("partitioned from the control plane"),);

    let node = h.ops.recover("n1").await.unwrap();
    assert!(node.injected_fault.is_empty());
    h.control()
        .mutate_detached(|c| c.attach(&reg, conn(3)))
        .expect("the agent is welcome again");
}

#[tokio::test(start_paused = true)]
async fn a_failed_launch_rolls_back_every_node_of_the_request() {
    let h = harness(FakeRuntime::new()).await;
    h.fake
        .fail_next_launch(RuntimeError::Other("no room".into()));
    let specs = ["a", "b"].map(|name| pb::NodeSpec {
        name: name.into(),
        cpu_millis: 1000,
        ..Default::default()
    });
    let err = h.ops.create_nodes(specs.to_vec()).await.unwrap_err();
    assert!(
        err.to_string().contains("failed to start node a: no room"),
        "{err}"
    );
    assert!(h
        .control()
        .read(|c| !c.nodes.contains_key("a") && !c.nodes.contains_key("b")));
    assert!(h.fake.handle_of("a").is_none() && h.fake.handle_of("b").is_none());
}

#[tokio::test(start_paused = true)]
async fn pods_of_a_node_given_up_move_only_once_its_instance_is_removed() {
    let mut h = harness(FakeRuntime::new()).await;
    let spec = pb::NodeSpec {
        name: "n2".into(),
        cpu_millis: 1000,
        ..Default::default()
    };
    h.ops.create_nodes(vec![spec]).await.unwrap();
    let (tx, _rx) = mpsc::unbounded_channel();
    for (id, name) in [(1, "n1"), (2, "n2")] {
        let instance = h.ops.node_view(name).unwrap().instance_id;
        let reg = pb::Register {
            node_name: name.into(),
            ..Default::default()
        };
        let conn = AgentConn {
            id,
            instance,
            tx: tx.clone(),
            address: "10.0.0.1:1".into(),
        };
        h.control().mutate_detached(|c| {
            c.attach(&reg, conn).unwrap();
            c.heartbeat(name, id, pb::Heartbeat::default());
        });
    }
    let pod = pb::Pod {
        name: "p".into(),
        cpu_request_millis: 100,
        containers: vec![pb::Container {
            name: "c".into(),
            image: "x".into(),
            cpu_request_millis: 100,
            ..Default::default()
        }],
        ..Default::default()
    };
    h.control().mutate_detached(|c| {
        c.insert_pod(pod);
        c.place_pending();
    });
    let on = |h: &Harness| h.control().read(|c| c.pods["default/p"].node.clone());
    assert_eq!(on(&h), "n1");

    h.transition(NodeStatus::PermanentlyFailed, "gave up").await;
    assert_eq!(
        on(&h),
        "n1",
        "the pod waits for the node's instance to be removed"
    );
    let reap = h.actions.try_recv().expect("a reap was queued");
    assert!(h.fake.calls_of(Op::Remove).is_empty());
    h.ops.execute(reap).await;
    assert_eq!(h.fake.calls_of(Op::Remove).len(), 1);
    assert_eq!(on(&h), "n2", "then it moves");
}

#[tokio::test(start_paused = true)]
async fn a_node_that_left_and_whose_instance_is_gone_is_given_up() {
    let h = harness(FakeRuntime::new()).await;
    h.transition(NodeStatus::Left, "agent left").await;
    // Left with its container still there: it may start again and rejoin.
    h.ops.observe_instances().await;
    assert_eq!(h.node().status(), NodeStatus::Left);
    // `docker rm`: nothing can rejoin any more.
    assert!(h.fake.set_observed("n1", crate::runtime::Observed::Missing));
    h.ops.observe_instances().await;
    assert_eq!(h.node().status(), NodeStatus::PermanentlyFailed);
    assert!(
        h.node().reason.contains("it left and its"),
        "{}",
        h.node().reason
    );
    // From here it goes the way of any given-up node: reaped, then replaced.
}
