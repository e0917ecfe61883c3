//! `AgentService.Attach`: the one bidirectional stream each node agent keeps open.
//!
//! The first message must be `Register`. After that the agent's heartbeats, pod statuses and
//! log replies flow up, and commands queued by the state (`RunPod`, `DeletePod`, ...) flow down.

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube9_proto::pb::{self, agent_message::Msg, agent_service_server::AgentService};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::relay::StreamReply;
use crate::state::{AgentConn, Control, Error};

/// How long a new stream may take to send `Register`.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);

pub struct AgentApi {
    control: Control,
}

impl AgentApi {
    pub fn new(control: Control) -> Self {
        AgentApi { control }
    }
}

type ControlStream = Pin<Box<dyn Stream<Item = Result<pb::ControlMessage, Status>> + Send>>;

#[tonic::async_trait]
impl AgentService for AgentApi {
    type AttachStream = ControlStream;

    async fn attach(
        &self,
        request: Request<Streaming<pb::AgentMessage>>,
    ) -> Result<Response<ControlStream>, Status> {
        let address = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(REGISTER_TIMEOUT, inbound.next())
            .await
            .map_err(|_| Error::DeadlineExceeded("no Register message within 10s".into()))?;
        let reg = match first {
            Some(Ok(pb::AgentMessage {
                msg: Some(Msg::Register(reg)),
            })) => reg,
            Some(Ok(_)) => {
                return Err(Error::Invalid(
                    "the first message on the stream must be Register".into(),
                )
                .into())
            }
            Some(Err(status)) => return Err(status),
            None => return Err(Error::Cancelled("stream closed before Register".into()).into()),
        };
        if reg.cluster_id != self.control.cluster_id() {
            return Err(Error::PermissionDenied(format!(
                "agent belongs to cluster \"{}\", this is \"{}\" (set the agent's --cluster-id)",
                reg.cluster_id,
                self.control.cluster_id()
            ))
            .into());
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let conn_id = self.control.next_conn_id();
        let node = reg.node_name.clone();
        let conn = AgentConn {
            id: conn_id,
            instance: reg.instance_id.clone(),
            tx: tx.clone(),
            address,
        };
        let (result, commit) = self.control.mutate(|c| c.attach(&reg, conn));
        drop(commit);
        if let Err(e) = result {
            // The queued goodbye (Terminate) still reaches the agent before the error.
            tracing::info!(node = %node, error = %e, "agent refused");
            let status: Status = e.into();
            drop(tx);
            let goodbye = UnboundedReceiverStream::new(rx)
                .map(Ok)
                .chain(futures::stream::once(async move { Err(status) }));
            return Ok(Response::new(Box::pin(goodbye)));
        }
        let control = self.control.clone();
        tokio::spawn(async move {
            read_agent(control.clone(), &node, conn_id, inbound).await;
            control.mutate_detached(|c| c.detach(&node, conn_id));
            control
                .relay()
                .break_node(&node, &format!("node {node} disconnected"));
        });
        drop(tx);
        Ok(Response::new(Box::pin(
            UnboundedReceiverStream::new(rx).map(Ok),
        )))
    }
}

/// Applies everything the agent sends until its stream ends.
async fn read_agent(
    control: Control,
    node: &str,
    conn_id: u64,
    mut inbound: Streaming<pb::AgentMessage>,
) {
    while let Some(item) = inbound.next().await {
        let msg = match item {
            Ok(pb::AgentMessage { msg: Some(msg) }) => msg,
            Ok(_) => continue,
            Err(status) => {
                tracing::debug!(node, error = %status, "agent stream error");
                break;
            }
        };
        // A replaced or refused connection must not change anything any more.
        let current = control.read(|c| {
            c.nodes
                .get(node)
                .and_then(|n| n.agent.as_ref())
                .map(|a| a.id)
                == Some(conn_id)
        });
        if !current {
            break;
        }
        match msg {
            Msg::Heartbeat(hb) => control.mutate_detached(|c| c.heartbeat(node, conn_id, hb)),
            Msg::PodStatus(status) => control.mutate_detached(|c| c.apply_pod_status(node, status)),
            Msg::Logs(reply) => control.relay().deliver_logs(reply),
            Msg::LogChunk(chunk) => control
                .relay()
                .deliver(chunk.request_id, StreamReply::Log(chunk)),
            Msg::Exec(out) => control
                .relay()
                .deliver(out.request_id, StreamReply::Exec(out)),
            Msg::Deregister(d) => {
                tracing::info!(node, reason = %d.reason, "agent deregistered");
                let (_, commit) = control.mutate(|c| c.deregister(node, &d.reason));
                let _ = commit.wait().await;
            }
            Msg::Register(_) => tracing::warn!(node, "ignoring a second Register on one stream"),
        }
    }
}
