//! `Apply`: every object of a manifest in one round trip, all or nothing.
//!
//! Everything is admitted first (validated, checked against what exists and against the rest
//! of the request), so a bad object stores nothing. Then nodes are created (a node that fails
//! to start fails the apply before anything else is stored), and the namespaces, ConfigMaps,
//! Secrets and pods go in under one lock, admitted again there in case another apply raced.

use std::collections::HashSet;

use kube9_proto::namespace;
use kube9_proto::pb;
use tonic::{Request, Response, Status};

use super::cluster::ClusterApi;
use crate::state::pods::Admission;
use crate::state::{Cluster, Error};

/// One admitted object: its kind, namespace (empty for cluster-wide kinds), name, and what
/// applying it does.
struct Admitted {
    kind: &'static str,
    namespace: String,
    name: String,
    admission: Admission,
}

impl Admitted {
    fn changes(&self) -> bool {
        !matches!(self.admission, Admission::Unchanged)
    }

    fn is(&self, kind: &str, namespace: &str, name: &str) -> bool {
        self.kind == kind && self.namespace == namespace && self.name == name && self.changes()
    }
}

/// Fills in the default namespace and rejects an object named twice.
fn normalize(r: &mut pb::ApplyRequest) -> Result<(), Error> {
    for pod in &mut r.pods {
        pod.namespace = namespace::or_default(&pod.namespace).to_string();
        // Requests default to limits and add up to the pod's request, whoever the client is.
        kube9_proto::validate::normalize_pod(pod);
    }
    for cm in &mut r.config_maps {
        cm.namespace = namespace::or_default(&cm.namespace).to_string();
    }
    for s in &mut r.secrets {
        s.namespace = namespace::or_default(&s.namespace).to_string();
    }
    let names = (r.pods.iter().map(|p| ("pod", p.key())))
        .chain(r.nodes.iter().map(|n| ("node", n.name.clone())))
        .chain(r.namespaces.iter().map(|n| ("namespace", n.name.clone())))
        .chain(r.config_maps.iter().map(|c| ("configmap", c.key())))
        .chain(r.secrets.iter().map(|s| ("secret", s.key())));
    let mut seen = HashSet::new();
    for (kind, key) in names {
        if !seen.insert((kind, key.clone())) {
            return Err(Error::Invalid(format!(
                "{kind} \"{key}\" appears more than once in the request"
            )));
        }
    }
    Ok(())
}

/// Admits every object of the request against `c`, in the order they are applied.
fn admit(c: &Cluster, r: &pb::ApplyRequest) -> Result<Vec<Admitted>, Error> {
    let mut out = Vec::new();
    for spec in &r.nodes {
        kube9_proto::validate::validate_node_spec(spec)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let admission = match c.nodes.get(&spec.name) {
            None => Admission::Created,
            Some(e)
                if e.node.cpu_capacity_millis == spec.cpu_millis
                    && e.node.labels == spec.labels =>
            {
                Admission::Unchanged
            }
            Some(_) => {
                return Err(Error::AlreadyExists(format!(
                    "node \"{}\" already exists with a different spec",
                    spec.name
                )))
            }
        };
        out.push(Admitted {
            kind: "Node",
            namespace: String::new(),
            name: spec.name.clone(),
            admission,
        });
    }
    let mut creating = HashSet::new();
    for ns in &r.namespaces {
        let admission = c.admit_namespace(ns)?;
        creating.insert(ns.name.clone());
        out.push(Admitted {
            kind: "Namespace",
            namespace: String::new(),
            name: ns.name.clone(),
            admission,
        });
    }
    for cm in &r.config_maps {
        out.push(Admitted {
            kind: "ConfigMap",
            namespace: cm.namespace.clone(),
            name: cm.name.clone(),
            admission: c.admit_config_map(cm, &creating)?,
        });
    }
    for s in &r.secrets {
        out.push(Admitted {
            kind: "Secret",
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            admission: c.admit_secret(s, &creating)?,
        });
    }
    for pod in &r.pods {
        out.push(Admitted {
            kind: "Pod",
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            admission: c.admit_pod_with(pod, &creating)?,
        });
    }
    Ok(out)
}

impl ClusterApi {
    pub(super) async fn do_apply(
        &self,
        request: Request<pb::ApplyRequest>,
    ) -> Result<Response<pb::ApplyResponse>, Status> {
        let mut r = request.into_inner();
        normalize(&mut r)?;
        let admitted = self.control.read(|c| admit(c, &r))?;
        let results = admitted
            .iter()
            .map(|a| pb::ApplyResult {
                kind: a.kind.to_string(),
                name: a.name.clone(),
                namespace: a.namespace.clone(),
                action: match a.admission {
                    Admission::Created => "created",
                    Admission::Configured => "configured",
                    Admission::Unchanged => "unchanged",
                }
                .into(),
            })
            .collect();
        if r.dry_run {
            return Ok(Response::new(pb::ApplyResponse { results }));
        }
        let new_nodes: Vec<pb::NodeSpec> = (r.nodes.drain(..))
            .filter(|n| admitted.iter().any(|a| a.is("Node", "", &n.name)))
            .collect();
        if !new_nodes.is_empty() {
            self.ops.create_nodes(new_nodes).await?;
        }
        if r.namespaces.is_empty()
            && r.config_maps.is_empty()
            && r.secrets.is_empty()
            && r.pods.is_empty()
        {
            return Ok(Response::new(pb::ApplyResponse { results }));
        }
        let (res, commit) = self.control.mutate(|c| {
            // Admitted again under this lock: another apply may have raced this one.
            let admitted = admit(
                c,
                &pb::ApplyRequest {
                    nodes: Vec::new(),
                    ..r.clone()
                },
            )?;
            for ns in r.namespaces {
                if admitted.iter().any(|a| a.is("Namespace", "", &ns.name)) {
                    c.put_namespace(ns);
                }
            }
            for cm in r.config_maps {
                if admitted
                    .iter()
                    .any(|a| a.is("ConfigMap", &cm.namespace, &cm.name))
                {
                    c.put_config_map(cm);
                }
            }
            for s in r.secrets {
                if admitted
                    .iter()
                    .any(|a| a.is("Secret", &s.namespace, &s.name))
                {
                    c.put_secret(s);
                }
            }
            let mut keys = Vec::new();
            for pod in r.pods {
                if admitted
                    .iter()
                    .any(|a| a.is("Pod", &pod.namespace, &pod.name))
                {
                    keys.push(pod.key());
                    c.insert_pod(pod);
                }
            }
            c.place_pending();
            c.explain_pods(&keys);
            Ok::<_, Error>(())
        });
        res?;
        commit.wait().await.map_err(Error::from)?;
        Ok(Response::new(pb::ApplyResponse { results }))
    }
}
