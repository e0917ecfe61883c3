//! Wire objects as Kubernetes-shaped documents, for `-o json` and `-o yaml`.
//!
//! The shapes are a stable contract (scripts and tests read `.status.phase`, `.spec.nodeName`,
//! ...): every field listed here is always present. Strings may be empty, lists may be empty,
//! timestamps that were never set are `null`. Maps are sorted, so output is byte-stable.

use crate::output::time::rfc3339;
use kube9_proto::pb;
use kube9_proto::quantity::{format_cpu, format_memory};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// `{"apiVersion": "v1", "kind": "List", "items": [...]}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct List<T> {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub items: Vec<T>,
}

impl<T> List<T> {
    pub fn new(items: Vec<T>) -> Self {
        List {
            api_version: "v1",
            kind: "List",
            items,
        }
    }
}

fn sorted(map: &HashMap<String, String>) -> BTreeMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

// ----------------------------------------------------------------------------------------------
// Pod
// ----------------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodObject {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: PodMetadata,
    pub spec: PodSpec,
    pub status: PodStatus,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMetadata {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub creation_timestamp: Option<String>,
    /// The version of the change that last wrote the object (a watch can start from it).
    pub resource_version: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    pub node_name: String,
    pub restart_policy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<ContainerSpec>,
    pub containers: Vec<ContainerSpec>,
    pub volumes: Vec<VolumeSpec>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<EnvVar>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<serde_json::Value>,
    pub working_dir: String,
    pub resources: Resources,
    pub volume_mounts: Vec<VolumeMount>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image_pull_policy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup_probe: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<serde_json::Value>,
}

/// A container's securityContext in the manifest's form; unset fields are left out.
fn security_spec(sc: &Option<pb::SecurityContext>) -> Option<serde_json::Value> {
    let sc = sc.as_ref()?;
    let mut m = serde_json::Map::new();
    if let Some(uid) = sc.run_as_user {
        m.insert("runAsUser".into(), uid.into());
    }
    if let Some(gid) = sc.run_as_group {
        m.insert("runAsGroup".into(), gid.into());
    }
    if sc.run_as_non_root {
        m.insert("runAsNonRoot".into(), true.into());
    }
    if sc.read_only_root_filesystem {
        m.insert("readOnlyRootFilesystem".into(), true.into());
    }
    if let Some(allow) = sc.allow_privilege_escalation {
        m.insert("allowPrivilegeEscalation".into(), allow.into());
    }
    if sc.privileged {
        m.insert("privileged".into(), true.into());
    }
    if !sc.capabilities_add.is_empty() || !sc.capabilities_drop.is_empty() {
        let mut caps = serde_json::Map::new();
        if !sc.capabilities_add.is_empty() {
            caps.insert("add".into(), sc.capabilities_add.clone().into());
        }
        if !sc.capabilities_drop.is_empty() {
            caps.insert("drop".into(), sc.capabilities_drop.clone().into());
        }
        m.insert("capabilities".into(), caps.into());
    }
    Some(m.into())
}

/// A probe in the manifest's form (`httpGet: {path, port}`, ...); unset numbers are left out.
fn probe_spec(p: &Option<pb::Probe>) -> Option<serde_json::Value> {
    use pb::probe::Handler;
    let p = p.as_ref()?;
    let mut m = serde_json::Map::new();
    match &p.handler {
        Some(Handler::Exec(e)) => {
            _ = m.insert("exec".into(), serde_json::json!({"command": e.command}))
        }
        Some(Handler::HttpGet(g)) => {
            let mut get = serde_json::json!({"path": g.path, "port": g.port});
            if !g.host.is_empty() {
                get["host"] = g.host.clone().into();
            }
            if !g.scheme.is_empty() {
                get["scheme"] = g.scheme.clone().into();
            }
            m.insert("httpGet".into(), get);
        }
        Some(Handler::TcpSocket(t)) => {
            _ = m.insert("tcpSocket".into(), serde_json::json!({"port": t.port}))
        }
        None => {}
    }
    for (key, value) in [
        ("initialDelaySeconds", p.initial_delay_seconds),
        ("periodSeconds", p.period_seconds),
        ("timeoutSeconds", p.timeout_seconds),
        ("successThreshold", p.success_threshold),
        ("failureThreshold", p.failure_threshold),
    ] {
        if value > 0 {
            m.insert(key.into(), value.into());
        }
    }
    Some(m.into())
}

/// `{name, value}`, or `{name, valueFrom: {configMapKeyRef | secretKeyRef | fieldRef}}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<serde_json::Value>,
}

impl EnvVar {
    fn new(e: &pb::EnvVar) -> Self {
        use pb::env_var_source::Source;
        let key_ref = |k: &pb::KeySelector| {
            let mut v = serde_json::json!({"name": k.name, "key": k.key});
            if k.optional {
                v["optional"] = true.into();
            }
            v
        };
        let value_from = e
            .value_from
            .as_ref()
            .and_then(|f| f.source.as_ref())
            .map(|source| match source {
                Source::ConfigMapKeyRef(k) => serde_json::json!({"configMapKeyRef": key_ref(k)}),
                Source::SecretKeyRef(k) => serde_json::json!({"secretKeyRef": key_ref(k)}),
                Source::FieldPath(path) => {
                    serde_json::json!({"fieldRef": {"fieldPath": path}})
                }
            });
        EnvVar {
            name: e.name.clone(),
            value: value_from.is_none().then(|| e.value.clone()),
            value_from,
        }
    }
}

/// `{prefix?, configMapRef | secretRef: {name, optional?}}`.
fn env_from_spec(e: &pb::EnvFromSource) -> serde_json::Value {
    use pb::env_from_source::Source;
    let mut m = serde_json::Map::new();
    if !e.prefix.is_empty() {
        m.insert("prefix".into(), e.prefix.clone().into());
    }
    let reference = |o: &pb::ObjectSelector| {
        let mut v = serde_json::json!({"name": o.name});
        if o.optional {
            v["optional"] = true.into();
        }
        v
    };
    match &e.source {
        Some(Source::ConfigMapRef(o)) => _ = m.insert("configMapRef".into(), reference(o)),
        Some(Source::SecretRef(o)) => _ = m.insert("secretRef".into(), reference(o)),
        None => {}
    }
    m.into()
}

/// Requests and limits; a quantity that is not set (0) is left out, as in Kubernetes.
#[derive(Debug, Serialize)]
pub struct Resources {
    pub requests: ResourceList,
    pub limits: ResourceList,
}

#[derive(Debug, Serialize)]
pub struct ResourceList {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

impl ResourceList {
    fn new(cpu_millis: i64, memory_bytes: i64) -> Self {
        ResourceList {
            cpu: (cpu_millis != 0).then(|| format_cpu(cpu_millis)),
            memory: (memory_bytes != 0).then(|| format_memory(memory_bytes)),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
    pub read_only: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sub_path: String,
}

/// `{name, emptyDir: {sizeLimit}}`, `{name, hostPath: {path}}`, `{name, configMap: {name}}` or
/// `{name, secret: {secretName}}` (config maps and secrets with `items`, `defaultMode` and
/// `optional` when set): the manifest form, so `get -o yaml` output can be applied.
#[derive(Debug, Serialize)]
pub struct VolumeSpec {
    pub name: String,
    #[serde(flatten)]
    pub source: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
}

impl VolumeSpec {
    fn new(v: &pb::Volume) -> Self {
        let mut fields = BTreeMap::new();
        let mut put = |key: &str, value: serde_json::Value| _ = fields.insert(key.into(), value);
        match v.kind.as_str() {
            "emptyDir" => {
                if v.size_bytes > 0 {
                    put("sizeLimit", format_memory(v.size_bytes).into());
                }
                if !v.medium.is_empty() {
                    put("medium", v.medium.clone().into());
                }
            }
            "hostPath" => put("path", v.source.clone().into()),
            kind @ ("configMap" | "secret") => {
                let name = if kind == "secret" {
                    "secretName"
                } else {
                    "name"
                };
                put(name, v.source.clone().into());
                if !v.items.is_empty() {
                    let items = v.items.iter().map(|i| {
                        let mut item = serde_json::json!({"key": i.key, "path": i.path});
                        if i.mode != 0 {
                            item["mode"] = i.mode.into();
                        }
                        item
                    });
                    put("items", items.collect::<Vec<_>>().into());
                }
                if v.default_mode != 0 {
                    put("defaultMode", v.default_mode.into());
                }
                if v.optional {
                    put("optional", true.into());
                }
            }
            _ => put("source", v.source.clone().into()),
        }
        VolumeSpec {
            name: v.name.clone(),
            source: [(v.kind.clone(), fields)].into(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    /// The phase label: Pending, Scheduled, Running, Succeeded, Failed, Terminating.
    pub phase: String,
    pub reason: String,
    pub cpu_request_millis: i64,
    pub scheduled_time: Option<String>,
    pub start_time: Option<String>,
    pub reschedules: u32,
    #[serde(rename = "podIP", skip_serializing_if = "String::is_empty")]
    pub pod_ip: String,
    pub conditions: Vec<PodCondition>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub init_container_statuses: Vec<ContainerStatus>,
    pub container_statuses: Vec<ContainerStatus>,
}

/// `status.conditions[]`: `Ready` is True when every container runs and every readiness probe
/// passes (what `kube9ctl wait --for=condition=Ready` reads).
#[derive(Debug, Serialize)]
pub struct PodCondition {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub status: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    pub name: String,
    pub state: ContainerStateObject,
    pub restart_count: u32,
    pub ready: bool,
    pub pid: i32,
    #[serde(rename = "containerID", skip_serializing_if = "String::is_empty")]
    pub container_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_state: Option<LastState>,
}

/// `lastState`: how the previous run ended.
#[derive(Debug, Serialize)]
pub struct LastState {
    pub terminated: TerminatedState,
}

impl ContainerStatus {
    fn new(c: &pb::Container) -> Self {
        ContainerStatus {
            name: c.name.clone(),
            state: ContainerStateObject::new(c),
            restart_count: c.restarts,
            ready: c.ready,
            pid: c.pid,
            container_id: c.container_id.clone(),
            last_state: c.last_state.as_ref().map(|t| LastState {
                terminated: TerminatedState {
                    exit_code: t.exit_code,
                    reason: t.reason.clone(),
                    started_at: rfc3339(t.started_ms),
                    finished_at: rfc3339(t.finished_ms),
                    message: t.message.clone(),
                },
            }),
        }
    }
}

/// Exactly one of `running`, `terminated`, `waiting`, as in Kubernetes. (A struct of options
/// rather than an enum: serde_yaml_ng would write an enum as a YAML tag, `!running`.)
#[derive(Debug, Default, Serialize)]
pub struct ContainerStateObject {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<RunningState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminated: Option<TerminatedState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<WaitingState>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunningState {
    pub started_at: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TerminatedState {
    pub exit_code: i32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct WaitingState {
    pub reason: String,
    pub message: String,
}

impl ContainerStateObject {
    fn new(c: &pb::Container) -> Self {
        match c.state() {
            pb::ContainerState::Running => ContainerStateObject {
                running: Some(RunningState {
                    started_at: rfc3339(c.started_ms),
                }),
                ..Default::default()
            },
            pb::ContainerState::Terminated => ContainerStateObject {
                terminated: Some(TerminatedState {
                    exit_code: c.exit_code,
                    reason: c.reason.clone(),
                    started_at: rfc3339(c.started_ms),
                    finished_at: rfc3339(c.finished_ms),
                    message: c.message.clone(),
                }),
                ..Default::default()
            },
            state => ContainerStateObject {
                waiting: Some(WaitingState {
                    reason: if !c.reason.is_empty() {
                        c.reason.clone()
                    } else if state == pb::ContainerState::Waiting {
                        "ContainerCreating".into()
                    } else {
                        "Pending".into()
                    },
                    message: c.message.clone(),
                }),
                ..Default::default()
            },
        }
    }
}

impl PodObject {
    pub fn new(pod: &pb::Pod) -> Self {
        PodObject {
            api_version: "v1",
            kind: "Pod",
            metadata: PodMetadata {
                name: pod.name.clone(),
                namespace: pod.ns().to_string(),
                uid: pod.uid.clone(),
                labels: sorted(&pod.labels),
                annotations: sorted(&pod.annotations),
                creation_timestamp: rfc3339(pod.created_ms),
                resource_version: pod.resource_version.to_string(),
            },
            spec: PodSpec {
                node_name: pod.node.clone(),
                restart_policy: pod.restart_policy.clone(),
                termination_grace_period_seconds: pod.termination_grace_period_seconds,
                init_containers: pod.init_containers.iter().map(container_spec).collect(),
                containers: pod.containers.iter().map(container_spec).collect(),
                volumes: pod.volumes.iter().map(VolumeSpec::new).collect(),
            },
            status: PodStatus {
                phase: pod.phase().label().into(),
                reason: pod.reason.clone(),
                cpu_request_millis: pod.cpu_request_millis,
                scheduled_time: rfc3339(pod.scheduled_ms),
                start_time: rfc3339(pod.started_ms),
                reschedules: pod.reschedules,
                pod_ip: pod.pod_ip.clone(),
                conditions: vec![PodCondition {
                    kind: "Ready",
                    status: if pod.ready { "True" } else { "False" },
                }],
                init_container_statuses: pod
                    .init_containers
                    .iter()
                    .map(ContainerStatus::new)
                    .collect(),
                container_statuses: pod.containers.iter().map(ContainerStatus::new).collect(),
            },
        }
    }
}

fn container_spec(c: &pb::Container) -> ContainerSpec {
    ContainerSpec {
        name: c.name.clone(),
        image: c.image.clone(),
        command: c.command.clone(),
        args: c.args.clone(),
        env: c.env.iter().map(EnvVar::new).collect(),
        env_from: c.env_from.iter().map(env_from_spec).collect(),
        working_dir: c.working_dir.clone(),
        resources: Resources {
            requests: ResourceList::new(c.cpu_request_millis, c.memory_request_bytes),
            limits: ResourceList::new(c.cpu_limit_millis, c.memory_limit_bytes),
        },
        volume_mounts: c
            .volume_mounts
            .iter()
            .map(|m| VolumeMount {
                name: m.name.clone(),
                mount_path: m.mount_path.clone(),
                read_only: m.read_only,
                sub_path: m.sub_path.clone(),
            })
            .collect(),
        image_pull_policy: c.image_pull_policy.clone(),
        liveness_probe: probe_spec(&c.liveness_probe),
        readiness_probe: probe_spec(&c.readiness_probe),
        startup_probe: probe_spec(&c.startup_probe),
        security_context: security_spec(&c.security_context),
    }
}

// ----------------------------------------------------------------------------------------------
// Node
// ----------------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeObject {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: NodeMetadata,
    pub spec: NodeSpecObject,
    pub status: NodeStatus,
}

/// A node's spec: `{}`, or `{"unschedulable": true}` when cordoned, as in Kubernetes.
#[derive(Debug, Serialize)]
pub struct NodeSpecObject {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unschedulable: bool,
}

/// Serializes as `{}`.
#[derive(Debug, Serialize)]
pub struct Empty {}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeMetadata {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub creation_timestamp: Option<String>,
    /// The version of the change that last wrote the object (a watch can start from it).
    pub resource_version: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// The status label: Initializing, Healthy, Failed, Recovering, PermanentlyFailed, Draining.
    pub phase: String,
    pub reason: String,
    pub capacity: ResourceAmounts,
    pub allocated: ResourceAmounts,
    pub cpu_capacity_millis: i64,
    pub cpu_allocated_millis: i64,
    pub components: Vec<ComponentObject>,
    pub last_heartbeat_time: Option<String>,
    pub recovery_attempts: u32,
    /// `null` when the node has no runtime handle yet.
    pub runtime: Option<RuntimeObject>,
    pub agent_connected: bool,
    pub agent_address: String,
    pub agent_version: String,
    pub injected_fault: String,
    pub pods: Vec<String>,
}

/// `capacity` and `allocated` of a node: CPU always, memory when the node tracks it.
#[derive(Debug, Serialize)]
pub struct ResourceAmounts {
    pub cpu: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ComponentObject {
    pub name: String,
    pub healthy: bool,
    pub critical: bool,
    pub message: String,
}

impl ComponentObject {
    pub fn new(c: &pb::Component) -> Self {
        ComponentObject {
            name: c.name.clone(),
            healthy: c.healthy,
            critical: c.critical,
            message: c.message.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeObject {
    pub kind: String,
    pub id: String,
    pub ip: String,
    pub state: String,
    pub container_name: String,
}

impl NodeObject {
    pub fn new(node: &pb::Node) -> Self {
        NodeObject {
            api_version: "v1",
            kind: "Node",
            metadata: NodeMetadata {
                name: node.name.clone(),
                labels: sorted(&node.labels),
                creation_timestamp: rfc3339(node.created_ms),
                resource_version: node.resource_version.to_string(),
            },
            spec: NodeSpecObject {
                unschedulable: node.unschedulable,
            },
            status: NodeStatus {
                phase: node.status().label().into(),
                reason: node.reason.clone(),
                capacity: ResourceAmounts {
                    cpu: format_cpu(node.cpu_capacity_millis),
                    memory: (node.memory_capacity_bytes > 0)
                        .then(|| format_memory(node.memory_capacity_bytes)),
                },
                allocated: ResourceAmounts {
                    cpu: format_cpu(node.cpu_allocated_millis),
                    memory: (node.memory_capacity_bytes > 0)
                        .then(|| format_memory(node.memory_allocated_bytes)),
                },
                cpu_capacity_millis: node.cpu_capacity_millis,
                cpu_allocated_millis: node.cpu_allocated_millis,
                components: node.components.iter().map(ComponentObject::new).collect(),
                last_heartbeat_time: rfc3339(node.last_heartbeat_ms),
                recovery_attempts: node.recovery_attempts,
                runtime: node.runtime.as_ref().map(|r| RuntimeObject {
                    kind: r.kind.clone(),
                    id: r.id.clone(),
                    ip: r.ip.clone(),
                    state: r.state.clone(),
                    container_name: r.container_name.clone(),
                }),
                agent_connected: node.agent_connected,
                agent_address: node.agent_address.clone(),
                agent_version: node.agent_version.clone(),
                injected_fault: node.injected_fault.clone(),
                pods: node.pods.clone(),
            },
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Namespace, ConfigMap, Secret
// ----------------------------------------------------------------------------------------------

/// `metadata` of a namespaced object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMetadata {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub creation_timestamp: Option<String>,
    /// The version of the change that last wrote the object (a watch can start from it).
    pub resource_version: String,
}

impl ObjectMetadata {
    fn new(
        name: &str,
        namespace: &str,
        labels: &HashMap<String, String>,
        created_ms: i64,
        resource_version: u64,
    ) -> Self {
        ObjectMetadata {
            name: name.to_string(),
            namespace: kube9_proto::namespace::or_default(namespace).to_string(),
            labels: sorted(labels),
            creation_timestamp: rfc3339(created_ms),
            resource_version: resource_version.to_string(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceObject {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: NodeMetadata,
    pub status: NamespaceStatus,
}

#[derive(Debug, Serialize)]
pub struct NamespaceStatus {
    /// Active, or Terminating while its objects are deleted.
    pub phase: String,
}

impl NamespaceObject {
    pub fn new(ns: &pb::Namespace) -> Self {
        NamespaceObject {
            api_version: "v1",
            kind: "Namespace",
            metadata: NodeMetadata {
                name: ns.name.clone(),
                labels: sorted(&ns.labels),
                creation_timestamp: rfc3339(ns.created_ms),
                resource_version: ns.resource_version.to_string(),
            },
            status: NamespaceStatus {
                phase: namespace_phase(ns).to_string(),
            },
        }
    }
}

/// A namespace's phase; one the server sent without a phase exists, so it is Active.
pub fn namespace_phase(ns: &pb::Namespace) -> &str {
    if ns.phase.is_empty() {
        "Active"
    } else {
        &ns.phase
    }
}

/// A config map: `data` as text, `binaryData` base64 (left out when empty, as in Kubernetes).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapObject {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMetadata,
    pub data: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub binary_data: BTreeMap<String, String>,
}

impl ConfigMapObject {
    pub fn new(cm: &pb::ConfigMap) -> Self {
        ConfigMapObject {
            api_version: "v1",
            kind: "ConfigMap",
            metadata: ObjectMetadata::new(
                &cm.name,
                &cm.namespace,
                &cm.labels,
                cm.created_ms,
                cm.resource_version,
            ),
            data: sorted(&cm.data),
            binary_data: cm
                .binary_data
                .iter()
                .map(|(k, v)| (k.clone(), base64(v)))
                .collect(),
        }
    }
}

/// A secret as Kubernetes prints it: every value base64 in `data`. Only `get -o json|yaml`
/// prints this; tables and `describe` show keys and sizes.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretObject {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMetadata,
    #[serde(rename = "type")]
    pub secret_type: String,
    /// Keys with empty values when kube9d hid the values from this caller (a viewer).
    pub data: BTreeMap<String, String>,
}

impl SecretObject {
    pub fn new(secret: &pb::Secret) -> Self {
        SecretObject {
            api_version: "v1",
            kind: "Secret",
            metadata: ObjectMetadata::new(
                &secret.name,
                &secret.namespace,
                &secret.labels,
                secret.created_ms,
                secret.resource_version,
            ),
            secret_type: secret_type(secret).to_string(),
            // A redacted value is empty on the wire already; it stays empty here rather than
            // becoming base64 of nothing that reads like a value.
            data: secret
                .data
                .iter()
                .map(|(k, v)| {
                    let value = if secret.redacted {
                        String::new()
                    } else {
                        base64(v)
                    };
                    (k.clone(), value)
                })
                .collect(),
        }
    }
}

/// A secret's type; Kubernetes' default, `Opaque`, when it names none.
pub fn secret_type(secret: &pb::Secret) -> &str {
    if secret.r#type.is_empty() {
        "Opaque"
    } else {
        &secret.r#type
    }
}

/// Standard base64 with padding (RFC 4648), as Kubernetes writes `data` and `binaryData`.
pub fn base64(bytes: &[u8]) -> String {
    kube9_proto::base64::encode(bytes)
}

// ----------------------------------------------------------------------------------------------
// Event and node health
// ----------------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventObject {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: EventMetadata,
    #[serde(rename = "type")]
    pub event_type: String,
    pub reason: String,
    pub message: String,
    pub involved_object: ObjectReference,
    pub last_timestamp: Option<String>,
}

/// An event's `metadata`; `namespace` is the namespace of the object it is about, left out for
/// nodes and namespaces.
#[derive(Debug, Serialize)]
pub struct EventMetadata {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(rename = "resourceVersion")]
    pub resource_version: String,
}

#[derive(Debug, Serialize)]
pub struct ObjectReference {
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub name: String,
}

impl EventObject {
    pub fn new(e: &pb::Event) -> Self {
        EventObject {
            api_version: "v1",
            kind: "Event",
            metadata: EventMetadata {
                name: e.id.to_string(),
                namespace: e.namespace.clone(),
                resource_version: e.resource_version.to_string(),
            },
            event_type: e.r#type.clone(),
            reason: e.reason.clone(),
            message: e.message.clone(),
            involved_object: ObjectReference {
                kind: e.object_kind.clone(),
                namespace: e.namespace.clone(),
                name: e.object_name.clone(),
            },
            last_timestamp: rfc3339(e.time_ms),
        }
    }
}

/// One row of `node health -o json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeHealthObject {
    pub name: String,
    /// The status label, as in a node's `.status.phase`.
    pub status: String,
    pub reason: String,
    /// Milliseconds since the last heartbeat; -1 when there was none.
    pub heartbeat_age_ms: i64,
    pub recovery_attempts: u32,
    pub components: Vec<ComponentObject>,
}

impl NodeHealthObject {
    pub fn new(h: &pb::NodeHealthEntry) -> Self {
        NodeHealthObject {
            name: h.name.clone(),
            status: h.status().label().into(),
            reason: h.reason.clone(),
            heartbeat_age_ms: h.heartbeat_age_ms,
            recovery_attempts: h.recovery_attempts,
            components: h.components.iter().map(ComponentObject::new).collect(),
        }
    }
}

#[cfg(test)]
pub(crate) mod samples {
    //! Sample objects shared by the rendering tests.
    use kube9_proto::pb;

    /// 2024-03-01T12:00:00Z.
    pub const NOW: i64 = 1_709_294_400_000;

    pub fn node() -> pb::Node {
        pb::Node {
            name: "n1".into(),
            labels: [("zone".to_string(), "a".to_string())].into(),
            status: pb::NodeStatus::Healthy as i32,
            cpu_capacity_millis: 4000,
            cpu_allocated_millis: 1500,
            components: vec![pb::Component {
                name: "kubelet".into(),
                healthy: true,
                message: "ok".into(),
                critical: true,
            }],
            last_heartbeat_ms: NOW - 2_000,
            runtime: Some(pb::RuntimeHandle {
                kind: "docker".into(),
                id: "0123456789abcdef0123".into(),
                ip: "172.17.0.2".into(),
                state: "running".into(),
                container_name: "kube9-node-n1".into(),
            }),
            pods: vec!["web".into()],
            created_ms: NOW - 3 * 60_000,
            agent_connected: true,
            resource_version: 11,
            ..Default::default()
        }
    }

    pub fn pod() -> pb::Pod {
        pb::Pod {
            name: "web".into(),
            labels: [("app".to_string(), "web".to_string())].into(),
            uid: "uid-1".into(),
            node: "n1".into(),
            phase: pb::PodPhase::Running as i32,
            containers: vec![
                pb::Container {
                    name: "nginx".into(),
                    image: "nginx:1.27".into(),
                    cpu_request_millis: 500,
                    memory_limit_bytes: 64 << 20,
                    state: pb::ContainerState::Running as i32,
                    restarts: 1,
                    started_ms: NOW - 60_000,
                    pid: 4242,
                    ready: true,
                    volume_mounts: vec![pb::VolumeMount {
                        name: "cache".into(),
                        mount_path: "/cache".into(),
                        read_only: false,
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                pb::Container {
                    name: "init".into(),
                    image: "busybox".into(),
                    command: vec!["sh".into(), "-c".into(), "echo hi".into()],
                    state: pb::ContainerState::Terminated as i32,
                    exit_code: 0,
                    finished_ms: NOW - 30_000,
                    ..Default::default()
                },
            ],
            volumes: vec![pb::Volume {
                name: "cache".into(),
                kind: "emptyDir".into(),
                source: String::new(),
                size_bytes: 1 << 30,
                ..Default::default()
            }],
            cpu_request_millis: 500,
            created_ms: NOW - 2 * 3_600_000,
            started_ms: NOW - 60_000,
            resource_version: 12,
            ..Default::default()
        }
    }

    pub fn event(id: u64, ago_ms: i64, reason: &str) -> pb::Event {
        pb::Event {
            id,
            time_ms: NOW - ago_ms,
            object_kind: "Node".into(),
            object_name: "n1".into(),
            reason: reason.into(),
            message: format!("{reason} happened"),
            r#type: "Normal".into(),
            namespace: String::new(),
            resource_version: 100 + id,
        }
    }

    pub fn namespace() -> pb::Namespace {
        pb::Namespace {
            name: "prod".into(),
            labels: [("team".to_string(), "a".to_string())].into(),
            created_ms: NOW - 5 * 60_000,
            phase: "Active".into(),
            resource_version: 13,
        }
    }

    pub fn config_map() -> pb::ConfigMap {
        pb::ConfigMap {
            name: "game-demo".into(),
            namespace: "prod".into(),
            labels: [("app".to_string(), "game".to_string())].into(),
            created_ms: NOW - 60_000,
            data: [
                ("player_initial_lives".to_string(), "3".to_string()),
                (
                    "game.properties".to_string(),
                    "enemy.types=aliens,monsters\nplayer.maximum-lives=5\n".to_string(),
                ),
            ]
            .into(),
            binary_data: [("logo.png".to_string(), vec![0x89, b'P', b'N', b'G', 0])].into(),
            resource_version: 14,
        }
    }

    /// The values are unmistakable, so a test can assert they appear nowhere.
    pub const SECRET_PASSWORD: &str = "s3cr3t-Pa55w0rd!";
    pub const SECRET_USER: &str = "admin-user-xyzzy";

    pub fn secret() -> pb::Secret {
        pb::Secret {
            name: "db-user-pass".into(),
            redacted: false,
            namespace: String::new(),
            labels: Default::default(),
            created_ms: NOW - 10 * 60_000,
            r#type: "Opaque".into(),
            data: [
                ("password".to_string(), SECRET_PASSWORD.as_bytes().to_vec()),
                ("username".to_string(), SECRET_USER.as_bytes().to_vec()),
            ]
            .into(),
            resource_version: 15,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::samples::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn pods_are_kubernetes_shaped() {
        let value = serde_json::to_value(PodObject::new(&pod())).unwrap();
        assert_eq!(value["apiVersion"], "v1");
        assert_eq!(value["metadata"]["resourceVersion"], "12");
        assert_eq!(value["kind"], "Pod");
        assert_eq!(value["metadata"]["name"], "web");
        assert_eq!(
            value["metadata"]["creationTimestamp"],
            "2024-03-01T10:00:00Z"
        );
        assert_eq!(value["spec"]["nodeName"], "n1");
        assert_eq!(value["spec"]["restartPolicy"], "");
        assert!(value["spec"].get("terminationGracePeriodSeconds").is_none());
        let mut graceful = pod();
        graceful.termination_grace_period_seconds = Some(45);
        let value2 = serde_json::to_value(PodObject::new(&graceful)).unwrap();
        assert_eq!(value2["spec"]["terminationGracePeriodSeconds"], 45);
        assert_eq!(
            value["spec"]["containers"][0]["resources"],
            json!({"requests": {"cpu": "500m"}, "limits": {"memory": "64Mi"}})
        );
        assert_eq!(
            value["spec"]["containers"][0]["volumeMounts"],
            json!([{"name": "cache", "mountPath": "/cache", "readOnly": false}])
        );
        assert_eq!(
            value["spec"]["volumes"],
            json!([{"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}}])
        );
        let status = &value["status"];
        assert_eq!(status["phase"], "Running");
        assert_eq!(status["reason"], "");
        assert_eq!(status["cpuRequestMillis"], 500);
        assert_eq!(status["startTime"], "2024-03-01T11:59:00Z");
        assert_eq!(status["scheduledTime"], serde_json::Value::Null);
        assert_eq!(
            status["containerStatuses"][0],
            json!({"name": "nginx", "state": {"running": {"startedAt": "2024-03-01T11:59:00Z"}},
                   "restartCount": 1, "ready": true, "pid": 4242})
        );
        assert_eq!(
            status["containerStatuses"][1]["state"],
            json!({"terminated": {"exitCode": 0, "startedAt": null,
                   "finishedAt": "2024-03-01T11:59:30Z", "message": ""}})
        );
    }

    #[test]
    fn nodes_are_kubernetes_shaped() {
        let value = serde_json::to_value(NodeObject::new(&node())).unwrap();
        assert_eq!(value["kind"], "Node");
        assert_eq!(
            value["metadata"],
            json!({"name": "n1", "labels": {"zone": "a"},
            "creationTimestamp": "2024-03-01T11:57:00Z", "resourceVersion": "11"})
        );
        assert_eq!(value["spec"], json!({}));
        let status = &value["status"];
        assert_eq!(status["phase"], "Healthy");
        assert_eq!(status["capacity"], json!({"cpu": "4"}));
        assert_eq!(status["allocated"], json!({"cpu": "1500m"}));
        assert_eq!(status["cpuCapacityMillis"], 4000);
        assert_eq!(status["cpuAllocatedMillis"], 1500);
        assert_eq!(status["pods"], json!(["web"]));
        assert_eq!(status["runtime"]["containerName"], "kube9-node-n1");
        assert_eq!(
            status["components"][0],
            json!({"name": "kubelet", "healthy": true,
            "critical": true, "message": "ok"})
        );
        assert_eq!(status["lastHeartbeatTime"], "2024-03-01T11:59:58Z");
        assert_eq!(status["agentConnected"], true);
        assert_eq!(status["injectedFault"], "");
        let mut bare = node();
        bare.runtime = None;
        let value = serde_json::to_value(NodeObject::new(&bare)).unwrap();
        assert_eq!(value["status"]["runtime"], serde_json::Value::Null);
    }

    #[test]
    fn events_and_lists_are_kubernetes_shaped() {
        let list = List::new(vec![EventObject::new(&event(7, 5_000, "NodeReady"))]);
        assert_eq!(
            serde_json::to_value(list).unwrap(),
            json!({"apiVersion": "v1", "kind": "List", "items": [{
                "apiVersion": "v1", "kind": "Event", "metadata": {"name": "7", "resourceVersion": "107"},
                "type": "Normal", "reason": "NodeReady", "message": "NodeReady happened",
                "involvedObject": {"kind": "Node", "name": "n1"},
                "lastTimestamp": "2024-03-01T11:59:55Z"}]})
        );
    }

    #[test]
    fn base64_is_standard_with_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff, 0xfe, 0x00, 0x89]), "//4AiQ==");
    }

    #[test]
    fn pods_carry_their_namespace() {
        let value = serde_json::to_value(PodObject::new(&pod())).unwrap();
        assert_eq!(value["metadata"]["namespace"], "default");
        let mut prod = pod();
        prod.namespace = "prod".into();
        let value = serde_json::to_value(PodObject::new(&prod)).unwrap();
        assert_eq!(value["metadata"]["namespace"], "prod");
    }

    #[test]
    fn a_security_context_is_written_as_in_the_manifest() {
        let sc = pb::SecurityContext {
            run_as_user: Some(1000),
            run_as_non_root: true,
            allow_privilege_escalation: Some(false),
            capabilities_drop: vec!["ALL".into()],
            ..Default::default()
        };
        assert_eq!(
            security_spec(&Some(sc)).unwrap(),
            serde_json::json!({
                "runAsUser": 1000,
                "runAsNonRoot": true,
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]}
            })
        );
        assert_eq!(security_spec(&None), None);
    }

    #[test]
    fn env_from_config_maps_and_secrets_is_kubernetes_shaped() {
        let mut p = pod();
        let key = |name: &str, key: &str, optional| pb::KeySelector {
            name: name.into(),
            key: key.into(),
            optional,
        };
        let from = |source| pb::EnvVar {
            name: "X".into(),
            value: String::new(),
            value_from: Some(pb::EnvVarSource {
                source: Some(source),
            }),
        };
        use pb::env_var_source::Source;
        p.containers[0].env = vec![
            pb::EnvVar {
                name: "PLAIN".into(),
                value: "1".into(),
                value_from: None,
            },
            from(Source::ConfigMapKeyRef(key("game", "lives", false))),
            from(Source::SecretKeyRef(key("db", "password", true))),
            from(Source::FieldPath("metadata.namespace".into())),
        ];
        p.containers[0].env_from = vec![pb::EnvFromSource {
            prefix: "DB_".into(),
            source: Some(pb::env_from_source::Source::SecretRef(pb::ObjectSelector {
                name: "db".into(),
                optional: false,
            })),
        }];
        p.volumes.push(pb::Volume {
            name: "creds".into(),
            kind: "secret".into(),
            source: "db".into(),
            items: vec![pb::KeyToPath {
                key: "password".into(),
                path: "pw".into(),
                mode: 0o400,
            }],
            default_mode: 0o440,
            optional: true,
            ..Default::default()
        });
        let value = serde_json::to_value(PodObject::new(&p)).unwrap();
        let c = &value["spec"]["containers"][0];
        assert_eq!(
            c["env"],
            json!([
                {"name": "PLAIN", "value": "1"},
                {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "game", "key": "lives"}}},
                {"name": "X", "valueFrom": {"secretKeyRef":
                    {"name": "db", "key": "password", "optional": true}}},
                {"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            ])
        );
        assert_eq!(
            c["envFrom"],
            json!([{"prefix": "DB_", "secretRef": {"name": "db"}}])
        );
        assert_eq!(
            value["spec"]["volumes"][1],
            json!({"name": "creds", "secret": {"secretName": "db", "defaultMode": 288,
                   "optional": true, "items": [{"key": "password", "path": "pw", "mode": 256}]}})
        );
        assert!(value["spec"]["containers"][1].get("envFrom").is_none());
    }

    #[test]
    fn namespaces_config_maps_and_secrets_are_kubernetes_shaped() {
        assert_eq!(
            serde_json::to_value(NamespaceObject::new(&namespace())).unwrap(),
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "prod", "labels": {"team": "a"},
                                "creationTimestamp": "2024-03-01T11:55:00Z",
                                "resourceVersion": "13"},
                   "status": {"phase": "Active"}})
        );
        assert_eq!(
            serde_json::to_value(ConfigMapObject::new(&config_map())).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "game-demo", "namespace": "prod",
                                "labels": {"app": "game"},
                                "creationTimestamp": "2024-03-01T11:59:00Z",
                                "resourceVersion": "14"},
                   "data": {"game.properties":
                                "enemy.types=aliens,monsters\nplayer.maximum-lives=5\n",
                            "player_initial_lives": "3"},
                   "binaryData": {"logo.png": "iVBORwA="}})
        );
        let mut plain = config_map();
        plain.binary_data.clear();
        let value = serde_json::to_value(ConfigMapObject::new(&plain)).unwrap();
        assert!(value.get("binaryData").is_none(), "{value}");
        // What Kubernetes prints: every value base64, in `data`.
        let value = serde_json::to_value(SecretObject::new(&secret())).unwrap();
        assert_eq!(
            value,
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "db-user-pass", "namespace": "default", "labels": {},
                                "creationTimestamp": "2024-03-01T11:50:00Z",
                                "resourceVersion": "15"},
                   "type": "Opaque",
                   "data": {"password": base64(SECRET_PASSWORD.as_bytes()),
                            "username": base64(SECRET_USER.as_bytes())}})
        );
        let text = crate::output::to_yaml(&SecretObject::new(&secret())).unwrap();
        assert!(
            text.contains("type: Opaque\ndata:\n  password: czNjcjN0LVBhNTV3MHJkIQ==\n"),
            "{text}"
        );
        assert!(!text.contains(SECRET_PASSWORD), "{text}");
        let mut untyped = secret();
        untyped.r#type.clear();
        assert_eq!(SecretObject::new(&untyped).secret_type, "Opaque");
    }

    #[test]
    fn a_redacted_secret_keeps_its_keys_with_empty_values() {
        let mut redacted = secret();
        redacted.redacted = true;
        for value in redacted.data.values_mut() {
            value.clear();
        }
        let value = serde_json::to_value(SecretObject::new(&redacted)).unwrap();
        assert_eq!(value["data"], json!({"password": "", "username": ""}));
        let text = crate::output::to_yaml(&SecretObject::new(&redacted)).unwrap();
        assert!(
            text.ends_with("data:\n  password: ''\n  username: ''\n"),
            "{text}"
        );
    }

    #[test]
    fn events_name_the_namespace_of_their_object() {
        let mut e = event(7, 5_000, "Scheduled");
        e.object_kind = "Pod".into();
        e.object_name = "web".into();
        e.namespace = "prod".into();
        let value = serde_json::to_value(EventObject::new(&e)).unwrap();
        assert_eq!(
            value["metadata"],
            json!({"name": "7", "namespace": "prod", "resourceVersion": "107"})
        );
        assert_eq!(
            value["involvedObject"],
            json!({"kind": "Pod", "namespace": "prod", "name": "web"})
        );
    }

    #[test]
    fn yaml_output_is_the_same_document() {
        let yaml = crate::output::to_yaml(&PodObject::new(&pod())).unwrap();
        assert!(
            yaml.starts_with("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n"),
            "{yaml}"
        );
        assert!(!yaml.contains('!'), "no YAML tags: {yaml}");
        let back: serde_json::Value = serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(back, serde_json::to_value(PodObject::new(&pod())).unwrap());
    }

    #[test]
    fn pod_yaml_output_applies_back_to_the_same_spec() {
        let yaml = crate::output::to_yaml(&PodObject::new(&pod())).unwrap();
        let (objects, warnings) =
            kube9_proto::manifest::parse_manifests_with_warnings(&yaml).unwrap();
        // Server-written metadata and status pass silently; the binding does not carry over.
        let warned: Vec<_> = warnings.iter().map(|w| w.field.as_str()).collect();
        assert_eq!(warned, ["spec.nodeName"]);
        let kube9_proto::manifest::Object::Pod(back) = &objects[0] else {
            panic!()
        };
        let original = pod();
        assert_eq!(
            back.containers[0].cpu_request_millis,
            original.containers[0].cpu_request_millis
        );
        assert_eq!(
            back.containers[0].memory_limit_bytes,
            original.containers[0].memory_limit_bytes
        );
        assert_eq!(back.volumes, original.volumes);
        assert_eq!(back.containers[1].command, original.containers[1].command);
    }
}
