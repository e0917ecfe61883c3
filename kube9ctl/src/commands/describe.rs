//! `kube9ctl describe node|pod|namespace|configmap|secret NAME`: the object as aligned
//! `Key: value` lines, then the events about it.
//!
//! A secret's description names its keys and their sizes, never a value (as kubectl's).
//!
//! Events name their object but carry no uid, so the events of an earlier object that had the
//! same name are told apart by time: only events from the object's creation on are shown.

use crate::cli::{DescribeArgs, Kind};
use crate::commands::get::fetch_one;
use crate::commands::select::sort_events;
use crate::commands::{object_name, Context};
use crate::output::columns::{heartbeat, short_id};
use crate::output::emit;
use crate::output::listing::Objects;
use crate::output::objects::{namespace_phase, secret_type};
use crate::output::table::{or_none, render_indented};
use crate::output::time::{age, now_ms, rfc3339};
use kube9_proto::namespace::or_default;
use kube9_proto::pb;
use kube9_proto::quantity::{format_cpu, format_memory};
use std::collections::HashMap;
use std::fmt::Write as _;

/// Width of the key column.
const KEY_WIDTH: usize = 20;

pub async fn run(ctx: &Context, args: DescribeArgs) -> anyhow::Result<()> {
    let kind = args.resource.kind;
    let Some(name) = object_name(args.resource.name.as_deref(), args.name.as_deref())? else {
        anyhow::bail!("give the name of the {kind} to describe");
    };
    if kind == Kind::Event {
        anyhow::bail!("describe works on nodes, pods, namespaces, configmaps and secrets");
    }
    let mut cluster = ctx.connect().await?;
    let object = match fetch_one(&mut cluster, kind, ctx.ns(), &name, None).await? {
        Objects::Nodes(mut v) if !v.is_empty() => Described::Node(v.remove(0)),
        Objects::Pods(mut v) if !v.is_empty() => Described::Pod(v.remove(0)),
        Objects::Namespaces(mut v) if !v.is_empty() => Described::Namespace(v.remove(0)),
        Objects::ConfigMaps(mut v) if !v.is_empty() => Described::ConfigMap(v.remove(0)),
        Objects::Secrets(mut v) if !v.is_empty() => Described::Secret(v.remove(0)),
        _ => anyhow::bail!("the server sent no {kind} {name:?}"),
    };
    let events = match object.events_from() {
        Some((created_ms, namespace)) => {
            let request = pb::ListEventsRequest {
                object_kind: kind.wire().into(),
                object_name: name,
                limit: 0,
                namespace: namespace.into(),
            };
            let response = cluster.client.list_events(request).await;
            let mut events = own_events(cluster.check(response)?.events, created_ms);
            // Events about an object of the same name in another namespace are not its own.
            events.retain(|e| namespace.is_empty() || or_default(&e.namespace) == namespace);
            sort_events(&mut events);
            events
        }
        None => Vec::new(),
    };
    let now = now_ms();
    let text = match &object {
        Described::Node(node) => describe_node(node, &events, now),
        Described::Pod(pod) => describe_pod(pod, &events, now),
        Described::Namespace(ns) => describe_namespace(ns, now),
        Described::ConfigMap(cm) => describe_config_map(cm, &events, now),
        Described::Secret(secret) => describe_secret(secret, &events, now),
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
    Namespace(pb::Namespace),
    ConfigMap(pb::ConfigMap),
    Secret(pb::Secret),
}

impl Described {
    /// Which events are the object's own: since its creation, in its namespace (empty for
    /// nodes). `None` for a namespace, whose description has none (as kubectl's).
    fn events_from(&self) -> Option<(i64, &str)> {
        match self {
            Described::Node(node) => Some((node.created_ms, "")),
            Described::Pod(pod) => Some((pod.created_ms, pod.ns())),
            Described::ConfigMap(cm) => Some((cm.created_ms, or_default(&cm.namespace))),
            Described::Secret(s) => Some((s.created_ms, or_default(&s.namespace))),
            Described::Namespace(_) => None,
        }
    }
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
        .field("Unschedulable", node.unschedulable)
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
    s.field("Agent", agent)
        .field("Pod isolation", or_none(&node.pod_isolation));
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
        .field("Namespace", pod.ns())
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
    for e in &c.env_from {
        field(s, "Env from", env_from(e));
    }
    for e in &c.env {
        field(s, "Env", env_var(e));
    }
}

/// `NAME=value`, or where the value comes from, as kubectl says it: `NAME=<set to the key 'k'
/// in secret 's'>` (a secret's value is never shown).
fn env_var(e: &pb::EnvVar) -> String {
    use pb::env_var_source::Source;
    let optional = |k: &pb::KeySelector| if k.optional { " (optional)" } else { "" };
    match e.value_from.as_ref().and_then(|f| f.source.as_ref()) {
        Some(Source::ConfigMapKeyRef(k)) => format!(
            "{}=<set to the key '{}' of config map '{}'>{}",
            e.name,
            k.key,
            k.name,
            optional(k)
        ),
        Some(Source::SecretKeyRef(k)) => format!(
            "{}=<set to the key '{}' in secret '{}'>{}",
            e.name,
            k.key,
            k.name,
            optional(k)
        ),
        Some(Source::FieldPath(path)) => format!("{}=<field {path}>", e.name),
        None => format!("{}={}", e.name, e.value),
    }
}

/// `game-demo (ConfigMap)`, `db (Secret, prefix DB_, optional)`.
fn env_from(e: &pb::EnvFromSource) -> String {
    use pb::env_from_source::Source;
    let (name, kind, optional) = match &e.source {
        Some(Source::ConfigMapRef(o)) => (o.name.as_str(), "ConfigMap", o.optional),
        Some(Source::SecretRef(o)) => (o.name.as_str(), "Secret", o.optional),
        None => ("<none>", "<none>", false),
    };
    let mut details = vec![kind.to_string()];
    if !e.prefix.is_empty() {
        details.push(format!("prefix {}", e.prefix));
    }
    if optional {
        details.push("optional".into());
    }
    format!("{name} ({})", details.join(", "))
}

/// The text of `describe namespace`.
pub fn describe_namespace(ns: &pb::Namespace, now_ms: i64) -> String {
    let mut s = Sheet::new();
    s.field("Name", &ns.name)
        .field("Labels", labels(&ns.labels))
        .field("Created", when(now_ms, ns.created_ms))
        .field("Status", namespace_phase(ns));
    s.0
}

/// The text of `describe configmap`, in kubectl's layout: each key of `Data`, a `----` rule
/// and its value; the keys of `BinaryData` with their sizes.
pub fn describe_config_map(cm: &pb::ConfigMap, events: &[pb::Event], now_ms: i64) -> String {
    let mut s = Sheet::new();
    s.field("Name", &cm.name)
        .field("Namespace", or_default(&cm.namespace))
        .field("Labels", labels(&cm.labels));
    s.line("").line("Data").line("====");
    let mut keys: Vec<&String> = cm.data.keys().collect();
    keys.sort();
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            s.line("");
        }
        let value = &cm.data[key];
        s.line(&format!("{key}:")).line("----");
        s.line(value.strip_suffix('\n').unwrap_or(value));
    }
    s.line("").line("BinaryData").line("====");
    let sizes: Vec<(String, usize)> = cm
        .binary_data
        .iter()
        .map(|(k, v)| (k.clone(), v.len()))
        .collect();
    key_sizes(&mut s, sizes);
    s.line("");
    s.events(events, now_ms);
    s.0
}

/// The text of `describe secret`: the keys and the size of each value, never a value.
pub fn describe_secret(secret: &pb::Secret, events: &[pb::Event], now_ms: i64) -> String {
    let mut s = Sheet::new();
    s.field("Name", &secret.name)
        .field("Namespace", or_default(&secret.namespace))
        .field("Labels", labels(&secret.labels));
    s.line("").field("Type", secret_type(secret));
    s.line("").line("Data").line("====");
    let mut values: Vec<(String, String)> = secret
        .data
        .iter()
        .map(|(k, v)| {
            // kube9d told a viewer the keys only: sizes would be zeros, not the truth.
            let value = if secret.redacted {
                HIDDEN.to_string()
            } else {
                format!("{} bytes", v.len())
            };
            (k.clone(), value)
        })
        .collect();
    values.sort();
    key_values(&mut s, values);
    s.line("");
    s.events(events, now_ms);
    s.0
}

/// What `describe secret` shows for a value kube9d withheld from this caller.
pub const HIDDEN: &str = "<hidden: your token may not read Secret data>";

/// `KEY:  N bytes` lines, sorted, the sizes aligned.
fn key_sizes(s: &mut Sheet, mut sizes: Vec<(String, usize)>) {
    sizes.sort();
    let lines = sizes
        .into_iter()
        .map(|(key, size)| (key, format!("{size} bytes")))
        .collect();
    key_values(s, lines);
}

/// `KEY:  VALUE` lines in the order given, the values aligned.
fn key_values(s: &mut Sheet, lines: Vec<(String, String)>) {
    let width = lines.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    for (key, value) in lines {
        let key = format!("{key}:");
        s.line(&format!("{key:<width$}  {value}"));
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
    fn config_maps_describe_each_key_a_rule_and_its_value() {
        let text = describe_config_map(&config_map(), &[], NOW);
        assert_eq!(
            text,
            "Name:               game-demo\n\
             Namespace:          prod\n\
             Labels:             app=game\n\
             \n\
             Data\n\
             ====\n\
             game.properties:\n\
             ----\n\
             enemy.types=aliens,monsters\n\
             player.maximum-lives=5\n\
             \n\
             player_initial_lives:\n\
             ----\n\
             3\n\
             \n\
             BinaryData\n\
             ====\n\
             logo.png:  5 bytes\n\
             \n\
             Events:             <none>\n"
        );
    }

    #[test]
    fn secrets_describe_keys_and_sizes_never_values() {
        let mut secret = secret();
        secret.data.insert("ca.crt".into(), vec![0; 1234]);
        let text = describe_secret(&secret, &[event(1, 60_000, "Created")], NOW);
        assert!(
            text.starts_with(
                "Name:               db-user-pass\n\
                 Namespace:          default\n\
                 Labels:             <none>\n\
                 \n\
                 Type:               Opaque\n\
                 \n\
                 Data\n\
                 ====\n\
                 ca.crt:    1234 bytes\n\
                 password:  16 bytes\n\
                 username:  16 bytes\n\
                 \n\
                 Events:\n"
            ),
            "{text}"
        );
        assert!(!text.contains(SECRET_PASSWORD), "{text}");
        assert!(!text.contains(SECRET_USER), "{text}");
        assert!(!text.contains(&crate::output::objects::base64(SECRET_PASSWORD.as_bytes())));
    }

    #[test]
    fn secrets_a_viewer_reads_show_their_keys_and_say_the_values_are_hidden() {
        let mut secret = secret();
        secret.redacted = true;
        for value in secret.data.values_mut() {
            value.clear();
        }
        let text = describe_secret(&secret, &[], NOW);
        assert!(
            text.contains(&format!(
                "Data\n\
                 ====\n\
                 password:  {HIDDEN}\n\
                 username:  {HIDDEN}\n"
            )),
            "{text}"
        );
        assert!(!text.contains("bytes"), "{text}");
    }

    #[test]
    fn namespaces_describe_name_labels_and_status() {
        assert_eq!(
            describe_namespace(&namespace(), NOW),
            "Name:               prod\n\
             Labels:             team=a\n\
             Created:            2024-03-01T11:55:00Z (5m ago)\n\
             Status:             Active\n"
        );
    }

    #[test]
    fn pod_env_says_where_values_come_from_without_showing_secrets() {
        use pb::env_var_source::Source;
        let mut pod = pod();
        pod.namespace = "prod".into();
        let from = |name: &str, source| pb::EnvVar {
            name: name.into(),
            value: String::new(),
            value_from: Some(pb::EnvVarSource {
                source: Some(source),
            }),
        };
        pod.containers[0].env = vec![
            from(
                "PASSWORD",
                Source::SecretKeyRef(pb::KeySelector {
                    name: "db".into(),
                    key: "password".into(),
                    optional: false,
                }),
            ),
            from(
                "LIVES",
                Source::ConfigMapKeyRef(pb::KeySelector {
                    name: "game".into(),
                    key: "lives".into(),
                    optional: true,
                }),
            ),
        ];
        pod.containers[0].env_from = vec![pb::EnvFromSource {
            prefix: "CFG_".into(),
            source: Some(pb::env_from_source::Source::ConfigMapRef(
                pb::ObjectSelector {
                    name: "game".into(),
                    optional: false,
                },
            )),
        }];
        let text = describe_pod(&pod, &[], NOW);
        for expected in [
            "Namespace:          prod\n",
            "    Env from:       game (ConfigMap, prefix CFG_)\n",
            "    Env:            PASSWORD=<set to the key 'password' in secret 'db'>\n",
            "    Env:            LIVES=<set to the key 'lives' of config map 'game'> (optional)\n",
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
