//! `kube9ctl`: parse the command line, run it, print any error kubectl-style.
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match kube9ctl::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and --version go to stdout with exit 0; usage errors to stderr with exit 1.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(kube9ctl::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            kube9ctl::error::report(&e);
            ExitCode::from(kube9ctl::error::ExitStatus::code_of(&e))
        }
    }
}
