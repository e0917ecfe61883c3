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
            .map(|var| (var.name.clone(), value(pod, var))),
    );
    env
}

/// A variable's value: as kube9d sent it, except a `fieldRef` to `status.podIP`, which only
/// the node knows (`pod.pod_ip`, set once the pod's sandbox exists; empty for process pods).
fn value(pod: &pb::Pod, var: &pb::EnvVar) -> String {
    use pb::env_var_source::Source;
    match var.value_from.as_ref().and_then(|f| f.source.as_ref()) {
        Some(Source::FieldPath(path)) if path == "status.podIP" => pod.pod_ip.clone(),
        _ => var.value.clone(),
    }
}
