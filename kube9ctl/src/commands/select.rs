//! What `get`, `delete` and `logs` share for selecting objects: field selectors per kind, pods
//! listed a page at a time (`--chunk-size`), and the names in a listing.

use crate::cli::Kind;
use crate::client::Client;
use crate::output::listing::Objects;
use kube9_proto::fields::{self, FieldSelector};
use kube9_proto::namespace::DEFAULT;
use kube9_proto::pb;
use kube9_proto::selector::Selector;

/// `--field-selector` for `kind`: pods know [`fields::POD_FIELDS`], every other kind
/// [`fields::NAME_FIELDS`].
pub fn field_selector(kind: Kind, s: Option<&str>) -> anyhow::Result<FieldSelector> {
    let allowed = if kind == Kind::Pod {
        fields::POD_FIELDS
    } else {
        fields::NAME_FIELDS
    };
    Ok(fields::parse(s.unwrap_or_default(), allowed)?)
}

/// Whether an object of namespace `namespace` (empty: cluster-wide) named `name` passes the
/// `metadata.*` fields of `fields`.
pub fn name_fields_match(fields: &FieldSelector, namespace: &str, name: &str) -> bool {
    fields.matches(|field| match field {
        "metadata.name" => name.to_string(),
        "metadata.namespace" => namespace.to_string(),
        _ => String::new(),
    })
}

/// Every pod of `namespace` (empty: all) on `node` (empty: any) matching the selectors, asked
/// for `chunk` at a time (0: in one answer). kube9d selects; the field selector is sent as
/// written, so kube9d's error (and kubectl's wording) reaches the user.
pub async fn list_pods(
    cluster: &mut Client,
    namespace: &str,
    node: &str,
    labels: &Selector,
    fields: &str,
    chunk: u32,
) -> anyhow::Result<Vec<pb::Pod>> {
    let mut pods = Vec::new();
    let mut token = String::new();
    loop {
        let request = pb::ListPodsRequest {
            node: node.into(),
            label_selector: labels.to_string(),
            namespace: namespace.into(),
            field_selector: fields.into(),
            limit: chunk,
            continue_token: std::mem::take(&mut token),
        };
        let response = cluster.client.list_pods(request).await;
        let page = cluster.check(response)?;
        pods.extend(page.pods);
        if page.continue_token.is_empty() {
            return Ok(pods);
        }
        token = page.continue_token;
    }
}

/// The names of the objects of a listing, in its order.
pub fn names(objects: &Objects) -> Vec<String> {
    match objects {
        Objects::Nodes(v) => v.iter().map(|o| o.name.clone()).collect(),
        Objects::Pods(v) => v.iter().map(|o| o.name.clone()).collect(),
        Objects::Events(v) => v.iter().map(|o| o.id.to_string()).collect(),
        Objects::Namespaces(v) => v.iter().map(|o| o.name.clone()).collect(),
        Objects::ConfigMaps(v) => v.iter().map(|o| o.name.clone()).collect(),
        Objects::Secrets(v) => v.iter().map(|o| o.name.clone()).collect(),
    }
}

/// Which events `get events` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventScope {
    /// Every event (`-A`, or `--for` a node or namespace).
    All,
    /// The events about objects in this namespace. `default` also holds the events about nodes
    /// and namespaces, as in Kubernetes, which records them there.
    Namespace(String),
}

impl EventScope {
    /// `ListEventsRequest.namespace`: events about cluster-wide objects have none, so the
    /// default namespace asks for all and keeps its own.
    pub fn request_namespace(&self) -> String {
        match self {
            EventScope::Namespace(ns) if ns != DEFAULT => ns.clone(),
            _ => String::new(),
        }
    }

    /// Whether `event` belongs in this scope.
    pub fn keeps(&self, event: &pb::Event) -> bool {
        match self {
            EventScope::All => true,
            EventScope::Namespace(ns) => {
                event.namespace == *ns || (ns == DEFAULT && event.namespace.is_empty())
            }
        }
    }
}

/// Oldest first; ties by id, which the server assigns in order.
pub fn sort_events(events: &mut [pb::Event]) {
    events.sort_by_key(|e| (e.time_ms, e.id));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_selectors_depend_on_the_kind() {
        assert!(field_selector(Kind::Pod, Some("status.phase=Running")).is_ok());
        assert!(field_selector(Kind::Pod, None).unwrap().is_empty());
        let err = field_selector(Kind::ConfigMap, Some("status.phase=Running")).unwrap_err();
        assert!(
            err.to_string()
                .contains("field label not supported: status.phase"),
            "{err}"
        );
        let fields = field_selector(Kind::Node, Some("metadata.name!=n1")).unwrap();
        assert!(name_fields_match(&fields, "", "n2"));
        assert!(!name_fields_match(&fields, "", "n1"));
    }
}
