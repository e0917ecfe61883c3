use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use kube9d::config::{Command, RestoreArgs, SnapshotCommand};
use kube9d::store::{self, DAMAGED_EXIT_CODE};
use tokio::signal::unix::{signal, SignalKind};

#[tokio::main]
async fn main() -> ExitCode {
    // Everything kube9d (and the process nodes it starts) writes is private to its user: the
    // store, the Secrets' key, logs.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let config = kube9d::Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,h2=warn,hyper=warn,tower=warn".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let result = match config.command.clone() {
        Some(Command::Snapshot(SnapshotCommand::Restore(args))) => restore(&args),
        None => serve(config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", render(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}

async fn serve(config: kube9d::Config) -> anyhow::Result<()> {
    let (trigger, shutdown) = kube9d::shutdown::channel();
    let mut sigterm =
        signal(SignalKind::terminate()).context("failed to install the SIGTERM handler")?;
    let mut sigint =
        signal(SignalKind::interrupt()).context("failed to install the SIGINT handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = sigterm.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = sigint.recv() => tracing::info!("SIGINT: shutting down"),
        }
        trigger.fire();
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("failed to listen on {}", config.listen))?;
    kube9d::run(config, listener, shutdown).await
}

/// `kube9d snapshot restore FILE --data-dir DIR`.
fn restore(args: &RestoreArgs) -> anyhow::Result<()> {
    let restored =
        store::restore::restore(&args.file, &args.data_dir, args.secret_key_file.as_deref())?;
    print!("{}", restored.summary(&args.data_dir));
    Ok(())
}

/// `context: cause: root cause`, without repeating a cause its context already quotes (store
/// errors carry their cause in their own message).
fn render(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain().map(|c| c.to_string()) {
        if out.ends_with(&cause) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&cause);
    }
    out
}

/// [`DAMAGED_EXIT_CODE`] for a damaged store, so scripts can tell it from other failures; 1
/// otherwise.
fn exit_code(err: &anyhow::Error) -> u8 {
    let damaged = err
        .chain()
        .filter_map(|e| e.downcast_ref::<store::Error>())
        .any(store::Error::is_damaged);
    if damaged {
        DAMAGED_EXIT_CODE
    } else {
        1
    }
}
