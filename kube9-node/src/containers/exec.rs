//! `kube9ctl exec` and `kube9ctl logs -f` for pods run as processes.
//!
//! A process container has no namespace of its own to enter, so exec runs the command the way
//! the container's own process was started: same environment, same working directory, its own
//! process group. Following a log reads its file as it grows.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use kube9_proto::pb;
use tokio::sync::mpsc;

use super::isolation::Identity;
use super::logs;
use super::reaper::Reaper;
use super::spawn::{self, SpawnContext};

/// How often a followed log is checked for new bytes.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// What an exec produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

/// Runs `command` as container `container` of `pod` runs: its environment, working directory
/// (`work_dir` unless the container names one) and user (`identity`; `None`: the agent's).
pub async fn exec(
    pod: &pb::Pod,
    container: &pb::Container,
    work_dir: &Path,
    ctx: &SpawnContext,
    identity: Option<Identity>,
    command: &[String],
) -> Result<ExecOutcome, String> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| "exec needs a command".to_string())?;
    let working_dir = match container.working_dir.as_str() {
        "" => work_dir.to_path_buf(),
        dir => dir.into(),
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(spawn::environment(pod, container, ctx))
        .current_dir(working_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(id) = identity {
        spawn::run_as(&mut cmd, id);
    }
    let (exit, stdout, stderr) = Reaper::global()
        .spawn_piped(&mut cmd)
        .map_err(|e| format!("failed to start {program}: {e}"))?;
    let read_all = |pipe: Option<Box<dyn Read + Send>>| {
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut out);
            }
            out
        })
    };
    let out = read_all(stdout.map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = read_all(stderr.map(|p| Box::new(p) as Box<dyn Read + Send>));
    let (stdout, stderr) = (out.await.unwrap_or_default(), err.await.unwrap_or_default());
    let exit_code = exit.await.map(|e| e.code()).unwrap_or(-1);
    Ok(ExecOutcome {
        stdout,
        stderr,
        exit_code,
    })
}

/// Sends the last `tail_lines` lines of the log at `path` (all of it for 0), then every byte
/// written to it, across rotations and restarts (see [`logs::Follower`]), until `sink` is
/// closed.
pub async fn follow(path: &Path, tail_lines: u32, sink: mpsc::Sender<Vec<u8>>) {
    let path = path.to_path_buf();
    let started =
        tokio::task::spawn_blocking(move || logs::Follower::start(&path, tail_lines as usize));
    let Ok((mut follower, first)) = started.await else {
        return;
    };
    if !first.is_empty() && sink.send(first).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_POLL) => {}
            _ = sink.closed() => return,
        }
        let polled = tokio::task::spawn_blocking(move || {
            let bytes = follower.poll();
            (follower, bytes)
        });
        let Ok((back, bytes)) = polled.await else {
            return;
        };
        follower = back;
        if !bytes.is_empty() && sink.send(bytes).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_followed_log_sends_its_tail_then_what_is_appended() {
        let dir = std::env::temp_dir().join(format!("kube9-follow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.log");
        std::fs::write(&path, "one\ntwo\n").unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let task = tokio::spawn({
            let path = path.clone();
            async move { follow(&path, 1, tx).await }
        });
        assert_eq!(rx.recv().await.unwrap(), b"two\n");
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"three\n").unwrap();
        assert_eq!(rx.recv().await.unwrap(), b"three\n");
        drop(rx);
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("follow ends once nobody listens")
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn exec_returns_output_and_exit_code() {
        let dir = std::env::temp_dir().join(format!("kube9-exec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pod = pb::Pod {
            name: "p".into(),
            ..Default::default()
        };
        let container = pb::Container {
            env: vec![pb::EnvVar {
                name: "GREETING".into(),
                value: "hi".into(),
                value_from: None,
            }],
            ..Default::default()
        };
        let ctx = SpawnContext {
            node_name: "n1".into(),
            standin_program: "/nonexistent".into(),
            path: spawn::DEFAULT_PATH.into(),
            log_limits: logs::LogLimits::default(),
            log_warnings: Default::default(),
        };
        let cmd = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];
        let out = exec(
            &pod,
            &container,
            &dir,
            &ctx,
            None,
            &cmd("echo $GREETING; echo oops >&2; exit 3"),
        )
        .await
        .unwrap();
        assert_eq!(out.stdout, b"hi\n");
        assert_eq!(out.stderr, b"oops\n");
        assert_eq!(out.exit_code, 3);
        let missing = exec(
            &pod,
            &container,
            &dir,
            &ctx,
            None,
            &["/no/such/program".into()],
        )
        .await;
        assert!(missing
            .unwrap_err()
            .contains("failed to start /no/such/program"));
        if nix::unistd::geteuid().is_root() {
            // As the container's user, without the agent's groups.
            let id = Identity {
                uid: 310_500,
                gid: 310_501,
            };
            let script = cmd("id -u; id -G");
            let out = exec(&pod, &container, &dir, &ctx, Some(id), &script).await;
            assert_eq!(out.unwrap().stdout, b"310500\n310501\n");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
