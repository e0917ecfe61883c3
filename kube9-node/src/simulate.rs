//! `kube9-node --simulate N`: one process that is N node agents, for scale tests and
//! benchmarks.
//!
//! Each simulated node speaks the agent protocol as [`crate::agent`] does: its own `Attach`
//! stream with its own `Register` (name, instance id, capacity, the pods it holds), heartbeats
//! at the interval kube9d sets, acknowledgements tracked by the same [`Fence`], reconnects with
//! the same [`Backoff`], `Deregister` on SIGTERM. What differs is that nothing runs: a pod it
//! is told to run is reported `Running` (every container running and ready, init containers
//! completed) in one `PodStatus` carrying the pod's uid, and a `DeletePod` is answered with
//! the `deleted` status a real agent sends once the pod stopped, at once.
//!
//! Cost per node is one task, one HTTP/2 stream and the pod statuses it reports (kept for the
//! next `Register`, as a real agent's supervisor keeps them). Streams share connections: one
//! tonic channel per `--simulate-nodes-per-connection` nodes (200 by default), below both
//! kube9d's HTTP/2 stream limit per connection (1024) and its calls in flight per connection
//! (`--max-calls-per-connection`, 256): an `Attach` is a call until kube9d has read `Register`.
//! Agent streams are not counted against `--max-streams-per-client` (that cap is for the
//! streams people open: logs -f, exec, watches), so thousands of nodes may share one join
//! token.
//!
//! Heartbeats are staggered: node `i` of `N` ticks `i/N` of an interval after the others'
//! phase, so 10,000 nodes at 1 Hz send ten heartbeats a millisecond, not 10,000 at once.
//!
//! Failure injection reaches a simulated node as it reaches a real one, on its stream:
//! `StopHeartbeats`/`ResumeHeartbeats`, `SetComponentHealth`, and `Terminate` are handled the
//! same way; a partition of a node kube9d does not own is kube9d refusing its stream, which a
//! simulated node meets with the same backoff; a crash needs a process kube9d started, which a
//! simulated node, like any agent joined by hand, does not have.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kube9_proto::client::AuthChannel;
use kube9_proto::namespace;
use kube9_proto::pb::agent_service_client::AgentServiceClient;
use kube9_proto::pb::{
    self, agent_message, control_message, AgentMessage, ContainerState, ControlMessage, PodPhase,
};
use tokio::sync::{mpsc, watch};
use tokio::time::{timeout, Instant, MissedTickBehavior};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Streaming};
use tracing::{debug, info, warn};

use crate::agent::backoff::Backoff;
use crate::agent::components::Components;
use crate::agent::dial::{DialError, Dialer};
use crate::agent::fence::{self, Fence};
use crate::agent::{error_chain, instance, shutdown_requested, ShutdownRx};
use crate::config::{Cli, Config};
use crate::kubelet::policy::{self, reason, RestartPolicy};

/// Room in each node's outbound channel.
const OUTBOUND_CAPACITY: usize = 256;
/// How long connecting, attaching and waiting for Registered may each take (as a real agent).
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the Deregisters get to go out on shutdown.
const DEREGISTER_BUDGET: Duration = Duration::from_secs(2);

/// What `--simulate` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Simulation {
    /// How many nodes.
    pub count: u32,
    /// Node names are the prefix and a number from 1, zero-padded to the width of `count`.
    pub prefix: String,
    /// CPU capacity of each node, in millicores.
    pub cpu_millis: i64,
    /// Memory capacity of each node, in bytes (0: not tracked).
    pub memory_bytes: i64,
    /// Nodes whose streams share one HTTP/2 connection.
    pub nodes_per_connection: u32,
}

impl Simulation {
    /// What `--simulate` asks for, if given.
    pub fn from_cli(cli: &Cli) -> Option<Simulation> {
        Some(Simulation {
            count: cli.simulate?,
            prefix: cli.simulate_prefix.clone(),
            cpu_millis: cli.cpu_millis,
            memory_bytes: cli.simulate_memory,
            nodes_per_connection: cli.simulate_nodes_per_connection,
        })
    }

    /// The name of node `i` (0-based): `sim-001` for the first of 100.
    pub fn node_name(&self, i: u32) -> String {
        let width = self.count.to_string().len();
        format!("{}{:0width$}", self.prefix, i + 1)
    }
}

/// One shared connection: a tonic channel multiplexes the streams of many nodes, and
/// reconnects by itself once made.
struct Pool {
    dialer: Dialer,
    client: tokio::sync::Mutex<Option<AgentServiceClient<AuthChannel>>>,
}

impl Pool {
    async fn client(&self) -> Result<AgentServiceClient<AuthChannel>, DialError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let client = self.dialer.connect().await?;
        *slot = Some(client.clone());
        Ok(client)
    }
}

/// Counts of the simulation, logged as they change in bulk.
#[derive(Default)]
struct Tally {
    registered: AtomicUsize,
}

/// Runs the simulated nodes until `shutdown` resolves (every node then deregisters, as a real
/// agent does on SIGTERM) or every node was terminated by kube9d.
pub async fn run<F>(config: Config, simulation: Simulation, shutdown: F)
where
    F: std::future::Future<Output = &'static str> + Send + 'static,
{
    let (stop_tx, stop_rx) = watch::channel(None);
    tokio::spawn(async move {
        let reason = shutdown.await;
        let _ = stop_tx.send(Some(reason));
    });
    let dialer = Dialer::new(&config);
    let per_connection = simulation.nodes_per_connection.max(1);
    let connections = simulation.count.div_ceil(per_connection).max(1);
    let pools: Vec<Arc<Pool>> = (0..connections)
        .map(|_| {
            Arc::new(Pool {
                dialer: dialer.clone(),
                client: tokio::sync::Mutex::new(None),
            })
        })
        .collect();
    info!(server = %config.server, nodes = simulation.count, connections, prefix = %simulation.prefix,
        cpu_millis = simulation.cpu_millis, memory_bytes = simulation.memory_bytes,
        "simulating nodes: pods are reported Running, nothing is started");
    let process_instance = instance::generate();
    let tally = Arc::new(Tally::default());
    let config = Arc::new(config);
    let mut nodes = tokio::task::JoinSet::new();
    for i in 0..simulation.count {
        let node = SimNode {
            name: simulation.node_name(i),
            instance_id: format!("{process_instance}-{i}"),
            cpu_millis: simulation.cpu_millis,
            memory_bytes: simulation.memory_bytes,
            config: config.clone(),
            phase: (i, simulation.count),
            pods: HashMap::new(),
            components: Components::default(),
            heartbeats_paused: false,
            seq: 0,
            fence: Fence::new(config.fence, Instant::now()),
            tally: tally.clone(),
            total: simulation.count as usize,
        };
        let pool = pools[(i / per_connection) as usize].clone();
        nodes.spawn(node.run(pool, stop_rx.clone()));
    }
    while let Some(done) = nodes.join_next().await {
        if let Err(e) = done {
            warn!(error = %e, "a simulated node's task failed");
        }
    }
    info!("every simulated node stopped");
}

/// One simulated node: what a real [`crate::agent::Agent`] keeps across reconnects, with
/// pod statuses in place of a supervisor.
struct SimNode {
    name: String,
    instance_id: String,
    cpu_millis: i64,
    memory_bytes: i64,
    config: Arc<Config>,
    /// `(i, n)`: this node's heartbeats tick `i/n` of an interval after node 0's.
    phase: (u32, u32),
    /// What the node "runs", by `namespace/name`, as last reported.
    pods: HashMap<String, pb::PodStatus>,
    components: Components,
    heartbeats_paused: bool,
    seq: u64,
    fence: Fence,
    tally: Arc<Tally>,
    total: usize,
}

/// How one session ended (as [`crate::agent::session::SessionEnd`]).
enum End {
    Shutdown,
    Terminate(String),
    Rejected(tonic::Status),
    Lost { registered: bool, error: String },
}

impl SimNode {
    /// Connects, serves and reconnects until shut down or terminated.
    async fn run(mut self, pool: Arc<Pool>, mut shutdown: ShutdownRx) {
        let mut backoff = Backoff::default();
        let mut failures: u32 = 0;
        loop {
            match self.session(&pool, &mut shutdown).await {
                End::Shutdown => return,
                End::Terminate(reason) => {
                    info!(node = %self.name, %reason, "terminated by the server");
                    self.pods.clear();
                    return;
                }
                End::Lost { registered, error } => {
                    if registered {
                        backoff.reset();
                        failures = 0;
                        self.tally.registered.fetch_sub(1, Ordering::Relaxed);
                    }
                    if failures == 0 || failures.is_power_of_two() {
                        debug!(node = %self.name, %error, failures, "simulated node's stream lost, reconnecting");
                    }
                    failures += 1;
                }
                End::Rejected(status) => {
                    backoff.saturate();
                    if failures == 0 || failures.is_power_of_two() {
                        warn!(node = %self.name, code = ?status.code(), detail = %status.message(), failures,
                            "kube9d refused the simulated node, retrying");
                    }
                    failures += 1;
                }
            }
            let delay = backoff.next_delay();
            tokio::select! {
                _ = shutdown_requested(&mut shutdown) => return,
                _ = tokio::time::sleep(delay) => {}
                () = fence::due(self.fence.deadline()) => self.fence_pods(),
            }
        }
    }

    /// Cut off for the fence time: a real agent stops every pod now; so does this one.
    fn fence_pods(&mut self) {
        self.fence.fence(Instant::now());
        if !self.pods.is_empty() {
            info!(node = %self.name, pods = self.pods.len(), "fenced: no contact with kube9d; pods stopped");
            self.pods.clear();
        }
    }

    fn register(&self) -> pb::Register {
        pb::Register {
            node_name: self.name.clone(),
            token: String::new(),
            cpu_capacity_millis: self.cpu_millis,
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            pods: self.pods.values().cloned().collect(),
            cluster_id: self.config.cluster_id.clone(),
            instance_id: self.instance_id.clone(),
            memory_capacity_bytes: self.memory_bytes,
            pod_runtime: "simulated".to_string(),
            adoptable_pod_uids: Vec::new(),
            pod_isolation: "simulated (kube9-node --simulate): nothing runs".to_string(),
        }
    }

    async fn session(&mut self, pool: &Pool, shutdown: &mut ShutdownRx) -> End {
        let lost = |error: String| End::Lost {
            registered: false,
            error,
        };
        let established = tokio::select! {
            _ = shutdown_requested(shutdown) => return End::Shutdown,
            established = self.establish(pool) => established,
        };
        let (tx, mut inbound, heartbeat_every, fence_ms) = match established {
            Ok(established) => established,
            Err(Attach::Status(status)) if rejected(status.code()) => return End::Rejected(status),
            Err(Attach::Status(status)) => {
                return lost(format!("{}: {}", status.code(), status.message()))
            }
            Err(Attach::Other(error)) => return lost(error),
        };
        self.fence.registered(fence_ms, Instant::now());
        let now = self.tally.registered.fetch_add(1, Ordering::Relaxed) + 1;
        if now == self.total {
            info!(nodes = now, "every simulated node is registered");
        }
        // Staggered: this node's phase within the interval.
        let (i, n) = self.phase;
        let offset = heartbeat_every.mul_f64(f64::from(i) / f64::from(n.max(1)));
        let mut ticker = tokio::time::interval_at(Instant::now() + offset, heartbeat_every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let lost = |error: String| End::Lost {
            registered: true,
            error,
        };
        loop {
            let step = tokio::select! {
                _ = shutdown_requested(shutdown) => {
                    leave(tx, inbound).await;
                    self.tally.registered.fetch_sub(1, Ordering::Relaxed);
                    return End::Shutdown;
                }
                received = inbound.message() => match received {
                    Ok(Some(control)) => self.handle(&tx, control, &mut ticker).await,
                    Ok(None) => Err(lost("stream closed by the server".into())),
                    Err(status) if rejected(status.code()) => {
                        self.tally.registered.fetch_sub(1, Ordering::Relaxed);
                        Err(End::Rejected(status))
                    }
                    Err(status) => Err(lost(format!("{}: {}", status.code(), status.message()))),
                },
                _ = ticker.tick(), if !self.heartbeats_paused => self.heartbeat(&tx).await,
                () = fence::due(self.fence.silence_deadline()), if !self.heartbeats_paused => {
                    Err(lost("kube9d acknowledged no heartbeat in time".into()))
                }
            };
            if let Err(end) = step {
                if matches!(end, End::Terminate(_)) {
                    self.tally.registered.fetch_sub(1, Ordering::Relaxed);
                }
                return end;
            }
        }
    }

    async fn establish(
        &self,
        pool: &Pool,
    ) -> Result<
        (
            mpsc::Sender<AgentMessage>,
            Streaming<ControlMessage>,
            Duration,
            u64,
        ),
        Attach,
    > {
        let mut client = timeout(REGISTER_TIMEOUT, pool.client())
            .await
            .map_err(|_| Attach::Other("connecting timed out".into()))?
            .map_err(|e| Attach::Other(error_chain(&e)))?;
        let (tx, rx) = mpsc::channel(OUTBOUND_CAPACITY);
        let register = message(agent_message::Msg::Register(self.register()));
        // The receiver is alive and the channel empty: this cannot fail or wait.
        let _ = tx.send(register).await;
        let response = timeout(REGISTER_TIMEOUT, client.attach(ReceiverStream::new(rx)))
            .await
            .map_err(|_| Attach::Other("attach timed out".into()))?
            .map_err(Attach::Status)?;
        let mut inbound = response.into_inner();
        let first = timeout(REGISTER_TIMEOUT, inbound.message())
            .await
            .map_err(|_| Attach::Other("no Registered in time".into()))?
            .map_err(Attach::Status)?
            .ok_or_else(|| Attach::Other("stream closed before Registered".into()))?;
        let registered = match first.msg {
            Some(control_message::Msg::Registered(registered)) => registered,
            other => return Err(Attach::Other(format!("expected Registered, got {other:?}"))),
        };
        let heartbeat_every = match registered.heartbeat_interval_ms {
            0 => self.config.heartbeat_interval,
            ms => Duration::from_millis(ms),
        };
        debug!(node = %self.name, pods = self.pods.len(), "registered");
        Ok((tx, inbound, heartbeat_every, registered.fence_ms))
    }

    async fn heartbeat(&mut self, tx: &mpsc::Sender<AgentMessage>) -> Result<(), End> {
        self.seq += 1;
        self.fence.sent(self.seq, Instant::now());
        let heartbeat = pb::Heartbeat {
            seq: self.seq,
            components: self.components.snapshot(),
            // Nothing runs, so nothing is measured (a real agent sends what it can measure).
            pod_usage: Vec::new(),
        };
        send(tx, message(agent_message::Msg::Heartbeat(heartbeat))).await
    }

    async fn handle(
        &mut self,
        tx: &mpsc::Sender<AgentMessage>,
        control: ControlMessage,
        ticker: &mut tokio::time::Interval,
    ) -> Result<(), End> {
        use control_message::Msg;
        match control.msg {
            Some(Msg::Registered(_)) => debug!(node = %self.name, "ignoring a repeated Registered"),
            Some(Msg::HeartbeatAck(ack)) => self.fence.acknowledged(ack.seq),
            Some(Msg::RunPod(run)) => {
                if let Some(pod) = run.pod {
                    let status = self.run_pod(&pod);
                    send(tx, message(agent_message::Msg::PodStatus(status))).await?;
                }
            }
            Some(Msg::DeletePod(delete)) => {
                let key = namespace::key(&delete.pod_namespace, &delete.pod_name);
                // As the supervisor: only this binding (or any, for an empty uid) goes.
                if self
                    .pods
                    .get(&key)
                    .is_some_and(|s| delete.pod_uid.is_empty() || s.pod_uid == delete.pod_uid)
                {
                    self.pods.remove(&key);
                }
                let deleted = pb::PodStatus {
                    pod_name: delete.pod_name,
                    pod_namespace: namespace::or_default(&delete.pod_namespace).to_string(),
                    pod_uid: delete.pod_uid,
                    deleted: true,
                    ..Default::default()
                };
                send(tx, message(agent_message::Msg::PodStatus(deleted))).await?;
            }
            Some(Msg::SetComponent(set)) => {
                info!(node = %self.name, component = %set.component, healthy = set.healthy, "component health set");
                self.components
                    .set(&set.component, set.healthy, &set.message);
                if !self.heartbeats_paused {
                    self.heartbeat(tx).await?;
                }
            }
            Some(Msg::StopHeartbeats(_)) => {
                info!(node = %self.name, "heartbeats stopped by the server");
                self.heartbeats_paused = true;
            }
            Some(Msg::ResumeHeartbeats(_)) => {
                info!(node = %self.name, "heartbeats resumed by the server");
                if self.heartbeats_paused {
                    self.heartbeats_paused = false;
                    self.fence.resumed(Instant::now());
                    self.heartbeat(tx).await?;
                    ticker.reset();
                }
            }
            Some(Msg::Terminate(terminate)) => return Err(End::Terminate(terminate.reason)),
            Some(Msg::FetchLogs(fetch)) => {
                let reply = pb::LogsReply {
                    request_id: fetch.request_id,
                    content: Vec::new(),
                    error: NOTHING_RUNS.to_string(),
                };
                send(tx, message(agent_message::Msg::Logs(reply))).await?;
            }
            Some(Msg::FollowLogs(follow)) => {
                let last = pb::LogChunkReply {
                    request_id: follow.request_id,
                    done: true,
                    error: NOTHING_RUNS.to_string(),
                    ..Default::default()
                };
                send(tx, message(agent_message::Msg::LogChunk(last))).await?;
            }
            Some(Msg::Exec(exec)) => {
                let reply = pb::ExecReply {
                    request_id: exec.request_id,
                    error: NOTHING_RUNS.to_string(),
                    ..Default::default()
                };
                send(tx, message(agent_message::Msg::Exec(reply))).await?;
            }
            // Nothing streamed is ever in flight here.
            Some(Msg::Cancel(_)) => {}
            None => warn!(node = %self.name, "ignoring an empty control message"),
        }
        Ok(())
    }

    /// Takes `pod` on and returns the status to report: the same binding again is reported
    /// as it was; a new one replaces an older binding of the name (a real agent stops that
    /// one first; here nothing runs to stop).
    fn run_pod(&mut self, pod: &pb::Pod) -> pb::PodStatus {
        let key = namespace::key(pod.ns(), &pod.name);
        if let Some(status) = self.pods.get(&key).filter(|s| s.pod_uid == pod.uid) {
            return status.clone();
        }
        let status = running(pod);
        self.pods.insert(key, status.clone());
        status
    }
}

/// What a simulated node answers to logs and exec.
const NOTHING_RUNS: &str = "this node is simulated (kube9-node --simulate): nothing runs on it";

/// Why an attach failed.
enum Attach {
    Status(tonic::Status),
    Other(String),
}

/// Refusals a real agent backs off from longest: credentials, another agent, a partition.
fn rejected(code: Code) -> bool {
    matches!(
        code,
        Code::PermissionDenied | Code::FailedPrecondition | Code::Unauthenticated
    )
}

/// The status a real agent reports once every container of `pod` started: init containers
/// completed, app containers running and ready, phase and STATUS column by the kubelet rules.
pub fn running(pod: &pb::Pod) -> pb::PodStatus {
    let now = crate::containers::pod::now_ms();
    let init_containers: Vec<pb::ContainerStatus> = pod
        .init_containers
        .iter()
        .map(|c| pb::ContainerStatus {
            name: c.name.clone(),
            state: ContainerState::Terminated as i32,
            exit_code: 0,
            started_ms: now,
            finished_ms: now,
            reason: reason::COMPLETED.to_string(),
            ..Default::default()
        })
        .collect();
    let containers: Vec<pb::ContainerStatus> = pod
        .containers
        .iter()
        .map(|c| pb::ContainerStatus {
            name: c.name.clone(),
            state: ContainerState::Running as i32,
            started_ms: now,
            ready: true,
            ..Default::default()
        })
        .collect();
    let phase = policy::phase(&init_containers, &containers, RestartPolicy::of(pod));
    pb::PodStatus {
        pod_name: pod.name.clone(),
        pod_namespace: pod.ns().to_string(),
        pod_uid: pod.uid.clone(),
        phase: phase as i32,
        message: String::new(),
        status_reason: policy::status_reason(&init_containers, &containers),
        ready: phase == PodPhase::Running && !containers.is_empty(),
        containers,
        init_containers,
        deleted: false,
        pod_ip: String::new(),
    }
}

fn message(msg: agent_message::Msg) -> AgentMessage {
    AgentMessage { msg: Some(msg) }
}

async fn send(tx: &mpsc::Sender<AgentMessage>, msg: AgentMessage) -> Result<(), End> {
    tx.send(msg).await.map_err(|_| End::Lost {
        registered: true,
        error: "stream closed".into(),
    })
}

/// Deregisters: the Deregister goes out, our side closes, and kube9d gets a moment to end the
/// stream.
async fn leave(tx: mpsc::Sender<AgentMessage>, mut inbound: Streaming<ControlMessage>) {
    let deadline = Instant::now() + DEREGISTER_BUDGET;
    let msg = message(agent_message::Msg::Deregister(pb::Deregister {
        reason: "agent received shutdown (simulated node)".into(),
    }));
    if tokio::time::timeout_at(deadline, tx.send(msg))
        .await
        .is_err()
    {
        return;
    }
    while tx.capacity() < tx.max_capacity() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(tx);
    let _ = tokio::time::timeout_at(deadline, async {
        while let Ok(Some(_)) = inbound.message().await {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(init: &[&str], app: &[&str]) -> pb::Pod {
        let container = |name: &&str| pb::Container {
            name: name.to_string(),
            ..Default::default()
        };
        pb::Pod {
            name: "web".into(),
            uid: "u-1".into(),
            init_containers: init.iter().map(container).collect(),
            containers: app.iter().map(container).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_pod_is_reported_running_and_ready_with_its_uid() {
        let status = running(&pod(&["setup"], &["main", "side"]));
        assert_eq!(status.phase(), PodPhase::Running);
        assert_eq!(status.pod_uid, "u-1");
        assert_eq!(status.pod_namespace, "default");
        assert!(status.ready && !status.deleted);
        assert_eq!(
            status.status_reason, "",
            "a running pod says nothing more than its phase"
        );
        assert_eq!(status.init_containers[0].reason, "Completed");
        assert!(status
            .containers
            .iter()
            .all(|c| c.state() == ContainerState::Running && c.ready));
    }

    #[test]
    fn names_are_padded_to_the_width_of_the_count() {
        let sim = Simulation {
            count: 100,
            prefix: "sim-".into(),
            cpu_millis: 4000,
            memory_bytes: 0,
            nodes_per_connection: 200,
        };
        assert_eq!(sim.node_name(0), "sim-001");
        assert_eq!(sim.node_name(99), "sim-100");
    }
}
