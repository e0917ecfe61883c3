//! Namespaces, ConfigMaps and Secrets: list, get, delete (apply is in `apply.rs`; lookups by
//! namespace in `lookup.rs`).

use kube9_proto::namespace;
use kube9_proto::pb;
use tonic::Status;

use super::lookup::listed;
use super::ClusterApi;
use crate::state::Error;

impl ClusterApi {
    pub(super) fn do_list_namespaces(&self) -> pb::ListNamespacesResponse {
        let (resource_version, namespaces) = self
            .control
            .read(|c| (c.version(), c.namespaces.values().cloned().collect()));
        pb::ListNamespacesResponse {
            namespaces,
            resource_version,
        }
    }

    pub(super) fn do_get_namespace(&self, key: pb::ObjectKey) -> Result<pb::Namespace, Status> {
        let found = self.control.read(|c| c.namespaces.get(&key.name).cloned());
        found.ok_or_else(|| Error::Missing(format!("namespaces \"{}\" not found", key.name)).into())
    }

    pub(super) async fn do_delete_namespace(
        &self,
        key: pb::ObjectKey,
    ) -> Result<pb::Namespace, Status> {
        let (res, commit) = self.control.mutate(|c| c.delete_namespace(&key.name));
        let ns = res?;
        commit.wait().await.map_err(Error::from)?;
        Ok(ns)
    }

    pub(super) fn do_list_config_maps(
        &self,
        r: pb::ListObjectsRequest,
    ) -> Result<pb::ListConfigMapsResponse, Status> {
        let selector = kube9_proto::selector::parse(&r.label_selector)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let (resource_version, mut config_maps): (u64, Vec<pb::ConfigMap>) =
            self.control.read(|c| {
                let items = (c.config_maps.values())
                    .filter(|cm| {
                        listed(&r.namespace, &cm.namespace) && selector.matches(&cm.labels)
                    })
                    .cloned()
                    .collect();
                (c.version(), items)
            });
        config_maps.sort_by_key(|cm| cm.key());
        Ok(pb::ListConfigMapsResponse {
            config_maps,
            resource_version,
        })
    }

    pub(super) fn do_get_config_map(&self, key: pb::ObjectKey) -> Result<pb::ConfigMap, Status> {
        let found = (self.control).read(|c| {
            c.config_maps
                .get(&namespace::key(&key.namespace, &key.name))
                .cloned()
        });
        found.ok_or_else(|| {
            let ns = namespace::or_default(&key.namespace);
            Error::Missing(format!(
                "configmaps \"{}\" not found in namespace \"{ns}\"",
                key.name
            ))
            .into()
        })
    }

    pub(super) async fn do_delete_config_map(
        &self,
        key: pb::ObjectKey,
    ) -> Result<pb::ConfigMap, Status> {
        let (res, commit) = (self.control)
            .mutate(|c| c.delete_config_map(&namespace::key(&key.namespace, &key.name)));
        let cm = res?;
        commit.wait().await.map_err(Error::from)?;
        Ok(cm)
    }

    pub(super) fn do_list_secrets(
        &self,
        r: pb::ListObjectsRequest,
    ) -> Result<pb::ListSecretsResponse, Status> {
        let selector = kube9_proto::selector::parse(&r.label_selector)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let (resource_version, mut secrets): (u64, Vec<pb::Secret>) = self.control.read(|c| {
            let items = (c.secrets.values())
                .filter(|s| listed(&r.namespace, &s.namespace) && selector.matches(&s.labels))
                .cloned()
                .collect();
            (c.version(), items)
        });
        secrets.sort_by_key(|s| s.key());
        Ok(pb::ListSecretsResponse {
            secrets,
            resource_version,
        })
    }

    pub(super) fn do_get_secret(&self, key: pb::ObjectKey) -> Result<pb::Secret, Status> {
        let found = (self.control).read(|c| {
            c.secrets
                .get(&namespace::key(&key.namespace, &key.name))
                .cloned()
        });
        found.ok_or_else(|| {
            let ns = namespace::or_default(&key.namespace);
            Error::Missing(format!(
                "secrets \"{}\" not found in namespace \"{ns}\"",
                key.name
            ))
            .into()
        })
    }

    pub(super) async fn do_delete_secret(&self, key: pb::ObjectKey) -> Result<pb::Secret, Status> {
        let (res, commit) =
            (self.control).mutate(|c| c.delete_secret(&namespace::key(&key.namespace, &key.name)));
        let s = res?;
        commit.wait().await.map_err(Error::from)?;
        Ok(s)
    }
}
