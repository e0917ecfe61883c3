//! The pod sandbox's process (`kube9-node pause`), Kube-9's `pause` container.
//!
//! Every pod on a Docker node gets one small sandbox container that holds the pod's network
//! namespace (and its volumes) while the app containers come and go; see [`crate::cri`]. Its
//! process does what Kubernetes' `pause.c` does: it is PID 1 of the sandbox, so it reaps
//! whatever gets reparented to it, and it exits 0 on SIGTERM or SIGINT so `docker stop`
//! returns at once instead of waiting out the grace period.
//!
//! `main.rs` calls [`run`] first thing, before the tokio runtime or anything else starts: the
//! process stays single-threaded, so blocking the signals on this thread blocks them for the
//! process. Blocked signals are never dropped, not even for PID 1 (which ignores signals it
//! has no handler for), and `sigwait` picks them up without an asynchronous handler (and
//! without `unsafe`).
//!
//! The same binary has a second mode for the sandbox, `du`, exec'd in it to measure the pod's
//! volumes: see [`crate::usage`].

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// The first argument that selects the pause mode: `kube9-node pause`.
pub const SUBCOMMAND: &str = "pause";

/// Whether the command line (`std::env::args_os()`) asks for the pause mode.
pub fn requested<I, S>(args: I) -> bool
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    args.into_iter()
        .nth(1)
        .is_some_and(|arg| arg.as_ref() == SUBCOMMAND)
}

/// Blocks SIGTERM, SIGINT and SIGCHLD, then waits for them forever: SIGCHLD reaps every
/// exited child, SIGTERM and SIGINT exit the process with status 0.
pub fn run() -> ! {
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGCHLD] {
        signals.add(signal);
    }
    if let Err(error) = signals.thread_block() {
        say(format_args!("pause: failed to block signals: {error}"));
        std::process::exit(2);
    }
    loop {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => reap_all(),
            Ok(_) => std::process::exit(0),
            Err(error) => {
                say(format_args!("pause: failed to wait for signals: {error}"));
                std::process::exit(2);
            }
        }
    }
}

/// A line on stderr, if it can be written: `eprintln!` would panic when it cannot.
fn say(line: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Collects every exited child (signals coalesce: one SIGCHLD may stand for many).
fn reap_all() {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_argument_selects_the_pause_mode() {
        assert!(requested(["/pause", "pause"]));
        assert!(requested(["kube9-node", "pause", "extra"]));
        assert!(!requested(["kube9-node"]));
        assert!(!requested(["kube9-node", "--name", "pause"]));
        assert!(!requested(["pause"]));
    }
}
