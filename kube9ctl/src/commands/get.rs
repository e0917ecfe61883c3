//! `kube9ctl get KIND[,KIND...] [NAME...] | KIND/NAME... [-n NS | -A] [-l SELECTOR]
//! [--field-selector SELECTOR] [--chunk-size N] [--node NODE] [--for KIND/NAME] [-o FORMAT] [--no-headers] [--show-labels] [-L KEY]
//! [--sort-by PATH]`.
//!
//! `get all` lists the namespace's pods: kubectl's `all` is the namespace's workloads, and
//! pods are Kube-9's only workload kind (config maps and secrets are not in kubectl's `all`
//! either).
//!
//! Pods, config maps, secrets and events are listed in the `-n` namespace (`default` when not
//! given), or in every namespace with `-A` (a NAMESPACE column comes first); nodes and
//! namespaces are cluster-wide and ignore both.

use crate::cli::{parse_selection, Format, GetArgs, Kind, Output, ResourceKind, Selection};
use crate::client::Client;
use crate::commands::select::{sort_events, EventScope};
use crate::commands::{select, Context};
use crate::error::ServerError;
use crate::output::custom_columns;
use crate::output::listing::{render_groups, Objects, Printer, View};
use crate::output::time::now_ms;
use crate::output::{emit, no_resources};
use anyhow::Context as _;
use kube9_proto::namespace::or_default;
use kube9_proto::pb;
use kube9_proto::selector::{self, Selector};

pub async fn run(ctx: &Context, args: GetArgs) -> anyhow::Result<()> {
    let selection = parse_selection(&args.resources).map_err(anyhow::Error::msg)?;
    let printer = printer(ctx, &args)?;
    if args.watch.any() {
        return watch(ctx, &args, selection, printer).await;
    }
    match selection {
        Selection::Kinds {
            kinds,
            names,
            several: false,
        } if kinds.len() == 1 && names.len() <= 1 => {
            run_one(ctx, &args, kinds[0], names.first().cloned(), &printer).await
        }
        Selection::Objects(objects) if objects.len() == 1 => {
            let (kind, name) = objects.into_iter().next().expect("one object");
            run_one(ctx, &args, kind, Some(name), &printer).await
        }
        selection => run_many(ctx, &args, selection, &printer).await,
    }
}

/// `-o` and the table flags; a custom-columns file is read here.
fn printer(ctx: &Context, args: &GetArgs) -> anyhow::Result<Printer> {
    let output = match ctx.output.clone() {
        None => Output::Format(Format::Table),
        Some(Output::CustomColumnsFile(path)) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read custom-columns-file {}", path.display()))?;
            let columns = custom_columns::parse_file(&text)
                .map_err(|e| anyhow::anyhow!("custom-columns-file {}: {e}", path.display()))?;
            Output::CustomColumns(columns)
        }
        Some(output) => output,
    };
    Ok(Printer {
        output,
        no_headers: args.no_headers,
        show_labels: args.show_labels,
        label_columns: args.label_columns.clone(),
        sort_by: args.sort_by.clone(),
    })
}

/// One kind: its list, or one object of it by name.
async fn run_one(
    ctx: &Context,
    args: &GetArgs,
    kind: Kind,
    name: Option<String>,
    printer: &Printer,
) -> anyhow::Result<()> {
    let selector = match &args.selector {
        Some(s) => selector::parse(s).context("-l/--selector")?,
        None => Selector::everything(),
    };
    check_flags(args, kind, name.is_some())?;
    let namespace = list_namespace(ctx, args, kind);
    let mut cluster = ctx.connect().await?;
    let objects = match (kind, name.as_deref()) {
        (Kind::Event, name) => {
            Objects::Events(scoped_events(&mut cluster, args, &namespace, name).await?)
        }
        (kind, Some(name)) => {
            fetch_one(&mut cluster, kind, &namespace, name, args.node.as_deref()).await?
        }
        (kind, None) => {
            let node = args.node.as_deref().unwrap_or_default();
            let filter = Filter::of(args, &selector);
            list(&mut cluster, kind, &namespace, node, &filter).await?
        }
    };
    let view = View {
        single: name.is_some(),
        all_namespaces: namespace.is_empty(),
        with_kind: false,
        now_ms: now_ms(),
    };
    match render_groups(vec![objects], printer, view)? {
        Some(text) => emit(&text),
        None => {
            no_resources();
            Ok(())
        }
    }
}

/// `get KIND [NAME] -w`: one kind (pods, nodes, events), maybe one name.
async fn watch(
    ctx: &Context,
    args: &GetArgs,
    selection: Selection,
    printer: Printer,
) -> anyhow::Result<()> {
    let (kind, name) = match selection {
        Selection::Kinds {
            kinds,
            mut names,
            several: false,
        } if kinds.len() == 1 && names.len() <= 1 => (kinds[0], names.pop()),
        Selection::Objects(objects) if objects.len() == 1 => {
            let (kind, name) = objects.into_iter().next().expect("one object");
            (kind, Some(name))
        }
        // kubectl's words.
        _ => anyhow::bail!("you may only specify a single resource type"),
    };
    check_flags(args, kind, name.is_some())?;
    if args.for_object.is_some() {
        anyhow::bail!("--for cannot be combined with --watch");
    }
    let selector = match &args.selector {
        Some(s) => selector::parse(s).context("-l/--selector")?,
        None => Selector::everything(),
    };
    let scope = super::watch::Scope {
        kind,
        namespace: list_namespace(ctx, args, kind),
        name,
        selector,
        fields: super::select::field_selector(kind, args.field_selector.as_deref())?,
        node: args.node.clone().unwrap_or_default(),
    };
    let mut cluster = ctx.connect().await?;
    super::watch::run(&mut cluster, scope, &args.watch, printer).await
}

/// The events `get events` shows: in the namespace (or all with `-A`), maybe only those about
/// `--for`'s object, maybe only the one with id `name`.
async fn scoped_events(
    cluster: &mut Client,
    args: &GetArgs,
    namespace: &str,
    name: Option<&str>,
) -> anyhow::Result<Vec<pb::Event>> {
    let about = args.for_object.as_deref().map(parse_for).transpose()?;
    let scope = match &about {
        Some((about_kind, _)) if !about_kind.is_namespaced() => EventScope::All,
        _ if namespace.is_empty() => EventScope::All,
        _ => EventScope::Namespace(namespace.to_string()),
    };
    let about = about.map(|(kind, name)| (kind.wire().to_string(), name));
    events(cluster, name, about, &scope).await
}

/// Several kinds (`get po,no`, `get all`), several names (`get pods a b`), or several
/// `KIND/NAME`s: like kubectl, one table per kind (NAMEs as `kind/name` when several kinds
/// were asked for), the objects that exist printed, each missing one reported on stderr, and
/// exit 1 if any was missing.
async fn run_many(
    ctx: &Context,
    args: &GetArgs,
    selection: Selection,
    printer: &Printer,
) -> anyhow::Result<()> {
    let (lists, targets, several) = match selection {
        Selection::Kinds {
            kinds,
            names,
            several,
        } if names.is_empty() => (kinds, Vec::new(), several),
        Selection::Kinds {
            kinds,
            names,
            several,
        } => {
            let targets = kinds
                .iter()
                .flat_map(|k| names.iter().map(move |n| (*k, n.clone())))
                .collect();
            (Vec::new(), targets, several)
        }
        Selection::Objects(targets) => {
            let first = targets.first().map(|(k, _)| *k);
            let several = targets.iter().any(|(k, _)| Some(*k) != first);
            (Vec::new(), targets, several)
        }
    };
    let selector = match &args.selector {
        Some(s) => selector::parse(s).context("-l/--selector")?,
        None => Selector::everything(),
    };
    for kind in &lists {
        check_flags(args, *kind, false)?;
    }
    for (kind, _) in &targets {
        check_flags(args, *kind, true)?;
    }
    let mut cluster = ctx.connect().await?;
    let mut groups: Vec<Objects> = Vec::new();
    let mut add = |objects: Objects| match groups.iter_mut().find(|g| g.kind() == objects.kind()) {
        Some(group) => group.extend(objects),
        None => groups.push(objects),
    };
    for kind in lists {
        let namespace = list_namespace(ctx, args, kind);
        let objects = match kind {
            Kind::Event => {
                Objects::Events(scoped_events(&mut cluster, args, &namespace, None).await?)
            }
            kind => {
                let node = args.node.as_deref().unwrap_or_default();
                let filter = Filter::of(args, &selector);
                list(&mut cluster, kind, &namespace, node, &filter).await?
            }
        };
        add(objects);
    }
    let named = !targets.is_empty();
    let mut missing = 0;
    for (kind, name) in targets {
        let namespace = list_namespace(ctx, args, kind);
        let found = match kind {
            Kind::Event => scoped_events(&mut cluster, args, &namespace, Some(&name))
                .await
                .map(Objects::Events),
            kind => fetch_one(&mut cluster, kind, &namespace, &name, args.node.as_deref()).await,
        };
        match found {
            Ok(objects) => add(objects),
            Err(e) => {
                crate::error::report(&e);
                missing += 1;
            }
        }
    }
    let view = View {
        single: false,
        all_namespaces: args.all_namespaces,
        with_kind: several,
        now_ms: now_ms(),
    };
    match render_groups(groups, printer, view)? {
        Some(text) => emit(&text)?,
        None if !named => no_resources(),
        None => {}
    }
    if missing > 0 {
        return Err(crate::error::Reported.into());
    }
    Ok(())
}

/// The namespace to look in for `kind`: `-n`'s (or the default), empty for every namespace
/// (`-A`), empty for cluster-wide kinds.
fn list_namespace(ctx: &Context, args: &GetArgs, kind: Kind) -> String {
    if !kind.is_namespaced() || args.all_namespaces {
        String::new()
    } else {
        ctx.ns().to_string()
    }
}

fn check_flags(args: &GetArgs, kind: Kind, named: bool) -> anyhow::Result<()> {
    if named && args.selector.is_some() {
        anyhow::bail!("a name cannot be given together with a label selector (-l)");
    }
    if named && args.field_selector.is_some() {
        anyhow::bail!("a name cannot be given together with a field selector (--field-selector)");
    }
    if args.field_selector.is_some() && kind == Kind::Event {
        anyhow::bail!("--field-selector does not apply to events (use --for KIND/NAME)");
    }
    if named && args.all_namespaces && kind.is_namespaced() {
        // kubectl's words.
        anyhow::bail!("a resource cannot be retrieved by name across all namespaces");
    }
    if args.node.is_some() && kind != Kind::Pod {
        anyhow::bail!("--node only applies to pods");
    }
    if args.selector.is_some() && kind == Kind::Event {
        anyhow::bail!("-l/--selector does not apply to events (use --for KIND/NAME)");
    }
    if args.for_object.is_some() && kind != Kind::Event {
        anyhow::bail!("--for only applies to events");
    }
    Ok(())
}

/// One object of `kind` by name (`namespace` is ignored for cluster-wide kinds); a pod must
/// also be bound to `node` when one is given.
pub async fn fetch_one(
    cluster: &mut Client,
    kind: Kind,
    namespace: &str,
    name: &str,
    node: Option<&str>,
) -> anyhow::Result<Objects> {
    let key = pb::ObjectKey {
        namespace: if kind.is_namespaced() {
            namespace.into()
        } else {
            String::new()
        },
        name: name.into(),
    };
    Ok(match kind {
        Kind::Node => {
            let response = cluster
                .client
                .get_node(pb::GetNodeRequest { name: name.into() })
                .await;
            Objects::Nodes(vec![cluster.check(response)?])
        }
        Kind::Pod => {
            let request = pb::GetPodRequest {
                name: name.into(),
                namespace: namespace.into(),
            };
            let response = cluster.client.get_pod(request).await;
            let pod = cluster.check(response)?;
            if node.is_some_and(|node| !node.is_empty() && pod.node != node) {
                return Err(ServerError::not_found("pod", name).into());
            }
            Objects::Pods(vec![pod])
        }
        Kind::Namespace => {
            let response = cluster.client.get_namespace(key).await;
            Objects::Namespaces(vec![cluster.check(response)?])
        }
        Kind::ConfigMap => {
            let response = cluster.client.get_config_map(key).await;
            Objects::ConfigMaps(vec![cluster.check(response)?])
        }
        Kind::Secret => {
            let response = cluster.client.get_secret(key).await;
            Objects::Secrets(vec![cluster.check(response)?])
        }
        Kind::Event => anyhow::bail!("events are listed, not fetched by name"),
    })
}

/// What a list keeps: a label selector, a field selector (as written), and the page size
/// pods are asked for in.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub labels: Selector,
    pub fields: Option<String>,
    pub chunk_size: u32,
}

impl Filter {
    fn of(args: &GetArgs, labels: &Selector) -> Self {
        Filter {
            labels: labels.clone(),
            fields: args.field_selector.clone(),
            chunk_size: args.chunk_size,
        }
    }
}

/// Every object of `kind` in `namespace` (empty: every namespace) matching `filter`, sorted
/// by namespace and name; pods only those bound to `node` (empty: any).
pub async fn list(
    cluster: &mut Client,
    kind: Kind,
    namespace: &str,
    node: &str,
    filter: &Filter,
) -> anyhow::Result<Objects> {
    let selector = &filter.labels;
    // Pods are selected by kube9d, which words the errors; the other kinds here.
    let fields = match kind {
        Kind::Pod => Default::default(),
        kind => select::field_selector(kind, filter.fields.as_deref())?,
    };
    let named = |ns: &str, name: &str| select::name_fields_match(&fields, ns, name);
    // The server filters too; filtering again keeps the output right whatever it supports.
    let in_namespace = |ns: &str| namespace.is_empty() || or_default(ns) == namespace;
    let request = pb::ListObjectsRequest {
        namespace: namespace.into(),
        label_selector: selector.to_string(),
    };
    Ok(match kind {
        Kind::Node => {
            let response = cluster.client.list_nodes(pb::ListNodesRequest {}).await;
            let mut nodes = cluster.check(response)?.nodes;
            nodes.retain(|n| selector.matches(&n.labels) && named("", &n.name));
            nodes.sort_by(|a, b| a.name.cmp(&b.name));
            Objects::Nodes(nodes)
        }
        Kind::Pod => {
            let fields = filter.fields.as_deref().unwrap_or_default();
            let chunk = filter.chunk_size;
            let mut pods =
                select::list_pods(cluster, namespace, node, selector, fields, chunk).await?;
            let fields = select::field_selector(kind, Some(fields))?;
            pods.retain(|p| {
                selector.matches(&p.labels)
                    && fields.matches_pod(p)
                    && (node.is_empty() || p.node == node)
                    && in_namespace(&p.namespace)
            });
            pods.sort_by(|a, b| (a.ns(), &a.name).cmp(&(b.ns(), &b.name)));
            Objects::Pods(pods)
        }
        Kind::Namespace => {
            let response = cluster
                .client
                .list_namespaces(pb::ListNamespacesRequest {})
                .await;
            let mut namespaces = cluster.check(response)?.namespaces;
            namespaces.retain(|n| selector.matches(&n.labels) && named("", &n.name));
            namespaces.sort_by(|a, b| a.name.cmp(&b.name));
            Objects::Namespaces(namespaces)
        }
        Kind::ConfigMap => {
            let response = cluster.client.list_config_maps(request).await;
            let mut config_maps = cluster.check(response)?.config_maps;
            config_maps.retain(|c| {
                selector.matches(&c.labels)
                    && in_namespace(&c.namespace)
                    && named(or_default(&c.namespace), &c.name)
            });
            config_maps.sort_by(|a, b| {
                (or_default(&a.namespace), &a.name).cmp(&(or_default(&b.namespace), &b.name))
            });
            Objects::ConfigMaps(config_maps)
        }
        Kind::Secret => {
            let response = cluster.client.list_secrets(request).await;
            let mut secrets = cluster.check(response)?.secrets;
            secrets.retain(|s| {
                selector.matches(&s.labels)
                    && in_namespace(&s.namespace)
                    && named(or_default(&s.namespace), &s.name)
            });
            secrets.sort_by(|a, b| {
                (or_default(&a.namespace), &a.name).cmp(&(or_default(&b.namespace), &b.name))
            });
            Objects::Secrets(secrets)
        }
        Kind::Event => Objects::Events(events(cluster, None, None, &EventScope::All).await?),
    })
}

/// Events in `scope`, oldest first: all, those about one object, or the one with id `name`.
pub async fn events(
    cluster: &mut Client,
    name: Option<&str>,
    about: Option<(String, String)>,
    scope: &EventScope,
) -> anyhow::Result<Vec<pb::Event>> {
    let (object_kind, object_name) = about.unwrap_or_default();
    let request = pb::ListEventsRequest {
        object_kind,
        object_name,
        limit: 0,
        namespace: scope.request_namespace(),
    };
    let response = cluster.client.list_events(request).await;
    let mut events = cluster.check(response)?.events;
    events.retain(|e| scope.keeps(e));
    sort_events(&mut events);
    if let Some(name) = name {
        events.retain(|e| e.id.to_string() == name);
        if events.is_empty() {
            return Err(ServerError::not_found("event", name).into());
        }
    }
    Ok(events)
}

/// `node/n1` into the kind and name.
pub fn parse_for(s: &str) -> anyhow::Result<(Kind, String)> {
    let resource: ResourceKind = s
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--for: {e}"))?;
    if resource.kind == Kind::Event {
        anyhow::bail!("--for: events are not about events");
    }
    let Some(name) = resource.name else {
        anyhow::bail!("--for: expected KIND/NAME, e.g. node/n1");
    };
    Ok((resource.kind, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_takes_kind_slash_name() {
        assert_eq!(parse_for("node/n1").unwrap(), (Kind::Node, "n1".into()));
        assert_eq!(parse_for("po/web").unwrap(), (Kind::Pod, "web".into()));
        assert_eq!(
            parse_for("cm/game-demo").unwrap(),
            (Kind::ConfigMap, "game-demo".into())
        );
        assert_eq!(Kind::ConfigMap.wire(), "ConfigMap");
        assert!(parse_for("node").is_err());
        assert!(parse_for("svc/x").is_err());
        assert!(parse_for("ev/1").is_err());
    }

    #[test]
    fn events_sort_oldest_first() {
        let event = |id, time_ms| pb::Event {
            id,
            time_ms,
            ..Default::default()
        };
        let mut events = vec![event(3, 20), event(1, 10), event(2, 20)];
        sort_events(&mut events);
        let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
        assert_eq!(ids, [1, 2, 3]);
    }

    #[test]
    fn event_scopes_keep_their_namespace_and_default_keeps_cluster_wide_events() {
        let event = |namespace: &str| pb::Event {
            namespace: namespace.into(),
            ..Default::default()
        };
        let (node, default, prod) = (event(""), event("default"), event("prod"));
        let all = EventScope::All;
        assert_eq!(all.request_namespace(), "");
        assert!(all.keeps(&node) && all.keeps(&default) && all.keeps(&prod));
        let in_default = EventScope::Namespace("default".into());
        assert_eq!(in_default.request_namespace(), "");
        assert!(in_default.keeps(&node) && in_default.keeps(&default));
        assert!(!in_default.keeps(&prod));
        let in_prod = EventScope::Namespace("prod".into());
        assert_eq!(in_prod.request_namespace(), "prod");
        assert!(in_prod.keeps(&prod));
        assert!(!in_prod.keeps(&node) && !in_prod.keeps(&default));
    }
}
