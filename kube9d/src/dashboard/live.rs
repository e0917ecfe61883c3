//! What keeps the page live without polling: the `Watch` stream and `StreamLogs` as
//! server-sent events, and a sample of the nodes every few seconds for the overview's chart
//! (kept for the last minutes, so a page opened now shows them too).

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures::StreamExt;
use kube9_proto::pb::{self, cluster_service_server::ClusterService};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::bridge::{check, request};
use super::session::{authorize, ApiError};
use super::Dashboard;
use crate::shutdown::Shutdown;

/// How often the nodes are sampled for the chart while a page is open.
const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// How often when none is: the chart's history stays filled, at a fifth of the cost (a list
/// of every node) on a big cluster nobody is looking at.
const SAMPLE_IDLE: Duration = Duration::from_secs(10);
/// Samples kept: ten minutes.
const SAMPLES_KEPT: usize = 300;
/// Events a slow page may fall behind before its stream is ended (it then lists again).
const STREAM_BUFFER: usize = 4096;

/// One point of the overview's chart.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub time_ms: i64,
    /// Nodes per status (`HEALTHY`, `FAILED`, ...).
    pub nodes: BTreeMap<String, u32>,
    pub cpu_capacity_millis: i64,
    pub cpu_allocated_millis: i64,
    pub memory_capacity_bytes: i64,
    pub memory_allocated_bytes: i64,
}

impl Sample {
    fn of(nodes: &[pb::Node], time_ms: i64) -> Self {
        let mut sample = Sample {
            time_ms,
            nodes: BTreeMap::new(),
            cpu_capacity_millis: 0,
            cpu_allocated_millis: 0,
            memory_capacity_bytes: 0,
            memory_allocated_bytes: 0,
        };
        for node in nodes {
            let status = pb::NodeStatus::try_from(node.status).unwrap_or_default();
            let name = status.as_str_name().trim_start_matches("NODE_STATUS_");
            *sample.nodes.entry(name.to_string()).or_default() += 1;
            sample.cpu_capacity_millis += node.cpu_capacity_millis;
            sample.cpu_allocated_millis += node.cpu_allocated_millis;
            sample.memory_capacity_bytes += node.memory_capacity_bytes;
            sample.memory_allocated_bytes += node.memory_allocated_bytes;
        }
        sample
    }
}

/// What each open page receives every few seconds: the chart's sample, and each node's last
/// heartbeat (heartbeats are not changes, so the watch does not carry them).
#[derive(Clone, Debug, Serialize)]
pub struct Tick {
    #[serde(flatten)]
    pub sample: Sample,
    pub heartbeats: BTreeMap<String, i64>,
}

pub struct Samples {
    kept: Mutex<VecDeque<Sample>>,
    live: broadcast::Sender<Arc<Tick>>,
}

impl Default for Samples {
    fn default() -> Self {
        Samples {
            kept: Mutex::new(VecDeque::with_capacity(SAMPLES_KEPT)),
            live: broadcast::channel(16).0,
        }
    }
}

impl Samples {
    fn push(&self, tick: Tick) {
        let mut kept = self.kept.lock();
        if kept.len() == SAMPLES_KEPT {
            kept.pop_front();
        }
        kept.push_back(tick.sample.clone());
        drop(kept);
        let _ = self.live.send(Arc::new(tick));
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Samples the nodes (through `ListNodes`, as any reader would) until shutdown.
pub async fn sample_loop(dashboard: Dashboard, mut shutdown: Shutdown) {
    let mut last: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return,
        }
        let watched = dashboard.inner.samples.live.receiver_count() > 0;
        if !watched && last.is_some_and(|t| t.elapsed() < SAMPLE_IDLE) {
            continue;
        }
        last = Some(tokio::time::Instant::now());
        let listed = (dashboard.inner.api)
            .list_nodes(request(pb::ListNodesRequest {}, None))
            .await;
        if let Ok(listed) = listed {
            let nodes = listed.into_inner().nodes;
            let heartbeats = (nodes.iter())
                .map(|n| (n.name.clone(), n.last_heartbeat_ms))
                .collect();
            let sample = Sample::of(&nodes, now_ms());
            dashboard.inner.samples.push(Tick { sample, heartbeats });
        }
    }
}

/// `GET /api/history`: the samples kept, oldest first.
pub async fn history(
    State(dashboard): State<Dashboard>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<Vec<Sample>>, ApiError> {
    let session = authorize(&dashboard, &headers, None)?;
    check(&dashboard, &session, "ListNodes", peer)?;
    let kept = dashboard.inner.samples.kept.lock();
    Ok(Json(kept.iter().cloned().collect()))
}

#[derive(Deserialize)]
pub struct WatchQuery {
    csrf: String,
    /// Replay the changes after this version (the lists' `resource_version`).
    #[serde(default)]
    rv: u64,
}

type Events = Sse<axum::response::sse::KeepAliveStream<ReceiverStream<Result<Event, Infallible>>>>;

fn event<T: Serialize>(name: &str, data: &T) -> Result<Event, Infallible> {
    Ok(Event::default()
        .event(name)
        .json_data(data)
        .unwrap_or_else(|_| Event::default().event("failed").data("{}")))
}

/// `GET /api/watch?csrf=...&rv=N`: every change after version N (`change`: a `WatchEvent`),
/// a `sample` for the chart every few seconds, and `failed` (then the end) when the watch
/// ends: its history expired or the page fell behind, so the page lists again.
pub async fn watch(
    State(dashboard): State<Dashboard>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<WatchQuery>,
) -> Result<Events, ApiError> {
    let session = authorize(&dashboard, &headers, Some(&query.csrf))?;
    let caller = check(&dashboard, &session, "Watch", peer)?;
    let watch = pb::WatchRequest {
        kinds: Vec::new(),
        resource_version: query.rv,
    };
    let mut changes = (dashboard.inner.api)
        .watch(request(watch, caller))
        .await?
        .into_inner();
    let mut samples = dashboard.inner.samples.live.subscribe();
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                change = changes.next() => match change {
                    Some(Ok(change)) => event("change", &change),
                    Some(Err(status)) => {
                        let _ = tx.send(event("failed", &ApiError::from(status))).await;
                        return;
                    }
                    None => return,
                },
                sample = samples.recv() => match sample {
                    Ok(tick) => event("sample", &*tick),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tx.closed() => return,
            };
            // A page that cannot keep up lists again rather than hold kube9d's memory.
            if tx.try_send(next).is_err() {
                return;
            }
        }
    });
    Ok(Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::default()))
}

#[derive(Deserialize)]
pub struct LogsQuery {
    csrf: String,
    pod: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    container: String,
    #[serde(default)]
    tail: u32,
}

/// `GET /api/logs?csrf=...&namespace=&pod=&container=&tail=N`: `kube9ctl logs -f` as events:
/// `log` (a JSON string of output), `failed`, and `end` when the container's log ends.
pub async fn logs(
    State(dashboard): State<Dashboard>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<LogsQuery>,
) -> Result<Events, ApiError> {
    let session = authorize(&dashboard, &headers, Some(&query.csrf))?;
    let caller = check(&dashboard, &session, "StreamLogs", peer)?;
    let logs = pb::GetLogsRequest {
        pod: query.pod,
        container: query.container,
        tail_lines: query.tail,
        previous: false,
        namespace: query.namespace,
    };
    let mut chunks = (dashboard.inner.api)
        .stream_logs(request(logs, caller))
        .await?
        .into_inner();
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                chunk = chunks.next() => chunk,
                _ = tx.closed() => return,
            };
            let (event, last) = match next {
                Some(Ok(chunk)) => (
                    event("log", &String::from_utf8_lossy(&chunk.content)),
                    false,
                ),
                Some(Err(status)) => (event("failed", &ApiError::from(status)), true),
                None => (event("end", &()), true),
            };
            if tx.send(event).await.is_err() || last {
                return;
            }
        }
    });
    Ok(Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_counts_nodes_by_status_and_sums_resources() {
        let node = |status: pb::NodeStatus, cap: i64, alloc: i64| pb::Node {
            status: status as i32,
            cpu_capacity_millis: cap,
            cpu_allocated_millis: alloc,
            memory_capacity_bytes: 1 << 30,
            memory_allocated_bytes: 1 << 20,
            ..Default::default()
        };
        let s = Sample::of(
            &[
                node(pb::NodeStatus::Healthy, 4000, 1000),
                node(pb::NodeStatus::Healthy, 2000, 500),
                node(pb::NodeStatus::Failed, 1000, 0),
            ],
            7,
        );
        assert_eq!(s.nodes.get("HEALTHY"), Some(&2));
        assert_eq!(s.nodes.get("FAILED"), Some(&1));
        assert_eq!(s.cpu_capacity_millis, 7000);
        assert_eq!(s.cpu_allocated_millis, 1500);
        assert_eq!(s.memory_capacity_bytes, 3 << 30);
        assert_eq!(s.memory_allocated_bytes, 3 << 20);
        assert_eq!(s.time_ms, 7);
    }

    #[test]
    fn samples_keep_the_last_minutes() {
        let samples = Samples::default();
        for i in 0..(SAMPLES_KEPT as i64 + 5) {
            samples.push(Tick {
                sample: Sample::of(&[], i),
                heartbeats: BTreeMap::new(),
            });
        }
        let kept = samples.kept.lock();
        assert_eq!(kept.len(), SAMPLES_KEPT);
        assert_eq!(kept.front().unwrap().time_ms, 5);
    }
}
