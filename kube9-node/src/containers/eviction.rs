//! Evicting a pod whose disk emptyDir passes its `sizeLimit`, as the kubelet does.
//!
//! A `Memory` emptyDir is a tmpfs of its size limit; nothing bounds a disk one. So every
//! [`EVICTION_INTERVAL`] the supervisor measures each running pod's disk emptyDirs that have a
//! `sizeLimit` ([`PodBackend::empty_dir_usage`](super::backend::PodBackend::empty_dir_usage):
//! `du` in the pod's sandbox), and evicts a pod with one over its limit:
//!
//! ```text
//! marked stopping (nothing restarts, whatever the restartPolicy)
//!   └─▶ its containers killed (no grace, as the kubelet's local storage eviction) and
//!       removed with its volumes, its task aborted
//!         └─▶ one final status: Failed, reason Evicted,
//!             `Usage of EmptyDir volume "cache" exceeds the limit "10Mi".`
//! ```
//!
//! The evicted pod stays on the node's books with that status (`get pods` shows it
//! Failed/Evicted) until it is deleted; the delete then confirms as for any pod.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use kube9_proto::pb::{self, PodPhase};
use kube9_proto::quantity::format_memory;
use tracing::{debug, info, warn};

use super::{Stopping, Supervisor, SupervisorShared};
use crate::cri::{self, Medium};

/// How often size-limited disk emptyDirs are measured (the agent's hidden
/// `--eviction-interval-ms`).
pub const EVICTION_INTERVAL: Duration = Duration::from_secs(5);

/// How many pods are measured at once.
const CONCURRENT_MEASUREMENTS: usize = 8;

/// The message of a pod evicted for `volume` (Kubernetes' words).
pub fn message(volume: &str, limit_bytes: u64) -> String {
    let limit = format_memory(i64::try_from(limit_bytes).unwrap_or(i64::MAX));
    format!("Usage of EmptyDir volume {volume:?} exceeds the limit {limit:?}.")
}

/// The disk emptyDirs of `pod` that have a `sizeLimit`: (volume name, limit in bytes).
pub fn limited_empty_dirs(pod: &pb::Pod) -> Vec<(String, u64)> {
    cri::spec::engine_volumes(pod)
        .into_iter()
        .filter(|v| v.medium == Medium::Disk)
        .filter_map(|v| Some((v.name, v.size_limit_bytes?)))
        .collect()
}

/// The first volume of `usage` over its limit in `limits`, with that limit.
fn over_limit<'a>(
    limits: &'a [(String, u64)],
    usage: &[(String, u64)],
) -> Option<(&'a str, u64, u64)> {
    limits.iter().find_map(|(name, limit)| {
        let used = usage.iter().find(|(n, _)| n == name)?.1;
        (used > *limit).then_some((name.as_str(), used, *limit))
    })
}

/// Measures and evicts every `interval` until the supervisor is gone.
pub(super) async fn run(shared: Weak<SupervisorShared>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Pods (by uid) whose measuring failed and was reported: once each.
    let mut warned = HashSet::new();
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        Supervisor { shared }.check_empty_dirs(&mut warned).await;
    }
}

impl Supervisor {
    /// One round of [`run`]: measures the size-limited disk emptyDirs of every pod still
    /// running, and evicts those over a limit.
    async fn check_empty_dirs(&self, warned: &mut HashSet<String>) {
        let candidates: Vec<_> = {
            let pods = self.shared.pods.lock();
            (pods.values())
                .filter(|e| !e.pod.is_stopping())
                .filter(|e| {
                    let phase = e.pod.status().phase();
                    !matches!(phase, PodPhase::Succeeded | PodPhase::Failed)
                })
                .filter_map(|e| {
                    let limits = limited_empty_dirs(&e.spec);
                    (!limits.is_empty()).then(|| (e.spec.clone(), limits))
                })
                .collect()
        };
        warned.retain(|uid| candidates.iter().any(|(p, _)| &p.uid == uid));
        let backend = self.shared.backend.clone();
        let measured: Vec<_> = futures::stream::iter(candidates)
            .map(|(pod, limits)| {
                let backend = backend.clone();
                async move {
                    let usage = backend.empty_dir_usage(&pod).await;
                    (pod, limits, usage)
                }
            })
            .buffer_unordered(CONCURRENT_MEASUREMENTS)
            .collect()
            .await;
        for (pod, limits, usage) in measured {
            let usage = match usage {
                Ok(usage) => usage,
                Err(error) => {
                    if warned.insert(pod.uid.clone()) {
                        warn!(pod = %pod.name, uid = %pod.uid, %error, "failed to measure the pod's emptyDir volumes");
                    } else {
                        debug!(pod = %pod.name, %error, "failed to measure the pod's emptyDir volumes");
                    }
                    continue;
                }
            };
            if let Some((volume, used, limit)) = over_limit(&limits, &usage) {
                info!(pod = %pod.name, uid = %pod.uid, volume, used, limit, "emptyDir over its sizeLimit, evicting the pod");
                // In the background, like a delete; the next round skips it (stopping).
                drop(self.evict(&pod.key(), &pod.uid, message(volume, limit)));
            }
        }
    }

    /// Evicts binding `uid` of pod `name` (`namespace/name`; a bare name is in `default`): marks it stopping so nothing restarts, kills and
    /// removes its containers (and volumes), aborts its task, then sends one final status
    /// (Failed, reason `Evicted`, `message`). The pod stays listed with that status until it
    /// is deleted. `None` when the binding is not here or already stopping; otherwise the
    /// eviction runs in the background and the result resolves when it is done (a delete or
    /// a new binding of the name waits for it too).
    pub fn evict(&self, name: &str, uid: &str, message: String) -> Option<Stopping> {
        let name = &super::pod_key(name);
        let shared = &self.shared;
        let mut pods = shared.pods.lock();
        let entry = pods.get_mut(name).filter(|e| e.pod.uid == uid)?;
        let before = entry.pod.begin_eviction()?;
        let pod = entry.pod.clone();
        // The task is aborted and awaited below; the entry stays, with a finished one.
        let task = std::mem::replace(&mut entry.task, tokio::spawn(async {}));
        let mut stopping = shared.stopping.lock();
        stopping.retain(|_, s| s.peek().is_none());
        let earlier = stopping.get(name).cloned();
        // Weak: the future sits in `stopping` until it is done.
        let (key, owner) = (name.to_string(), Arc::downgrade(shared));
        let name = key.clone();
        let evicted = async move {
            if let Some(earlier) = earlier {
                earlier.await;
            }
            // The kubelet evicts for local storage without a grace period.
            pod.stop(Duration::ZERO).await;
            task.abort();
            let _ = task.await;
            let status = pod.evicted(before, &message);
            // Unless deleted (or replaced) meanwhile: that owner sends the final word.
            let Some(owner) = owner.upgrade() else {
                return;
            };
            let pods = owner.pods.lock();
            if pods.get(&name).is_some_and(|e| Arc::ptr_eq(&e.pod, &pod)) {
                info!(pod = %name, uid = %pod.uid, %message, "pod evicted");
                let _ = owner.events.send(status);
            }
        }
        .boxed()
        .shared();
        stopping.insert(key, evicted.clone());
        tokio::spawn(evicted.clone());
        Some(evicted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_disk_empty_dirs_with_a_limit_are_measured() {
        let volume = |name: &str, medium: &str, size_bytes| pb::Volume {
            name: name.into(),
            kind: "emptyDir".into(),
            medium: medium.into(),
            size_bytes,
            ..Default::default()
        };
        let pod = pb::Pod {
            volumes: vec![
                volume("cache", "", 10 << 20),
                volume("unbounded", "", 0),
                volume("ram", "Memory", 1 << 20),
                pb::Volume {
                    name: "host".into(),
                    kind: "hostPath".into(),
                    source: "/tmp".into(),
                    size_bytes: 5,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert_eq!(limited_empty_dirs(&pod), [("cache".to_string(), 10 << 20)]);
    }

    #[test]
    fn a_volume_over_its_limit_is_found_and_named_as_kubernetes_does() {
        let limits = [("a".to_string(), 100), ("cache".to_string(), 10 << 20)];
        let usage = |a, cache| vec![("a".to_string(), a), ("cache".to_string(), cache)];
        assert_eq!(over_limit(&limits, &usage(100, 10 << 20)), None);
        assert_eq!(
            over_limit(&limits, &usage(0, (10 << 20) + 1)),
            Some(("cache", (10 << 20) + 1, 10 << 20))
        );
        assert_eq!(over_limit(&limits, &[]), None);
        assert_eq!(
            message("cache", 10 << 20),
            "Usage of EmptyDir volume \"cache\" exceeds the limit \"10Mi\"."
        );
        assert_eq!(
            message("c", 1500),
            "Usage of EmptyDir volume \"c\" exceeds the limit \"1500\"."
        );
    }
}
