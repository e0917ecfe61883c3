//! Finding this runtime's agents through `/proc`: which processes are agents of our cluster
//! (their command line names the cluster, the node and a state directory under our data
//! dir), whether a pid still names the agent we started (its start time), and which
//! processes live in an agent's session (its pods).
//!
//! Blocking file reads only; the runtime calls the scans from `spawn_blocking`.

use std::path::{Path, PathBuf};

/// What makes a process one of this runtime's agents.
#[derive(Debug, Clone)]
pub(super) struct Owner {
    pub(super) cluster_id: String,
    /// `<data_dir>/nodes`, absolute: agents run with `--state-dir <nodes_root>/<name>`.
    pub(super) nodes_root: PathBuf,
}

impl Owner {
    /// The owner for a runtime of `cluster_id` keeping its agents under `data_dir`.
    pub(super) fn new(cluster_id: &str, data_dir: &Path) -> Self {
        // Canonical when the data dir exists (kube9d creates it first), so two spellings of
        // one directory agree; absolute otherwise.
        let data_dir = std::fs::canonicalize(data_dir)
            .or_else(|_| std::path::absolute(data_dir))
            .unwrap_or_else(|_| data_dir.to_path_buf());
        Self {
            cluster_id: cluster_id.to_string(),
            nodes_root: data_dir.join("nodes"),
        }
    }

    /// The node name if `args` are those of an agent this runtime launched
    /// (`… --cluster-id <id> --name <node> … --state-dir <nodes_root>/<node> …`).
    pub(super) fn node_name(&self, args: &[String]) -> Option<String> {
        let value_of = |flag: &str| {
            let at = args.iter().position(|a| a == flag)?;
            args.get(at + 1)
        };
        if *value_of("--cluster-id")? != self.cluster_id {
            return None;
        }
        let name = value_of("--name")?;
        let state_dir = Path::new(value_of("--state-dir")?);
        let expected = self.nodes_root.join(name);
        // A relative path would be relative to the agent's working directory, not ours.
        let ours = state_dir.is_absolute()
            && (state_dir == expected
                || matches!(
                    (std::fs::canonicalize(state_dir), std::fs::canonicalize(&expected)),
                    (Ok(a), Ok(b)) if a == b
                ));
        ours.then(|| name.clone())
    }
}

/// What a pid is, as far as this runtime is concerned.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Probe {
    /// A live agent this runtime launched, serving `node`, started at `started`. `leader`:
    /// it leads its session, as agents do once started (a pod the agent forked shows the
    /// agent's command line until it execs, but not its session).
    Agent {
        node: String,
        started: u64,
        leader: bool,
    },
    /// No such process, or a zombie.
    Gone,
    /// A live process that is not one of this runtime's agents: another program, an agent
    /// started by hand, or a reused pid (its start time is not `expected_start`).
    Stranger,
}

pub(super) fn probe(pid: i32, owner: &Owner, expected_start: Option<u64>) -> Probe {
    match stat(pid) {
        None => Probe::Gone,
        Some(stat) if stat.state == 'Z' || stat.state == 'X' => Probe::Gone,
        Some(stat) if expected_start.is_some_and(|t| t != stat.started) => Probe::Stranger,
        Some(stat) => match cmdline(pid).and_then(|args| owner.node_name(&args)) {
            Some(node) => Probe::Agent {
                node,
                started: stat.started,
                leader: stat.session == pid,
            },
            None => Probe::Stranger,
        },
    }
}

/// A live agent found in `/proc`.
pub(super) struct Agent {
    pub(super) pid: i32,
    pub(super) node: String,
    pub(super) started: u64,
}

/// Live agents this runtime (`owner`) launched that lead their session: a process that has
/// not called `setsid` yet is either an agent still starting (our own children are known
/// without a scan) or a pod about to exec.
pub(super) fn find_agents(owner: &Owner) -> Vec<Agent> {
    let me = std::process::id() as i32;
    all_pids()
        .filter(|pid| *pid != me)
        .filter_map(|pid| match probe(pid, owner, None) {
            Probe::Agent {
                node,
                started,
                leader: true,
            } => Some(Agent { pid, node, started }),
            _ => None,
        })
        .collect()
}

/// The live (not zombie) processes other than `leader` in the session `leader` leads or led.
pub(super) fn session_members(leader: i32) -> Vec<i32> {
    all_pids()
        .filter(|p| *p != leader)
        .filter(|p| stat(*p).is_some_and(|s| s.session == leader && s.state != 'Z'))
        .collect()
}

pub(super) fn all_pids() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
}

pub(super) struct Stat {
    pub(super) state: char,
    pub(super) session: i32,
    /// Start time in clock ticks after boot: with the pid, it names one process.
    pub(super) started: u64,
}

/// The state (field 3), session id (6) and start time (22) from `/proc/<pid>/stat`.
pub(super) fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let session = fields.nth(2)?.parse().ok()?;
    let started = fields.nth(15)?.parse().ok()?;
    Some(Stat {
        state,
        session,
        started,
    })
}

/// The arguments of `pid` (empty until an exec has set them up), if it exists.
pub(super) fn cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(args)
}
