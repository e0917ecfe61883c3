//! Namespaces, ConfigMaps and Secrets: admission, storage and deletion.
//!
//! ```text
//! Namespace: Active ──delete──▶ Terminating (its pods are deleted, its ConfigMaps and Secrets
//!            removed) ──its last pod gone──▶ removed
//! ```
//! `default` always exists and cannot be deleted. Objects are keyed `namespace/name`
//! ([`kube9_proto::namespace::key`]). A ConfigMap or Secret applied again with other contents
//! replaces the stored one (`configured`), and pods waiting for it are sent to their nodes
//! ([`Cluster::retry_config_waiting`]). Secret values never go into events or logs.

use std::collections::HashSet;

use kube9_proto::namespace::{self, DEFAULT};
use kube9_proto::pb::{self, PodPhase};
use kube9_proto::validate;

use super::pods::Admission;
use super::{now_ms, Cluster, Error, Result};
use crate::store::Op;

/// `Namespace.phase` values.
pub const ACTIVE: &str = "Active";
pub const TERMINATING: &str = "Terminating";

impl Cluster {
    /// Creates `default` when a store from before namespaces (or a new one) lacks it.
    pub(super) fn ensure_default_namespace(&mut self) {
        if !self.namespaces.contains_key(DEFAULT) {
            let ns = pb::Namespace {
                name: DEFAULT.into(),
                created_ms: now_ms(),
                phase: ACTIVE.into(),
                ..Default::default()
            };
            let mut ns = ns;
            ns.resource_version = self.next_version();
            self.batch.push(Op::PutNamespace(ns.clone()));
            self.namespaces.insert(DEFAULT.into(), ns);
        }
    }

    /// Whether namespace `ns` is being deleted.
    pub fn namespace_terminating(&self, ns: &str) -> bool {
        self.namespaces
            .get(ns)
            .is_some_and(|n| n.phase == TERMINATING)
    }

    /// Whether objects may be created in `ns`: it exists (or is in `creating`, the namespaces
    /// the same request creates) and is not being deleted.
    pub fn admit_into(&self, ns: &str) -> Result<()> {
        self.admit_into_with(ns, &HashSet::new())
    }

    /// [`Self::admit_into`], counting `creating` as existing.
    pub fn admit_into_with(&self, ns: &str, creating: &HashSet<String>) -> Result<()> {
        match self.namespaces.get(ns) {
            Some(n) if n.phase == TERMINATING => Err(Error::FailedPrecondition(format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ))),
            Some(_) => Ok(()),
            None if creating.contains(ns) => Ok(()),
            None => Err(Error::Missing(format!("namespaces \"{ns}\" not found"))),
        }
    }

    /// Checks that `ns` may be applied.
    pub fn admit_namespace(&self, ns: &pb::Namespace) -> Result<Admission> {
        validate::validate_namespace(ns).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(match self.namespaces.get(&ns.name) {
            None => Admission::Created,
            Some(n) if n.phase == TERMINATING => {
                return Err(Error::AlreadyExists(format!(
                    "namespace \"{}\" is being deleted; apply it again once it is gone",
                    ns.name
                )))
            }
            Some(n) if n.labels == ns.labels => Admission::Unchanged,
            Some(_) => Admission::Configured,
        })
    }

    /// Stores a namespace (new, or with new labels).
    pub fn put_namespace(&mut self, mut ns: pb::Namespace) {
        match self.namespaces.get(&ns.name) {
            Some(old) => ns.created_ms = old.created_ms,
            None => ns.created_ms = now_ms(),
        }
        ns.phase = ACTIVE.into();
        let created = !self.namespaces.contains_key(&ns.name);
        ns.resource_version = self.next_version();
        self.batch.push(Op::PutNamespace(ns.clone()));
        if created {
            self.event(
                "Namespace",
                &ns.name,
                false,
                "Created",
                "namespace created".into(),
            );
        }
        self.namespaces.insert(ns.name.clone(), ns);
    }

    /// Starts deleting a namespace: its pods are deleted (with their grace period), its
    /// ConfigMaps and Secrets removed; the namespace goes once its last pod has.
    pub fn delete_namespace(&mut self, name: &str) -> Result<pb::Namespace> {
        if namespace::BUILT_IN.contains(&name) {
            return Err(Error::FailedPrecondition(format!(
                "namespace \"{name}\" cannot be deleted"
            )));
        }
        let version = self.next_version();
        let ns = self
            .namespaces
            .get_mut(name)
            .ok_or_else(|| Error::Missing(format!("namespaces \"{name}\" not found")))?;
        if ns.phase != TERMINATING {
            ns.phase = TERMINATING.into();
            ns.resource_version = version;
            let ns = ns.clone();
            self.batch.push(Op::PutNamespace(ns));
            self.event(
                "Namespace",
                name,
                false,
                "Deleting",
                "deleting everything in the namespace".into(),
            );
        }
        let inside = |key: &String| namespace::split(key).0 == name;
        let config_maps: Vec<String> = self
            .config_maps
            .keys()
            .filter(|k| inside(k))
            .cloned()
            .collect();
        for key in config_maps {
            self.config_maps.remove(&key);
            self.batch.push(Op::DeleteConfigMap(key));
        }
        let secrets: Vec<String> = self.secrets.keys().filter(|k| inside(k)).cloned().collect();
        for key in secrets {
            self.secrets.remove(&key);
            self.batch.push(Op::DeleteSecret(key));
        }
        let pods: Vec<String> = self
            .pods
            .iter()
            .filter(|(k, p)| inside(k) && p.phase() != PodPhase::Terminating)
            .map(|(k, _)| k.clone())
            .collect();
        let view = self.namespaces[name].clone();
        for key in pods {
            // 0: each pod's own grace period, or kube9d's default.
            self.delete_pod(&key, 0)?;
        }
        self.finish_namespaces();
        Ok(self.namespaces.get(name).cloned().unwrap_or(view))
    }

    /// Removes every terminating namespace whose last pod is gone.
    pub fn finish_namespaces(&mut self) {
        let done: Vec<String> = self
            .namespaces
            .values()
            .filter(|n| n.phase == TERMINATING)
            .map(|n| n.name.clone())
            .filter(|n| !self.pods.keys().any(|k| namespace::split(k).0 == n))
            .collect();
        for name in done {
            self.namespaces.remove(&name);
            self.batch.push(Op::DeleteNamespace(name.clone()));
            self.event(
                "Namespace",
                &name,
                false,
                "Deleted",
                "namespace deleted".into(),
            );
        }
    }

    /// Checks that a ConfigMap may be applied (in a namespace that exists or that `creating`
    /// names).
    pub fn admit_config_map(
        &self,
        cm: &pb::ConfigMap,
        creating: &HashSet<String>,
    ) -> Result<Admission> {
        validate::validate_config_map(cm).map_err(|e| Error::Invalid(e.to_string()))?;
        self.admit_into_with(namespace::or_default(&cm.namespace), creating)?;
        Ok(match self.config_maps.get(&cm.key()) {
            None => Admission::Created,
            Some(old)
                if old.data == cm.data
                    && old.binary_data == cm.binary_data
                    && old.labels == cm.labels =>
            {
                Admission::Unchanged
            }
            Some(_) => Admission::Configured,
        })
    }

    /// Stores a ConfigMap and sends the pods that waited for it.
    pub fn put_config_map(&mut self, mut cm: pb::ConfigMap) {
        cm.namespace = namespace::or_default(&cm.namespace).to_string();
        let key = cm.key();
        cm.created_ms = self
            .config_maps
            .get(&key)
            .map_or_else(now_ms, |o| o.created_ms);
        cm.resource_version = self.next_version();
        self.batch.push(Op::PutConfigMap(cm.clone()));
        self.config_maps.insert(key, cm);
        self.retry_config_waiting();
    }

    /// Removes a ConfigMap (`key`: namespace/name). Running pods keep what they were given.
    pub fn delete_config_map(&mut self, key: &str) -> Result<pb::ConfigMap> {
        let cm = self.config_maps.remove(key).ok_or_else(|| {
            let (ns, name) = namespace::split(key);
            Error::Missing(format!(
                "configmaps \"{name}\" not found in namespace \"{ns}\""
            ))
        })?;
        self.batch.push(Op::DeleteConfigMap(key.to_string()));
        Ok(cm)
    }

    /// Checks that a Secret may be applied. Messages name keys, never values.
    pub fn admit_secret(&self, s: &pb::Secret, creating: &HashSet<String>) -> Result<Admission> {
        validate::validate_secret(s).map_err(|e| Error::Invalid(e.to_string()))?;
        self.admit_into_with(namespace::or_default(&s.namespace), creating)?;
        Ok(match self.secrets.get(&s.key()) {
            None => Admission::Created,
            Some(old) if old.data == s.data && old.r#type == s.r#type && old.labels == s.labels => {
                Admission::Unchanged
            }
            Some(_) => Admission::Configured,
        })
    }

    /// Stores a Secret (encrypted by the store) and sends the pods that waited for it.
    pub fn put_secret(&mut self, mut s: pb::Secret) {
        s.namespace = namespace::or_default(&s.namespace).to_string();
        if s.r#type.is_empty() {
            s.r#type = "Opaque".into();
        }
        let key = s.key();
        s.created_ms = self.secrets.get(&key).map_or_else(now_ms, |o| o.created_ms);
        s.resource_version = self.next_version();
        self.batch.push(Op::PutSecret(s.clone()));
        self.secrets.insert(key, s);
        self.retry_config_waiting();
    }

    /// Removes a Secret (`key`: namespace/name). Running pods keep what they were given.
    pub fn delete_secret(&mut self, key: &str) -> Result<pb::Secret> {
        let s = self.secrets.remove(key).ok_or_else(|| {
            let (ns, name) = namespace::split(key);
            Error::Missing(format!(
                "secrets \"{name}\" not found in namespace \"{ns}\""
            ))
        })?;
        self.batch.push(Op::DeleteSecret(key.to_string()));
        Ok(s)
    }
}
