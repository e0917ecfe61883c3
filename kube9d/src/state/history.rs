//! Resource versions and the history of recent changes: how a list followed by a watch misses
//! nothing and repeats nothing.
//!
//! # Versions
//!
//! Every change that writes an object takes the next number of one counter
//! ([`Cluster::next_version`](super::Cluster::next_version)), under the state lock, while
//! [`Control::mutate`](super::Control::mutate) runs it. The number is stamped on the object
//! (`resource_version`, stored with it, so versions go on increasing after a restart) and on
//! its watch event. Namespaces, ConfigMaps and Secrets take versions too, though they have no
//! watch events: a version is an order, not a count, and gaps are normal.
//!
//! # Publication order
//!
//! A change's watch events go out only once the change is durable, from the store's writer
//! thread, and changes are submitted to the store under the state lock: so events are
//! published in the order their versions were handed out, increasing. What is published
//! lags what is in memory: a list read under the state lock can show a change whose event is
//! not out yet.
//!
//! # List, then watch
//!
//! A list reports [`Cluster::version`](super::Cluster::version), read under the same lock as
//! its objects: the list holds exactly the changes with versions up to it. A watch from that
//! version ([`Control::watch_from`](super::Control::watch_from)) must then deliver every
//! change after it, once:
//!
//! - The publisher records each event here and broadcasts it *under this history's lock*;
//!   `watch_from` subscribes to the broadcast and copies the recorded events after the
//!   version under the same lock. Each event is therefore either in the copy or received
//!   from the broadcast, never both, never neither.
//! - Events at or below the version may still arrive (the list was ahead of publication):
//!   the stream skips every event whose version is not above the last one it sent, and
//!   clients drop what is not newer than the list.
//! - The history keeps the last [`CAPACITY`] events. A version older than the oldest one it
//!   can replay from is refused ([`Expired`], gRPC `OUT_OF_RANGE`, as Kubernetes answers 410
//!   Gone): the client lists again. After a restart the history starts empty at the
//!   restored version.
//!
//! A change the store refuses is rolled back and its events never go out: its versions are
//! skipped, never reused. (A list taken in the instant between such a change and its
//! rollback showed it; kube9d then refuses every write until restarted, see
//! [`crate::store`].)

use std::collections::VecDeque;

use kube9_proto::pb;

/// How many recent watch events are kept for replay.
pub const CAPACITY: usize = 4096;

/// A watch asked for changes the history no longer holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Expired: too old resource version: {asked} (the oldest kube9d can watch from is {oldest}); list again")]
pub struct Expired {
    pub asked: u64,
    pub oldest: u64,
}

/// The most recent published watch events, oldest first.
#[derive(Debug)]
pub struct History {
    events: VecDeque<pb::WatchEvent>,
    capacity: usize,
    /// Every change after this version is in `events` (or not published yet).
    floor: u64,
}

impl History {
    /// An empty history that can replay everything after `floor`.
    pub fn new(capacity: usize, floor: u64) -> Self {
        History {
            events: VecDeque::new(),
            capacity: capacity.max(1),
            floor,
        }
    }

    /// Keeps a published event, dropping the oldest when full.
    pub fn record(&mut self, event: pb::WatchEvent) {
        self.events.push_back(event);
        while self.events.len() > self.capacity {
            if let Some(old) = self.events.pop_front() {
                self.floor = self.floor.max(old.resource_version);
            }
        }
    }

    /// The oldest version a watch can start from.
    pub fn oldest(&self) -> u64 {
        self.floor
    }

    /// The recorded events after `version`, oldest first; nothing for 0 (from now on).
    pub fn since(&self, version: u64) -> Result<Vec<pb::WatchEvent>, Expired> {
        if version == 0 {
            return Ok(Vec::new());
        }
        if version < self.floor {
            return Err(Expired {
                asked: version,
                oldest: self.floor,
            });
        }
        Ok(self
            .events
            .iter()
            .filter(|e| e.resource_version > version)
            .cloned()
            .collect())
    }
}

/// Drops what a watch already sent: events must come with increasing versions.
#[derive(Debug, Clone, Copy)]
pub struct Dedup {
    last: u64,
}

impl Dedup {
    /// A watch that starts after `version` (0: from now on, nothing to skip).
    pub fn after(version: u64) -> Self {
        Dedup { last: version }
    }

    /// Whether to send `event`, remembering it if so.
    pub fn admit(&mut self, event: &pb::WatchEvent) -> bool {
        if event.resource_version <= self.last {
            return false;
        }
        self.last = event.resource_version;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Cluster, Control};
    use crate::store::Store;

    fn ev(version: u64) -> pb::WatchEvent {
        pb::WatchEvent {
            r#type: pb::WatchEventType::Modified as i32,
            object: None,
            resource_version: version,
        }
    }

    fn versions(events: &[pb::WatchEvent]) -> Vec<u64> {
        events.iter().map(|e| e.resource_version).collect()
    }

    #[test]
    fn replays_what_came_after_the_version() {
        let mut h = History::new(10, 3);
        for v in [4, 5, 7, 9] {
            h.record(ev(v));
        }
        assert_eq!(versions(&h.since(3).unwrap()), [4, 5, 7, 9]);
        assert_eq!(versions(&h.since(5).unwrap()), [7, 9]);
        assert_eq!(versions(&h.since(6).unwrap()), [7, 9]);
        assert!(h.since(9).unwrap().is_empty());
        // Ahead of what is published (a list can be): nothing yet, not an error.
        assert!(h.since(12).unwrap().is_empty());
        // From now on.
        assert!(h.since(0).unwrap().is_empty());
    }

    #[test]
    fn a_version_older_than_the_history_is_expired() {
        let mut h = History::new(3, 0);
        for v in 1..=5 {
            h.record(ev(v));
        }
        // 1 and 2 were dropped: a watch from 1 would miss 2.
        assert_eq!(h.oldest(), 2);
        assert_eq!(
            h.since(1),
            Err(Expired {
                asked: 1,
                oldest: 2
            })
        );
        assert_eq!(versions(&h.since(2).unwrap()), [3, 4, 5]);
        // A fresh history (after a restart) cannot replay what came before it.
        let h = History::new(3, 40);
        assert!(h.since(39).is_err());
        assert!(h.since(40).unwrap().is_empty());
        let message = Expired {
            asked: 1,
            oldest: 2,
        }
        .to_string();
        assert!(
            message.starts_with("Expired: too old resource version: 1"),
            "{message}"
        );
    }

    #[test]
    fn dedup_skips_what_the_list_or_replay_already_had() {
        let mut d = Dedup::after(5);
        let sent: Vec<u64> = [3, 5, 6, 6, 4, 8, 7, 9]
            .into_iter()
            .filter(|&v| d.admit(&ev(v)))
            .collect();
        assert_eq!(sent, [6, 8, 9]);
    }

    #[test]
    fn every_change_takes_a_greater_version_stamped_on_object_and_event() {
        let mut c = Cluster::default();
        c.ensure_default_namespace();
        let before = c.version();
        c.event("Node", "n1", false, "Test", "one".into());
        c.event("Node", "n1", false, "Test", "two".into());
        let out = std::mem::take(&mut c.watch_out);
        assert_eq!(versions(&out), [before + 1, before + 2]);
        for e in &out {
            let Some(pb::watch_event::Object::Event(obj)) = &e.object else {
                panic!("an event");
            };
            assert_eq!(obj.resource_version, e.resource_version);
        }
        assert_eq!(c.version(), before + 2);
        assert_eq!(c.namespaces["default"].resource_version, before);
    }

    /// The whole path: changes made through `Control`, published by the store's writer, a list
    /// version taken in between, and a watch from it that gets exactly what came after.
    #[tokio::test]
    async fn a_watch_from_a_list_version_gets_every_later_change_once() {
        let dir = std::env::temp_dir().join(format!("kube9-history-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).unwrap();
        let (control, _actions) =
            Control::load(store, Default::default(), None, "test".into()).unwrap();
        let change = |reason: &'static str| {
            let (_, commit) = control.mutate(|c| c.event("Node", "n1", false, reason, "x".into()));
            commit
        };
        change("Before").wait().await.unwrap();
        let listed = control.read(|c| c.version());
        // Made after the list, published before the watch starts: replayed from the history.
        change("Between").wait().await.unwrap();
        let (replay, mut rx) = control.watch_from(listed).unwrap();
        assert_eq!(versions(&replay), [listed + 1]);
        // Made after the watch started: received live.
        change("After").wait().await.unwrap();
        let live = rx.recv().await.unwrap();
        assert_eq!(live.resource_version, listed + 2);
        assert!(rx.try_recv().is_err());
        // The history was empty at load: from the version it started at is fine, from before
        // it is expired.
        let (all, _) = control.watch_from(listed - 1).unwrap();
        assert_eq!(versions(&all), [listed, listed + 1, listed + 2]);
        drop(control);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
