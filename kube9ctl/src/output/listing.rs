//! What `get` prints: one object or a list, in the format asked for.

use crate::cli::{Format, Kind};
use crate::output::objects::{
    ConfigMapObject, EventObject, List, NamespaceObject, NodeObject, PodObject, SecretObject,
};
use crate::output::{columns, to_json, to_yaml};
use kube9_proto::pb;
use serde::Serialize;

/// Objects of one kind, as fetched.
#[derive(Debug, Clone)]
pub enum Objects {
    Nodes(Vec<pb::Node>),
    Pods(Vec<pb::Pod>),
    Events(Vec<pb::Event>),
    Namespaces(Vec<pb::Namespace>),
    ConfigMaps(Vec<pb::ConfigMap>),
    Secrets(Vec<pb::Secret>),
}

impl Objects {
    /// No objects of `kind`.
    pub fn empty(kind: Kind) -> Self {
        match kind {
            Kind::Node => Objects::Nodes(Vec::new()),
            Kind::Pod => Objects::Pods(Vec::new()),
            Kind::Event => Objects::Events(Vec::new()),
            Kind::Namespace => Objects::Namespaces(Vec::new()),
            Kind::ConfigMap => Objects::ConfigMaps(Vec::new()),
            Kind::Secret => Objects::Secrets(Vec::new()),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Objects::Nodes(v) => v.is_empty(),
            Objects::Pods(v) => v.is_empty(),
            Objects::Events(v) => v.is_empty(),
            Objects::Namespaces(v) => v.is_empty(),
            Objects::ConfigMaps(v) => v.is_empty(),
            Objects::Secrets(v) => v.is_empty(),
        }
    }

    /// Appends `other`'s objects, when they are of the same kind.
    pub fn extend(&mut self, other: Objects) {
        match (self, other) {
            (Objects::Nodes(a), Objects::Nodes(b)) => a.extend(b),
            (Objects::Pods(a), Objects::Pods(b)) => a.extend(b),
            (Objects::Events(a), Objects::Events(b)) => a.extend(b),
            (Objects::Namespaces(a), Objects::Namespaces(b)) => a.extend(b),
            (Objects::ConfigMaps(a), Objects::ConfigMaps(b)) => a.extend(b),
            (Objects::Secrets(a), Objects::Secrets(b)) => a.extend(b),
            _ => {}
        }
    }

    /// `node/n1` lines (kubectl leaves the namespace out, with `-A` too).
    fn names(&self) -> String {
        let names: Vec<String> = match self {
            Objects::Nodes(v) => v.iter().map(|n| format!("node/{}", n.name)).collect(),
            Objects::Pods(v) => v.iter().map(|p| format!("pod/{}", p.name)).collect(),
            Objects::Events(v) => v.iter().map(|e| format!("event/{}", e.id)).collect(),
            Objects::Namespaces(v) => v.iter().map(|n| format!("namespace/{}", n.name)).collect(),
            Objects::ConfigMaps(v) => v.iter().map(|c| format!("configmap/{}", c.name)).collect(),
            Objects::Secrets(v) => v.iter().map(|s| format!("secret/{}", s.name)).collect(),
        };
        names.iter().map(|n| format!("{n}\n")).collect()
    }
}

/// How to print a listing besides its format.
#[derive(Debug, Clone, Copy, Default)]
pub struct View {
    /// Print the first object itself rather than a `List` (JSON and YAML).
    pub single: bool,
    /// Listed across namespaces: tables of namespaced kinds get a NAMESPACE column.
    pub all_namespaces: bool,
    pub now_ms: i64,
}

/// The text for `objects`; `None` when there is nothing to print and the caller should say
/// `No resources found.` (a JSON or YAML list is printed even when empty).
pub fn render(objects: &Objects, format: Format, view: View) -> anyhow::Result<Option<String>> {
    let structured = matches!(format, Format::Json | Format::Yaml);
    if objects.is_empty() && !structured {
        return Ok(None);
    }
    let View {
        single,
        all_namespaces: all,
        now_ms,
    } = view;
    let wide = format == Format::Wide;
    let text = match (format, objects) {
        (Format::Name, _) => objects.names(),
        (Format::Json | Format::Yaml, Objects::Nodes(v)) => {
            document(v.iter().map(NodeObject::new).collect(), format, single)?
        }
        (Format::Json | Format::Yaml, Objects::Pods(v)) => {
            document(v.iter().map(PodObject::new).collect(), format, single)?
        }
        (Format::Json | Format::Yaml, Objects::Events(v)) => {
            document(v.iter().map(EventObject::new).collect(), format, single)?
        }
        (Format::Json | Format::Yaml, Objects::Namespaces(v)) => {
            document(v.iter().map(NamespaceObject::new).collect(), format, single)?
        }
        (Format::Json | Format::Yaml, Objects::ConfigMaps(v)) => {
            document(v.iter().map(ConfigMapObject::new).collect(), format, single)?
        }
        (Format::Json | Format::Yaml, Objects::Secrets(v)) => {
            document(v.iter().map(SecretObject::new).collect(), format, single)?
        }
        (_, Objects::Nodes(v)) => columns::nodes(v, wide, now_ms),
        (_, Objects::Pods(v)) => columns::pods(v, wide, all, now_ms),
        (_, Objects::Events(v)) => columns::events(v, all, now_ms),
        (_, Objects::Namespaces(v)) => columns::namespaces(v, now_ms),
        (_, Objects::ConfigMaps(v)) => columns::config_maps(v, all, now_ms),
        (_, Objects::Secrets(v)) => columns::secrets(v, all, now_ms),
    };
    Ok(Some(text))
}

/// One object, or a `List` of them, as JSON or YAML.
pub fn document<T: Serialize>(
    mut items: Vec<T>,
    format: Format,
    single: bool,
) -> anyhow::Result<String> {
    if single && items.len() == 1 {
        encode(&items.remove(0), format)
    } else {
        encode(&List::new(items), format)
    }
}

/// JSON or YAML of any document.
pub fn encode<T: Serialize>(value: &T, format: Format) -> anyhow::Result<String> {
    match format {
        Format::Yaml => to_yaml(value),
        _ => to_json(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::objects::samples::*;

    fn list(now_ms: i64) -> View {
        View {
            now_ms,
            ..View::default()
        }
    }

    fn one(now_ms: i64) -> View {
        View {
            single: true,
            now_ms,
            ..View::default()
        }
    }

    #[test]
    fn empty_tables_print_nothing_but_empty_lists_print_a_list() {
        let empty = Objects::Pods(vec![]);
        assert_eq!(render(&empty, Format::Table, list(NOW)).unwrap(), None);
        assert_eq!(render(&empty, Format::Name, list(NOW)).unwrap(), None);
        let json = render(&empty, Format::Json, list(NOW)).unwrap().unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"apiVersion": "v1", "kind": "List", "items": []})
        );
    }

    #[test]
    fn one_object_by_name_is_printed_bare() {
        let pods = Objects::Pods(vec![pod()]);
        let json = render(&pods, Format::Json, one(NOW)).unwrap().unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["kind"], "Pod");
        let json = render(&pods, Format::Json, list(NOW)).unwrap().unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["kind"], "List");
        assert_eq!(
            value["items"][0]["status"]["containerStatuses"][0]["pid"],
            4242
        );
        let yaml = render(&Objects::Nodes(vec![node()]), Format::Yaml, one(NOW))
            .unwrap()
            .unwrap();
        assert!(yaml.starts_with("apiVersion: v1\nkind: Node\n"), "{yaml}");
    }

    #[test]
    fn names_are_kind_slash_name() {
        let text = render(&Objects::Nodes(vec![node()]), Format::Name, list(NOW)).unwrap();
        assert_eq!(text.as_deref(), Some("node/n1\n"));
        let text = render(
            &Objects::Events(vec![event(9, 0, "X")]),
            Format::Name,
            list(NOW),
        )
        .unwrap();
        assert_eq!(text.as_deref(), Some("event/9\n"));
        for (objects, name) in [
            (Objects::Namespaces(vec![namespace()]), "namespace/prod\n"),
            (
                Objects::ConfigMaps(vec![config_map()]),
                "configmap/game-demo\n",
            ),
            (Objects::Secrets(vec![secret()]), "secret/db-user-pass\n"),
        ] {
            let text = render(&objects, Format::Name, list(NOW)).unwrap();
            assert_eq!(text.as_deref(), Some(name));
        }
    }

    #[test]
    fn secrets_print_base64_only_as_json_or_yaml() {
        let secrets = Objects::Secrets(vec![secret()]);
        let json = render(&secrets, Format::Json, one(NOW)).unwrap().unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["kind"], "Secret");
        assert_eq!(value["data"]["password"], "czNjcjN0LVBhNTV3MHJkIQ==");
        let yaml = render(&secrets, Format::Yaml, list(NOW)).unwrap().unwrap();
        assert!(yaml.contains("kind: List"), "{yaml}");
        for format in [
            Format::Table,
            Format::Wide,
            Format::Name,
            Format::Json,
            Format::Yaml,
        ] {
            let text = render(&secrets, format, list(NOW)).unwrap().unwrap();
            assert!(!text.contains(SECRET_PASSWORD), "{format:?}: {text}");
            assert!(!text.contains(SECRET_USER), "{format:?}: {text}");
        }
    }

    #[test]
    fn all_namespaces_adds_the_column_to_namespaced_kinds_only() {
        let view = View {
            all_namespaces: true,
            now_ms: NOW,
            ..View::default()
        };
        let cms = render(&Objects::ConfigMaps(vec![config_map()]), Format::Wide, view)
            .unwrap()
            .unwrap();
        assert!(cms.starts_with("NAMESPACE   NAME"), "{cms}");
        let json = render(&Objects::Pods(vec![pod()]), Format::Json, view)
            .unwrap()
            .unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["items"][0]["metadata"]["namespace"], "default");
    }
}
