//! `kube9ctl cordon NODE`, `uncordon NODE` and `drain NODE [--timeout=60s]`.
//!
//! Drain is one `DrainNode` call: kube9d cordons the node and evicts its pods, each stopped on
//! the node (its agent confirms) before it is placed elsewhere. kube9ctl then follows the pods
//! until each runs elsewhere or waits Pending for room, printing what happens as kubectl does.

use crate::cli::{CordonArgs, DrainArgs};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kube9_proto::pb::{self, PodPhase};
use tokio::time::Instant;

use crate::commands::Context;
use crate::output::emit;

/// `cordon` (`true`) or `uncordon` (`false`).
pub async fn cordon(ctx: &Context, args: CordonArgs, unschedulable: bool) -> anyhow::Result<()> {
    let mut cluster = ctx.connect().await?;
    let before = cluster
        .client
        .get_node(pb::GetNodeRequest {
            name: args.node.clone(),
        })
        .await;
    let before = cluster.check(before)?;
    let request = pb::CordonNodeRequest {
        name: args.node.clone(),
        unschedulable,
    };
    let response = cluster.client.cordon_node(request).await;
    cluster.check(response)?;
    let verb = match (unschedulable, before.unschedulable == unschedulable) {
        (true, false) => "cordoned",
        (true, true) => "already cordoned",
        (false, false) => "uncordoned",
        (false, true) => "already uncordoned",
    };
    emit(&format!("node/{} {verb}\n", args.node))
}

/// Where an evicted pod is, as drain follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Progress {
    /// Still on the drained node.
    Leaving,
    /// Off the node, not settled yet.
    Evicted,
    /// Running (or finished) on another node, or waiting Pending for room: done.
    Settled,
}

pub async fn drain(ctx: &Context, args: DrainArgs) -> anyhow::Result<()> {
    let mut cluster = ctx.connect().await?;
    let request = pb::DrainNodeRequest {
        name: args.node.clone(),
    };
    let response = cluster.client.drain_node(request).await;
    let response = cluster.check(response)?;
    let node = &args.node;
    emit(&format!("node/{node} cordoned\n"))?;
    let mut pods: BTreeMap<String, Progress> = BTreeMap::new();
    for key in &response.pods {
        emit(&format!("evicting pod {key}\n"))?;
        pods.insert(key.clone(), Progress::Leaving);
    }
    let deadline = (!args.timeout.is_zero()).then(|| Instant::now() + args.timeout);
    loop {
        if pods.values().all(|p| *p == Progress::Settled) {
            break;
        }
        let listed = cluster
            .client
            .list_pods(pb::ListPodsRequest::default())
            .await;
        let now: HashMap<String, pb::Pod> = cluster
            .check(listed)?
            .pods
            .into_iter()
            .map(|p| (kube9_proto::namespace::key(&p.namespace, &p.name), p))
            .collect();
        let mut out = String::new();
        for (key, progress) in pods.iter_mut() {
            let name = kube9_proto::namespace::split(key).1;
            let Some(pod) = now.get(key) else {
                if *progress != Progress::Settled {
                    out.push_str(&format!("pod/{name} deleted\n"));
                    *progress = Progress::Settled;
                }
                continue;
            };
            if *progress == Progress::Leaving && pod.node != *node {
                out.push_str(&format!("pod/{name} evicted\n"));
                *progress = Progress::Evicted;
            }
            if *progress == Progress::Evicted {
                let phase = pod.phase();
                if pod.node.is_empty() && phase == PodPhase::Pending && pod.reason.starts_with("0/")
                {
                    out.push_str(&format!(
                        "pod/{name} is Pending: no node has room ({})\n",
                        pod.reason
                    ));
                    *progress = Progress::Settled;
                } else if !pod.node.is_empty()
                    && (phase == PodPhase::Running || phase.is_terminal())
                {
                    out.push_str(&format!(
                        "pod/{name} {} on {}\n",
                        phase_word(phase),
                        pod.node
                    ));
                    *progress = Progress::Settled;
                }
            }
        }
        emit(&out)?;
        if pods.values().all(|p| *p == Progress::Settled) {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let left: Vec<String> = pods
                .iter()
                .filter(|(_, p)| **p != Progress::Settled)
                .map(|(k, p)| {
                    let name = kube9_proto::namespace::split(k).1;
                    match p {
                        Progress::Leaving => format!("pod/{name} still on {node}"),
                        _ => format!("pod/{name} not running elsewhere yet"),
                    }
                })
                .collect();
            anyhow::bail!(
                "drain of node {node} timed out after {}: {} (the node stays cordoned; run drain again to keep waiting)",
                humantime(args.timeout),
                left.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    emit(&format!("node/{node} drained\n"))
}

fn phase_word(phase: PodPhase) -> &'static str {
    match phase {
        PodPhase::Running => "running",
        PodPhase::Succeeded => "completed",
        _ => "failed",
    }
}

fn humantime(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
