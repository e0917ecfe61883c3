//! Kubernetes-shaped manifests (`apiVersion: v1`; kinds `Pod`, `Node`, `Namespace`,
//! `ConfigMap` and `Secret`) into wire objects.
//!
//! A manifest is a YAML stream: several documents separated by `---`, in block style, flow style
//! or plain JSON. Each document is read into serde structs that mirror the Kubernetes v1 API
//! (fields this project does not use are ignored, so real manifests parse), then converted to
//! [`pb::Pod`], [`pb::NodeSpec`], [`pb::Namespace`], [`pb::ConfigMap`] or [`pb::Secret`],
//! normalized and validated. The first problem stops the parse and names its document (1-based)
//! and field:
//!
//! ```text
//! document 2 (pod "web"): spec.containers[0].resources.requests.cpu: invalid CPU quantity "abc"
//! document 1 (secret "db"): data.password: invalid base64 (...)
//! ```
//!
//! A secret's values never appear in an error or a warning: its keys do.
//!
//! # Namespaces
//!
//! Pods, config maps and secrets keep their `metadata.namespace` as written, empty when absent:
//! the client fills in its own (`kube9ctl -n`, else `default`), and kube9d fills in `default`
//! for a client that did not. [`Object::namespace`] gives the namespace an object lands in when
//! nothing else is said. Nodes and namespaces are cluster-wide: a `metadata.namespace` on them
//! is ignored silently, as kubectl ignores it. Names are unique per kind and namespace, so one
//! manifest may hold two pods `web` in two namespaces.
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
//! (see above). Warned about as well: the fields of another kind (`data` on a pod), and
//! `immutable` on config maps and secrets (Kube-9 does not enforce it).
//!
//! # Files
//!
//! Dependencies run one way, `mod.rs` → `convert.rs` / `diagnose.rs` → `raw.rs` (and
//! `convert.rs` → [`crate::base64`]):
//!
//! - `mod.rs`: the public entry points ([`parse_manifests`], [`parse_manifests_with_warnings`],
//!   [`apply_request`], [`Object`]) and the pipeline that runs each document through the others.
//! - `raw.rs`: the serde mirror of the Kubernetes v1 objects, as far as Kube-9 reads them.
//! - `convert.rs`: mirror structs into wire types (quantities, volume and environment sources,
//!   file modes, base64, normalization).
//! - `diagnose.rs`: the errors and warnings: [`ManifestError`], [`DocumentRef`],
//!   [`ManifestWarning`], the `apiVersion`/`kind` check, the fallback read that explains a
//!   document that does not fit the mirror, and the ignored-field report.
//! - `tests.rs`: the unit tests, run against the public entry points.

mod convert;
mod diagnose;
mod raw;
#[cfg(test)]
mod tests;

pub use diagnose::{DocumentRef, ManifestError, ManifestWarning, KINDS};

use crate::namespace;
use crate::pb;
use crate::validate::{
    validate_config_map, validate_namespace, validate_node_spec, validate_pod, validate_secret,
    ValidationError,
};
use raw::RawObject;
use std::collections::HashMap;

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
    /// A namespace (name and labels).
    Namespace(pb::Namespace),
    /// A config map: `data` as text, `binaryData` decoded from base64.
    ConfigMap(pb::ConfigMap),
    /// A secret: `data` decoded from base64 with `stringData` merged in; `type` is `Opaque`
    /// unless the manifest names another.
    Secret(pb::Secret),
}

impl Object {
    /// One of [`KINDS`]: `Pod`, `Node`, `Namespace`, `ConfigMap`, `Secret`.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Pod(_) => "Pod",
            Object::Node(_) => "Node",
            Object::Namespace(_) => "Namespace",
            Object::ConfigMap(_) => "ConfigMap",
            Object::Secret(_) => "Secret",
        }
    }

    /// The object's `metadata.name`.
    pub fn name(&self) -> &str {
        match self {
            Object::Pod(pod) => &pod.name,
            Object::Node(node) => &node.name,
            Object::Namespace(ns) => &ns.name,
            Object::ConfigMap(cm) => &cm.name,
            Object::Secret(secret) => &secret.name,
        }
    }

    /// The namespace the object is in: empty for the cluster-wide kinds (Node, Namespace),
    /// else its `metadata.namespace`, or `default` when the manifest names none. (The field
    /// itself stays empty then, for the client to fill in.)
    pub fn namespace(&self) -> &str {
        match self {
            Object::Node(_) | Object::Namespace(_) => "",
            Object::Pod(pod) => namespace::or_default(&pod.namespace),
            Object::ConfigMap(cm) => namespace::or_default(&cm.namespace),
            Object::Secret(secret) => namespace::or_default(&secret.namespace),
        }
    }

    /// Runs the checks kube9d will run.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            Object::Pod(pod) => validate_pod(pod),
            Object::Node(node) => validate_node_spec(node),
            Object::Namespace(ns) => validate_namespace(ns),
            Object::ConfigMap(cm) => validate_config_map(cm),
            Object::Secret(secret) => validate_secret(secret),
        }
    }

    /// `metadata.namespace` as the manifest gives it (empty when absent, and for cluster-wide
    /// kinds).
    fn namespace_as_written(&self) -> &str {
        match self {
            Object::Node(_) | Object::Namespace(_) => "",
            Object::Pod(pod) => &pod.namespace,
            Object::ConfigMap(cm) => &cm.namespace,
            Object::Secret(secret) => &secret.namespace,
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
            Object::Namespace(ns) => request.namespaces.push(ns),
            Object::ConfigMap(cm) => request.config_maps.push(cm),
            Object::Secret(secret) => request.secrets.push(secret),
        }
    }
    request
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
    // Kind, namespace as written, name: `web` and `web` in `prod` are two pods. (Whether a pod
    // without a namespace and one in `default` are the same depends on the client's namespace:
    // kube9d checks again once it is filled in.)
    let mut seen: HashMap<(&'static str, String, String), usize> = HashMap::new();
    for (i, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let index = i + 1;
        let mut ignored = Vec::new();
        let raw: Option<RawObject> = match serde_ignored::deserialize(document, |path| {
            ignored.push(diagnose::field_path(&path))
        }) {
            Ok(raw) => raw,
            Err(e) => return Err(diagnose::explain(text, i, e)),
        };
        let Some(raw) = raw else { continue };
        ignored.extend(diagnose::fields_of_other_kind(&raw));
        let object = object_from(index, raw)?;
        let at = document_ref(index, &object);
        warnings.extend(diagnose::ignored_fields(&at, ignored));
        let key = (
            object.kind(),
            object.namespace_as_written().to_string(),
            object.name().to_string(),
        );
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

/// Checks the header, converts, and validates one document: the first error names it.
fn object_from(index: usize, raw: RawObject) -> Result<Object, ManifestError> {
    let kind = diagnose::check_header(raw.api_version.as_deref(), raw.kind.as_deref()).map_err(
        |message| ManifestError::Header {
            document: index,
            message,
        },
    )?;
    let document = DocumentRef {
        index,
        kind: kind.into(),
        name: raw.metadata.name.clone(),
    };
    let object = match kind {
        "Pod" => convert::pod_from(raw).map(Object::Pod),
        "Namespace" => convert::namespace_from(raw).map(Object::Namespace),
        "ConfigMap" => convert::config_map_from(raw).map(Object::ConfigMap),
        "Secret" => convert::secret_from(raw).map(Object::Secret),
        _ => convert::node_from(raw).map(Object::Node),
    };
    object
        .and_then(|object| object.validate().map(|()| object))
        .map_err(|error| ManifestError::Invalid { document, error })
}

fn document_ref(index: usize, object: &Object) -> DocumentRef {
    DocumentRef {
        index,
        kind: object.kind().into(),
        name: object.name().into(),
    }
}
