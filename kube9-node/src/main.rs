//! `kube9-node`: the Kube-9 node agent binary (see the library for everything it does).

use anyhow::Context;
use clap::Parser;
use kube9_node::{Cli, Command};

fn main() -> anyhow::Result<()> {
    // Before anything else: the pod sandbox's process stays single-threaded, so the signals it
    // blocks are blocked for the whole process (see `kube9_node::pause`).
    if kube9_node::pause::requested(std::env::args_os()) {
        kube9_node::pause::run();
    }
    // The sandbox's other mode, exec'd in it to measure the pod's emptyDirs: no runtime either.
    if kube9_node::usage::requested(std::env::args_os()) {
        std::process::exit(kube9_node::usage::run(std::env::args_os().skip(2)));
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("failed to start the async runtime")?
        .block_on(agent())
}

async fn agent() -> anyhow::Result<()> {
    // First: as PID 1 in a container, SIGTERM without a handler is ignored and `docker stop`
    // would wait out its whole timeout.
    let shutdown = kube9_node::termination_signal().context("failed to install signal handlers")?;
    let cli = Cli::parse();
    if let Some(Command::Standin { image, args }) = &cli.command {
        return kube9_node::standin::run(image, args, shutdown, std::io::stdout())
            .await
            .context("failed to write stand-in output");
    }
    kube9_node::prepare_process();
    kube9_node::logging::init();
    let config = cli.config().context("invalid configuration")?;
    if let Some(simulation) = kube9_node::simulate::Simulation::from_cli(&cli) {
        kube9_node::simulate::run(config, simulation, shutdown).await;
        return Ok(());
    }
    // Shut down or terminated: both are a clean exit. A refusal by kube9d is not an exit at
    // all; the agent logs it and keeps trying (see `kube9_node::agent`).
    kube9_node::run(config, shutdown)
        .await
        .context("node agent failed")?;
    Ok(())
}
