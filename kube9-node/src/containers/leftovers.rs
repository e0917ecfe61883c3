//! Process pods an earlier agent of this node left running: stopped before this agent
//! registers.
//!
//! A kill -9 or a crash of the agent is no leave, and nothing stops its pods then: a process
//! pod outlives its agent. Unlike engine containers ([`super::adopt`]) it cannot be taken
//! over: the new agent is not its parent (it cannot wait for it) and the pipe its output went
//! through died with the old agent. So the new agent stops it before it registers; kube9d
//! then sees the pod gone from the node and starts it again, once. Without this, the old copy
//! runs on beside the new one, and on after the pod's delete.
//!
//! Who they are:
//! - The agent leads its own session (`setsid`, see [`crate::prepare_process`]) and its
//!   containers get process groups of their own, not sessions, so every process of its pods
//!   stays in that session. Each agent records its pid and start time in
//!   `<state-dir>/agents` ([`AGENTS_FILE`]) at start-up; the next one SIGKILLs what is left in
//!   the session of every recorded agent that is gone. Linux does not hand a pid out again
//!   while it still names a session, so a live member of a dead agent's session can only be
//!   one of its pods (or something they started).
//! - What left the session (`setsid`, a daemon) still runs as the pod's uid when the agent is
//!   root: the uids the dead agent claimed (see [`Isolation::sweep_claims_of`]) are swept too.
//!
//! An agent that is still alive (another agent started on the same state directory by
//! mistake) is left alone, and so is everything of it.

use std::path::Path;

use tracing::{info, warn};

use super::isolation::{kill_until_gone, Isolation};
use super::procstat::stat;

/// The agents that ran on a state directory: `<pid> <start time>` a line.
pub const AGENTS_FILE: &str = "agents";

/// An agent process: its pid and start time (clock ticks after boot), which name one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentRecord {
    pub pid: i32,
    pub started: u64,
}

/// What [`stop_leftovers`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Earlier agents that are gone.
    pub dead_agents: Vec<i32>,
    /// Processes killed: members of their sessions, then processes of their pod uids.
    pub killed: usize,
}

/// Stops what the dead agents recorded in `state_dir` left running, then records this
/// process (see the module docs). Blocking: it waits until the processes are gone.
pub fn stop_leftovers(state_dir: &Path, isolation: &Isolation) -> Swept {
    let me = AgentRecord {
        pid: std::process::id() as i32,
        started: stat(std::process::id() as i32).map_or(0, |s| s.started),
    };
    let path = state_dir.join(AGENTS_FILE);
    let recorded = read_records(&path);
    let my_session = stat(me.pid).map(|s| s.session);
    let mut swept = Swept::default();
    let mut alive = vec![];
    for record in recorded {
        if record.pid == me.pid && record.started == me.started {
            continue;
        }
        match stat(record.pid) {
            // Still running (a second agent on this state directory): not ours to stop.
            Some(s) if s.started == record.started && !s.dead() => alive.push(record),
            // The pid went to another process, which the kernel does only once the session
            // it named is empty, and the uids it claimed are that process's now, if any.
            Some(s) if s.started != record.started => {}
            // Gone, or a zombie nobody collected.
            _ => {
                swept.dead_agents.push(record.pid);
                if my_session != Some(record.pid) {
                    swept.killed += kill_until_gone(|| session_members(record.pid, me.pid));
                }
                swept.killed += isolation.sweep_claims_of(record.pid as u32, record.started);
            }
        }
    }
    if !swept.dead_agents.is_empty() {
        let level_warn = swept.killed > 0;
        if level_warn {
            warn!(agents = ?swept.dead_agents, killed = swept.killed,
                "stopped the pod processes of an earlier agent of this node that did not stop them (killed, or crashed); kube9d starts its pods again");
        } else {
            info!(agents = ?swept.dead_agents, "an earlier agent of this node left no pod processes");
        }
    }
    alive.push(me);
    if let Err(error) = write_records(&path, &alive) {
        warn!(file = %path.display(), %error,
            "cannot record this agent: pods it leaves running if it is killed are not stopped by the next one");
    }
    swept
}

/// Live processes (no zombies) in the session `leader` leads or led, but `leader` and
/// `except`.
fn session_members(leader: i32, except: i32) -> Vec<i32> {
    all_pids()
        .filter(|p| *p != leader && *p != except)
        .filter(|p| stat(*p).is_some_and(|s| s.session == leader && !s.dead()))
        .collect()
}

fn all_pids() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
}

fn read_records(path: &Path) -> Vec<AgentRecord> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (pid, started) = line.trim().split_once(' ')?;
            Some(AgentRecord {
                pid: pid.parse().ok().filter(|p| *p > 0)?,
                started: started.trim().parse().ok()?,
            })
        })
        .collect()
}

/// Replaces the file (through a rename: a crash leaves the old list or the new one).
fn write_records(path: &Path, records: &[AgentRecord]) -> std::io::Result<()> {
    let text: String = records
        .iter()
        .map(|r| format!("{} {}\n", r.pid, r.started))
        .collect();
    let temporary = path.with_extension("new");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;

    use super::*;
    use crate::containers::isolation::{Identity, Mode};

    fn alive(pid: i32) -> bool {
        stat(pid).is_some_and(|s| !s.dead())
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("kube9-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn agent_user() -> Isolation {
        Isolation::new(Mode::AgentUser(Identity {
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        }))
    }

    /// A stand-in for a killed agent: a session leader that is gone, and a process it
    /// started still in its session. Returns (leader, member). Spawned through the reaper:
    /// in this test binary it collects every child.
    fn orphaned_session(dir: &Path) -> (i32, i32) {
        let pids = dir.join("pids");
        let script = format!(
            "sleep 1000 </dev/null >/dev/null 2>&1 & echo $$ $! > {}",
            pids.display()
        );
        let mut command = std::process::Command::new("setsid");
        command.args(["sh", "-c", &script]);
        let (_, exit) = crate::containers::reaper::Reaper::global()
            .spawn(&mut command)
            .expect("setsid (util-linux)");
        exit.blocking_recv().unwrap();
        let text = std::fs::read_to_string(pids).unwrap();
        let mut pids = text.split_whitespace().map(|p| p.parse::<i32>().unwrap());
        let (leader, member) = (pids.next().unwrap(), pids.next().unwrap());
        assert!(!alive(leader));
        assert_eq!(stat(member).unwrap().session, leader);
        (leader, member)
    }

    #[test]
    fn the_session_of_a_dead_agent_is_stopped_and_this_agent_recorded() {
        let dir = temp_dir("leftovers");
        let (leader, member) = orphaned_session(&dir);
        std::fs::write(dir.join(AGENTS_FILE), format!("{leader} 12345\n")).unwrap();
        let swept = stop_leftovers(&dir, &agent_user());
        assert_eq!(swept.dead_agents, vec![leader]);
        assert_eq!(swept.killed, 1);
        assert!(!alive(member), "the dead agent's pod still runs");
        let me = std::process::id() as i32;
        let recorded = read_records(&dir.join(AGENTS_FILE));
        assert_eq!(recorded.len(), 1, "{recorded:?}");
        assert_eq!(recorded[0].pid, me);
        assert_eq!(recorded[0].started, stat(me).unwrap().started);
        // This agent again (a second supervisor in one process): nothing to stop, itself
        // recorded once.
        assert_eq!(stop_leftovers(&dir, &agent_user()), Swept::default());
        assert_eq!(read_records(&dir.join(AGENTS_FILE)).len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_live_agent_and_a_reused_pid_are_left_alone() {
        let dir = temp_dir("leftovers-live");
        let mut command = std::process::Command::new("setsid");
        command.args(["sleep", "1000"]);
        let (pid, _exit) = crate::containers::reaper::Reaper::global()
            .spawn(&mut command)
            .unwrap();
        let pid = pid.as_raw();
        while stat(pid).map(|s| s.session) != Some(pid) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let started = stat(pid).unwrap().started;
        // A live agent, and the same pid recorded with another start time (reused).
        std::fs::write(
            dir.join(AGENTS_FILE),
            format!("{pid} {started}\n{pid} {}\n", started + 1),
        )
        .unwrap();
        assert_eq!(stop_leftovers(&dir, &agent_user()), Swept::default());
        assert!(alive(pid), "a live agent was killed");
        let recorded = read_records(&dir.join(AGENTS_FILE));
        assert_eq!(recorded.len(), 2, "{recorded:?}");
        assert_eq!(recorded[0], AgentRecord { pid, started });
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
