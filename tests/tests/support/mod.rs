//! Shared end-to-end test support: start the real `kube9d` (and through it real agents, as
//! processes or Docker containers) on an ephemeral port with its own data directory and cluster
//! id, drive it with the gRPC client or the real `kube9ctl`, and remove everything it made.
#![allow(dead_code)]

pub mod webdriver;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kube9_proto::client::{AuthChannel, Bearer, ClientConfig};
use kube9_proto::pb::{self, cluster_service_client::ClusterServiceClient};
use tokio::time::Instant;
use tonic::transport::Channel;

pub type Client = ClusterServiceClient<AuthChannel>;

/// Variables of the person running the tests that would steer kube9ctl or agents elsewhere.
pub const CLIENT_VARS: &[&str] = &[
    "KUBE9_SERVER",
    "KUBE9_TOKEN",
    "KUBE9_TOKEN_FILE",
    "KUBE9_CA_FILE",
    "KUBE9_CA_CERT_HASH",
    "KUBE9_INSECURE",
    "KUBE9_NAMESPACE",
    "KUBE9_CONTEXT",
];

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A built binary of the workspace (`cargo build --workspace --bins` puts them beside `deps/`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test does)",
        path.display()
    );
    path
}

/// Which runtime the cluster under test uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Process,
    Docker,
}

/// Options for [`TestCluster::start`].
#[derive(Clone, Debug)]
pub struct Options {
    pub runtime: Runtime,
    pub extra_args: Vec<String>,
}

impl Options {
    /// Process nodes, with the default timings.
    pub fn process() -> Self {
        Options {
            runtime: Runtime::Process,
            extra_args: vec![],
        }
    }

    /// Docker nodes, with the default timings.
    pub fn docker() -> Self {
        Options {
            runtime: Runtime::Docker,
            extra_args: vec![],
        }
    }

    pub fn of(runtime: Runtime) -> Self {
        Options {
            runtime,
            extra_args: vec![],
        }
    }

    pub fn arg(mut self, a: &str) -> Self {
        self.extra_args.push(a.to_string());
        self
    }
}

/// A running kube9d with its own data directory, cluster id and (for Docker) network.
pub struct TestCluster {
    pub id: String,
    /// kube9d's `--cluster-id`: `id`, unless the cluster runs on a store made elsewhere.
    pub cluster_id: String,
    pub data_dir: PathBuf,
    pub port: u16,
    pub server: String,
    pub opts: Options,
    child: Option<Child>,
}

impl TestCluster {
    /// Starts kube9d and waits until it serves.
    pub async fn start(opts: Options) -> TestCluster {
        Self::start_with_store(opts, Path::new(""), "").await
    }

    /// Starts kube9d on a copy of the store directory `store` (an empty path: a new store),
    /// made by a cluster whose id was `cluster_id` (empty: this cluster's own id).
    pub async fn start_with_store(opts: Options, store: &Path, cluster_id: &str) -> TestCluster {
        ensure_test_image().await;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("k9t{}x{}x{}", std::process::id(), n, rand_suffix());
        let data_dir = std::env::temp_dir().join(format!("kube9-e2e-{id}"));
        std::fs::create_dir_all(&data_dir).unwrap();
        if !store.as_os_str().is_empty() {
            copy_dir(store, &data_dir.join("store"));
            // sled keeps large values in blobs/, empty here (git keeps no empty directory).
            std::fs::create_dir_all(data_dir.join("store").join("blobs")).unwrap();
        }
        let mut c = TestCluster {
            cluster_id: if cluster_id.is_empty() {
                id.clone()
            } else {
                cluster_id.to_string()
            },
            id,
            data_dir,
            port: 0,
            server: String::new(),
            opts,
            child: None,
        };
        c.spawn().await;
        c
    }

    async fn spawn(&mut self) {
        let port_file = self.data_dir.join("kube9d.port");
        let _ = std::fs::remove_file(&port_file);
        // Docker nodes dial the cluster network's gateway. A restart keeps the port: the
        // running agents dial it to reattach.
        let host = match self.opts.runtime {
            Runtime::Process => "127.0.0.1",
            Runtime::Docker => "0.0.0.0",
        };
        let listen = format!("{host}:{}", self.port);
        let runtime = match self.opts.runtime {
            Runtime::Process => "process",
            Runtime::Docker => "docker",
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.join("kube9d.log"))
            .unwrap();
        let mut cmd = Command::new(bin("kube9d"));
        // The dashboard's default port is one for the whole machine: only a test that asks for
        // a dashboard (on its own port) gets one.
        if !(self.opts.extra_args.iter()).any(|a| a.starts_with("--dashboard-listen")) {
            cmd.arg("--no-dashboard");
        }
        cmd.args([
            "--listen",
            &listen,
            "--runtime",
            runtime,
            "--cluster-id",
            &self.cluster_id,
        ])
        .arg("--data-dir")
        .arg(&self.data_dir)
        .args(&self.opts.extra_args)
        .env("KUBE9_CONFIG", self.config_path())
        .env(
            "RUST_LOG",
            "info,kube9d=debug,h2=warn,hyper=warn,tower=warn",
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
        let child = cmd.spawn().expect("failed to start kube9d");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(s) = std::fs::read_to_string(&port_file) {
                if let Ok(port) = s.trim().parse::<u16>() {
                    self.port = port;
                    break;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("kube9d exited early ({status}):\n{}", self.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "kube9d did not start:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let insecure = self.opts.extra_args.iter().any(|a| a == "--insecure");
        let scheme = if insecure { "http" } else { "https" };
        self.server = format!("{scheme}://127.0.0.1:{}", self.port);
    }

    /// The client config kube9d writes its context into (`KUBE9_CONFIG` of this cluster's
    /// kube9d and kube9ctl).
    pub fn config_path(&self) -> PathBuf {
        self.data_dir.join("client-config")
    }

    /// The cluster CA's PEM.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.ca_file()).expect("the cluster CA")
    }

    pub fn ca_file(&self) -> PathBuf {
        self.data_dir.join("tls").join("ca.crt")
    }

    /// The dashboard's URL (a cluster started with `--dashboard-listen 127.0.0.1:0`).
    pub fn dashboard_url(&self) -> String {
        let port = std::fs::read_to_string(self.data_dir.join("dashboard.port"))
            .expect("kube9d wrote dashboard.port: start it with --dashboard-listen");
        format!("http://127.0.0.1:{}/", port.trim())
    }

    pub fn join_token_file(&self) -> PathBuf {
        self.data_dir.join("join-token")
    }

    /// The admin token kube9d wrote into the client config.
    pub fn admin_token(&self) -> String {
        let config = ClientConfig::load(&self.config_path())
            .unwrap()
            .expect("kube9d wrote the client config");
        config
            .resolve(Some(&self.cluster_id))
            .expect("kube9d's context")
            .token
            .expect("an admin token")
    }

    /// A channel to kube9d (TLS verified with the cluster CA unless it runs `--insecure`),
    /// carrying no token.
    pub async fn channel(&self) -> Channel {
        let ca = if self.server.starts_with("https") {
            Some(self.ca_pem())
        } else {
            None
        };
        kube9_proto::client::tls::endpoint(&self.server, ca.as_deref())
            .expect("endpoint")
            .connect()
            .await
            .expect("connect to kube9d")
    }

    /// A gRPC client for `ClusterService` with the admin token.
    pub async fn client(&self) -> Client {
        let token = self.admin_token();
        self.client_with_token(Some(&token)).await
    }

    /// A gRPC client for `ClusterService` presenting `token` (none: no credentials).
    pub async fn client_with_token(&self, token: Option<&str>) -> Client {
        ClusterServiceClient::with_interceptor(self.channel().await, Bearer::new(token))
            .max_decoding_message_size(256 << 20)
    }

    /// `kube9ctl` with this cluster's client config and nothing from the caller's environment.
    pub fn ctl_command(&self) -> Command {
        let mut cmd = Command::new(bin("kube9ctl"));
        for var in CLIENT_VARS {
            cmd.env_remove(var);
        }
        cmd.env("KUBE9_CONFIG", self.config_path());
        cmd
    }

    /// kube9d's log so far (last 80 lines), for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.data_dir.join("kube9d.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(80)..].join("\n")
    }

    /// SIGKILLs kube9d (no graceful shutdown), leaving nodes running.
    pub fn kill_server(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERMs kube9d and waits for it to exit; returns whether it exited 0.
    pub fn stop_server_gracefully(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.success();
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts kube9d again on the same data directory and port.
    pub async fn restart_server(&mut self) {
        self.restart_server_after(Duration::ZERO).await;
    }

    /// SIGKILLs kube9d, leaves it down for `downtime`, then starts it again on the same data
    /// directory and port.
    pub async fn restart_server_after(&mut self, downtime: Duration) {
        self.kill_server();
        tokio::time::sleep(downtime).await;
        self.spawn().await;
    }

    /// Runs `kube9ctl` against this cluster.
    pub fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_stdin(args, None)
    }

    /// Runs `kube9ctl` with `input` on stdin.
    pub fn ctl_stdin(&self, args: &[&str], input: Option<&str>) -> Output {
        use std::io::Write;
        let mut child = self
            .ctl_command()
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kube9ctl");
        if let Some(text) = input {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs `kube9ctl`, asserts success, returns stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "kube9ctl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `kube9ctl ... -o json` and parses it.
    pub fn ctl_json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        let out = self.ctl_ok(&a);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("kube9ctl {a:?} printed invalid JSON ({e}): {out}"))
    }

    /// Creates a node through kube9ctl.
    pub fn create_node(&self, name: &str, cpu: &str) {
        self.ctl_ok(&["create", "node", name, "--cpu", cpu]);
    }

    /// Creates nodes `(name, cpu)` through kube9ctl and waits until each is healthy.
    pub async fn healthy_nodes(&self, nodes: &[(&str, &str)]) {
        for (name, cpu) in nodes {
            self.create_node(name, cpu);
        }
        for (name, _) in nodes {
            self.wait_node_status(name, pb::NodeStatus::Healthy, Duration::from_secs(60))
                .await;
        }
    }

    /// Applies a manifest given as text through `kube9ctl apply -f -`.
    pub fn apply(&self, manifest: &str) -> String {
        let out = self.ctl_stdin(&["apply", "-f", "-"], Some(manifest));
        assert!(
            out.status.success(),
            "apply failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub async fn node(&self, name: &str) -> pb::Node {
        self.client()
            .await
            .get_node(pb::GetNodeRequest { name: name.into() })
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn pod(&self, name: &str) -> pb::Pod {
        self.client()
            .await
            .get_pod(pb::GetPodRequest {
                name: name.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn nodes(&self) -> Vec<pb::Node> {
        self.client()
            .await
            .list_nodes(pb::ListNodesRequest {})
            .await
            .unwrap()
            .into_inner()
            .nodes
    }

    pub async fn pods(&self) -> Vec<pb::Pod> {
        self.client()
            .await
            .list_pods(pb::ListPodsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .pods
    }

    pub async fn events(&self) -> Vec<pb::Event> {
        self.client()
            .await
            .list_events(pb::ListEventsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .events
    }

    /// Waits until `node` has `status`.
    pub async fn wait_node_status(
        &self,
        node: &str,
        status: pb::NodeStatus,
        timeout: Duration,
    ) -> pb::Node {
        let what = format!("node {node} to be {}", status.label());
        self.wait_for(&what, timeout, || async {
            // Not there yet (an agent still joining) is not an error here.
            let req = pb::GetNodeRequest { name: node.into() };
            let n = self.client().await.get_node(req).await.ok()?.into_inner();
            (n.status() == status).then_some(n)
        })
        .await
    }

    /// Waits until `pod` is in `phase`.
    pub async fn wait_pod_phase(
        &self,
        pod: &str,
        phase: pb::PodPhase,
        timeout: Duration,
    ) -> pb::Pod {
        let what = format!("pod {pod} to be {}", phase.label());
        self.wait_for(&what, timeout, || async {
            let p = self.pod(pod).await;
            (p.phase() == phase).then_some(p)
        })
        .await
    }

    /// Polls `f` every 100 ms until it returns `Some`, or panics with kube9d's log.
    pub async fn wait_for<T, F, Fut>(&self, what: &str, timeout: Duration, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f().await {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}\n--- kube9d log ---\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asserts the CPU invariant: every node's allocated CPU is the sum of the requests of its
    /// non-terminal bound pods, and every such pod is bound to exactly one existing node.
    pub async fn assert_cpu_invariant(&self) {
        let nodes = self.nodes().await;
        let pods = self.pods().await;
        let mut sums: HashMap<String, i64> = HashMap::new();
        for p in &pods {
            if !p.node.is_empty() && !p.phase().is_terminal() {
                *sums.entry(p.node.clone()).or_default() += p.cpu_request_millis;
            }
        }
        for n in &nodes {
            let expected = sums.get(&n.name).copied().unwrap_or(0);
            assert_eq!(
                n.cpu_allocated_millis, expected,
                "node {} allocated CPU drifted (pods: {:?})",
                n.name, n.pods
            );
            assert!(
                n.cpu_allocated_millis <= n.cpu_capacity_millis,
                "node {} is overcommitted",
                n.name
            );
        }
        for p in &pods {
            if !p.node.is_empty() {
                let node = nodes
                    .iter()
                    .find(|n| n.name == p.node)
                    .unwrap_or_else(|| panic!("pod {} bound to unknown node {}", p.name, p.node));
                assert!(
                    node.pods.contains(&p.key()),
                    "node {} does not list its pod {}",
                    node.name,
                    p.name
                );
            }
        }
    }

    /// Removes everything, then fails the test if anything of the cluster is left in Docker
    /// (a leftover is a test failure).
    pub async fn finish(mut self) {
        let id = self.id.clone();
        self.cleanup();
        if self.opts.runtime == Runtime::Docker {
            let docker = docker().await.unwrap();
            assert!(
                list_labelled(&docker, &id, true).await.is_empty(),
                "containers left behind"
            );
            assert!(
                docker
                    .inspect_network(&format!("{id}-net"), None)
                    .await
                    .is_err(),
                "network left behind"
            );
        }
        assert!(agent_pids(&id).is_empty(), "agent processes left behind");
    }

    /// Removes every container, network and process of this cluster.
    pub fn cleanup(&mut self) {
        self.kill_server();
        kill_cluster_processes(&self.id);
        // Also for process clusters: a hand-joined Docker agent makes pod containers.
        docker_cleanup(&self.id);
        // `KUBE9_E2E_KEEP=1` keeps the data directory (kube9d's and the agents' logs) to read.
        if std::env::var_os("KUBE9_E2E_KEEP").is_some() {
            eprintln!("kept {}", self.data_dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn rand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    nanos % 100_000
}

/// Starts a `kube9-node` by hand (not through kube9d's runtime), as a person joining a node
/// would; its log goes to `agent-<name>.log` in the cluster's data directory.
pub fn hand_started_agent(c: &TestCluster, name: &str, state_dir: &Path, extra: &[&str]) -> Child {
    // Beside the cluster's data, so it goes with the cluster.
    let log = std::fs::File::create(c.data_dir.join(format!("agent-{name}.log")))
        .expect("agent log file");
    let mut cmd = Command::new(bin("kube9-node"));
    for var in CLIENT_VARS {
        cmd.env_remove(var);
    }
    cmd.args([
        "--server",
        &c.server,
        "--name",
        name,
        "--cluster-id",
        &c.cluster_id,
    ])
    .arg("--state-dir")
    .arg(state_dir);
    // Joined with the cluster's join token and CA, unless `extra` brings its own.
    if !extra.iter().any(|a| a.starts_with("--token")) {
        cmd.arg("--token-file").arg(c.join_token_file());
    }
    let plain = c.server.starts_with("http:");
    if !plain && !extra.iter().any(|a| a.starts_with("--ca-")) {
        cmd.arg("--ca-file").arg(c.ca_file());
    }
    if plain {
        cmd.arg("--insecure");
    }
    cmd.args(extra)
        // Processes unless `extra` says `--pod-runtime docker` (a flag beats the variable).
        .env("KUBE9_POD_RUNTIME", "process")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start kube9-node")
}

/// Starts the hand-joined agent `dnode` that runs pods through the engine
/// (`--pod-runtime docker`, plus `extra`), its state beside the cluster's data, and waits until
/// it is Healthy.
pub async fn docker_agent(c: &TestCluster, extra: &[&str]) -> Child {
    let mut args = vec!["--pod-runtime", "docker"];
    args.extend_from_slice(extra);
    let agent = hand_started_agent(c, "dnode", &c.data_dir.join("docker-node"), &args);
    c.wait_node_status("dnode", pb::NodeStatus::Healthy, secs(30))
        .await;
    agent
}

/// Copies directory `from` to `to` (files and subdirectories).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Live pod processes (`sh …`) with `marker` as one of their arguments: how many copies of a
/// marked pod run, whatever kube9d thinks. The whole argument, not a part: the marker of pod
/// `p1` is a prefix of `p10`'s.
pub fn marked_copies(marker: &str) -> usize {
    marked_pids(marker).len()
}

/// The pids of [`marked_copies`].
/// A shell's child between its fork and its exec (`sleep 1` of the loop) still has the
/// shell's command line: it is part of that copy, not another one.
pub fn marked_pids(marker: &str) -> Vec<i32> {
    let marked: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            let args = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let mut args = args.split(|c| *c == 0);
            process_alive(*pid)
                && args.next() == Some(b"sh")
                && args.any(|a| a == marker.as_bytes())
        })
        .collect();
    (marked.iter().copied())
        .filter(|pid| parent(*pid).is_none_or(|p| !marked.contains(&p)))
        .collect()
}

/// The parent of process `pid` (field 4 of `/proc/<pid>/stat`).
fn parent(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Whether process `pid` is alive (and not a zombie).
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// Command line of `pid`, NUL-separated arguments joined by spaces.
pub fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Pids of the agent processes of test cluster `id`: started with its cluster id, or with
/// their state in its data directory (a cluster started on a store made elsewhere keeps that
/// store's cluster id).
pub fn agent_pids(id: &str) -> Vec<i32> {
    let marker = format!("--cluster-id {id} ");
    let data_dir = format!("kube9-e2e-{id}/");
    let mut pids = vec![];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = cmdline(pid) + " ";
        let ours = cmd.contains(&marker) || cmd.contains(&data_dir);
        if cmd.contains("kube9-node") && ours && process_alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// Session id of `pid` (field 6 of /proc/PID/stat).
fn session_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(3)?.parse().ok()
}

/// Kills every agent of cluster `id` and every process in their sessions (their pods).
pub fn kill_cluster_processes(id: &str) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    for agent in agent_pids(id) {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if session_of(pid) == Some(agent) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        let _ = kill(Pid::from_raw(agent), Signal::SIGKILL);
    }
}

/// Force-removes every container labelled with cluster `id`, and its network.
pub fn docker_cleanup(id: &str) {
    let id = id.to_string();
    // Drop may run inside or outside a runtime: do the work on a thread with its own.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let Ok(docker) = docker().await else { return };
            for c in list_labelled(&docker, &id, true).await {
                let _ = docker
                    .remove_container(
                        &c,
                        Some(
                            bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                                .force(true)
                                .build(),
                        ),
                    )
                    .await;
            }
            let filters = HashMap::from([("label", vec![format!("io.kube9.cluster={id}")])]);
            let options = bollard::query_parameters::ListVolumesOptionsBuilder::new()
                .filters(&filters)
                .build();
            if let Ok(volumes) = docker.list_volumes(Some(options)).await {
                for v in volumes.volumes.unwrap_or_default() {
                    let _ = docker
                        .remove_volume(
                            &v.name,
                            None::<bollard::query_parameters::RemoveVolumeOptions>,
                        )
                        .await;
                }
            }
            let _ = docker.remove_network(&format!("{id}-net")).await;
        });
    })
    .join()
    .unwrap();
}

/// A Docker client; Docker is required for these tests (a missing engine is a failure).
pub async fn docker() -> Result<bollard::Docker, bollard::errors::Error> {
    let d = bollard::Docker::connect_with_defaults()?;
    d.negotiate_version().await
}

/// Ids of every container (running or not) labelled with cluster `id`.
pub async fn list_containers(docker: &bollard::Docker, id: &str) -> Vec<String> {
    list_labelled(docker, id, false).await
}

/// Ids of the containers labelled with cluster `id`: node containers, and with `pods` also
/// the containers the agents made for pods.
pub async fn list_labelled(docker: &bollard::Docker, id: &str, pods: bool) -> Vec<String> {
    let mut filters = HashMap::new();
    filters.insert("label".to_string(), vec![format!("io.kube9.cluster={id}")]);
    let opts = bollard::query_parameters::ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    docker
        .list_containers(Some(opts))
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|c| {
            pods || !c
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key("io.kube9.pod.uid"))
        })
        .filter_map(|c| c.id)
        .collect()
}

/// One engine container an agent made for a pod (its sandbox or one of its containers).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodContainer {
    pub id: String,
    /// The engine's name for it (it carries the pod's uid).
    pub name: String,
    /// The node whose agent made it (`io.kube9.node`).
    pub node: String,
    /// Its name in the pod spec, `POD` for the sandbox (`io.kube9.container.name`).
    pub container: String,
}

/// The engine containers of pod `pod` in cluster `id`, sorted by id.
pub async fn pod_containers(id: &str, pod: &str) -> Vec<PodContainer> {
    let docker = docker().await.expect("Docker is required for these tests");
    let filters = HashMap::from([(
        "label",
        vec![
            format!("io.kube9.cluster={id}"),
            format!("io.kube9.pod.name={pod}"),
        ],
    )]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let mut found: Vec<PodContainer> = docker
        .list_containers(Some(options))
        .await
        .unwrap()
        .into_iter()
        .map(|c| {
            let labels = c.labels.unwrap_or_default();
            let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
            PodContainer {
                id: c.id.unwrap_or_default(),
                name: c.names.unwrap_or_default().join(","),
                node: label("io.kube9.node"),
                container: label("io.kube9.container.name"),
            }
        })
        .collect();
    found.sort();
    found
}

/// The image test pods run from: FROM scratch with the static busybox, built locally (there
/// is no registry here), so pods say `imagePullPolicy: Never`.
pub const BUSYBOX: &str = "kube9-test/busybox:1";

/// Builds [`BUSYBOX`] in the engine unless it is there.
pub async fn ensure_test_image() {
    use kube9_node::cri::docker::image::{build_image, ContextFile};
    let docker = docker().await.expect("a Docker engine");
    if docker.inspect_image(BUSYBOX).await.is_ok() {
        return;
    }
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static is installed");
    let files = [ContextFile {
        name: "busybox",
        data: &busybox,
        mode: 0o755,
    }];
    let dockerfile = "FROM scratch\nCOPY busybox /bin/busybox\n\
                      RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n";
    // Tests race to build it: a loser's failure is fine once the image is there.
    if let Err(e) = build_image(&docker, BUSYBOX, dockerfile, &files, &HashMap::new()).await {
        assert!(docker.inspect_image(BUSYBOX).await.is_ok(), "{e}");
    }
}

/// A pod manifest with one container running `sh -c SCRIPT` and the given CPU request.
pub fn pod_yaml(name: &str, cpu: &str, script: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: test\nspec:\n  containers:\n  - name: main\n    image: {BUSYBOX}\n    imagePullPolicy: Never\n    command: [\"sh\", \"-c\", {script:?}]\n    resources:\n      requests:\n        cpu: \"{cpu}\"\n"
    )
}

/// Seconds as a Duration, for readable deadlines.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `docker stop -t 10 CONTAINER` through bollard: SIGTERM, so the agent deregisters.
pub async fn docker_stop(container: &str) {
    let opts = bollard::query_parameters::StopContainerOptionsBuilder::new()
        .t(10)
        .build();
    docker()
        .await
        .expect("Docker is required")
        .stop_container(container, Some(opts))
        .await
        .unwrap();
}

/// Whether a bollard error is Docker's 404.
pub fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
