//! Conversion of the serde mirror ([`super::raw`]) into wire types: [`pb::Pod`] and
//! [`pb::NodeSpec`].
//!
//! Quantities are parsed here (`500m`, `64Mi`), volume sources are picked (exactly one of
//! `emptyDir`, `hostPath`, `configMap`, `secret`), and a pod is normalized. A problem is a
//! [`ValidationError`] naming the field (`spec.containers[0].resources.requests.cpu`); the
//! pipeline in `mod.rs` adds which document it is in.
//!
//! Imports only [`super::raw`] from the rest of `manifest`.

use super::raw::{Quantity, RawContainer, RawObject, RawProbe, RawVolume};
use crate::pb;
use crate::quantity::{parse_cpu, parse_memory, QuantityError};
use crate::validate::{normalize_pod, ValidationError};

/// A pod from a document of kind `Pod`, normalized; the caller validates it.
pub(super) fn pod_from(raw: RawObject) -> Result<pb::Pod, ValidationError> {
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
    for (i, c) in spec.init_containers.into_iter().enumerate() {
        pod.init_containers
            .push(container_from(&format!("spec.initContainers[{i}]"), c)?);
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
        sources.push(("emptyDir", empty_dir.medium.clone(), size));
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
    // An emptyDir has no source; what `source` carried for it is its medium.
    let (source, medium) = if kind == "emptyDir" {
        (String::new(), source)
    } else {
        (source, String::new())
    };
    Ok(pb::Volume {
        name: v.name,
        kind: kind.into(),
        source,
        size_bytes,
        medium,
    })
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
