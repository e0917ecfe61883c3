//! Turning a container spec into a running process.
//!
//! A container is a plain process in its own process group (so stopping it signals everything
//! it started), with stdout and stderr one pipe the agent copies into
//! `<state-dir>/pods/<pod>/<container>.log` (mode 0600, capped and rotated, see
//! [`super::logwriter`]), stdin null, a clean environment and the pod's `work/` directory as
//! working directory, as the user [`super::isolation`] chose (std's `Command::uid`/`gid`,
//! which also clear the supplementary groups). A container without a command runs the
//! agent's stand-in (`<agent> standin --image IMAGE -- ARGS`).

use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use kube9_proto::pb;
use nix::unistd::Pid;
use tokio::sync::oneshot;

use super::isolation::Identity;
use super::logs::LogLimits;
use super::logwriter::{self, LogOwner, LogWarnings, RotatingLog};
use super::reaper::{Exit, Reaper};

/// Used for children when the agent itself has no PATH (the node image has busybox in /bin).
pub const DEFAULT_PATH: &str = "/bin:/usr/bin:/sbin:/usr/sbin";

/// What a container spawn needs to know besides the container itself.
#[derive(Debug, Clone)]
pub struct SpawnContext {
    /// Node name, exported as KUBE9_NODE_NAME.
    pub node_name: String,
    /// The program that implements `standin`.
    pub standin_program: PathBuf,
    /// PATH for containers that do not set one.
    pub path: String,
    /// When container logs are rotated.
    pub log_limits: LogLimits,
    /// Pods whose log could not be written, warned about once a minute.
    pub log_warnings: Arc<LogWarnings>,
}

/// A started container process.
#[derive(Debug)]
pub struct Started {
    /// Process id, also the process group id.
    pub pid: Pid,
    /// Resolves when the reaper collects the process.
    pub exit: oneshot::Receiver<Exit>,
    /// Resolves when everything written to the container's stdout and stderr is in its log
    /// (every process holding the pipe has closed it).
    pub log_drained: oneshot::Receiver<()>,
}

/// Why a container did not start: reported as a terminated container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnFailure {
    /// 127 when the program was not found, 126 otherwise (the shell convention).
    pub exit_code: i32,
    /// What went wrong, for the container status and the log file.
    pub message: String,
}

/// The program and argument vector of a container.
pub fn command_line(container: &pb::Container, standin_program: &Path) -> (PathBuf, Vec<String>) {
    match container.command.split_first() {
        Some((program, rest)) => {
            let args = rest.iter().chain(&container.args).cloned().collect();
            (PathBuf::from(program), args)
        }
        None => {
            let mut args = vec![
                "standin".to_string(),
                "--image".into(),
                container.image.clone(),
            ];
            if !container.args.is_empty() {
                args.push("--".into());
                args.extend(container.args.iter().cloned());
            }
            (standin_program.to_path_buf(), args)
        }
    }
}

/// The environment of a container: the agent's defaults, then the pod's `env` config items,
/// then the container's own variables (the most specific wins).
pub fn environment(
    pod: &pb::Pod,
    container: &pb::Container,
    ctx: &SpawnContext,
) -> Vec<(String, String)> {
    // What an engine gives every container (a PATH, the hostname) comes first.
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), ctx.path.clone()),
        ("HOSTNAME".into(), pod.name.clone()),
    ];
    env.extend(crate::kubelet::env::pod_env(pod, container, &ctx.node_name));
    env
}

/// Starts one container of `pod`, logging to `log_path`, in `work_dir` unless the container
/// names a working directory, as `identity` (`None`: the agent's own user).
pub fn spawn(
    pod: &pb::Pod,
    container: &pb::Container,
    work_dir: &Path,
    log_path: &Path,
    ctx: &SpawnContext,
    identity: Option<Identity>,
) -> Result<Started, SpawnFailure> {
    let failed = |message: String| SpawnFailure {
        exit_code: 126,
        message,
    };
    let owner = LogOwner {
        pod: pod.key(),
        container: container.name.clone(),
        warnings: ctx.log_warnings.clone(),
    };
    // A log that cannot be opened (a full disk) costs the output, not the container.
    let mut log = RotatingLog::new(log_path, ctx.log_limits);
    if let Err(error) = log.ensure_open() {
        owner.warn(&error, 0);
    }
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|error| failed(format!("failed to create the output pipe: {error}")))?;
    let result = build(pod, container, work_dir, File::from(write), ctx)
        .map(|mut command| {
            if let Some(id) = identity {
                run_as(&mut command, id);
            }
            command
        })
        // The command goes after the spawn, and with it the agent's copies of the pipe's
        // write end: the log writer sees the output end when the container's processes do.
        .and_then(|mut command| Reaper::global().spawn(&mut command));
    let (pid, exit) = match result {
        Ok(started) => started,
        Err(error) => {
            let failure = spawn_failure(container, work_dir, ctx, identity, error);
            // The log is where people look first; best effort, the status has it too.
            let _ = log.write(format!("kube9: {}\n", failure.message).as_bytes());
            return Err(failure);
        }
    };
    match logwriter::start(File::from(read), log, owner) {
        Ok(log_drained) => Ok(Started {
            pid,
            exit,
            log_drained,
        }),
        Err(error) => {
            // Nothing would read what it writes: it does not run at all.
            let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
            Err(failed(format!("failed to start the log writer: {error}")))
        }
    }
}

/// Why `container` did not start, in words that help.
fn spawn_failure(
    container: &pb::Container,
    work_dir: &Path,
    ctx: &SpawnContext,
    identity: Option<Identity>,
    error: io::Error,
) -> SpawnFailure {
    let (program, _) = command_line(container, &ctx.standin_program);
    let mut message = format!("failed to start {}: {error}", program.display());
    if let (io::ErrorKind::PermissionDenied, Some(id)) = (error.kind(), identity) {
        if let Some(closed) = super::isolation::unreachable_ancestor(work_dir) {
            message.push_str(&format!(
                ": the pod's user (uid {}) cannot reach its working directory, because {} is not passable by others; make it so (chmod o+x) or move kube9d's --data-dir (the agent's --state-dir) elsewhere",
                id.uid,
                closed.display()
            ));
        }
    }
    SpawnFailure {
        exit_code: if error.kind() == io::ErrorKind::NotFound {
            127
        } else {
            126
        },
        message,
    }
}

/// Runs `command` as `id`. std does it in the child, in this order: `setgid`, `setgroups(0,
/// NULL)` (no `groups` given: the agent's supplementary groups are dropped), `setuid`, then
/// `chdir` and exec; see [`super::isolation`].
pub fn run_as(command: &mut Command, id: Identity) {
    command.uid(id.uid).gid(id.gid);
}

fn build(
    pod: &pb::Pod,
    container: &pb::Container,
    work_dir: &Path,
    output: File,
    ctx: &SpawnContext,
) -> io::Result<Command> {
    let (program, args) = command_line(container, &ctx.standin_program);
    let working_dir = match container.working_dir.as_str() {
        "" => work_dir.to_path_buf(),
        dir => PathBuf::from(dir),
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(environment(pod, container, ctx))
        .current_dir(working_dir)
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output)
        .process_group(0);
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> SpawnContext {
        SpawnContext {
            node_name: "n1".into(),
            standin_program: PathBuf::from("/agent"),
            path: DEFAULT_PATH.into(),
            log_limits: LogLimits::default(),
            log_warnings: Arc::default(),
        }
    }

    #[test]
    fn command_and_args_are_concatenated() {
        let container = pb::Container {
            command: vec!["sh".into(), "-c".into()],
            args: vec!["echo hi".into()],
            ..Default::default()
        };
        let (program, args) = command_line(&container, Path::new("/agent"));
        assert_eq!(program, PathBuf::from("sh"));
        assert_eq!(args, ["-c", "echo hi"]);
    }

    #[test]
    fn a_container_without_command_runs_the_standin() {
        let container = pb::Container {
            image: "nginx".into(),
            args: vec!["-g".into()],
            ..Default::default()
        };
        let (program, args) = command_line(&container, Path::new("/agent"));
        assert_eq!(program, PathBuf::from("/agent"));
        assert_eq!(args, ["standin", "--image", "nginx", "--", "-g"]);
    }

    #[test]
    fn container_env_overrides_config_items_which_override_defaults() {
        let pod = pb::Pod {
            name: "web".into(),
            config_items: vec![
                pb::ConfigItem {
                    name: "A".into(),
                    kind: "env".into(),
                    value: "item".into(),
                },
                pb::ConfigItem {
                    name: "S".into(),
                    kind: "secret".into(),
                    value: "x".into(),
                },
            ],
            ..Default::default()
        };
        let container = pb::Container {
            env: vec![pb::EnvVar {
                name: "PATH".into(),
                value: "/opt".into(),
                value_from: None,
            }],
            ..Default::default()
        };
        let env = environment(&pod, &container, &ctx());
        let last = |name: &str| {
            env.iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(last("PATH").as_deref(), Some("/opt"));
        assert_eq!(last("A").as_deref(), Some("item"));
        assert_eq!(last("S"), None);
        assert_eq!(last("HOSTNAME").as_deref(), Some("web"));
        assert_eq!(last("KUBE9_NODE_NAME").as_deref(), Some("n1"));
    }
}
