//! `kube9ctl logs POD [-c CONTAINER] [--tail N] [-f] [-p] [--prefix]`: the bytes, raw, on
//! stdout; with `-f` the stream goes on until the container's node ends it or the user
//! interrupts.
//!
//! `kube9ctl logs -l SELECTOR`: the logs of every matching pod, one after another in name
//! order, the last 10 lines of each unless `--tail` says otherwise (kubectl's default with a
//! selector); `--prefix` begins every line with `[pod/NAME/CONTAINER] `.

use crate::cli::LogsArgs;
use crate::commands::{default_container, select, Context};
use crate::error::{self, Reported};
use crate::output::emit_bytes;
use anyhow::Context as _;
use kube9_proto::pb;

/// `--tail` with a selector and no `--tail`, as kubectl.
const SELECTOR_TAIL: i64 = 10;

pub async fn run(ctx: &Context, args: LogsArgs) -> anyhow::Result<()> {
    if let Some(selector) = args.selector.clone() {
        return run_selected(ctx, &args, &selector).await;
    }
    let pod = args.pod.clone().expect("clap requires a pod or -l");
    let mut cluster = ctx.connect().await?;
    let container =
        super::container_for(&mut cluster, ctx.ns(), &pod, args.container.clone()).await?;
    let mut prefix = if args.prefix {
        let name = if container.is_empty() {
            single_container(&mut cluster, ctx.ns(), &pod).await?
        } else {
            container.clone()
        };
        Some(Prefixer::new(&pod, &name))
    } else {
        None
    };
    let request = pb::GetLogsRequest {
        pod,
        container,
        tail_lines: tail_lines(args.tail),
        previous: args.previous,
        namespace: ctx.ns().into(),
    };
    let mut write = |bytes: &[u8]| match prefix.as_mut() {
        Some(p) => emit_bytes(&p.apply(bytes)),
        None => emit_bytes(bytes),
    };
    if args.follow {
        let response = cluster.client.stream_logs(request).await;
        let mut stream = cluster.check(response)?;
        while let Some(chunk) = stream.message().await.transpose() {
            let chunk = chunk.map_err(|status| cluster.error(status))?;
            write(&chunk.content)?;
        }
        return Ok(());
    }
    let response = cluster.client.get_logs(request).await;
    let logs = cluster.check(response)?;
    write(&logs.content)
}

/// The name of the only container of a pod (for `--prefix`).
async fn single_container(
    cluster: &mut crate::client::Client,
    ns: &str,
    pod: &str,
) -> anyhow::Result<String> {
    let request = pb::GetPodRequest {
        name: pod.into(),
        namespace: ns.into(),
    };
    let response = cluster.client.get_pod(request).await;
    let pod = cluster.check(response)?;
    Ok(pod
        .containers
        .first()
        .map(|c| c.name.clone())
        .unwrap_or_default())
}

/// `logs -l`: each matching pod's logs in turn; a pod whose logs cannot be had is reported and
/// the others still printed (exit 1).
async fn run_selected(ctx: &Context, args: &LogsArgs, selector: &str) -> anyhow::Result<()> {
    if args.follow {
        anyhow::bail!("-f cannot be used with -l yet: follow one pod at a time");
    }
    let labels = kube9_proto::selector::parse(selector).context("-l/--selector")?;
    let mut cluster = ctx.connect().await?;
    let mut pods = select::list_pods(&mut cluster, ctx.ns(), "", &labels, "", 500).await?;
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    if pods.is_empty() {
        eprintln!("No resources found in {} namespace.", ctx.ns());
        return Ok(());
    }
    let tail = tail_lines(Some(args.tail.unwrap_or(SELECTOR_TAIL)));
    let mut failed = false;
    for pod in pods {
        let container = match &args.container {
            Some(c) => c.clone(),
            None => default_container(&pod).0,
        };
        let shown = if container.is_empty() {
            pod.containers
                .first()
                .map(|c| c.name.clone())
                .unwrap_or_default()
        } else {
            container.clone()
        };
        let request = pb::GetLogsRequest {
            pod: pod.name.clone(),
            container,
            tail_lines: tail,
            previous: args.previous,
            namespace: ctx.ns().into(),
        };
        let response = cluster.client.get_logs(request).await;
        match cluster.check(response) {
            Ok(logs) if args.prefix => {
                emit_bytes(&Prefixer::new(&pod.name, &shown).apply(&logs.content))?
            }
            Ok(logs) => emit_bytes(&logs.content)?,
            Err(e) => {
                error::report(&e);
                failed = true;
            }
        }
    }
    if failed {
        return Err(Reported.into());
    }
    Ok(())
}

/// Begins every line with `[pod/NAME/CONTAINER] `, across chunks that split lines.
struct Prefixer {
    prefix: Vec<u8>,
    at_line_start: bool,
}

impl Prefixer {
    fn new(pod: &str, container: &str) -> Self {
        Prefixer {
            prefix: format!("[pod/{pod}/{container}] ").into_bytes(),
            at_line_start: true,
        }
    }

    fn apply(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len() + self.prefix.len());
        for &b in bytes {
            if self.at_line_start {
                out.extend_from_slice(&self.prefix);
            }
            out.push(b);
            self.at_line_start = b == b'\n';
        }
        out
    }
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

    #[test]
    fn prefixes_begin_every_line_across_chunks() {
        let mut p = Prefixer::new("web", "main");
        let mut out = p.apply(b"one\ntw");
        out.extend(p.apply(b"o\nthree\n"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[pod/web/main] one\n[pod/web/main] two\n[pod/web/main] three\n"
        );
        assert!(p.apply(b"").is_empty());
    }
}
