//! Who a process pod runs as, and where its files are.
//!
//! An agent running as root gives every process pod a user of its own: uid and gid
//! `--pod-uid-base` + a slot number, allocated when the pod is set up and freed when it is torn
//! down (round robin, so a freed uid is not handed out again at once), and claimed host-wide
//! ([`DEFAULT_CLAIMS_DIR`]) so that the agents of one host (kube9d's process nodes) never give
//! two pods the same uid. At teardown every process still running as the pod's uid is killed. A container runs as its
//! `securityContext.runAsUser` / `runAsGroup` when set; the group defaults to the pod's.
//! `runAsUser: 0` is refused (`CreateContainerConfigError`) unless kube9d allows it
//! (`--allow-root-process-pods`, sent in `Registered`).
//!
//! An agent that is not root cannot change users: its pods run as its own user, and a
//! `runAsUser`/`runAsGroup` other than its own is refused. It says so in `Register`
//! (`pod_isolation`).
//!
//! Dropping privileges is std's `Command::uid`/`gid`, no `pre_exec` (the workspace forbids
//! unsafe code). Checked in the std source of Rust 1.95 (`sys/process/unix/unix.rs`,
//! `do_exec`): in the child it calls `setgid`, then, since no `groups` were given,
//! `setgroups(0, NULL)` (ignoring only EPERM, i.e. when it is not root), then `setuid`, and
//! only after that `chdir` to the working directory and `execvp`. So a pod process keeps no
//! supplementary group of the agent (root's included), and the pod's user must be able to
//! reach its working directory by path: see [`PodDirs`].

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use kube9_proto::pb;
use parking_lot::Mutex;

/// The first pod uid (and gid) of an agent running as root, unless `--pod-uid-base` says.
pub const DEFAULT_POD_UID_BASE: u32 = 200_000;

/// How many pods can have a user at once: uids `base .. base + POD_UID_SLOTS`.
pub const POD_UID_SLOTS: u32 = 65_536;

/// The reason a container that may not run as asked waits with.
pub const CONFIG_ERROR: &str = "CreateContainerConfigError";

/// The message of a container refused `runAsUser: 0`.
pub const ROOT_REFUSED: &str =
    "runAsUser 0 is not allowed on process nodes (kube9d --allow-root-process-pods)";

/// A user and group a process runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
}

/// How this agent keeps process pods apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The agent is root: each pod gets uid/gid `base + slot`.
    PerPod { base: u32 },
    /// The agent is not root: pods run as its own user.
    AgentUser(Identity),
}

/// Per-pod users of one node: the mode, what kube9d allows, and the slots in use.
#[derive(Debug)]
pub struct Isolation {
    mode: Mode,
    allow_root: AtomicBool,
    slots: Mutex<Slots>,
    /// Where the uids in use on this host are claimed (`None`: only this agent's are known).
    claims: Option<Claims>,
}

/// Where the agents of this host claim pod uids: kube9d's process nodes all run on one host,
/// as may agents of other clusters, and a uid two pods share is no isolation. A claim is a
/// file named after the uid holding the claiming agent's pid and start time (a pid alone
/// names a later process too: pids are reused); the claim of an agent that is gone is taken
/// over once nothing runs as its uid. Every look at a claim and what follows from it happens
/// under an exclusive `flock` of [`CLAIMS_LOCK`] in the directory: without it, an agent
/// taking over a dead agent's uid for a new pod, and that dead agent's successor sweeping the
/// same uid (it read the claim a moment before), killed the new pod and dropped its claim.
pub const DEFAULT_CLAIMS_DIR: &str = "/run/kube9-node/pod-uids";

/// The lock file of a claims directory (not a uid: never taken for a claim).
const CLAIMS_LOCK: &str = ".lock";

#[derive(Debug)]
struct Claims {
    dir: PathBuf,
}

impl Claims {
    fn open(dir: &Path) -> io::Result<Claims> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        Ok(Claims {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory's lock, held until the guard drops (or this process dies: the kernel
    /// releases a `flock` with its last descriptor). `None`: it cannot be taken, and the
    /// claims go on without it, as they did before there was one.
    fn lock(&self) -> Option<nix::fcntl::Flock<std::fs::File>> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(self.dir.join(CLAIMS_LOCK))
            .ok()?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).ok()
    }

    fn path(&self, uid: u32) -> PathBuf {
        self.dir.join(uid.to_string())
    }

    /// Claims `uid` for this process; false when a live agent holds it, or a process of a
    /// dead one still runs as it.
    fn claim(&self, uid: u32) -> bool {
        let _lock = self.lock();
        let path = self.path(uid);
        if let Some(holder) = Holder::read(&path) {
            if holder.alive() {
                return false;
            }
        }
        if path.exists() && !processes_of(uid).is_empty() {
            // Its agent is gone (killed or crashed) and left a process of its pod running
            // as this uid: a new pod sharing it would share its files and processes. The uid
            // waits until the next agent of that node stops it.
            return false;
        }
        Holder::me().write(&path).is_ok()
    }

    /// The uids claimed by the agent `pid` that started at `started`.
    fn held_by(&self, pid: u32, started: u64) -> Vec<u32> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .filter(|uid| Holder::read(&self.path(*uid)).is_some_and(|h| h.is(pid, started)))
            .collect()
    }

    /// Takes `uid` over from the dead agent `pid` (started at `started`) if that agent still
    /// holds it: then no other agent can take it while its processes are killed.
    fn take_over(&self, uid: u32, pid: u32, started: u64) -> bool {
        let _lock = self.lock();
        let path = self.path(uid);
        Holder::read(&path).is_some_and(|h| h.is(pid, started)) && Holder::me().write(&path).is_ok()
    }

    /// Gives `uid` up, if this process holds it.
    fn release(&self, uid: u32) {
        let _lock = self.lock();
        let path = self.path(uid);
        let me = Holder::me();
        if Holder::read(&path).is_some_and(|h| h.pid == me.pid && h.started == me.started) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The agent a claim file names.
struct Holder {
    pid: u32,
    /// `None` in claims written before start times were recorded.
    started: Option<u64>,
}

impl Holder {
    fn me() -> Holder {
        let pid = std::process::id();
        Holder {
            pid,
            started: super::procstat::stat(pid as i32).map(|s| s.started),
        }
    }

    /// `<pid> <start time>` (or `<pid>`, from an older agent).
    fn read(path: &Path) -> Option<Holder> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut words = text.split_whitespace();
        let pid = words.next()?.parse().ok()?;
        let started = words.next().and_then(|w| w.parse().ok());
        Some(Holder { pid, started })
    }

    /// Whether this is the agent `pid` that started at `started` (a claim without a start
    /// time, from an older agent, is any agent of that pid).
    fn is(&self, pid: u32, started: u64) -> bool {
        self.pid == pid && self.started.is_none_or(|s| s == started)
    }

    /// Writes the claim file (the caller holds the directory's lock).
    fn write(&self, path: &Path) -> io::Result<()> {
        use std::io::Write;
        let started = self.started.map_or(String::new(), |t| t.to_string());
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(format!("{} {started}\n", self.pid).as_bytes())
    }

    /// Whether the very process that claimed is still running.
    fn alive(&self) -> bool {
        super::procstat::stat(self.pid as i32)
            .is_some_and(|s| !s.dead() && self.started.is_none_or(|t| t == s.started))
    }
}

/// Slots in use by pod uid, and where the next search starts.
#[derive(Debug, Default)]
struct Slots {
    by_pod: HashMap<String, u32>,
    used: HashSet<u32>,
    next: u32,
}

impl Isolation {
    /// Isolation as this process can do it: per pod when it runs as root (effective uid 0),
    /// uids claimed host-wide in [`DEFAULT_CLAIMS_DIR`].
    pub fn detect(uid_base: u32) -> Self {
        if !nix::unistd::geteuid().is_root() {
            return Self::new(Mode::AgentUser(Identity {
                uid: nix::unistd::geteuid().as_raw(),
                gid: nix::unistd::getegid().as_raw(),
            }));
        }
        let mut isolation = Self::new(Mode::PerPod { base: uid_base });
        match Claims::open(Path::new(DEFAULT_CLAIMS_DIR)) {
            Ok(claims) => isolation.claims = Some(claims),
            Err(error) => tracing::warn!(dir = DEFAULT_CLAIMS_DIR, %error,
                "cannot claim pod uids host-wide: another agent on this host may give its pods the same uids"),
        }
        isolation
    }

    /// Isolation in `mode`, knowing only this agent's uids.
    pub fn new(mode: Mode) -> Self {
        Isolation {
            mode,
            allow_root: AtomicBool::new(false),
            slots: Mutex::new(Slots::default()),
            claims: None,
        }
    }

    /// [`Isolation::new`], claiming uids host-wide in `dir`.
    pub fn with_claims(mode: Mode, dir: &Path) -> io::Result<Self> {
        let mut isolation = Self::new(mode);
        isolation.claims = Some(Claims::open(dir)?);
        Ok(isolation)
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// kube9d's `allow_root_pods` (from `Registered`): whether `runAsUser: 0` may run.
    pub fn set_allow_root(&self, allow: bool) {
        self.allow_root.store(allow, Ordering::Relaxed);
    }

    /// One sentence for `Register.pod_isolation` and `kubectl describe node`.
    pub fn describe(&self) -> String {
        match self.mode {
            Mode::PerPod { base } => format!("pods run as uid {base}+ (one per pod)"),
            Mode::AgentUser(me) => format!(
                "pods run as this agent's user (uid {}): the agent is not root",
                me.uid
            ),
        }
    }

    /// The pod's own user (allocating a slot the first time it is asked for `pod_uid`); the
    /// agent's user when it is not root. `None`: every slot is taken.
    pub fn pod_identity(&self, pod_uid: &str) -> Option<Identity> {
        let base = match self.mode {
            Mode::AgentUser(me) => return Some(me),
            Mode::PerPod { base } => base,
        };
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.by_pod.get(pod_uid) {
            return Some(per_pod(base, *slot));
        }
        let claims = self.claims.as_ref();
        let slot = (0..POD_UID_SLOTS)
            .map(|i| (slots.next + i) % POD_UID_SLOTS)
            .filter(|slot| !slots.used.contains(slot))
            .find(|slot| claims.is_none_or(|c| c.claim(base + slot)))?;
        slots.next = (slot + 1) % POD_UID_SLOTS;
        slots.used.insert(slot);
        slots.by_pod.insert(pod_uid.to_string(), slot);
        Some(per_pod(base, slot))
    }

    /// The pod's user, if it has one now (no allocation).
    pub fn existing_pod_identity(&self, pod_uid: &str) -> Option<Identity> {
        match self.mode {
            Mode::AgentUser(me) => Some(me),
            Mode::PerPod { base } => {
                (self.slots.lock().by_pod.get(pod_uid)).map(|s| per_pod(base, *s))
            }
        }
    }

    /// Kills every process running as a pod uid that the agent `pid` started at `started`,
    /// gone now, claimed (what its pods left, see [`super::leftovers`]), and frees those uids.
    /// An agent that got the same pid later keeps its claims. Returns how many processes were
    /// killed. Only with per-pod users claimed host-wide.
    pub fn sweep_claims_of(&self, pid: u32, started: u64) -> usize {
        let (Some(claims), Mode::PerPod { base }) = (&self.claims, self.mode) else {
            return 0;
        };
        sweep_uids(claims, base, claims.held_by(pid, started), pid, started)
    }

    /// Frees the pod's slot (its uid may go to another pod later).
    pub fn release(&self, pod_uid: &str) {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.by_pod.remove(pod_uid) {
            slots.used.remove(&slot);
            if let (Some(claims), Mode::PerPod { base }) = (&self.claims, self.mode) {
                claims.release(base + slot);
            }
        }
    }

    /// Who `container` of `pod` runs as: `Some` is set on the process (the agent is root),
    /// `None` runs it as the agent's own user. `Err` is the message of a container that may
    /// not run as its securityContext asks ([`CONFIG_ERROR`]).
    pub fn container_identity(
        &self,
        pod: &pb::Pod,
        container: &pb::Container,
    ) -> Result<Option<Identity>, String> {
        let sc = container.security_context.clone().unwrap_or_default();
        let user = sc.run_as_user.map(|u| id_of("runAsUser", u)).transpose()?;
        let group = sc
            .run_as_group
            .map(|g| id_of("runAsGroup", g))
            .transpose()?;
        if user == Some(0) {
            if sc.run_as_non_root {
                return Err(format!(
                    "container's runAsUser breaks non-root policy (pod: {:?}, container: {})",
                    pod.key(),
                    container.name
                ));
            }
            if !self.allow_root.load(Ordering::Relaxed) {
                return Err(ROOT_REFUSED.to_string());
            }
        }
        match self.mode {
            Mode::AgentUser(me) => {
                let cannot = |what: &str, id: u32| {
                    format!(
                        "{what} {id} cannot be applied: the agent is not root, so pods run as its user (uid {}, gid {})",
                        me.uid, me.gid
                    )
                };
                match (user, group) {
                    (Some(u), _) if u != me.uid => Err(cannot("runAsUser", u)),
                    (_, Some(g)) if g != me.gid => Err(cannot("runAsGroup", g)),
                    _ => Ok(None),
                }
            }
            Mode::PerPod { base } => {
                // Another pod's uid would give access to its files and processes.
                let range = base..base.saturating_add(POD_UID_SLOTS);
                for (what, id) in [("runAsUser", user), ("runAsGroup", group)] {
                    if let Some(id) = id.filter(|id| range.contains(id)) {
                        return Err(format!(
                            "{what} {id} is in this node's range of pod uids ({}-{}), given one per pod",
                            range.start,
                            range.end - 1
                        ));
                    }
                }
                // Allocated when the pod is set up, freed when it is torn down.
                let own = self
                    .existing_pod_identity(&pod.uid)
                    .ok_or_else(|| format!("pod {} is not set up on this node", pod.key()))?;
                Ok(Some(Identity {
                    uid: user.unwrap_or(own.uid),
                    gid: group.unwrap_or(own.gid),
                }))
            }
        }
    }
}

fn per_pod(base: u32, slot: u32) -> Identity {
    Identity {
        uid: base + slot,
        gid: base + slot,
    }
}

fn id_of(what: &str, id: i64) -> Result<u32, String> {
    u32::try_from(id)
        .ok()
        .filter(|id| *id != u32::MAX)
        .ok_or_else(|| format!("invalid {what} {id}"))
}

/// Where a process pod's files are, and who may see them.
///
/// `<state-dir>/pods/<namespace>/<name>/` is the agent's (mode 0711): the container logs, mode
/// 0600, written by the agent through the descriptor it opens before the exec. The pod cannot
/// read them by path, and cannot swap them for a link (the directory is not its own), so a
/// FetchLogs never reads what a pod pointed it at. Its `work/` subdirectory is the pod's working
/// directory: owned by the pod's user and group, mode 0770, so only the pod's containers (and
/// root) can list or read it; it is removed when the pod is torn down, before its uid can go to
/// another pod.
///
/// The pod's user must reach `work/` by path (std changes directory after dropping
/// privileges), so every directory above it must be searchable by others (x) without being
/// readable: the agent makes its state directory, `pods/` and each namespace directory 0711.
/// Above the state directory the agent changes nothing; kube9d's process runtime, whose agents
/// live in `<data-dir>/nodes/<node>`, makes `<data-dir>` and `nodes/` 0711 when it runs as
/// root (everything in them stays 0700/0600, `store/` included). [`unreachable_ancestor`]
/// finds a directory on the way that is not, for a warning at start-up.
pub struct PodDirs;

/// Where working directories go when the agent's state directory sits below a directory others
/// cannot pass through (a checkout in a 0700 home, a `mktemp -d`): one directory per pod, named
/// by a hash of its directory in the state directory.
pub const FALLBACK_WORK_ROOT: &str = "/var/lib/kube9-node/work";

impl PodDirs {
    /// The working directory of the pod in `pod_dir` (`<state-dir>/pods/<namespace>/<name>`):
    /// its `work/`, or, when a directory above the state directory is closed to others (the
    /// pod's user could not reach `work/` there), one under [`FALLBACK_WORK_ROOT`].
    pub fn work(pod_dir: &Path) -> PathBuf {
        let above_state_dir = pod_dir.ancestors().nth(4);
        match above_state_dir.and_then(unreachable_ancestor) {
            None => pod_dir.join("work"),
            Some(_) => {
                use std::hash::{Hash, Hasher};
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                pod_dir.hash(&mut hasher);
                Path::new(FALLBACK_WORK_ROOT).join(format!("{:016x}", hasher.finish()))
            }
        }
    }

    /// Creates the pod's directories (see [`PodDirs`]), with a new, empty `work/` (what an
    /// earlier binding left there goes); `owner`: chown `work/` to it.
    pub fn create(pods_root: &Path, pod_dir: &Path, owner: Option<Identity>) -> io::Result<()> {
        std::fs::create_dir_all(pod_dir)?;
        Self::remove_work(pod_dir)?;
        // pods/, <namespace>/ and the pod's directory: searchable, not listable.
        let mut dir = pod_dir;
        while dir.starts_with(pods_root) {
            set_mode(dir, 0o711)?;
            match dir.parent() {
                Some(parent) => dir = parent,
                None => break,
            }
        }
        let work = Self::work(pod_dir);
        if let Some(root) = work.parent().filter(|r| !r.starts_with(pod_dir)) {
            // The fallback root: searchable by pods, listable by nobody but root.
            std::fs::create_dir_all(root)?;
            for dir in [root, root.parent().unwrap_or(root)] {
                set_mode(dir, 0o711)?;
            }
        }
        match std::fs::create_dir(&work) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        // A link planted by someone there is not followed (lchown, and the mode is checked).
        if std::fs::symlink_metadata(&work)?.file_type().is_symlink() {
            return Err(io::Error::other(format!("{} is a link", work.display())));
        }
        match owner {
            Some(id) => {
                std::os::unix::fs::lchown(&work, Some(id.uid), Some(id.gid))?;
                set_mode(&work, 0o770)
            }
            None => set_mode(&work, 0o700),
        }
    }

    /// Removes the working directories under `pods_root` an earlier agent left (it may have
    /// died before tearing its pods down): their owners' uids go to new pods.
    pub fn remove_all_work(pods_root: &Path) {
        let dirs = |dir: &Path| -> Vec<PathBuf> {
            std::fs::read_dir(dir)
                .map(|entries| entries.flatten().map(|e| e.path()).collect())
                .unwrap_or_default()
        };
        for namespace in dirs(pods_root) {
            for pod_dir in dirs(&namespace) {
                if let Err(error) = Self::remove_work(&pod_dir) {
                    tracing::warn!(dir = %pod_dir.display(), %error, "failed to remove an old pod working directory");
                }
            }
        }
    }

    /// Removes the pod's working directory (its logs stay).
    pub fn remove_work(pod_dir: &Path) -> io::Result<()> {
        match std::fs::remove_dir_all(Self::work(pod_dir)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Kills what runs as each of `uids` (listed as the dead agent `pid`'s, started at
/// `started`) and frees it, unless another agent took it over since it was listed.
fn sweep_uids(claims: &Claims, base: u32, uids: Vec<u32>, pid: u32, started: u64) -> usize {
    let mut killed = 0;
    for uid in uids {
        // Another agent may have taken it over since (nothing ran as it any more): that
        // agent's pod runs as it now.
        if !claims.take_over(uid, pid, started) {
            continue;
        }
        // Only this agent's range: a uid below it is not a pod's.
        if (base..base.saturating_add(POD_UID_SLOTS)).contains(&uid) {
            killed += kill_until_gone(|| processes_of(uid));
        }
        claims.release(uid);
    }
    killed
}

/// Live processes whose real, effective, saved or filesystem uid is `uid` (from `/proc`).
pub fn processes_of(uid: u32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let field = |name: &str| status.lines().find_map(|line| line.strip_prefix(name));
            // A zombie is dead already (its parent has not collected it yet).
            !field("State:").is_some_and(|state| state.trim_start().starts_with('Z'))
                && field("Uid:")
                    .is_some_and(|ids| ids.split_whitespace().any(|id| id == uid.to_string()))
        })
        .collect()
}

/// Every live process by each of its uids (real, effective, saved, filesystem): one pass over
/// `/proc`.
fn processes_by_uid() -> HashMap<u32, Vec<i32>> {
    let mut by_uid: HashMap<u32, Vec<i32>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return by_uid;
    };
    for pid in (entries.flatten()).filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| status.lines().find_map(|line| line.strip_prefix(name));
        if field("State:").is_some_and(|state| state.trim_start().starts_with('Z')) {
            continue;
        }
        let uids: HashSet<u32> = (field("Uid:").unwrap_or_default().split_whitespace())
            .filter_map(|id| id.parse().ok())
            .collect();
        for uid in uids {
            by_uid.entry(uid).or_default().push(pid);
        }
    }
    by_uid
}

/// [`processes_of`] for pods stopping many at a time: one pass over `/proc` serves every pod
/// whose processes had stopped (at `stopped`) before the pass began, so a thousand pods
/// deleted together cost a few passes, not a thousand. A pid from a shared pass is checked
/// again ([`processes_of`]'s test) before it is returned: it may have exited, or been reused.
pub async fn processes_of_stopped(uid: u32, stopped: std::time::Instant) -> Vec<i32> {
    type Pass = (std::time::Instant, std::sync::Arc<HashMap<u32, Vec<i32>>>);
    static LAST: tokio::sync::Mutex<Option<Pass>> = tokio::sync::Mutex::const_new(None);
    let pass = {
        let mut last = LAST.lock().await;
        match &*last {
            Some((at, pass)) if *at >= stopped => pass.clone(),
            _ => {
                let at = std::time::Instant::now();
                let pass = tokio::task::spawn_blocking(processes_by_uid)
                    .await
                    .unwrap_or_default();
                let pass = std::sync::Arc::new(pass);
                *last = Some((at, pass.clone()));
                pass
            }
        }
    };
    let candidates = pass.get(&uid).cloned().unwrap_or_default();
    candidates
        .into_iter()
        .filter(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let field = |name: &str| status.lines().find_map(|line| line.strip_prefix(name));
            !field("State:").is_some_and(|state| state.trim_start().starts_with('Z'))
                && field("Uid:")
                    .is_some_and(|ids| ids.split_whitespace().any(|id| id == uid.to_string()))
        })
        .collect()
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// The first directory from `/` down to `dir` that others cannot search (no `x` for others),
/// so that a pod's user could not reach `dir`.
pub fn unreachable_ancestor(dir: &Path) -> Option<PathBuf> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let mut ancestors: Vec<&Path> = dir.ancestors().collect();
    ancestors.reverse();
    ancestors
        .into_iter()
        .find(|d| {
            std::fs::metadata(d)
                .map(|m| m.permissions().mode() & 0o001 == 0)
                .unwrap_or(true)
        })
        .map(Path::to_path_buf)
}

/// SIGKILLs what `find` returns until it returns nothing (a process may fork while its
/// siblings are killed) or 5 s have passed; returns how many processes were killed.
pub fn kill_until_gone(mut find: impl FnMut() -> Vec<i32>) -> usize {
    let mut killed = std::collections::HashSet::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let found = find();
        if found.is_empty() {
            break;
        }
        if std::time::Instant::now() > deadline {
            tracing::warn!(pids = ?found, "processes an earlier agent left survive SIGKILL");
            break;
        }
        for pid in found {
            if nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            )
            .is_ok()
            {
                killed.insert(pid);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    killed.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_directory_pods_cannot_reach_puts_their_work_in_the_fallback_root() {
        let top = std::env::temp_dir().join(format!("kube9-work-{}", std::process::id()));
        let pod_dir = top.join("home/state/pods/default/web");
        std::fs::create_dir_all(&pod_dir).unwrap();
        set_mode(&top.join("home"), 0o755).unwrap();
        assert_eq!(PodDirs::work(&pod_dir), pod_dir.join("work"));
        // A 0700 directory above the state directory, like a home or a `mktemp -d`.
        set_mode(&top.join("home"), 0o700).unwrap();
        let work = PodDirs::work(&pod_dir);
        assert!(work.starts_with(FALLBACK_WORK_ROOT), "{}", work.display());
        assert_eq!(
            work,
            PodDirs::work(&pod_dir),
            "the same directory every time"
        );
        let other = top.join("home/state/pods/default/db");
        assert_ne!(PodDirs::work(&other), work, "one per pod");
        let _ = std::fs::remove_dir_all(&top);
    }

    fn pod(uid: &str) -> pb::Pod {
        pb::Pod {
            name: "web".into(),
            uid: uid.into(),
            ..Default::default()
        }
    }

    fn container(user: Option<i64>, group: Option<i64>, non_root: bool) -> pb::Container {
        pb::Container {
            name: "app".into(),
            security_context: Some(pb::SecurityContext {
                run_as_user: user,
                run_as_group: group,
                run_as_non_root: non_root,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn each_pod_gets_its_own_uid_and_freed_uids_come_back_last() {
        let iso = Isolation::new(Mode::PerPod { base: 1000 });
        let a = iso.pod_identity("a").unwrap();
        assert_eq!(
            a,
            Identity {
                uid: 1000,
                gid: 1000
            }
        );
        assert_eq!(iso.pod_identity("a"), Some(a), "stable for the same pod");
        assert_eq!(iso.pod_identity("b").unwrap().uid, 1001);
        iso.release("a");
        assert_eq!(iso.existing_pod_identity("a"), None);
        // Round robin: slot 0 is free again but the next one is handed out first.
        assert_eq!(iso.pod_identity("c").unwrap().uid, 1002);
    }

    #[test]
    fn agents_of_one_host_never_share_a_uid() {
        let dir = std::env::temp_dir().join(format!("kube9-claims-{}", std::process::id()));
        let one = Isolation::with_claims(Mode::PerPod { base: 1000 }, &dir).unwrap();
        let two = Isolation::with_claims(Mode::PerPod { base: 1000 }, &dir).unwrap();
        // Both are this process here: a claim by a live other pid is what stops `two`.
        std::fs::write(dir.join("1000"), "1\n").unwrap();
        assert_eq!(one.pod_identity("a").unwrap().uid, 1001);
        std::fs::write(dir.join("1002"), "1\n").unwrap();
        assert_eq!(two.pod_identity("b").unwrap().uid, 1003);
        // The claim names this process by pid and start time.
        let me = super::super::procstat::stat(std::process::id() as i32).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("1003")).unwrap().trim(),
            format!("{} {}", std::process::id(), me.started)
        );
        two.release("b");
        assert!(!dir.join("1003").exists());
        // The claim of a process that is gone is taken over.
        std::fs::write(dir.join("1004"), "999999999\n").unwrap();
        assert_eq!(two.pod_identity("c").unwrap().uid, 1004);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A `sleep` running as `uid` (and its gid), once `/proc` shows it so. Needs root.
    fn process_as(uid: u32) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        let child = std::process::Command::new("sleep")
            .arg("1000")
            .uid(uid)
            .gid(uid)
            .spawn()
            .unwrap();
        while processes_of(uid).is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        child
    }

    #[test]
    fn the_uids_of_a_dead_agent_are_not_reused_while_its_pods_run_and_are_swept() {
        if !nix::unistd::geteuid().is_root() {
            return; // Needs a process of another uid.
        }
        let dir = std::env::temp_dir().join(format!("kube9-sweep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let base = 3_100_000;
        let iso = Isolation::with_claims(Mode::PerPod { base }, &dir).unwrap();
        // An agent that is gone (killed) claimed `base` and left a pod process running as it.
        let dead = 999_999_999;
        std::fs::write(dir.join(base.to_string()), format!("{dead}\n")).unwrap();
        let mut left = process_as(base);
        assert_eq!(iso.pod_identity("a").unwrap().uid, base + 1, "shared a uid");
        // An agent that got the same pid later, with another start time, keeps its claims.
        let reused = 3_100_002;
        std::fs::write(dir.join(reused.to_string()), format!("{dead} 42\n")).unwrap();
        assert_eq!(iso.sweep_claims_of(dead, 41), 1);
        assert!(
            dir.join(reused.to_string()).exists(),
            "a later agent's claim was taken"
        );
        let _ = left.wait();
        assert!(processes_of(base).is_empty());
        assert!(!dir.join(base.to_string()).exists(), "the claim stays");
        assert_eq!(iso.sweep_claims_of(dead, 41), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The successor of a dead agent lists the uids it claimed, after its session's processes
    /// are gone; another agent may take one of them over for a new pod before the successor
    /// gets to it. That pod is not the dead agent's: it runs on, and keeps its claim.
    #[test]
    fn a_uid_taken_over_after_it_was_listed_is_not_swept() {
        if !nix::unistd::geteuid().is_root() {
            return; // Needs a process of another uid.
        }
        let dir = std::env::temp_dir().join(format!("kube9-takeover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let base = 3_200_000;
        let successor = Isolation::with_claims(Mode::PerPod { base }, &dir).unwrap();
        let claims = successor.claims.as_ref().unwrap();
        let dead = 999_999_998;
        std::fs::write(dir.join(base.to_string()), format!("{dead} 41\n")).unwrap();
        let listed = claims.held_by(dead, 41);
        assert_eq!(listed, vec![base]);
        // Another agent of the host (this process too, here: its claims name it alike)
        // takes the uid over and starts a pod as it.
        let other = Isolation::with_claims(Mode::PerPod { base }, &dir).unwrap();
        assert_eq!(other.pod_identity("new").unwrap().uid, base);
        let mut pod = process_as(base);
        assert_eq!(sweep_uids(claims, base, listed, dead, 41), 0);
        let still_runs = pod.try_wait().unwrap().is_none();
        let _ = pod.kill();
        let _ = pod.wait();
        assert!(still_runs, "the other agent's pod was killed");
        assert!(dir.join(base.to_string()).exists(), "its claim was dropped");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn slots_wrap_around_and_run_out() {
        let iso = Isolation::new(Mode::PerPod { base: 10 });
        for i in 0..POD_UID_SLOTS {
            assert_eq!(iso.pod_identity(&format!("p{i}")).unwrap().uid, 10 + i);
        }
        assert_eq!(iso.pod_identity("one-too-many"), None);
        iso.release("p5");
        assert_eq!(iso.pod_identity("again").unwrap().uid, 15);
    }

    #[test]
    fn containers_run_as_the_pod_unless_they_say_otherwise() {
        let iso = Isolation::new(Mode::PerPod { base: 5000 });
        let p = pod("u1");
        let plain = pb::Container::default();
        assert!(iso
            .container_identity(&p, &plain)
            .unwrap_err()
            .contains("not set up"));
        iso.pod_identity("u1").unwrap();
        assert_eq!(
            iso.container_identity(&p, &plain).unwrap(),
            Some(Identity {
                uid: 5000,
                gid: 5000
            })
        );
        let user = container(Some(1234), None, true);
        assert_eq!(
            iso.container_identity(&p, &user).unwrap(),
            Some(Identity {
                uid: 1234,
                gid: 5000
            })
        );
        let both = container(Some(1234), Some(77), false);
        assert_eq!(
            iso.container_identity(&p, &both).unwrap(),
            Some(Identity { uid: 1234, gid: 77 })
        );
        assert!(iso
            .container_identity(&p, &container(Some(-1), None, false))
            .unwrap_err()
            .contains("invalid runAsUser -1"));
        assert!(iso
            .container_identity(&p, &container(Some(5001), None, false))
            .unwrap_err()
            .contains("runAsUser 5001 is in this node's range of pod uids (5000-70535)"));
    }

    #[test]
    fn root_needs_kube9d_to_allow_it() {
        let iso = Isolation::new(Mode::PerPod { base: 5000 });
        iso.pod_identity("u").unwrap();
        let root = container(Some(0), None, false);
        assert_eq!(
            iso.container_identity(&pod("u"), &root).unwrap_err(),
            ROOT_REFUSED
        );
        iso.set_allow_root(true);
        assert_eq!(
            iso.container_identity(&pod("u"), &root).unwrap(),
            Some(Identity { uid: 0, gid: 5000 })
        );
        // runAsNonRoot wins over kube9d's permission.
        let contradiction = container(Some(0), None, true);
        assert!(iso
            .container_identity(&pod("u"), &contradiction)
            .unwrap_err()
            .contains("breaks non-root policy"));
    }

    #[test]
    fn an_agent_that_is_not_root_runs_pods_as_itself() {
        let me = Identity {
            uid: 1000,
            gid: 100,
        };
        let iso = Isolation::new(Mode::AgentUser(me));
        assert_eq!(
            iso.describe(),
            "pods run as this agent's user (uid 1000): the agent is not root"
        );
        assert_eq!(iso.pod_identity("x"), Some(me));
        let p = pod("u");
        assert_eq!(
            iso.container_identity(&p, &pb::Container::default()),
            Ok(None)
        );
        assert_eq!(
            iso.container_identity(&p, &container(Some(1000), Some(100), true)),
            Ok(None)
        );
        assert!(iso
            .container_identity(&p, &container(Some(1001), None, false))
            .unwrap_err()
            .contains("runAsUser 1001 cannot be applied: the agent is not root"));
        assert_eq!(
            iso.container_identity(&p, &container(Some(0), None, false)),
            Err(ROOT_REFUSED.to_string())
        );
        let per_pod = Isolation::new(Mode::PerPod { base: 200_000 });
        assert_eq!(per_pod.describe(), "pods run as uid 200000+ (one per pod)");
    }

    #[test]
    fn processes_are_found_by_uid() {
        let me = nix::unistd::getuid().as_raw();
        assert!(processes_of(me).contains(&(std::process::id() as i32)));
        assert!(!processes_of(4_000_000_000).contains(&(std::process::id() as i32)));
    }

    #[test]
    fn pod_directories_are_searchable_but_not_listable() {
        let root = std::env::temp_dir().join(format!("kube9-iso-{}", std::process::id()));
        let pods = root.join("pods");
        let pod_dir = pods.join("default").join("web");
        PodDirs::create(&pods, &pod_dir, None).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&pods), 0o711);
        assert_eq!(mode(&pods.join("default")), 0o711);
        assert_eq!(mode(&pod_dir), 0o711);
        assert_eq!(mode(&PodDirs::work(&pod_dir)), 0o700);
        // Again (a new binding): fine, and empty.
        std::fs::write(PodDirs::work(&pod_dir).join("f"), "x").unwrap();
        PodDirs::create(&pods, &pod_dir, None).unwrap();
        assert!(!PodDirs::work(&pod_dir).join("f").exists());
        std::fs::write(PodDirs::work(&pod_dir).join("f"), "x").unwrap();
        PodDirs::remove_all_work(&pods);
        assert!(!PodDirs::work(&pod_dir).exists());
        assert!(!PodDirs::work(&pod_dir).exists());
        PodDirs::remove_work(&pod_dir).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(unreachable_ancestor(&pod_dir), Some(root.clone()));
        let _ = std::fs::remove_dir_all(&root);
    }
}
