//! Conversion of the serde mirror ([`super::raw`]) into wire types: [`pb::Pod`] and
//! [`pb::NodeSpec`].
//!
//! Quantities are parsed here (`500m`, `64Mi`), volume sources are picked (exactly one of
//! `emptyDir`, `hostPath`, `configMap`, `secret`), and a pod is normalized. A problem is a
//! [`ValidationError`] naming the field (`spec.containers[0].resources.requests.cpu`); the
//! pipeline in `mod.rs` adds which document it is in.
//!
//! Imports only [`super::raw`] from the rest of `manifest`.

use super::raw::{Quantity, RawContainer, RawObject, RawVolume};
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
