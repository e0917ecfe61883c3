//! A pod spec (`pb::Pod`, `pb::Container`, `pb::Volume`) into runtime configs, with
//! Kubernetes' rules; pure functions, no engine.
//!
//! - `command` replaces the image's ENTRYPOINT and `args` its CMD (the runtime applies that,
//!   see [`ContainerConfig`]); both, and env values, get `$(VAR)` expansion ([`super::expand`]).
//! - The environment is, in order: `KUBE9_POD_NAME`, `KUBE9_NODE_NAME`, the pod's `env`
//!   config items, the container's `env` (as the process runtime does; the image's own ENV
//!   stays underneath, so its PATH survives).
//! - Volumes: an emptyDir is an engine volume named after the pod ([`labels::volume_name`]),
//!   a hostPath is a bind mount of the host path. A configMap or secret volume is a tmpfs
//!   engine volume (so a secret never reaches the node's disk) holding the files kube9d
//!   resolved for it (`pb::Volume::files`), written through the sandbox once it runs; app
//!   containers always mount it read-only, as Kubernetes does.
//! - `securityContext` (the pod's is merged into each container by the manifest parser) is
//!   carried over as [`Security`]; `runAsNonRoot` is checked against the image's user by
//!   [`verify_run_as_non_root`] before the container is created, as the kubelet does.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path};

use kube9_proto::pb;

use super::expand::{expand_all, expand_env};
use super::labels;
use super::types::{
    ContainerConfig, EmptyDir, FileToWrite, ImageRef, Medium, Mount, MountSource, PodMeta,
    PodSandboxConfig, Resources, Security,
};
use super::{Error, Result};

/// The engine objects' view of `pod` bound to `node` in `cluster`.
pub fn pod_meta(pod: &pb::Pod, cluster: &str, node: &str) -> PodMeta {
    PodMeta {
        cluster: cluster.to_string(),
        node: node.to_string(),
        namespace: pod.ns().to_string(),
        name: pod.name.clone(),
        uid: pod.uid.clone(),
    }
}

/// Room a configMap or secret volume's tmpfs has besides its files.
pub const FILES_VOLUME_HEADROOM: u64 = 1 << 20;
/// Mode of a file whose mode is unset (0), as Kubernetes' `defaultMode`.
pub const DEFAULT_FILE_MODE: u32 = 0o644;

/// Whether `volume` is a configMap or secret volume: files kube9d resolved, on a tmpfs,
/// mounted read-only.
pub fn holds_files(volume: &pb::Volume) -> bool {
    matches!(volume.kind.as_str(), "configMap" | "secret")
}

/// The engine volumes of `pod`, each made with `create_empty_dir` before the sandbox: its
/// emptyDirs, and a tmpfs for each configMap and secret volume, as large as its files (in
/// whole pages) plus [`FILES_VOLUME_HEADROOM`].
pub fn engine_volumes(pod: &pb::Pod) -> Vec<EmptyDir> {
    pod.volumes
        .iter()
        .filter_map(|v| match v.kind.as_str() {
            "emptyDir" => Some(EmptyDir {
                name: v.name.clone(),
                medium: if v.medium == "Memory" {
                    Medium::Memory
                } else {
                    Medium::Disk
                },
                size_limit_bytes: u64::try_from(v.size_bytes).ok().filter(|&b| b > 0),
            }),
            _ if holds_files(v) => {
                let pages: u64 = (v.files.iter())
                    .map(|f| (f.content.len() as u64).div_ceil(4096) * 4096)
                    .sum();
                Some(EmptyDir {
                    name: v.name.clone(),
                    medium: Medium::Memory,
                    size_limit_bytes: Some(pages + FILES_VOLUME_HEADROOM),
                })
            }
            _ => None,
        })
        .collect()
}

/// What to write into each configMap and secret volume of `pod` once its sandbox runs: the
/// engine volume's name and its files (none for an optional volume whose object is missing).
/// A file mode of 0 is [`DEFAULT_FILE_MODE`]; a path that is absolute, empty or climbs out
/// with `..` is refused.
pub fn volume_files(meta: &PodMeta, pod: &pb::Pod) -> Result<Vec<(String, Vec<FileToWrite>)>> {
    pod.volumes
        .iter()
        .filter(|v| holds_files(v))
        .map(|v| {
            let files = (v.files.iter())
                .map(|f| {
                    check_file_path(&f.path)
                        .map_err(|why| invalid(format!("volume {}", v.name), why))?;
                    Ok(FileToWrite {
                        path: f.path.clone(),
                        content: f.content.clone(),
                        mode: if f.mode == 0 {
                            DEFAULT_FILE_MODE
                        } else {
                            f.mode
                        },
                    })
                })
                .collect::<Result<_>>()?;
            Ok((labels::volume_name(meta, &v.name), files))
        })
        .collect()
}

/// The sandbox of `pod`: hostname = pod name, holding every engine volume of the pod.
pub fn sandbox_config(
    meta: &PodMeta,
    pod: &pb::Pod,
    attempt: u32,
    network: Option<String>,
) -> PodSandboxConfig {
    PodSandboxConfig {
        pod: meta.clone(),
        attempt,
        hostname: pod.name.clone(),
        network,
        volumes: engine_volumes(pod)
            .iter()
            .map(|v| labels::volume_name(meta, &v.name))
            .collect(),
    }
}

/// Where each volume of `pod` comes from on the engine, by its name in the spec.
pub fn volume_sources(meta: &PodMeta, pod: &pb::Pod) -> Result<HashMap<String, MountSource>> {
    pod.volumes
        .iter()
        .map(|v| {
            let source = match v.kind.as_str() {
                "emptyDir" => MountSource::Volume(labels::volume_name(meta, &v.name)),
                _ if holds_files(v) => MountSource::Volume(labels::volume_name(meta, &v.name)),
                "hostPath" if v.source.starts_with('/') => MountSource::HostPath(v.source.clone()),
                "hostPath" => {
                    return Err(invalid(
                        format!("volume {}", v.name),
                        format!("hostPath {:?} is not an absolute path", v.source),
                    ))
                }
                other => {
                    return Err(invalid(
                        format!("volume {}", v.name),
                        format!("{other} volumes are not supported by this runtime yet"),
                    ))
                }
            };
            Ok((v.name.clone(), source))
        })
        .collect()
}

/// The runtime config of `container` (attempt `attempt`, created from `image`).
pub fn container_config(
    meta: &PodMeta,
    pod: &pb::Pod,
    container: &pb::Container,
    image: &str,
    attempt: u32,
) -> Result<ContainerConfig> {
    let env = expand_env(&environment(meta, pod, container));
    let sources = volume_sources(meta, pod)?;
    let read_only: HashSet<&str> = (pod.volumes.iter())
        .filter(|v| holds_files(v))
        .map(|v| v.name.as_str())
        .collect();
    let mounts = container
        .volume_mounts
        .iter()
        .map(|m| {
            let mut mount = mount(&container.name, m, &sources)?;
            mount.read_only |= read_only.contains(m.name.as_str());
            Ok(mount)
        })
        .collect::<Result<_>>()?;
    Ok(ContainerConfig {
        name: container.name.clone(),
        attempt,
        image: image.to_string(),
        command: expand_all(&container.command, &env),
        args: expand_all(&container.args, &env),
        working_dir: Some(container.working_dir.clone()).filter(|d| !d.is_empty()),
        resources: resources(container),
        mounts,
        env,
        security: security(container)?,
    })
}

/// The container's `securityContext` as the runtime applies it. A `runAsUser` or `runAsGroup`
/// outside 0..2³²−1 is refused. [`Security::image_user`] is left empty: the caller knows the
/// image.
pub fn security(container: &pb::Container) -> Result<Security> {
    let Some(sc) = &container.security_context else {
        return Ok(Security::default());
    };
    let id = |field: &str, v: Option<i64>| {
        v.map(|v| {
            u32::try_from(v).map_err(|_| {
                invalid(
                    format!("container {}", container.name),
                    format!("securityContext.{field} {v} is not a valid id"),
                )
            })
        })
        .transpose()
    };
    Ok(Security {
        run_as_user: id("runAsUser", sc.run_as_user)?,
        run_as_group: id("runAsGroup", sc.run_as_group)?,
        read_only_root_filesystem: sc.read_only_root_filesystem,
        capabilities_add: sc.capabilities_add.clone(),
        capabilities_drop: sc.capabilities_drop.clone(),
        no_new_privileges: sc.allow_privilege_escalation == Some(false),
        privileged: sc.privileged,
        image_user: String::new(),
    })
}

/// The kubelet's `runAsNonRoot` check: with `runAsNonRoot`, a container whose `runAsUser` is 0,
/// or that has none and whose image runs as root (no `USER`, `root`, `0`), or as a user name
/// that cannot be checked, is not created. The error is the kubelet's message (the container
/// then waits with `CreateContainerConfigError`).
pub fn verify_run_as_non_root(
    pod: &pb::Pod,
    container: &pb::Container,
    image: &ImageRef,
) -> std::result::Result<(), String> {
    let Some(sc) = container
        .security_context
        .as_ref()
        .filter(|s| s.run_as_non_root)
    else {
        return Ok(());
    };
    let whose = format!(
        "(pod: \"{}_{}({})\", container: {})",
        pod.name,
        pod.ns(),
        pod.uid,
        container.name
    );
    match sc.run_as_user {
        Some(0) => Err(format!(
            "container's runAsUser breaks non-root policy {whose}"
        )),
        Some(_) => Ok(()),
        None if image.runs_as_root() => Err(format!(
            "container has runAsNonRoot and image will run as root {whose}"
        )),
        None => {
            let user = image.user.split(':').next().unwrap_or_default().trim();
            if user.parse::<u32>().is_ok() {
                Ok(())
            } else {
                Err(format!("container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root {whose}"))
            }
        }
    }
}

/// The container's environment before expansion (see the module docs).
fn environment(meta: &PodMeta, pod: &pb::Pod, container: &pb::Container) -> Vec<(String, String)> {
    crate::kubelet::env::pod_env(pod, container, &meta.node)
}

fn resources(container: &pb::Container) -> Resources {
    let positive = |v: i64| u64::try_from(v).ok().filter(|&v| v > 0);
    Resources {
        cpu_request_millis: positive(container.cpu_request_millis),
        cpu_limit_millis: positive(container.cpu_limit_millis),
        memory_limit_bytes: positive(container.memory_limit_bytes),
    }
}

fn mount(
    container: &str,
    m: &pb::VolumeMount,
    sources: &HashMap<String, MountSource>,
) -> Result<Mount> {
    let what = || format!("container {container}");
    let source = sources
        .get(&m.name)
        .cloned()
        .ok_or_else(|| invalid(what(), format!("it mounts unknown volume {:?}", m.name)))?;
    let sub_path = Some(m.sub_path.trim_end_matches('/').to_string()).filter(|p| !p.is_empty());
    if let Some(sub) = &sub_path {
        check_sub_path(sub).map_err(|why| invalid(what(), why))?;
    }
    Ok(Mount {
        container_path: m.mount_path.clone(),
        source,
        read_only: m.read_only,
        sub_path,
    })
}

/// Kubernetes' rule: a subPath is relative and never climbs out of its volume.
fn check_sub_path(sub: &str) -> std::result::Result<(), String> {
    let path = Path::new(sub);
    if path.is_absolute() {
        return Err(format!("subPath {sub:?} must be a relative path"));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(format!("subPath {sub:?} must not contain '..'"));
    }
    Ok(())
}

/// Kubernetes' rule for a key's path in a configMap or secret volume: relative, not empty,
/// never `..`.
fn check_file_path(path: &str) -> std::result::Result<(), String> {
    let p = Path::new(path);
    if p.is_absolute() {
        return Err(format!("file path {path:?} must be a relative path"));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(format!("file path {path:?} must not contain '..'"));
    }
    if !p.components().any(|c| matches!(c, Component::Normal(_))) {
        return Err(format!("file path {path:?} names no file"));
    }
    Ok(())
}

fn invalid(what: String, why: String) -> Error {
    Error::InvalidConfig { what, why }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> pb::Pod {
        pb::Pod {
            name: "web".into(),
            uid: "00000001".into(),
            volumes: vec![
                pb::Volume {
                    name: "cache".into(),
                    kind: "emptyDir".into(),
                    medium: "Memory".into(),
                    size_bytes: 1 << 20,
                    ..Default::default()
                },
                pb::Volume {
                    name: "logs".into(),
                    kind: "hostPath".into(),
                    source: "/var/log".into(),
                    ..Default::default()
                },
            ],
            config_items: vec![pb::ConfigItem {
                name: "MODE".into(),
                kind: "env".into(),
                value: "prod".into(),
            }],
            ..Default::default()
        }
    }

    fn meta() -> PodMeta {
        pod_meta(&pod(), "c1", "n1")
    }

    fn var(name: &str, value: &str) -> pb::EnvVar {
        pb::EnvVar {
            name: name.into(),
            value: value.into(),
            value_from: None,
        }
    }

    #[test]
    fn command_args_and_env_are_expanded_from_the_container_env() {
        let container = pb::Container {
            name: "app".into(),
            command: vec!["/bin/sh".into(), "-c".into()],
            args: vec!["echo $(GREETING) $$(GREETING) in $(MODE) on $(KUBE9_NODE_NAME)".into()],
            env: vec![var("WHO", "world"), var("GREETING", "hello $(WHO)")],
            working_dir: "/srv".into(),
            ..Default::default()
        };
        let config = container_config(&meta(), &pod(), &container, "sha256:1", 3).unwrap();
        assert_eq!(config.command, ["/bin/sh", "-c"]);
        assert_eq!(config.args, ["echo hello world $(GREETING) in prod on n1"]);
        assert_eq!(
            config.env.last().unwrap(),
            &("GREETING".to_string(), "hello world".to_string())
        );
        assert_eq!(config.env[0], ("KUBE9_POD_NAME".into(), "web".into()));
        assert_eq!(config.working_dir.as_deref(), Some("/srv"));
        assert_eq!((config.attempt, config.image.as_str()), (3, "sha256:1"));
    }

    fn secure(sc: pb::SecurityContext) -> pb::Container {
        pb::Container {
            name: "app".into(),
            security_context: Some(sc),
            ..Default::default()
        }
    }

    #[test]
    fn the_security_context_is_carried_over() {
        let plain = pb::Container {
            name: "app".into(),
            ..Default::default()
        };
        let config = container_config(&meta(), &pod(), &plain, "img", 0).unwrap();
        assert_eq!(config.security, Security::default());
        let container = secure(pb::SecurityContext {
            run_as_user: Some(1000),
            run_as_group: Some(3000),
            read_only_root_filesystem: true,
            capabilities_add: vec!["NET_ADMIN".into()],
            capabilities_drop: vec!["ALL".into()],
            allow_privilege_escalation: Some(false),
            ..Default::default()
        });
        let config = container_config(&meta(), &pod(), &container, "img", 0).unwrap();
        assert_eq!(
            config.security,
            Security {
                run_as_user: Some(1000),
                run_as_group: Some(3000),
                read_only_root_filesystem: true,
                capabilities_add: vec!["NET_ADMIN".into()],
                capabilities_drop: vec!["ALL".into()],
                no_new_privileges: true,
                privileged: false,
                image_user: String::new(),
            }
        );
        // allowPrivilegeEscalation unset or true: allowed.
        for allow in [None, Some(true)] {
            let c = secure(pb::SecurityContext {
                allow_privilege_escalation: allow,
                ..Default::default()
            });
            assert!(!security(&c).unwrap().no_new_privileges);
        }
        let c = secure(pb::SecurityContext {
            run_as_user: Some(-1),
            ..Default::default()
        });
        let err = container_config(&meta(), &pod(), &c, "img", 0).unwrap_err();
        assert!(err.to_string().contains("runAsUser -1"), "{err}");
    }

    #[test]
    fn run_as_non_root_refuses_what_would_run_as_root() {
        let image = |user: &str| ImageRef {
            name: "busybox".into(),
            id: "sha256:1".into(),
            pulled: false,
            user: user.into(),
        };
        let check = |sc: pb::SecurityContext, user: &str| {
            verify_run_as_non_root(&pod(), &secure(sc), &image(user))
        };
        let non_root = |uid: Option<i64>| pb::SecurityContext {
            run_as_non_root: true,
            run_as_user: uid,
            ..Default::default()
        };
        for user in ["", "root", "0", "0:0", "root:staff"] {
            let err = check(non_root(None), user).unwrap_err();
            assert_eq!(
                err,
                "container has runAsNonRoot and image will run as root (pod: \"web_default(00000001)\", container: app)"
            );
        }
        let err = check(non_root(Some(0)), "1000").unwrap_err();
        assert!(
            err.starts_with("container's runAsUser breaks non-root policy"),
            "{err}"
        );
        let err = check(non_root(None), "nobody").unwrap_err();
        assert!(err.contains("non-numeric user (nobody)"), "{err}");
        assert!(check(non_root(Some(1000)), "").is_ok());
        assert!(check(non_root(None), "1000").is_ok());
        assert!(check(non_root(None), "1000:1000").is_ok());
        // Without runAsNonRoot anything goes.
        assert!(check(pb::SecurityContext::default(), "").is_ok());
        let plain = pb::Container::default();
        assert!(verify_run_as_non_root(&pod(), &plain, &image("")).is_ok());
    }

    #[test]
    fn unset_resources_stay_unset() {
        let container = pb::Container {
            name: "app".into(),
            cpu_limit_millis: 500,
            memory_limit_bytes: 64 << 20,
            ..Default::default()
        };
        let config = container_config(&meta(), &pod(), &container, "img", 0).unwrap();
        assert_eq!(
            config.resources,
            Resources {
                cpu_request_millis: None,
                cpu_limit_millis: Some(500),
                memory_limit_bytes: Some(64 << 20),
            }
        );
        assert_eq!(config.working_dir, None);
    }

    #[test]
    fn mounts_resolve_to_engine_volumes_and_host_paths() {
        let container = pb::Container {
            name: "app".into(),
            volume_mounts: vec![
                pb::VolumeMount {
                    name: "cache".into(),
                    mount_path: "/cache".into(),
                    sub_path: "app/".into(),
                    ..Default::default()
                },
                pb::VolumeMount {
                    name: "logs".into(),
                    mount_path: "/logs".into(),
                    read_only: true,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let config = container_config(&meta(), &pod(), &container, "img", 0).unwrap();
        assert_eq!(
            config.mounts,
            [
                Mount {
                    container_path: "/cache".into(),
                    source: MountSource::Volume("k9v_cache_web_default_00000001".into()),
                    read_only: false,
                    sub_path: Some("app".into()),
                },
                Mount {
                    container_path: "/logs".into(),
                    source: MountSource::HostPath("/var/log".into()),
                    read_only: true,
                    sub_path: None,
                },
            ]
        );
    }

    #[test]
    fn a_sub_path_may_not_leave_its_volume() {
        for bad in ["../etc", "a/../../b", "/etc"] {
            let container = pb::Container {
                name: "app".into(),
                volume_mounts: vec![pb::VolumeMount {
                    name: "cache".into(),
                    mount_path: "/c".into(),
                    sub_path: bad.into(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            let err = container_config(&meta(), &pod(), &container, "img", 0).unwrap_err();
            assert!(matches!(err, Error::InvalidConfig { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn an_unknown_volume_or_kind_is_refused() {
        let container = pb::Container {
            name: "app".into(),
            volume_mounts: vec![pb::VolumeMount {
                name: "nope".into(),
                mount_path: "/n".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let err = container_config(&meta(), &pod(), &container, "img", 0).unwrap_err();
        assert!(err.to_string().contains("unknown volume \"nope\""), "{err}");
        let mut p = pod();
        p.volumes.push(pb::Volume {
            name: "cfg".into(),
            kind: "nfs".into(),
            source: "server:/export".into(),
            ..Default::default()
        });
        let err = volume_sources(&meta(), &p).unwrap_err();
        assert!(err.to_string().contains("nfs volumes"), "{err}");
    }

    #[test]
    fn the_sandbox_holds_the_pods_empty_dirs() {
        let config = sandbox_config(&meta(), &pod(), 1, Some("net".into()));
        assert_eq!(config.hostname, "web");
        assert_eq!(config.volumes, ["k9v_cache_web_default_00000001"]);
        assert_eq!(
            engine_volumes(&pod()),
            [EmptyDir {
                name: "cache".into(),
                medium: Medium::Memory,
                size_limit_bytes: Some(1 << 20),
            }]
        );
    }

    fn file(path: &str, content: &str, mode: u32) -> pb::VolumeFile {
        pb::VolumeFile {
            path: path.into(),
            content: content.as_bytes().to_vec(),
            mode,
        }
    }

    /// `pod()` with a secret volume (two files) and an optional configMap volume with none.
    fn pod_with_files() -> pb::Pod {
        let mut p = pod();
        p.volumes.push(pb::Volume {
            name: "creds".into(),
            kind: "secret".into(),
            source: "db".into(),
            files: vec![
                file("username", "admin", 0),
                file("db/password", "s3", 0o400),
            ],
            ..Default::default()
        });
        p.volumes.push(pb::Volume {
            name: "settings".into(),
            kind: "configMap".into(),
            source: "missing".into(),
            optional: true,
            ..Default::default()
        });
        p
    }

    #[test]
    fn config_map_and_secret_volumes_are_tmpfs_volumes_of_the_sandbox() {
        let volumes = engine_volumes(&pod_with_files());
        assert_eq!(
            volumes[1..],
            [
                EmptyDir {
                    name: "creds".into(),
                    medium: Medium::Memory,
                    size_limit_bytes: Some(2 * 4096 + FILES_VOLUME_HEADROOM),
                },
                EmptyDir {
                    name: "settings".into(),
                    medium: Medium::Memory,
                    size_limit_bytes: Some(FILES_VOLUME_HEADROOM),
                },
            ]
        );
        let config = sandbox_config(&meta(), &pod_with_files(), 0, None);
        assert_eq!(
            config.volumes,
            [
                "k9v_cache_web_default_00000001",
                "k9v_creds_web_default_00000001",
                "k9v_settings_web_default_00000001",
            ]
        );
    }

    #[test]
    fn volume_files_keep_paths_and_modes_and_default_an_unset_mode() {
        let files = volume_files(&meta(), &pod_with_files()).unwrap();
        type Seen<'a> = Vec<(&'a str, Vec<(&'a str, &'a [u8], u32)>)>;
        let seen: Seen = files
            .iter()
            .map(|(volume, files)| {
                let files = (files.iter())
                    .map(|f| (f.path.as_str(), f.content.as_slice(), f.mode))
                    .collect();
                (volume.as_str(), files)
            })
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "k9v_creds_web_default_00000001",
                    vec![
                        ("username", b"admin".as_slice(), 0o644),
                        ("db/password", b"s3".as_slice(), 0o400),
                    ]
                ),
                ("k9v_settings_web_default_00000001", vec![]),
            ]
        );
        let shown = format!("{:?}", files[0].1[0]);
        assert!(!shown.contains("admin"), "Debug shows no value: {shown}");
    }

    #[test]
    fn a_file_path_may_not_leave_its_volume() {
        for bad in ["/etc/passwd", "../x", "a/../../x", "", "./"] {
            let mut p = pod_with_files();
            p.volumes[2].files = vec![file(bad, "x", 0o644)];
            let err = volume_files(&meta(), &p).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidConfig { what, .. } if what == "volume creds"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn config_map_and_secret_volumes_are_always_mounted_read_only() {
        let container = pb::Container {
            name: "app".into(),
            volume_mounts: vec![
                pb::VolumeMount {
                    name: "creds".into(),
                    mount_path: "/etc/secret".into(),
                    ..Default::default()
                },
                pb::VolumeMount {
                    name: "settings".into(),
                    mount_path: "/etc/app.conf".into(),
                    sub_path: "app.conf".into(),
                    ..Default::default()
                },
                pb::VolumeMount {
                    name: "cache".into(),
                    mount_path: "/cache".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let config = container_config(&meta(), &pod_with_files(), &container, "img", 0).unwrap();
        let seen: Vec<_> = (config.mounts.iter())
            .map(|m| (&m.source, m.read_only, m.sub_path.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    &MountSource::Volume("k9v_creds_web_default_00000001".into()),
                    true,
                    None
                ),
                (
                    &MountSource::Volume("k9v_settings_web_default_00000001".into()),
                    true,
                    Some("app.conf")
                ),
                (
                    &MountSource::Volume("k9v_cache_web_default_00000001".into()),
                    false,
                    None
                ),
            ]
        );
    }
}
