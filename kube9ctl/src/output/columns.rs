//! The columns `get` and `node health` print for each kind.

use crate::output::objects::{namespace_phase, secret_type};
use crate::output::table::{or_none, render, Rows};
use crate::output::time::{age, duration};
use kube9_proto::namespace::or_default;
use kube9_proto::pb;
use kube9_proto::quantity::{format_cpu, format_memory};

/// A node's STATUS column: its status, and `,SchedulingDisabled` when cordoned (as kubectl
/// shows `Ready,SchedulingDisabled`).
pub fn node_status(n: &pb::Node) -> String {
    match n.unschedulable {
        true => format!("{},SchedulingDisabled", n.status().label()),
        false => n.status().label().to_string(),
    }
}

/// NAME STATUS CPU PODS AGE REASON; wide adds MEMORY RUNTIME IP CONTAINER HEARTBEAT.
pub fn node_rows(nodes: &[pb::Node], wide: bool, now_ms: i64) -> Rows {
    let mut headers = vec!["NAME", "STATUS", "CPU", "PODS", "AGE", "REASON"];
    if wide {
        headers.extend(["MEMORY", "RUNTIME", "IP", "CONTAINER", "HEARTBEAT"]);
    }
    let rows = nodes
        .iter()
        .map(|n| {
            let mut row = vec![
                n.name.clone(),
                node_status(n),
                format!(
                    "{}/{}",
                    format_cpu(n.cpu_allocated_millis),
                    format_cpu(n.cpu_capacity_millis)
                ),
                n.pods.len().to_string(),
                age(now_ms, n.created_ms),
                or_none(&n.reason),
            ];
            if wide {
                let runtime = n.runtime.clone().unwrap_or_default();
                let memory = if n.memory_capacity_bytes > 0 {
                    format!(
                        "{}/{}",
                        format_memory(n.memory_allocated_bytes),
                        format_memory(n.memory_capacity_bytes)
                    )
                } else {
                    "<none>".to_string()
                };
                row.extend([
                    memory,
                    or_none(&runtime.kind),
                    or_none(&runtime.ip),
                    or_none(&short_id(&runtime.id)),
                    heartbeat(now_ms, n.last_heartbeat_ms),
                ]);
            }
            row
        })
        .collect();
    Rows::new(&headers, rows)
}

/// [`node_rows`], laid out.
pub fn nodes(nodes: &[pb::Node], wide: bool, now_ms: i64) -> String {
    node_rows(nodes, wide, now_ms).text(false)
}

/// `headers` behind a NAMESPACE column when listing every namespace (kubectl's `-A` layout).
fn namespaced_headers<'a>(all_namespaces: bool, headers: &[&'a str]) -> Vec<&'a str> {
    let mut all = Vec::with_capacity(headers.len() + 1);
    if all_namespaces {
        all.push("NAMESPACE");
    }
    all.extend_from_slice(headers);
    all
}

/// A row's first cells: the namespace when listing every namespace, then the name.
fn namespaced_row(all_namespaces: bool, namespace: &str, name: &str) -> Vec<String> {
    let mut row = Vec::new();
    if all_namespaces {
        row.push(or_default(namespace).to_string());
    }
    row.push(name.to_string());
    row
}

/// NAME READY STATUS RESTARTS NODE CPU AGE, as kubectl; wide adds IP and REASON; NAMESPACE
/// first with `-A`.
///
/// READY counts ready app containers; STATUS is the phase, or what says more (Init:1/2,
/// CrashLoopBackOff, ErrImagePull, ...), or Terminating.
pub fn pod_rows(pods: &[pb::Pod], wide: bool, all_namespaces: bool, now_ms: i64) -> Rows {
    let mut headers = namespaced_headers(
        all_namespaces,
        &["NAME", "READY", "STATUS", "RESTARTS", "NODE", "CPU", "AGE"],
    );
    if wide {
        headers.extend(["IP", "REASON"]);
    }
    let rows = pods
        .iter()
        .map(|p| {
            let ready = p.containers.iter().filter(|c| c.ready).count();
            let restarts: u32 = p.containers.iter().map(|c| c.restarts).sum();
            let mut row = namespaced_row(all_namespaces, &p.namespace, &p.name);
            row.extend([
                format!("{ready}/{}", p.containers.len()),
                pod_status(p).to_string(),
                restarts.to_string(),
                or_none(&p.node),
                format_cpu(p.cpu_request_millis),
                age(now_ms, p.created_ms),
            ]);
            if wide {
                row.extend([or_none(&p.pod_ip), or_none(&p.reason)]);
            }
            row
        })
        .collect();
    Rows::new(&headers, rows)
}

/// [`pod_rows`], laid out.
pub fn pods(pods: &[pb::Pod], wide: bool, all_namespaces: bool, now_ms: i64) -> String {
    pod_rows(pods, wide, all_namespaces, now_ms).text(false)
}

/// The STATUS column of a pod.
pub fn pod_status(p: &pb::Pod) -> &str {
    if p.phase() != pb::PodPhase::Terminating && !p.status_reason.is_empty() {
        &p.status_reason
    } else {
        p.phase().label()
    }
}

/// AGE TYPE REASON OBJECT MESSAGE, in the order given (callers sort oldest first); NAMESPACE
/// first with `-A` (`<none>` for events about nodes and namespaces).
pub fn event_rows(events: &[pb::Event], all_namespaces: bool, now_ms: i64) -> Rows {
    let headers = namespaced_headers(
        all_namespaces,
        &["AGE", "TYPE", "REASON", "OBJECT", "MESSAGE"],
    );
    let rows = events
        .iter()
        .map(|e| {
            let mut row = Vec::new();
            if all_namespaces {
                row.push(or_none(&e.namespace));
            }
            row.extend([
                age(now_ms, e.time_ms),
                e.r#type.clone(),
                e.reason.clone(),
                format!("{}/{}", e.object_kind.to_ascii_lowercase(), e.object_name),
                e.message.clone(),
            ]);
            row
        })
        .collect();
    Rows::new(&headers, rows)
}

/// [`event_rows`], laid out.
pub fn events(events: &[pb::Event], all_namespaces: bool, now_ms: i64) -> String {
    event_rows(events, all_namespaces, now_ms).text(false)
}

/// NAME STATUS AGE, as kubectl.
pub fn namespace_rows(namespaces: &[pb::Namespace], now_ms: i64) -> Rows {
    let rows = namespaces
        .iter()
        .map(|n| {
            vec![
                n.name.clone(),
                namespace_phase(n).to_string(),
                age(now_ms, n.created_ms),
            ]
        })
        .collect();
    Rows::new(&["NAME", "STATUS", "AGE"], rows)
}

/// [`namespace_rows`], laid out.
pub fn namespaces(namespaces: &[pb::Namespace], now_ms: i64) -> String {
    namespace_rows(namespaces, now_ms).text(false)
}

/// NAME DATA AGE, as kubectl (DATA counts `data` and `binaryData` keys); NAMESPACE first with
/// `-A`.
pub fn config_map_rows(config_maps: &[pb::ConfigMap], all_namespaces: bool, now_ms: i64) -> Rows {
    let headers = namespaced_headers(all_namespaces, &["NAME", "DATA", "AGE"]);
    let rows = config_maps
        .iter()
        .map(|c| {
            let mut row = namespaced_row(all_namespaces, &c.namespace, &c.name);
            row.extend([
                (c.data.len() + c.binary_data.len()).to_string(),
                age(now_ms, c.created_ms),
            ]);
            row
        })
        .collect();
    Rows::new(&headers, rows)
}

/// [`config_map_rows`], laid out.
pub fn config_maps(config_maps: &[pb::ConfigMap], all_namespaces: bool, now_ms: i64) -> String {
    config_map_rows(config_maps, all_namespaces, now_ms).text(false)
}

/// NAME TYPE DATA AGE, as kubectl: how many keys, never a value; NAMESPACE first with `-A`.
pub fn secret_rows(secrets: &[pb::Secret], all_namespaces: bool, now_ms: i64) -> Rows {
    let headers = namespaced_headers(all_namespaces, &["NAME", "TYPE", "DATA", "AGE"]);
    let rows = secrets
        .iter()
        .map(|s| {
            let mut row = namespaced_row(all_namespaces, &s.namespace, &s.name);
            row.extend([
                secret_type(s).to_string(),
                s.data.len().to_string(),
                age(now_ms, s.created_ms),
            ]);
            row
        })
        .collect();
    Rows::new(&headers, rows)
}

/// [`secret_rows`], laid out.
pub fn secrets(secrets: &[pb::Secret], all_namespaces: bool, now_ms: i64) -> String {
    secret_rows(secrets, all_namespaces, now_ms).text(false)
}

/// NAME STATUS REASON HEARTBEAT COMPONENTS.
pub fn health(entries: &[pb::NodeHealthEntry]) -> String {
    let rows = entries
        .iter()
        .map(|h| {
            vec![
                h.name.clone(),
                h.status().label().to_string(),
                or_none(&h.reason),
                if h.heartbeat_age_ms < 0 {
                    "<none>".to_string()
                } else {
                    duration(h.heartbeat_age_ms)
                },
                components(&h.components),
            ]
        })
        .collect();
    render(
        &["NAME", "STATUS", "REASON", "HEARTBEAT", "COMPONENTS"],
        rows,
    )
}

/// `3/3`, or `2/3 (unhealthy: kube-proxy)`.
pub fn components(components: &[pb::Component]) -> String {
    if components.is_empty() {
        return "<none>".into();
    }
    let unhealthy: Vec<&str> = components
        .iter()
        .filter(|c| !c.healthy)
        .map(|c| c.name.as_str())
        .collect();
    let summary = format!(
        "{}/{}",
        components.len() - unhealthy.len(),
        components.len()
    );
    if unhealthy.is_empty() {
        summary
    } else {
        format!("{summary} (unhealthy: {})", unhealthy.join(","))
    }
}

/// Age of the last heartbeat, `<none>` if there was none.
pub fn heartbeat(now_ms: i64, last_ms: i64) -> String {
    if last_ms <= 0 {
        "<none>".into()
    } else {
        age(now_ms, last_ms)
    }
}

/// The first 12 characters of a container id, as docker shows it.
pub fn short_id(id: &str) -> String {
    id.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::objects::samples::*;

    #[test]
    fn node_table_shows_cpu_as_allocated_over_capacity() {
        assert_eq!(
            nodes(&[node()], false, NOW),
            "NAME   STATUS    CPU       PODS   AGE   REASON\n\
             n1     Healthy   1500m/4   1      3m    <none>\n"
        );
    }

    #[test]
    fn node_table_says_why_a_node_failed() {
        let mut failed = node();
        failed.status = pb::NodeStatus::Failed as i32;
        failed.reason = "missed 2 heartbeats".into();
        let text = nodes(&[failed], false, NOW);
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .ends_with("Failed   1500m/4   1      3m    missed 2 heartbeats"),
            "{text}"
        );
    }

    #[test]
    fn wide_node_table_adds_runtime_columns() {
        let mut with_memory = node();
        with_memory.memory_capacity_bytes = 4 << 30;
        with_memory.memory_allocated_bytes = 512 << 20;
        let text = nodes(&[with_memory], true, NOW);
        assert!(text.contains("512Mi/4Gi"), "{text}");
        let text = nodes(&[node()], true, NOW);
        let lines: Vec<&str> = text.lines().collect();
        let header: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(
            header,
            [
                "NAME",
                "STATUS",
                "CPU",
                "PODS",
                "AGE",
                "REASON",
                "MEMORY",
                "RUNTIME",
                "IP",
                "CONTAINER",
                "HEARTBEAT"
            ]
        );
        let row: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            row,
            [
                "n1",
                "Healthy",
                "1500m/4",
                "1",
                "3m",
                "<none>",
                "<none>",
                "docker",
                "172.17.0.2",
                "0123456789ab",
                "2s"
            ]
        );
    }

    #[test]
    fn pod_table_shows_phase_node_and_cpu() {
        let mut pending = pod();
        pending.name = "queued".into();
        pending.node.clear();
        pending.phase = pb::PodPhase::Pending as i32;
        pending.reason = "no node has 500m CPU free".into();
        let mut crashing = pod();
        crashing.name = "crashy".into();
        crashing.status_reason = "CrashLoopBackOff".into();
        assert_eq!(
            pods(&[pod(), pending.clone(), crashing], false, false, NOW),
            "NAME     READY   STATUS             RESTARTS   NODE     CPU    AGE\n\
             web      1/2     Running            1          n1       500m   2h\n\
             queued   1/2     Pending            1          <none>   500m   2h\n\
             crashy   1/2     CrashLoopBackOff   1          n1       500m   2h\n"
        );
        let wide = pods(&[pending], true, false, NOW);
        assert!(
            wide.lines().next().unwrap().ends_with("IP       REASON"),
            "{wide}"
        );
        assert!(
            wide.contains("<none>   no node has 500m CPU free"),
            "{wide}"
        );
    }

    #[test]
    fn event_table_names_objects_by_lowercase_kind() {
        let text = events(
            &[event(1, 300_000, "Created"), event(2, 4_000, "NodeReady")],
            false,
            NOW,
        );
        assert_eq!(
            text,
            "AGE   TYPE     REASON      OBJECT    MESSAGE\n\
             5m    Normal   Created     node/n1   Created happened\n\
             4s    Normal   NodeReady   node/n1   NodeReady happened\n"
        );
    }

    #[test]
    fn all_namespaces_puts_a_namespace_column_first() {
        let mut prod = pod();
        prod.namespace = "prod".into();
        let text = pods(&[pod(), prod], false, true, NOW);
        assert_eq!(
            text,
            "NAMESPACE   NAME   READY   STATUS    RESTARTS   NODE   CPU    AGE\n\
             default     web    1/2     Running   1          n1     500m   2h\n\
             prod        web    1/2     Running   1          n1     500m   2h\n"
        );
        let wide = pods(&[pod()], true, true, NOW);
        let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(header.first(), Some(&"NAMESPACE"));
        assert_eq!(header.last(), Some(&"REASON"));
        let mut about_pod = event(2, 4_000, "Scheduled");
        about_pod.object_kind = "Pod".into();
        about_pod.object_name = "web".into();
        about_pod.namespace = "prod".into();
        assert_eq!(
            events(&[event(1, 300_000, "NodeReady"), about_pod], true, NOW),
            "NAMESPACE   AGE   TYPE     REASON      OBJECT    MESSAGE\n\
             <none>      5m    Normal   NodeReady   node/n1   NodeReady happened\n\
             prod        4s    Normal   Scheduled   pod/web   Scheduled happened\n"
        );
    }

    #[test]
    fn namespace_config_map_and_secret_tables_are_kubectls() {
        let mut terminating = namespace();
        terminating.name = "old".into();
        terminating.phase = "Terminating".into();
        assert_eq!(
            namespaces(&[namespace(), terminating], NOW),
            "NAME   STATUS        AGE\n\
             prod   Active        5m\n\
             old    Terminating   5m\n"
        );
        assert_eq!(
            config_maps(&[config_map()], false, NOW),
            "NAME        DATA   AGE\n\
             game-demo   3      1m\n"
        );
        assert_eq!(
            config_maps(&[config_map()], true, NOW),
            "NAMESPACE   NAME        DATA   AGE\n\
             prod        game-demo   3      1m\n"
        );
        let table = secrets(&[secret()], false, NOW);
        assert_eq!(
            table,
            "NAME           TYPE     DATA   AGE\n\
             db-user-pass   Opaque   2      10m\n"
        );
        let all = secrets(&[secret()], true, NOW);
        assert!(all.starts_with("NAMESPACE   NAME"), "{all}");
        assert!(all.contains("\ndefault     db-user-pass"), "{all}");
        for text in [table, all] {
            assert!(!text.contains(SECRET_PASSWORD) && !text.contains(SECRET_USER));
        }
    }

    #[test]
    fn health_table_summarises_components() {
        let entry = pb::NodeHealthEntry {
            name: "n2".into(),
            status: pb::NodeStatus::Failed as i32,
            reason: "component kube-proxy failed".into(),
            heartbeat_age_ms: -1,
            components: vec![
                pb::Component {
                    name: "kubelet".into(),
                    healthy: true,
                    ..Default::default()
                },
                pb::Component {
                    name: "kube-proxy".into(),
                    healthy: false,
                    ..Default::default()
                },
            ],
            recovery_attempts: 0,
        };
        let text = health(&[entry]);
        assert_eq!(
            text,
            "NAME   STATUS   REASON                        HEARTBEAT   COMPONENTS\n\
             n2     Failed   component kube-proxy failed   <none>      1/2 (unhealthy: kube-proxy)\n"
        );
    }
}
