//! Namespaces: the names every client and the server share.
//!
//! Pods, config maps and secrets live in a namespace; nodes and namespaces are cluster-wide.
//! An object's *key* is `namespace/name`: unique in the cluster, used by kube9d to index and
//! store objects and by the agent to tell pods of the same name apart.

use crate::pb;

/// The namespace of an object that names none, as in Kubernetes.
pub const DEFAULT: &str = "default";

/// The namespaces that always exist and cannot be deleted.
pub const BUILT_IN: &[&str] = &[DEFAULT];

/// `namespace` as given, or [`DEFAULT`] when empty.
pub fn or_default(namespace: &str) -> &str {
    if namespace.is_empty() {
        DEFAULT
    } else {
        namespace
    }
}

/// `namespace/name` (an empty namespace is [`DEFAULT`]).
pub fn key(namespace: &str, name: &str) -> String {
    format!("{}/{name}", or_default(namespace))
}

/// The namespace and name of a key made by [`key`]; a key without `/` is a name in
/// [`DEFAULT`] (how stores written before namespaces existed name pods).
pub fn split(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or((DEFAULT, key))
}

impl pb::Pod {
    /// The pod's namespace ([`DEFAULT`] when empty).
    pub fn ns(&self) -> &str {
        or_default(&self.namespace)
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        key(&self.namespace, &self.name)
    }
}

impl pb::ConfigMap {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        key(&self.namespace, &self.name)
    }
}

impl pb::Secret {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        key(&self.namespace, &self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_namespace_and_default_to_default() {
        assert_eq!(key("", "web"), "default/web");
        assert_eq!(key("prod", "web"), "prod/web");
        assert_eq!(split("prod/web"), ("prod", "web"));
        assert_eq!(split("web"), ("default", "web"));
        let pod = pb::Pod {
            name: "web".into(),
            ..Default::default()
        };
        assert_eq!((pod.ns(), pod.key().as_str()), ("default", "default/web"));
    }
}
