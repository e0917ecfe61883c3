//! The one place that waits for child processes.
//!
//! The agent is PID 1 in its container (and a child subreaper elsewhere), so it inherits every
//! orphan of every pod and must reap them all with `waitpid(-1, WNOHANG)`. Anything else that
//! waited on its own children (`tokio::process`, `Child::wait`) would race with that loop, so
//! pod processes are spawned through [`Reaper::spawn`] and their exit statuses come back on a
//! oneshot channel.
//!
//! One reaper serves the whole process: a thread running a small current-thread runtime that
//! wakes on SIGCHLD and on a periodic tick (signals coalesce), and drains `waitpid`. The
//! registry lock is held across `spawn` and across each drain, so a child can never be reaped
//! before its waiter is registered, and `std`'s own `waitpid` on a failed exec never loses its
//! child to us.

use std::collections::HashMap;
use std::io;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tracing::{debug, warn};

/// How often the registry is drained even without SIGCHLD.
const TICK: Duration = Duration::from_millis(500);

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal number.
    Signal(i32),
}

impl Exit {
    /// The shell convention: the code, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(code) => code,
            Exit::Signal(signal) => 128 + signal,
        }
    }

    /// A short sentence for a container status message.
    pub fn describe(self) -> String {
        match self {
            Exit::Code(code) => format!("exited with code {code}"),
            Exit::Signal(signal) => {
                let name = nix::sys::signal::Signal::try_from(signal)
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|_| format!("signal {signal}"));
                format!("killed by {name}")
            }
        }
    }
}

/// The process-wide reaper (see the module docs).
pub struct Reaper {
    waiters: Mutex<HashMap<i32, oneshot::Sender<Exit>>>,
}

impl Reaper {
    /// The reaper of this process, started on first use.
    pub fn global() -> &'static Reaper {
        static REAPER: OnceLock<Reaper> = OnceLock::new();
        static STARTED: OnceLock<()> = OnceLock::new();
        let reaper = REAPER.get_or_init(|| Reaper {
            waiters: Mutex::new(HashMap::new()),
        });
        STARTED.get_or_init(|| start_thread(reaper));
        reaper
    }

    /// Spawns `command` and returns its pid and a receiver for its exit. The `Child` handle
    /// is dropped without waiting: only the reaper waits.
    pub fn spawn(&self, command: &mut Command) -> io::Result<(Pid, oneshot::Receiver<Exit>)> {
        let mut waiters = self.waiters.lock();
        let child = command.spawn()?;
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        drop(child);
        let (tx, rx) = oneshot::channel();
        waiters.insert(pid.as_raw(), tx);
        Ok((pid, rx))
    }

    /// Like [`Reaper::spawn`], also handing back the child's stdout and stderr (when piped).
    pub fn spawn_piped(
        &self,
        command: &mut Command,
    ) -> io::Result<(
        oneshot::Receiver<Exit>,
        Option<std::process::ChildStdout>,
        Option<std::process::ChildStderr>,
    )> {
        let mut waiters = self.waiters.lock();
        let mut child = command.spawn()?;
        let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        drop(child);
        let (tx, rx) = oneshot::channel();
        waiters.insert(pid, tx);
        Ok((rx, stdout, stderr))
    }

    /// Reaps every child that has exited and hands each status to its waiter.
    pub fn reap(&self) {
        let mut waiters = self.waiters.lock();
        loop {
            let (pid, exit) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, Exit::Code(code)),
                Ok(WaitStatus::Signaled(pid, signal, _)) => (pid, Exit::Signal(signal as i32)),
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                Err(error) => {
                    warn!(%error, "failed to wait for children");
                    return;
                }
            };
            match waiters.remove(&pid.as_raw()) {
                Some(waiter) => {
                    debug!(pid = pid.as_raw(), code = exit.code(), "child exited");
                    let _ = waiter.send(exit);
                }
                None => debug!(pid = pid.as_raw(), code = exit.code(), "reaped orphan"),
            }
        }
    }
}

fn start_thread(reaper: &'static Reaper) {
    let spawned = std::thread::Builder::new()
        .name("kube9-reaper".into())
        .spawn(move || reaper_thread(reaper));
    if let Err(error) = spawned {
        // Without the thread nothing would ever be reaped; there is no way to continue.
        panic!("failed to start the reaper thread: {error}");
    }
}

fn reaper_thread(reaper: &'static Reaper) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            warn!(%error, "failed to start the reaper runtime, polling instead");
            loop {
                reaper.reap();
                std::thread::sleep(TICK / 5);
            }
        }
    };
    runtime.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut sigchld = match signal(SignalKind::child()) {
            Ok(sigchld) => Some(sigchld),
            Err(error) => {
                warn!(%error, "failed to listen for SIGCHLD, relying on the tick");
                None
            }
        };
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = async { sigchld.as_mut()?.recv().await }, if sigchld.is_some() => {}
                _ = tick.tick() => {}
            }
            reaper.reap();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signaled_exits_follow_the_shell_convention() {
        assert_eq!(Exit::Code(3).code(), 3);
        assert_eq!(Exit::Signal(9).code(), 137);
        assert_eq!(Exit::Signal(15).describe(), "killed by SIGTERM");
    }

    #[tokio::test]
    async fn the_reaper_hands_each_exit_to_its_waiter() {
        let mut command = Command::new("sh");
        command.args(["-c", "exit 7"]);
        let (_, exit) = Reaper::global().spawn(&mut command).unwrap();
        let exit = tokio::time::timeout(Duration::from_secs(10), exit)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(exit, Exit::Code(7));
    }
}
