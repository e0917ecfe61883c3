//! `kube9ctl logs POD [-c CONTAINER] [--tail N] [-f] [-p] [--prefix]`: the bytes, raw, on
//! stdout; with `-f` the stream goes on until the container's node ends it or the user
//! interrupts.
//!
//! `kube9ctl logs -l SELECTOR`: the logs of every matching pod, one after another in name
//! order, the last 10 lines of each unless `--tail` says otherwise (kubectl's default with a
//! selector); `--prefix` begins every line with `[pod/NAME/CONTAINER] `. With `-f`, every
//! matching pod is followed at once (at most `--max-log-requests`, 5 by default, as kubectl)
//! and their whole lines are interleaved as they come.

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
    let labels = kube9_proto::selector::parse(selector).context("-l/--selector")?;
    let mut cluster = ctx.connect().await?;
    let mut pods = select::list_pods(&mut cluster, ctx.ns(), "", &labels, "", 500).await?;
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    if pods.is_empty() {
        eprintln!("No resources found in {} namespace.", ctx.ns());
        return Ok(());
    }
    if args.follow && pods.len() > args.max_log_requests {
        anyhow::bail!(
            "you are attempting to follow {} log streams, but maximum allowed concurrency is {}, use --max-log-requests to increase the limit",
            pods.len(),
            args.max_log_requests
        );
    }
    let tail = tail_lines(Some(args.tail.unwrap_or(SELECTOR_TAIL)));
    let mut failed = false;
    let mut followed = Vec::new();
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
        if args.follow {
            let prefix = args.prefix.then(|| Prefixer::new(&pod.name, &shown));
            followed.push((request, prefix));
            continue;
        }
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
    if args.follow {
        failed |= follow_all(&cluster, followed).await?;
    }
    if failed {
        return Err(Reported.into());
    }
    Ok(())
}

/// Follows each pod's logs at once and prints whole lines as they come (a pod's last partial
/// line once its stream ends), until every stream has ended. Returns whether one failed (it
/// was reported; the others go on).
async fn follow_all(
    cluster: &crate::client::Client,
    followed: Vec<(pb::GetLogsRequest, Option<Prefixer>)>,
) -> anyhow::Result<bool> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, anyhow::Error>>(64);
    for (request, mut prefix) in followed {
        let (mut client, tx) = (cluster.client.clone(), tx.clone());
        // kube9d's messages name the pod.
        let error = |status: tonic::Status| anyhow::anyhow!("{}", status.message());
        tokio::spawn(async move {
            let mut lines = Lines::default();
            let mut stream = match client.stream_logs(request).await {
                Ok(response) => response.into_inner(),
                Err(status) => {
                    let _ = tx.send(Err(error(status))).await;
                    return;
                }
            };
            loop {
                match stream.message().await {
                    Ok(Some(chunk)) => {
                        let whole = lines.push(&chunk.content);
                        if whole.is_empty() {
                            continue;
                        }
                        let whole = Prefixer::maybe(&mut prefix, whole);
                        if tx.send(Ok(whole)).await.is_err() {
                            return; // kube9ctl is ending.
                        }
                    }
                    Ok(None) => break,
                    Err(status) => {
                        let _ = tx.send(Err(error(status))).await;
                        break;
                    }
                }
            }
            let rest = lines.rest();
            if !rest.is_empty() {
                let _ = tx.send(Ok(Prefixer::maybe(&mut prefix, rest))).await;
            }
        });
    }
    drop(tx);
    let mut failed = false;
    while let Some(out) = rx.recv().await {
        match out {
            Ok(bytes) => emit_bytes(&bytes)?,
            Err(e) => {
                error::report(&e);
                failed = true;
            }
        }
    }
    Ok(failed)
}

/// Cuts a stream of chunks into whole lines, so that lines of pods followed together do not
/// mix.
#[derive(Default)]
struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    /// The whole lines `chunk` completes (with their newlines); the rest waits for more.
    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.partial.extend_from_slice(chunk);
        match self.partial.iter().rposition(|b| *b == b'\n') {
            Some(end) => {
                let rest = self.partial.split_off(end + 1);
                std::mem::replace(&mut self.partial, rest)
            }
            None => Vec::new(),
        }
    }

    /// What is left once the stream has ended.
    fn rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.partial)
    }
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

    /// `bytes` through `prefixer`, if there is one.
    fn maybe(prefixer: &mut Option<Prefixer>, bytes: Vec<u8>) -> Vec<u8> {
        match prefixer {
            Some(p) => p.apply(&bytes),
            None => bytes,
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
    fn followed_streams_are_cut_into_whole_lines() {
        let mut lines = Lines::default();
        assert_eq!(lines.push(b"one\ntw"), b"one\n");
        assert!(lines.push(b"o").is_empty());
        assert_eq!(lines.push(b"o\nthree\nfo"), b"twoo\nthree\n");
        assert_eq!(lines.rest(), b"fo");
        assert!(lines.rest().is_empty());
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
