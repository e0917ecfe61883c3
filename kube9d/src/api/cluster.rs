//! `ClusterService`: what kube9ctl, grpcurl, scripts and the dashboard call.

use kube9_proto::pb::{
    self, cluster_service_server::ClusterService, control_message::Msg, NodeStatus, PodPhase,
};
use tonic::{Request, Response, Status};

use super::watch::WatchStream;
use crate::auth::{Auth, Caller};
use crate::nodeops::NodeOps;
use crate::state::{not_found, Control, Error};

/// Events returned when the request names no limit.
const DEFAULT_EVENT_LIMIT: usize = 1000;

#[derive(Clone)]
pub struct ClusterApi {
    pub(super) control: Control,
    pub(super) ops: NodeOps,
    pub(super) auth: Auth,
}

impl ClusterApi {
    pub fn new(ops: NodeOps, auth: Auth) -> Self {
        ClusterApi {
            control: ops.control().clone(),
            ops,
            auth,
        }
    }
}

/// Who made the call (put there by the auth layer).
fn caller<T>(request: &Request<T>) -> Option<Caller> {
    request.extensions().get::<Caller>().cloned()
}

/// Runs an operation to completion even if the client goes away: a runtime call abandoned
/// half-way would leave its node marked busy (and an instance nobody records).
async fn to_completion<T: Send + 'static>(
    op: impl std::future::Future<Output = Result<T, Status>> + Send + 'static,
) -> Result<T, Status> {
    tokio::spawn(op)
        .await
        .map_err(|e| Error::Internal(format!("the operation failed: {e}")))?
}

#[tonic::async_trait]
impl ClusterService for ClusterApi {
    type WatchStream = WatchStream;

    async fn create_node(
        &self,
        request: Request<pb::CreateNodeRequest>,
    ) -> Result<Response<pb::Node>, Status> {
        let this = self.clone();
        to_completion(async move { this.do_create_node(request).await }).await
    }

    async fn list_nodes(
        &self,
        _: Request<pb::ListNodesRequest>,
    ) -> Result<Response<pb::ListNodesResponse>, Status> {
        let (resource_version, mut nodes): (u64, Vec<pb::Node>) = self
            .control
            .read(|c| (c.version(), c.nodes.values().map(|e| e.view()).collect()));
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Response::new(pb::ListNodesResponse {
            nodes,
            resource_version,
        }))
    }

    async fn get_node(
        &self,
        request: Request<pb::GetNodeRequest>,
    ) -> Result<Response<pb::Node>, Status> {
        Ok(Response::new(
            self.ops.node_view(&request.into_inner().name)?,
        ))
    }

    async fn delete_node(
        &self,
        request: Request<pb::DeleteNodeRequest>,
    ) -> Result<Response<pb::Node>, Status> {
        let this = self.clone();
        to_completion(async move { this.do_delete_node(request).await }).await
    }

    async fn node_health(
        &self,
        _: Request<pb::NodeHealthRequest>,
    ) -> Result<Response<pb::NodeHealthResponse>, Status> {
        let now = tokio::time::Instant::now();
        let mut nodes: Vec<pb::NodeHealthEntry> = self.control.read(|c| {
            c.nodes
                .values()
                .map(|e| pb::NodeHealthEntry {
                    name: e.node.name.clone(),
                    status: e.node.status,
                    reason: e.node.reason.clone(),
                    heartbeat_age_ms: e
                        .last_heartbeat
                        .map(|t| now.saturating_duration_since(t).as_millis() as i64)
                        .unwrap_or(-1),
                    components: e.node.components.clone(),
                    recovery_attempts: e.node.recovery_attempts,
                })
                .collect()
        });
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Response::new(pb::NodeHealthResponse { nodes }))
    }

    async fn simulate_node_failure(
        &self,
        request: Request<pb::SimulateNodeFailureRequest>,
    ) -> Result<Response<pb::Node>, Status> {
        let this = self.clone();
        to_completion(async move { this.do_simulate_node_failure(request).await }).await
    }

    async fn recover_node(
        &self,
        request: Request<pb::RecoverNodeRequest>,
    ) -> Result<Response<pb::Node>, Status> {
        let this = self.clone();
        to_completion(async move { this.do_recover_node(request).await }).await
    }

    async fn deregister_node(
        &self,
        request: Request<pb::DeregisterNodeRequest>,
    ) -> Result<Response<pb::Node>, Status> {
        let r = request.into_inner();
        let reason = if r.reason.is_empty() {
            "deregistered through the API".to_string()
        } else {
            r.reason
        };
        let (res, commit) = self.control.mutate(|c| {
            if !c.nodes.contains_key(&r.name) {
                return Err(not_found("node", &r.name));
            }
            c.deregister(&r.name, &reason);
            c.send(
                &r.name,
                Msg::Terminate(pb::Terminate {
                    reason: reason.clone(),
                }),
            );
            Ok(())
        });
        res?;
        commit.wait().await.map_err(Error::from)?;
        Ok(Response::new(self.ops.node_view(&r.name)?))
    }

    async fn force_cleanup_node(
        &self,
        request: Request<pb::ForceCleanupNodeRequest>,
    ) -> Result<Response<pb::Node>, Status> {
        let this = self.clone();
        to_completion(async move { this.do_force_cleanup_node(request).await }).await
    }

    async fn apply(
        &self,
        request: Request<pb::ApplyRequest>,
    ) -> Result<Response<pb::ApplyResponse>, Status> {
        let this = self.clone();
        to_completion(async move { this.do_apply(request).await }).await
    }

    async fn list_pods(
        &self,
        request: Request<pb::ListPodsRequest>,
    ) -> Result<Response<pb::ListPodsResponse>, Status> {
        Ok(Response::new(self.do_list_pods(request.into_inner())?))
    }

    async fn get_pod(
        &self,
        request: Request<pb::GetPodRequest>,
    ) -> Result<Response<pb::Pod>, Status> {
        let r = request.into_inner();
        let pod = self
            .control
            .read(|c| super::lookup::pod(c, &r.namespace, &r.name))?;
        Ok(Response::new(pod))
    }

    async fn delete_pod(
        &self,
        request: Request<pb::DeletePodRequest>,
    ) -> Result<Response<pb::Pod>, Status> {
        let r = request.into_inner();
        let (res, commit) = self.control.mutate(|c| {
            // 0: the pod's own grace period, or kube9d's default.
            let grace = u64::from(r.grace_period_seconds) * 1000;
            let key = kube9_proto::namespace::key(&r.namespace, &r.name);
            if !c.pods.contains_key(&key) {
                return Err(super::lookup::pod_not_found(&r.namespace, &r.name));
            }
            c.delete_pod(&key, grace)
        });
        let pod = res?;
        commit.wait().await.map_err(Error::from)?;
        Ok(Response::new(pod))
    }

    async fn pod_health(
        &self,
        request: Request<pb::PodHealthRequest>,
    ) -> Result<Response<pb::PodHealthResponse>, Status> {
        let r = request.into_inner();
        let name = r.name.clone();
        let resp = self.control.read(|c| {
            let pod = c
                .pods
                .get(&kube9_proto::namespace::key(&r.namespace, &r.name))?;
            let node_status = c
                .nodes
                .get(&pod.node)
                .map(|n| n.status())
                .unwrap_or(NodeStatus::Unspecified);
            let phase = pod.phase();
            // Ready: every container running and every readiness probe passing, as the node
            // reports it.
            let healthy =
                phase == PodPhase::Running && node_status == NodeStatus::Healthy && pod.ready;
            let message = if healthy {
                "all containers running".to_string()
            } else if phase == PodPhase::Running && node_status == NodeStatus::Healthy {
                let waiting: Vec<&str> = pod
                    .containers
                    .iter()
                    .filter(|c| !c.ready)
                    .map(|c| c.name.as_str())
                    .collect();
                format!("not ready: {}", waiting.join(", "))
            } else if pod.node.is_empty() {
                format!("not running: {}", pod.reason)
            } else if node_status != NodeStatus::Healthy {
                format!("node {} is {}", pod.node, node_status.label())
            } else {
                format!("pod is {}", phase.label())
            };
            Some(pb::PodHealthResponse {
                name: name.clone(),
                phase: pod.phase,
                healthy,
                node: pod.node.clone(),
                node_status: node_status as i32,
                message,
                containers: pod.containers.clone(),
            })
        });
        resp.map(Response::new)
            .ok_or_else(|| super::lookup::pod_not_found(&r.namespace, &r.name).into())
    }

    async fn get_logs(
        &self,
        request: Request<pb::GetLogsRequest>,
    ) -> Result<Response<pb::GetLogsResponse>, Status> {
        Ok(Response::new(self.do_get_logs(request.into_inner()).await?))
    }

    type StreamLogsStream = super::logs::LogStream;

    async fn stream_logs(
        &self,
        request: Request<pb::GetLogsRequest>,
    ) -> Result<Response<Self::StreamLogsStream>, Status> {
        let caller = caller(&request);
        let stream = self.do_stream_logs(request.into_inner())?;
        Ok(Response::new(Box::pin(self.hold(caller.as_ref(), stream)?)))
    }

    type ExecStream = super::logs::ExecStream;

    async fn exec(
        &self,
        request: Request<pb::ExecRequest>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        let caller = caller(&request);
        let stream = self.do_exec(request.into_inner())?;
        Ok(Response::new(Box::pin(self.hold(caller.as_ref(), stream)?)))
    }

    async fn list_namespaces(
        &self,
        _request: Request<pb::ListNamespacesRequest>,
    ) -> Result<Response<pb::ListNamespacesResponse>, Status> {
        Ok(Response::new(self.do_list_namespaces()))
    }

    async fn get_namespace(
        &self,
        request: Request<pb::ObjectKey>,
    ) -> Result<Response<pb::Namespace>, Status> {
        Ok(Response::new(self.do_get_namespace(request.into_inner())?))
    }

    async fn delete_namespace(
        &self,
        request: Request<pb::ObjectKey>,
    ) -> Result<Response<pb::Namespace>, Status> {
        Ok(Response::new(
            self.do_delete_namespace(request.into_inner()).await?,
        ))
    }

    async fn list_config_maps(
        &self,
        request: Request<pb::ListObjectsRequest>,
    ) -> Result<Response<pb::ListConfigMapsResponse>, Status> {
        Ok(Response::new(
            self.do_list_config_maps(request.into_inner())?,
        ))
    }

    async fn get_config_map(
        &self,
        request: Request<pb::ObjectKey>,
    ) -> Result<Response<pb::ConfigMap>, Status> {
        Ok(Response::new(self.do_get_config_map(request.into_inner())?))
    }

    async fn delete_config_map(
        &self,
        request: Request<pb::ObjectKey>,
    ) -> Result<Response<pb::ConfigMap>, Status> {
        Ok(Response::new(
            self.do_delete_config_map(request.into_inner()).await?,
        ))
    }

    async fn list_secrets(
        &self,
        request: Request<pb::ListObjectsRequest>,
    ) -> Result<Response<pb::ListSecretsResponse>, Status> {
        let caller = caller(&request);
        let mut list = self.do_list_secrets(request.into_inner())?;
        list.secrets = (list.secrets.into_iter())
            .map(|s| super::tokens::redact(s, caller.as_ref()))
            .collect();
        Ok(Response::new(list))
    }

    async fn get_secret(
        &self,
        request: Request<pb::ObjectKey>,
    ) -> Result<Response<pb::Secret>, Status> {
        let caller = caller(&request);
        let secret = self.do_get_secret(request.into_inner())?;
        Ok(Response::new(super::tokens::redact(
            secret,
            caller.as_ref(),
        )))
    }

    async fn delete_secret(
        &self,
        request: Request<pb::ObjectKey>,
    ) -> Result<Response<pb::Secret>, Status> {
        Ok(Response::new(
            self.do_delete_secret(request.into_inner()).await?,
        ))
    }

    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let r = request.into_inner();
        let limit = if r.limit == 0 {
            DEFAULT_EVENT_LIMIT
        } else {
            r.limit as usize
        };
        let (resource_version, mut events): (u64, Vec<pb::Event>) = self.control.read(|c| {
            let events = c
                .events
                .iter()
                .rev()
                .filter(|e| {
                    r.object_kind.is_empty() || e.object_kind.eq_ignore_ascii_case(&r.object_kind)
                })
                .filter(|e| r.object_name.is_empty() || e.object_name == r.object_name)
                .filter(|e| r.namespace.is_empty() || e.namespace == r.namespace)
                .take(limit)
                .cloned()
                .collect();
            (c.version(), events)
        });
        events.reverse();
        Ok(Response::new(pb::ListEventsResponse {
            events,
            resource_version,
        }))
    }

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let caller = caller(&request);
        let stream = self.do_watch(caller.as_ref(), request.into_inner())?;
        Ok(Response::new(stream))
    }

    async fn create_token(
        &self,
        request: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        Ok(Response::new(
            self.do_create_token(request.into_inner()).await?,
        ))
    }

    async fn list_tokens(
        &self,
        _request: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        Ok(Response::new(self.do_list_tokens()))
    }

    async fn delete_token(
        &self,
        request: Request<pb::DeleteTokenRequest>,
    ) -> Result<Response<pb::TokenInfo>, Status> {
        Ok(Response::new(
            self.do_delete_token(request.into_inner()).await?,
        ))
    }

    type SnapshotStream = super::snapshot::SnapshotStream;

    async fn snapshot(
        &self,
        request: Request<pb::SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        let caller = caller(&request);
        let chunks = self.do_snapshot(caller.as_ref()).await?;
        let stream = futures::stream::iter(chunks.into_iter().map(Ok));
        Ok(Response::new(Box::pin(self.hold(caller.as_ref(), stream)?)))
    }

    async fn cordon_node(
        &self,
        request: Request<pb::CordonNodeRequest>,
    ) -> Result<Response<pb::Node>, Status> {
        self.do_cordon_node(request).await
    }

    async fn drain_node(
        &self,
        request: Request<pb::DrainNodeRequest>,
    ) -> Result<Response<pb::DrainNodeResponse>, Status> {
        self.do_drain_node(request).await
    }

    async fn set_metadata(
        &self,
        request: Request<pb::SetMetadataRequest>,
    ) -> Result<Response<pb::SetMetadataResponse>, Status> {
        self.do_set_metadata(request).await
    }

    async fn version(
        &self,
        _: Request<pb::VersionRequest>,
    ) -> Result<Response<pb::VersionResponse>, Status> {
        Ok(Response::new(self.do_version()))
    }

    async fn top(
        &self,
        request: Request<pb::TopRequest>,
    ) -> Result<Response<pb::TopResponse>, Status> {
        let ns = request.into_inner().namespace;
        Ok(Response::new(self.control.read(|c| c.top(&ns))))
    }

    async fn delete_pods(
        &self,
        request: Request<pb::DeletePodsRequest>,
    ) -> Result<Response<pb::DeletePodsResponse>, Status> {
        Ok(Response::new(
            self.do_delete_pods(request.into_inner()).await?,
        ))
    }
}
