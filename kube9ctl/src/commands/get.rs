//! `kube9ctl get nodes|pods|events [NAME...] [-l SELECTOR] [--node NODE] [--for KIND/NAME]`.

use crate::cli::{GetArgs, Kind, ResourceKind};
use crate::client::Client;
use crate::commands::{object_name, Context};
use crate::error::ServerError;
use crate::output::listing::{render, Objects};
use crate::output::time::now_ms;
use crate::output::{emit, no_resources};
use anyhow::Context as _;
use kube9_proto::pb;
use kube9_proto::selector::{self, Selector};

pub async fn run(ctx: &Context, args: GetArgs) -> anyhow::Result<()> {
    if args.names.len() > 1 {
        return run_many(ctx, &args).await;
    }
    let name = object_name(
        args.resource.name.as_deref(),
        args.names.first().map(String::as_str),
    )?;
    let selector = match &args.selector {
        Some(s) => selector::parse(s).context("-l/--selector")?,
        None => Selector::everything(),
    };
    check_flags(&args, name.is_some())?;
    let mut cluster = ctx.connect().await?;
    let objects = match args.resource.kind {
        Kind::Node => Objects::Nodes(nodes(&mut cluster, name.as_deref(), &selector).await?),
        Kind::Pod => {
            let node = args.node.as_deref().unwrap_or_default();
            Objects::Pods(pods(&mut cluster, name.as_deref(), node, &selector).await?)
        }
        Kind::Event => {
            let about = args.for_object.as_deref().map(parse_for).transpose()?;
            Objects::Events(events(&mut cluster, name.as_deref(), about).await?)
        }
    };
    match render(&objects, ctx.format(), name.is_some(), now_ms())? {
        Some(text) => emit(&text),
        None => {
            no_resources();
            Ok(())
        }
    }
}

/// `get pods a b c`: like kubectl, prints the ones that exist as a list, reports each missing
/// one on stderr, and exits 1 if any was missing.
async fn run_many(ctx: &Context, args: &GetArgs) -> anyhow::Result<()> {
    if args.resource.name.is_some() {
        anyhow::bail!("give names either as KIND/NAME or after KIND, not both");
    }
    check_flags(args, true)?;
    let mut cluster = ctx.connect().await?;
    let node = args.node.as_deref().unwrap_or_default();
    let everything = Selector::everything();
    let mut missing = 0;
    let mut found_nodes = Vec::new();
    let mut found_pods = Vec::new();
    for name in &args.names {
        let result = match args.resource.kind {
            Kind::Node => nodes(&mut cluster, Some(name), &everything)
                .await
                .map(|n| found_nodes.extend(n)),
            Kind::Pod => pods(&mut cluster, Some(name), node, &everything)
                .await
                .map(|p| found_pods.extend(p)),
            Kind::Event => anyhow::bail!(
                "events are listed, not fetched by several names (use --for KIND/NAME)"
            ),
        };
        if let Err(e) = result {
            crate::error::report(&e);
            missing += 1;
        }
    }
    let objects = match args.resource.kind {
        Kind::Node => Objects::Nodes(found_nodes),
        _ => Objects::Pods(found_pods),
    };
    if let Some(text) = render(&objects, ctx.format(), false, now_ms())? {
        emit(&text)?;
    }
    if missing > 0 {
        return Err(crate::error::Reported.into());
    }
    Ok(())
}

fn check_flags(args: &GetArgs, named: bool) -> anyhow::Result<()> {
    let kind = args.resource.kind;
    if named && args.selector.is_some() {
        anyhow::bail!("a name cannot be given together with a label selector (-l)");
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

/// One node, or every node matching `selector`, by name.
pub async fn nodes(
    cluster: &mut Client,
    name: Option<&str>,
    selector: &Selector,
) -> anyhow::Result<Vec<pb::Node>> {
    if let Some(name) = name {
        let response = cluster
            .client
            .get_node(pb::GetNodeRequest { name: name.into() })
            .await;
        return Ok(vec![cluster.check(response)?]);
    }
    let response = cluster.client.list_nodes(pb::ListNodesRequest {}).await;
    let mut nodes = cluster.check(response)?.nodes;
    nodes.retain(|n| selector.matches(&n.labels));
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(nodes)
}

/// One pod, or every pod on `node` (empty: any) matching `selector`, by name.
pub async fn pods(
    cluster: &mut Client,
    name: Option<&str>,
    node: &str,
    selector: &Selector,
) -> anyhow::Result<Vec<pb::Pod>> {
    if let Some(name) = name {
        let response = cluster
            .client
            .get_pod(pb::GetPodRequest { name: name.into() })
            .await;
        let pod = cluster.check(response)?;
        if !node.is_empty() && pod.node != node {
            return Err(ServerError::not_found("pod", name).into());
        }
        return Ok(vec![pod]);
    }
    let request = pb::ListPodsRequest {
        node: node.into(),
        label_selector: selector.to_string(),
    };
    let response = cluster.client.list_pods(request).await;
    let mut pods = cluster.check(response)?.pods;
    // The server filters too; filtering again keeps the output right whatever it supports.
    pods.retain(|p| selector.matches(&p.labels) && (node.is_empty() || p.node == node));
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(pods)
}

/// Events, oldest first: all, those about one object, or the one with id `name`.
pub async fn events(
    cluster: &mut Client,
    name: Option<&str>,
    about: Option<(String, String)>,
) -> anyhow::Result<Vec<pb::Event>> {
    let (object_kind, object_name) = about.unwrap_or_default();
    let request = pb::ListEventsRequest {
        object_kind,
        object_name,
        limit: 0,
    };
    let response = cluster.client.list_events(request).await;
    let mut events = cluster.check(response)?.events;
    sort_events(&mut events);
    if let Some(name) = name {
        events.retain(|e| e.id.to_string() == name);
        if events.is_empty() {
            return Err(ServerError::not_found("event", name).into());
        }
    }
    Ok(events)
}

/// Oldest first; ties by id, which the server assigns in order.
pub fn sort_events(events: &mut [pb::Event]) {
    events.sort_by_key(|e| (e.time_ms, e.id));
}

/// `node/n1` into the wire kind and name (`Node`, `n1`).
pub fn parse_for(s: &str) -> anyhow::Result<(String, String)> {
    let resource: ResourceKind = s
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--for: {e}"))?;
    let kind = match resource.kind {
        Kind::Node => "Node",
        Kind::Pod => "Pod",
        Kind::Event => anyhow::bail!("--for: events are not about events"),
    };
    let Some(name) = resource.name else {
        anyhow::bail!("--for: expected KIND/NAME, e.g. node/n1");
    };
    Ok((kind.into(), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_takes_kind_slash_name() {
        assert_eq!(parse_for("node/n1").unwrap(), ("Node".into(), "n1".into()));
        assert_eq!(parse_for("po/web").unwrap(), ("Pod".into(), "web".into()));
        assert!(parse_for("node").is_err());
        assert!(parse_for("svc/x").is_err());
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
}
