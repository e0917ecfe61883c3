//! The checks every object passes before it is stored: kube9ctl runs them to fail fast, kube9d
//! runs them again on everything it receives.
//!
//! Each check returns the first problem as a [`ValidationError`] naming the field in manifest
//! terms (`spec.containers[1].name`), so the message points at the line to fix.
//!
//! Kinds: pods ([`validate_pod`], after [`normalize_pod`]), nodes ([`validate_node_spec`]),
//! namespaces ([`validate_namespace`]), config maps ([`validate_config_map`]) and secrets
//! ([`validate_secret`]). A namespaced object's empty namespace means "the client's", filled
//! in by kube9ctl and kube9d; a non-empty one must be a namespace name. No message about a
//! secret quotes one of its values: only keys are named.

use crate::pb;
use std::collections::{HashMap, HashSet};
use std::fmt;

pub use crate::quantity::{MAX_CPU_MILLIS, MAX_MEMORY_BYTES};

/// Restart policies a pod may ask for; empty means `Always`.
pub const RESTART_POLICIES: [&str; 3] = ["Always", "OnFailure", "Never"];

/// Volume kinds the node agent knows how to provide.
pub const VOLUME_KINDS: [&str; 4] = ["emptyDir", "hostPath", "configMap", "secret"];

/// The pod fields an environment variable may take its value from (`valueFrom.fieldRef`).
pub const FIELD_PATHS: [&str; 4] = [
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "status.podIP",
];

/// What the values of one config map or secret may come to: 1 MiB, as in Kubernetes.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// The largest file mode of a configMap or secret volume's files: `0777`.
pub const MAX_FILE_MODE: u32 = 0o777;

/// The longest `spec.terminationGracePeriodSeconds`: a day. A pod that takes longer to stop
/// holds its node's CPU all that time.
pub const MAX_GRACE_SECONDS: i64 = 86_400;

/// Secret types whose keys are checked, with the keys they need: all of them, except for
/// `kubernetes.io/basic-auth`, which needs one of its two (as in Kubernetes).
const SECRET_TYPE_KEYS: [(&str, &[&str]); 5] = [
    ("kubernetes.io/basic-auth", &["username", "password"]),
    ("kubernetes.io/ssh-auth", &["ssh-privatekey"]),
    ("kubernetes.io/tls", &["tls.crt", "tls.key"]),
    ("kubernetes.io/dockerconfigjson", &[".dockerconfigjson"]),
    ("kubernetes.io/dockercfg", &[".dockercfg"]),
];

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Where, in manifest terms: `metadata.name`, `spec.containers[0].image`, ...
    pub field: String,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl ValidationError {
    /// An error on `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ValidationError {}

type Result<T = (), E = ValidationError> = std::result::Result<T, E>;

/// Checks an object name (field `metadata.name`): an RFC 1123 label.
///
/// `kind` is used in the message only (`pod`, `Node`, ...).
pub fn validate_name(kind: &str, name: &str) -> Result {
    let kind = kind.to_ascii_lowercase();
    check_dns_label(&format!("{kind} name"), name)
        .map_err(|message| ValidationError::new("metadata.name", message))
}

/// Checks the name of an object that Kubernetes names with a DNS subdomain (field
/// `metadata.name`): config maps and secrets. At most 253 characters of lowercase letters,
/// digits, '-' and '.', each '.'-separated part starting and ending with a letter or digit.
pub fn validate_subdomain_name(kind: &str, name: &str) -> Result {
    let kind = kind.to_ascii_lowercase();
    check_dns_subdomain(&format!("{kind} name"), name)
        .map_err(|message| ValidationError::new("metadata.name", message))
}

/// Checks a namespaced object's `metadata.namespace`: empty (the client's namespace) or a
/// namespace name.
pub fn validate_object_namespace(namespace: &str) -> Result {
    if namespace.is_empty() {
        return Ok(());
    }
    check_dns_label("namespace name", namespace)
        .map_err(|message| ValidationError::new("metadata.namespace", message))
}

/// Checks a pod as a client submits it. Run [`normalize_pod`] first: the pod's CPU request
/// must equal the sum of its containers' requests.
pub fn validate_pod(pod: &pb::Pod) -> Result {
    validate_name("pod", &pod.name)?;
    validate_object_namespace(&pod.namespace)?;
    validate_labels("metadata.labels", &pod.labels)?;
    validate_annotations("metadata.annotations", &pod.annotations)?;
    validate_volumes(&pod.volumes)?;
    validate_containers(pod)?;
    if let Some(seconds) = pod.termination_grace_period_seconds {
        if !(0..=MAX_GRACE_SECONDS).contains(&seconds) {
            return Err(ValidationError::new(
                "spec.terminationGracePeriodSeconds",
                format!("{seconds} is out of range: give 0 to {MAX_GRACE_SECONDS} seconds"),
            ));
        }
    }
    if !pod.restart_policy.is_empty() && !RESTART_POLICIES.contains(&pod.restart_policy.as_str()) {
        return Err(ValidationError::new(
            "spec.restartPolicy",
            format!(
                "unsupported value {:?} (supported: {})",
                pod.restart_policy,
                RESTART_POLICIES.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Fills what a pod's spec implies: a container's request defaults to its limit when only the
/// limit is set (as in Kubernetes), and the pod's CPU request is the sum of its containers'.
pub fn normalize_pod(pod: &mut pb::Pod) {
    for c in pod
        .containers
        .iter_mut()
        .chain(pod.init_containers.iter_mut())
    {
        if c.cpu_request_millis == 0 && c.cpu_limit_millis > 0 {
            c.cpu_request_millis = c.cpu_limit_millis;
        }
        if c.memory_request_bytes == 0 && c.memory_limit_bytes > 0 {
            c.memory_request_bytes = c.memory_limit_bytes;
        }
    }
    (pod.cpu_request_millis, pod.memory_request_bytes) = effective_request(pod);
}

/// What a pod reserves on its node, as Kubernetes computes it: the app containers run
/// together and the init containers one at a time before them, so each resource is the larger
/// of the app containers' sum and the largest init container's request.
pub fn effective_request(pod: &pb::Pod) -> (i64, i64) {
    let sum = |f: fn(&pb::Container) -> i64| {
        pod.containers
            .iter()
            .fold(0i64, |total, c| total.saturating_add(f(c)))
    };
    let max_init =
        |f: fn(&pb::Container) -> i64| pod.init_containers.iter().map(f).max().unwrap_or(0);
    let cpu = |c: &pb::Container| c.cpu_request_millis;
    let memory = |c: &pb::Container| c.memory_request_bytes;
    (
        sum(cpu).max(max_init(cpu)),
        sum(memory).max(max_init(memory)),
    )
}

/// Checks a node as written in a manifest or `kube9ctl create node`.
pub fn validate_node_spec(spec: &pb::NodeSpec) -> Result {
    validate_name("node", &spec.name)?;
    validate_labels("metadata.labels", &spec.labels)?;
    if !(1..=MAX_CPU_MILLIS).contains(&spec.cpu_millis) {
        return Err(ValidationError::new(
            "spec.capacity.cpu",
            format!(
                "must be between 1m and 1000 cores, got {}m",
                spec.cpu_millis
            ),
        ));
    }
    if !(0..=MAX_MEMORY_BYTES).contains(&spec.memory_bytes) {
        return Err(ValidationError::new(
            "spec.capacity.memory",
            format!(
                "must be between 0 (not tracked) and {}, got {} bytes",
                crate::quantity::format_memory(MAX_MEMORY_BYTES),
                spec.memory_bytes
            ),
        ));
    }
    Ok(())
}

/// Checks a namespace as a client submits it: its name (an RFC 1123 label) and labels. Its
/// phase and creation time are the server's.
pub fn validate_namespace(ns: &pb::Namespace) -> Result {
    validate_name("namespace", &ns.name)?;
    validate_labels("metadata.labels", &ns.labels)
}

/// Checks a config map: name, namespace, labels, keys (unique across `data` and
/// `binaryData`) and size.
pub fn validate_config_map(cm: &pb::ConfigMap) -> Result {
    validate_subdomain_name("configmap", &cm.name)?;
    validate_object_namespace(&cm.namespace)?;
    validate_labels("metadata.labels", &cm.labels)?;
    for key in sorted_keys(&cm.data) {
        check_config_key(key).map_err(|m| ValidationError::new(format!("data.{key}"), m))?;
    }
    for key in sorted_keys(&cm.binary_data) {
        check_config_key(key).map_err(|m| ValidationError::new(format!("binaryData.{key}"), m))?;
        if cm.data.contains_key(key) {
            return Err(ValidationError::new(
                format!("binaryData.{key}"),
                format!("duplicate of key {key:?} in data: a key is in one of them only"),
            ));
        }
    }
    let total = (cm.data.values().map(String::len))
        .chain(cm.binary_data.values().map(Vec::len))
        .fold(0usize, usize::saturating_add);
    check_config_size("data", "the values of data and binaryData", total)
}

/// Checks a secret: name, namespace, labels, keys, size, and the keys its type needs. Messages
/// name keys, never values.
pub fn validate_secret(secret: &pb::Secret) -> Result {
    validate_subdomain_name("secret", &secret.name)?;
    validate_object_namespace(&secret.namespace)?;
    validate_labels("metadata.labels", &secret.labels)?;
    for key in sorted_keys(&secret.data) {
        check_config_key(key).map_err(|m| ValidationError::new(format!("data.{key}"), m))?;
    }
    let total = (secret.data.values().map(Vec::len)).fold(0usize, usize::saturating_add);
    check_config_size("data", "the values", total)?;
    let Some((secret_type, keys)) = SECRET_TYPE_KEYS.iter().find(|(t, _)| *t == secret.r#type)
    else {
        return Ok(());
    };
    let missing: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| !secret.data.contains_key(*k))
        .collect();
    let needs_one = *secret_type == "kubernetes.io/basic-auth";
    if (needs_one && missing.len() == keys.len()) || (!needs_one && !missing.is_empty()) {
        let quoted: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
        let needed = if needs_one {
            format!("the key {}", quoted.join(" or "))
        } else if keys.len() == 1 {
            format!("the key {}", quoted[0])
        } else {
            format!("the keys {}", quoted.join(" and "))
        };
        return Err(ValidationError::new(
            "data",
            format!("a secret of type {secret_type} needs {needed}"),
        ));
    }
    // Docker configurations are JSON; serde's message is left out, as it may quote the value.
    for key in [".dockerconfigjson", ".dockercfg"] {
        if keys.contains(&key)
            && serde_json::from_slice::<serde::de::IgnoredAny>(&secret.data[key]).is_err()
        {
            return Err(ValidationError::new(
                format!("data.{key}"),
                format!("must be valid JSON for a secret of type {secret_type}"),
            ));
        }
    }
    Ok(())
}

/// Checks a key of a config map or secret: at most 253 characters of letters, digits, '-', '_'
/// and '.', and neither `.` nor `..` nor starting with `..` (it names a file in a volume).
pub fn check_config_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("a key must not be empty".into());
    }
    let chars_ok = key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !chars_ok || key.len() > 253 {
        return Err(format!(
            "invalid key {key:?}: must consist of letters, digits, '-', '_' and '.', at most \
             253 characters"
        ));
    }
    if key == "." || key.starts_with("..") {
        return Err(format!(
            "invalid key {key:?}: must not be \".\" or start with \"..\""
        ));
    }
    Ok(())
}

fn check_config_size(field: &str, what: &str, total: usize) -> Result {
    if total > MAX_CONFIG_BYTES {
        return Err(ValidationError::new(
            field,
            format!(
                "{what} come to {total} bytes, more than the limit of {MAX_CONFIG_BYTES} (1 MiB)"
            ),
        ));
    }
    Ok(())
}

/// Checks label keys and values the way Kubernetes does.
pub fn validate_labels(field: &str, labels: &HashMap<String, String>) -> Result {
    for (key, value) in sorted(labels) {
        check_label_key(key).map_err(|m| ValidationError::new(format!("{field}.{key}"), m))?;
        check_label_value(value).map_err(|m| ValidationError::new(format!("{field}.{key}"), m))?;
    }
    Ok(())
}

/// Checks annotation keys (label-key rules) and their total size (256 KiB, as in Kubernetes).
pub fn validate_annotations(field: &str, annotations: &HashMap<String, String>) -> Result {
    const MAX_TOTAL: usize = 256 * 1024;
    let mut total = 0;
    for (key, value) in sorted(annotations) {
        check_label_key(key).map_err(|m| ValidationError::new(format!("{field}.{key}"), m))?;
        total += key.len() + value.len();
    }
    if total > MAX_TOTAL {
        return Err(ValidationError::new(
            field,
            format!("total size {total} bytes is more than the limit of {MAX_TOTAL}"),
        ));
    }
    Ok(())
}

/// Checks a label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters of `[A-Za-z0-9._-]` that starts and ends alphanumeric.
pub fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let ok = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix
                .split('.')
                .all(|part| check_dns_label("", part).is_ok());
        if !ok {
            return Err(format!(
                "invalid label key {key:?}: the prefix before '/' must be a DNS subdomain \
                 (lowercase letters, digits, '-' and '.')"
            ));
        }
    }
    if name.is_empty() {
        return Err(format!(
            "invalid label key {key:?}: the name part must not be empty"
        ));
    }
    if !is_qualified_name(name) {
        return Err(format!(
            "invalid label key {key:?}: must consist of letters, digits, '-', '_' or '.', \
             start and end with a letter or digit, at most 63 characters (with an optional \
             DNS prefix and '/')"
        ));
    }
    Ok(())
}

/// Checks a label value: empty, or at most 63 characters of `[A-Za-z0-9._-]` that start and
/// end alphanumeric.
pub fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_qualified_name(value) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value {value:?}: must be empty or consist of letters, digits, '-', \
             '_' or '.', start and end with a letter or digit, at most 63 characters"
        ))
    }
}

fn is_qualified_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// An RFC 1123 label; `what` names it in the message (`pod name`, `volume name`).
fn check_dns_label(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    let bytes = name.as_bytes();
    let ok = bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid {what} {name:?}: must consist of lowercase letters, digits and '-', start \
             and end with a letter or digit, at most 63 characters"
        ))
    }
}

/// An RFC 1123 subdomain: at most 253 characters, '.'-separated labels of lowercase letters,
/// digits and '-' that start and end with a letter or digit; `what` names it in the message.
fn check_dns_subdomain(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    let label_ok = |part: &str| {
        let bytes = part.as_bytes();
        !bytes.is_empty()
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    };
    if name.len() <= 253 && name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!(
            "invalid {what} {name:?}: must consist of lowercase letters, digits, '-' and '.', \
             start and end with a letter or digit, at most 253 characters"
        ))
    }
}

fn validate_containers(pod: &pb::Pod) -> Result {
    if pod.containers.is_empty() {
        return Err(ValidationError::new(
            "spec.containers",
            "a pod needs at least one container",
        ));
    }
    let volumes: HashSet<&str> = pod.volumes.iter().map(|v| v.name.as_str()).collect();
    let mut names = HashSet::new();
    let mut total: i64 = 0;
    let app = pod
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("spec.containers[{i}]"), c, true));
    let init = pod
        .init_containers
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("spec.initContainers[{i}]"), c, false));
    for (at, c, is_app) in app.chain(init) {
        check_dns_label("container name", &c.name)
            .map_err(|m| ValidationError::new(format!("{at}.name"), m))?;
        if !names.insert(c.name.as_str()) {
            return Err(ValidationError::new(
                format!("{at}.name"),
                format!("duplicate container name {:?}", c.name),
            ));
        }
        if c.image.trim().is_empty() {
            return Err(ValidationError::new(
                format!("{at}.image"),
                "must not be empty",
            ));
        }
        validate_resources(&at, c)?;
        validate_env(&at, &c.env)?;
        validate_env_from(&at, &c.env_from)?;
        validate_mounts(&at, &c.volume_mounts, &volumes)?;
        validate_pull_policy(&at, &c.image_pull_policy)?;
        for (name, probe) in [
            ("livenessProbe", &c.liveness_probe),
            ("readinessProbe", &c.readiness_probe),
            ("startupProbe", &c.startup_probe),
        ] {
            if let Some(probe) = probe {
                if !is_app {
                    return Err(ValidationError::new(
                        format!("{at}.{name}"),
                        "init containers cannot have probes (they run to completion)",
                    ));
                }
                validate_probe(&format!("{at}.{name}"), probe)?;
            }
        }
        if is_app {
            total = total.saturating_add(c.cpu_request_millis);
        }
    }
    if total > MAX_CPU_MILLIS {
        return Err(ValidationError::new(
            "spec.containers",
            format!("the containers ask for {total}m CPU in total, more than 1000 cores"),
        ));
    }
    let (cpu, _) = effective_request(pod);
    if pod.cpu_request_millis != cpu {
        return Err(ValidationError::new(
            "status.cpuRequestMillis",
            format!(
                "is {} but the containers' CPU requests come to {cpu}",
                pod.cpu_request_millis
            ),
        ));
    }
    Ok(())
}

/// `imagePullPolicy`: Always, IfNotPresent, Never, or empty (Kubernetes' default).
fn validate_pull_policy(at: &str, policy: &str) -> Result {
    const POLICIES: [&str; 3] = ["Always", "IfNotPresent", "Never"];
    if policy.is_empty() || POLICIES.contains(&policy) {
        return Ok(());
    }
    Err(ValidationError::new(
        format!("{at}.imagePullPolicy"),
        format!(
            "unsupported value {policy:?} (supported: {})",
            POLICIES.join(", ")
        ),
    ))
}

fn validate_probe(at: &str, probe: &pb::Probe) -> Result {
    use pb::probe::Handler;
    match &probe.handler {
        Some(Handler::Exec(exec)) if exec.command.is_empty() => Err(ValidationError::new(
            format!("{at}.exec.command"),
            "must not be empty",
        )),
        Some(Handler::HttpGet(get)) if !(1..=65535).contains(&get.port) => Err(
            ValidationError::new(format!("{at}.httpGet.port"), "must be between 1 and 65535"),
        ),
        Some(Handler::HttpGet(get)) if !["", "HTTP", "HTTPS"].contains(&get.scheme.as_str()) => {
            Err(ValidationError::new(
                format!("{at}.httpGet.scheme"),
                format!(
                    "unsupported value {:?} (supported: HTTP, HTTPS)",
                    get.scheme
                ),
            ))
        }
        Some(Handler::TcpSocket(tcp)) if !(1..=65535).contains(&tcp.port) => {
            Err(ValidationError::new(
                format!("{at}.tcpSocket.port"),
                "must be between 1 and 65535",
            ))
        }
        Some(_) => Ok(()),
        None => Err(ValidationError::new(
            at,
            "give exactly one of exec, httpGet and tcpSocket",
        )),
    }
}

fn validate_resources(at: &str, c: &pb::Container) -> Result {
    let cpu = [
        ("requests", c.cpu_request_millis),
        ("limits", c.cpu_limit_millis),
    ];
    for (section, millis) in cpu {
        let field = format!("{at}.resources.{section}.cpu");
        if millis < 0 {
            return Err(ValidationError::new(field, "must not be negative"));
        }
        if millis > MAX_CPU_MILLIS {
            return Err(ValidationError::new(
                field,
                format!("{millis}m is more than 1000 cores, the maximum"),
            ));
        }
    }
    let memory = [
        ("requests", c.memory_request_bytes),
        ("limits", c.memory_limit_bytes),
    ];
    for (section, bytes) in memory {
        let field = format!("{at}.resources.{section}.memory");
        if bytes < 0 {
            return Err(ValidationError::new(field, "must not be negative"));
        }
        if bytes > MAX_MEMORY_BYTES {
            return Err(ValidationError::new(
                field,
                format!("{bytes} bytes is more than 1Pi, the maximum"),
            ));
        }
    }
    if c.cpu_limit_millis > 0 && c.cpu_request_millis > c.cpu_limit_millis {
        return Err(ValidationError::new(
            format!("{at}.resources.requests.cpu"),
            format!(
                "request {}m must be less than or equal to the limit {}m",
                c.cpu_request_millis, c.cpu_limit_millis
            ),
        ));
    }
    if c.memory_limit_bytes > 0 && c.memory_request_bytes > c.memory_limit_bytes {
        return Err(ValidationError::new(
            format!("{at}.resources.requests.memory"),
            format!(
                "request {} bytes must be less than or equal to the limit {} bytes",
                c.memory_request_bytes, c.memory_limit_bytes
            ),
        ));
    }
    Ok(())
}

fn validate_env(at: &str, env: &[pb::EnvVar]) -> Result {
    use pb::env_var_source::Source;
    for (i, var) in env.iter().enumerate() {
        let at = format!("{at}.env[{i}]");
        check_env_name(&var.name).map_err(|m| ValidationError::new(format!("{at}.name"), m))?;
        let Some(from) = &var.value_from else {
            continue;
        };
        let at = format!("{at}.valueFrom");
        if !var.value.is_empty() {
            return Err(ValidationError::new(
                at,
                "must not be set when \"value\" is not empty: give one of them",
            ));
        }
        match &from.source {
            Some(Source::ConfigMapKeyRef(key)) => {
                check_key_selector(&format!("{at}.configMapKeyRef"), "configmap", key)?
            }
            Some(Source::SecretKeyRef(key)) => {
                check_key_selector(&format!("{at}.secretKeyRef"), "secret", key)?
            }
            Some(Source::FieldPath(path)) if !FIELD_PATHS.contains(&path.as_str()) => {
                return Err(ValidationError::new(
                    format!("{at}.fieldRef.fieldPath"),
                    if path.is_empty() {
                        format!("required: one of {}", FIELD_PATHS.join(", "))
                    } else {
                        format!(
                            "unsupported value {path:?} (supported: {})",
                            FIELD_PATHS.join(", ")
                        )
                    },
                ))
            }
            Some(Source::FieldPath(_)) => {}
            None => {
                return Err(ValidationError::new(
                    at,
                    "give exactly one of configMapKeyRef, secretKeyRef and fieldRef",
                ))
            }
        }
    }
    Ok(())
}

/// An environment variable name as Kubernetes accepts it (since 1.32): printable ASCII
/// characters other than '='.
fn check_env_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if !name
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'=')
    {
        return Err(format!(
            "invalid environment variable name {name:?}: must consist of printable ASCII \
             characters other than '='"
        ));
    }
    Ok(())
}

fn check_key_selector(at: &str, kind: &str, key: &pb::KeySelector) -> Result {
    check_object_ref(at, kind, &key.name)?;
    if key.key.is_empty() {
        return Err(ValidationError::new(
            format!("{at}.key"),
            "must not be empty",
        ));
    }
    check_config_key(&key.key).map_err(|m| ValidationError::new(format!("{at}.key"), m))
}

/// The name of a config map or secret that a pod refers to, at `{at}.name`.
fn check_object_ref(at: &str, kind: &str, name: &str) -> Result {
    if name.is_empty() {
        return Err(ValidationError::new(
            format!("{at}.name"),
            "must not be empty",
        ));
    }
    check_dns_subdomain(&format!("{kind} name"), name)
        .map_err(|m| ValidationError::new(format!("{at}.name"), m))
}

fn validate_env_from(at: &str, env_from: &[pb::EnvFromSource]) -> Result {
    use pb::env_from_source::Source;
    for (i, from) in env_from.iter().enumerate() {
        let at = format!("{at}.envFrom[{i}]");
        if !from.prefix.is_empty() {
            check_env_name(&from.prefix)
                .map_err(|m| ValidationError::new(format!("{at}.prefix"), m))?;
        }
        match &from.source {
            Some(Source::ConfigMapRef(r)) => {
                check_object_ref(&format!("{at}.configMapRef"), "configmap", &r.name)?
            }
            Some(Source::SecretRef(r)) => {
                check_object_ref(&format!("{at}.secretRef"), "secret", &r.name)?
            }
            None => {
                return Err(ValidationError::new(
                    at,
                    "give exactly one of configMapRef and secretRef",
                ))
            }
        }
    }
    Ok(())
}

fn validate_mounts(at: &str, mounts: &[pb::VolumeMount], volumes: &HashSet<&str>) -> Result {
    let mut paths = HashSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let at = format!("{at}.volumeMounts[{i}]");
        if !volumes.contains(m.name.as_str()) {
            return Err(ValidationError::new(
                format!("{at}.name"),
                format!("volume {:?} is not declared in spec.volumes", m.name),
            ));
        }
        if !m.mount_path.starts_with('/') {
            return Err(ValidationError::new(
                format!("{at}.mountPath"),
                format!("must be an absolute path, got {:?}", m.mount_path),
            ));
        }
        if !paths.insert(m.mount_path.trim_end_matches('/')) {
            return Err(ValidationError::new(
                format!("{at}.mountPath"),
                format!("{:?} is mounted more than once", m.mount_path),
            ));
        }
    }
    Ok(())
}

fn validate_volumes(volumes: &[pb::Volume]) -> Result {
    let mut names = HashSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let at = format!("spec.volumes[{i}]");
        check_dns_label("volume name", &v.name)
            .map_err(|m| ValidationError::new(format!("{at}.name"), m))?;
        if !names.insert(v.name.as_str()) {
            return Err(ValidationError::new(
                format!("{at}.name"),
                format!("duplicate volume name {:?}", v.name),
            ));
        }
        match v.kind.as_str() {
            "emptyDir" => {
                if !(0..=MAX_MEMORY_BYTES).contains(&v.size_bytes) {
                    return Err(ValidationError::new(
                        format!("{at}.emptyDir.sizeLimit"),
                        "must be between 0 and 1Pi",
                    ));
                }
            }
            "hostPath" if !v.source.starts_with('/') => {
                return Err(ValidationError::new(
                    format!("{at}.hostPath.path"),
                    format!("must be an absolute path, got {:?}", v.source),
                ));
            }
            "configMap" => validate_projection(&format!("{at}.configMap"), "name", v)?,
            "secret" => validate_projection(&format!("{at}.secret"), "secretName", v)?,
            "hostPath" => {}
            other => {
                return Err(ValidationError::new(
                    at,
                    format!(
                        "unsupported volume kind {other:?} (supported: {})",
                        VOLUME_KINDS.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A configMap or secret volume (at `at`, its name at `at.name_field`): the object's name, the
/// file modes, and items that name valid keys and relative paths inside the volume.
fn validate_projection(at: &str, name_field: &str, v: &pb::Volume) -> Result {
    let kind = if v.kind == "secret" {
        "secret"
    } else {
        "configmap"
    };
    if v.source.is_empty() {
        return Err(ValidationError::new(
            format!("{at}.{name_field}"),
            "must not be empty",
        ));
    }
    check_dns_subdomain(&format!("{kind} name"), &v.source)
        .map_err(|m| ValidationError::new(format!("{at}.{name_field}"), m))?;
    check_mode(&format!("{at}.defaultMode"), v.default_mode)?;
    let mut paths = HashSet::new();
    for (j, item) in v.items.iter().enumerate() {
        let at = format!("{at}.items[{j}]");
        if item.key.is_empty() {
            return Err(ValidationError::new(
                format!("{at}.key"),
                "must not be empty",
            ));
        }
        check_config_key(&item.key).map_err(|m| ValidationError::new(format!("{at}.key"), m))?;
        check_item_path(&item.path).map_err(|m| ValidationError::new(format!("{at}.path"), m))?;
        if !paths.insert(item.path.trim_start_matches("./")) {
            return Err(ValidationError::new(
                format!("{at}.path"),
                format!("duplicate path {:?}", item.path),
            ));
        }
        check_mode(&format!("{at}.mode"), item.mode)?;
    }
    Ok(())
}

/// A file's path inside a volume: relative, without a `..` component, not the volume itself.
fn check_item_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("must not be empty".into());
    }
    if path.starts_with('/') {
        return Err(format!(
            "must be a relative path inside the volume, got the absolute path {path:?}"
        ));
    }
    if path.split('/').any(|part| part == "..") {
        return Err(format!("must not contain '..', got {path:?}"));
    }
    if path.starts_with("..") {
        return Err(format!("must not start with '..', got {path:?}"));
    }
    if path.split('/').all(|part| part.is_empty() || part == ".") {
        return Err(format!("must name a file inside the volume, got {path:?}"));
    }
    Ok(())
}

fn check_mode(field: &str, mode: u32) -> Result {
    if mode > MAX_FILE_MODE {
        return Err(ValidationError::new(
            field,
            format!(
                "must be a file mode between 0 and 0777 (octal) or 511 (decimal), got {mode} \
                 (0{mode:o} in octal)"
            ),
        ));
    }
    Ok(())
}

/// A map's keys in order, so the first error reported is the same every run.
fn sorted_keys<V>(map: &HashMap<String, V>) -> Vec<&String> {
    let mut keys: Vec<_> = map.keys().collect();
    keys.sort();
    keys
}

/// Map entries in key order, so the first error reported is the same every run.
fn sorted(map: &HashMap<String, String>) -> Vec<(&String, &String)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort();
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str) -> pb::Container {
        pb::Container {
            name: name.into(),
            image: "nginx".into(),
            cpu_request_millis: 100,
            ..Default::default()
        }
    }

    fn pod() -> pb::Pod {
        let mut pod = pb::Pod {
            name: "web".into(),
            labels: [("app".to_string(), "web".to_string())].into(),
            containers: vec![container("main")],
            ..Default::default()
        };
        normalize_pod(&mut pod);
        pod
    }

    fn error(pod: &pb::Pod) -> String {
        validate_pod(pod).unwrap_err().to_string()
    }

    #[test]
    fn a_plain_pod_is_valid() {
        assert_eq!(validate_pod(&pod()), Ok(()));
    }

    #[test]
    fn names_must_be_rfc1123_labels() {
        assert_eq!(validate_name("pod", "web-1"), Ok(()));
        assert_eq!(validate_name("pod", "a"), Ok(()));
        assert_eq!(validate_name("pod", &"a".repeat(63)), Ok(()));
        let err = validate_name("Pod", "Web_1").unwrap_err();
        assert_eq!(err.field, "metadata.name");
        assert_eq!(
            err.message,
            "invalid pod name \"Web_1\": must consist of lowercase letters, digits and '-', \
             start and end with a letter or digit, at most 63 characters"
        );
        for bad in ["-web", "web-", "web.1", &"a".repeat(64), "wéb"] {
            assert!(validate_name("node", bad).is_err(), "{bad}");
        }
        assert_eq!(
            validate_name("node", "").unwrap_err().to_string(),
            "metadata.name: node name must not be empty"
        );
    }

    #[test]
    fn labels_follow_kubernetes_rules() {
        let ok: HashMap<String, String> = [
            ("app", "web"),
            ("example.com/tier", "Front_End.1"),
            ("empty", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(validate_labels("metadata.labels", &ok), Ok(()));
        for (k, v) in [
            ("bad key", "x"),
            ("/x", "x"),
            ("a/", "x"),
            ("app", "no spaces"),
            ("app", "-x"),
        ] {
            let labels = [(k.to_string(), v.to_string())].into();
            assert!(
                validate_labels("metadata.labels", &labels).is_err(),
                "{k}={v}"
            );
        }
    }

    #[test]
    fn a_pod_needs_a_container() {
        let mut p = pod();
        p.containers.clear();
        normalize_pod(&mut p);
        assert_eq!(
            error(&p),
            "spec.containers: a pod needs at least one container"
        );
    }

    #[test]
    fn container_names_are_valid_and_unique() {
        let mut p = pod();
        p.containers.push(container("main"));
        normalize_pod(&mut p);
        assert_eq!(
            error(&p),
            "spec.containers[1].name: duplicate container name \"main\""
        );
        p.containers[1].name = "Side".into();
        assert!(error(&p).starts_with("spec.containers[1].name: invalid container name \"Side\""));
    }

    #[test]
    fn images_are_required() {
        let mut p = pod();
        p.containers[0].image = " ".into();
        assert_eq!(error(&p), "spec.containers[0].image: must not be empty");
    }

    #[test]
    fn resources_are_bounded_and_limits_cover_requests() {
        let mut p = pod();
        p.containers[0].cpu_request_millis = -1;
        normalize_pod(&mut p);
        assert_eq!(
            error(&p),
            "spec.containers[0].resources.requests.cpu: must not be negative"
        );

        let mut p = pod();
        p.containers[0].cpu_limit_millis = MAX_CPU_MILLIS + 1;
        assert!(error(&p).contains("more than 1000 cores"));

        let mut p = pod();
        p.containers[0].memory_limit_bytes = MAX_MEMORY_BYTES + 1;
        assert!(error(&p).starts_with("spec.containers[0].resources.limits.memory"));

        let mut p = pod();
        p.containers[0].cpu_request_millis = 2000;
        p.containers[0].cpu_limit_millis = 1000;
        normalize_pod(&mut p);
        assert_eq!(
            error(&p),
            "spec.containers[0].resources.requests.cpu: request 2000m must be less than or \
             equal to the limit 1000m"
        );
    }

    #[test]
    fn normalize_defaults_requests_to_limits_and_sums_cpu() {
        let mut p = pod();
        p.containers.push(pb::Container {
            cpu_request_millis: 0,
            cpu_limit_millis: 300,
            memory_limit_bytes: 1 << 20,
            ..container("side")
        });
        normalize_pod(&mut p);
        assert_eq!(p.containers[1].cpu_request_millis, 300);
        assert_eq!(p.containers[1].memory_request_bytes, 1 << 20);
        assert_eq!(p.cpu_request_millis, 400);
        assert_eq!(validate_pod(&p), Ok(()));
    }

    #[test]
    fn the_pod_cpu_request_must_match_its_containers() {
        let mut p = pod();
        p.cpu_request_millis = 5;
        assert_eq!(
            error(&p),
            "status.cpuRequestMillis: is 5 but the containers' CPU requests come to 100"
        );
    }

    #[test]
    fn env_names_are_non_empty_without_equals() {
        let mut p = pod();
        p.containers[0].env = vec![pb::EnvVar {
            name: "A=B".into(),
            value: "x".into(),
            ..Default::default()
        }];
        assert!(error(&p).starts_with("spec.containers[0].env[0].name: invalid environment"));
        p.containers[0].env[0].name.clear();
        assert_eq!(
            error(&p),
            "spec.containers[0].env[0].name: must not be empty"
        );
    }

    #[test]
    fn mounts_name_declared_volumes_at_absolute_paths() {
        let mut p = pod();
        p.containers[0].volume_mounts = vec![pb::VolumeMount {
            name: "data".into(),
            mount_path: "/data".into(),
            read_only: false,
            ..Default::default()
        }];
        assert_eq!(
            error(&p),
            "spec.containers[0].volumeMounts[0].name: volume \"data\" is not declared in spec.volumes"
        );
        p.volumes = vec![pb::Volume {
            name: "data".into(),
            kind: "emptyDir".into(),
            ..Default::default()
        }];
        assert_eq!(validate_pod(&p), Ok(()));
        p.containers[0].volume_mounts[0].mount_path = "data".into();
        assert_eq!(
            error(&p),
            "spec.containers[0].volumeMounts[0].mountPath: must be an absolute path, got \"data\""
        );
    }

    #[test]
    fn volumes_are_named_once_with_a_known_kind() {
        let mut p = pod();
        let v = pb::Volume {
            name: "data".into(),
            kind: "emptyDir".into(),
            ..Default::default()
        };
        p.volumes = vec![v.clone(), v];
        assert_eq!(
            error(&p),
            "spec.volumes[1].name: duplicate volume name \"data\""
        );
        p.volumes.pop();
        p.volumes[0].kind = "nfs".into();
        assert!(error(&p).starts_with("spec.volumes[0]: unsupported volume kind \"nfs\""));
        p.volumes[0].kind = "hostPath".into();
        p.volumes[0].source = "tmp".into();
        assert_eq!(
            error(&p),
            "spec.volumes[0].hostPath.path: must be an absolute path, got \"tmp\""
        );
    }

    #[test]
    fn the_grace_period_is_zero_to_a_day() {
        let mut p = pod();
        for ok in [None, Some(0), Some(30), Some(MAX_GRACE_SECONDS)] {
            p.termination_grace_period_seconds = ok;
            assert_eq!(validate_pod(&p), Ok(()));
        }
        p.termination_grace_period_seconds = Some(-1);
        assert_eq!(
            error(&p),
            "spec.terminationGracePeriodSeconds: -1 is out of range: give 0 to 86400 seconds"
        );
        p.termination_grace_period_seconds = Some(MAX_GRACE_SECONDS + 1);
        assert!(error(&p).contains("86401 is out of range"));
    }

    #[test]
    fn restart_policy_is_one_of_three() {
        let mut p = pod();
        for ok in ["", "Always", "OnFailure", "Never"] {
            p.restart_policy = ok.into();
            assert_eq!(validate_pod(&p), Ok(()));
        }
        p.restart_policy = "Sometimes".into();
        assert_eq!(
            error(&p),
            "spec.restartPolicy: unsupported value \"Sometimes\" (supported: Always, OnFailure, Never)"
        );
    }

    #[test]
    fn env_sources_are_checked_as_kube9d_receives_them() {
        use pb::env_var_source::Source;
        let mut p = pod();
        p.containers[0].env = vec![pb::EnvVar {
            name: "A".into(),
            value: String::new(),
            value_from: Some(pb::EnvVarSource { source: None }),
        }];
        assert_eq!(
            error(&p),
            "spec.containers[0].env[0].valueFrom: give exactly one of configMapKeyRef, \
             secretKeyRef and fieldRef"
        );
        p.containers[0].env[0].value_from = Some(pb::EnvVarSource {
            source: Some(Source::FieldPath("metadata.namespace".into())),
        });
        assert_eq!(validate_pod(&p), Ok(()));
        p.containers[0].env[0].value = "x".into();
        assert!(error(&p).starts_with("spec.containers[0].env[0].valueFrom: must not be set"));
        p.containers[0].env[0].value.clear();
        p.containers[0].env[0].value_from = Some(pb::EnvVarSource {
            source: Some(Source::FieldPath(String::new())),
        });
        assert_eq!(
            error(&p),
            "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: required: one of \
             metadata.name, metadata.namespace, spec.nodeName, status.podIP"
        );
        p.containers[0].env.clear();
        p.containers[0].env_from = vec![pb::EnvFromSource::default()];
        assert_eq!(
            error(&p),
            "spec.containers[0].envFrom[0]: give exactly one of configMapRef and secretRef"
        );
    }

    #[test]
    fn projected_volumes_name_their_object_and_stay_inside() {
        let mut p = pod();
        p.volumes = vec![pb::Volume {
            name: "conf".into(),
            kind: "configMap".into(),
            source: "game-demo".into(),
            default_mode: 0o644,
            items: vec![pb::KeyToPath {
                key: "game.properties".into(),
                path: "conf/game.properties".into(),
                mode: 0o600,
            }],
            ..Default::default()
        }];
        assert_eq!(validate_pod(&p), Ok(()));
        p.volumes[0].default_mode = 0o1000;
        assert_eq!(
            error(&p),
            "spec.volumes[0].configMap.defaultMode: must be a file mode between 0 and 0777 \
             (octal) or 511 (decimal), got 512 (01000 in octal)"
        );
        p.volumes[0].default_mode = 0;
        for bad in ["..", "../x", "a/../../x", "/x", "", ".", "./", "..data"] {
            p.volumes[0].items[0].path = bad.into();
            assert!(
                error(&p).starts_with("spec.volumes[0].configMap.items[0].path: "),
                "{bad}"
            );
        }
        p.volumes[0].items[0].path = "x".into();
        p.volumes[0].kind = "secret".into();
        p.volumes[0].source.clear();
        assert_eq!(
            error(&p),
            "spec.volumes[0].secret.secretName: must not be empty"
        );
    }

    #[test]
    fn namespaces_config_maps_and_secrets() {
        let ns = |name: &str| pb::Namespace {
            name: name.into(),
            ..Default::default()
        };
        assert_eq!(validate_namespace(&ns("prod")), Ok(()));
        assert_eq!(
            validate_namespace(&ns("")).unwrap_err().to_string(),
            "metadata.name: namespace name must not be empty"
        );
        assert!(validate_namespace(&ns(&"a".repeat(64))).is_err());

        let mut cm = pb::ConfigMap {
            name: "game-demo".into(),
            namespace: "prod".into(),
            data: [("a".to_string(), "1".to_string())].into(),
            binary_data: [("b".to_string(), vec![0u8; 10])].into(),
            ..Default::default()
        };
        assert_eq!(validate_config_map(&cm), Ok(()));
        cm.namespace = "no_such".into();
        assert_eq!(
            validate_config_map(&cm).unwrap_err().field,
            "metadata.namespace"
        );
        cm.namespace.clear();
        cm.binary_data
            .insert("big".into(), vec![0u8; MAX_CONFIG_BYTES]);
        assert_eq!(validate_config_map(&cm).unwrap_err().field, "data");

        let mut secret = pb::Secret {
            name: "db.example.com".into(),
            r#type: "kubernetes.io/ssh-auth".into(),
            data: [("ssh-privatekey".to_string(), b"hunter2".to_vec())].into(),
            ..Default::default()
        };
        assert_eq!(validate_secret(&secret), Ok(()));
        secret.data.clear();
        let e = validate_secret(&secret).unwrap_err().to_string();
        assert_eq!(
            e,
            "data: a secret of type kubernetes.io/ssh-auth needs the key \"ssh-privatekey\""
        );
        secret.r#type = "kubernetes.io/dockercfg".into();
        secret.data.insert(".dockercfg".into(), b"hunter2".to_vec());
        let e = validate_secret(&secret).unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        secret.r#type.clear();
        secret.data.insert("".into(), Vec::new());
        assert_eq!(
            validate_secret(&secret).unwrap_err().to_string(),
            "data.: a key must not be empty"
        );
    }

    #[test]
    fn node_cpu_must_be_positive_and_bounded() {
        let mut spec = pb::NodeSpec {
            name: "n1".into(),
            cpu_millis: 4000,
            ..Default::default()
        };
        assert_eq!(validate_node_spec(&spec), Ok(()));
        spec.cpu_millis = 0;
        assert!(validate_node_spec(&spec)
            .unwrap_err()
            .to_string()
            .starts_with("spec.capacity.cpu"));
        spec.cpu_millis = MAX_CPU_MILLIS + 1;
        assert!(validate_node_spec(&spec).is_err());
        spec.cpu_millis = 1;
        spec.name = "N1".into();
        assert_eq!(
            validate_node_spec(&spec).unwrap_err().field,
            "metadata.name"
        );
    }
}
