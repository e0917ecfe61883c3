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
//!
//! # Files
//!
//! Dependencies run one way, `mod.rs` → `convert.rs` / `diagnose.rs` → `raw.rs`:
//!
//! - `mod.rs`: the public entry points ([`parse_manifests`], [`parse_manifests_with_warnings`],
//!   [`apply_request`], [`Object`]) and the pipeline that runs each document through the others.
//! - `raw.rs`: the serde mirror of the Kubernetes v1 objects, as far as Kube-9 reads them.
//! - `convert.rs`: mirror structs into wire types (quantities, volume sources, normalization).
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

use crate::pb;
use crate::validate::{validate_node_spec, validate_pod, ValidationError};
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
        let raw: Option<RawObject> = match serde_ignored::deserialize(document, |path| {
            ignored.push(diagnose::field_path(&path))
        }) {
            Ok(raw) => raw,
            Err(e) => return Err(diagnose::explain(text, i, e)),
        };
        let Some(raw) = raw else { continue };
        ignored.extend(diagnose::fields_of_other_kind(
            raw.kind.as_deref(),
            &raw.spec,
        ));
        let namespace = raw.metadata.namespace.clone();
        let object = object_from(index, raw)?;
        let at = document_ref(index, &object);
        warnings.extend(diagnose::ignored_fields(&at, ignored, namespace));
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
