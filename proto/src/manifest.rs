//! Kubernetes-shaped manifests (`apiVersion: v1`, kinds `Pod` and `Node`) into wire objects.
//!
//! A manifest is a YAML stream: several documents separated by `---`, in block style, flow style
//! or plain JSON. Each document is read into serde structs that mirror the Kubernetes v1 API
//! (fields this project does not use are ignored, so real manifests parse), then converted to
//! [`pb::Pod`] or [`pb::NodeSpec`], normalized and validated. The first problem stops the parse
//! and names its document (1-based) and field:
//!
//! ```text
//! document 2 (pod "web"): spec.containers[0].resources.requests.cpu: invalid CPU quantity "abc"
//! ```
//!
//! Every kind-specific section is read through one union struct, so a document is deserialized
//! once with field paths in serde's errors. Only when that fails is the document read again as a
//! plain YAML value, to tell a syntax error from a wrong kind from a wrong field type.
//!
//! Fields Kube-9 does not read are accepted, but [`parse_manifests_with_warnings`] names each
//! one (as kubectl's warn mode does), so a `livenessProbe` that will never run does not go
//! unnoticed:
//!
//! ```text
//! document 1 (pod "web"): unknown field "spec.containers[0].livenessProbe" ignored
//! ```
//!
//! Not warned about: `status` (written by the server; `kubectl get -o yaml` output carries it),
//! the metadata the server sets (`uid`, `creationTimestamp`, ...), and `metadata.namespace`
//! when it is `default`, the one namespace there is.

use crate::pb;
use crate::quantity::{parse_cpu, parse_memory, QuantityError};
use crate::validate::{normalize_pod, validate_node_spec, validate_pod, ValidationError};
use serde::de;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// The kinds a manifest may hold.
pub const KINDS: [&str; 2] = ["Pod", "Node"];

/// One object read from a manifest.
// Unboxed on purpose: a manifest holds a handful of objects, and callers match on plain wire
// types.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// A pod, normalized (CPU request summed) and validated; its phase is left unspecified.
    Pod(pb::Pod),
    /// A node as declared (name, labels, CPU capacity).
    Node(pb::NodeSpec),
}

impl Object {
    /// `Pod` or `Node`.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Pod(_) => "Pod",
            Object::Node(_) => "Node",
        }
    }

    /// The object's `metadata.name`.
    pub fn name(&self) -> &str {
        match self {
            Object::Pod(pod) => &pod.name,
            Object::Node(node) => &node.name,
        }
    }

    /// Runs the checks kube9d will run.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            Object::Pod(pod) => validate_pod(pod),
            Object::Node(node) => validate_node_spec(node),
        }
    }
}

/// Builds the one `Apply` request that creates every object.
pub fn apply_request(objects: Vec<Object>, dry_run: bool) -> pb::ApplyRequest {
    let mut request = pb::ApplyRequest {
        dry_run,
        ..Default::default()
    };
    for object in objects {
        match object {
            Object::Pod(pod) => request.pods.push(pod),
            Object::Node(node) => request.nodes.push(node),
        }
    }
    request
}

/// Which document an error is about: `document 2 (pod "web")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRef {
    /// 1-based position in the stream.
    pub index: usize,
    /// `Pod`, `Node`, or empty when not known.
    pub kind: String,
    /// `metadata.name`, possibly empty.
    pub name: String,
}

impl fmt::Display for DocumentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "document {}", self.index)?;
        match (self.kind.is_empty(), self.name.is_empty()) {
            (true, _) => Ok(()),
            (false, true) => write!(f, " ({})", self.kind.to_ascii_lowercase()),
            (false, false) => write!(f, " ({} {:?})", self.kind.to_ascii_lowercase(), self.name),
        }
    }
}

/// A field that was accepted but will be ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestWarning {
    /// The document it is in.
    pub document: DocumentRef,
    /// Its path, e.g. `spec.containers[0].livenessProbe`.
    pub field: String,
    /// What the user should know, e.g. `unknown field "spec.containers[0].livenessProbe" ignored`.
    pub message: String,
}

impl ManifestWarning {
    fn unknown(document: &DocumentRef, field: impl Into<String>) -> Self {
        let field = field.into();
        ManifestWarning {
            document: document.clone(),
            message: format!("unknown field {field:?} ignored"),
            field,
        }
    }
}

impl fmt::Display for ManifestWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.document, self.message)
    }
}

/// Metadata the server sets: present in objects read back from a cluster, harmless in a
/// manifest.
const SERVER_SET_METADATA: [&str; 6] = [
    "uid",
    "creationTimestamp",
    "resourceVersion",
    "generation",
    "managedFields",
    "selfLink",
];

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not YAML at all; the message carries line and column.
    #[error("document {document}: invalid YAML: {source}")]
    Yaml {
        document: usize,
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// Missing or unsupported `apiVersion` or `kind`, or not a mapping.
    #[error("document {document}: {message}")]
    Header { document: usize, message: String },
    /// A field of the wrong type (`containers: web`); serde's message carries path and position.
    #[error("{document}: {source}")]
    Schema {
        document: DocumentRef,
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A value that parsed but is not acceptable.
    #[error("{document}: {error}")]
    Invalid {
        document: DocumentRef,
        #[source]
        error: ValidationError,
    },
    /// The same kind and name twice in one manifest.
    #[error("{document}: {} {:?} is defined twice (first in document {first})", document.kind.to_ascii_lowercase(), document.name)]
    Duplicate { document: DocumentRef, first: usize },
}

/// Reads every object of a (multi-document) manifest, validating each one.
///
/// Empty documents are skipped; an empty stream gives an empty list. Fields Kube-9 does not
/// read are ignored silently; [`parse_manifests_with_warnings`] names them.
pub fn parse_manifests(text: &str) -> Result<Vec<Object>, ManifestError> {
    parse_manifests_with_warnings(text).map(|(objects, _)| objects)
}

/// [`parse_manifests`], also returning one warning per ignored field, in document order.
pub fn parse_manifests_with_warnings(
    text: &str,
) -> Result<(Vec<Object>, Vec<ManifestWarning>), ManifestError> {
    let mut objects = Vec::new();
    let mut warnings = Vec::new();
    let mut seen: HashMap<(&'static str, String), usize> = HashMap::new();
    for (i, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let index = i + 1;
        let mut ignored = Vec::new();
        let raw: Option<RawObject> =
            match serde_ignored::deserialize(document, |path| ignored.push(field_path(&path))) {
                Ok(raw) => raw,
                Err(e) => return Err(diagnose(text, i, e)),
            };
        let Some(raw) = raw else { continue };
        ignored.extend(fields_of_other_kind(raw.kind.as_deref(), &raw.spec));
        let namespace = raw.metadata.namespace.clone();
        let object = convert(index, raw)?;
        let at = document_ref(index, &object);
        warnings.extend(ignored_fields(&at, ignored, namespace));
        let key = (object.kind(), object.name().to_string());
        if let Some(&first) = seen.get(&key) {
            return Err(ManifestError::Duplicate {
                document: document_ref(index, &object),
                first,
            });
        }
        seen.insert(key, index);
        objects.push(object);
    }
    Ok((objects, warnings))
}

/// The warnings of one document: its `ignored` field paths less those the server writes, and a
/// `namespace` other than `default`.
fn ignored_fields(
    at: &DocumentRef,
    ignored: Vec<String>,
    namespace: Option<String>,
) -> Vec<ManifestWarning> {
    let mut warnings: Vec<_> = ignored
        .into_iter()
        .filter(|field| !is_server_set(field))
        .map(|field| ManifestWarning::unknown(at, field))
        .collect();
    if let Some(namespace) = namespace.filter(|n| !n.is_empty() && n != "default") {
        warnings.push(ManifestWarning {
            document: at.clone(),
            field: "metadata.namespace".into(),
            message: format!(
                "field \"metadata.namespace\" ignored: Kube-9 has no namespaces, {namespace:?} is treated as \"default\""
            ),
        });
    }
    warnings
}

/// `spec.containers[0].livenessProbe`: a serde_ignored path written as in Kubernetes.
fn field_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => match field_path(parent) {
            parent if parent.is_empty() => key.clone(),
            parent => format!("{parent}.{key}"),
        },
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

/// Whether `field` is written by the server rather than by the user (see the module doc). An
/// ignored field's value is skipped whole, so only its own path is ever reported.
fn is_server_set(field: &str) -> bool {
    field.starts_with("status.")
        || field
            .strip_prefix("metadata.")
            .is_some_and(|rest| SERVER_SET_METADATA.contains(&rest))
}

/// `spec` is read as the union of the Pod and Node fields: those of the other kind, when set,
/// are as ignored as unknown ones.
fn fields_of_other_kind(kind: Option<&str>, spec: &RawSpec) -> Vec<String> {
    let capacity = spec.capacity.cpu.is_some() || spec.capacity.memory.is_some();
    match kind {
        Some("Pod") => [("spec.capacity", capacity)].to_vec(),
        Some("Node") => [
            ("spec.containers", !spec.containers.is_empty()),
            ("spec.volumes", !spec.volumes.is_empty()),
            ("spec.restartPolicy", !spec.restart_policy.is_empty()),
        ]
        .to_vec(),
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(field, _)| field.to_string())
    .collect()
}

fn document_ref(index: usize, object: &Object) -> DocumentRef {
    DocumentRef {
        index,
        kind: object.kind().into(),
        name: object.name().into(),
    }
}

/// Explains why document `i` did not deserialize, reading it again as a plain value.
fn diagnose(text: &str, i: usize, error: serde_yaml_ng::Error) -> ManifestError {
    let index = i + 1;
    let value = serde_yaml_ng::Deserializer::from_str(text)
        .nth(i)
        .map(serde_yaml_ng::Value::deserialize);
    let value = match value {
        Some(Ok(value)) => value,
        // Not YAML: the plain read names the real syntax error, where the typed read may have
        // stopped earlier at a type mismatch.
        Some(Err(syntax)) => {
            return ManifestError::Yaml {
                document: index,
                source: syntax,
            }
        }
        None => {
            return ManifestError::Yaml {
                document: index,
                source: error,
            }
        }
    };
    let serde_yaml_ng::Value::Mapping(map) = &value else {
        return ManifestError::Header {
            document: index,
            message: format!(
                "expected a Kubernetes object (a mapping with apiVersion and kind), got {}",
                describe_value(&value)
            ),
        };
    };
    let field = |name: &str| map.get(name).map(scalar_text);
    let kind = match check_header(field("apiVersion").as_deref(), field("kind").as_deref()) {
        Ok(kind) => kind,
        Err(message) => {
            return ManifestError::Header {
                document: index,
                message,
            }
        }
    };
    let name = value
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or_default();
    ManifestError::Schema {
        document: DocumentRef {
            index,
            kind: kind.into(),
            name: name.into(),
        },
        source: error,
    }
}

fn describe_value(value: &serde_yaml_ng::Value) -> &'static str {
    use serde_yaml_ng::Value::*;
    match value {
        Null => "nothing",
        Bool(_) => "a boolean",
        Number(_) => "a number",
        String(_) => "a string",
        Sequence(_) => "a list",
        Mapping(_) => "a mapping",
        Tagged(_) => "a tagged value",
    }
}

fn scalar_text(value: &serde_yaml_ng::Value) -> String {
    match value {
        serde_yaml_ng::Value::String(s) => s.clone(),
        other => serde_yaml_ng::to_string(other)
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    }
}

/// Checks `kind` first (a Deployment is better told it is a Deployment), then `apiVersion`.
fn check_header(api_version: Option<&str>, kind: Option<&str>) -> Result<&'static str, String> {
    let supported = KINDS.join(", ");
    let kind = match kind {
        None => return Err(format!("missing field \"kind\" (supported: {supported})")),
        Some(kind) => match KINDS.iter().find(|k| **k == kind) {
            Some(known) => *known,
            None => return Err(format!("unknown kind {kind:?} (supported: {supported})")),
        },
    };
    match api_version {
        None => Err("missing field \"apiVersion\" (use apiVersion: v1)".into()),
        Some("v1") => Ok(kind),
        Some(other) => Err(format!(
            "unsupported apiVersion {other:?} for kind {kind} (supported: v1)"
        )),
    }
}

fn convert(index: usize, raw: RawObject) -> Result<Object, ManifestError> {
    let kind =
        check_header(raw.api_version.as_deref(), raw.kind.as_deref()).map_err(|message| {
            ManifestError::Header {
                document: index,
                message,
            }
        })?;
    let document = DocumentRef {
        index,
        kind: kind.into(),
        name: raw.metadata.name.clone(),
    };
    let object = match kind {
        "Pod" => pod_from(raw).map(Object::Pod),
        _ => node_from(raw).map(Object::Node),
    };
    object
        .and_then(|object| object.validate().map(|()| object))
        .map_err(|error| ManifestError::Invalid { document, error })
}

fn pod_from(raw: RawObject) -> Result<pb::Pod, ValidationError> {
    let spec = raw.spec;
    let mut pod = pb::Pod {
        name: raw.metadata.name,
        labels: raw.metadata.labels,
        annotations: raw.metadata.annotations,
        restart_policy: spec.restart_policy,
        ..Default::default()
    };
    for (i, c) in spec.containers.into_iter().enumerate() {
        pod.containers
            .push(container_from(&format!("spec.containers[{i}]"), c)?);
    }
    for (i, v) in spec.volumes.into_iter().enumerate() {
        pod.volumes
            .push(volume_from(&format!("spec.volumes[{i}]"), v)?);
    }
    normalize_pod(&mut pod);
    Ok(pod)
}

fn container_from(at: &str, c: RawContainer) -> Result<pb::Container, ValidationError> {
    let resources = &c.resources;
    let cpu = |section: &str, q: &Option<Quantity>| {
        quantity(&format!("{at}.resources.{section}.cpu"), q, parse_cpu)
    };
    let memory = |section: &str, q: &Option<Quantity>| {
        quantity(&format!("{at}.resources.{section}.memory"), q, parse_memory)
    };
    let mut env = Vec::with_capacity(c.env.len());
    for (i, var) in c.env.into_iter().enumerate() {
        if var.value_from.is_some() {
            return Err(ValidationError::new(
                format!("{at}.env[{i}].valueFrom"),
                "not supported: give the value inline with \"value\"",
            ));
        }
        env.push(pb::EnvVar {
            name: var.name,
            value: var.value.unwrap_or_default(),
        });
    }
    Ok(pb::Container {
        cpu_request_millis: cpu("requests", &resources.requests.cpu)?,
        cpu_limit_millis: cpu("limits", &resources.limits.cpu)?,
        memory_request_bytes: memory("requests", &resources.requests.memory)?,
        memory_limit_bytes: memory("limits", &resources.limits.memory)?,
        name: c.name,
        image: c.image,
        command: c.command,
        args: c.args,
        env,
        working_dir: c.working_dir,
        volume_mounts: c
            .volume_mounts
            .into_iter()
            .map(|m| pb::VolumeMount {
                name: m.name,
                mount_path: m.mount_path,
                read_only: m.read_only,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

fn volume_from(at: &str, v: RawVolume) -> Result<pb::Volume, ValidationError> {
    if let Some(other) = v.other.keys().next() {
        return Err(ValidationError::new(
            at,
            format!(
                "unsupported volume source {other:?} (supported: emptyDir, hostPath, configMap, secret)"
            ),
        ));
    }
    let mut sources = Vec::new();
    if let Some(empty_dir) = &v.empty_dir {
        let size = quantity(
            &format!("{at}.emptyDir.sizeLimit"),
            &empty_dir.size_limit,
            parse_memory,
        )?;
        sources.push(("emptyDir", String::new(), size));
    }
    if let Some(host_path) = v.host_path {
        sources.push(("hostPath", host_path.path, 0));
    }
    if let Some(config_map) = v.config_map {
        sources.push(("configMap", config_map.name, 0));
    }
    if let Some(secret) = v.secret {
        sources.push(("secret", secret.secret_name, 0));
    }
    if sources.len() > 1 {
        let kinds: Vec<_> = sources.iter().map(|(kind, ..)| *kind).collect();
        return Err(ValidationError::new(
            at,
            format!(
                "more than one volume source ({}); give exactly one",
                kinds.join(", ")
            ),
        ));
    }
    // As in Kubernetes, a volume without a source is an emptyDir.
    let (kind, source, size_bytes) = sources.pop().unwrap_or(("emptyDir", String::new(), 0));
    Ok(pb::Volume {
        name: v.name,
        kind: kind.into(),
        source,
        size_bytes,
        ..Default::default()
    })
}

fn node_from(raw: RawObject) -> Result<pb::NodeSpec, ValidationError> {
    let (field, cpu) = match (&raw.spec.capacity.cpu, &raw.status.capacity.cpu) {
        (Some(cpu), _) => ("spec.capacity.cpu", cpu),
        (None, Some(cpu)) => ("status.capacity.cpu", cpu),
        (None, None) => {
            return Err(ValidationError::new(
                "spec.capacity.cpu",
                "required: the node's CPU capacity, e.g. \"4\" or \"4000m\"",
            ))
        }
    };
    let cpu_millis = parse_cpu(&cpu.0).map_err(|e| ValidationError::new(field, e.to_string()))?;
    Ok(pb::NodeSpec {
        name: raw.metadata.name,
        cpu_millis,
        labels: raw.metadata.labels,
        ..Default::default()
    })
}

fn quantity(
    field: &str,
    q: &Option<Quantity>,
    parse: fn(&str) -> Result<i64, QuantityError>,
) -> Result<i64, ValidationError> {
    match q {
        None => Ok(0),
        Some(q) => parse(&q.0).map_err(|e| ValidationError::new(field, e.to_string())),
    }
}

// ---------------------------------------------------------------------------------------------
// The Kubernetes v1 shapes, as far as Kube-9 reads them.
// ---------------------------------------------------------------------------------------------

/// Any supported object: `spec` and `status` hold the union of the Pod and Node fields.
#[derive(Deserialize)]
#[serde(
    rename_all = "camelCase",
    expecting = "a Kubernetes object (a mapping with apiVersion, kind and metadata)"
)]
struct RawObject {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    metadata: RawMetadata,
    #[serde(default, deserialize_with = "nullable")]
    spec: RawSpec,
    #[serde(default, deserialize_with = "nullable")]
    status: RawStatus,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawMetadata {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    /// Read only to warn about a namespace other than `default`.
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    labels: HashMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    annotations: HashMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawSpec {
    // Pod.
    #[serde(default, deserialize_with = "nullable")]
    containers: Vec<RawContainer>,
    #[serde(default, deserialize_with = "nullable")]
    volumes: Vec<RawVolume>,
    #[serde(default, deserialize_with = "nullable")]
    restart_policy: String,
    // Node.
    #[serde(default, deserialize_with = "nullable")]
    capacity: RawResourceList,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawStatus {
    #[serde(default, deserialize_with = "nullable")]
    capacity: RawResourceList,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawContainer {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    image: String,
    #[serde(default, deserialize_with = "nullable")]
    command: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    args: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    env: Vec<RawEnvVar>,
    #[serde(default, deserialize_with = "nullable")]
    working_dir: String,
    #[serde(default, deserialize_with = "nullable")]
    resources: RawResources,
    #[serde(default, deserialize_with = "nullable")]
    volume_mounts: Vec<RawVolumeMount>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawEnvVar {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    value_from: Option<serde_yaml_ng::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawResources {
    #[serde(default, deserialize_with = "nullable")]
    requests: RawResourceList,
    #[serde(default, deserialize_with = "nullable")]
    limits: RawResourceList,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawResourceList {
    #[serde(default)]
    cpu: Option<Quantity>,
    #[serde(default)]
    memory: Option<Quantity>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawVolumeMount {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    mount_path: String,
    #[serde(default, deserialize_with = "nullable")]
    read_only: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawVolume {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "present")]
    empty_dir: Option<RawEmptyDir>,
    #[serde(default, deserialize_with = "present")]
    host_path: Option<RawHostPath>,
    #[serde(default, deserialize_with = "present")]
    config_map: Option<RawConfigMapRef>,
    #[serde(default, deserialize_with = "present")]
    secret: Option<RawSecretRef>,
    /// Any other key is a volume source Kube-9 does not provide.
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml_ng::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawEmptyDir {
    #[serde(default)]
    size_limit: Option<Quantity>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawHostPath {
    #[serde(default, deserialize_with = "nullable")]
    path: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawConfigMapRef {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawSecretRef {
    #[serde(default, deserialize_with = "nullable")]
    secret_name: String,
}

/// A quantity as written: a YAML string (`"500m"`) or number (`0.5`, `2`), kept as text.
struct Quantity(String);

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity such as \"500m\", 0.5, 2 or \"64Mi\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
                // f64's Display never uses an exponent, so the quantity parser can read it.
                Ok(Quantity(v.to_string()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A field written as `null` (or left empty, `labels:`) means the same as an absent one.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: de::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A volume source present as a key is chosen even when empty (`emptyDir: {}` or `emptyDir:`).
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: de::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(Option::<T>::deserialize(d)?.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse_manifests(text).unwrap_err().to_string()
    }

    fn pods(text: &str) -> Vec<pb::Pod> {
        parse_manifests(text)
            .unwrap()
            .into_iter()
            .map(|o| match o {
                Object::Pod(p) => p,
                other => panic!("not a pod: {other:?}"),
            })
            .collect()
    }

    const WEB: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
  annotations:
    note: hello
spec:
  restartPolicy: OnFailure
  containers:
  - name: nginx
    image: nginx:1.27
    command: ["nginx"]
    args: ["-g", "daemon off;"]
    workingDir: /srv
    env:
    - name: MODE
      value: prod
    - name: EMPTY
    resources:
      requests: {cpu: 500m, memory: 64Mi}
      limits: {cpu: 1, memory: 128Mi}
    volumeMounts:
    - {name: cache, mountPath: /cache}
    - {name: conf, mountPath: /etc/conf, readOnly: true}
    ports:                      # unknown to Kube-9, ignored with a warning
    - containerPort: 80
  volumes:
  - name: cache
    emptyDir: {sizeLimit: 1Gi}
  - name: conf
    configMap: {name: web-conf}
  - name: host
    hostPath: {path: /var/log, type: Directory}
  - name: token
    secret: {secretName: web-token}
  - name: scratch
    emptyDir:
status:
  phase: Running
"#;

    #[test]
    fn a_full_pod_maps_every_field() {
        let pod = &pods(WEB)[0];
        assert_eq!(pod.name, "web");
        assert_eq!(pod.labels["app"], "web");
        assert_eq!(pod.annotations["note"], "hello");
        assert_eq!(pod.restart_policy, "OnFailure");
        assert_eq!(pod.phase, pb::PodPhase::Unspecified as i32);
        assert_eq!(pod.cpu_request_millis, 500);
        let c = &pod.containers[0];
        assert_eq!((c.name.as_str(), c.image.as_str()), ("nginx", "nginx:1.27"));
        assert_eq!(c.command, ["nginx"]);
        assert_eq!(c.args, ["-g", "daemon off;"]);
        assert_eq!(c.working_dir, "/srv");
        assert_eq!(
            c.env[0],
            pb::EnvVar {
                name: "MODE".into(),
                value: "prod".into()
            }
        );
        assert_eq!(c.env[1].value, "");
        assert_eq!((c.cpu_request_millis, c.cpu_limit_millis), (500, 1000));
        assert_eq!(
            (c.memory_request_bytes, c.memory_limit_bytes),
            (64 << 20, 128 << 20)
        );
        assert!(c.volume_mounts[1].read_only);
        assert_eq!(c.volume_mounts[1].mount_path, "/etc/conf");
        let volumes: Vec<_> = pod
            .volumes
            .iter()
            .map(|v| {
                (
                    v.name.as_str(),
                    v.kind.as_str(),
                    v.source.as_str(),
                    v.size_bytes,
                )
            })
            .collect();
        assert_eq!(
            volumes,
            [
                ("cache", "emptyDir", "", 1 << 30),
                ("conf", "configMap", "web-conf", 0),
                ("host", "hostPath", "/var/log", 0),
                ("token", "secret", "web-token", 0),
                ("scratch", "emptyDir", "", 0),
            ]
        );
    }

    #[test]
    fn block_flow_and_json_styles_give_the_same_pod() {
        let block = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\nspec:\n  containers:\n  - name: c\n    image: busybox\n    resources:\n      requests:\n        cpu: 250m\n";
        let flow = "{apiVersion: v1, kind: Pod, metadata: {name: a}, spec: {containers: [{name: c, image: busybox, resources: {requests: {cpu: 250m}}}]}}";
        let json = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},
            "spec": {"containers": [{"name": "c", "image": "busybox",
            "resources": {"requests": {"cpu": "250m"}}}]}}"#;
        let a = pods(block);
        assert_eq!(a, pods(flow));
        assert_eq!(a, pods(json));
        assert_eq!(a[0].cpu_request_millis, 250);
    }

    #[test]
    fn multi_document_streams_skip_empty_documents() {
        let text = "---\n# just a comment\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {zone: a}}\nspec:\n  capacity: {cpu: 4}\n---\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: x}]}\n...\n";
        let objects = parse_manifests(text).unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!((objects[0].kind(), objects[0].name()), ("Node", "n1"));
        assert_eq!(
            objects[0],
            Object::Node(pb::NodeSpec {
                name: "n1".into(),
                cpu_millis: 4000,
                labels: [("zone".to_string(), "a".to_string())].into(),
                ..Default::default()
            })
        );
        assert_eq!((objects[1].kind(), objects[1].name()), ("Pod", "p"));
        assert!(parse_manifests("").unwrap().is_empty());
        assert!(parse_manifests("---\n---\n").unwrap().is_empty());
    }

    #[test]
    fn cpu_may_be_a_string_or_a_number() {
        let doc = |cpu: &str| {
            format!("{{apiVersion: v1, kind: Pod, metadata: {{name: p}}, spec: {{containers: [{{name: c, image: x, resources: {{requests: {{cpu: {cpu}}}}}}}]}}}}")
        };
        assert_eq!(pods(&doc("\"2\""))[0].cpu_request_millis, 2000);
        assert_eq!(pods(&doc("2"))[0].cpu_request_millis, 2000);
        assert_eq!(pods(&doc("0.5"))[0].cpu_request_millis, 500);
        assert_eq!(pods(&doc("'100m'"))[0].cpu_request_millis, 100);
    }

    #[test]
    fn the_cpu_request_defaults_to_the_limit_and_sums_over_containers() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: x, resources: {limits: {cpu: 300m}}}\n  - {name: b, image: x, resources: {requests: {cpu: 200m}}}\n  - {name: c, image: x}\n";
        let pod = &pods(text)[0];
        assert_eq!(pod.containers[0].cpu_request_millis, 300);
        assert_eq!(pod.containers[2].cpu_request_millis, 0);
        assert_eq!(pod.cpu_request_millis, 500);
    }

    #[test]
    fn node_cpu_comes_from_spec_or_status_capacity() {
        let spec =
            "{apiVersion: v1, kind: Node, metadata: {name: n}, spec: {capacity: {cpu: 2500m}}}";
        let status = "{apiVersion: v1, kind: Node, metadata: {name: n}, status: {capacity: {cpu: '8', memory: 32Gi}}}";
        let cpu = |t: &str| match &parse_manifests(t).unwrap()[0] {
            Object::Node(n) => n.cpu_millis,
            other => panic!("{other:?}"),
        };
        assert_eq!(cpu(spec), 2500);
        assert_eq!(cpu(status), 8000);
        assert_eq!(
            err("{apiVersion: v1, kind: Node, metadata: {name: n}}"),
            "document 1 (node \"n\"): spec.capacity.cpu: required: the node's CPU capacity, e.g. \"4\" or \"4000m\""
        );
        assert_eq!(
            err("{apiVersion: v1, kind: Node, metadata: {name: n}, spec: {capacity: {cpu: -2}}}"),
            "document 1 (node \"n\"): spec.capacity.cpu: invalid CPU quantity \"-2\": must not be negative"
        );
    }

    #[test]
    fn malformed_yaml_reports_line_and_column() {
        let e = err("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [web\n");
        assert!(e.starts_with("document 1: invalid YAML: "), "{e}");
        assert!(e.contains("line "), "{e}");
        assert!(e.contains("column "), "{e}");
        let e = err("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: x}]}\n---\nkind: Pod\n  bad: indent\n");
        assert!(e.starts_with("document 2: invalid YAML: "), "{e}");
    }

    #[test]
    fn kind_and_api_version_are_required_and_checked() {
        assert_eq!(
            err("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"),
            "document 1: unknown kind \"Deployment\" (supported: Pod, Node)"
        );
        assert_eq!(
            err("apiVersion: v1\nmetadata: {name: web}\n"),
            "document 1: missing field \"kind\" (supported: Pod, Node)"
        );
        assert_eq!(
            err("kind: Pod\nmetadata: {name: web}\n"),
            "document 1: missing field \"apiVersion\" (use apiVersion: v1)"
        );
        assert_eq!(
            err("apiVersion: v2\nkind: Pod\nmetadata: {name: web}\n"),
            "document 1: unsupported apiVersion \"v2\" for kind Pod (supported: v1)"
        );
        assert_eq!(
            err("just a string"),
            "document 1: expected a Kubernetes object (a mapping with apiVersion and kind), got a string"
        );
        // A kind whose spec does not even fit the Pod shape is still reported as unknown.
        assert_eq!(
            err("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {volumes: 3}\n"),
            "document 1: unknown kind \"Service\" (supported: Pod, Node)"
        );
    }

    #[test]
    fn wrong_field_types_name_the_path() {
        let e =
            err("apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: nginx\n");
        assert!(e.starts_with("document 1 (pod \"web\"): spec.containers: invalid type: string \"nginx\", expected a sequence"), "{e}");
        let e = err("apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - name: c\n    image: x\n    command: sleep 1\n");
        assert!(
            e.contains("spec.containers[0].command: invalid type"),
            "{e}"
        );
    }

    #[test]
    fn bad_quantities_name_document_pod_and_field() {
        let good = "apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec: {containers: [{name: c, image: x}]}\n";
        let bad = |cpu: &str| {
            format!("{good}---\napiVersion: v1\nkind: Pod\nmetadata: {{name: web}}\nspec:\n  containers:\n  - name: c\n    image: x\n    resources:\n      requests: {{cpu: {cpu}}}\n")
        };
        assert_eq!(
            err(&bad("abc")),
            "document 2 (pod \"web\"): spec.containers[0].resources.requests.cpu: invalid CPU quantity \"abc\""
        );
        assert_eq!(
            err(&bad("-1")),
            "document 2 (pod \"web\"): spec.containers[0].resources.requests.cpu: invalid CPU quantity \"-1\": must not be negative"
        );
        assert!(err(&bad("5000")).ends_with("more than 1000 cores, the maximum"));
        assert!(err(&bad("0.0001")).ends_with("finer than 1m, the smallest CPU unit"));
        let e = err("{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: x, resources: {limits: {memory: 10m}}}]}}");
        assert!(e.starts_with("document 1 (pod \"p\"): spec.containers[0].resources.limits.memory: invalid memory quantity \"10m\""), "{e}");
    }

    #[test]
    fn validation_runs_on_every_object() {
        assert_eq!(
            err("{apiVersion: v1, kind: Pod, metadata: {name: Web_1}, spec: {containers: [{name: c, image: x}]}}"),
            "document 1 (pod \"Web_1\"): metadata.name: invalid pod name \"Web_1\": must consist of lowercase letters, digits and '-', start and end with a letter or digit, at most 63 characters"
        );
        assert_eq!(
            err("{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: x}, {name: c, image: y}]}}"),
            "document 1 (pod \"p\"): spec.containers[1].name: duplicate container name \"c\""
        );
        assert_eq!(
            err("{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: x, volumeMounts: [{name: data, mountPath: /data}]}]}}"),
            "document 1 (pod \"p\"): spec.containers[0].volumeMounts[0].name: volume \"data\" is not declared in spec.volumes"
        );
        assert_eq!(
            err("{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: []}}"),
            "document 1 (pod \"p\"): spec.containers: a pod needs at least one container"
        );
        assert_eq!(
            err("{apiVersion: v1, kind: Pod, metadata: {}, spec: {containers: [{name: c, image: x}]}}"),
            "document 1 (pod): metadata.name: pod name must not be empty"
        );
    }

    #[test]
    fn duplicate_objects_in_one_manifest_are_refused() {
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: c, image: x}]}\n";
        let node =
            "apiVersion: v1\nkind: Node\nmetadata: {name: web}\nspec: {capacity: {cpu: 1}}\n";
        assert_eq!(
            err(&format!("{pod}---\n{node}---\n{pod}")),
            "document 3 (pod \"web\"): pod \"web\" is defined twice (first in document 1)"
        );
        // The same name under two kinds is fine.
        assert_eq!(
            parse_manifests(&format!("{pod}---\n{node}")).unwrap().len(),
            2
        );
    }

    #[test]
    fn unsupported_volume_sources_and_env_sources_are_refused() {
        assert_eq!(
            err("{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: x}], volumes: [{name: v, persistentVolumeClaim: {claimName: x}}]}}"),
            "document 1 (pod \"p\"): spec.volumes[0]: unsupported volume source \"persistentVolumeClaim\" (supported: emptyDir, hostPath, configMap, secret)"
        );
        assert_eq!(
            err("{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: x}], volumes: [{name: v, emptyDir: {}, hostPath: {path: /x}}]}}"),
            "document 1 (pod \"p\"): spec.volumes[0]: more than one volume source (emptyDir, hostPath); give exactly one"
        );
        assert!(err("{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: x, env: [{name: A, valueFrom: {secretKeyRef: {name: s, key: k}}}]}]}}")
            .contains("spec.containers[0].env[0].valueFrom: not supported"));
    }

    #[test]
    fn null_sections_read_as_absent() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels:\nspec:\n  volumes:\n  containers:\n  - name: c\n    image: x\n    resources:\n      requests:\n";
        assert_eq!(pods(text)[0].cpu_request_millis, 0);
    }

    fn warnings(text: &str) -> Vec<String> {
        let (_, warnings) = parse_manifests_with_warnings(text).unwrap();
        warnings.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn unknown_fields_are_accepted_with_one_warning_each() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: prod\nspec:\n  containers:\n  - name: c\n    image: x\n    livenessProbe:\n      httpGet: {path: /, port: 80}\n";
        let (objects, _) = parse_manifests_with_warnings(text).unwrap();
        assert_eq!(objects, parse_manifests(text).unwrap());
        assert_eq!(objects.len(), 1);
        assert_eq!(
            warnings(text),
            [
                "document 1 (pod \"web\"): unknown field \"spec.containers[0].livenessProbe\" ignored",
                "document 1 (pod \"web\"): field \"metadata.namespace\" ignored: Kube-9 has no namespaces, \"prod\" is treated as \"default\"",
            ]
        );
        // The full example: `ports` and an unknown top-level field are reported, `status` is not.
        let text = format!("{WEB}extra: 1\n");
        assert_eq!(
            warnings(&text),
            [
                "document 1 (pod \"web\"): unknown field \"spec.containers[0].ports\" ignored",
                "document 1 (pod \"web\"): unknown field \"spec.volumes[2].hostPath.type\" ignored",
                "document 1 (pod \"web\"): unknown field \"extra\" ignored",
            ]
        );
    }

    #[test]
    fn clean_manifests_and_server_written_fields_give_no_warnings() {
        let clean = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default, labels: {a: b}}\nspec: {restartPolicy: Never, containers: [{name: c, image: x, resources: {requests: {cpu: 1}}}]}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n}\nspec: {capacity: {cpu: 4}}\n";
        assert!(warnings(clean).is_empty(), "{:?}", warnings(clean));
        let read_back = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, uid: u-1, creationTimestamp: '2024-03-01T12:00:00Z', resourceVersion: '7'}\nspec: {containers: [{name: c, image: x}]}\nstatus: {phase: Running, containerStatuses: [{name: c}]}\n";
        assert!(warnings(read_back).is_empty(), "{:?}", warnings(read_back));
    }

    #[test]
    fn fields_of_the_other_kind_are_reported_as_ignored() {
        let text = "{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {capacity: {cpu: 1}, containers: [{name: c, image: x}]}}\n---\n{apiVersion: v1, kind: Node, metadata: {name: n}, spec: {capacity: {cpu: 1}, restartPolicy: Never}}\n";
        assert_eq!(
            warnings(text),
            [
                "document 1 (pod \"p\"): unknown field \"spec.capacity\" ignored",
                "document 2 (node \"n\"): unknown field \"spec.restartPolicy\" ignored",
            ]
        );
    }

    #[test]
    fn apply_request_splits_pods_and_nodes() {
        let text = "{apiVersion: v1, kind: Node, metadata: {name: n}, spec: {capacity: {cpu: 1}}}\n---\n{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: x}]}}";
        let request = apply_request(parse_manifests(text).unwrap(), true);
        assert!(request.dry_run);
        assert_eq!(request.pods.len(), 1);
        assert_eq!(request.nodes.len(), 1);
    }
}
