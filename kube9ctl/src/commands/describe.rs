//! `kube9ctl describe node|pod NAME`: the object as aligned `Key: value` lines, then the events
//! about it.
//!
//! Events name their object but carry no uid, so the events of an earlier object that had the
//! same name are told apart by time: only events from the object's creation on are shown.

use crate::cli::{DescribeArgs, Kind};
use crate::commands::get::sort_events;
use crate::commands::{object_name, Context};
use crate::output::columns::{heartbeat, short_id};
use crate::output::emit;
use crate::output::table::{or_none, render_indented};
use crate::output::time::{age, now_ms, rfc3339};
use kube9_proto::pb;
use kube9_proto::quantity::{format_cpu, format_memory};
use std::collections::HashMap;
use std::fmt::Write as _;

/// Width of the key column.
const KEY_WIDTH: usize = 20;

pub async fn run(ctx: &Context, args: DescribeArgs) -> anyhow::Result<()> {
    let Some(name) = object_name(args.resource.name.as_deref(), args.name.as_deref())? else {
        anyhow::bail!("give the name of the {} to describe", args.resource.kind);
    };
    let mut cluster = ctx.connect().await?;
    let object = match args.resource.kind {
        Kind::Node => {
            let response = cluster
                .client
                .get_node(pb::GetNodeRequest { name: name.clone() })
                .await;
            Described::Node(cluster.check(response)?)
        }
        Kind::Pod => {
            let response = cluster
                .client
                .get_pod(pb::GetPodRequest { name: name.clone() })
                .await;
            Described::Pod(cluster.check(response)?)
        }
        Kind::Event => anyhow::bail!("describe works on nodes and pods"),
    };
    let object_kind = match object {
        Described::Node(_) => "Node",
        Described::Pod(_) => "Pod",
    };
    let request = pb::ListEventsRequest {
        object_kind: object_kind.into(),
        object_name: name,
        limit: 0,
    };
    let response = cluster.client.list_events(request).await;
    let created_ms = match &object {
        Described::Node(node) => node.created_ms,
        Described::Pod(pod) => pod.created_ms,
    };
    let mut events = own_events(cluster.check(response)?.events, created_ms);
    sort_events(&mut events);
    let text = match &object {
        Described::Node(node) => describe_node(node, &events, now_ms()),
        Described::Pod(pod) => describe_pod(pod, &events, now_ms()),
    };
    emit(&text)
}

/// The events since `created_ms`: those of the object being described, not of an earlier,
/// deleted one with the same name. All of them when the creation time is unknown (0).
pub fn own_events(events: Vec<pb::Event>, created_ms: i64) -> Vec<pb::Event> {
    if created_ms <= 0 {
        return events;
    }
    events
        .into_iter()
        .filter(|e| e.time_ms >= created_ms)
        .collect()
}

enum Described {
    Node(pb::Node),
    Pod(pb::Pod),
}

/// Aligned `Key:   value` lines.
struct Sheet(String);

impl Sheet {
    fn new() -> Self {
        Sheet(String::new())
    }

    fn field(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Self {
        let key = format!("{key}:");
        let _ = writeln!(self.0, "{key:<KEY_WIDTH$}{value}");
        self
    }

    /// A nested field, indented two spaces.
    fn sub(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Self {
        let key = format!("  {key}:");
        let _ = writeln!(self.0, "{key:<KEY_WIDTH$}{value}");
        self
    }

    fn line(&mut self, text: &str) -> &mut Self {
        self.0.push_str(text);
        self.0.push('\n');
        self
    }

    fn events(&mut self, events: &[pb::Event], now_ms: i64) -> &mut Self {
        if events.is_empty() {
            return self.field("Events", "<none>");
        }
        self.line("Events:");
        let rows = events
            .iter()
            .map(|e| {
                vec![
                    e.r#type.clone(),
                    e.reason.clone(),
                    age(now_ms, e.time_ms),
                    e.message.clone(),
                ]
            })
            .collect();
        self.0.push_str(&render_indented(
            &["TYPE", "REASON", "AGE", "MESSAGE"],
            rows,
            "  ",
        ));
        self
    }
}

/// `a=1, b=2` sorted, or `<none>`.
fn labels(labels: &HashMap<String, String>) -> String {
    let mut pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".into()
    } else {
        pairs.join(", ")
    }
}

/// `2024-03-01T12:00:00Z (5m ago)`, or `<none>`.
fn when(now_ms: i64, ms: i64) -> String {
    match rfc3339(ms) {
        Some(time) => format!("{time} ({} ago)", age(now_ms, ms)),
        None => "<none>".into(),
    }
}

/// The text of `describe node`.
pub fn describe_node(node: &pb::Node, events: &[pb::Event], now_ms: i64) -> String {
    let mut s = Sheet::new();
    s.field("Name", &node.name)
        .field("Labels", labels(&node.labels))
        .field("Created", when(now_ms, node.created_ms))
        .field("Status", node.status().label())
        .field("Reason", or_none(&node.reason))
        .field("CPU capacity", format_cpu(node.cpu_capacity_millis))
        .field("CPU allocated", format_cpu(node.cpu_allocated_millis))
        .field(
            "Last heartbeat",
            match heartbeat(now_ms, node.last_heartbeat_ms).as_str() {
                "<none>" => "<none>".to_string(),
                ago => format!("{ago} ago"),
            },
        )
        .field("Recovery attempts", node.recovery_attempts)
        .field("Injected fault", or_none(&node.injected_fault));
    let agent = if node.agent_connected {
        let mut agent = "connected".to_string();
        if !node.agent_address.is_empty() {
            agent.push_str(&format!(" from {}", node.agent_address));
        }
        if !node.agent_version.is_empty() {
            agent.push_str(&format!(" (version {})", node.agent_version));
        }
        agent
    } else {
        "not connected".to_string()
    };
    s.field("Agent", agent);
    match &node.runtime {
        Some(r) => {
            s.line("Runtime:")
                .sub("Kind", or_none(&r.kind))
                .sub("ID", or_none(&short_id(&r.id)))
                .sub("Container", or_none(&r.container_name))
                .sub("IP", or_none(&r.ip))
                .sub("State", or_none(&r.state));
        }
        None => {
            s.field("Runtime", "<none>");
        }
    }
    if node.components.is_empty() {
        s.field("Components", "<none>");
    } else {
        s.line("Components:");
        let rows = node
            .components
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    if c.healthy { "True" } else { "False" }.to_string(),
                    if c.critical { "True" } else { "False" }.to_string(),
                    c.message.clone(),
                ]
            })
            .collect();
        s.0.push_str(&render_indented(
            &["NAME", "HEALTHY", "CRITICAL", "MESSAGE"],
            rows,
            "  ",
        ));
    }
    if node.pods.is_empty() {
        s.field("Pods", "<none>");
    } else {
        s.line(&format!("Pods ({}):", node.pods.len()));
        for pod in &node.pods {
            s.line(&format!("  {pod}"));
        }
    }
    s.events(events, now_ms);
    s.0
}

/// The text of `describe pod`.
pub fn describe_pod(pod: &pb::Pod, events: &[pb::Event], now_ms: i64) -> String {
    let mut s = Sheet::new();
    s.field("Name", &pod.name)
        .field("UID", or_none(&pod.uid))
        .field("Labels", labels(&pod.labels))
        .field("Annotations", labels(&pod.annotations))
        .field("Created", when(now_ms, pod.created_ms))
        .field("Node", or_none(&pod.node))
        .field("Status", pod.phase().label())
        .field("Reason", or_none(&pod.reason))
        .field("CPU request", format_cpu(pod.cpu_request_millis))
        // Kubernetes' default when none is given.
        .field(
            "Restart policy",
            if pod.restart_policy.is_empty() {
                "Always"
            } else {
                pod.restart_policy.as_str()
            },
        )
        .field("Ready", if pod.ready { "True" } else { "False" })
        .field("Scheduled", when(now_ms, pod.scheduled_ms))
        .field("Started", when(now_ms, pod.started_ms))
        .field("Reschedules", pod.reschedules);
    if !pod.init_containers.is_empty() {
        s.line("Init Containers:");
        for c in &pod.init_containers {
            container(&mut s, c, now_ms);
        }
    }
    s.line("Containers:");
    for c in &pod.containers {
        container(&mut s, c, now_ms);
    }
    if pod.volumes.is_empty() {
        s.field("Volumes", "<none>");
    } else {
        s.line("Volumes:");
        for v in &pod.volumes {
            let source = match (v.kind.as_str(), v.size_bytes) {
                ("emptyDir", 0) => "emptyDir".to_string(),
                ("emptyDir", size) => format!("emptyDir (size limit {})", format_memory(size)),
                (kind, _) => format!("{kind} {}", v.source),
            };
            s.sub(&v.name, source);
        }
    }
    s.events(events, now_ms);
    s.0
}

fn container(s: &mut Sheet, c: &pb::Container, now_ms: i64) {
    s.line(&format!("  {}:", c.name));
    let field = |s: &mut Sheet, key: &str, value: String| {
        let key = format!("    {key}:");
        let _ = writeln!(s.0, "{key:<KEY_WIDTH$}{value}");
    };
    field(s, "Image", c.image.clone());
    if !c.command.is_empty() {
        field(s, "Command", c.command.join(" "));
    }
    if !c.args.is_empty() {
        field(s, "Args", c.args.join(" "));
    }
    let state = c.state();
    let mut state_text = state.label().to_string();
    match state {
        pb::ContainerState::Running if c.started_ms > 0 => {
            state_text.push_str(&format!(" since {}", when(now_ms, c.started_ms)));
        }
        pb::ContainerState::Terminated => {
            state_text.push_str(&format!(" (exit code {})", c.exit_code));
        }
        _ => {}
    }
    field(s, "State", state_text);
    if state == pb::ContainerState::Terminated {
        field(s, "Exit code", c.exit_code.to_string());
        field(s, "Finished", when(now_ms, c.finished_ms));
    }
    if !c.reason.is_empty() {
        field(s, "Reason", c.reason.clone());
    }
    if !c.message.is_empty() {
        field(s, "Message", c.message.clone());
    }
    if let Some(last) = &c.last_state {
        field(
            s,
            "Last State",
            format!(
                "Terminated ({}, exit code {}) at {}",
                if last.reason.is_empty() {
                    "Error"
                } else {
                    &last.reason
                },
                last.exit_code,
                when(now_ms, last.finished_ms)
            ),
        );
    }
    field(s, "Ready", c.ready.to_string());
    field(s, "Restarts", c.restarts.to_string());
    if c.pid > 0 {
        field(s, "PID", c.pid.to_string());
    }
    let requests = resources(c.cpu_request_millis, c.memory_request_bytes);
    let limits = resources(c.cpu_limit_millis, c.memory_limit_bytes);
    field(s, "Requests", requests);
    field(s, "Limits", limits);
    for m in &c.volume_mounts {
        let mode = if m.read_only { "ro" } else { "rw" };
        field(
            s,
            "Mount",
            format!("{} from {} ({mode})", m.mount_path, m.name),
        );
    }
    for e in &c.env {
        field(s, "Env", format!("{}={}", e.name, e.value));
    }
}

fn resources(cpu_millis: i64, memory_bytes: i64) -> String {
    let mut parts = Vec::new();
    if cpu_millis > 0 {
        parts.push(format!("cpu={}", format_cpu(cpu_millis)));
    }
    if memory_bytes > 0 {
        parts.push(format!("memory={}", format_memory(memory_bytes)));
    }
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::objects::samples::*;

    #[test]
    fn nodes_describe_status_cpu_runtime_components_pods_and_events() {
        let text = describe_node(&node(), &[event(1, 60_000, "NodeReady")], NOW);
        for expected in [
            "Name:               n1\n",
            "Labels:             zone=a\n",
            "Status:             Healthy\n",
            "Reason:             <none>\n",
            "CPU capacity:       4\n",
            "CPU allocated:      1500m\n",
            "Last heartbeat:     2s ago\n",
            "Recovery attempts:  0\n",
            "Runtime:\n  Kind:             docker\n  ID:               0123456789ab\n",
            "Components:\n  NAME      HEALTHY   CRITICAL   MESSAGE\n  kubelet   True      True       ok\n",
            "Pods (1):\n  web\n",
            "Events:\n  TYPE     REASON      AGE   MESSAGE\n  Normal   NodeReady   1m    NodeReady happened\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn pods_describe_containers_volumes_and_no_events() {
        let text = describe_pod(&pod(), &[], NOW);
        for expected in [
            "Name:               web\n",
            "Node:               n1\n",
            "Status:             Running\n",
            "CPU request:        500m\n",
            "Containers:\n  nginx:\n    Image:          nginx:1.27\n",
            "    State:          Running since 2024-03-01T11:59:00Z (1m ago)\n",
            "    Restarts:       1\n",
            "    Requests:       cpu=500m\n",
            "    Limits:         memory=64Mi\n",
            "    Mount:          /cache from cache (rw)\n",
            "  init:\n    Image:          busybox\n    Command:        sh -c echo hi\n",
            "    State:          Terminated (exit code 0)\n",
            "    Exit code:      0\n",
            "Volumes:\n  cache:            emptyDir (size limit 1Gi)\n",
            "Events:             <none>\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn only_events_since_the_object_was_created_are_its_own() {
        // The node was created 3 minutes ago; a deleted namesake left events before that.
        let node = node();
        let events = vec![
            event(1, 10 * 60_000, "NodeFailed"),
            event(2, 3 * 60_000, "NodeCreated"),
            event(3, 60_000, "NodeReady"),
        ];
        let own: Vec<u64> = own_events(events.clone(), node.created_ms)
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(own, [2, 3]);
        assert_eq!(own_events(events.clone(), 0).len(), 3, "creation unknown");
        let text = describe_node(&node, &own_events(events, node.created_ms), NOW);
        assert!(text.contains("NodeReady"), "{text}");
        assert!(!text.contains("NodeFailed"), "{text}");
    }

    #[test]
    fn the_restart_policy_is_shown_as_given_or_kubernetes_default() {
        let mut pod = pod();
        let text = describe_pod(&pod, &[], NOW);
        assert!(
            text.contains("Restart policy:     Always\n"),
            "missing Always in\n{text}"
        );
        pod.containers[0].last_state = Some(pb::ContainerTermination {
            exit_code: 3,
            reason: "Error".into(),
            finished_ms: NOW - 5_000,
            ..Default::default()
        });
        pod.init_containers = vec![pb::Container {
            name: "setup".into(),
            image: "busybox".into(),
            ..Default::default()
        }];
        let text = describe_pod(&pod, &[], NOW);
        assert!(
            text.contains("Last State:     Terminated (Error, exit code 3)"),
            "{text}"
        );
        assert!(text.contains("Init Containers:\n  setup:"), "{text}");
        pod.restart_policy = "OnFailure".into();
        let text = describe_pod(&pod, &[], NOW);
        assert!(
            text.contains("Restart policy:     OnFailure\n"),
            "missing OnFailure in\n{text}"
        );
    }
}
