//! The serde mirror of the Kubernetes v1 objects, as far as Kube-9 reads them.
//!
//! These structs only describe the shape of a manifest document: every field is optional (an
//! absent or `null` field reads as its default), and fields Kube-9 does not read are left out so
//! that [`serde_ignored`] can name them. Turning them into wire types is [`super::convert`]'s
//! job; explaining why a document does not fit them is [`super::diagnose`]'s.
//!
//! This module is a leaf: it imports nothing from the rest of `manifest`.

use serde::de;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// Any supported object: `spec` and `status` hold the union of the Pod and Node fields.
#[derive(Deserialize)]
#[serde(
    rename_all = "camelCase",
    expecting = "a Kubernetes object (a mapping with apiVersion, kind and metadata)"
)]
pub(super) struct RawObject {
    #[serde(default)]
    pub(super) api_version: Option<String>,
    #[serde(default)]
    pub(super) kind: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) metadata: RawMetadata,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) spec: RawSpec,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) status: RawStatus,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawMetadata {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) name: String,
    /// Read only to warn about a namespace other than `default`.
    #[serde(default)]
    pub(super) namespace: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) labels: HashMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) annotations: HashMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawSpec {
    // Pod.
    #[serde(default, deserialize_with = "nullable")]
    pub(super) containers: Vec<RawContainer>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) init_containers: Vec<RawContainer>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) volumes: Vec<RawVolume>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) restart_policy: String,
    // Node.
    #[serde(default, deserialize_with = "nullable")]
    pub(super) capacity: RawResourceList,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawStatus {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) capacity: RawResourceList,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawContainer {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) image: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) command: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) args: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) env: Vec<RawEnvVar>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) working_dir: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) resources: RawResources,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) volume_mounts: Vec<RawVolumeMount>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) image_pull_policy: String,
    #[serde(default)]
    pub(super) liveness_probe: Option<RawProbe>,
    #[serde(default)]
    pub(super) readiness_probe: Option<RawProbe>,
    #[serde(default)]
    pub(super) startup_probe: Option<RawProbe>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawProbe {
    #[serde(default)]
    pub(super) exec: Option<RawExecAction>,
    #[serde(default)]
    pub(super) http_get: Option<RawHttpGet>,
    #[serde(default)]
    pub(super) tcp_socket: Option<RawTcpSocket>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) initial_delay_seconds: u32,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) period_seconds: u32,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) timeout_seconds: u32,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) success_threshold: u32,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) failure_threshold: u32,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawExecAction {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) command: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawHttpGet {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) path: String,
    /// A number, or a named port (which Kube-9 refuses with a message).
    #[serde(default)]
    pub(super) port: Option<serde_yaml_ng::Value>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) host: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) scheme: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawTcpSocket {
    #[serde(default)]
    pub(super) port: Option<serde_yaml_ng::Value>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) host: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawEnvVar {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) name: String,
    #[serde(default)]
    pub(super) value: Option<String>,
    #[serde(default)]
    pub(super) value_from: Option<serde_yaml_ng::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawResources {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) requests: RawResourceList,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) limits: RawResourceList,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawResourceList {
    #[serde(default)]
    pub(super) cpu: Option<Quantity>,
    #[serde(default)]
    pub(super) memory: Option<Quantity>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawVolumeMount {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) mount_path: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) read_only: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) sub_path: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawVolume {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) name: String,
    #[serde(default, deserialize_with = "present")]
    pub(super) empty_dir: Option<RawEmptyDir>,
    #[serde(default, deserialize_with = "present")]
    pub(super) host_path: Option<RawHostPath>,
    #[serde(default, deserialize_with = "present")]
    pub(super) config_map: Option<RawConfigMapRef>,
    #[serde(default, deserialize_with = "present")]
    pub(super) secret: Option<RawSecretRef>,
    /// Any other key is a volume source Kube-9 does not provide.
    #[serde(flatten)]
    pub(super) other: BTreeMap<String, serde_yaml_ng::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawEmptyDir {
    #[serde(default)]
    pub(super) size_limit: Option<Quantity>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) medium: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawHostPath {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) path: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawConfigMapRef {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) name: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawSecretRef {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) secret_name: String,
}

/// A quantity as written: a YAML string (`"500m"`) or number (`0.5`, `2`), kept as text.
pub(super) struct Quantity(pub(super) String);

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
