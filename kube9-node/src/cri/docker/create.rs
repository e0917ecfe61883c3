//! Our configs into Docker create bodies; pure functions.
//!
//! - ENTRYPOINT/CMD: `command` is sent as `Entrypoint` and `args` as `Cmd`, each only when
//!   non-empty. The engine fills in what is missing from the image, and ignores the image's
//!   CMD whenever an `Entrypoint` is given: exactly Kubernetes' four cases.
//! - CPU: the limit becomes a CFS quota over a 100 ms period (as the kubelet sets it, minimum
//!   1 ms), the request becomes `cpu_shares` (1024 per core, minimum 2).
//! - Memory: the limit is set as `memory` and as `memory_swap`, so there is no swap on top.
//! - Mounts are `Binds`, as dockershim made them: a volume without `subPath` by name, a
//!   `subPath` of a volume as a bind of `<volume mountpoint>/<subPath>`, a hostPath (with its
//!   `subPath`) as a bind of the path. The engine creates missing bind sources as directories,
//!   which is what Kubernetes does for a `subPath` and for an untyped hostPath.
//! - Namespaces: app containers join the sandbox's network and IPC namespaces (the sandbox's
//!   IPC is `shareable`), and keep their own PID namespace.
//! - Logs: `json-file` whatever the engine's default driver is, so `logs` always works, with
//!   the agent's log limits as `max-size` (in bytes) and `max-file` (10 MiB × 2 by default),
//!   so a chatty container cannot fill the disk.
//! - `securityContext` (see [`crate::cri::Security`]): `runAsUser`/`runAsGroup` become `User`
//!   (`uid[:gid]`), `readOnlyRootFilesystem` `ReadonlyRootfs`, capabilities `CapAdd`/`CapDrop`
//!   (the engine takes `NET_ADMIN` and `CAP_NET_ADMIN` alike, and `ALL`; it applies the drops
//!   first, so `drop: [ALL], add: [NET_ADMIN]` keeps only that one), `allowPrivilegeEscalation:
//!   false` the `no-new-privileges` security option, and `privileged` `Privileged`.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};

use crate::containers::logs::LogLimits;
use crate::cri::labels;
use crate::cri::types::{ContainerConfig, MountSource, PodMeta, PodSandboxConfig, SandboxId};

/// CFS period for CPU limits (100 ms, as the kubelet uses).
pub const CPU_PERIOD_US: i64 = 100_000;
/// The smallest CFS quota the kernel accepts (1 ms).
const MIN_CPU_QUOTA_US: i64 = 1_000;
/// The smallest CPU shares (a best-effort container).
const MIN_CPU_SHARES: i64 = 2;
/// Where the sandbox mounts the pod's volumes: to hold them, and to measure them there
/// (`/pause du`, see [`crate::usage`]).
pub const SANDBOX_VOLUMES_DIR: &str = "/volumes";

/// The sandbox container: the pause image, the pod's hostname, its network, its volumes.
pub fn sandbox_body(
    config: &PodSandboxConfig,
    image: &str,
    log_limits: LogLimits,
) -> ContainerCreateBody {
    let mut labels = object_labels(&config.pod, labels::SANDBOX_CONTAINER_NAME, config.attempt);
    labels.insert(labels::SANDBOX.to_string(), "true".to_string());
    let binds = config
        .volumes
        .iter()
        .map(|v| format!("{v}:{SANDBOX_VOLUMES_DIR}/{v}"))
        .collect::<Vec<_>>();
    ContainerCreateBody {
        image: Some(image.to_string()),
        hostname: Some(config.hostname.clone()),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: config.network.clone(),
            ipc_mode: Some("shareable".to_string()),
            binds: Some(binds).filter(|b| !b.is_empty()),
            cpu_shares: Some(MIN_CPU_SHARES),
            log_config: Some(log_config(log_limits)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An app container of the pod in `sandbox`. `mountpoints` gives the host directory of each
/// engine volume mounted with a `subPath` (see the module docs).
pub fn container_body(
    config: &ContainerConfig,
    pod: &PodMeta,
    sandbox: &SandboxId,
    mountpoints: &HashMap<String, String>,
    log_limits: LogLimits,
) -> Result<ContainerCreateBody, String> {
    let mut labels = object_labels(pod, &config.name, config.attempt);
    labels.insert(labels::SANDBOX_ID.to_string(), sandbox.to_string());
    let join = format!("container:{sandbox}");
    let binds = config
        .mounts
        .iter()
        .map(|m| bind(m, mountpoints))
        .collect::<Result<Vec<_>, _>>()?;
    let resources = &config.resources;
    let cpu_quota = resources
        .cpu_limit_millis
        .map(|millis| (millis as i64 * CPU_PERIOD_US / 1000).max(MIN_CPU_QUOTA_US));
    let memory = resources.memory_limit_bytes.map(|bytes| bytes as i64);
    let security = &config.security;
    let list = |names: &[String]| Some(names.to_vec()).filter(|n| !n.is_empty());
    Ok(ContainerCreateBody {
        image: Some(config.image.clone()),
        entrypoint: Some(config.command.clone()).filter(|c| !c.is_empty()),
        cmd: Some(config.args.clone()).filter(|a| !a.is_empty()),
        env: Some(config.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        working_dir: config.working_dir.clone(),
        user: security.user(),
        labels: Some(labels),
        host_config: Some(HostConfig {
            readonly_rootfs: Some(security.read_only_root_filesystem).filter(|&ro| ro),
            cap_add: list(&security.capabilities_add),
            cap_drop: list(&security.capabilities_drop),
            security_opt: security
                .no_new_privileges
                .then(|| vec!["no-new-privileges".to_string()]),
            privileged: Some(security.privileged).filter(|&p| p),
            network_mode: Some(join.clone()),
            ipc_mode: Some(join),
            binds: Some(binds).filter(|b| !b.is_empty()),
            cpu_period: cpu_quota.map(|_| CPU_PERIOD_US),
            cpu_quota,
            cpu_shares: resources
                .cpu_request_millis
                .map(|millis| (millis as i64 * 1024 / 1000).max(MIN_CPU_SHARES)),
            memory,
            memory_swap: memory,
            log_config: Some(log_config(log_limits)),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The labels of a container: the pod's, its name in the pod, its attempt.
fn object_labels(pod: &PodMeta, name: &str, attempt: u32) -> HashMap<String, String> {
    let mut labels = labels::pod_labels(pod);
    labels.insert(labels::CONTAINER_NAME.to_string(), name.to_string());
    labels.insert(labels::ATTEMPT.to_string(), attempt.to_string());
    labels
}

/// One `Binds` entry (`source:target[:ro]`).
fn bind(
    m: &crate::cri::types::Mount,
    mountpoints: &HashMap<String, String>,
) -> Result<String, String> {
    let source = match (&m.source, &m.sub_path) {
        (MountSource::Volume(volume), None) => volume.clone(),
        (MountSource::Volume(volume), Some(sub)) => {
            let root = mountpoints
                .get(volume)
                .ok_or_else(|| format!("the mountpoint of volume {volume} is unknown"))?;
            format!("{}/{sub}", root.trim_end_matches('/'))
        }
        (MountSource::HostPath(path), None) => path.clone(),
        (MountSource::HostPath(path), Some(sub)) => {
            format!("{}/{sub}", path.trim_end_matches('/'))
        }
    };
    if source.contains(':') || m.container_path.contains(':') {
        return Err(format!(
            "cannot mount {source} at {}: paths with ':' cannot be bind-mounted",
            m.container_path
        ));
    }
    let mode = if m.read_only { ":ro" } else { "" };
    Ok(format!("{source}:{}{mode}", m.container_path))
}

/// The json-file driver, capped by `limits` (the engine reads a bare `max-size` as bytes).
fn log_config(limits: LogLimits) -> HostConfigLogConfig {
    HostConfigLogConfig {
        typ: Some("json-file".to_string()),
        config: Some(HashMap::from([
            ("max-size".to_string(), limits.max_size.to_string()),
            ("max-file".to_string(), limits.max_files.to_string()),
        ])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri::types::{Mount, Resources, Security};

    fn pod() -> PodMeta {
        PodMeta {
            cluster: "c".into(),
            node: "n".into(),
            namespace: "default".into(),
            name: "p".into(),
            uid: "u1".into(),
        }
    }

    fn body(config: &ContainerConfig) -> ContainerCreateBody {
        let mountpoints = HashMap::from([("vol".to_string(), "/var/lib/v/_data".to_string())]);
        let limits = LogLimits::default();
        container_body(
            config,
            &pod(),
            &SandboxId("sb".into()),
            &mountpoints,
            limits,
        )
        .unwrap()
    }

    #[test]
    fn command_and_args_are_sent_only_when_given() {
        let mut config = ContainerConfig {
            name: "app".into(),
            image: "img".into(),
            ..Default::default()
        };
        let b = body(&config);
        assert_eq!((b.entrypoint, b.cmd), (None, None));
        config.args = vec!["a".into()];
        let b = body(&config);
        assert_eq!((b.entrypoint, b.cmd), (None, Some(vec!["a".to_string()])));
        config.command = vec!["c".into()];
        config.args.clear();
        let b = body(&config);
        assert_eq!((b.entrypoint, b.cmd), (Some(vec!["c".to_string()]), None));
    }

    #[test]
    fn limits_become_a_cfs_quota_shares_and_memory_without_swap() {
        let config = ContainerConfig {
            name: "app".into(),
            resources: Resources {
                cpu_request_millis: Some(250),
                cpu_limit_millis: Some(500),
                memory_limit_bytes: Some(64 << 20),
            },
            ..Default::default()
        };
        let host = body(&config).host_config.unwrap();
        assert_eq!(host.cpu_quota, Some(50_000));
        assert_eq!(host.cpu_period, Some(100_000));
        assert_eq!(host.cpu_shares, Some(256));
        assert_eq!(host.memory, Some(64 << 20));
        assert_eq!(host.memory_swap, Some(64 << 20));
        assert_eq!(host.network_mode.as_deref(), Some("container:sb"));
        assert_eq!(host.ipc_mode.as_deref(), Some("container:sb"));
    }

    #[test]
    fn a_tiny_cpu_limit_gets_the_smallest_quota() {
        let config = ContainerConfig {
            resources: Resources {
                cpu_limit_millis: Some(1),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(body(&config).host_config.unwrap().cpu_quota, Some(1_000));
    }

    #[test]
    fn mounts_become_binds() {
        let mount = |source, sub: Option<&str>, read_only| Mount {
            container_path: "/m".into(),
            source,
            read_only,
            sub_path: sub.map(String::from),
        };
        let config = ContainerConfig {
            mounts: vec![
                mount(MountSource::Volume("vol".into()), None, false),
                mount(MountSource::Volume("vol".into()), Some("a/b"), true),
                mount(MountSource::HostPath("/srv/".into()), Some("x"), false),
            ],
            ..Default::default()
        };
        assert_eq!(
            body(&config).host_config.unwrap().binds.unwrap(),
            ["vol:/m", "/var/lib/v/_data/a/b:/m:ro", "/srv/x:/m"]
        );
    }

    #[test]
    fn the_security_context_is_applied() {
        let mut config = ContainerConfig {
            name: "app".into(),
            ..Default::default()
        };
        let b = body(&config);
        let host = b.host_config.unwrap();
        assert_eq!(b.user, None);
        assert_eq!(
            (host.readonly_rootfs, host.cap_add, host.cap_drop),
            (None, None, None)
        );
        assert_eq!((host.security_opt, host.privileged), (None, None));

        config.security = Security {
            run_as_user: Some(1000),
            run_as_group: Some(3000),
            read_only_root_filesystem: true,
            capabilities_add: vec!["NET_ADMIN".into()],
            capabilities_drop: vec!["ALL".into()],
            no_new_privileges: true,
            privileged: true,
            image_user: String::new(),
        };
        let b = body(&config);
        let host = b.host_config.unwrap();
        assert_eq!(b.user.as_deref(), Some("1000:3000"));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.cap_add.unwrap(), ["NET_ADMIN"]);
        assert_eq!(host.cap_drop.unwrap(), ["ALL"]);
        assert_eq!(host.security_opt.unwrap(), ["no-new-privileges"]);
        assert_eq!(host.privileged, Some(true));

        config.security.run_as_group = None;
        assert_eq!(body(&config).user.as_deref(), Some("1000"));
        // A group alone keeps the image's user (root when it has none).
        config.security.run_as_user = None;
        config.security.run_as_group = Some(3000);
        assert_eq!(body(&config).user.as_deref(), Some("0:3000"));
        config.security.image_user = "app:staff".into();
        assert_eq!(body(&config).user.as_deref(), Some("app:3000"));
    }

    #[test]
    fn labels_name_the_pod_the_container_and_the_sandbox() {
        let config = ContainerConfig {
            name: "app".into(),
            attempt: 2,
            ..Default::default()
        };
        let labels = body(&config).labels.unwrap();
        assert_eq!(labels[labels::POD_UID], "u1");
        assert_eq!(labels[labels::CONTAINER_NAME], "app");
        assert_eq!(labels[labels::ATTEMPT], "2");
        assert_eq!(labels[labels::SANDBOX_ID], "sb");
        assert!(!labels.contains_key(labels::SANDBOX));
    }

    #[test]
    fn the_sandbox_holds_the_volumes_and_is_marked() {
        let config = PodSandboxConfig {
            pod: pod(),
            attempt: 0,
            hostname: "p".into(),
            network: None,
            volumes: vec!["k9v_data".into()],
        };
        let b = sandbox_body(&config, "kube9/pause:1", LogLimits::default());
        let labels = b.labels.unwrap();
        assert_eq!(labels[labels::SANDBOX], "true");
        assert_eq!(labels[labels::CONTAINER_NAME], "POD");
        let host = b.host_config.unwrap();
        assert_eq!(host.binds.unwrap(), ["k9v_data:/volumes/k9v_data"]);
        assert_eq!(host.network_mode, None);
    }

    #[test]
    fn logs_are_json_files_capped_by_the_agents_limits() {
        let limits = LogLimits {
            max_size: 4096,
            max_files: 5,
        };
        let config = ContainerConfig {
            name: "app".into(),
            image: "img".into(),
            ..Default::default()
        };
        let b = container_body(
            &config,
            &pod(),
            &SandboxId("sb".into()),
            &HashMap::new(),
            limits,
        );
        let log = b.unwrap().host_config.unwrap().log_config.unwrap();
        assert_eq!(log.typ.as_deref(), Some("json-file"));
        let options = log.config.unwrap();
        assert_eq!(
            (options["max-size"].as_str(), options["max-file"].as_str()),
            ("4096", "5")
        );
        let sandbox = PodSandboxConfig {
            pod: pod(),
            attempt: 0,
            hostname: "p".into(),
            network: None,
            volumes: Vec::new(),
        };
        let b = sandbox_body(&sandbox, "kube9/pause:1", LogLimits::default());
        let options = b.host_config.unwrap().log_config.unwrap().config.unwrap();
        assert_eq!(options["max-size"], (10 * 1024 * 1024).to_string());
        assert_eq!(options["max-file"], "2");
    }
}
