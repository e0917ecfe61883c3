//! Logs and exec: requests that only a pod's node can answer, relayed over its agent's stream
//! (see [`crate::relay`]). `GetLogs` takes one reply; `StreamLogs` (`logs -f`) and `Exec`
//! stream until the agent ends them or the caller goes away.

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use kube9_proto::pb::{self, control_message::Msg};
use tonic::Status;

use super::ClusterApi;
use crate::relay::{StreamReply, Subscription};
use crate::state::Error;

/// How long `GetLogs` waits for the agent.
const LOGS_TIMEOUT: Duration = Duration::from_secs(10);

pub type LogStream = Pin<Box<dyn Stream<Item = Result<pb::LogChunk, Status>> + Send>>;
pub type ExecStream = Pin<Box<dyn Stream<Item = Result<pb::ExecOutput, Status>> + Send>>;

impl ClusterApi {
    /// The node running `pod` and the container meant: `container`, or the pod's only one.
    /// Init containers can be named too.
    fn target(&self, ns: &str, pod: &str, container: &str) -> Result<(String, String), Error> {
        let pod = self.control.read(|c| super::lookup::pod(c, ns, pod))?;
        if pod.node.is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "pod {} is not on a node yet ({})",
                pod.name, pod.reason
            )));
        }
        let names: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
        let init: Vec<&str> = pod
            .init_containers
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        if container.is_empty() {
            return match names.as_slice() {
                [only] => Ok((pod.node, only.to_string())),
                _ => Err(Error::Invalid(format!(
                    "pod {} has {} containers; name one with -c: {}",
                    pod.name,
                    names.len(),
                    names.join(", ")
                ))),
            };
        }
        if !names.contains(&container) && !init.contains(&container) {
            return Err(Error::Missing(format!(
                "container \"{container}\" not found in pod {} (containers: {})",
                pod.name,
                names.join(", ")
            )));
        }
        Ok((pod.node, container.to_string()))
    }

    /// Sends `msg` to `node`'s agent, or says why it cannot be reached.
    fn send_to_agent(&self, node: &str, msg: Msg) -> Result<(), Error> {
        if self.control.read(|c| c.send_now(node, msg)) {
            Ok(())
        } else {
            Err(Error::Unavailable(format!(
                "node {node} is not connected; its logs stay on the node"
            )))
        }
    }

    pub(super) async fn do_get_logs(
        &self,
        r: pb::GetLogsRequest,
    ) -> Result<pb::GetLogsResponse, Error> {
        let (node, container) = self.target(&r.namespace, &r.pod, &r.container)?;
        let relay = self.control.relay();
        let (id, rx) = relay.expect_logs();
        let msg = Msg::FetchLogs(pb::FetchLogs {
            request_id: id,
            pod_name: r.pod.clone(),
            // Resolved here: the agent would also count init containers.
            container: container.clone(),
            tail_lines: r.tail_lines,
            previous: r.previous,
            pod_namespace: kube9_proto::namespace::or_default(&r.namespace).to_string(),
        });
        if let Err(e) = self.send_to_agent(&node, msg) {
            relay.cancel_logs(id);
            return Err(e);
        }
        let reply = match tokio::time::timeout(LOGS_TIMEOUT, rx).await {
            Ok(Ok(reply)) => reply,
            _ => {
                relay.cancel_logs(id);
                return Err(Error::DeadlineExceeded(format!(
                    "node {node} did not answer the logs request"
                )));
            }
        };
        if !reply.error.is_empty() {
            return Err(Error::Missing(reply.error));
        }
        Ok(pb::GetLogsResponse {
            content: reply.content,
            container,
        })
    }

    /// Registers a streamed request to `node` whose cancellation tells the agent to stop.
    fn subscribe(&self, node: &str) -> Subscription {
        let control = self.control.clone();
        let to = node.to_string();
        self.control.relay().subscribe(node, move |id| {
            let cancel = Msg::Cancel(pb::CancelRequest { request_id: id });
            control.read(|c| c.send_now(&to, cancel));
        })
    }

    pub(super) fn do_stream_logs(&self, r: pb::GetLogsRequest) -> Result<LogStream, Error> {
        if r.previous {
            return Err(Error::Invalid(
                "--previous cannot be followed: that container has ended".into(),
            ));
        }
        let (node, container) = self.target(&r.namespace, &r.pod, &r.container)?;
        let sub = self.subscribe(&node);
        self.send_to_agent(
            &node,
            Msg::FollowLogs(pb::FollowLogs {
                request_id: sub.id,
                pod_name: r.pod,
                container,
                tail_lines: r.tail_lines,
                pod_namespace: kube9_proto::namespace::or_default(&r.namespace).to_string(),
            }),
        )?;
        let stream = futures::stream::unfold(Some(sub), |sub| async move {
            let mut sub = sub?;
            match sub.next().await? {
                StreamReply::Log(chunk) if !chunk.error.is_empty() => {
                    Some((Err(Error::Missing(chunk.error).into()), None))
                }
                StreamReply::Log(chunk) if chunk.done && chunk.content.is_empty() => None,
                StreamReply::Log(chunk) => {
                    let next = (!chunk.done).then_some(sub);
                    let item = pb::LogChunk {
                        content: chunk.content,
                    };
                    Some((Ok(item), next))
                }
                StreamReply::Broken(why) => Some((Err(Error::Unavailable(why).into()), None)),
                StreamReply::Exec(_) => None,
            }
        });
        Ok(Box::pin(stream))
    }

    pub(super) fn do_exec(&self, r: pb::ExecRequest) -> Result<ExecStream, Error> {
        if r.command.is_empty() {
            return Err(Error::Invalid(
                "exec needs a command: kube9ctl exec POD -- COMMAND [ARGS...]".into(),
            ));
        }
        let (node, container) = self.target(&r.namespace, &r.pod, &r.container)?;
        let sub = self.subscribe(&node);
        self.send_to_agent(
            &node,
            Msg::Exec(pb::ExecCommand {
                request_id: sub.id,
                pod_name: r.pod,
                container,
                command: r.command,
                pod_namespace: kube9_proto::namespace::or_default(&r.namespace).to_string(),
            }),
        )?;
        let stream = futures::stream::unfold(Some(sub), |sub| async move {
            let mut sub = sub?;
            match sub.next().await? {
                StreamReply::Exec(out) if !out.error.is_empty() => {
                    Some((Err(Error::FailedPrecondition(out.error).into()), None))
                }
                StreamReply::Exec(out) => {
                    let next = (!out.exited).then_some(sub);
                    let item = pb::ExecOutput {
                        stdout: out.stdout,
                        stderr: out.stderr,
                        exited: out.exited,
                        exit_code: out.exit_code,
                    };
                    Some((Ok(item), next))
                }
                StreamReply::Broken(why) => Some((Err(Error::Unavailable(why).into()), None)),
                StreamReply::Log(_) => None,
            }
        });
        Ok(Box::pin(stream))
    }
}
