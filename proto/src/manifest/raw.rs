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

/// Any supported object: `spec` and `status` hold the union of the Pod and Node fields, and the
/// top-level `data`, `binaryData`, `stringData` and `type` those of ConfigMap and Secret.
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
    // ConfigMap (data as text) and Secret (data as base64).
    #[serde(default)]
    pub(super) data: TextMap,
    // ConfigMap.
    #[serde(default)]
    pub(super) binary_data: TextMap,
    // Secret.
    #[serde(default)]
    pub(super) string_data: TextMap,
    #[serde(default, rename = "type", deserialize_with = "nullable")]
    pub(super) secret_type: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawMetadata {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) name: String,
    /// Empty when absent: the client fills in its namespace (`-n`, else `default`).
    #[serde(default, deserialize_with = "nullable")]
    pub(super) namespace: String,
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
    #[serde(default)]
    pub(super) termination_grace_period_seconds: Option<i64>,
    /// The pod's securityContext: its fields apply to every container that does not set them.
    #[serde(default)]
    pub(super) security_context: Option<RawSecurityContext>,
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
    pub(super) env_from: Vec<RawEnvFromSource>,
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
    #[serde(default)]
    pub(super) security_context: Option<RawSecurityContext>,
}

/// `securityContext`, of a pod or of a container (a pod's has no capabilities,
/// readOnlyRootFilesystem, allowPrivilegeEscalation or privileged; Kube-9 reads them only from
/// containers).
#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawSecurityContext {
    #[serde(default)]
    pub(super) run_as_user: Option<i64>,
    #[serde(default)]
    pub(super) run_as_group: Option<i64>,
    #[serde(default)]
    pub(super) run_as_non_root: Option<bool>,
    #[serde(default)]
    pub(super) read_only_root_filesystem: Option<bool>,
    #[serde(default)]
    pub(super) allow_privilege_escalation: Option<bool>,
    #[serde(default)]
    pub(super) privileged: Option<bool>,
    #[serde(default)]
    pub(super) capabilities: Option<RawCapabilities>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawCapabilities {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) add: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) drop: Vec<String>,
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
    pub(super) value_from: Option<RawEnvVarSource>,
}

/// `valueFrom`: each source present as a key is counted, even when empty, so that "exactly
/// one" can be checked.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawEnvVarSource {
    #[serde(default, deserialize_with = "present")]
    pub(super) config_map_key_ref: Option<RawKeySelector>,
    #[serde(default, deserialize_with = "present")]
    pub(super) secret_key_ref: Option<RawKeySelector>,
    #[serde(default, deserialize_with = "present")]
    pub(super) field_ref: Option<RawFieldRef>,
    /// Read only to refuse it: Kube-9 does not expose resources to containers.
    #[serde(default, deserialize_with = "present")]
    pub(super) resource_field_ref: Option<serde_yaml_ng::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawKeySelector {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) key: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) optional: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawFieldRef {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) field_path: String,
    /// Always `v1` (kubectl writes it back); read so that it is not reported, then dropped.
    #[serde(default)]
    #[allow(dead_code)]
    pub(super) api_version: Option<serde_yaml_ng::Value>,
}

/// `envFrom[]`: a prefix and one of `configMapRef` and `secretRef`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawEnvFromSource {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) prefix: String,
    #[serde(default, deserialize_with = "present")]
    pub(super) config_map_ref: Option<RawObjectRef>,
    #[serde(default, deserialize_with = "present")]
    pub(super) secret_ref: Option<RawObjectRef>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawObjectRef {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) optional: bool,
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
    #[serde(default, deserialize_with = "nullable")]
    pub(super) items: Vec<RawKeyToPath>,
    #[serde(default)]
    pub(super) default_mode: Option<serde_yaml_ng::Value>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) optional: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawSecretRef {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) secret_name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) items: Vec<RawKeyToPath>,
    #[serde(default)]
    pub(super) default_mode: Option<serde_yaml_ng::Value>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) optional: bool,
}

/// A file mode is a number (`420`, `0o644`) or, written the YAML 1.1 way Kubernetes reads,
/// octal with a leading zero (`0644`), which YAML 1.2 leaves a string: kept as written.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawKeyToPath {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) key: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) path: String,
    #[serde(default)]
    pub(super) mode: Option<serde_yaml_ng::Value>,
}

/// A map of strings (`data`, `binaryData`, `stringData`), in key order. Its values may be
/// secret, so no error it gives quotes one: a value must be a string (or null, read as empty),
/// and a number or boolean is refused rather than turned into text (`1.10` would become
/// `1.1`), as Kubernetes refuses it.
#[derive(Default)]
pub(super) struct TextMap(pub(super) BTreeMap<String, String>);

impl<'de> Deserialize<'de> for TextMap {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> de::Visitor<'de> for MapVisitor {
            type Value = TextMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of keys to strings")
            }
            fn visit_unit<E: de::Error>(self) -> Result<TextMap, E> {
                Ok(TextMap::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<TextMap, E> {
                Ok(TextMap::default())
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<TextMap, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((key, Text(value))) = map.next_entry::<String, Text>()? {
                    out.insert(key, value);
                }
                Ok(TextMap(out))
            }
            // Whatever else was written is named by its type only.
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<TextMap, E> {
                Err(not_a_map("a boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<TextMap, E> {
                Err(not_a_map("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<TextMap, E> {
                Err(not_a_map("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<TextMap, E> {
                Err(not_a_map("a number"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<TextMap, E> {
                Err(not_a_map("a string"))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<TextMap, A::Error> {
                Err(not_a_map("a list"))
            }
        }
        d.deserialize_any(MapVisitor)
    }
}

/// One value of a [`TextMap`].
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> de::Visitor<'de> for TextVisitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text(String::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text(String::new()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Text, E> {
                Err(de::Error::custom(
                    "invalid type: a boolean, expected a string (quote it)",
                ))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Text, E> {
                Err(de::Error::custom(
                    "invalid type: a number, expected a string (quote it)",
                ))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Text, E> {
                Err(de::Error::custom(
                    "invalid type: a number, expected a string (quote it)",
                ))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Text, E> {
                Err(de::Error::custom(
                    "invalid type: a number, expected a string (quote it)",
                ))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Text, A::Error> {
                Err(de::Error::custom("invalid type: a list, expected a string"))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Text, A::Error> {
                Err(de::Error::custom(
                    "invalid type: a mapping, expected a string",
                ))
            }
        }
        d.deserialize_any(TextVisitor)
    }
}

/// A [`TextMap`] that is not a mapping, named by its type only.
fn not_a_map<E: de::Error>(got: &str) -> E {
    E::custom(format_args!(
        "invalid type: {got}, expected a mapping of keys to strings"
    ))
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
