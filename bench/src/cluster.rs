//! What a case runs against: a real kube9d on an ephemeral port with its own data directory,
//! `kube9-node --simulate` processes joined with its join token and CA, and a client that
//! connects as kube9ctl does (the cluster CA, the admin token of the client config kube9d
//! writes). Every process is killed when its handle drops, however the case ended.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kube9_proto::client::{AuthChannel, Bearer, ClientConfig};
use kube9_proto::pb::{self, cluster_service_client::ClusterServiceClient};

pub type Client = ClusterServiceClient<AuthChannel>;

/// Largest reply the bench reads (a full list of 150,000 pods).
const MAX_REPLY_BYTES: usize = 1 << 30;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Where the binaries are: beside this one (`cargo build --release` puts them together).
pub fn bin(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} is missing: build it first (scripts/bench runs cargo build --release -p kube9d -p kube9-node -p kube9-bench)",
            path.display()
        );
    }
    Ok(path)
}

/// A running kube9d.
pub struct Kube9d {
    pub cluster_id: String,
    pub data_dir: PathBuf,
    pub server: String,
    child: Child,
    keep: bool,
}

impl Kube9d {
    /// Starts kube9d with `--runtime process` (no node of its own: every node is a simulated
    /// agent that joins as a hand-joined agent does) and `extra` flags, and waits until it
    /// serves.
    pub async fn start(bin_dir: &Path, extra: &[&str], keep: bool) -> anyhow::Result<Kube9d> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let cluster_id = format!("bench{}x{n}", std::process::id());
        let data_dir = std::env::temp_dir().join(format!("kube9-bench-{cluster_id}"));
        let _ = std::fs::remove_dir_all(&data_dir);
        std::fs::create_dir_all(&data_dir)?;
        let log = std::fs::File::create(data_dir.join("kube9d.log"))?;
        // KUBE9_BENCH_WRAP=heaptrack (or `perf record -g --`) profiles kube9d; the CPU and
        // memory figures are then the wrapper's.
        let kube9d = bin(bin_dir, "kube9d")?;
        let wrap = std::env::var("KUBE9_BENCH_WRAP").unwrap_or_default();
        let mut words = wrap.split_whitespace();
        let mut command = match words.next() {
            Some(wrapper) => {
                let mut c = Command::new(wrapper);
                c.args(words).arg(&kube9d);
                c
            }
            None => Command::new(&kube9d),
        };
        let child = command
            .args(["--listen", "127.0.0.1:0", "--runtime", "process"])
            // The dashboard's port is the machine's: a bench must not take it from a kube9d
            // someone runs (its idle cost, a node list every 10 s, is not what is measured).
            .arg("--no-dashboard")
            .args(["--cluster-id", &cluster_id])
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--client-config")
            .arg(data_dir.join("client-config"))
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("failed to start kube9d")?;
        let mut kube9d = Kube9d {
            cluster_id,
            data_dir,
            server: String::new(),
            child,
            keep,
        };
        let port_file = kube9d.data_dir.join("kube9d.port");
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|s| s.trim().parse::<u16>().ok())
            {
                break port;
            }
            if let Some(status) = kube9d.child.try_wait()? {
                bail!("kube9d exited at start ({status}); see {}", kube9d.log());
            }
            if Instant::now() > deadline {
                bail!("kube9d did not start; see {}", kube9d.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        kube9d.server = format!("https://127.0.0.1:{port}");
        Ok(kube9d)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn log(&self) -> String {
        self.data_dir.join("kube9d.log").display().to_string()
    }

    /// A client with the admin token, over its own connection.
    pub async fn client(&self) -> anyhow::Result<Client> {
        let config = ClientConfig::load(&self.data_dir.join("client-config"))?
            .context("kube9d wrote no client config")?;
        let token = config
            .resolve(Some(&self.cluster_id))
            .map_err(anyhow::Error::msg)?
            .token;
        let ca = std::fs::read(self.data_dir.join("tls").join("ca.crt"))?;
        let channel = kube9_proto::client::tls::endpoint(&self.server, Some(&ca))?
            .tcp_nodelay(true)
            .connect()
            .await?;
        Ok(
            ClusterServiceClient::with_interceptor(channel, Bearer::new(token.as_deref()))
                .max_decoding_message_size(MAX_REPLY_BYTES)
                .max_encoding_message_size(MAX_REPLY_BYTES),
        )
    }

    /// Starts `kube9-node --simulate count` with `prefix`, each node of `cpu_millis`.
    pub fn simulate(
        &self,
        bin_dir: &Path,
        count: usize,
        prefix: &str,
        cpu_millis: i64,
    ) -> anyhow::Result<Simulator> {
        let log = std::fs::File::create(self.data_dir.join(format!("simulate-{prefix}.log")))?;
        let child = Command::new(bin(bin_dir, "kube9-node")?)
            .args(["--cluster-id", &self.cluster_id, "--server", &self.server])
            .args([
                "--simulate",
                &count.to_string(),
                "--simulate-prefix",
                prefix,
            ])
            .args(["--cpu-millis", &cpu_millis.to_string()])
            .arg("--token-file")
            .arg(self.data_dir.join("join-token"))
            .arg("--ca-file")
            .arg(self.data_dir.join("tls").join("ca.crt"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("failed to start kube9-node --simulate")?;
        Ok(Simulator { child })
    }
}

impl Drop for Kube9d {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

/// A running `kube9-node --simulate`.
pub struct Simulator {
    child: Child,
}

impl Simulator {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until at least `count` nodes whose names start with `prefix` are Healthy.
pub async fn wait_healthy(
    client: &mut Client,
    prefix: &str,
    count: usize,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        let nodes = client
            .list_nodes(pb::ListNodesRequest {})
            .await?
            .into_inner()
            .nodes;
        let healthy = nodes
            .iter()
            .filter(|n| n.name.starts_with(prefix) && n.status() == pb::NodeStatus::Healthy)
            .count();
        if healthy >= count {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            bail!("only {healthy}/{count} {prefix}* nodes healthy after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// CPU time (user + system) and resident memory of a process, from /proc.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub cpu: Duration,
    pub rss_bytes: u64,
}

pub fn usage(pid: i32) -> anyhow::Result<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("/proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, utime 14, stime 15 (1-based, as in proc(5)).
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as u64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    Ok(Usage {
        cpu: Duration::from_millis(ticks * 1000 / hz.max(1)),
        rss_bytes: rss_kb * 1024,
    })
}

/// `count` pods named `<prefix>-<i>` of `cpu_millis` each, one container.
pub fn pods(prefix: &str, count: usize, cpu_millis: i64) -> Vec<pb::Pod> {
    (0..count)
        .map(|i| pb::Pod {
            name: format!("{prefix}-{i}"),
            labels: [("app".to_string(), prefix.to_string())].into(),
            containers: vec![pb::Container {
                name: "main".into(),
                image: "busybox".into(),
                cpu_request_millis: cpu_millis,
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect()
}

/// Applies `pods` in requests of at most `chunk` pods (kube9d reads requests of up to 4 MiB).
pub async fn apply(client: &mut Client, pods: Vec<pb::Pod>, chunk: usize) -> anyhow::Result<()> {
    let mut pods = pods;
    while !pods.is_empty() {
        let rest = pods.split_off(pods.len().min(chunk));
        client
            .apply(pb::ApplyRequest {
                pods,
                ..Default::default()
            })
            .await?;
        pods = rest;
    }
    Ok(())
}

/// Deletes every pod of the default namespace with the bulk RPC and waits until they are gone.
pub async fn delete_all(client: &mut Client) -> anyhow::Result<usize> {
    let reply = client
        .delete_pods(pb::DeletePodsRequest {
            all: true,
            wait: true,
            timeout_ms: 600_000,
            ..Default::default()
        })
        .await?
        .into_inner();
    let failed: Vec<_> = reply.results.iter().filter(|r| r.code != 0).collect();
    if let Some(first) = failed.first() {
        bail!(
            "{} pods not deleted, e.g. {}: {}",
            failed.len(),
            first.name,
            first.message
        );
    }
    Ok(reply.results.len())
}
