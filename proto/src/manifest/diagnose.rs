//! What is said about a manifest: the errors that refuse it and the warnings about fields it
//! ignores.
//!
//! - [`ManifestError`] and [`DocumentRef`]: why a document was refused, and which one
//!   (`document 2 (pod "web")`).
//! - [`explain`]: when a document does not fit the serde mirror, reads it again as a plain YAML
//!   value to tell a syntax error from a wrong kind from a wrong field type.
//! - [`KINDS`] and [`check_header`]: the `apiVersion` and `kind` rules, shared by that fallback and
//!   by the typed read.
//! - [`ManifestWarning`] and [`ignored_fields`]: one warning per field Kube-9 accepts but does
//!   not read, less the fields the server writes (see the module doc of `manifest`).
//!
//! Imports only [`super::raw`] from the rest of `manifest`.

use super::raw::RawObject;
use crate::validate::ValidationError;
use serde::Deserialize;
use std::fmt;

/// The kinds a manifest may hold.
pub const KINDS: [&str; 5] = ["Pod", "Node", "Namespace", "ConfigMap", "Secret"];

/// Which document an error is about: `document 2 (pod "web")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRef {
    /// 1-based position in the stream.
    pub index: usize,
    /// One of [`KINDS`], or empty when not known.
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

/// The warnings of one document: its `ignored` field paths less those the server writes.
pub(super) fn ignored_fields(at: &DocumentRef, ignored: Vec<String>) -> Vec<ManifestWarning> {
    ignored
        .into_iter()
        .filter(|field| !is_server_set(field))
        .map(|field| ManifestWarning::unknown(at, field))
        .collect()
}

/// `spec.containers[0].livenessProbe`: a serde_ignored path written as in Kubernetes.
pub(super) fn field_path(path: &serde_ignored::Path<'_>) -> String {
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

/// Whether `field` is written by the server rather than by the user (see the module doc of
/// `manifest`). An
/// ignored field's value is skipped whole, so only its own path is ever reported.
fn is_server_set(field: &str) -> bool {
    field.starts_with("status.")
        || field
            .strip_prefix("metadata.")
            .is_some_and(|rest| SERVER_SET_METADATA.contains(&rest))
}

/// Every document is read as the union of the fields of all kinds: those of another kind, when
/// set, are as ignored as unknown ones. So are the annotations of kinds that keep none (only
/// pods keep theirs). A `metadata.namespace` on a cluster-wide kind (Node, Namespace) is
/// ignored silently, as kubectl ignores it.
pub(super) fn fields_of_other_kind(raw: &RawObject) -> Vec<String> {
    let Some(kind) = raw.kind.as_deref() else {
        return Vec::new();
    };
    let spec = &raw.spec;
    let capacity = spec.capacity.cpu.is_some() || spec.capacity.memory.is_some();
    // (field, set, the kinds that read it)
    let fields: [(&str, bool, &[&str]); 11] = [
        (
            "metadata.annotations",
            !raw.metadata.annotations.is_empty(),
            &["Pod"],
        ),
        ("spec.containers", !spec.containers.is_empty(), &["Pod"]),
        (
            "spec.initContainers",
            !spec.init_containers.is_empty(),
            &["Pod"],
        ),
        ("spec.volumes", !spec.volumes.is_empty(), &["Pod"]),
        (
            "spec.restartPolicy",
            !spec.restart_policy.is_empty(),
            &["Pod"],
        ),
        (
            "spec.terminationGracePeriodSeconds",
            spec.termination_grace_period_seconds.is_some(),
            &["Pod"],
        ),
        ("spec.capacity", capacity, &["Node"]),
        ("data", !raw.data.0.is_empty(), &["ConfigMap", "Secret"]),
        ("binaryData", !raw.binary_data.0.is_empty(), &["ConfigMap"]),
        ("stringData", !raw.string_data.0.is_empty(), &["Secret"]),
        ("type", !raw.secret_type.is_empty(), &["Secret"]),
    ];
    fields
        .into_iter()
        .filter(|(_, set, kinds)| *set && !kinds.contains(&kind))
        .map(|(field, ..)| field.to_string())
        .collect()
}

/// Explains why document `i` did not deserialize, reading it again as a plain value.
pub(super) fn explain(text: &str, i: usize, error: serde_yaml_ng::Error) -> ManifestError {
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
pub(super) fn check_header(
    api_version: Option<&str>,
    kind: Option<&str>,
) -> Result<&'static str, String> {
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
