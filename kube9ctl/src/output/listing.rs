//! What `get` prints: one object or a list, in the format asked for.

use crate::cli::{Format, Kind, Output};
use crate::output::jsonpath::{sort_order, Template};
use crate::output::objects::{
    ConfigMapObject, EventObject, List, NamespaceObject, NodeObject, PodObject, SecretObject,
};
use crate::output::{columns, custom_columns, to_json, to_yaml};
use anyhow::Context as _;
use kube9_proto::pb;
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

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

    /// The kind of these objects.
    pub fn kind(&self) -> Kind {
        match self {
            Objects::Nodes(_) => Kind::Node,
            Objects::Pods(_) => Kind::Pod,
            Objects::Events(_) => Kind::Event,
            Objects::Namespaces(_) => Kind::Namespace,
            Objects::ConfigMaps(_) => Kind::ConfigMap,
            Objects::Secrets(_) => Kind::Secret,
        }
    }

    /// Each object's Kubernetes-shaped document.
    pub fn documents(&self) -> Vec<AnyObject> {
        match self {
            Objects::Nodes(v) => v
                .iter()
                .map(|o| AnyObject::Node(NodeObject::new(o)))
                .collect(),
            Objects::Pods(v) => v
                .iter()
                .map(|o| AnyObject::Pod(PodObject::new(o)))
                .collect(),
            Objects::Events(v) => v
                .iter()
                .map(|o| AnyObject::Event(EventObject::new(o)))
                .collect(),
            Objects::Namespaces(v) => v
                .iter()
                .map(|o| AnyObject::Namespace(NamespaceObject::new(o)))
                .collect(),
            Objects::ConfigMaps(v) => v
                .iter()
                .map(|o| AnyObject::ConfigMap(ConfigMapObject::new(o)))
                .collect(),
            Objects::Secrets(v) => v
                .iter()
                .map(|o| AnyObject::Secret(SecretObject::new(o)))
                .collect(),
        }
    }

    /// Each object's document as a JSON value (what templates and sorting read).
    pub fn values(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        self.documents()
            .iter()
            .map(|d| serde_json::to_value(d).context("failed to encode an object as JSON"))
            .collect()
    }

    /// Each object's labels, sorted (events have none).
    fn labels(&self) -> Vec<BTreeMap<String, String>> {
        fn sorted(labels: &HashMap<String, String>) -> BTreeMap<String, String> {
            labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        }
        match self {
            Objects::Nodes(v) => v.iter().map(|o| sorted(&o.labels)).collect(),
            Objects::Pods(v) => v.iter().map(|o| sorted(&o.labels)).collect(),
            Objects::Events(v) => v.iter().map(|_| BTreeMap::new()).collect(),
            Objects::Namespaces(v) => v.iter().map(|o| sorted(&o.labels)).collect(),
            Objects::ConfigMaps(v) => v.iter().map(|o| sorted(&o.labels)).collect(),
            Objects::Secrets(v) => v.iter().map(|o| sorted(&o.labels)).collect(),
        }
    }

    /// Reorders the objects by `path`'s value in each (kubectl's `--sort-by`): objects without
    /// it first, numbers by value, strings in natural order; the sort is stable.
    pub fn sort_by(&mut self, path: &Template) -> anyhow::Result<()> {
        let mut keys = Vec::new();
        for value in self.values()? {
            keys.push(path.results(&value)?.into_iter().next());
        }
        if !keys.is_empty() && keys.iter().all(Option::is_none) {
            anyhow::bail!(
                "couldn't find any field with path {:?} in the list of objects",
                path.source()
            );
        }
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by(|&a, &b| match (&keys[a], &keys[b]) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => sort_order(x, y),
        });
        match self {
            Objects::Nodes(v) => permute(v, &order),
            Objects::Pods(v) => permute(v, &order),
            Objects::Events(v) => permute(v, &order),
            Objects::Namespaces(v) => permute(v, &order),
            Objects::ConfigMaps(v) => permute(v, &order),
            Objects::Secrets(v) => permute(v, &order),
        }
        Ok(())
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
    /// Print the first object itself rather than a `List` (JSON, YAML, templates).
    pub single: bool,
    /// Listed across namespaces: tables of namespaced kinds get a NAMESPACE column.
    pub all_namespaces: bool,
    /// Several kinds were asked for: table NAMEs are `kind/name`, as kubectl prints them.
    pub with_kind: bool,
    pub now_ms: i64,
}

/// What `get` prints with: `-o`, and the table flags.
#[derive(Debug, Clone)]
pub struct Printer {
    pub output: Output,
    /// `--no-headers`.
    pub no_headers: bool,
    /// `--show-labels`.
    pub show_labels: bool,
    /// `-L KEY`.
    pub label_columns: Vec<String>,
    /// `--sort-by PATH`.
    pub sort_by: Option<Template>,
}

impl Printer {
    /// Just a format, no table flags.
    pub fn plain(format: Format) -> Self {
        Printer {
            output: Output::Format(format),
            no_headers: false,
            show_labels: false,
            label_columns: Vec::new(),
            sort_by: None,
        }
    }
}

/// The text for `objects`; `None` when there is nothing to print and the caller should say
/// `No resources found.` (a JSON or YAML list is printed even when empty).
pub fn render(objects: &Objects, format: Format, view: View) -> anyhow::Result<Option<String>> {
    render_groups(vec![objects.clone()], &Printer::plain(format), view)
}

/// The text for objects of one or more kinds (one table per kind, a blank line between; one
/// `List` for JSON, YAML and templates); `None` as for [`render`].
pub fn render_groups(
    mut groups: Vec<Objects>,
    printer: &Printer,
    view: View,
) -> anyhow::Result<Option<String>> {
    if let Some(path) = &printer.sort_by {
        for group in &mut groups {
            group.sort_by(path)?;
        }
    }
    let empty = groups.iter().all(Objects::is_empty);
    let text = match &printer.output {
        Output::Format(format @ (Format::Json | Format::Yaml)) => {
            let items = groups.iter().flat_map(Objects::documents).collect();
            document(items, *format, view.single)?
        }
        Output::JsonPath(template) => template.render(&json_view(&groups, view.single)?)?,
        Output::JsonPathAsJson(template) => {
            template.render_json(&json_view(&groups, view.single)?)?
        }
        _ if empty => return Ok(None),
        Output::Format(Format::Name) => groups.iter().map(Objects::names).collect(),
        Output::CustomColumns(columns) => {
            let items: Vec<serde_json::Value> = groups
                .iter()
                .map(Objects::values)
                .collect::<anyhow::Result<Vec<_>>>()?
                .into_iter()
                .flatten()
                .collect();
            custom_columns::render(columns, &items, printer.no_headers)
                .map_err(anyhow::Error::msg)?
        }
        Output::CustomColumnsFile(path) => {
            anyhow::bail!("custom-columns-file {} was not read", path.display())
        }
        Output::Format(format @ (Format::Table | Format::Wide)) => {
            let tables: Vec<String> = groups
                .iter()
                .filter(|g| !g.is_empty())
                .map(|g| table(g, *format == Format::Wide, printer, view))
                .collect();
            // kubectl separates the kinds' tables with a blank line, when they have headers.
            tables.join(if printer.no_headers { "" } else { "\n" })
        }
    };
    Ok(Some(text))
}

/// The JSON templates run on: the object itself when one was asked for by name, else a
/// `List` of them all.
fn json_view(groups: &[Objects], single: bool) -> anyhow::Result<serde_json::Value> {
    let items: Vec<AnyObject> = groups.iter().flat_map(Objects::documents).collect();
    let value = if single && items.len() == 1 {
        serde_json::to_value(&items[0])
    } else {
        serde_json::to_value(List::new(items))
    };
    value.context("failed to encode the objects as JSON")
}

/// One kind's table, with kubectl's decorations: `kind/name`, `-L` columns, LABELS.
fn table(objects: &Objects, wide: bool, printer: &Printer, view: View) -> String {
    let all = view.all_namespaces && objects.kind().is_namespaced();
    let now_ms = view.now_ms;
    let mut rows = match objects {
        Objects::Nodes(v) => columns::node_rows(v, wide, now_ms),
        Objects::Pods(v) => columns::pod_rows(v, wide, all, now_ms),
        Objects::Events(v) => columns::event_rows(v, all, now_ms),
        Objects::Namespaces(v) => columns::namespace_rows(v, now_ms),
        Objects::ConfigMaps(v) => columns::config_map_rows(v, all, now_ms),
        Objects::Secrets(v) => columns::secret_rows(v, all, now_ms),
    };
    if view.with_kind {
        if let Some(name) = rows.headers.iter().position(|h| h == "NAME") {
            let noun = objects.kind().noun();
            for row in &mut rows.rows {
                row[name] = format!("{noun}/{}", row[name]);
            }
        }
    }
    let labels = objects.labels();
    for key in &printer.label_columns {
        // kubectl's header: the key's last segment, upper-cased (`app.kubernetes.io/name` → NAME).
        let header = key.rsplit('/').next().unwrap_or(key).to_uppercase();
        rows.headers.push(header);
        for (row, labels) in rows.rows.iter_mut().zip(&labels) {
            row.push(labels.get(key).cloned().unwrap_or_default());
        }
    }
    if printer.show_labels {
        rows.headers.push("LABELS".into());
        for (row, labels) in rows.rows.iter_mut().zip(&labels) {
            let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            row.push(if pairs.is_empty() {
                "<none>".into()
            } else {
                pairs.join(",")
            });
        }
    }
    rows.text(printer.no_headers)
}

/// `items` in `order` (a permutation of their indexes).
fn permute<T>(items: &mut Vec<T>, order: &[usize]) {
    let mut old: Vec<Option<T>> = std::mem::take(items).into_iter().map(Some).collect();
    *items = order
        .iter()
        .filter_map(|&i| old.get_mut(i).and_then(Option::take))
        .collect();
}

/// Any kind's document, serialized as itself (a `List` may hold several kinds).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum AnyObject {
    Node(NodeObject),
    Pod(PodObject),
    Event(EventObject),
    Namespace(NamespaceObject),
    ConfigMap(ConfigMapObject),
    Secret(SecretObject),
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

    fn printer(output: Output) -> Printer {
        Printer {
            output,
            ..Printer::plain(Format::Table)
        }
    }

    fn two_pods() -> Objects {
        let mut queued = pod();
        queued.name = "queued".into();
        queued.node.clear();
        queued.labels = [
            ("app".to_string(), "batch".to_string()),
            ("tier".to_string(), "low".to_string()),
        ]
        .into();
        queued.created_ms = NOW - 60_000;
        Objects::Pods(vec![pod(), queued])
    }

    fn text(groups: Vec<Objects>, printer: &Printer, view: View) -> String {
        render_groups(groups, printer, view).unwrap().unwrap()
    }

    #[test]
    fn several_kinds_print_a_table_each_with_kind_slash_name() {
        let view = View {
            with_kind: true,
            now_ms: NOW,
            ..View::default()
        };
        let groups = vec![Objects::Pods(vec![pod()]), Objects::Nodes(vec![node()])];
        let out = text(groups.clone(), &Printer::plain(Format::Table), view);
        assert_eq!(
            out,
            "NAME      READY   STATUS    RESTARTS   NODE   CPU    AGE\n\
             pod/web   1/2     Running   1          n1     500m   2h\n\
             \n\
             NAME      STATUS    CPU       PODS   AGE   REASON\n\
             node/n1   Healthy   1500m/4   1      3m    <none>\n"
        );
        let printer = Printer {
            no_headers: true,
            ..Printer::plain(Format::Table)
        };
        let out = text(groups.clone(), &printer, view);
        assert_eq!(
            out,
            "pod/web   1/2   Running   1   n1   500m   2h\n\
             node/n1   Healthy   1500m/4   1   3m   <none>\n"
        );
        // Empty kinds are left out; names and JSON hold every kind.
        let with_empty = vec![Objects::ConfigMaps(vec![]), Objects::Nodes(vec![node()])];
        assert!(
            text(with_empty, &Printer::plain(Format::Table), view).starts_with("NAME      STATUS")
        );
        let names = text(groups.clone(), &Printer::plain(Format::Name), view);
        assert_eq!(names, "pod/web\nnode/n1\n");
        let json = text(groups, &Printer::plain(Format::Json), view);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["kind"], "List");
        assert_eq!(value["items"][0]["kind"], "Pod");
        assert_eq!(value["items"][1]["kind"], "Node");
    }

    #[test]
    fn label_columns_and_show_labels_follow_the_table() {
        let printer = Printer {
            show_labels: true,
            label_columns: vec!["app".into(), "example.com/tier".into(), "tier".into()],
            ..Printer::plain(Format::Table)
        };
        let out = text(vec![two_pods()], &printer, list(NOW));
        assert_eq!(
            out,
            "NAME     READY   STATUS    RESTARTS   NODE     CPU    AGE   APP     TIER   TIER   LABELS\n\
             web      1/2     Running   1          n1       500m   2h    web                   app=web\n\
             queued   1/2     Running   1          <none>   500m   1m    batch          low    app=batch,tier=low\n"
        );
    }

    #[test]
    fn sort_by_orders_tables_and_lists() {
        let by = |path: &str, format: Format| Printer {
            sort_by: Some(Template::relaxed(path).unwrap()),
            ..Printer::plain(format)
        };
        let out = text(
            vec![two_pods()],
            &by(".metadata.name", Format::Name),
            list(NOW),
        );
        assert_eq!(out, "pod/queued\npod/web\n");
        let out = text(
            vec![two_pods()],
            &by("metadata.creationTimestamp", Format::Name),
            list(NOW),
        );
        assert_eq!(out, "pod/web\npod/queued\n");
        // Unbound pods have an empty nodeName: first.
        let out = text(
            vec![two_pods()],
            &by("{.spec.nodeName}", Format::Name),
            list(NOW),
        );
        assert_eq!(out, "pod/queued\npod/web\n");
        let out = text(
            vec![two_pods()],
            &by(".metadata.name", Format::Json),
            list(NOW),
        );
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["items"][0]["metadata"]["name"], "queued");
        let e = render_groups(
            vec![two_pods()],
            &by(".spec.nope", Format::Table),
            list(NOW),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("couldn't find any field with path"),
            "{e}"
        );
    }

    #[test]
    fn templates_read_a_list_or_the_one_object_asked_for() {
        let names =
            Template::parse(r#"{range .items[*]}{.metadata.name}{"\t"}{.status.phase}{"\n"}{end}"#)
                .unwrap();
        let out = text(
            vec![two_pods()],
            &printer(Output::JsonPath(names)),
            list(NOW),
        );
        assert_eq!(out, "web\tRunning\nqueued\tRunning\n");
        let one = Template::parse("{.metadata.name} on {.spec.nodeName}").unwrap();
        let out = text(
            vec![Objects::Pods(vec![pod()])],
            &printer(Output::JsonPath(one)),
            one_view(),
        );
        assert_eq!(out, "web on n1");
        // An empty list still runs the template (kubectl prints nothing, says nothing).
        let empty = Template::parse("{.items[*].metadata.name}").unwrap();
        let out = render_groups(
            vec![Objects::Pods(vec![])],
            &printer(Output::JsonPath(empty)),
            list(NOW),
        );
        assert_eq!(out.unwrap().as_deref(), Some(""));
        let columns = custom_columns::parse_spec(
            "NAME:.metadata.name,NODE:.spec.nodeName,APP:.metadata.labels.app",
        )
        .unwrap();
        let out = text(
            vec![two_pods()],
            &printer(Output::CustomColumns(columns.clone())),
            list(NOW),
        );
        assert_eq!(
            out,
            "NAME     NODE   APP\n\
             web      n1     web\n\
             queued          batch\n"
        );
        let out = render_groups(
            vec![Objects::Pods(vec![])],
            &printer(Output::CustomColumns(columns)),
            list(NOW),
        );
        assert_eq!(out.unwrap(), None);
        let bad = Template::parse("{.items[9]}").unwrap();
        let e = render_groups(vec![two_pods()], &printer(Output::JsonPath(bad)), list(NOW))
            .unwrap_err();
        assert!(e.to_string().contains("array index out of bounds"), "{e}");
    }

    fn one_view() -> View {
        one(NOW)
    }
}
