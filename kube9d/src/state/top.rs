//! `Top`: what each node's pods use, from the usage its agent sent with its last heartbeat.

use kube9_proto::{namespace, pb};

use super::Cluster;

impl Cluster {
    /// Usage of every node (sorted by name) and of the pods of `ns` (empty: every namespace)
    /// that still run where they were measured.
    pub fn top(&self, ns: &str) -> pb::TopResponse {
        let mut response = pb::TopResponse::default();
        for (name, entry) in &self.nodes {
            let current: Vec<&pb::PodUsage> = (entry.usage.iter())
                .filter(|u| {
                    let key = namespace::key(&u.pod_namespace, &u.pod_name);
                    self.pods
                        .get(&key)
                        .is_some_and(|p| p.node == *name && p.uid == u.pod_uid)
                })
                .collect();
            response.nodes.push(pb::NodeUsage {
                name: name.clone(),
                cpu_millis: current.iter().map(|u| u.cpu_millis).sum(),
                memory_bytes: current.iter().map(|u| u.memory_bytes).sum(),
                cpu_capacity_millis: entry.node.cpu_capacity_millis,
                memory_capacity_bytes: entry.node.memory_capacity_bytes,
                reported: entry.agent.is_some() && entry.last_heartbeat.is_some(),
            });
            response.pods.extend(
                (current.into_iter())
                    .filter(|u| ns.is_empty() || namespace::or_default(&u.pod_namespace) == ns)
                    .map(|u| pb::PodUsage {
                        pod_namespace: namespace::or_default(&u.pod_namespace).to_string(),
                        ..u.clone()
                    }),
            );
        }
        response.nodes.sort_by(|a, b| a.name.cmp(&b.name));
        (response.pods)
            .sort_by(|a, b| (&a.pod_namespace, &a.pod_name).cmp(&(&b.pod_namespace, &b.pod_name)));
        response
    }
}
