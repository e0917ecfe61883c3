//! One connected agent stream.
//!
//! All outbound messages go through one bounded channel feeding the request stream (the single
//! writer); tasks that answer later (FetchLogs) hold a clone of its sender. Nothing in the loop
//! waits on a slow operation: pod starts spawn processes and return, deletions and log reads
//! run in their own tasks, so heartbeats never stall.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kube9_proto::namespace;
use kube9_proto::pb::agent_service_client::AgentServiceClient;
use kube9_proto::pb::{self, agent_message, control_message, AgentMessage, ControlMessage};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::{timeout, Instant, MissedTickBehavior};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Streaming};
use tracing::{debug, info, warn};

use super::{fence, grace_period, shutdown_requested, Agent, ShutdownRx};
use crate::containers::DEFAULT_GRACE;
use crate::kubelet::policy::Backoff;

/// Room in the outbound channel.
const OUTBOUND_CAPACITY: usize = 1024;
/// How long connecting, attaching and waiting for Registered may each take.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the Deregister gets to go out on shutdown.
const DEREGISTER_BUDGET: Duration = Duration::from_secs(1);
/// How long the farewell (connect, Register, Deregister) may take on a shutdown while not
/// serving: short, so an unreachable kube9d (connect timeout!) cannot hold up the exit.
const FAREWELL_BUDGET: Duration = Duration::from_millis(1500);
/// How long, after closing our side, the server gets to see the close.
const LINGER: Duration = Duration::from_millis(300);

/// Errors of one session.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No connection to kube9d.
    #[error(transparent)]
    Connect(#[from] super::dial::DialError),
    /// kube9d answered the attach with an error.
    #[error("failed to attach: {}: {}{}", .0.code(), .0.message(), cause(.0))]
    Attach(tonic::Status),
    /// The stream failed after registration.
    #[error("failed to read the stream: {}: {}{}", .0.code(), .0.message(), cause(.0))]
    Stream(tonic::Status),
    /// kube9d ended the stream.
    #[error("stream closed by the server")]
    Closed,
    /// No Registered in time.
    #[error("failed to register: no answer within {0:?}")]
    Timeout(Duration),
    /// Serving, kube9d acknowledged no heartbeat for so long that the agent must fence (the
    /// fence time less the pods' stop grace): the stream is taken for dead.
    #[error("kube9d acknowledged no heartbeat in time (fence time {0:?})")]
    Silent(Duration),
    /// The first message was not Registered.
    #[error("failed to register: expected Registered, got {0}")]
    Protocol(String),
}

/// What a status made from a transport failure says of its cause (`: http2 error: …`), empty
/// for one kube9d sent: "Unknown: transport error" alone cannot tell a TLS port from a reset.
fn cause(status: &tonic::Status) -> String {
    let mut text = String::new();
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Error {
    /// Whether kube9d presented no CA with the pinned hash (see [`super::dial`]).
    pub fn is_pin_mismatch(&self) -> bool {
        matches!(self, Error::Connect(dial) if dial.is_pin_mismatch())
    }
}

/// How a session ended.
#[derive(Debug)]
pub enum SessionEnd {
    /// Shutdown was requested by `signal`.
    Shutdown {
        /// The signal's name, e.g. `"SIGTERM"`.
        signal: &'static str,
        /// Whether the registered stream already carried a Deregister (and the pods were
        /// stopped); false when no stream was registered yet, so a farewell is still due.
        deregistered: bool,
    },
    /// kube9d sent Terminate.
    Terminate(String),
    /// The server refused this node: its credentials (Unauthenticated, PermissionDenied) or,
    /// for now, the node name (FailedPrecondition).
    Rejected(tonic::Status),
    /// Connection failed or was lost; `registered` tells whether it had been established.
    Lost {
        /// Whether Registered had been received.
        registered: bool,
        /// What went wrong.
        error: Error,
    },
}

impl From<Error> for SessionEnd {
    fn from(error: Error) -> Self {
        match error {
            Error::Attach(status) | Error::Stream(status)
                if matches!(
                    status.code(),
                    Code::PermissionDenied | Code::FailedPrecondition | Code::Unauthenticated
                ) =>
            {
                SessionEnd::Rejected(status)
            }
            error => SessionEnd::Lost {
                registered: false,
                error,
            },
        }
    }
}

/// Connects, registers and serves until the stream ends, shutdown or Terminate. Should the
/// fence time pass while connecting, the agent fences and connects anew (the new Register
/// then carries what runs after the fence).
pub async fn run(
    agent: &mut Agent,
    updates: &mut mpsc::UnboundedReceiver<pb::PodStatus>,
    shutdown: &mut ShutdownRx,
) -> SessionEnd {
    let established = loop {
        tokio::select! {
            signal = shutdown_requested(shutdown) => {
                return SessionEnd::Shutdown { signal, deregistered: false }
            }
            established = establish(agent, updates) => break established,
            () = fence::due(agent.fence.deadline()) => agent.fence().await,
        }
    };
    let (session, inbound) = match established {
        Ok(established) => established,
        Err(error) => return error.into(),
    };
    agent.fence.registered(session.fence_ms, Instant::now());
    session.serve(agent, inbound, updates, shutdown).await
}

struct Session {
    tx: mpsc::Sender<AgentMessage>,
    heartbeat_every: Duration,
    /// kube9d's fence time from Registered (0: it did not say).
    fence_ms: u64,
    /// Streamed requests (logs -f, exec) in flight, by request id: cancelled on request, and
    /// all of them when the session ends.
    requests: Requests,
    /// Keeps the connection's client alive for as long as the session.
    _client: AgentServiceClient<kube9_proto::client::AuthChannel>,
}

/// The session's streamed requests in flight; dropping it (the session ended) aborts them.
#[derive(Default)]
struct Requests(Arc<Mutex<HashMap<u64, AbortHandle>>>);

impl Drop for Requests {
    fn drop(&mut self) {
        for (_, task) in self.0.lock().drain() {
            task.abort();
        }
    }
}

fn message(msg: agent_message::Msg) -> AgentMessage {
    AgentMessage { msg: Some(msg) }
}

/// Register as of now: what this node offers and runs.
fn register(agent: &Agent) -> pb::Register {
    let config = &agent.config;
    pb::Register {
        node_name: config.name.clone(),
        token: String::new(),
        cpu_capacity_millis: config.cpu_millis,
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        pods: agent.supervisor.snapshot(),
        cluster_id: config.cluster_id.clone(),
        instance_id: agent.instance_id.clone(),
        memory_capacity_bytes: 0,
        pod_runtime: agent.supervisor.runtime_kind().into(),
        adoptable_pod_uids: agent.supervisor.adoptable(),
        pod_isolation: agent.supervisor.pod_isolation(),
    }
}

/// The goodbye for a shutdown while no registered stream exists: one best-effort attempt, on a
/// fresh stream, to send Register immediately followed by Deregister, within
/// [`FAREWELL_BUDGET`]. Without it kube9d would take the vanished node for a failure and try to
/// recover it. Register (and its pod snapshot) is built when this is called, not when awaited.
pub fn farewell(agent: &Agent, signal: &'static str) -> impl Future<Output = ()> + 'static {
    let server = agent.config.server.clone();
    let dialer = agent.dialer.clone();
    let register = message(agent_message::Msg::Register(register(agent)));
    let deregister = message(agent_message::Msg::Deregister(pb::Deregister {
        reason: format!("agent received {signal}"),
    }));
    async move {
        let deadline = Instant::now() + FAREWELL_BUDGET;
        let attempt = send_farewell(&dialer, register, deregister, deadline);
        match tokio::time::timeout_at(deadline, attempt).await {
            Ok(Ok(())) => info!(%server, "deregistered"),
            Ok(Err(error)) => {
                warn!(%server, error = %super::error_chain(&error), "failed to deregister, kube9d may try to recover this node")
            }
            Err(_) => warn!(%server, budget_ms = FAREWELL_BUDGET.as_millis() as u64,
                "failed to deregister in time, kube9d may try to recover this node"),
        }
    }
}

async fn send_farewell(
    dialer: &super::dial::Dialer,
    register: AgentMessage,
    deregister: AgentMessage,
    deadline: Instant,
) -> Result<(), Error> {
    let mut client = dialer.connect().await?;
    let (tx, rx) = mpsc::channel(2);
    // The receiver is alive and the channel has room for both: these cannot fail or wait.
    let _ = tx.send(register).await;
    let _ = tx.send(deregister).await;
    let inbound = client
        .attach(ReceiverStream::new(rx))
        .await
        .map_err(Error::Attach)?
        .into_inner();
    // kube9d refuses some attaches (another agent holds the node) on the stream itself.
    close(tx, inbound, deadline).await.map_err(Error::Attach)
}

/// Waits until the transport has taken everything queued on `tx`, closes our side, and gives
/// the server a moment (until `deadline`, at most [`LINGER`]) to see it. Returns the error the
/// server ended the stream with meanwhile, if any.
async fn close(
    tx: mpsc::Sender<AgentMessage>,
    mut inbound: Streaming<ControlMessage>,
    deadline: Instant,
) -> Result<(), tonic::Status> {
    while tx.capacity() < tx.max_capacity() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(tx);
    let linger = deadline.min(Instant::now() + LINGER);
    let drained = tokio::time::timeout_at(linger, async {
        loop {
            match inbound.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return Ok(()),
                Err(status) => return Err(status),
            }
        }
    })
    .await;
    drained.unwrap_or(Ok(()))
}

async fn establish(
    agent: &Agent,
    updates: &mut mpsc::UnboundedReceiver<pb::PodStatus>,
) -> Result<(Session, Streaming<ControlMessage>), Error> {
    let config = &agent.config;
    let mut client = agent.dialer.connect().await?;
    let (tx, rx) = mpsc::channel(OUTBOUND_CAPACITY);
    // Register carries the full picture; queued updates are older than it.
    while updates.try_recv().is_ok() {}
    let register = register(agent);
    let pods = register.pods.len();
    // The receiver is alive and the channel empty: this cannot fail or wait.
    let _ = tx
        .send(message(agent_message::Msg::Register(register)))
        .await;
    let response = timeout(REGISTER_TIMEOUT, client.attach(ReceiverStream::new(rx)))
        .await
        .map_err(|_| Error::Timeout(REGISTER_TIMEOUT))?
        .map_err(Error::Attach)?;
    let mut inbound = response.into_inner();
    let first = timeout(REGISTER_TIMEOUT, inbound.message())
        .await
        .map_err(|_| Error::Timeout(REGISTER_TIMEOUT))?
        .map_err(Error::Attach)?
        .ok_or(Error::Closed)?;
    let registered = match first.msg {
        Some(control_message::Msg::Registered(registered)) => registered,
        other => return Err(Error::Protocol(format!("{other:?}"))),
    };
    let heartbeat_every = match registered.heartbeat_interval_ms {
        0 => config.heartbeat_interval,
        ms => Duration::from_millis(ms),
    };
    let mut backoff = Backoff::default();
    if registered.crash_backoff_base_ms > 0 {
        backoff.base = Duration::from_millis(registered.crash_backoff_base_ms);
    }
    if registered.crash_backoff_max_ms > 0 {
        backoff.max = Duration::from_millis(registered.crash_backoff_max_ms);
    }
    agent.supervisor.set_backoff(backoff);
    agent
        .supervisor
        .set_allow_root_pods(registered.allow_root_pods);
    // Before any RunPod is handled: what is not taken over goes.
    agent
        .supervisor
        .adopt_only(&registered.adopt_pod_uids)
        .await;
    info!(server = %config.server, node = %config.name, pods, heartbeat_ms = heartbeat_every.as_millis() as u64,
        "registered");
    Ok((
        Session {
            tx,
            heartbeat_every,
            fence_ms: registered.fence_ms,
            requests: Requests::default(),
            _client: client,
        },
        inbound,
    ))
}

impl Session {
    async fn serve(
        self,
        agent: &mut Agent,
        mut inbound: Streaming<ControlMessage>,
        updates: &mut mpsc::UnboundedReceiver<pb::PodStatus>,
        shutdown: &mut ShutdownRx,
    ) -> SessionEnd {
        let mut ticker = tokio::time::interval(self.heartbeat_every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let lost = |error| SessionEnd::Lost {
            registered: true,
            error,
        };
        loop {
            let step = tokio::select! {
                signal = shutdown_requested(shutdown) => {
                    self.leave(agent, inbound, signal).await;
                    return SessionEnd::Shutdown { signal, deregistered: true };
                }
                received = inbound.message() => match received {
                    Ok(Some(control)) => self.handle(agent, control, &mut ticker).await,
                    Ok(None) => Err(lost(Error::Closed)),
                    Err(status) => Err(match SessionEnd::from(Error::Stream(status)) {
                        SessionEnd::Lost { error, .. } => lost(error),
                        end => end,
                    }),
                },
                Some(update) = updates.recv() => self.send(message(agent_message::Msg::PodStatus(update))).await,
                _ = ticker.tick(), if !agent.heartbeats_paused => self.heartbeat(agent).await,
                // A half-open connection looks alive; heartbeats that nobody acknowledges tell.
                () = fence::due(agent.fence.silence_deadline()), if !agent.heartbeats_paused => {
                    Err(lost(Error::Silent(agent.fence.time())))
                }
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    async fn send(&self, msg: AgentMessage) -> Result<(), SessionEnd> {
        self.tx.send(msg).await.map_err(|_| SessionEnd::Lost {
            registered: true,
            error: Error::Closed,
        })
    }

    async fn heartbeat(&self, agent: &mut Agent) -> Result<(), SessionEnd> {
        agent.seq += 1;
        agent.fence.sent(agent.seq, Instant::now());
        let pods = agent.supervisor.snapshot();
        let heartbeat = pb::Heartbeat {
            seq: agent.seq,
            components: agent.components.snapshot(),
            pod_usage: agent.meter.sample(&pods),
        };
        self.send(message(agent_message::Msg::Heartbeat(heartbeat)))
            .await
    }

    async fn handle(
        &self,
        agent: &mut Agent,
        control: ControlMessage,
        ticker: &mut tokio::time::Interval,
    ) -> Result<(), SessionEnd> {
        use control_message::Msg;
        match control.msg {
            Some(Msg::Registered(_)) => debug!("ignoring a repeated Registered"),
            Some(Msg::HeartbeatAck(ack)) => agent.fence.acknowledged(ack.seq),
            Some(Msg::RunPod(run)) => match run.pod {
                Some(pod) => agent.supervisor.run_pod(pod),
                None => warn!("RunPod without a pod"),
            },
            Some(Msg::DeletePod(delete)) => {
                let grace = grace_period(delete.grace_period_ms);
                tokio::spawn(agent.supervisor.delete_pod(
                    &namespace::key(&delete.pod_namespace, &delete.pod_name),
                    &delete.pod_uid,
                    grace,
                ));
            }
            Some(Msg::SetComponent(set)) => {
                info!(component = %set.component, healthy = set.healthy, detail = %set.message, "component health set");
                agent
                    .components
                    .set(&set.component, set.healthy, &set.message);
                if !agent.heartbeats_paused {
                    self.heartbeat(agent).await?;
                }
            }
            Some(Msg::StopHeartbeats(_)) => {
                info!("heartbeats stopped by the server");
                agent.heartbeats_paused = true;
            }
            Some(Msg::ResumeHeartbeats(_)) => {
                info!("heartbeats resumed by the server");
                if agent.heartbeats_paused {
                    agent.heartbeats_paused = false;
                    agent.fence.resumed(Instant::now());
                    self.heartbeat(agent).await?;
                    ticker.reset();
                }
            }
            Some(Msg::Terminate(terminate)) => return Err(SessionEnd::Terminate(terminate.reason)),
            Some(Msg::FetchLogs(fetch)) => self.fetch_logs(agent, fetch),
            Some(Msg::FollowLogs(follow)) => self.follow_logs(agent, follow),
            Some(Msg::Exec(exec)) => self.exec(agent, exec),
            Some(Msg::Cancel(cancel)) => {
                if let Some(task) = self.requests.0.lock().remove(&cancel.request_id) {
                    debug!(request = cancel.request_id, "streamed request cancelled");
                    task.abort();
                }
            }
            None => warn!("ignoring an empty control message"),
        }
        Ok(())
    }

    /// Runs a streamed request in its own task, registered so that it can be cancelled.
    fn track(&self, id: u64, work: impl Future<Output = ()> + Send + 'static) {
        let requests = self.requests.0.clone();
        let mut table = self.requests.0.lock();
        let task = tokio::spawn(async move {
            work.await;
            requests.lock().remove(&id);
        });
        table.insert(id, task.abort_handle());
    }

    fn follow_logs(&self, agent: &Agent, follow: pb::FollowLogs) {
        let supervisor = agent.supervisor.clone();
        let tx = self.tx.clone();
        let id = follow.request_id;
        self.track(id, async move {
            let (sink, mut chunks) = mpsc::channel::<Vec<u8>>(16);
            let key = namespace::key(&follow.pod_namespace, &follow.pod_name);
            let reader = supervisor.follow_logs(&key, &follow.container, follow.tail_lines, sink);
            let forward = async {
                while let Some(content) = chunks.recv().await {
                    let chunk = pb::LogChunkReply {
                        request_id: id,
                        content,
                        ..Default::default()
                    };
                    if tx
                        .send(message(agent_message::Msg::LogChunk(chunk)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            };
            let (result, ()) = tokio::join!(reader, forward);
            let last = pb::LogChunkReply {
                request_id: id,
                done: true,
                error: result.err().unwrap_or_default(),
                ..Default::default()
            };
            let _ = tx.send(message(agent_message::Msg::LogChunk(last))).await;
        });
    }

    fn exec(&self, agent: &Agent, exec: pb::ExecCommand) {
        let supervisor = agent.supervisor.clone();
        let tx = self.tx.clone();
        let id = exec.request_id;
        self.track(id, async move {
            let reply = match supervisor
                .exec(
                    &namespace::key(&exec.pod_namespace, &exec.pod_name),
                    &exec.container,
                    &exec.command,
                )
                .await
            {
                Ok(out) => pb::ExecReply {
                    request_id: id,
                    stdout: out.stdout,
                    stderr: out.stderr,
                    exited: true,
                    exit_code: out.exit_code,
                    error: String::new(),
                },
                Err(error) => pb::ExecReply {
                    request_id: id,
                    error,
                    ..Default::default()
                },
            };
            let _ = tx.send(message(agent_message::Msg::Exec(reply))).await;
        });
    }

    fn fetch_logs(&self, agent: &Agent, fetch: pb::FetchLogs) {
        let supervisor = agent.supervisor.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let result = supervisor
                .fetch_logs(
                    &namespace::key(&fetch.pod_namespace, &fetch.pod_name),
                    &fetch.container,
                    fetch.tail_lines,
                    fetch.previous,
                )
                .await;
            let reply = match result {
                Ok(content) => pb::LogsReply {
                    request_id: fetch.request_id,
                    content,
                    error: String::new(),
                },
                Err(error) => {
                    debug!(pod = %fetch.pod_name, %error, "logs not available");
                    pb::LogsReply {
                        request_id: fetch.request_id,
                        content: Vec::new(),
                        error,
                    }
                }
            };
            let _ = tx.send(message(agent_message::Msg::Logs(reply))).await;
        });
    }

    /// Deregisters (giving the message up to a second to go out) while stopping every pod.
    async fn leave(self, agent: &Agent, inbound: Streaming<ControlMessage>, signal: &'static str) {
        info!(signal, "shutting down: deregistering and stopping pods");
        let reason = format!("agent received {signal}");
        let deregister = self.deregister(inbound, reason);
        tokio::join!(deregister, agent.supervisor.stop_all(DEFAULT_GRACE));
    }

    async fn deregister(self, inbound: Streaming<ControlMessage>, reason: String) {
        let deadline = Instant::now() + DEREGISTER_BUDGET;
        let msg = message(agent_message::Msg::Deregister(pb::Deregister { reason }));
        if tokio::time::timeout_at(deadline, self.tx.send(msg))
            .await
            .is_err()
        {
            warn!("failed to queue Deregister in time");
            return;
        }
        // The server may end the stream any way it likes once we said goodbye.
        let _ = close(self.tx, inbound, deadline).await;
        debug!("deregistered");
    }
}
