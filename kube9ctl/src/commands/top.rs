//! `kube9ctl top nodes|pods`: CPU and memory in use, as the agents measured them at their
//! last heartbeat (`Top`), printed as kubectl prints them.

use crate::cli::TopCommand;
use kube9_proto::pb;

use crate::commands::Context;
use crate::output::{emit, table};

/// `250m`, as kubectl's CPU(cores).
fn cpu(millis: i64) -> String {
    format!("{millis}m")
}

/// `12Mi`, as kubectl's MEMORY(bytes).
fn memory(bytes: i64) -> String {
    format!("{}Mi", bytes / (1024 * 1024))
}

fn percent(used: i64, capacity: i64) -> String {
    if capacity > 0 {
        format!("{}%", used * 100 / capacity)
    } else {
        "<none>".into()
    }
}

pub fn node_rows(nodes: &[pb::NodeUsage]) -> String {
    let rows = nodes
        .iter()
        .map(|n| {
            if !n.reported {
                let unknown = "<unknown>".to_string();
                return vec![
                    n.name.clone(),
                    unknown.clone(),
                    unknown.clone(),
                    unknown.clone(),
                    unknown,
                ];
            }
            vec![
                n.name.clone(),
                cpu(n.cpu_millis),
                percent(n.cpu_millis, n.cpu_capacity_millis),
                memory(n.memory_bytes),
                percent(n.memory_bytes, n.memory_capacity_bytes),
            ]
        })
        .collect();
    table::render(
        &["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%"],
        rows,
    )
}

pub fn pod_rows(pods: &[pb::PodUsage], all_namespaces: bool) -> String {
    let rows = pods
        .iter()
        .map(|p| {
            let mut row = vec![
                p.pod_name.clone(),
                cpu(p.cpu_millis),
                memory(p.memory_bytes),
            ];
            if all_namespaces {
                row.insert(0, p.pod_namespace.clone());
            }
            row
        })
        .collect();
    if all_namespaces {
        table::render(&["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"], rows)
    } else {
        table::render(&["NAME", "CPU(cores)", "MEMORY(bytes)"], rows)
    }
}

pub async fn run(ctx: &Context, command: TopCommand) -> anyhow::Result<()> {
    let namespace = match &command {
        TopCommand::Pods {
            all_namespaces: true,
        }
        | TopCommand::Nodes => String::new(),
        TopCommand::Pods { .. } => ctx.namespace.name.clone(),
    };
    let mut cluster = ctx.connect().await?;
    let response = cluster.client.top(pb::TopRequest { namespace }).await;
    let response = cluster.check(response)?;
    match command {
        TopCommand::Nodes => emit(&node_rows(&response.nodes)),
        TopCommand::Pods { all_namespaces } => {
            if response.pods.is_empty() {
                eprintln!("No resources found");
                return Ok(());
            }
            emit(&pod_rows(&response.pods, all_namespaces))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_and_pods_print_as_kubectl_does() {
        let nodes = [
            pb::NodeUsage {
                name: "n1".into(),
                cpu_millis: 250,
                memory_bytes: 64 << 20,
                cpu_capacity_millis: 1000,
                memory_capacity_bytes: 256 << 20,
                reported: true,
            },
            pb::NodeUsage {
                name: "n2".into(),
                ..Default::default()
            },
        ];
        assert_eq!(
            node_rows(&nodes),
            "NAME   CPU(cores)   CPU%        MEMORY(bytes)   MEMORY%\n\
             n1     250m         25%         64Mi            25%\n\
             n2     <unknown>    <unknown>   <unknown>       <unknown>\n"
        );
        let pods = [pb::PodUsage {
            pod_namespace: "default".into(),
            pod_name: "web".into(),
            cpu_millis: 12,
            memory_bytes: 3 << 20,
            ..Default::default()
        }];
        assert_eq!(
            pod_rows(&pods, false),
            "NAME   CPU(cores)   MEMORY(bytes)\nweb    12m          3Mi\n"
        );
    }
}
