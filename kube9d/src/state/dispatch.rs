//! Sending a bound pod to its node: what the pod refers to (ConfigMap and Secret keys,
//! `envFrom`, configMap and secret volumes) is resolved into the `RunPod` here, so a secret
//! travels only to the node of a pod that uses it and is never stored with the pod.
//!
//! ```text
//! bound ──everything it refers to exists──▶ RunPod to the node
//!   └──something is missing──▶ waits: CreateContainerConfigError, the missing name in its
//!        reason ──the ConfigMap or Secret is applied──▶ RunPod
//! ```
//! `fieldRef`s to the pod's own name, namespace and node are filled in too; `status.podIP`
//! is left to the agent, which knows it once the pod's sandbox exists.

use std::collections::{BTreeMap, HashMap};

use kube9_proto::pb::{self, control_message::Msg, env_var_source::Source, PodPhase};

use super::Cluster;

/// The STATUS of a pod that waits for a missing ConfigMap, Secret or key (Kubernetes' word).
pub const CREATE_CONTAINER_CONFIG_ERROR: &str = "CreateContainerConfigError";

/// File mode of configMap and secret volume files when the volume names none.
const DEFAULT_MODE: u32 = 0o644;

/// The ConfigMaps and Secrets a pod may refer to, by `namespace/name`.
pub struct Sources<'a> {
    pub config_maps: &'a HashMap<String, pb::ConfigMap>,
    pub secrets: &'a HashMap<String, pb::Secret>,
}

/// A ConfigMap's or Secret's keys and values, as one view.
struct Values(BTreeMap<String, Vec<u8>>);

impl Sources<'_> {
    fn config_map(&self, ns: &str, name: &str) -> Result<Values, String> {
        let cm = (self.config_maps.get(&kube9_proto::namespace::key(ns, name)))
            .ok_or_else(|| format!("configmap \"{name}\" not found"))?;
        let mut values: BTreeMap<String, Vec<u8>> = cm
            .data
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
            .collect();
        values.extend(cm.binary_data.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(Values(values))
    }

    fn secret(&self, ns: &str, name: &str) -> Result<Values, String> {
        let s = (self.secrets.get(&kube9_proto::namespace::key(ns, name)))
            .ok_or_else(|| format!("secret \"{name}\" not found"))?;
        Ok(Values(s.data.clone().into_iter().collect()))
    }
}

/// `pod` as its node runs it: references resolved, or why it cannot be (the first missing
/// ConfigMap, Secret or key that is not optional). Messages name objects and keys, never
/// values.
pub fn resolve(pod: &pb::Pod, sources: &Sources<'_>) -> Result<pb::Pod, String> {
    let mut out = pod.clone();
    let ns = pod.ns().to_string();
    for c in out
        .init_containers
        .iter_mut()
        .chain(out.containers.iter_mut())
    {
        c.env = resolve_env(pod, &ns, c, sources)?;
        c.env_from.clear();
    }
    for v in &mut out.volumes {
        v.files = match v.kind.as_str() {
            "configMap" => volume_files(v, sources.config_map(&ns, &v.source), "ConfigMap", &ns)?,
            "secret" => volume_files(v, sources.secret(&ns, &v.source), "Secret", &ns)?,
            _ => continue,
        };
    }
    Ok(out)
}

/// A container's environment: `envFrom` first (in order), then `env` (a later name wins on
/// the node), with every reference replaced by its value.
fn resolve_env(
    pod: &pb::Pod,
    ns: &str,
    c: &pb::Container,
    sources: &Sources<'_>,
) -> Result<Vec<pb::EnvVar>, String> {
    let mut env = Vec::new();
    for from in &c.env_from {
        let (found, optional) = match &from.source {
            Some(pb::env_from_source::Source::ConfigMapRef(r)) => {
                (sources.config_map(ns, &r.name), r.optional)
            }
            Some(pb::env_from_source::Source::SecretRef(r)) => {
                (sources.secret(ns, &r.name), r.optional)
            }
            None => continue,
        };
        match found {
            Ok(values) => env.extend(values.0.into_iter().map(|(k, v)| pb::EnvVar {
                name: format!("{}{k}", from.prefix),
                value: String::from_utf8_lossy(&v).into_owned(),
                value_from: None,
            })),
            Err(_) if optional => {}
            Err(why) => return Err(why),
        }
    }
    for var in &c.env {
        let Some(source) = var.value_from.as_ref().and_then(|f| f.source.as_ref()) else {
            env.push(var.clone());
            continue;
        };
        let value = match source {
            Source::ConfigMapKeyRef(r) => {
                key_value(sources.config_map(ns, &r.name), r, "ConfigMap", ns)?
            }
            Source::SecretKeyRef(r) => key_value(sources.secret(ns, &r.name), r, "Secret", ns)?,
            Source::FieldPath(path) => match path.as_str() {
                "metadata.name" => Some(pod.name.clone()),
                "metadata.namespace" => Some(ns.to_string()),
                "spec.nodeName" => Some(pod.node.clone()),
                // status.podIP: the agent fills it in.
                _ => {
                    env.push(var.clone());
                    continue;
                }
            },
        };
        if let Some(value) = value {
            env.push(pb::EnvVar {
                name: var.name.clone(),
                value,
                value_from: None,
            });
        }
    }
    Ok(env)
}

/// The value of one key; `None` when it is missing and optional.
fn key_value(
    found: Result<Values, String>,
    r: &pb::KeySelector,
    kind: &str,
    ns: &str,
) -> Result<Option<String>, String> {
    let values = match found {
        Ok(values) => values,
        Err(_) if r.optional => return Ok(None),
        Err(why) => return Err(why),
    };
    match values.0.get(&r.key) {
        Some(v) => Ok(Some(String::from_utf8_lossy(v).into_owned())),
        None if r.optional => Ok(None),
        None => Err(format!(
            "couldn't find key {} in {kind} {ns}/{}",
            r.key, r.name
        )),
    }
}

/// The files of a configMap or secret volume: its `items`, or every key under its own name.
fn volume_files(
    v: &pb::Volume,
    found: Result<Values, String>,
    kind: &str,
    ns: &str,
) -> Result<Vec<pb::VolumeFile>, String> {
    let values = match found {
        Ok(values) => values,
        Err(_) if v.optional => return Ok(Vec::new()),
        Err(why) => return Err(why),
    };
    let mode = |m: u32| match (m, v.default_mode) {
        (0, 0) => DEFAULT_MODE,
        (0, d) => d,
        (m, _) => m,
    };
    if v.items.is_empty() {
        return Ok(values
            .0
            .into_iter()
            .map(|(path, content)| pb::VolumeFile {
                path,
                content,
                mode: mode(0),
            })
            .collect());
    }
    let mut files = Vec::new();
    for item in &v.items {
        match values.0.get(&item.key) {
            Some(content) => files.push(pb::VolumeFile {
                path: item.path.clone(),
                content: content.clone(),
                mode: mode(item.mode),
            }),
            None if v.optional => {}
            None => {
                return Err(format!(
                    "couldn't find key {} in {kind} {ns}/{}",
                    item.key, v.source
                ))
            }
        }
    }
    Ok(files)
}

impl Cluster {
    /// Sends a bound pod to its node's agent with its references resolved; a pod whose
    /// ConfigMap, Secret or key is missing is not sent and waits with
    /// [`CREATE_CONTAINER_CONFIG_ERROR`]. Returns whether it was sent.
    pub fn dispatch(&mut self, key: &str) -> bool {
        let Some(pod) = self.pods.get(key) else {
            return false;
        };
        if pod.node.is_empty() || pod.phase().is_terminal() {
            return false;
        }
        let sources = Sources {
            config_maps: &self.config_maps,
            secrets: &self.secrets,
        };
        let resolved = resolve(pod, &sources);
        let pod = self.pods.get_mut(key).expect("present");
        let node = pod.node.clone();
        match resolved {
            Ok(run) => {
                if pod.status_reason == CREATE_CONTAINER_CONFIG_ERROR {
                    pod.status_reason.clear();
                    pod.reason.clear();
                    self.save_pod(key, pb::WatchEventType::Modified);
                }
                self.send(&node, Msg::RunPod(pb::RunPod { pod: Some(run) }))
            }
            Err(why) => {
                if pod.reason != why || pod.status_reason != CREATE_CONTAINER_CONFIG_ERROR {
                    pod.status_reason = CREATE_CONTAINER_CONFIG_ERROR.into();
                    pod.reason = why.clone();
                    for c in pod
                        .containers
                        .iter_mut()
                        .chain(pod.init_containers.iter_mut())
                    {
                        c.reason = CREATE_CONTAINER_CONFIG_ERROR.into();
                        c.message = why.clone();
                    }
                    self.save_pod(key, pb::WatchEventType::Modified);
                    self.event("Pod", key, true, "Failed", format!("Error: {why}"));
                }
                false
            }
        }
    }

    /// Sends the pods that wait for a ConfigMap or Secret, now that one was applied.
    pub fn retry_config_waiting(&mut self) {
        let waiting: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, p)| {
                p.status_reason == CREATE_CONTAINER_CONFIG_ERROR
                    && p.phase() == PodPhase::Scheduled
                    && !p.node.is_empty()
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in waiting {
            self.dispatch(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(
        env: Vec<pb::EnvVar>,
        env_from: Vec<pb::EnvFromSource>,
        volumes: Vec<pb::Volume>,
    ) -> pb::Pod {
        pb::Pod {
            name: "web".into(),
            namespace: "prod".into(),
            node: "n1".into(),
            containers: vec![pb::Container {
                name: "main".into(),
                env,
                env_from,
                ..Default::default()
            }],
            volumes,
            ..Default::default()
        }
    }

    fn from(source: Source) -> Option<pb::EnvVarSource> {
        Some(pb::EnvVarSource {
            source: Some(source),
        })
    }

    fn key_ref(name: &str, key: &str, optional: bool) -> pb::KeySelector {
        pb::KeySelector {
            name: name.into(),
            key: key.into(),
            optional,
        }
    }

    fn var(name: &str, source: Source) -> pb::EnvVar {
        pb::EnvVar {
            name: name.into(),
            value: String::new(),
            value_from: from(source),
        }
    }

    fn objects() -> (HashMap<String, pb::ConfigMap>, HashMap<String, pb::Secret>) {
        let cm = pb::ConfigMap {
            name: "game".into(),
            namespace: "prod".into(),
            data: [("lives".to_string(), "3".to_string())].into(),
            ..Default::default()
        };
        let secret = pb::Secret {
            name: "creds".into(),
            namespace: "prod".into(),
            data: [("password".to_string(), b"hunter2".to_vec())].into(),
            ..Default::default()
        };
        (
            [("prod/game".to_string(), cm)].into(),
            [("prod/creds".to_string(), secret)].into(),
        )
    }

    #[test]
    fn references_become_values_and_env_wins_over_env_from() {
        let (config_maps, secrets) = objects();
        let sources = Sources {
            config_maps: &config_maps,
            secrets: &secrets,
        };
        let p = pod(
            vec![
                var(
                    "PASSWORD",
                    Source::SecretKeyRef(key_ref("creds", "password", false)),
                ),
                var(
                    "LIVES",
                    Source::ConfigMapKeyRef(key_ref("game", "lives", false)),
                ),
                var("GONE", Source::ConfigMapKeyRef(key_ref("nope", "x", true))),
                var("NODE", Source::FieldPath("spec.nodeName".into())),
                var("IP", Source::FieldPath("status.podIP".into())),
            ],
            vec![pb::EnvFromSource {
                prefix: "GAME_".into(),
                source: Some(pb::env_from_source::Source::ConfigMapRef(
                    pb::ObjectSelector {
                        name: "game".into(),
                        optional: false,
                    },
                )),
            }],
            vec![],
        );
        let run = resolve(&p, &sources).unwrap();
        let env: Vec<(String, String)> = run.containers[0]
            .env
            .iter()
            .map(|e| (e.name.clone(), e.value.clone()))
            .collect();
        assert_eq!(
            env,
            [
                ("GAME_lives", "3"),
                ("PASSWORD", "hunter2"),
                ("LIVES", "3"),
                ("NODE", "n1"),
                ("IP", ""),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert!(
            run.containers[0].env[4].value_from.is_some(),
            "podIP is the agent's"
        );
        assert!(run.containers[0].env_from.is_empty());
    }

    #[test]
    fn a_missing_object_or_key_is_named_and_its_value_never() {
        let (config_maps, secrets) = objects();
        let sources = Sources {
            config_maps: &config_maps,
            secrets: &secrets,
        };
        let missing = pod(
            vec![var(
                "X",
                Source::SecretKeyRef(key_ref("other", "password", false)),
            )],
            vec![],
            vec![],
        );
        assert_eq!(
            resolve(&missing, &sources).unwrap_err(),
            "secret \"other\" not found"
        );
        let no_key = pod(
            vec![var(
                "X",
                Source::SecretKeyRef(key_ref("creds", "user", false)),
            )],
            vec![],
            vec![],
        );
        let why = resolve(&no_key, &sources).unwrap_err();
        assert_eq!(why, "couldn't find key user in Secret prod/creds");
        assert!(!why.contains("hunter2"));
    }

    #[test]
    fn volumes_get_their_files_with_items_and_modes() {
        let (config_maps, secrets) = objects();
        let sources = Sources {
            config_maps: &config_maps,
            secrets: &secrets,
        };
        let p = pod(
            vec![],
            vec![],
            vec![
                pb::Volume {
                    name: "cfg".into(),
                    kind: "configMap".into(),
                    source: "game".into(),
                    ..Default::default()
                },
                pb::Volume {
                    name: "creds".into(),
                    kind: "secret".into(),
                    source: "creds".into(),
                    default_mode: 0o400,
                    items: vec![pb::KeyToPath {
                        key: "password".into(),
                        path: "db/pass".into(),
                        mode: 0,
                    }],
                    ..Default::default()
                },
            ],
        );
        let run = resolve(&p, &sources).unwrap();
        let files = |i: usize| -> Vec<(String, Vec<u8>, u32)> {
            run.volumes[i]
                .files
                .iter()
                .map(|f| (f.path.clone(), f.content.clone(), f.mode))
                .collect()
        };
        assert_eq!(files(0), vec![("lives".into(), b"3".to_vec(), 0o644)]);
        assert_eq!(
            files(1),
            vec![("db/pass".into(), b"hunter2".to_vec(), 0o400)]
        );
    }
}
