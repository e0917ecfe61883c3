//! `kube9ctl create node NAME --cpu QTY [--label k=v]...`.

use crate::cli::{CreateCommand, CreateNodeArgs};
use crate::commands::node::print_node;
use crate::commands::Context;
use anyhow::Context as _;
use kube9_proto::pb;
use kube9_proto::quantity::{parse_cpu, parse_memory};
use kube9_proto::validate::validate_node_spec;

pub async fn run(ctx: &Context, command: CreateCommand) -> anyhow::Result<()> {
    match command {
        CreateCommand::Node(args) => create_node(ctx, args).await,
    }
}

async fn create_node(ctx: &Context, args: CreateNodeArgs) -> anyhow::Result<()> {
    let spec = node_spec(args)?;
    let mut cluster = ctx.connect().await?;
    let request = pb::CreateNodeRequest {
        name: spec.name.clone(),
        cpu_millis: spec.cpu_millis,
        labels: spec.labels,
        memory_bytes: spec.memory_bytes,
    };
    let response = cluster.client.create_node(request).await;
    let node = cluster.check(response)?;
    print_node(ctx, &node, "created")
}

/// The node the flags describe, validated as kube9d will.
pub fn node_spec(args: CreateNodeArgs) -> anyhow::Result<pb::NodeSpec> {
    let cpu_millis = parse_cpu(&args.cpu).context("--cpu")?;
    let memory_bytes = match &args.memory {
        Some(memory) => parse_memory(memory).context("--memory")?,
        None => 0,
    };
    let spec = pb::NodeSpec {
        name: args.name,
        cpu_millis,
        labels: args.labels.into_iter().collect(),
        memory_bytes,
    };
    validate_node_spec(&spec).map_err(|e| {
        // Point at the flag rather than the manifest field.
        let flag = match e.field.as_str() {
            "metadata.name" => "NAME".to_string(),
            "spec.capacity.cpu" => "--cpu".to_string(),
            other if other.starts_with("metadata.labels") => "--label".to_string(),
            other => other.to_string(),
        };
        anyhow::anyhow!("{flag}: {}", e.message)
    })?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(name: &str, cpu: &str, labels: &[(&str, &str)]) -> CreateNodeArgs {
        CreateNodeArgs {
            name: name.into(),
            cpu: cpu.into(),
            memory: None,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn flags_become_a_validated_node_spec() {
        let spec = node_spec(args("n4", "1.5", &[("zone", "a")])).unwrap();
        assert_eq!(spec.cpu_millis, 1500);
        assert_eq!(spec.labels["zone"], "a");
        assert_eq!(
            format!("{:#}", node_spec(args("n4", "-1", &[])).unwrap_err()),
            "--cpu: invalid CPU quantity \"-1\": must not be negative"
        );
        assert!(node_spec(args("N4", "1", &[]))
            .unwrap_err()
            .to_string()
            .starts_with("NAME: invalid node name"));
        assert!(node_spec(args("n4", "0", &[]))
            .unwrap_err()
            .to_string()
            .starts_with("--cpu: must be between"));
        assert!(node_spec(args("n4", "1", &[("bad key", "x")]))
            .unwrap_err()
            .to_string()
            .starts_with("--label: invalid label key \"bad key\""));
    }
}
