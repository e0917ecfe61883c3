//! `kube9ctl delete pod|configmap|secret|namespace|node NAME...`, `kube9ctl delete KIND/NAME...`
//! (what `get -o name` prints, so `kube9ctl get pods -o name | xargs kube9ctl delete` works),
//! `kube9ctl delete KIND -l SELECTOR | --field-selector SELECTOR | --all` and
//! `kube9ctl delete -f FILE`: delete, then (by default) wait until each object is gone. Pods
//! go many at a time ([`super::bulk_delete`]: one request, kube9d waits on its watch); the
//! other kinds one by one, polled.
//!
//! Pods, config maps and secrets are deleted in the `-n` namespace (or the manifest's); deleting
//! a namespace deletes everything in it, and waiting for it waits until kube9d has.
//!
//! Like kubectl, a failure on one object is printed and the others are still deleted; the exit
//! code is 1 if any failed. When kube9d cannot be reached (it restarts, say), kube9ctl
//! reconnects and tries the same object again for up to [`RECONNECT_FOR`](super::bulk_delete::RECONNECT_FOR); a NotFound on such
//! a retry means the earlier try got through before the connection broke.

use crate::cli::{parse_selection, DeleteArgs, Kind, Selection};
use crate::client::Client;
use crate::commands::apply::{identity, read_manifests, resolve_namespaces};
use crate::commands::bulk_delete::{delete_pods, deleted_line, Which, RECONNECT_FOR};
use crate::commands::get::{fetch_one, list, Filter};
use crate::commands::{select, Context};
use crate::error::{self, ConnectError, Reported};
use crate::output::emit;
use anyhow::Context as _;
use kube9_proto::pb;
use std::time::Duration;
use tokio::time::{sleep, Instant};

/// How often to ask whether a deleted object is gone.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The pause between reconnect attempts.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// One object to delete: its kind, namespace (empty for nodes and namespaces) and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl Target {
    fn new(kind: Kind, namespace: &str, name: &str) -> Self {
        Target {
            kind,
            namespace: if kind.is_namespaced() {
                namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }
}

pub async fn run(ctx: &Context, args: DeleteArgs) -> anyhow::Result<()> {
    if args.selector.is_some() || args.field_selector.is_some() || args.all {
        return run_selected(ctx, &args).await;
    }
    let targets = targets(ctx, &args)?;
    let mut cluster = ctx.connect().await?;
    let mut failed = false;
    let mut rest = targets.as_slice();
    while let Some(target) = rest.first() {
        // A run of pods of one namespace is deleted in one request.
        let pods = rest
            .iter()
            .take_while(|t| t.kind == Kind::Pod && t.namespace == target.namespace)
            .count();
        if pods > 0 {
            let names = rest[..pods].iter().map(|t| t.name.clone()).collect();
            rest = &rest[pods..];
            let which = Which::Names(names);
            match delete_pods(ctx, &mut cluster, &target.namespace, which, &args).await {
                Ok(any_failed) => failed |= any_failed,
                Err(e) if e.downcast_ref::<ConnectError>().is_some() => return Err(e),
                Err(e) => {
                    error::report(&e);
                    failed = true;
                }
            }
            continue;
        }
        rest = &rest[1..];
        failed |= delete_reported(ctx, &mut cluster, target, &args).await?;
    }
    if failed {
        return Err(Reported.into());
    }
    Ok(())
}

/// `delete KIND -l SELECTOR`, `--field-selector`, `--all`: pods selected by kube9d in one
/// request, other kinds listed and deleted one by one.
async fn run_selected(ctx: &Context, args: &DeleteArgs) -> anyhow::Result<()> {
    let kinds = match parse_selection(&args.resources).map_err(anyhow::Error::msg)? {
        Selection::Kinds { kinds, names, .. } if names.is_empty() => kinds,
        _ => anyhow::bail!(
            "names cannot be given together with a selector (-l, --field-selector) or --all"
        ),
    };
    if kinds.contains(&Kind::Event) {
        anyhow::bail!("events cannot be deleted");
    }
    let labels = match &args.selector {
        Some(s) => kube9_proto::selector::parse(s).context("-l/--selector")?,
        None => Default::default(),
    };
    let mut cluster = ctx.connect().await?;
    let mut failed = false;
    for kind in kinds {
        if kind == Kind::Pod {
            let which = Which::Selected {
                labels: labels.to_string(),
                fields: args.field_selector.clone().unwrap_or_default(),
                all: args.all,
            };
            failed |= delete_pods(ctx, &mut cluster, ctx.ns(), which, args).await?;
            continue;
        }
        let namespace = if kind.is_namespaced() { ctx.ns() } else { "" };
        let filter = Filter {
            labels: labels.clone(),
            fields: args.field_selector.clone(),
            chunk_size: 0,
        };
        let listed = list(&mut cluster, kind, namespace, "", &filter).await?;
        let names = select::names(&listed);
        if names.is_empty() {
            eprintln!("No resources found");
        }
        for name in names {
            let target = Target::new(kind, namespace, &name);
            failed |= delete_reported(ctx, &mut cluster, &target, args).await?;
        }
    }
    if failed {
        return Err(Reported.into());
    }
    Ok(())
}

/// Deletes `target` and prints the outcome (`deleted`, or the error); returns whether it
/// failed. Still unreachable after reconnecting for a while is returned as the error: the
/// other objects would fail the same way.
async fn delete_reported(
    ctx: &Context,
    cluster: &mut Client,
    target: &Target,
    args: &DeleteArgs,
) -> anyhow::Result<bool> {
    match delete_retrying(ctx, cluster, target, args).await {
        Ok(true) => emit(&deleted_line(target.kind, &target.name, ctx.format()))?,
        Ok(false) => {}
        Err(e) if e.downcast_ref::<ConnectError>().is_some() => return Err(e),
        Err(e) => {
            error::report(&e);
            return Ok(true);
        }
    }
    Ok(false)
}

/// What to delete, in order: named objects, or a manifest's namespaced objects, then its
/// namespaces, then its nodes (so pods are not first rescheduled off a draining node, nor
/// deleted twice).
fn targets(ctx: &Context, args: &DeleteArgs) -> anyhow::Result<Vec<Target>> {
    if let Some(file) = &args.file {
        if !args.resources.is_empty() {
            anyhow::bail!("names cannot be given together with -f");
        }
        // Only the names matter here: ignored fields are apply's concern.
        let mut objects = read_manifests(std::slice::from_ref(file))?.objects;
        resolve_namespaces(&mut objects, &ctx.namespace)?;
        let mut targets: Vec<Target> = objects
            .iter()
            .map(|o| {
                let (kind, namespace, name) = identity(o);
                Target::new(kind, namespace, name)
            })
            .collect();
        targets.sort_by_key(|t| match t.kind {
            Kind::Node => 2,
            Kind::Namespace => 1,
            _ => 0,
        });
        return Ok(targets);
    }
    let pairs: Vec<(Kind, String)> =
        match parse_selection(&args.resources).map_err(anyhow::Error::msg)? {
            Selection::Objects(objects) => objects,
            Selection::Kinds { kinds, names, .. } => {
                if names.is_empty() {
                    let kinds: Vec<&str> = kinds.iter().map(|k| k.noun()).collect();
                    anyhow::bail!(
                        "give the name of at least one {} to delete",
                        kinds.join(" or ")
                    );
                }
                kinds
                    .iter()
                    .flat_map(|k| names.iter().map(move |n| (*k, n.clone())))
                    .collect()
            }
        };
    if pairs.iter().any(|(kind, _)| *kind == Kind::Event) {
        anyhow::bail!("events cannot be deleted");
    }
    Ok(pairs
        .iter()
        .map(|(kind, name)| Target::new(*kind, ctx.ns(), name))
        .collect())
}

/// [`delete_one`], reconnecting while kube9d is unreachable (for up to [`RECONNECT_FOR`]).
async fn delete_retrying(
    ctx: &Context,
    cluster: &mut Client,
    target: &Target,
    args: &DeleteArgs,
) -> anyhow::Result<bool> {
    let deadline = Instant::now() + RECONNECT_FOR;
    let mut retried = false;
    loop {
        match delete_one(cluster, target, args).await {
            Err(e) if is_unreachable(&e) && Instant::now() < deadline => {
                if !retried {
                    eprintln!(
                        "kube9d is unreachable; retrying {} {:?} for up to {}s",
                        target.kind,
                        target.name,
                        RECONNECT_FOR.as_secs()
                    );
                }
                retried = true;
                sleep(RECONNECT_PAUSE).await;
                if let Ok(fresh) = ctx.connect().await {
                    *cluster = fresh;
                }
            }
            // The try before the connection broke got through.
            Err(e) if retried && error::is_not_found(&e) => return Ok(true),
            other => return other,
        }
    }
}

fn is_unreachable(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ConnectError>().is_some()
}

/// Deletes one object and waits for it if asked; `Ok(false)` when it did not exist and that is
/// fine (`--ignore-not-found`).
async fn delete_one(
    cluster: &mut Client,
    target: &Target,
    args: &DeleteArgs,
) -> anyhow::Result<bool> {
    let key = pb::ObjectKey {
        namespace: target.namespace.clone(),
        name: target.name.clone(),
    };
    let result = match target.kind {
        Kind::Pod => {
            let request = pb::DeletePodRequest {
                name: target.name.clone(),
                grace_period_seconds: args.grace_period.unwrap_or(0),
                namespace: target.namespace.clone(),
            };
            let response = cluster.client.delete_pod(request).await;
            cluster.check(response).map(drop)
        }
        Kind::ConfigMap => {
            let response = cluster.client.delete_config_map(key).await;
            cluster.check(response).map(drop)
        }
        Kind::Secret => {
            // The answer holds the values: dropped unread.
            let response = cluster.client.delete_secret(key).await;
            cluster.check(response).map(drop)
        }
        Kind::Namespace => {
            let response = cluster.client.delete_namespace(key).await;
            cluster.check(response).map(drop)
        }
        Kind::Node => {
            let request = pb::DeleteNodeRequest {
                name: target.name.clone(),
            };
            let response = cluster.client.delete_node(request).await;
            cluster.check(response).map(drop)
        }
        Kind::Event => anyhow::bail!("events cannot be deleted"),
    };
    match result {
        Err(e) if args.ignore_not_found && error::is_not_found(&e) => return Ok(false),
        other => other?,
    }
    if args.wait {
        wait_until_gone(cluster, target, args.timeout).await?;
    }
    Ok(true)
}

/// Polls until the object is NotFound; a zero timeout waits for ever.
async fn wait_until_gone(
    cluster: &mut Client,
    target: &Target,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = (!timeout.is_zero()).then(|| Instant::now() + timeout);
    let Target {
        kind,
        namespace,
        name,
    } = target;
    loop {
        match fetch_one(cluster, *kind, namespace, name, None).await {
            Err(e) if error::is_not_found(&e) => return Ok(()),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        if deadline.is_some_and(|d| Instant::now() + POLL_INTERVAL > d) {
            anyhow::bail!(
                "timed out after {}s waiting for {kind} {name:?} to be deleted",
                timeout.as_secs_f64()
            );
        }
        sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Format;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn args(argv: &[&str]) -> DeleteArgs {
        let cli =
            Cli::try_parse_from(std::iter::once("kube9ctl").chain(argv.iter().copied())).unwrap();
        match cli.command {
            Command::Delete(d) => d,
            _ => panic!(),
        }
    }

    #[test]
    fn deleted_lines_are_kubectl_style() {
        assert_eq!(
            deleted_line(Kind::Pod, "x", Format::Table),
            "pod \"x\" deleted\n"
        );
        assert_eq!(deleted_line(Kind::Node, "n1", Format::Name), "node/n1\n");
    }

    fn ctx(namespace: Option<&str>) -> Context {
        Context {
            conn: Default::default(),
            output: None,
            namespace: crate::commands::Namespace::resolve(namespace.map(Into::into), None, None),
        }
    }

    fn target(kind: Kind, namespace: &str, name: &str) -> Target {
        Target {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    #[test]
    fn targets_come_from_names_or_a_manifest() {
        assert_eq!(
            targets(&ctx(None), &args(&["delete", "po", "a", "b"])).unwrap(),
            [
                target(Kind::Pod, "default", "a"),
                target(Kind::Pod, "default", "b")
            ]
        );
        assert_eq!(
            targets(&ctx(Some("prod")), &args(&["delete", "cm", "x"])).unwrap(),
            [target(Kind::ConfigMap, "prod", "x")]
        );
        assert_eq!(
            targets(&ctx(Some("prod")), &args(&["delete", "node/n1"])).unwrap(),
            [target(Kind::Node, "", "n1")]
        );
        assert_eq!(
            targets(&ctx(Some("prod")), &args(&["delete", "ns", "dev"])).unwrap(),
            [target(Kind::Namespace, "", "dev")]
        );
        assert_eq!(
            targets(&ctx(None), &args(&["delete", "pod/a", "pod/b", "node/n1"])).unwrap(),
            [
                target(Kind::Pod, "default", "a"),
                target(Kind::Pod, "default", "b"),
                target(Kind::Node, "", "n1")
            ]
        );
        assert_eq!(
            targets(&ctx(None), &args(&["delete", "po,cm", "x"])).unwrap(),
            [
                target(Kind::Pod, "default", "x"),
                target(Kind::ConfigMap, "default", "x")
            ]
        );
        let mixed = targets(&ctx(None), &args(&["delete", "pod", "pod/b"])).unwrap_err();
        assert!(
            mixed
                .to_string()
                .contains("no need to specify a resource type"),
            "{mixed}"
        );
        assert!(targets(&ctx(None), &args(&["delete", "pod/a", "b"])).is_err());
        assert!(targets(&ctx(None), &args(&["delete", "pod"])).is_err());
        assert!(targets(&ctx(None), &args(&["delete", "events", "1"])).is_err());
        let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/pods.yaml");
        let from_file = targets(&ctx(None), &args(&["delete", "-f", examples])).unwrap();
        assert!(!from_file.is_empty());
        assert!(from_file
            .iter()
            .all(|t| t.kind == Kind::Pod && t.namespace == "default"));
    }

    #[test]
    fn deleted_lines_name_the_new_kinds() {
        assert_eq!(
            deleted_line(Kind::Namespace, "dev", Format::Table),
            "namespace \"dev\" deleted\n"
        );
        assert_eq!(
            deleted_line(Kind::ConfigMap, "game-demo", Format::Name),
            "configmap/game-demo\n"
        );
        assert_eq!(
            deleted_line(Kind::Secret, "db", Format::Table),
            "secret \"db\" deleted\n"
        );
    }
}
