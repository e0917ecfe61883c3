//! `kube9ctl logs POD [-c CONTAINER] [--tail N] [-f] [-p]`: the bytes, raw, on stdout; with
//! `-f` the stream goes on until the container's node ends it or the user interrupts.

use crate::cli::LogsArgs;
use crate::commands::Context;
use crate::output::emit_bytes;
use kube9_proto::pb;

pub async fn run(ctx: &Context, args: LogsArgs) -> anyhow::Result<()> {
    let mut cluster = ctx.connect().await?;
    let container = super::container_for(&mut cluster, ctx.ns(), &args.pod, args.container).await?;
    let request = pb::GetLogsRequest {
        pod: args.pod,
        container,
        tail_lines: tail_lines(args.tail),
        previous: args.previous,
        namespace: ctx.ns().into(),
    };
    if args.follow {
        let response = cluster.client.stream_logs(request).await;
        let mut stream = cluster.check(response)?;
        while let Some(chunk) = stream.message().await.transpose() {
            let chunk = chunk.map_err(|status| cluster.error(status))?;
            emit_bytes(&chunk.content)?;
        }
        return Ok(());
    }
    let response = cluster.client.get_logs(request).await;
    let logs = cluster.check(response)?;
    emit_bytes(&logs.content)
}

/// `--tail`: absent or negative means every line (0 on the wire).
fn tail_lines(tail: Option<i64>) -> u32 {
    match tail {
        Some(n) if n > 0 => u32::try_from(n).unwrap_or(u32::MAX),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_defaults_to_everything() {
        assert_eq!(tail_lines(None), 0);
        assert_eq!(tail_lines(Some(-1)), 0);
        assert_eq!(tail_lines(Some(20)), 20);
        assert_eq!(tail_lines(Some(i64::MAX)), u32::MAX);
    }
}
