//! Pods by selector: `ListPods` with label and field selectors and paging, and `DeletePods`,
//! which deletes many pods in one change and waits for them on the watch.
//!
//! Paging: a page is the next `limit` matching pods in key order (`namespace/name`); the
//! continue token is the last key of the page, so it stays valid whatever is created or
//! deleted meanwhile: the next page starts after it, and every pod that exists throughout is
//! listed exactly once.

use std::collections::HashMap;
use std::ops::Bound;
use std::time::Duration;

use kube9_proto::fields::{self, FieldSelector};
use kube9_proto::namespace;
use kube9_proto::pb;
use kube9_proto::selector::{self, Selector};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tonic::Status;

use super::lookup::{in_namespace, pod_not_found};

/// The most pod bytes one page of a paged list holds: under gRPC's default 4 MiB message,
/// with room for the rest of the reply.
const PAGE_BYTES: usize = 3 * 1024 * 1024;
use super::ClusterApi;
use crate::state::{Cluster, Error};

/// How often a waiting `DeletePods` looks at the state itself, besides the watch.
const RECHECK: Duration = Duration::from_millis(500);

/// The label and field selectors of a request, parsed.
struct Selectors {
    labels: Selector,
    fields: FieldSelector,
}

impl Selectors {
    fn parse(label_selector: &str, field_selector: &str) -> Result<Self, Error> {
        Ok(Selectors {
            labels: selector::parse(label_selector).map_err(|e| Error::Invalid(e.to_string()))?,
            fields: fields::parse(field_selector, fields::POD_FIELDS)
                .map_err(|e| Error::Invalid(e.to_string()))?,
        })
    }

    fn matches(&self, pod: &pb::Pod) -> bool {
        self.labels.matches(&pod.labels) && self.fields.matches_pod(pod)
    }
}

/// The keys of the pods of namespace `ns` (empty: every namespace) after `after` (empty: from
/// the start), in key order.
fn keys_after<'a>(
    c: &'a Cluster,
    ns: &str,
    after: &str,
) -> impl Iterator<Item = (&'a String, &'a pb::Pod)> + 'a {
    let prefix = if ns.is_empty() {
        String::new()
    } else {
        format!("{ns}/")
    };
    let start = if after.is_empty() || after.as_bytes() < prefix.as_bytes() {
        Bound::Included(prefix.clone())
    } else {
        Bound::Excluded(after.to_string())
    };
    c.pods
        .range((start, Bound::Unbounded))
        .take_while(move |(k, _)| k.starts_with(&prefix))
}

impl ClusterApi {
    pub(super) fn do_list_pods(
        &self,
        r: pb::ListPodsRequest,
    ) -> Result<pb::ListPodsResponse, Status> {
        let select = Selectors::parse(&r.label_selector, &r.field_selector)?;
        let token = r.continue_token.as_str();
        if !token.is_empty() && !token.contains('/') {
            return Err(Error::Invalid(format!(
                "invalid continue token {token:?}: expected the namespace/name of the last pod listed"
            ))
            .into());
        }
        let wanted = |p: &pb::Pod| {
            (r.node.is_empty() || p.node == r.node)
                && in_namespace(&r.namespace, &p.namespace)
                && select.matches(p)
        };
        if r.limit == 0 && token.is_empty() {
            // The pods and the version they were read at, under one lock.
            let (resource_version, mut pods): (u64, Vec<pb::Pod>) = self.control.read(|c| {
                let pods = c.pods.values().filter(|p| wanted(p)).cloned().collect();
                (c.version(), pods)
            });
            pods.sort_by(|a, b| (a.ns(), &a.name).cmp(&(b.ns(), &b.name)));
            return Ok(pb::ListPodsResponse {
                pods,
                continue_token: String::new(),
                resource_version,
            });
        }
        let limit = if r.limit == 0 {
            usize::MAX
        } else {
            r.limit as usize
        };
        let ns = if r.namespace.is_empty() {
            ""
        } else {
            namespace::or_default(&r.namespace)
        };
        Ok(self.control.read(|c| {
            // A page ends at `limit` pods or at PAGE_BYTES of them (never empty), so that it
            // fits gRPC's default 4 MiB message whatever the pods hold; a token only when
            // another pod follows, so the last page says it is the last.
            let (mut pods, mut bytes, mut more) = (Vec::new(), 0, false);
            for (_, p) in keys_after(c, ns, token).filter(|(_, p)| wanted(p)) {
                let size = prost::Message::encoded_len(p);
                if pods.len() == limit || (!pods.is_empty() && bytes + size > PAGE_BYTES) {
                    more = true;
                    break;
                }
                bytes += size;
                pods.push(p.clone());
            }
            pb::ListPodsResponse {
                resource_version: c.version(),
                continue_token: if more {
                    pods.last().map(|p| p.key()).unwrap_or_default()
                } else {
                    String::new()
                },
                pods,
            }
        }))
    }

    pub(super) async fn do_delete_pods(
        &self,
        r: pb::DeletePodsRequest,
    ) -> Result<pb::DeletePodsResponse, Status> {
        let by_name = !r.names.is_empty();
        let selected = r.all || !r.label_selector.is_empty() || !r.field_selector.is_empty();
        if by_name && selected {
            return Err(Error::Invalid(
                "names cannot be given together with a selector or all".into(),
            )
            .into());
        }
        if !by_name && !selected {
            return Err(Error::Invalid(
                "name the pods to delete, or select them (label_selector, field_selector or all)"
                    .into(),
            )
            .into());
        }
        let select = Selectors::parse(&r.label_selector, &r.field_selector)?;
        let ns = namespace::or_default(&r.namespace).to_string();
        // Subscribed before the change, so no deletion is missed.
        let mut watch = r.wait.then(|| self.control.subscribe());
        let (outcomes, commit) = self.control.mutate(|c| {
            // 0: the pod's own grace period, or kube9d's default.
            let grace = u64::from(r.grace_period_seconds) * 1000;
            let names: Vec<String> = if by_name {
                let mut seen = std::collections::HashSet::new();
                (r.names.iter())
                    .filter(|n| seen.insert(n.as_str()))
                    .cloned()
                    .collect()
            } else {
                keys_after(c, &ns, "")
                    .filter(|(_, p)| select.matches(p))
                    .map(|(_, p)| p.name.clone())
                    .collect()
            };
            names
                .into_iter()
                .map(|name| {
                    let key = namespace::key(&ns, &name);
                    let outcome = match c.pods.get(&key).map(|p| p.created_ms) {
                        None => Err(pod_not_found(&ns, &name)),
                        Some(created) => c.delete_pod(&key, grace).map(|_| created),
                    };
                    (name, outcome)
                })
                .collect::<Vec<_>>()
        });
        commit.wait().await.map_err(Error::from)?;
        let mut results: Vec<pb::DeletePodResult> = Vec::with_capacity(outcomes.len());
        // Deleted pods not gone yet, by key: their creation time (a pod made again under the
        // same name is another pod).
        let mut waiting: HashMap<String, (usize, i64)> = HashMap::new();
        for (name, outcome) in outcomes {
            let (code, message) = match outcome {
                Ok(created) => {
                    waiting.insert(namespace::key(&ns, &name), (results.len(), created));
                    (0, String::new())
                }
                Err(e) => {
                    let status = Status::from(e);
                    (status.code() as i32, status.message().to_string())
                }
            };
            results.push(pb::DeletePodResult {
                namespace: ns.clone(),
                name,
                code,
                message,
            });
        }
        if let Some(rx) = watch.as_mut() {
            let deadline = (r.timeout_ms > 0)
                .then(|| Instant::now() + Duration::from_millis(r.timeout_ms.into()));
            let gone = |waiting: &mut HashMap<String, (usize, i64)>| {
                self.control.read(|c| {
                    waiting.retain(|k, (_, created)| {
                        c.pods.get(k).is_some_and(|p| p.created_ms == *created)
                    })
                })
            };
            gone(&mut waiting);
            while !waiting.is_empty() {
                let now = Instant::now();
                if deadline.is_some_and(|d| d <= now) {
                    break;
                }
                let wake = deadline.map_or(now + RECHECK, |d| d.min(now + RECHECK));
                tokio::select! {
                    ev = rx.recv() => match ev {
                        Ok(pb::WatchEvent {
                            r#type,
                            object: Some(pb::watch_event::Object::Pod(pod)),
                            ..
                        }) if r#type == pb::WatchEventType::Deleted as i32 => {
                            if waiting.get(&pod.key()).is_some_and(|(_, c)| *c == pod.created_ms) {
                                waiting.remove(&pod.key());
                            }
                        }
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => gone(&mut waiting),
                        Err(RecvError::Closed) => break,
                    },
                    _ = tokio::time::sleep_until(wake) => gone(&mut waiting),
                }
            }
            let waited = Duration::from_millis(r.timeout_ms.into()).as_secs_f64();
            for (i, _) in waiting.into_values() {
                let result = &mut results[i];
                result.code = tonic::Code::DeadlineExceeded as i32;
                result.message = format!(
                    "timed out after {waited}s waiting for pod {:?} to be deleted",
                    result.name
                );
            }
        }
        Ok(pb::DeletePodsResponse { results })
    }
}
