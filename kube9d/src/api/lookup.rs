//! Finding objects by namespace, shared by the handlers: a leaf, so handlers import it and it
//! imports none of them.

use kube9_proto::namespace;
use kube9_proto::pb;

use crate::state::{Cluster, Error};

/// Whether an object of namespace `ns` is in what a list asked for (empty: every namespace).
pub fn listed(asked: &str, ns: &str) -> bool {
    asked.is_empty() || namespace::or_default(ns) == asked
}

/// `pod "web" not found`, naming the namespace when it is not `default`.
pub fn pod_not_found(ns: &str, name: &str) -> Error {
    match namespace::or_default(ns) {
        namespace::DEFAULT => Error::Missing(format!("pod \"{name}\" not found")),
        ns => Error::Missing(format!("pod \"{name}\" not found in namespace \"{ns}\"")),
    }
}

/// The pod `name` of namespace `ns`, as stored.
pub fn pod(c: &Cluster, ns: &str, name: &str) -> Result<pb::Pod, Error> {
    c.pods
        .get(&namespace::key(ns, name))
        .cloned()
        .ok_or_else(|| pod_not_found(ns, name))
}

/// Whether a pod (or event) of namespace `ns` is in what a list asked for.
pub fn in_namespace(asked: &str, ns: &str) -> bool {
    listed(asked, ns)
}
