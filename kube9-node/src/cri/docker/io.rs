//! A container's output (logs) and commands run in it (exec).

use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters::LogsOptionsBuilder;
use bollard::Docker;
use futures::StreamExt;

use super::errors::{engine, on};
use crate::cri::types::{ContainerId, ExecOutput, LogStream};
use crate::cri::Result;

/// How long an exec's exit code may lag behind the end of its output.
const EXIT_CODE_DEADLINE: Duration = Duration::from_secs(2);

/// The container's stdout and stderr as written (see
/// [`crate::cri::ContainerRuntime::container_logs`]).
pub(super) fn logs(
    docker: &Docker,
    id: &ContainerId,
    tail: Option<u32>,
    follow: bool,
) -> LogStream {
    let tail = tail.map_or_else(|| "all".to_string(), |n| n.to_string());
    let options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .follow(follow)
        .tail(&tail)
        .build();
    let action = format!("read the logs of container {id}");
    docker
        .logs(id.as_str(), Some(options))
        .map(move |item| match item {
            Ok(output) => Ok(output.into_bytes().to_vec()),
            Err(e) => Err(engine(action.clone())(e)),
        })
        .boxed()
}

/// Runs `command` in the container, collects its output and waits for its exit code.
pub(super) async fn exec(
    docker: &Docker,
    id: &ContainerId,
    command: &[String],
) -> Result<ExecOutput> {
    let action = || format!("exec {command:?} in container {id}");
    let options = CreateExecOptions {
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        cmd: Some(command.to_vec()),
        ..Default::default()
    };
    let created = (docker.create_exec(id.as_str(), options).await).map_err(on(
        "container",
        id.as_str(),
        action(),
    ))?;
    let started = (docker.start_exec(&created.id, None).await).map_err(engine(action()))?;
    let mut out = ExecOutput::default();
    if let StartExecResults::Attached { mut output, .. } = started {
        while let Some(item) = output.next().await {
            match item.map_err(engine(action()))? {
                LogOutput::StdErr { message } => out.stderr.extend_from_slice(&message),
                other => out.stdout.extend_from_slice(&other.into_bytes()),
            }
        }
    }
    // The output ends when the process closes it, which can be a moment before the engine
    // records the exit.
    let deadline = tokio::time::Instant::now() + EXIT_CODE_DEADLINE;
    loop {
        let inspected = (docker.inspect_exec(&created.id).await).map_err(engine(action()))?;
        if inspected.running != Some(true) || tokio::time::Instant::now() >= deadline {
            out.exit_code = inspected.exit_code.unwrap_or(-1) as i32;
            return Ok(out);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
