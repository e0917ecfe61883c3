//! `get pods|nodes|events -w` (`--watch`, `--watch-only`), and the list-then-watch that `wait`
//! and `apply --wait` are driven by.
//!
//! A [`Watcher`] lists first and remembers the list's `resourceVersion`, then watches from it:
//! kube9d replays every change made after the list, so nothing between the two is missed, and
//! changes not newer than what was already seen are dropped, so nothing is shown twice. When
//! kube9d no longer holds the changes after that version (`OUT_OF_RANGE`, "Expired", as
//! Kubernetes' 410 Gone) or the watch fell behind, the watcher lists again and goes on.

use crate::cli::WatchFlags;
use kube9_proto::namespace::or_default;
use kube9_proto::pb;
use kube9_proto::selector::Selector;
use serde::Serialize;

use crate::cli::{Format, Kind, Output};
use crate::client::Client;
use crate::commands::select::{sort_events, EventScope};
use crate::error::ServerError;
use crate::output::emit;
use crate::output::listing::{encode, render_groups, AnyObject, Objects, Printer, View};
use crate::output::time::now_ms;

impl WatchFlags {
    pub fn any(&self) -> bool {
        self.watch || self.watch_only
    }
}

/// What a watch looks at: one kind, in a namespace (empty: every one), maybe one name, maybe
/// a label selector; pods maybe only those on a node; events in their scope.
#[derive(Debug, Clone)]
pub struct Scope {
    pub kind: Kind,
    pub namespace: String,
    pub name: Option<String>,
    pub selector: Selector,
    /// `--field-selector`, checked against the kind's fields.
    pub fields: kube9_proto::fields::FieldSelector,
    pub node: String,
}

impl Scope {
    fn events(&self) -> EventScope {
        if self.namespace.is_empty() {
            EventScope::All
        } else {
            EventScope::Namespace(self.namespace.clone())
        }
    }

    fn in_namespace(&self, ns: &str) -> bool {
        self.namespace.is_empty() || or_default(ns) == self.namespace
    }

    fn named(&self, name: &str) -> bool {
        self.name.as_deref().is_none_or(|n| n == name)
    }

    /// The event's object, if it is in scope.
    fn select(&self, object: pb::watch_event::Object) -> Option<Objects> {
        use pb::watch_event::Object;
        match (self.kind, object) {
            (Kind::Pod, Object::Pod(p)) => (self.in_namespace(&p.namespace)
                && self.named(&p.name)
                && self.selector.matches(&p.labels)
                && self.fields.matches_pod(&p)
                && (self.node.is_empty() || p.node == self.node))
                .then(|| Objects::Pods(vec![p])),
            (Kind::Node, Object::Node(n)) => (self.named(&n.name)
                && self.selector.matches(&n.labels)
                && super::select::name_fields_match(&self.fields, "", &n.name))
            .then(|| Objects::Nodes(vec![n])),
            (Kind::Event, Object::Event(e)) => (self.events().keeps(&e)
                && self.named(&e.id.to_string())
                && super::select::name_fields_match(&self.fields, &e.namespace, &e.id.to_string()))
            .then(|| Objects::Events(vec![e])),
            _ => None,
        }
    }

    /// The objects in scope now, and the version the list was taken at.
    pub async fn list(&self, cluster: &mut Client) -> anyhow::Result<(Objects, u64)> {
        let (mut objects, version) = match self.kind {
            Kind::Pod => {
                let request = pb::ListPodsRequest {
                    node: self.node.clone(),
                    label_selector: self.selector.to_string(),
                    namespace: self.namespace.clone(),
                    field_selector: self.fields.to_string(),
                    ..Default::default()
                };
                let response = cluster.client.list_pods(request).await;
                let list = cluster.check(response)?;
                let mut pods = list.pods;
                pods.sort_by(|a, b| (a.ns(), &a.name).cmp(&(b.ns(), &b.name)));
                (Objects::Pods(pods), list.resource_version)
            }
            Kind::Node => {
                let response = cluster.client.list_nodes(pb::ListNodesRequest {}).await;
                let list = cluster.check(response)?;
                let mut nodes = list.nodes;
                nodes.sort_by(|a, b| a.name.cmp(&b.name));
                (Objects::Nodes(nodes), list.resource_version)
            }
            Kind::Event => {
                let request = pb::ListEventsRequest {
                    namespace: self.events().request_namespace(),
                    ..Default::default()
                };
                let response = cluster.client.list_events(request).await;
                let list = cluster.check(response)?;
                let mut events = list.events;
                sort_events(&mut events);
                (Objects::Events(events), list.resource_version)
            }
            kind => anyhow::bail!("watching {kind}s is not supported (pods, nodes and events are)"),
        };
        match &mut objects {
            Objects::Pods(v) => v.retain(|p| {
                self.in_namespace(&p.namespace)
                    && self.named(&p.name)
                    && self.selector.matches(&p.labels)
                    && (self.node.is_empty() || p.node == self.node)
            }),
            Objects::Nodes(v) => {
                v.retain(|n| self.named(&n.name) && self.selector.matches(&n.labels))
            }
            Objects::Events(v) => {
                v.retain(|e| self.events().keeps(e) && self.named(&e.id.to_string()))
            }
            _ => {}
        }
        Ok((objects, version))
    }
}

/// How an object changed: kubectl's watch event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

impl ChangeType {
    pub fn word(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// What [`Watcher::next`] saw.
#[derive(Debug)]
pub enum Seen {
    /// One object changed (`Objects` of one).
    Change(ChangeType, Objects),
    /// The watch had to start over: every object in scope now.
    Relisted(Objects),
}

/// A list followed by a watch from its version.
pub struct Watcher {
    scope: Scope,
    version: u64,
    stream: Option<tonic::Streaming<pb::WatchEvent>>,
}

impl Watcher {
    /// Lists the scope; the watch starts where the list was taken.
    pub async fn list(cluster: &mut Client, scope: Scope) -> anyhow::Result<(Objects, Watcher)> {
        let (objects, version) = scope.list(cluster).await?;
        let watcher = Watcher {
            scope,
            version,
            stream: None,
        };
        Ok((objects, watcher))
    }

    /// A watch from now on, without a list.
    pub fn from_now(scope: Scope) -> Watcher {
        Watcher {
            scope,
            version: 0,
            stream: None,
        }
    }

    /// The next change in scope.
    pub async fn next(&mut self, cluster: &mut Client) -> anyhow::Result<Seen> {
        loop {
            let stream = match &mut self.stream {
                Some(stream) => stream,
                None => {
                    let request = pb::WatchRequest {
                        kinds: vec![self.scope.kind.wire().to_string()],
                        resource_version: self.version,
                    };
                    let response = cluster.client.watch(request).await;
                    self.stream.insert(cluster.check(response)?)
                }
            };
            match stream.message().await {
                Ok(Some(event)) => {
                    if event.resource_version != 0 && event.resource_version <= self.version {
                        continue;
                    }
                    self.version = self.version.max(event.resource_version);
                    let change = match event.r#type() {
                        pb::WatchEventType::Added => ChangeType::Added,
                        pb::WatchEventType::Deleted => ChangeType::Deleted,
                        _ => ChangeType::Modified,
                    };
                    if let Some(objects) = event.object.and_then(|o| self.scope.select(o)) {
                        return Ok(Seen::Change(change, objects));
                    }
                }
                Ok(None) => anyhow::bail!("kube9d ended the watch"),
                Err(status)
                    if matches!(
                        status.code(),
                        tonic::Code::OutOfRange | tonic::Code::Aborted
                    ) =>
                {
                    // Expired or fell behind: start over from a fresh list.
                    self.stream = None;
                    let (objects, version) = self.scope.list(cluster).await?;
                    self.version = version;
                    return Ok(Seen::Relisted(objects));
                }
                Err(status) => return Err(cluster.error(status)),
            }
        }
    }
}

/// `{"type": "MODIFIED", "object": {...}}`.
#[derive(Serialize)]
struct WatchEventDoc<'a> {
    #[serde(rename = "type")]
    change: &'static str,
    object: &'a AnyObject,
}

/// Prints a watch's objects as `get -w` does: a table's rows (the header once), or each
/// object as a document.
pub struct WatchPrinter {
    printer: Printer,
    all_namespaces: bool,
    events: bool,
    printed: bool,
}

impl WatchPrinter {
    pub fn new(printer: Printer, all_namespaces: bool, events: bool) -> Self {
        WatchPrinter {
            printer,
            all_namespaces,
            events,
            printed: false,
        }
    }

    /// Prints `objects` (each one as changed by `change`).
    pub fn print(&mut self, change: ChangeType, objects: &Objects) -> anyhow::Result<()> {
        if objects.is_empty() {
            return Ok(());
        }
        let text = match &self.printer.output {
            Output::Format(format @ (Format::Json | Format::Yaml)) => {
                let mut text = String::new();
                for doc in objects.documents() {
                    if *format == Format::Yaml && self.printed {
                        text.push_str("---\n");
                    }
                    text.push_str(&if self.events {
                        let wrapped = WatchEventDoc {
                            change: change.word(),
                            object: &doc,
                        };
                        encode(&wrapped, *format)?
                    } else {
                        encode(&doc, *format)?
                    });
                    self.printed = true;
                }
                text
            }
            _ => {
                let mut printer = self.printer.clone();
                printer.no_headers |= self.printed;
                let view = View {
                    single: true,
                    all_namespaces: self.all_namespaces,
                    with_kind: false,
                    now_ms: now_ms(),
                };
                let mut text = String::new();
                // Templates print one object at a time.
                let singles: Vec<Objects> = match objects {
                    Objects::Pods(v) => v.iter().map(|o| Objects::Pods(vec![o.clone()])).collect(),
                    Objects::Nodes(v) => {
                        v.iter().map(|o| Objects::Nodes(vec![o.clone()])).collect()
                    }
                    Objects::Events(v) => {
                        v.iter().map(|o| Objects::Events(vec![o.clone()])).collect()
                    }
                    other => vec![other.clone()],
                };
                let table = matches!(printer.output, Output::Format(Format::Table | Format::Wide));
                if table {
                    // One table for the list, so its columns line up.
                    let view = View {
                        single: false,
                        ..view
                    };
                    text =
                        render_groups(vec![objects.clone()], &printer, view)?.unwrap_or_default();
                } else {
                    for one in singles {
                        text.push_str(
                            &render_groups(vec![one], &printer, view)?.unwrap_or_default(),
                        );
                        if matches!(
                            printer.output,
                            Output::JsonPath(_) | Output::JsonPathAsJson(_)
                        ) && !text.ends_with('\n')
                        {
                            text.push('\n');
                        }
                        printer.no_headers = true;
                    }
                }
                self.printed = true;
                text
            }
        };
        emit(&text)
    }
}

/// `get KIND [NAME] -w`.
pub async fn run(
    cluster: &mut Client,
    scope: Scope,
    flags: &WatchFlags,
    printer: Printer,
) -> anyhow::Result<()> {
    let all_namespaces = scope.namespace.is_empty();
    let mut out = WatchPrinter::new(printer, all_namespaces, flags.output_watch_events);
    let mut watcher = if flags.watch_only {
        Watcher::from_now(scope)
    } else {
        let named = scope.name.clone();
        let kind = scope.kind;
        let (objects, watcher) = Watcher::list(cluster, scope).await?;
        if let (Some(name), true) = (named, objects.is_empty()) {
            return Err(ServerError::not_found(kind.noun(), &name).into());
        }
        out.print(ChangeType::Added, &objects)?;
        watcher
    };
    loop {
        match watcher.next(cluster).await? {
            Seen::Change(change, objects) => out.print(change, &objects)?,
            Seen::Relisted(objects) => out.print(ChangeType::Modified, &objects)?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::listing::Printer;
    use kube9_proto::selector;

    fn pod(ns: &str, name: &str, app: &str) -> pb::watch_event::Object {
        pb::watch_event::Object::Pod(pb::Pod {
            name: name.into(),
            namespace: ns.into(),
            labels: [("app".to_string(), app.to_string())].into(),
            ..Default::default()
        })
    }

    fn scope(namespace: &str, name: Option<&str>, selector: &str) -> Scope {
        Scope {
            kind: Kind::Pod,
            namespace: namespace.into(),
            name: name.map(str::to_string),
            selector: selector::parse(selector).unwrap(),
            fields: Default::default(),
            node: String::new(),
        }
    }

    #[test]
    fn a_field_selector_keeps_only_the_pods_it_matches() {
        let mut scope = scope("", None, "");
        scope.fields =
            kube9_proto::fields::parse("status.phase=Running", kube9_proto::fields::POD_FIELDS)
                .unwrap();
        let pod = |phase: pb::PodPhase| {
            let mut p = pb::Pod {
                name: "p".into(),
                ..Default::default()
            };
            p.set_phase(phase);
            pb::watch_event::Object::Pod(p)
        };
        assert!(scope.select(pod(pb::PodPhase::Running)).is_some());
        assert!(scope.select(pod(pb::PodPhase::Pending)).is_none());
    }

    #[test]
    fn a_watch_keeps_the_changes_in_its_scope() {
        let s = scope("default", None, "app=web");
        assert!(s.select(pod("", "a", "web")).is_some());
        assert!(s.select(pod("default", "a", "web")).is_some());
        assert!(s.select(pod("prod", "a", "web")).is_none());
        assert!(s.select(pod("default", "a", "db")).is_none());
        let node = pb::watch_event::Object::Node(pb::Node::default());
        assert!(s.select(node).is_none());
        let all = scope("", Some("a"), "");
        assert!(all.select(pod("prod", "a", "db")).is_some());
        assert!(all.select(pod("prod", "b", "db")).is_none());
    }

    #[test]
    fn json_under_watch_is_one_object_per_change_maybe_wrapped() {
        let objects = || match pod("", "a", "web") {
            pb::watch_event::Object::Pod(p) => Objects::Pods(vec![p]),
            _ => unreachable!(),
        };
        let mut out = WatchPrinter::new(Printer::plain(Format::Json), false, true);
        let doc = match &out.printer.output {
            Output::Format(format) => {
                let docs = objects().documents();
                let wrapped = WatchEventDoc {
                    change: ChangeType::Modified.word(),
                    object: &docs[0],
                };
                encode(&wrapped, *format).unwrap()
            }
            _ => unreachable!(),
        };
        let value: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(value["type"], "MODIFIED");
        assert_eq!(value["object"]["kind"], "Pod");
        assert_eq!(value["object"]["metadata"]["name"], "a");
        out.print(ChangeType::Added, &Objects::Pods(vec![]))
            .unwrap();
        assert!(!out.printed, "nothing printed for no objects");
    }
}
