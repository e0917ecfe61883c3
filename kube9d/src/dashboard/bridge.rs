//! `POST /api/call/{Method}` and `POST /api/apply`: the page's reads and actions, run by the
//! same `ClusterService` code as gRPC calls, after the same token check.

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use kube9_proto::manifest::{apply_request, parse_manifests_with_warnings};
use kube9_proto::pb::cluster_service_server::ClusterService;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::SocketAddr;
use tonic::{Request, Status};

use super::session::{authorize, ApiError, Session};
use super::Dashboard;
use crate::auth::Caller;

/// The gRPC path a method is authorized as.
pub fn grpc_path(method: &str) -> String {
    format!("/kube9.v1.ClusterService/{method}")
}

/// Checks `session`'s token for `method` exactly as the gRPC layer would, and returns the
/// caller to put in the request.
pub fn check(
    dashboard: &Dashboard,
    session: &Session,
    method: &str,
    peer: SocketAddr,
) -> Result<Option<Caller>, ApiError> {
    Ok(dashboard
        .inner
        .auth
        .check(&grpc_path(method), Some(&session.bearer), Some(peer))?)
}

/// A request as the service receives it, with the caller the auth layer would have set.
pub fn request<T>(message: T, caller: Option<Caller>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(caller) = caller {
        request.extensions_mut().insert(caller);
    }
    request
}

/// Runs `ClusterService::$func` for each `"$name"` the page may call, JSON in and out.
/// Methods not listed (tokens, snapshots, exec, secrets) are not reachable from the page.
macro_rules! dispatch {
    ($api:expr, $method:expr, $body:expr, $caller:expr; $($name:literal => $func:ident),* $(,)?) => {
        match $method {
            $($name => {
                let message = serde_json::from_value($body).map_err(|e| {
                    Status::invalid_argument(format!("{}: the request does not read: {e}", $name))
                })?;
                let response = $api.$func(request(message, $caller)).await?;
                serde_json::to_value(response.into_inner())
                    .map_err(|e| Status::internal(format!("the answer does not serialize: {e}")))
            })*
            other => Err(Status::not_found(format!(
                "the dashboard does not call {other:?} (kube9ctl does what it cannot)"
            ))),
        }
    };
}

async fn run(
    dashboard: &Dashboard,
    method: &str,
    body: Value,
    caller: Option<Caller>,
) -> Result<Value, Status> {
    let api = &dashboard.inner.api;
    dispatch!(api, method, body, caller;
        "ListNodes" => list_nodes,
        "GetNode" => get_node,
        "NodeHealth" => node_health,
        "CreateNode" => create_node,
        "DeleteNode" => delete_node,
        "SimulateNodeFailure" => simulate_node_failure,
        "RecoverNode" => recover_node,
        "ForceCleanupNode" => force_cleanup_node,
        "CordonNode" => cordon_node,
        "DrainNode" => drain_node,
        "ListPods" => list_pods,
        "GetPod" => get_pod,
        "DeletePod" => delete_pod,
        "DeletePods" => delete_pods,
        "PodHealth" => pod_health,
        "GetLogs" => get_logs,
        "ListEvents" => list_events,
        "ListNamespaces" => list_namespaces,
        "Version" => version,
        "Top" => top,
        "Apply" => apply,
    )
}

/// `POST /api/call/{Method}`: body and answer are the gRPC messages as JSON (field names as
/// in `kube9.proto`, enums as numbers, missing fields at their defaults).
pub async fn call(
    State(dashboard): State<Dashboard>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Result<Json<Value>, ApiError> {
    let session = authorize(&dashboard, &headers, None)?;
    let caller = check(&dashboard, &session, &method, peer)?;
    let body = body
        .map(|Json(v)| v)
        .unwrap_or(Value::Object(Default::default()));
    if !is_read(&method) {
        tracing::info!(%peer, token = %session.token_id, call = %method, "dashboard action");
    }
    Ok(Json(run(&dashboard, &method, body, caller).await?))
}

fn is_read(method: &str) -> bool {
    crate::auth::policy::access(&grpc_path(method)) == crate::auth::policy::Access::Read
}

#[derive(Deserialize)]
pub struct ApplyBody {
    yaml: String,
    #[serde(default)]
    dry_run: bool,
}

#[derive(Serialize)]
pub struct Applied {
    results: Vec<kube9_proto::pb::ApplyResult>,
    /// What `kube9ctl apply` prints as `Warning: ...`: fields Kube-9 will ignore.
    warnings: Vec<String>,
}

/// Where the editor's text is said to come from in messages, as kube9ctl names its file.
const SOURCE: &str = "editor";

/// `POST /api/apply {"yaml": "...", "dry_run": false}`: the manifest is read and validated as
/// `kube9ctl apply -f` reads it (the same messages, warnings included), then applied in one
/// `Apply` call. An invalid manifest changes nothing.
pub async fn apply(
    State(dashboard): State<Dashboard>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<ApplyBody>,
) -> Result<Json<Applied>, ApiError> {
    let session = authorize(&dashboard, &headers, None)?;
    let caller = check(&dashboard, &session, "Apply", peer)?;
    let (objects, ignored) = parse_manifests_with_warnings(&body.yaml).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            format!("{SOURCE}: {e}"),
        )
    })?;
    let warnings = ignored.iter().map(|w| format!("{SOURCE}: {w}")).collect();
    if objects.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "no objects passed to apply",
        ));
    }
    let message = apply_request(objects, body.dry_run);
    tracing::info!(%peer, token = %session.token_id, "dashboard: apply");
    let response = (dashboard.inner.api)
        .apply(request(message, caller))
        .await?
        .into_inner();
    Ok(Json(Applied {
        results: response.results,
        warnings,
    }))
}
