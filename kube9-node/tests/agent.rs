//! End-to-end tests of the real `kube9-node` binary against a scripted fake kube9d.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube9_proto::pb::{
    self, agent_message::Msg as Up, control_message::Msg as Down, ContainerState, PodPhase,
};
use nix::sys::signal::Signal;
use support::{
    eventually, process_exists, temp_dir, test_token, AgentProcess, Conn, FakeServer, TestPki,
};

fn pod(name: &str, uid: &str, containers: Vec<pb::Container>) -> pb::Pod {
    pb::Pod {
        name: name.into(),
        uid: uid.into(),
        containers,
        ..Default::default()
    }
}

fn standin_container() -> pb::Container {
    pb::Container {
        name: "web".into(),
        image: "nginx".into(),
        args: vec!["-p".into(), "80".into()],
        ..Default::default()
    }
}

fn sleep_container() -> pb::Container {
    pb::Container {
        name: "main".into(),
        image: "busybox".into(),
        command: vec!["sleep".into(), "100".into()],
        ..Default::default()
    }
}

async fn accept_register(conn: &mut Conn, heartbeat_ms: u64) -> pb::Register {
    let register = match conn.next().await {
        Up::Register(register) => register,
        other => panic!("expected Register first, got {other:?}"),
    };
    let registered = pb::Registered {
        node_name: register.node_name.clone(),
        heartbeat_interval_ms: heartbeat_ms,
        cluster_id: register.cluster_id.clone(),
        ..Default::default()
    };
    conn.send(Down::Registered(registered)).await;
    register
}

async fn status_of(
    conn: &mut Conn,
    pod: &str,
    pred: impl Fn(&pb::PodStatus) -> bool,
) -> pb::PodStatus {
    conn.next_matching(|msg| match msg {
        Up::PodStatus(status) if status.pod_name == pod && pred(&status) => Some(status),
        _ => None,
    })
    .await
}

async fn fetch_logs(conn: &mut Conn, request_id: u64, pod: &str, container: &str) -> pb::LogsReply {
    let fetch = pb::FetchLogs {
        request_id,
        pod_name: pod.into(),
        container: container.into(),
        tail_lines: 0,
        previous: false,
        pod_namespace: String::new(),
    };
    conn.send(Down::FetchLogs(fetch)).await;
    conn.next_matching(|msg| match msg {
        Up::Logs(reply) if reply.request_id == request_id => Some(reply),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn the_agent_registers_runs_pods_reconnects_and_deregisters_on_sigterm() {
    let mut server = FakeServer::start(None).await;
    let dir = temp_dir("e2e");
    // No scheme: the agent must add it. The server's interval (100 ms) overrides the flag.
    let address = server.addr.to_string();
    let mut agent = AgentProcess::start(
        &address,
        "e2e-node",
        &dir,
        &["--heartbeat-interval-ms", "60000"],
    );

    let mut conn = server.accept().await;
    // The join token rides every call as a bearer token, not in Register.
    assert_eq!(
        conn.authorization.as_deref(),
        Some(format!("Bearer {}", support::test_token()).as_str())
    );
    let register = accept_register(&mut conn, 100).await;
    assert_eq!(register.node_name, "e2e-node");
    assert_eq!(register.cluster_id, "test-cluster");
    assert_eq!(register.cpu_capacity_millis, 4000);
    assert!(!register.instance_id.is_empty());
    let instance_id = register.instance_id.clone();
    assert!(register.pods.is_empty());
    let first = conn
        .next_matching(|m| {
            if let Up::Heartbeat(h) = m {
                Some(h)
            } else {
                None
            }
        })
        .await;
    let second = conn
        .next_matching(|m| {
            if let Up::Heartbeat(h) = m {
                Some(h)
            } else {
                None
            }
        })
        .await;
    assert!(second.seq > first.seq);
    assert_eq!(first.components.len(), 4);

    // Component health sticks and shows up right away.
    let set = pb::SetComponentHealth {
        component: "kubelet".into(),
        healthy: false,
        message: "injected".into(),
    };
    conn.send(Down::SetComponent(set)).await;
    conn.next_matching(|m| match m {
        Up::Heartbeat(h)
            if h.components
                .iter()
                .any(|c| c.name == "kubelet" && !c.healthy) =>
        {
            Some(())
        }
        _ => None,
    })
    .await;

    // A container without a command runs the stand-in, whose output reaches FetchLogs.
    conn.send(Down::RunPod(pb::RunPod {
        pod: Some(pod("web", "uid-1", vec![standin_container()])),
    }))
    .await;
    let running = status_of(&mut conn, "web", |s| s.phase() == PodPhase::Running).await;
    let standin_pid = running.containers[0].pid;
    assert_eq!(running.containers[0].state(), ContainerState::Running);
    assert!(process_exists(standin_pid));
    let mut request_id = 0;
    let deadline = Instant::now() + support::DEADLINE;
    loop {
        request_id += 1;
        let reply = fetch_logs(&mut conn, request_id, "web", "").await;
        assert_eq!(reply.error, "");
        let text = String::from_utf8_lossy(&reply.content);
        if text.contains("kube9 stand-in for image nginx started with args: -p 80") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stand-in never logged its start: {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reply = fetch_logs(&mut conn, 1000, "nope", "").await;
    assert!(reply.error.contains("nope"), "{}", reply.error);

    // DeletePod stops the stand-in gracefully (SIGTERM) and reports the pod deleted.
    let delete = pb::DeletePod {
        pod_name: "web".into(),
        pod_uid: "uid-1".into(),
        grace_period_ms: 3000,
        pod_namespace: String::new(),
    };
    conn.send(Down::DeletePod(delete)).await;
    let deleted = status_of(&mut conn, "web", |s| s.deleted).await;
    assert_eq!(deleted.pod_uid, "uid-1");
    eventually("the stand-in to exit", || !process_exists(standin_pid)).await;
    let reply = fetch_logs(&mut conn, 1001, "web", "web").await;
    assert!(
        String::from_utf8_lossy(&reply.content).contains("kube9 stand-in for image nginx stopping")
    );

    // Heartbeats can be paused and resumed without touching the rest.
    conn.send(Down::RunPod(pb::RunPod {
        pod: Some(pod("sleeper", "uid-2", vec![sleep_container()])),
    }))
    .await;
    let sleeper = status_of(&mut conn, "sleeper", |s| s.phase() == PodPhase::Running).await;
    let sleeper_pid = sleeper.containers[0].pid;
    conn.send(Down::StopHeartbeats(pb::StopHeartbeats {})).await;
    let _ = conn.heartbeat_within(Duration::from_millis(150)).await; // one may be in flight
    assert!(
        !conn.heartbeat_within(Duration::from_millis(500)).await,
        "heartbeats kept coming"
    );
    conn.send(Down::ResumeHeartbeats(pb::ResumeHeartbeats {}))
        .await;
    assert!(conn.heartbeat_within(Duration::from_secs(2)).await);

    // The server hangs up: the agent reconnects and resyncs what it runs.
    conn.hang_up();
    let mut conn = server.accept().await;
    let register = accept_register(&mut conn, 100).await;
    assert_eq!(
        register.instance_id, instance_id,
        "a reconnect keeps the instance id"
    );
    let pods: Vec<_> = register
        .pods
        .iter()
        .map(|p| (p.pod_name.as_str(), p.phase()))
        .collect();
    assert_eq!(pods, [("sleeper", PodPhase::Running)]);
    conn.next_matching(|m| {
        if let Up::Heartbeat(h) = m {
            Some(h)
        } else {
            None
        }
    })
    .await;

    // SIGTERM: Deregister goes out, pods are stopped, exit 0, all within a few seconds.
    let started = Instant::now();
    agent.signal(Signal::SIGTERM);
    let reason = conn
        .next_matching(|m| {
            if let Up::Deregister(d) = m {
                Some(d.reason)
            } else {
                None
            }
        })
        .await;
    assert_eq!(reason, "agent received SIGTERM");
    assert_eq!(agent.exit_code(Duration::from_secs(5)).await, Some(0));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!process_exists(sleeper_pid));
}

#[tokio::test]
async fn terminate_stops_the_pods_and_exits_zero() {
    let mut server = FakeServer::start(None).await;
    let dir = temp_dir("terminate");
    let mut agent = AgentProcess::start(&format!("http://{}", server.addr), "t-node", &dir, &[]);
    let mut conn = server.accept().await;
    accept_register(&mut conn, 0).await;
    conn.send(Down::RunPod(pb::RunPod {
        pod: Some(pod("s", "u", vec![sleep_container()])),
    }))
    .await;
    let running = status_of(&mut conn, "s", |s| s.phase() == PodPhase::Running).await;
    conn.send(Down::Terminate(pb::Terminate {
        reason: "node deleted".into(),
    }))
    .await;
    assert_eq!(agent.exit_code(Duration::from_secs(5)).await, Some(0));
    assert!(!process_exists(running.containers[0].pid));
}

#[tokio::test]
async fn a_node_refused_while_another_agent_holds_it_keeps_retrying() {
    let server = FakeServer::start(Some(tonic::Code::FailedPrecondition)).await;
    let dir = temp_dir("refused");
    let mut agent = AgentProcess::start(&server.addr.to_string(), "r-node", &dir, &[]);
    eventually("a second attach attempt", || server.attempts() >= 2).await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(Duration::from_secs(5)).await, Some(0));
}

/// An agent whose every attach kube9d refuses with `code` logs why, as an error naming
/// `hint`, and keeps trying (it neither exits nor stops presenting its token); once kube9d
/// takes it, it registers.
async fn refused_for_its_credentials_keeps_retrying(code: tonic::Code, tag: &str, hint: &str) {
    let mut server = FakeServer::start(Some(code)).await;
    let dir = temp_dir(tag);
    let mut agent = AgentProcess::start(&server.addr.to_string(), tag, &dir, &[]);
    eventually("a second refused attach", || server.attempts() >= 2).await;
    let said = "kube9d refused this agent: refused by the fake kube9d; check";
    eventually("the refusal to be logged", || {
        agent.log_lines_with(&["ERROR", said, hint]) >= 1
    })
    .await;
    assert!(
        agent.child.try_wait().unwrap().is_none(),
        "the agent exited"
    );
    let bearer = format!("Bearer {}", test_token());
    assert!(server
        .authorizations()
        .iter()
        .all(|a| a.as_deref() == Some(bearer.as_str())));
    // The token is made (or fixed) meanwhile: the next attempt gets in.
    server.accept_all();
    let mut conn = server.accept().await;
    assert_eq!(accept_register(&mut conn, 0).await.node_name, tag);
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(Duration::from_secs(5)).await, Some(0));
}

#[tokio::test]
async fn an_agent_whose_token_kube9d_does_not_know_says_so_and_keeps_retrying() {
    let code = tonic::Code::Unauthenticated;
    refused_for_its_credentials_keeps_retrying(code, "unauth-node", "--token-file").await;
}

#[tokio::test]
async fn an_agent_kube9d_denies_says_so_and_keeps_retrying() {
    // PermissionDenied: a token without the node role, or another cluster id.
    let code = tonic::Code::PermissionDenied;
    refused_for_its_credentials_keeps_retrying(code, "denied-node", "--cluster-id").await;
}

#[tokio::test]
async fn the_agent_presents_the_token_of_its_token_file_as_a_bearer_token() {
    let mut server = FakeServer::start(None).await;
    let dir = temp_dir("token-file");
    let token = kube9_proto::client::Token::generate();
    let file = dir.join("join-token");
    std::fs::write(&file, format!("  {token}\n")).unwrap();
    let args = ["--insecure", "--token-file", file.to_str().unwrap()];
    let mut agent = AgentProcess::spawn(&server.addr.to_string(), "tf-node", &dir, &args);
    let mut conn = server.accept().await;
    let bearer = format!("Bearer {token}");
    assert_eq!(conn.authorization.as_deref(), Some(bearer.as_str()));
    // The token rides the call's metadata only; Register's field stays empty.
    assert!(accept_register(&mut conn, 0).await.token.is_empty());
    assert!(!agent.logged(&token.secret), "the log shows the secret");
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(Duration::from_secs(5)).await, Some(0));
}

#[tokio::test]
async fn an_agent_pinning_the_ca_by_hash_fetches_it_once_and_attaches_over_tls() {
    let pki = TestPki::new();
    let mut server = FakeServer::start_tls(None, &pki).await;
    let dir = temp_dir("pinned");
    // No scheme: TLS is the default.
    let args = ["--token", test_token(), "--ca-cert-hash", &pki.ca_hash];
    let mut agent = AgentProcess::spawn(&server.addr.to_string(), "pin-node", &dir, &args);
    let mut conn = server.accept().await;
    let bearer = format!("Bearer {}", test_token());
    assert_eq!(conn.authorization.as_deref(), Some(bearer.as_str()));
    assert!(accept_register(&mut conn, 0).await.token.is_empty());
    // Reconnecting uses the CA it has.
    conn.hang_up();
    let mut conn = server.accept().await;
    accept_register(&mut conn, 0).await;
    assert_eq!(agent.log_lines_with(&["fetched kube9d's CA"]), 1);
    assert!(!agent.logged("unencrypted"));
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(Duration::from_secs(5)).await, Some(0));
}

#[tokio::test]
async fn an_agent_given_the_ca_file_attaches_over_tls() {
    let pki = TestPki::new();
    let mut server = FakeServer::start_tls(None, &pki).await;
    let dir = temp_dir("ca-file");
    let ca = pki.ca_file(&dir);
    let args = ["--token", test_token(), "--ca-file", ca.to_str().unwrap()];
    let mut agent = AgentProcess::spawn(&server.https_url(), "ca-node", &dir, &args);
    let mut conn = server.accept().await;
    assert!(conn.authorization.is_some());
    accept_register(&mut conn, 0).await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(Duration::from_secs(5)).await, Some(0));
}

#[tokio::test]
async fn a_kube9d_without_the_pinned_ca_gets_no_token_and_an_error_each_attempt() {
    let server = FakeServer::start_tls(None, &TestPki::new()).await;
    let dir = temp_dir("wrong-pin");
    let other = TestPki::new();
    let args = ["--token", test_token(), "--ca-cert-hash", &other.ca_hash];
    let mut agent = AgentProcess::spawn(&server.https_url(), "wp-node", &dir, &args);
    eventually("two refusals of the CA, logged as errors", || {
        agent.log_lines_with(&[
            "ERROR",
            "no certificate matching the CA hash",
            "--ca-cert-hash",
        ]) >= 2
    })
    .await;
    // Nothing was sent to a server that could not prove it is kube9d.
    assert_eq!(server.attempts(), 0);
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(Duration::from_secs(5)).await, Some(0));
}

#[tokio::test]
async fn a_kube9d_the_ca_file_does_not_vouch_for_gets_no_token_and_the_cause_is_logged() {
    let server = FakeServer::start_tls(None, &TestPki::new()).await;
    let dir = temp_dir("wrong-ca");
    let ca = TestPki::new().ca_file(&dir);
    let args = ["--token", test_token(), "--ca-file", ca.to_str().unwrap()];
    let mut agent = AgentProcess::spawn(&server.https_url(), "wc-node", &dir, &args);
    let cause = ["WARN", "agent stream lost", "invalid peer certificate"];
    let hint = "not signed by the --ca-file CA";
    eventually("the TLS failure, its cause and a hint to be logged", || {
        agent.log_lines_with(&[&cause[..], &[hint]].concat()) >= 1
    })
    .await;
    assert_eq!(server.attempts(), 0);
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(Duration::from_secs(5)).await, Some(0));
}

/// The next message must be `Deregister`; returns its reason.
async fn deregister_reason(conn: &mut Conn) -> String {
    match conn.next().await {
        Up::Deregister(deregister) => deregister.reason,
        other => panic!("expected Deregister right after Register, got {other:?}"),
    }
}

#[tokio::test]
async fn sigterm_while_refused_still_registers_and_deregisters_on_a_fresh_stream() {
    // Refused as if another agent held the node: the agent backs off for 1.5 to 2 s.
    let mut server = FakeServer::start(Some(tonic::Code::FailedPrecondition)).await;
    let dir = temp_dir("farewell");
    let mut agent = AgentProcess::start(&server.addr.to_string(), "f-node", &dir, &[]);
    eventually("a refused attach", || server.attempts() >= 1).await;
    eventually("the refusal to be logged", || {
        agent.logged("another agent is attached as node f-node")
    })
    .await;
    server.accept_all();
    let started = Instant::now();
    agent.signal(Signal::SIGTERM);
    let mut conn = server.accept().await;
    let register = match conn.next().await {
        Up::Register(register) => register,
        other => panic!("expected Register first, got {other:?}"),
    };
    assert_eq!(register.node_name, "f-node");
    assert!(!register.instance_id.is_empty());
    assert_eq!(deregister_reason(&mut conn).await, "agent received SIGTERM");
    assert_eq!(agent.exit_code(Duration::from_secs(5)).await, Some(0));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(server.attempts(), 2, "one refused attach, one farewell");
}

#[tokio::test]
async fn sigterm_while_registering_sends_the_running_pods_then_deregister() {
    let mut server = FakeServer::start(None).await;
    let dir = temp_dir("registering");
    let mut agent = AgentProcess::start(&server.addr.to_string(), "g-node", &dir, &[]);
    // Registered, given a pod, then dropped; the next Register gets no answer.
    let mut conn = server.accept().await;
    accept_register(&mut conn, 0).await;
    conn.send(Down::RunPod(pb::RunPod {
        pod: Some(pod("s", "u", vec![sleep_container()])),
    }))
    .await;
    let running = status_of(&mut conn, "s", |s| s.phase() == PodPhase::Running).await;
    conn.hang_up();
    let mut unanswered = server.accept().await;
    assert!(matches!(unanswered.next().await, Up::Register(_)));

    agent.signal(Signal::SIGTERM);
    let mut conn = server.accept().await;
    let register = match conn.next().await {
        Up::Register(register) => register,
        other => panic!("expected Register first, got {other:?}"),
    };
    let pods: Vec<_> = register
        .pods
        .iter()
        .map(|p| (p.pod_name.as_str(), p.phase()))
        .collect();
    assert_eq!(pods, [("s", PodPhase::Running)]);
    assert_eq!(deregister_reason(&mut conn).await, "agent received SIGTERM");
    assert_eq!(agent.exit_code(Duration::from_secs(5)).await, Some(0));
    assert!(!process_exists(running.containers[0].pid));
}

#[tokio::test]
async fn sigterm_with_kube9d_unreachable_exits_zero_within_five_seconds() {
    // A listener that never accepts: connections hang instead of failing fast.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let dir = temp_dir("unreachable");
    let mut agent = AgentProcess::start(&address, "u-node", &dir, &[]);
    eventually("the agent to start", || agent.logged("node agent starting")).await;
    let started = Instant::now();
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(Duration::from_secs(5)).await, Some(0));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(agent.logged("failed to deregister"));
    drop(listener);
}

#[tokio::test]
async fn the_standin_prints_its_start_line_and_exits_zero_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube9-node"))
        .args(["standin", "--image", "redis", "--", "--port", "6379"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(
        line,
        "kube9 stand-in for image redis started with args: --port 6379\n"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        Signal::SIGTERM,
    )
    .unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "kube9 stand-in for image redis stopping\n");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// Answers like kube9d does: a heartbeat is acknowledged.
async fn acknowledge(conn: &Conn, msg: &Up) {
    if let Up::Heartbeat(heartbeat) = msg {
        let ack = pb::HeartbeatAck { seq: heartbeat.seq };
        conn.send(Down::HeartbeatAck(ack)).await;
    }
}

/// Acknowledges every heartbeat until `pick` returns something for a message.
async fn acking_until<T>(conn: &mut Conn, mut pick: impl FnMut(&Up) -> Option<T>) -> T {
    let deadline = Instant::now() + support::DEADLINE;
    while Instant::now() < deadline {
        let msg = conn.next().await;
        acknowledge(conn, &msg).await;
        if let Some(found) = pick(&msg) {
            return found;
        }
    }
    panic!("nothing matching within {:?}", support::DEADLINE);
}

/// The fence time kube9d gives in the fencing tests; the pods get half of it (at most 2 s) to
/// stop, before it ends.
const FENCE: Duration = Duration::from_millis(3000);

/// An agent registered with kube9d's fence time [`FENCE`] (its own, 60 s, gives way), running
/// pod `s`, its heartbeats acknowledged for twice the fence time, without fencing. Returns the
/// pod's pid.
async fn fencing_agent_with_a_pod(
    server: &mut FakeServer,
    dir: &Path,
) -> (AgentProcess, Conn, i32) {
    let agent = AgentProcess::start(&server.addr.to_string(), "fence-node", dir, &[]);
    let mut conn = server.accept().await;
    let register = match conn.next().await {
        Up::Register(register) => register,
        other => panic!("expected Register first, got {other:?}"),
    };
    let registered = pb::Registered {
        node_name: register.node_name,
        heartbeat_interval_ms: 100,
        fence_ms: FENCE.as_millis() as u64,
        ..Default::default()
    };
    conn.send(Down::Registered(registered)).await;
    conn.send(Down::RunPod(pb::RunPod {
        pod: Some(pod("s", "u", vec![sleep_container()])),
    }))
    .await;
    let pid = acking_until(&mut conn, |msg| match msg {
        Up::PodStatus(s) if s.phase() == PodPhase::Running => Some(s.containers[0].pid),
        _ => None,
    })
    .await;
    // Acknowledged heartbeats are contact: for longer than the fence time, nothing happens.
    let until = Instant::now() + FENCE * 2;
    acking_until(&mut conn, |_| (Instant::now() > until).then_some(())).await;
    assert!(process_exists(pid));
    assert!(!agent.logged("fenced"));
    (agent, conn, pid)
}

/// Contact was lost at `lost`: the pod still runs a little later, and is gone by the fence
/// time (give or take a generous margin), with the agent saying why.
async fn assert_fenced(agent: &AgentProcess, pid: i32, lost: Instant) {
    tokio::time::sleep_until((lost + Duration::from_millis(300)).into()).await;
    assert!(
        process_exists(pid),
        "the pod was stopped long before the fence time"
    );
    let gone_by = lost + FENCE + Duration::from_secs(10);
    while process_exists(pid) {
        assert!(
            Instant::now() < gone_by,
            "the pod still runs {:?} after contact was lost",
            lost.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(agent.logged("fenced: no contact with kube9d for"));
}

/// The agent keeps trying; once kube9d answers, it registers without the pod. (Streams it
/// opened before it fenced carry a Register with the pod; it gave up on them.)
async fn assert_registers_without_pods(server: &mut FakeServer) {
    let deadline = Instant::now() + support::DEADLINE;
    loop {
        let mut conn = server.accept().await;
        match conn.next().await {
            Up::Register(register) if register.pods.is_empty() => return,
            Up::Register(_) => {}
            other => panic!("expected Register first, got {other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "the agent never registered without its pod"
        );
    }
}

#[tokio::test]
async fn an_agent_cut_off_from_kube9d_for_its_fence_time_stops_its_pods_and_not_before() {
    let mut server = FakeServer::start(None).await;
    let dir = temp_dir("fence");
    let (agent, conn, pid) = fencing_agent_with_a_pod(&mut server, &dir).await;
    // kube9d goes away: the stream ends, and the new ones get no answer.
    conn.hang_up();
    assert_fenced(&agent, pid, Instant::now()).await;
    assert_registers_without_pods(&mut server).await;
}

#[tokio::test]
async fn a_stream_on_which_nothing_is_acknowledged_is_taken_for_dead_and_the_agent_fences() {
    let mut server = FakeServer::start(None).await;
    let dir = temp_dir("half-open");
    let (agent, conn, pid) = fencing_agent_with_a_pod(&mut server, &dir).await;
    // The stream stays open, and heartbeats go unanswered (a half-open connection).
    assert_fenced(&agent, pid, Instant::now()).await;
    drop(conn);
    assert!(agent.logged("kube9d acknowledged no heartbeat in time"));
    assert_registers_without_pods(&mut server).await;
}

#[tokio::test]
async fn an_agent_speaking_the_other_protocol_is_told_which_flags_to_change() {
    // Plain text to a kube9d serving TLS.
    let pki = TestPki::new();
    let tls = FakeServer::start_tls(None, &pki).await;
    let dir = temp_dir("plain-to-tls");
    let plain_agent = AgentProcess::start(&format!("http://{}", tls.addr), "pt-node", &dir, &[]);
    // TLS to a kube9d started with --insecure.
    let plain = FakeServer::start(None).await;
    let dir = temp_dir("tls-to-plain");
    let ca = pki.ca_file(&dir);
    let args = ["--token", test_token(), "--ca-file", ca.to_str().unwrap()];
    let tls_agent = AgentProcess::spawn(&plain.https_url(), "tp-node", &dir, &args);
    eventually("both hints", || {
        plain_agent.log_lines_with(&["WARN", "it serves TLS unless started with --insecure"]) >= 1
            && tls_agent.log_lines_with(&["WARN", "kube9d does not speak TLS"]) >= 1
    })
    .await;
    assert_eq!(tls.attempts() + plain.attempts(), 0);
}

/// The agent's stderr and exit status when it is started with `args` (and `envs`) and must
/// refuse them.
fn refused_start(args: &[&str], envs: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kube9-node"))
        .args([
            "--name",
            "cfg-node",
            "--state-dir",
            "/tmp/kube9-node-cfg-unused",
        ])
        .args(args)
        .env_remove("KUBE9_SERVER")
        .env_remove("KUBE9_TOKEN")
        .env_remove("KUBE9_TOKEN_FILE")
        .env_remove("KUBE9_INSECURE")
        .env_remove("KUBE9_CA_FILE")
        .env_remove("KUBE9_CA_CERT_HASH")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts the agent with `args` and `envs`; it must exit 1 at once, saying `sentence`.
fn assert_refused(args: &[&str], envs: &[(&str, &str)], sentence: &str) -> String {
    let (status, err) = refused_start(args, envs);
    assert_eq!(status.code(), Some(1), "{args:?}: {err}");
    assert!(err.contains(sentence), "{args:?}: {err}");
    err
}

#[test]
fn the_agent_refuses_settings_that_would_talk_plain_text_or_trust_anyone() {
    let plain = "kube9d serves TLS by default; plain text needs --insecure";
    assert_refused(&["--server", "http://127.0.0.1:9"], &[], plain);
    assert_refused(&[], &[("KUBE9_SERVER", "http://127.0.0.1:9")], plain);
    let no_ca =
        "give --ca-cert-hash (kube9ctl token join-command prints the whole line) or --ca-file";
    assert_refused(&["--server", "127.0.0.1:9"], &[], no_ca);
    assert_refused(&["--server", "https://127.0.0.1:9"], &[], no_ca);
    let https = ["--server", "https://127.0.0.1:9"];
    assert_refused(
        &[&https[..], &["--insecure"]].concat(),
        &[],
        "drop --insecure",
    );
    // The variable takes the usual spellings of true.
    assert_refused(&https, &[("KUBE9_INSECURE", "1")], "drop --insecure");
    let pin = format!("sha256:{}", "0".repeat(64));
    let ca = TestPki::new();
    let dir = temp_dir("cfg-ca");
    let ca_file = ca.ca_file(&dir);
    let both = [
        "--ca-file",
        ca_file.to_str().unwrap(),
        "--ca-cert-hash",
        &pin,
    ];
    assert_refused(&both, &[], "not the --ca-cert-hash given");
}

#[test]
fn a_malformed_token_is_refused_without_showing_it() {
    let secret = "0123456789abcdef-not-hex";
    let token = format!("abcdef.{secret}");
    let insecure = ["--insecure", "--server", "http://127.0.0.1:9"];
    let err = assert_refused(
        &[&insecure[..], &["--token", &token]].concat(),
        &[],
        "--token",
    );
    assert!(err.contains("malformed") && !err.contains(secret), "{err}");
    let err = assert_refused(&insecure, &[("KUBE9_TOKEN", &token)], "malformed");
    assert!(!err.contains(secret), "{err}");
    let dir = temp_dir("cfg-token");
    let file = dir.join("join-token");
    std::fs::write(&file, &token).unwrap();
    let with_file = [&insecure[..], &["--token-file", file.to_str().unwrap()]].concat();
    let err = assert_refused(&with_file, &[], "--token-file");
    assert!(err.contains("malformed") && !err.contains(secret), "{err}");
    std::fs::remove_file(&file).unwrap();
    assert_refused(&with_file, &[], "failed to read --token-file");
    let both = [&with_file[..], &["--token", &token]].concat();
    assert_refused(&both, &[], "--token or --token-file, not both");
}

/// `/dev/full`: every write fails with ENOSPC, as stderr does on a full disk.
fn full_device() -> Stdio {
    std::fs::File::options()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full")
        .into()
}

/// The next heartbeat, acknowledged as kube9d does (so the agent never fences).
async fn acked_heartbeat(conn: &mut Conn) -> u64 {
    acking_until(conn, |m| match m {
        Up::Heartbeat(h) => Some(h.seq),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn an_agent_whose_log_cannot_be_written_keeps_registering_heartbeating_and_running_pods() {
    let mut server = FakeServer::start(None).await;
    let dir = temp_dir("full-stderr");
    let address = format!("http://{}", server.addr);
    let mut agent =
        AgentProcess::start_with_stderr(&address, "full-node", &dir, &[], full_device());
    let mut conn = server.accept().await;
    let register = accept_register(&mut conn, 100).await;
    assert_eq!(register.node_name, "full-node");

    // Every one of these logs lines (at debug) that cannot be written.
    conn.send(Down::RunPod(pb::RunPod {
        pod: Some(pod("chatty", "uid-chatty", vec![standin_container()])),
    }))
    .await;
    status_of(&mut conn, "chatty", |s| s.phase() == PodPhase::Running).await;
    let first = acked_heartbeat(&mut conn).await;
    let until = Instant::now() + Duration::from_secs(4);
    let mut last = first;
    while Instant::now() < until {
        last = acked_heartbeat(&mut conn).await;
    }
    assert!(
        last >= first + 20,
        "heartbeats every 100 ms for 4 s, got seq {first}..{last}"
    );
    assert!(
        agent.child.try_wait().unwrap().is_none(),
        "the agent exited: {:?}",
        agent.child.try_wait()
    );
    let reply = fetch_logs(&mut conn, 1, "chatty", "").await;
    assert_eq!(reply.error, "");
    assert!(String::from_utf8_lossy(&reply.content).contains("kube9 stand-in for image nginx"));

    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(Duration::from_secs(5)).await, Some(0));
}

/// The numbers of `line-N` lines in `text`, in order.
fn line_numbers(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.strip_prefix("line-")?.parse().ok())
        .collect()
}

#[tokio::test]
async fn pod_logs_are_capped_and_rotated_and_following_goes_on_across_rotations() {
    let mut server = FakeServer::start(None).await;
    let dir = temp_dir("rotate");
    let address = format!("http://{}", server.addr);
    let flags = ["--container-log-max-size", "1Ki"];
    let _agent = AgentProcess::start(&address, "rotate-node", &dir, &flags);
    let mut conn = server.accept().await;
    accept_register(&mut conn, 1000).await;
    let script = "i=0; while :; do echo line-$i; i=$((i+1)); sleep 0.005; done";
    let counter = pb::Container {
        name: "count".into(),
        image: "busybox".into(),
        command: vec!["sh".into(), "-c".into(), script.into()],
        ..Default::default()
    };
    conn.send(Down::RunPod(pb::RunPod {
        pod: Some(pod("counter", "uid-counter", vec![counter])),
    }))
    .await;
    status_of(&mut conn, "counter", |s| s.phase() == PodPhase::Running).await;

    let follow = pb::FollowLogs {
        request_id: 7,
        pod_name: "counter".into(),
        ..Default::default()
    };
    conn.send(Down::FollowLogs(follow)).await;
    // Ten lines are 70-80 bytes: 1 KiB rotates every dozen or so lines.
    let mut followed = String::new();
    while line_numbers(&followed).len() < 400 {
        let chunk = conn
            .next_matching(|m| match m {
                Up::LogChunk(c) if c.request_id == 7 => Some(c),
                _ => None,
            })
            .await;
        assert!(!chunk.done, "following ended: {}", chunk.error);
        followed.push_str(&String::from_utf8_lossy(&chunk.content));
    }
    let numbers = line_numbers(&followed);
    let gaps: Vec<(u64, u64)> = numbers
        .windows(2)
        .filter(|w| w[1] != w[0] + 1)
        .map(|w| (w[0], w[1]))
        .collect();
    assert_eq!(gaps, [], "every line once, in order, across rotations");

    let log = dir.join("state/pods/default/counter/count.log");
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let rotated = dir.join("state/pods/default/counter/count.log.1");
    assert!(size(&log) <= 1024 && size(&rotated) <= 1024);
    assert!(size(&rotated) > 0, "rotated at least once");
    assert!(!dir.join("state/pods/default/counter/count.log.2").exists());
    let reply = fetch_logs(&mut conn, 8, "counter", "").await;
    let fetched = line_numbers(&String::from_utf8_lossy(&reply.content));
    assert!(
        fetched.last().unwrap() >= numbers.last().unwrap(),
        "FetchLogs shows the newest lines"
    );
    assert!(fetched.len() > 10, "{fetched:?}");
}
