//! Start-up and serving: open the store, choose the runtime, reconcile what the runtime runs
//! with what the store remembers, start the control loops and serve gRPC until shutdown.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use futures::StreamExt;
use kube9_proto::pb::{
    self, agent_service_server::AgentServiceServer, cluster_service_server::ClusterServiceServer,
};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Identity, ServerTlsConfig};

use crate::api::{AgentApi, ClusterApi};
use crate::auth::pki::{self, Pki};
use crate::auth::{bootstrap, Auth, AuthLayer, AuthSettings};
use crate::config::{Config, RuntimeChoice};
use crate::dashboard::{self, Dashboard};
use crate::nodeops::NodeOps;
use crate::runtime::docker::{docker_available, DockerConfig, DockerRuntime};
use crate::runtime::process::{ProcessConfig, ProcessRuntime};
use crate::runtime::{NodeAuth, NodeRuntime, RuntimeKind};
use crate::shutdown::Shutdown;
use crate::state::Control;
use crate::store::Store;

/// Cluster id used when none was given or stored.
pub const DEFAULT_CLUSTER_ID: &str = "kube9";
/// Extra time agents get to reattach after kube9d starts: their reconnect backoff is capped
/// at 2 s, plus a margin.
const STARTUP_GRACE: Duration = Duration::from_secs(3);
/// HTTP/2 streams (calls) one connection may open at once.
const MAX_STREAMS_PER_CONNECTION: u32 = 1024;
/// How long in-flight requests get to finish after shutdown was requested.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs kube9d on a bound listener until `shutdown` fires.
pub async fn run(
    config: Config,
    listener: TcpListener,
    mut shutdown: Shutdown,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "failed to create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let key_file =
        (config.secret_key_file.clone()).unwrap_or_else(|| config.data_dir.join("secret.key"));
    let store = Store::open_with_key(&config.data_dir, &key_file)?;
    let cluster_id = resolve_cluster_id(&store, config.cluster_id.as_deref()).await?;
    let listen_ip = listener.local_addr()?.ip();
    let mut pki = match config.insecure {
        true => None,
        false => Some(Pki::load_or_create(
            &config.data_dir,
            &pki::serving_names(listen_ip, &[], &config.tls_san),
        )?),
    };
    let auth = Auth::load(
        store.clone(),
        AuthSettings {
            max_streams_per_client: config.max_streams_per_client,
            insecure: config.insecure,
            ca_hash: pki.as_ref().map(|p| p.ca_hash.clone()).unwrap_or_default(),
        },
    )?;
    let join_token = bootstrap::join_token(&auth, &config.data_dir).await?;
    let node_auth = NodeAuth {
        token: join_token.to_string(),
        token_file: Some(bootstrap::join_token_file(&config.data_dir)),
        ca_hash: auth.ca_hash().to_string(),
        ca_file: pki.as_ref().map(|p| p.ca_file.clone()),
    };
    let runtime = choose_runtime(&config, &cluster_id, node_auth).await?;
    if runtime.kind() == RuntimeKind::Docker && listen_ip.is_loopback() {
        bail!(
            "kube9d listens on {}, which Docker nodes cannot reach: they dial the cluster network's gateway. Listen on 0.0.0.0:PORT (the default) or the gateway's address, or run the nodes as processes (--runtime process)",
            config.listen
        );
    }
    let (control, actions) = Control::load(
        store,
        config.settings(),
        Some(runtime.kind()),
        cluster_id.clone(),
    )?;
    let addr = listener.local_addr()?;
    control.set_server_port(addr.port());
    tracing::info!(%addr, cluster = %cluster_id, runtime = %runtime.kind(), data_dir = %config.data_dir.display(), "kube9d starting");

    runtime
        .prepare()
        .await
        .context("failed to prepare the node runtime")?;
    if pki.is_some() {
        // Now that the runtime knows where its agents dial (the Docker gateway).
        let names = pki::serving_names(listen_ip, &runtime.server_addresses(), &config.tls_san);
        pki = Some(Pki::load_or_create(&config.data_dir, &names)?);
    }
    let ops = NodeOps::new(control.clone(), Some(runtime.clone()));
    tokio::spawn(ops.clone().serve(actions));
    ops.reconcile().await;

    let cluster_api = ClusterApi::new(ops.clone(), auth.clone());
    let dashboard_listener = dashboard::bind(config.dashboard_listen, config.no_dashboard).await?;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<ClusterServiceServer<ClusterApi>>()
        .await;
    health_reporter
        .set_serving::<AgentServiceServer<AgentApi>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(kube9_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(kube9_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let mut stop = shutdown.clone();
    let mut builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(2)))
        .http2_keepalive_timeout(Some(Duration::from_secs(4)))
        .concurrency_limit_per_connection(config.max_calls_per_connection.max(1))
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
        .timeout(Duration::from_secs(config.request_timeout_secs.max(1)));
    match &pki {
        Some(pki) => {
            builder = builder
                .tls_config(ServerTlsConfig::new().identity(Identity::from_pem(
                    &pki.chain_pem,
                    &pki.key_pem,
                )))
                .context("the server certificate does not load")?;
        }
        None => tracing::warn!(
            "--insecure: serving plain text; tokens, pod specs and Secret values cross the network readable by anyone on the path"
        ),
    }
    let insecure = config.insecure;
    let incoming = TcpListenerStream::new(listener).inspect(move |conn| {
        // Small answers go out at once: with Nagle's algorithm each waited for the client's
        // delayed ACK (~40 ms per page of a paged list).
        if let Ok(conn) = conn {
            let _ = conn.set_nodelay(true);
        }
        if let (true, Ok(conn)) = (insecure, conn) {
            let peer = conn.peer_addr().map(|a| a.to_string()).unwrap_or_default();
            tracing::warn!(%peer, "plain-text connection (--insecure)");
        }
    });
    let serve = builder
        .layer(AuthLayer::new(auth.clone()))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(ClusterServiceServer::new(cluster_api.clone()))
        .add_service(AgentServiceServer::new(AgentApi::new(control.clone())))
        .serve_with_incoming_shutdown(incoming, async move { stop.wait().await });
    let mut serve = tokio::spawn(serve);
    // Agents reattach only now that kube9d serves again: start their clocks here, before the
    // loops that judge them.
    control.mutate_detached(|c| c.restart_clocks(STARTUP_GRACE));
    tokio::spawn(crate::monitor::health_loop(
        control.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(crate::monitor::container_loop(
        ops.clone(),
        shutdown.clone(),
    ));
    let client_config =
        (config.client_config.clone()).unwrap_or_else(kube9_proto::client::config::default_path);
    let server_url = client_url(addr, pki.is_some());
    let ca_pem = pki.as_ref().map(|p| p.ca_pem.as_str());
    if let Err(e) =
        bootstrap::write_client_config(&auth, &client_config, &cluster_id, &server_url, ca_pem)
            .await
    {
        tracing::warn!(error = %format!("{e:#}"), "failed to write the client config");
    }
    if let Some(listener) = dashboard_listener {
        let dashboard_addr = listener.local_addr()?;
        Dashboard::new(cluster_api, auth.clone()).spawn(listener, shutdown.clone());
        write_port_file(&config.data_dir, "dashboard.port", dashboard_addr.port());
        tracing::info!(
            "dashboard: http://{dashboard_addr}/ (`kube9ctl dashboard` prints a sign-in link)"
        );
    }
    write_port_file(&config.data_dir, "kube9d.port", addr.port());
    tracing::info!(%addr, "kube9d serving");

    {
        let ops = ops.clone();
        tokio::spawn(async move { ops.replace_given_up().await });
    }
    if config.nodes > 0 {
        let ops = ops.clone();
        let cpu = config.node_cpu as i64 * 1000;
        let memory = config.node_memory_bytes();
        tokio::spawn(async move {
            for i in 1..=config.nodes {
                let name = format!("node-{i}");
                let status = ops
                    .control()
                    .read(|c| c.nodes.get(&name).map(|e| e.status()));
                // A node that left (its container stopped, say by an engine restart) is part
                // of the size asked for: start it again.
                if status == Some(pb::NodeStatus::Left) {
                    if let Err(e) = ops.recover(&name).await {
                        tracing::warn!(node = %name, error = %e, "failed to start a node that left");
                    }
                }
                if status.is_some() {
                    continue;
                }
                let spec = pb::NodeSpec {
                    name: name.clone(),
                    cpu_millis: cpu,
                    labels: Default::default(),
                    memory_bytes: memory,
                };
                if let Err(e) = ops.create_nodes(vec![spec]).await {
                    tracing::error!(node = %name, error = %e, "failed to create bootstrap node");
                }
            }
        });
    }

    tokio::select! {
        res = &mut serve => res??,
        _ = shutdown.wait() => {
            // Long-lived streams (agents, watches) would hold a graceful shutdown open forever.
            control.mutate_detached(|c| for e in c.nodes.values_mut() { e.agent = None; });
            if tokio::time::timeout(DRAIN_TIMEOUT, &mut serve).await.is_err() {
                serve.abort();
            }
        }
    }
    control.store().flush().await?;
    tracing::info!("kube9d stopped; state flushed");
    Ok(())
}

/// The stored cluster id, or the given (or default) one stored for next time.
async fn resolve_cluster_id(store: &Store, wanted: Option<&str>) -> anyhow::Result<String> {
    let snap = store.load()?;
    let stored = snap
        .meta
        .iter()
        .find(|(k, _)| k == "cluster_id")
        .map(|(_, v)| v.clone());
    let id = match (stored, wanted) {
        (Some(s), Some(w)) if s != w => {
            bail!("this data directory belongs to cluster \"{s}\", not \"{w}\"")
        }
        (Some(s), _) => return Ok(s),
        (None, w) => w.unwrap_or(DEFAULT_CLUSTER_ID).to_string(),
    };
    kube9_proto::validate::validate_name("cluster", &id)
        .map_err(|e| anyhow::anyhow!("invalid --cluster-id: {e}"))?;
    let mut batch = crate::store::Batch::default();
    batch.push(crate::store::Op::PutMeta("cluster_id".into(), id.clone()));
    store.submit(batch).wait().await?;
    Ok(id)
}

/// `--runtime auto|docker|process`: auto picks Docker when the engine answers.
async fn choose_runtime(
    config: &Config,
    cluster_id: &str,
    auth: NodeAuth,
) -> anyhow::Result<Arc<dyn NodeRuntime>> {
    let node_binary = config
        .node_binary
        .clone()
        .unwrap_or_else(default_node_binary);
    let use_docker = match config.runtime {
        RuntimeChoice::Docker => true,
        RuntimeChoice::Process => false,
        RuntimeChoice::Auto => {
            let up = docker_available().await;
            tracing::info!(
                runtime = %if up { RuntimeKind::Docker } else { RuntimeKind::Process },
                "runtime auto: Docker {}",
                if up { "answers" } else { "does not answer" }
            );
            up
        }
    };
    if use_docker {
        let cfg = DockerConfig {
            auth,
            ..DockerConfig::new(cluster_id, node_binary, config.busybox.clone())
        };
        Ok(Arc::new(
            DockerRuntime::connect(cfg)
                .await
                .context("failed to connect to Docker")?,
        ))
    } else {
        let cfg = ProcessConfig {
            cluster_id: cluster_id.to_string(),
            node_binary,
            data_dir: config.data_dir.clone(),
            auth,
        };
        Ok(Arc::new(ProcessRuntime::new(cfg)))
    }
}

/// `kube9-node` next to this executable.
fn default_node_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("kube9-node")))
        .unwrap_or_else(|| PathBuf::from("kube9-node"))
}

/// The URL kube9ctl dials for a kube9d serving on `addr`: loopback when it listens on every
/// address.
fn client_url(addr: std::net::SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let host = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("{scheme}://{host}:{}", addr.port())
}

/// `<data-dir>/kube9d.port` (and `dashboard.port`) hold the port kube9d (and its dashboard)
/// serve on, for scripts and tests that start them on port 0.
fn write_port_file(dir: &Path, file: &str, port: u16) {
    if let Err(e) = std::fs::write(dir.join(file), format!("{port}\n")) {
        tracing::warn!(error = %e, "failed to write the port file");
    }
}
