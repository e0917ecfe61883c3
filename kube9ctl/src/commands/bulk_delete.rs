//! Pods deleted many at a time: `delete pod a b c`, `delete pods -l app=web`,
//! `delete pods --field-selector status.phase=Failed`, `delete pods --all`, and the pods of
//! `get -o name | xargs delete`. One `DeletePods` request per [`BATCH`] names (or one per
//! selector); kube9d waits for them on its watch and answers one result per pod, each printed
//! as kubectl would (`pod "x" deleted`, or the error), the others still deleted.
//!
//! When kube9d cannot be reached the request is sent again for up to [`RECONNECT_FOR`]; for
//! names a NotFound on such a retry means the earlier try got through. A selector sent again
//! selects what is left, so pods the earlier try removed are not listed: kube9ctl says so.

use crate::cli::{DeleteArgs, Format, Kind};
use crate::client::Client;
use crate::commands::Context;
use crate::error::{self, ConnectError, ServerError};
use crate::output::emit;
use kube9_proto::pb;
use std::time::Duration;
use tokio::time::{sleep, Instant};

/// How long one object's delete keeps reconnecting to an unreachable kube9d.
pub const RECONNECT_FOR: Duration = Duration::from_secs(30);

/// `pod "web" deleted`, or `pod/web` with `-o name`.
pub fn deleted_line(kind: Kind, name: &str, format: Format) -> String {
    match format {
        Format::Name => format!("{kind}/{name}\n"),
        _ => format!("{kind} {name:?} deleted\n"),
    }
}

/// Names per request: requests and answers stay far below gRPC's 4 MiB.
pub const BATCH: usize = 2000;

/// The pause between reconnect attempts.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// Which pods one request deletes.
pub enum Which {
    Names(Vec<String>),
    Selected {
        labels: String,
        fields: String,
        all: bool,
    },
}

/// Deletes the pods of `namespace` that `which` names, printing a line per pod. Returns
/// whether any failed (already reported); `Err` only when the request itself failed.
pub async fn delete_pods(
    ctx: &Context,
    cluster: &mut Client,
    namespace: &str,
    which: Which,
    args: &DeleteArgs,
) -> anyhow::Result<bool> {
    let by_name = matches!(which, Which::Names(_));
    let base = pb::DeletePodsRequest {
        namespace: namespace.to_string(),
        grace_period_seconds: args.grace_period.unwrap_or(0),
        wait: args.wait,
        timeout_ms: u32::try_from(args.timeout.as_millis()).unwrap_or(u32::MAX),
        ..Default::default()
    };
    let requests: Vec<pb::DeletePodsRequest> = match which {
        Which::Names(names) => names
            .chunks(BATCH)
            .map(|names| pb::DeletePodsRequest {
                names: names.to_vec(),
                ..base.clone()
            })
            .collect(),
        Which::Selected {
            labels,
            fields,
            all,
        } => vec![pb::DeletePodsRequest {
            label_selector: labels,
            field_selector: fields,
            all,
            ..base
        }],
    };
    let mut failed = false;
    let mut any = false;
    for request in requests {
        let (results, retried) = send_retrying(ctx, cluster, &request).await?;
        any |= !results.is_empty();
        for r in results {
            let code = tonic::Code::from_i32(r.code);
            let not_found = code == tonic::Code::NotFound;
            if code == tonic::Code::Ok || (not_found && retried && by_name) {
                emit(&deleted_line(Kind::Pod, &r.name, ctx.format()))?;
            } else if not_found && args.ignore_not_found {
                continue;
            } else {
                error::report(
                    &ServerError {
                        code,
                        message: r.message,
                    }
                    .into(),
                );
                failed = true;
            }
        }
    }
    if !by_name && !any {
        eprintln!("No resources found");
    }
    Ok(failed)
}

/// One `DeletePods`, sent again while kube9d is unreachable; the results and whether it was
/// sent again.
async fn send_retrying(
    ctx: &Context,
    cluster: &mut Client,
    request: &pb::DeletePodsRequest,
) -> anyhow::Result<(Vec<pb::DeletePodResult>, bool)> {
    let deadline = Instant::now() + RECONNECT_FOR;
    let mut retried = false;
    loop {
        let response = cluster.client.delete_pods(request.clone()).await;
        match cluster.check(response) {
            Ok(answer) => return Ok((answer.results, retried)),
            Err(e) if e.downcast_ref::<ConnectError>().is_some() && Instant::now() < deadline => {
                if !retried {
                    let what = if request.names.is_empty() {
                        "the selected pods".to_string()
                    } else {
                        format!("{} pod(s)", request.names.len())
                    };
                    eprintln!(
                        "kube9d is unreachable; retrying the deletion of {what} for up to {}s",
                        RECONNECT_FOR.as_secs()
                    );
                    if request.names.is_empty() {
                        eprintln!(
                            "(pods an earlier try already removed no longer match and are not listed)"
                        );
                    }
                }
                retried = true;
                sleep(RECONNECT_PAUSE).await;
                if let Ok(fresh) = ctx.connect().await {
                    *cluster = fresh;
                }
            }
            Err(e) => return Err(e),
        }
    }
}
