//! Labels and annotations changed in place (`kube9ctl label`, `kube9ctl annotate`).
//!
//! Keys and values are checked as Kubernetes checks them, and an existing key keeps its value
//! unless the request says `overwrite`: any refusal changes nothing. Pods, nodes, namespaces,
//! ConfigMaps and Secrets have labels; of them only pods have annotations in Kube-9.

use std::collections::HashMap;

use kube9_proto::{namespace, pb, validate};

use super::{not_found, Cluster, Error, Result};

/// The kinds `SetMetadata` accepts, as kubectl spells them (singular, plural or short).
pub fn kind_of(kind: &str) -> Option<&'static str> {
    Some(match kind.to_ascii_lowercase().as_str() {
        "pod" | "pods" | "po" => "pod",
        "node" | "nodes" | "no" => "node",
        "namespace" | "namespaces" | "ns" => "namespace",
        "configmap" | "configmaps" | "cm" => "configmap",
        "secret" | "secrets" => "secret",
        _ => return None,
    })
}

/// `map` with the request's changes, or why they are refused.
fn changed(
    map: &HashMap<String, String>,
    r: &pb::SetMetadataRequest,
) -> Result<HashMap<String, String>> {
    let what = if r.annotations { "annotation" } else { "label" };
    let mut out = map.clone();
    let mut keys: Vec<&String> = r.set.keys().collect();
    keys.sort();
    for key in keys {
        let value = &r.set[key];
        validate::check_label_key(key)
            .map_err(|m| Error::Invalid(m.replace("label key", &format!("{what} key"))))?;
        if !r.annotations {
            validate::check_label_value(value).map_err(Error::Invalid)?;
        }
        if r.remove.contains(key) {
            return Err(Error::Invalid(format!(
                "{what} {key:?} is both set and removed"
            )));
        }
        match map.get(key) {
            Some(old) if old != value && !r.overwrite => {
                return Err(Error::Invalid(format!(
                    "'{key}' already has a value ({old}), and --overwrite is false"
                )))
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    for key in &r.remove {
        validate::check_label_key(key)
            .map_err(|m| Error::Invalid(m.replace("label key", &format!("{what} key"))))?;
        out.remove(key);
    }
    if r.annotations {
        validate::validate_annotations("metadata.annotations", &out)
            .map_err(|e| Error::Invalid(e.to_string()))?;
    }
    Ok(out)
}

impl Cluster {
    /// Sets and removes labels or annotations of one object, all or nothing.
    pub fn set_metadata(&mut self, r: &pb::SetMetadataRequest) -> Result<pb::SetMetadataResponse> {
        let kind = kind_of(&r.kind).ok_or_else(|| {
            Error::Invalid(format!(
                "unknown kind {:?}: labels are on pods, nodes, namespaces, configmaps and secrets",
                r.kind
            ))
        })?;
        if r.annotations && kind != "pod" {
            return Err(Error::Invalid(format!(
                "a {kind} has no annotations in Kube-9: only pods do"
            )));
        }
        let key = namespace::key(&r.namespace, &r.name);
        let missing = |what: &str| {
            Error::Missing(format!(
                "{what} \"{}\" not found in namespace \"{}\"",
                r.name,
                namespace::or_default(&r.namespace)
            ))
        };
        let current = match kind {
            "pod" => {
                let pod = self.pods.get(&key).ok_or_else(|| missing("pods"))?;
                if r.annotations {
                    &pod.annotations
                } else {
                    &pod.labels
                }
            }
            "node" => {
                &(self.nodes.get(&r.name))
                    .ok_or_else(|| not_found("node", &r.name))?
                    .node
                    .labels
            }
            "namespace" => {
                &(self.namespaces.get(&r.name))
                    .ok_or_else(|| not_found("namespace", &r.name))?
                    .labels
            }
            "configmap" => {
                &(self.config_maps.get(&key))
                    .ok_or_else(|| missing("configmaps"))?
                    .labels
            }
            _ => {
                &(self.secrets.get(&key))
                    .ok_or_else(|| missing("secrets"))?
                    .labels
            }
        };
        let values = changed(current, r)?;
        let is_changed = &values != current;
        if is_changed {
            let what = if r.annotations {
                "annotations"
            } else {
                "labels"
            };
            match kind {
                "pod" => {
                    let pod = self.pods.get_mut(&key).expect("checked");
                    if r.annotations {
                        pod.annotations = values.clone();
                    } else {
                        pod.labels = values.clone();
                    }
                    self.save_pod(&key, pb::WatchEventType::Modified);
                    self.event("Pod", &key, false, "Updated", format!("{what} changed"));
                }
                "node" => {
                    self.nodes.get_mut(&r.name).expect("checked").node.labels = values.clone();
                    self.save_node(&r.name, pb::WatchEventType::Modified);
                    self.event("Node", &r.name, false, "Updated", format!("{what} changed"));
                }
                "namespace" => {
                    let ns = self.namespaces.get_mut(&r.name).expect("checked");
                    ns.labels = values.clone();
                    let ns = ns.clone();
                    self.batch.push(super::Op::PutNamespace(ns));
                }
                "configmap" => {
                    let mut cm = self.config_maps[&key].clone();
                    cm.labels = values.clone();
                    self.put_config_map(cm);
                }
                _ => {
                    let mut s = self.secrets[&key].clone();
                    s.labels = values.clone();
                    self.put_secret(s);
                }
            }
        }
        Ok(pb::SetMetadataResponse {
            values,
            changed: is_changed,
        })
    }
}
