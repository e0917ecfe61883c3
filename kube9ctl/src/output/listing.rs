//! What `get` prints: one object or a list, in the format asked for.

use crate::cli::Format;
use crate::output::objects::{EventObject, List, NodeObject, PodObject};
use crate::output::{columns, to_json, to_yaml};
use kube9_proto::pb;
use serde::Serialize;

/// Objects of one kind, as fetched.
#[derive(Debug, Clone)]
pub enum Objects {
    Nodes(Vec<pb::Node>),
    Pods(Vec<pb::Pod>),
    Events(Vec<pb::Event>),
}

impl Objects {
    pub fn is_empty(&self) -> bool {
        match self {
            Objects::Nodes(v) => v.is_empty(),
            Objects::Pods(v) => v.is_empty(),
            Objects::Events(v) => v.is_empty(),
        }
    }

    /// `node/n1` lines.
    fn names(&self) -> String {
        let names: Vec<String> = match self {
            Objects::Nodes(v) => v.iter().map(|n| format!("node/{}", n.name)).collect(),
            Objects::Pods(v) => v.iter().map(|p| format!("pod/{}", p.name)).collect(),
            Objects::Events(v) => v.iter().map(|e| format!("event/{}", e.id)).collect(),
        };
        names.iter().map(|n| format!("{n}\n")).collect()
    }
}

/// The text for `objects`; `None` when there is nothing to print and the caller should say
/// `No resources found.` (a JSON or YAML list is printed even when empty). `single` prints the
/// first object itself rather than a `List`.
pub fn render(
    objects: &Objects,
    format: Format,
    single: bool,
    now_ms: i64,
) -> anyhow::Result<Option<String>> {
    let structured = matches!(format, Format::Json | Format::Yaml);
    if objects.is_empty() && !structured {
        return Ok(None);
    }
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
        (_, Objects::Nodes(v)) => columns::nodes(v, wide, now_ms),
        (_, Objects::Pods(v)) => columns::pods(v, wide, now_ms),
        (_, Objects::Events(v)) => columns::events(v, now_ms),
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

    #[test]
    fn empty_tables_print_nothing_but_empty_lists_print_a_list() {
        let empty = Objects::Pods(vec![]);
        assert_eq!(render(&empty, Format::Table, false, NOW).unwrap(), None);
        assert_eq!(render(&empty, Format::Name, false, NOW).unwrap(), None);
        let json = render(&empty, Format::Json, false, NOW).unwrap().unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"apiVersion": "v1", "kind": "List", "items": []})
        );
    }

    #[test]
    fn one_object_by_name_is_printed_bare() {
        let pods = Objects::Pods(vec![pod()]);
        let json = render(&pods, Format::Json, true, NOW).unwrap().unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["kind"], "Pod");
        let json = render(&pods, Format::Json, false, NOW).unwrap().unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["kind"], "List");
        assert_eq!(
            value["items"][0]["status"]["containerStatuses"][0]["pid"],
            4242
        );
        let yaml = render(&Objects::Nodes(vec![node()]), Format::Yaml, true, NOW)
            .unwrap()
            .unwrap();
        assert!(yaml.starts_with("apiVersion: v1\nkind: Node\n"), "{yaml}");
    }

    #[test]
    fn names_are_kind_slash_name() {
        let text = render(&Objects::Nodes(vec![node()]), Format::Name, false, NOW).unwrap();
        assert_eq!(text.as_deref(), Some("node/n1\n"));
        let text = render(
            &Objects::Events(vec![event(9, 0, "X")]),
            Format::Name,
            false,
            NOW,
        )
        .unwrap();
        assert_eq!(text.as_deref(), Some("event/9\n"));
    }
}
