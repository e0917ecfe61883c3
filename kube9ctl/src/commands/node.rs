//! `kube9ctl node fail|recover|cleanup|deregister NAME` and `kube9ctl node health`.

use crate::cli::{Format, NodeCommand};
use crate::commands::Context;
use crate::output::columns;
use crate::output::listing::{document, encode};
use crate::output::objects::{NodeHealthObject, NodeObject};
use crate::output::{emit, no_resources};
use kube9_proto::pb;

pub async fn run(ctx: &Context, command: NodeCommand) -> anyhow::Result<()> {
    let mut cluster = ctx.connect().await?;
    let (node, verb) = match command {
        NodeCommand::Fail { name, mode } => {
            let (wire_mode, component) = mode.to_wire();
            let request = pb::SimulateNodeFailureRequest {
                name,
                mode: wire_mode as i32,
                component,
            };
            let response = cluster.client.simulate_node_failure(request).await;
            (
                cluster.check(response)?,
                format!("failure injected ({mode})"),
            )
        }
        NodeCommand::Recover { name } => {
            let response = cluster
                .client
                .recover_node(pb::RecoverNodeRequest { name })
                .await;
            let node = cluster.check(response)?;
            // Like `kubectl uncordon` on a schedulable node: success, and says so.
            let verb = if node.status() == pb::NodeStatus::Healthy && node.injected_fault.is_empty()
            {
                "is healthy"
            } else {
                "recovering"
            };
            (node, verb.to_string())
        }
        NodeCommand::Cleanup { name } => {
            let request = pb::ForceCleanupNodeRequest { name };
            let response = cluster.client.force_cleanup_node(request).await;
            (cluster.check(response)?, "cleaned up".to_string())
        }
        NodeCommand::Deregister { name, reason } => {
            let request = pb::DeregisterNodeRequest {
                name,
                reason: reason.unwrap_or_default(),
            };
            let response = cluster.client.deregister_node(request).await;
            (cluster.check(response)?, "deregistered".to_string())
        }
        NodeCommand::Health => {
            let response = cluster.client.node_health(pb::NodeHealthRequest {}).await;
            let mut entries = cluster.check(response)?.nodes;
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            return print_health(ctx.format(), &entries);
        }
    };
    print_node(ctx, &node, &verb)
}

/// `node/NAME VERB`, or the node itself with `-o json|yaml`, or `node/NAME` with `-o name`.
pub fn print_node(ctx: &Context, node: &pb::Node, verb: &str) -> anyhow::Result<()> {
    emit(&node_result(node, ctx.format(), verb)?)
}

/// The text [`print_node`] writes.
pub fn node_result(node: &pb::Node, format: Format, verb: &str) -> anyhow::Result<String> {
    Ok(match format {
        Format::Json | Format::Yaml => encode(&NodeObject::new(node), format)?,
        Format::Name => format!("node/{}\n", node.name),
        Format::Table | Format::Wide => format!("node/{} {verb}\n", node.name),
    })
}

fn print_health(format: Format, entries: &[pb::NodeHealthEntry]) -> anyhow::Result<()> {
    let text = match format {
        Format::Json | Format::Yaml => document(
            entries.iter().map(NodeHealthObject::new).collect(),
            format,
            false,
        )?,
        _ if entries.is_empty() => {
            no_resources();
            return Ok(());
        }
        Format::Name => entries
            .iter()
            .map(|e| format!("node/{}\n", e.name))
            .collect(),
        Format::Table | Format::Wide => columns::health(entries),
    };
    emit(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::objects::samples::node;

    #[test]
    fn node_results_follow_the_output_format() {
        assert_eq!(
            node_result(&node(), Format::Table, "created").unwrap(),
            "node/n1 created\n"
        );
        assert_eq!(
            node_result(&node(), Format::Name, "created").unwrap(),
            "node/n1\n"
        );
        let json = node_result(&node(), Format::Json, "created").unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["status"]["phase"], "Healthy");
    }
}
