//! Conversion of the serde mirror ([`super::raw`]) into wire types: [`pb::Pod`],
//! [`pb::NodeSpec`], [`pb::Namespace`], [`pb::ConfigMap`] and [`pb::Secret`].
//!
//! Quantities are parsed here (`500m`, `64Mi`), volume sources are picked (exactly one of
//! `emptyDir`, `hostPath`, `configMap`, `secret`), as are environment sources (exactly one of
//! `configMapKeyRef`, `secretKeyRef`, `fieldRef`), file modes read (`0644` or `420`), base64
//! decoded, and a pod is normalized. A problem is a [`ValidationError`] naming the field
//! (`spec.containers[0].resources.requests.cpu`); the pipeline in `mod.rs` adds which document
//! it is in. No message quotes a value of a secret.
//!
//! Imports only [`super::raw`] from the rest of `manifest` (and [`crate::base64`]).

use super::raw::{
    Quantity, RawContainer, RawEnvFromSource, RawEnvVar, RawKeyToPath, RawObject, RawProbe,
    RawSecurityContext, RawVolume, TextMap,
};
use crate::base64;
use crate::pb;
use crate::quantity::{parse_cpu, parse_memory, QuantityError};
use crate::validate::{check_config_key, normalize_pod, ValidationError, MAX_FILE_MODE};
use std::collections::HashMap;

/// A pod from a document of kind `Pod`, normalized; the caller validates it.
pub(super) fn pod_from(raw: RawObject) -> Result<pb::Pod, ValidationError> {
    let spec = raw.spec;
    let mut pod = pb::Pod {
        name: raw.metadata.name,
        namespace: raw.metadata.namespace,
        labels: raw.metadata.labels,
        annotations: raw.metadata.annotations,
        restart_policy: spec.restart_policy,
        termination_grace_period_seconds: spec.termination_grace_period_seconds,
        ..Default::default()
    };
    let pod_security = spec.security_context.unwrap_or_default();
    for (i, c) in spec.containers.into_iter().enumerate() {
        let at = format!("spec.containers[{i}]");
        let security = security_context(&at, &pod_security, c.security_context.clone())?;
        let mut container = container_from(&at, c)?;
        container.security_context = security;
        pod.containers.push(container);
    }
    for (i, c) in spec.init_containers.into_iter().enumerate() {
        let at = format!("spec.initContainers[{i}]");
        let security = security_context(&at, &pod_security, c.security_context.clone())?;
        let mut container = container_from(&at, c)?;
        container.security_context = security;
        pod.init_containers.push(container);
    }
    for (i, v) in spec.volumes.into_iter().enumerate() {
        pod.volumes
            .push(volume_from(&format!("spec.volumes[{i}]"), v)?);
    }
    normalize_pod(&mut pod);
    Ok(pod)
}

/// A container's securityContext with the pod's merged in (the container's own fields win, as
/// in Kubernetes); `None` when neither says anything.
fn security_context(
    at: &str,
    pod: &RawSecurityContext,
    own: Option<RawSecurityContext>,
) -> Result<Option<pb::SecurityContext>, ValidationError> {
    let own = own.unwrap_or_default();
    let id = |field: &str, v: Option<i64>| match v {
        Some(n) if !(0..=i64::from(u32::MAX - 1)).contains(&n) => Err(ValidationError::new(
            format!("{at}.securityContext.{field}"),
            format!("{n} is not a user or group id (0 to 4294967294)"),
        )),
        v => Ok(v),
    };
    let caps = own.capabilities.unwrap_or_default();
    for (field, names) in [("add", &caps.add), ("drop", &caps.drop)] {
        for (i, name) in names.iter().enumerate() {
            let bare = name.strip_prefix("CAP_").unwrap_or(name);
            if bare.is_empty() || !bare.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                return Err(ValidationError::new(
                    format!("{at}.securityContext.capabilities.{field}[{i}]"),
                    format!("{name:?} is not a capability name (like NET_ADMIN or ALL)"),
                ));
            }
        }
    }
    let sc = pb::SecurityContext {
        run_as_user: id("runAsUser", own.run_as_user.or(pod.run_as_user))?,
        run_as_group: id("runAsGroup", own.run_as_group.or(pod.run_as_group))?,
        run_as_non_root: own.run_as_non_root.or(pod.run_as_non_root).unwrap_or(false),
        read_only_root_filesystem: own.read_only_root_filesystem.unwrap_or(false),
        capabilities_add: caps.add,
        capabilities_drop: caps.drop,
        allow_privilege_escalation: own.allow_privilege_escalation,
        privileged: own.privileged.unwrap_or(false),
    };
    if sc.run_as_non_root && sc.run_as_user == Some(0) {
        return Err(ValidationError::new(
            format!("{at}.securityContext.runAsNonRoot"),
            "runAsNonRoot and runAsUser: 0 contradict each other",
        ));
    }
    if sc.privileged && sc.allow_privilege_escalation == Some(false) {
        return Err(ValidationError::new(
            format!("{at}.securityContext.allowPrivilegeEscalation"),
            "cannot be false when privileged is true",
        ));
    }
    Ok((sc != pb::SecurityContext::default()).then_some(sc))
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
        env.push(env_var_from(&format!("{at}.env[{i}]"), var)?);
    }
    let mut env_from = Vec::with_capacity(c.env_from.len());
    for (i, from) in c.env_from.into_iter().enumerate() {
        env_from.push(env_from_source(&format!("{at}.envFrom[{i}]"), from)?);
    }
    let probe = |name: &str, p: Option<RawProbe>| {
        p.map(|p| probe_from(&format!("{at}.{name}"), p))
            .transpose()
    };
    Ok(pb::Container {
        liveness_probe: probe("livenessProbe", c.liveness_probe)?,
        readiness_probe: probe("readinessProbe", c.readiness_probe)?,
        startup_probe: probe("startupProbe", c.startup_probe)?,
        image_pull_policy: c.image_pull_policy,
        cpu_request_millis: cpu("requests", &resources.requests.cpu)?,
        cpu_limit_millis: cpu("limits", &resources.limits.cpu)?,
        memory_request_bytes: memory("requests", &resources.requests.memory)?,
        memory_limit_bytes: memory("limits", &resources.limits.memory)?,
        name: c.name,
        image: c.image,
        command: c.command,
        args: c.args,
        env,
        env_from,
        working_dir: c.working_dir,
        volume_mounts: c
            .volume_mounts
            .into_iter()
            .map(|m| pb::VolumeMount {
                name: m.name,
                mount_path: m.mount_path,
                read_only: m.read_only,
                sub_path: m.sub_path,
            })
            .collect(),
        ..Default::default()
    })
}

/// An environment variable: `value`, or `valueFrom` with exactly one source.
fn env_var_from(at: &str, var: RawEnvVar) -> Result<pb::EnvVar, ValidationError> {
    use pb::env_var_source::Source;
    let value = var.value.unwrap_or_default();
    let Some(from) = var.value_from else {
        return Ok(pb::EnvVar {
            name: var.name,
            value,
            value_from: None,
        });
    };
    let at = format!("{at}.valueFrom");
    if !value.is_empty() {
        // As in Kubernetes; an empty `value` next to `valueFrom` is tolerated.
        return Err(ValidationError::new(
            at,
            "must not be set when \"value\" is not empty: give one of them",
        ));
    }
    if from.resource_field_ref.is_some() {
        return Err(ValidationError::new(
            format!("{at}.resourceFieldRef"),
            "not supported (supported: configMapKeyRef, secretKeyRef, fieldRef)",
        ));
    }
    let key = |k: super::raw::RawKeySelector| pb::KeySelector {
        name: k.name,
        key: k.key,
        optional: k.optional,
    };
    let mut sources = Vec::new();
    if let Some(k) = from.config_map_key_ref {
        sources.push(("configMapKeyRef", Source::ConfigMapKeyRef(key(k))));
    }
    if let Some(k) = from.secret_key_ref {
        sources.push(("secretKeyRef", Source::SecretKeyRef(key(k))));
    }
    if let Some(f) = from.field_ref {
        sources.push(("fieldRef", Source::FieldPath(f.field_path)));
    }
    let source = exactly_one(&at, sources, "configMapKeyRef, secretKeyRef and fieldRef")?;
    Ok(pb::EnvVar {
        name: var.name,
        value,
        value_from: Some(pb::EnvVarSource {
            source: Some(source),
        }),
    })
}

/// `envFrom[]`: a prefix and exactly one of `configMapRef` and `secretRef`.
fn env_from_source(at: &str, from: RawEnvFromSource) -> Result<pb::EnvFromSource, ValidationError> {
    use pb::env_from_source::Source;
    let object = |r: super::raw::RawObjectRef| pb::ObjectSelector {
        name: r.name,
        optional: r.optional,
    };
    let mut sources = Vec::new();
    if let Some(r) = from.config_map_ref {
        sources.push(("configMapRef", Source::ConfigMapRef(object(r))));
    }
    if let Some(r) = from.secret_ref {
        sources.push(("secretRef", Source::SecretRef(object(r))));
    }
    Ok(pb::EnvFromSource {
        prefix: from.prefix,
        source: Some(exactly_one(at, sources, "configMapRef and secretRef")?),
    })
}

/// The one source given at `at`, else an error naming the `choices`.
fn exactly_one<T>(
    at: &str,
    mut sources: Vec<(&str, T)>,
    choices: &str,
) -> Result<T, ValidationError> {
    match sources.len() {
        1 => Ok(sources.pop().expect("one source").1),
        0 => Err(ValidationError::new(
            at,
            format!("give exactly one of {choices}"),
        )),
        _ => {
            let given: Vec<_> = sources.iter().map(|(name, _)| *name).collect();
            Err(ValidationError::new(
                at,
                format!(
                    "more than one source ({}); give exactly one of {choices}",
                    given.join(", ")
                ),
            ))
        }
    }
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
        let size_bytes = quantity(
            &format!("{at}.emptyDir.sizeLimit"),
            &empty_dir.size_limit,
            parse_memory,
        )?;
        sources.push(pb::Volume {
            kind: "emptyDir".into(),
            size_bytes,
            medium: empty_dir.medium.clone(),
            ..Default::default()
        });
    }
    if let Some(host_path) = v.host_path {
        sources.push(pb::Volume {
            kind: "hostPath".into(),
            source: host_path.path,
            ..Default::default()
        });
    }
    if let Some(c) = v.config_map {
        let at = format!("{at}.configMap");
        sources.push(pb::Volume {
            kind: "configMap".into(),
            source: c.name,
            items: items_from(&at, c.items)?,
            default_mode: mode(&format!("{at}.defaultMode"), c.default_mode)?,
            optional: c.optional,
            ..Default::default()
        });
    }
    if let Some(s) = v.secret {
        let at = format!("{at}.secret");
        sources.push(pb::Volume {
            kind: "secret".into(),
            source: s.secret_name,
            items: items_from(&at, s.items)?,
            default_mode: mode(&format!("{at}.defaultMode"), s.default_mode)?,
            optional: s.optional,
            ..Default::default()
        });
    }
    if sources.len() > 1 {
        let kinds: Vec<_> = sources.iter().map(|v| v.kind.as_str()).collect();
        return Err(ValidationError::new(
            at,
            format!(
                "more than one volume source ({}); give exactly one",
                kinds.join(", ")
            ),
        ));
    }
    // As in Kubernetes, a volume without a source is an emptyDir.
    let volume = sources.pop().unwrap_or_else(|| pb::Volume {
        kind: "emptyDir".into(),
        ..Default::default()
    });
    Ok(pb::Volume {
        name: v.name,
        ..volume
    })
}

fn items_from(at: &str, items: Vec<RawKeyToPath>) -> Result<Vec<pb::KeyToPath>, ValidationError> {
    items
        .into_iter()
        .enumerate()
        .map(|(j, item)| {
            Ok(pb::KeyToPath {
                mode: mode(&format!("{at}.items[{j}].mode"), item.mode)?,
                key: item.key,
                path: item.path,
            })
        })
        .collect()
}

/// A file mode as written: a number (`420`, `0o644`), or octal with a leading zero (`0644`),
/// which Kubernetes' YAML 1.1 reads as octal and YAML 1.2 leaves a string. Absent is 0 (the
/// default). The range is [`crate::validate`]'s to check; this refuses what is no mode at all.
fn mode(at: &str, value: Option<serde_yaml_ng::Value>) -> Result<u32, ValidationError> {
    use serde_yaml_ng::Value;
    let range = || {
        ValidationError::new(
            at,
            format!(
                "must be a file mode between 0 and 0777 (octal) or 511 (decimal), got {}",
                match &value {
                    Some(Value::String(s)) => format!("{s:?}"),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => "something else".into(),
                }
            ),
        )
    };
    match &value {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(m) if m <= u64::from(MAX_FILE_MODE) => Ok(m as u32),
            _ => Err(range()),
        },
        Some(Value::String(s))
            if s.len() > 1 && s.starts_with('0') && s.bytes().all(|b| matches!(b, b'0'..=b'7')) =>
        {
            match u32::from_str_radix(s, 8) {
                Ok(m) if m <= MAX_FILE_MODE => Ok(m),
                _ => Err(range()),
            }
        }
        Some(_) => Err(range()),
    }
}

/// A node from a document of kind `Node`: its CPU capacity from `spec`, else from `status`.
pub(super) fn node_from(raw: RawObject) -> Result<pb::NodeSpec, ValidationError> {
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
    let memory_bytes = match (&raw.spec.capacity.memory, &raw.status.capacity.memory) {
        (Some(_), _) => quantity(
            "spec.capacity.memory",
            &raw.spec.capacity.memory,
            parse_memory,
        )?,
        (None, Some(_)) => quantity(
            "status.capacity.memory",
            &raw.status.capacity.memory,
            parse_memory,
        )?,
        (None, None) => 0,
    };
    Ok(pb::NodeSpec {
        name: raw.metadata.name,
        cpu_millis,
        labels: raw.metadata.labels,
        memory_bytes,
    })
}

/// A namespace from a document of kind `Namespace`: its name and labels (a `metadata.namespace`
/// is ignored, as kubectl ignores it on cluster-wide objects).
pub(super) fn namespace_from(raw: RawObject) -> Result<pb::Namespace, ValidationError> {
    Ok(pb::Namespace {
        name: raw.metadata.name,
        labels: raw.metadata.labels,
        ..Default::default()
    })
}

/// A config map from a document of kind `ConfigMap`: `data` as text, `binaryData` decoded
/// from base64.
pub(super) fn config_map_from(raw: RawObject) -> Result<pb::ConfigMap, ValidationError> {
    Ok(pb::ConfigMap {
        binary_data: decoded("binaryData", raw.binary_data)?,
        name: raw.metadata.name,
        namespace: raw.metadata.namespace,
        labels: raw.metadata.labels,
        data: raw.data.0.into_iter().collect(),
        ..Default::default()
    })
}

/// A secret from a document of kind `Secret`: `data` decoded from base64, `stringData` merged
/// over it (a key in both takes `stringData`'s value, as in Kubernetes), `type` defaulting to
/// `Opaque`.
pub(super) fn secret_from(raw: RawObject) -> Result<pb::Secret, ValidationError> {
    let mut data = decoded("data", raw.data)?;
    for (key, value) in raw.string_data.0 {
        // Named here, where the key is still known to come from stringData.
        check_config_key(&key).map_err(|m| ValidationError::new(format!("stringData.{key}"), m))?;
        data.insert(key, value.into_bytes());
    }
    let secret_type = match raw.secret_type {
        t if t.is_empty() => "Opaque".to_string(),
        t => t,
    };
    Ok(pb::Secret {
        name: raw.metadata.name,
        namespace: raw.metadata.namespace,
        labels: raw.metadata.labels,
        r#type: secret_type,
        data,
        ..Default::default()
    })
}

/// Every value of `map` (the field `section`) decoded from base64; the message names the key
/// only.
fn decoded(section: &str, map: TextMap) -> Result<HashMap<String, Vec<u8>>, ValidationError> {
    map.0
        .into_iter()
        .map(|(key, text)| match base64::decode(&text) {
            Some(bytes) => Ok((key, bytes)),
            None => Err(ValidationError::new(
                format!("{section}.{key}"),
                format!(
                    "invalid base64 (standard alphabet, padded with '='; for plain text use {})",
                    if section == "binaryData" {
                        "data"
                    } else {
                        "stringData"
                    }
                ),
            )),
        })
        .collect()
}

/// A probe: exactly one of exec, httpGet and tcpSocket.
fn probe_from(at: &str, p: RawProbe) -> Result<pb::Probe, ValidationError> {
    use pb::probe::Handler;
    let mut handlers = Vec::new();
    if let Some(exec) = p.exec {
        handlers.push(Handler::Exec(pb::ExecAction {
            command: exec.command,
        }));
    }
    if let Some(get) = p.http_get {
        handlers.push(Handler::HttpGet(pb::HttpGetAction {
            port: port(&format!("{at}.httpGet.port"), get.port)?,
            path: get.path,
            host: get.host,
            scheme: get.scheme,
        }));
    }
    if let Some(tcp) = p.tcp_socket {
        handlers.push(Handler::TcpSocket(pb::TcpSocketAction {
            port: port(&format!("{at}.tcpSocket.port"), tcp.port)?,
            host: tcp.host,
        }));
    }
    if handlers.len() != 1 {
        return Err(ValidationError::new(
            at,
            "give exactly one of exec, httpGet and tcpSocket",
        ));
    }
    Ok(pb::Probe {
        handler: handlers.pop(),
        initial_delay_seconds: p.initial_delay_seconds,
        period_seconds: p.period_seconds,
        timeout_seconds: p.timeout_seconds,
        success_threshold: p.success_threshold,
        failure_threshold: p.failure_threshold,
    })
}

/// A probe's port: a number from 1 to 65535 (named ports need `ports:`, which Kube-9 does not
/// read).
fn port(at: &str, v: Option<serde_yaml_ng::Value>) -> Result<i32, ValidationError> {
    match v {
        Some(serde_yaml_ng::Value::Number(n)) => match n.as_i64() {
            Some(p @ 1..=65535) => Ok(p as i32),
            _ => Err(ValidationError::new(
                at,
                format!("{n} is not a port (1-65535)"),
            )),
        },
        Some(serde_yaml_ng::Value::String(name)) => Err(ValidationError::new(
            at,
            format!("named port {name:?} is not supported: give the port number"),
        )),
        _ => Err(ValidationError::new(at, "required: the port number")),
    }
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
