//! `kube9-bench`: the scale benchmarks of issue 14 against a real kube9d and simulated nodes
//! (`kube9-node --simulate`). Each case starts what it needs, runs within a time limit, and
//! kills what it started; the figures are printed as a table and written as JSON. Nothing is
//! asserted: a target missed is a row to read, not a failure.
//!
//! `--quick` runs every case at a tiny size (CI runs it so the suite keeps working).

mod cases;
mod cluster;
mod report;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;

use crate::cases::{Bench, Sizes};
use crate::report::Row;

/// The cases, in order.
const CASES: [&str; 7] = [
    "scheduling",
    "churn",
    "heartbeats",
    "memory",
    "failover",
    "deletes",
    "docker",
];

#[derive(Debug, Parser)]
#[command(
    name = "kube9-bench",
    about = "Kube-9 scale benchmarks with simulated nodes"
)]
struct Args {
    /// Every case at a tiny size, in well under two minutes.
    #[arg(long)]
    quick: bool,

    /// Where the JSON results go.
    #[arg(long, default_value = "target/bench/results.json")]
    json: PathBuf,

    /// Only these cases (comma-separated): scheduling, churn, heartbeats, memory, failover,
    /// deletes.
    #[arg(long, value_delimiter = ',')]
    cases: Vec<String>,

    /// Where kube9d and kube9-node are [default: beside this binary].
    #[arg(long)]
    bin_dir: Option<PathBuf>,

    /// Keep each cluster's data directory (kube9d's and the simulators' logs) in $TMPDIR.
    #[arg(long)]
    keep: bool,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin_dir = match args.bin_dir.clone() {
        Some(dir) => dir,
        None => std::env::current_exe()?
            .parent()
            .context("the bench binary's directory")?
            .to_path_buf(),
    };
    for case in &args.cases {
        anyhow::ensure!(
            CASES.contains(&case.as_str()),
            "unknown case {case:?} (cases: {})",
            CASES.join(", ")
        );
    }
    let sizes = if args.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let limit = sizes.limit;
    let bench = Bench {
        bin_dir,
        sizes,
        keep: args.keep,
    };
    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    for case in CASES {
        if !args.cases.is_empty() && !args.cases.iter().any(|c| c == case) {
            continue;
        }
        eprintln!("kube9-bench: {case} ...");
        let t = Instant::now();
        let before = rows.len();
        let outcome = match case {
            "scheduling" => tokio::time::timeout(limit, bench.scheduling(&mut rows)).await,
            "churn" => tokio::time::timeout(limit, bench.churn(&mut rows)).await,
            "heartbeats" => tokio::time::timeout(limit, bench.heartbeats(&mut rows)).await,
            "memory" => tokio::time::timeout(limit, bench.memory(&mut rows)).await,
            "failover" => tokio::time::timeout(limit, bench.failover(&mut rows)).await,
            "deletes" => tokio::time::timeout(limit, bench.deletes(&mut rows)).await,
            // Real containers take longer than a simulated case, whatever the mode.
            _ => {
                let limit = limit.max(std::time::Duration::from_secs(900));
                tokio::time::timeout(limit, bench.docker(&mut rows)).await
            }
        };
        let stopped = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("failed: {e:#}")),
            Err(_) => Some(format!("stopped at its time limit ({limit:?})")),
        };
        if let Some(note) = stopped {
            eprintln!("kube9-bench: {case}: {note}");
            rows.push(Row::failed(case, note));
        }
        eprintln!(
            "kube9-bench: {case} done in {:.1}s ({} figures)",
            t.elapsed().as_secs_f64(),
            rows.len() - before
        );
    }
    println!("{}", report::table(&rows));
    println!("total {:.1}s", started.elapsed().as_secs_f64());
    if let Some(dir) = args.json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let json = serde_json::json!({
        "mode": if args.quick { "quick" } else { "full" },
        "machine": machine(),
        "seconds": started.elapsed().as_secs_f64(),
        "rows": rows,
    });
    std::fs::write(&args.json, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("failed to write {}", args.json.display()))?;
    eprintln!("kube9-bench: wrote {}", args.json.display());
    Ok(())
}

/// CPU model, cores and memory of this machine, from /proc.
fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    serde_json::json!({
        "cpu": model,
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "memory_gb": mem_kb as f64 / 1e6,
    })
}
