//! A container's environment as the pod spec gives it, for every runtime: the pod's and
//! node's names, then the pod's `env` config items, then the container's own variables (the
//! most specific wins, as later entries override earlier ones).

use kube9_proto::pb;

/// The variables of `container` of `pod` on node `node`, in override order.
pub fn pod_env(pod: &pb::Pod, container: &pb::Container, node: &str) -> Vec<(String, String)> {
    let mut env = vec![
        ("KUBE9_POD_NAME".to_string(), pod.name.clone()),
        ("KUBE9_NODE_NAME".to_string(), node.to_string()),
    ];
    let items = pod.config_items.iter().filter(|item| item.kind == "env");
    env.extend(items.map(|item| (item.name.clone(), item.value.clone())));
    env.extend(
        container
            .env
            .iter()
            .map(|var| (var.name.clone(), var.value.clone())),
    );
    env
}
