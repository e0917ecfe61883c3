//! `kube9ctl exec POD [-c CONTAINER] -- COMMAND [ARGS...]`: runs a command in a container
//! through its node and kube9d; its stdout and stderr go to ours, and kube9ctl exits with its
//! exit code (as `kubectl exec` does).

use std::io::Write;

use crate::cli::ExecArgs;
use crate::commands::Context;
use crate::error::ExitStatus;
use crate::output::emit_bytes;
use anyhow::Context as _;
use kube9_proto::pb;

pub async fn run(ctx: &Context, args: ExecArgs) -> anyhow::Result<()> {
    let mut cluster = ctx.connect().await?;
    let container = super::container_for(&mut cluster, ctx.ns(), &args.pod, args.container).await?;
    let request = pb::ExecRequest {
        pod: args.pod,
        container,
        command: args.command,
        namespace: ctx.ns().into(),
    };
    let response = cluster.client.exec(request).await;
    let mut stream = cluster.check(response)?;
    while let Some(out) = stream.message().await.transpose() {
        let out = out.map_err(|status| cluster.error(status))?;
        emit_bytes(&out.stdout)?;
        if !out.stderr.is_empty() {
            let mut err = std::io::stderr().lock();
            err.write_all(&out.stderr)
                .and_then(|()| err.flush())
                .context("failed to write to stderr")?;
        }
        if out.exited {
            return match out.exit_code {
                0 => Ok(()),
                code => Err(ExitStatus(code).into()),
            };
        }
    }
    anyhow::bail!("the node ended the exec stream before the command exited")
}
