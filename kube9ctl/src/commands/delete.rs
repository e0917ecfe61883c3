//! `kube9ctl delete pod|node NAME...` and `kube9ctl delete -f FILE`: delete, then (by default)
//! poll until each object is gone.
//!
//! Like kubectl, a failure on one object is printed and the others are still deleted; the exit
//! code is 1 if any failed.

use crate::cli::{DeleteArgs, Format, Kind};
use crate::client::Client;
use crate::commands::apply::read_manifests;
use crate::commands::Context;
use crate::error::{self, ConnectError, Reported};
use crate::output::emit;
use kube9_proto::manifest::Object;
use kube9_proto::pb;
use std::time::Duration;
use tokio::time::{sleep, Instant};

/// How often to ask whether a deleted object is gone.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

pub async fn run(ctx: &Context, args: DeleteArgs) -> anyhow::Result<()> {
    let targets = targets(&args)?;
    let mut cluster = ctx.connect().await?;
    let mut failed = false;
    for (kind, name) in targets {
        match delete_one(&mut cluster, kind, &name, &args).await {
            Ok(true) => emit(&deleted_line(kind, &name, ctx.format()))?,
            Ok(false) => {}
            // Unreachable server: the other objects would fail the same way.
            Err(e) if e.downcast_ref::<ConnectError>().is_some() => return Err(e),
            Err(e) => {
                error::report(&e);
                failed = true;
            }
        }
    }
    if failed {
        return Err(Reported.into());
    }
    Ok(())
}

/// `pod "web" deleted`, or `pod/web` with `-o name`.
pub fn deleted_line(kind: Kind, name: &str, format: Format) -> String {
    match format {
        Format::Name => format!("{kind}/{name}\n"),
        _ => format!("{kind} {name:?} deleted\n"),
    }
}

/// What to delete, in order: named objects, or a manifest's pods and then its nodes (so pods
/// are not first rescheduled off a draining node).
fn targets(args: &DeleteArgs) -> anyhow::Result<Vec<(Kind, String)>> {
    if let Some(file) = &args.file {
        if !args.names.is_empty() {
            anyhow::bail!("names cannot be given together with -f");
        }
        // Only the names matter here: ignored fields are apply's concern.
        let objects = read_manifests(std::slice::from_ref(file))?.objects;
        let mut targets: Vec<(Kind, String)> = objects
            .iter()
            .map(|o| match o {
                Object::Pod(p) => (Kind::Pod, p.name.clone()),
                Object::Node(n) => (Kind::Node, n.name.clone()),
            })
            .collect();
        targets.sort_by_key(|(kind, _)| *kind == Kind::Node);
        return Ok(targets);
    }
    let Some(resource) = &args.resource else {
        anyhow::bail!("give a kind and names (delete pod web) or a manifest (delete -f FILE)");
    };
    if resource.kind == Kind::Event {
        anyhow::bail!("events cannot be deleted");
    }
    let mut names = args.names.clone();
    if let Some(name) = &resource.name {
        names.insert(0, name.clone());
    }
    if names.is_empty() {
        anyhow::bail!("give the name of at least one {} to delete", resource.kind);
    }
    Ok(names.into_iter().map(|n| (resource.kind, n)).collect())
}

/// Deletes one object and waits for it if asked; `Ok(false)` when it did not exist and that is
/// fine (`--ignore-not-found`).
async fn delete_one(
    cluster: &mut Client,
    kind: Kind,
    name: &str,
    args: &DeleteArgs,
) -> anyhow::Result<bool> {
    let result = match kind {
        Kind::Pod => {
            let request = pb::DeletePodRequest {
                name: name.into(),
                grace_period_seconds: args.grace_period.unwrap_or(0),
            };
            let response = cluster.client.delete_pod(request).await;
            cluster.check(response).map(drop)
        }
        _ => {
            let response = cluster
                .client
                .delete_node(pb::DeleteNodeRequest { name: name.into() })
                .await;
            cluster.check(response).map(drop)
        }
    };
    match result {
        Err(e) if args.ignore_not_found && error::is_not_found(&e) => return Ok(false),
        other => other?,
    }
    if args.wait {
        wait_until_gone(cluster, kind, name, args.timeout).await?;
    }
    Ok(true)
}

/// Polls until the object is NotFound; a zero timeout waits for ever.
async fn wait_until_gone(
    cluster: &mut Client,
    kind: Kind,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = (!timeout.is_zero()).then(|| Instant::now() + timeout);
    loop {
        let result = match kind {
            Kind::Pod => {
                let response = cluster
                    .client
                    .get_pod(pb::GetPodRequest { name: name.into() })
                    .await;
                cluster.check(response).map(drop)
            }
            _ => {
                let response = cluster
                    .client
                    .get_node(pb::GetNodeRequest { name: name.into() })
                    .await;
                cluster.check(response).map(drop)
            }
        };
        match result {
            Err(e) if error::is_not_found(&e) => return Ok(()),
            Err(e) => return Err(e),
            Ok(()) => {}
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

    #[test]
    fn targets_come_from_names_or_a_manifest() {
        assert_eq!(
            targets(&args(&["delete", "po", "a", "b"])).unwrap(),
            [(Kind::Pod, "a".to_string()), (Kind::Pod, "b".to_string())]
        );
        assert_eq!(
            targets(&args(&["delete", "node/n1"])).unwrap(),
            [(Kind::Node, "n1".to_string())]
        );
        assert!(targets(&args(&["delete", "pod"])).is_err());
        assert!(targets(&args(&["delete", "events", "1"])).is_err());
        let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/pods.yaml");
        let from_file = targets(&args(&["delete", "-f", examples])).unwrap();
        assert!(!from_file.is_empty());
        assert!(from_file.iter().all(|(kind, _)| *kind == Kind::Pod));
    }
}
