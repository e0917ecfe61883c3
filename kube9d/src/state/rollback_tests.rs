//! Only durable state is visible: a change the store refuses is rolled back, and none of
//! its watch events, agent commands or runtime actions go out. Runs [`Control`] on a real
//! store whose next write is made to fail as on a full disk.

use kube9_proto::pb::{self, control_message::Msg, NodeStatus};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::tests::{conn, pod};
use super::Control;
use crate::config::Settings;
use crate::store::{Error as StoreError, Store};

struct Setup {
    control: Control,
    agent: UnboundedReceiver<pb::ControlMessage>,
    dir: std::path::PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A control plane with node n1 (2 CPUs) attached and healthy, running pod `p1` (500m).
async fn setup() -> Setup {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("kube9-rollback-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&dir).unwrap();
    let (control, _actions) = Control::load(store, Settings::default(), None, "t".into()).unwrap();
    let (tx, agent) = unbounded_channel();
    let reg = pb::Register {
        node_name: "n1".into(),
        cpu_capacity_millis: 2000,
        ..Default::default()
    };
    let (r, commit) = control.mutate(|c| {
        c.ensure_default_namespace();
        c.attach(&reg, conn(1, tx))?;
        c.heartbeat("n1", 1, pb::Heartbeat::default());
        c.insert_pod(pod("p1", 500));
        c.place_pending();
        Ok::<_, super::Error>(())
    });
    r.unwrap();
    commit.wait().await.unwrap();
    let mut s = Setup {
        control,
        agent,
        dir,
    };
    let sent = s.sent();
    assert!(
        sent.iter()
            .any(|m| matches!(m, Msg::RunPod(r) if r.pod.as_ref().unwrap().name == "p1")),
        "{sent:?}"
    );
    s
}

impl Setup {
    /// What the agent has been sent so far.
    fn sent(&mut self) -> Vec<Msg> {
        let mut out = vec![];
        while let Ok(m) = self.agent.try_recv() {
            out.extend(m.msg);
        }
        out
    }

    fn pods(&self) -> Vec<String> {
        let mut pods: Vec<_> = self.control.read(|c| c.pods.keys().cloned().collect());
        pods.sort();
        pods
    }

    fn stored_pods(&self) -> Vec<String> {
        let mut pods: Vec<_> = (self.control.store().load().unwrap().pods.iter())
            .map(|p| p.key())
            .collect();
        pods.sort();
        pods
    }
}

fn refused(e: &StoreError) -> bool {
    matches!(e, StoreError::ReadOnly { cause, .. } if cause.contains("No space left"))
}

#[tokio::test]
async fn a_refused_create_is_not_listed_watched_scheduled_or_sent() {
    let mut s = setup().await;
    let mut watch = s.control.subscribe();
    let events_before = s.control.read(|c| c.events.len());
    s.control.store().fail_next_write();

    let ((), commit) = s.control.mutate(|c| {
        c.insert_pod(pod("p2", 500));
        c.place_pending();
    });
    let err = commit.wait().await.unwrap_err();
    assert!(refused(&err), "{err}");
    assert!(err.to_string().contains("serves reads only"), "{err}");

    assert_eq!(s.pods(), ["default/p1"]);
    assert_eq!(s.stored_pods(), ["default/p1"]);
    assert!(
        watch.try_recv().is_err(),
        "no watch event for what was rolled back"
    );
    assert!(s.sent().is_empty(), "the agent was told nothing");
    s.control.read(|c| {
        let n1 = &c.nodes["n1"];
        assert_eq!(n1.allocated.cpu, 500, "only p1's CPU is allocated");
        assert_eq!(n1.pods.len(), 1);
        assert!(n1.agent.is_some(), "the agent stays attached");
        assert_eq!(n1.status(), NodeStatus::Healthy);
        assert_eq!(
            c.events.len(),
            events_before,
            "no event of the refused change"
        );
        assert!(c.pending.is_empty());
    });
}

#[tokio::test]
async fn a_refused_delete_leaves_the_pod_and_it_keeps_running() {
    let mut s = setup().await;
    s.control.store().fail_next_write();
    let (r, commit) = s.control.mutate(|c| c.delete_pod("default/p1", 0));
    r.unwrap();
    let err = commit.wait().await.unwrap_err();
    assert!(refused(&err), "{err}");

    assert_eq!(s.pods(), ["default/p1"]);
    let phase = s.control.read(|c| c.pods["default/p1"].phase());
    assert_ne!(phase, pb::PodPhase::Terminating);
    assert!(
        !s.sent().iter().any(|m| matches!(m, Msg::DeletePod(_))),
        "the agent was not told to stop it"
    );
    assert!(s
        .control
        .read(|c| !c.terminating.contains_key("default/p1")));
}

#[tokio::test]
async fn once_a_write_failed_every_later_change_is_refused_and_rolled_back_too() {
    let mut s = setup().await;
    s.control.store().fail_next_write();
    let ((), first) = s.control.mutate(|c| c.insert_pod(pod("p2", 100)));
    let ((), second) = s.control.mutate(|c| c.insert_pod(pod("p3", 100)));
    assert!(refused(&first.wait().await.unwrap_err()));
    assert!(refused(&second.wait().await.unwrap_err()));
    // The store does not heal by itself: a later change fails the same way.
    let ((), third) = s.control.mutate(|c| c.insert_pod(pod("p4", 100)));
    assert!(refused(&third.wait().await.unwrap_err()));
    assert_eq!(s.pods(), ["default/p1"]);
    assert!(s.sent().is_empty());
    // Reads, snapshots included, still work.
    let file = s.control.store().export().await.unwrap();
    assert!(!file.bytes.is_empty());
}

#[tokio::test]
async fn what_a_durable_change_makes_known_goes_out_in_order_after_it_is_saved() {
    let mut s = setup().await;
    let mut watch = s.control.subscribe();
    let ((), commit) = s.control.mutate(|c| {
        c.insert_pod(pod("p2", 500));
        c.place_pending();
    });
    commit.wait().await.unwrap();
    assert_eq!(s.stored_pods(), ["default/p1", "default/p2"]);
    let mut pods = vec![];
    while let Ok(ev) = watch.try_recv() {
        if let Some(pb::watch_event::Object::Pod(p)) = ev.object {
            pods.push((p.name, p.node));
        }
    }
    assert_eq!(
        pods.first(),
        Some(&("p2".to_string(), String::new())),
        "{pods:?}"
    );
    assert_eq!(
        pods.last(),
        Some(&("p2".to_string(), "n1".to_string())),
        "{pods:?}"
    );
    assert!(s
        .sent()
        .iter()
        .any(|m| matches!(m, Msg::RunPod(r) if r.pod.as_ref().unwrap().name == "p2")));
}
