//! Command line and environment of the node agent.
//!
//! Every flag has an environment variable, so the agent can be configured either way: the
//! Docker runtime passes environment variables, the process runtime passes flags (it finds its
//! agents again by scanning `/proc/*/cmdline` for `--cluster-id ID --name NAME`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use kube9_proto::client::Token;

use crate::containers::logs::LogLimits;
use crate::paths::is_path_component;

/// Where kube9d listens unless told otherwise (TLS unless `--insecure`).
pub const DEFAULT_SERVER: &str = "127.0.0.1:7209";

/// kube9d's default cluster id; kube9d refuses an agent whose cluster id differs from its own.
pub const DEFAULT_CLUSTER_ID: &str = "kube9";

/// Errors turning the command line into a [`Config`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--name` was not given (only the `standin` subcommand may omit it).
    #[error("failed to read the node name: --name or KUBE9_NODE_NAME is required")]
    MissingName,
    /// The node name cannot be used as a directory name.
    #[error("failed to accept node name {0:?}: it must be non-empty and contain no '/'")]
    InvalidName(String),
    /// The server address is not a URI.
    #[error("failed to parse server address {address:?}: {source}")]
    InvalidServer {
        /// The address as given (after adding `http://` when it had no scheme).
        address: String,
        /// Why tonic rejected it.
        source: tonic::transport::Error,
    },
    /// The agent cannot find its own binary (needed to run stand-in containers).
    #[error("failed to find the agent's own executable: {0}")]
    CurrentExe(#[source] std::io::Error),
    /// Credentials or TLS settings that cannot work; the message names the flag.
    #[error("{0}")]
    Security(String),
}

/// The command line of `kube9-node`.
#[derive(Debug, Parser)]
#[command(
    name = "kube9-node",
    version,
    about = "Kube-9 node agent: runs the pods kube9d binds to this node",
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// kube9d address: `host:port` (TLS), `https://host:port`, or `http://host:port` with
    /// `--insecure`.
    #[arg(long, env = "KUBE9_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,

    /// Name this node registers under.
    #[arg(long, env = "KUBE9_NODE_NAME", required_unless_present = "simulate")]
    pub name: Option<String>,

    /// Simulate this many nodes in this process (for scale tests and benchmarks): each has
    /// its own stream, registration, heartbeats and pods, which are reported Running and never
    /// started. Names are `--simulate-prefix` and a number; capacity is `--cpu-millis` and
    /// `--simulate-memory` each.
    #[arg(long, env = "KUBE9_SIMULATE", value_parser = clap::value_parser!(u32).range(1..))]
    pub simulate: Option<u32>,

    /// Name prefix of simulated nodes (`sim-1` ... `sim-N`, zero-padded to N's width).
    #[arg(long, env = "KUBE9_SIMULATE_PREFIX", default_value = "sim-")]
    pub simulate_prefix: String,

    /// Memory capacity of each simulated node (a quantity: `8Gi`, `512Mi`); `0` leaves memory
    /// untracked, as a real agent does.
    #[arg(long, env = "KUBE9_SIMULATE_MEMORY", default_value = "8Gi", value_parser = parse_memory)]
    pub simulate_memory: i64,

    /// Simulated nodes whose streams share one HTTP/2 connection. Below kube9d's calls in
    /// flight per connection (`--max-calls-per-connection`, 256): attaches of a whole group
    /// may be in flight at once.
    #[arg(long, env = "KUBE9_SIMULATE_NODES_PER_CONNECTION", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub simulate_nodes_per_connection: u32,

    /// CPU capacity offered to the scheduler, in millicores.
    #[arg(long, env = "KUBE9_CPU_MILLIS", default_value_t = 4000,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub cpu_millis: i64,

    /// Cluster the agent belongs to; must match kube9d's `--cluster-id`.
    #[arg(long, env = "KUBE9_CLUSTER_ID", default_value = DEFAULT_CLUSTER_ID)]
    pub cluster_id: String,

    /// Heartbeat interval; the server's `Registered.heartbeat_interval_ms` wins when non-zero.
    #[arg(long, env = "KUBE9_HEARTBEAT_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub heartbeat_interval_ms: u64,

    /// Fence time: cut off from kube9d for this long, the agent stops its pods (kube9d may
    /// move them to other nodes then). kube9d's `Registered.fence_ms` wins when non-zero;
    /// 0 never fences.
    #[arg(long, env = "KUBE9_FENCE_MS", default_value_t = 60_000)]
    pub fence_ms: u64,

    /// Where pod directories and container logs live [default: /var/lib/kube9-node/<name>].
    #[arg(long, env = "KUBE9_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// Join token (`<id>.<secret>`; `kube9ctl token join-command` prints a whole line).
    /// Prefer --token-file: a flag shows in the process list.
    #[arg(long, env = "KUBE9_TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,

    /// A file holding the join token.
    #[arg(long, env = "KUBE9_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// The cluster CA (PEM) that kube9d's certificate must chain to.
    #[arg(long, env = "KUBE9_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// `sha256:<hex>` of the cluster CA's certificate: the agent fetches the CA from kube9d
    /// and accepts it only with this hash (as kubeadm's --discovery-token-ca-cert-hash).
    #[arg(long, env = "KUBE9_CA_CERT_HASH")]
    pub ca_cert_hash: Option<String>,

    /// Talk plain text to a kube9d started with --insecure (the token and pod specs cross the
    /// network unencrypted). KUBE9_INSECURE takes true/false, 1/0, yes/no or on/off.
    #[arg(long, env = "KUBE9_INSECURE", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub insecure: bool,

    /// Instance id to register with (kube9d sets it for the agents it starts); random when
    /// not given.
    #[arg(long, env = "KUBE9_INSTANCE_ID", hide = true)]
    pub instance_id: Option<String>,

    /// How pods run: `docker` (containers from their images, through the Docker engine at
    /// DOCKER_HOST or the local socket), `process` (processes on this node, images not run),
    /// or `auto`, the default (Docker when the engine answers, processes otherwise).
    #[arg(long, env = "KUBE9_POD_RUNTIME", value_enum, default_value = "auto")]
    pub pod_runtime: PodRuntime,

    /// The engine network pods join (default: the engine's default bridge). kube9d's Docker
    /// nodes put their pods on the cluster's network, where the agent can probe them.
    #[arg(long, env = "KUBE9_POD_NETWORK")]
    pub pod_network: Option<String>,

    /// How often each pod's size-limited disk emptyDirs are measured; a pod with one over
    /// its `sizeLimit` is evicted (tests shorten it).
    #[arg(long, env = "KUBE9_EVICTION_INTERVAL_MS", hide = true,
          default_value_t = crate::containers::eviction::EVICTION_INTERVAL.as_millis() as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub eviction_interval_ms: u64,

    /// Process pods of an agent running as root each get a user of their own: uid and gid
    /// from this one on, one per pod (an agent that is not root runs pods as itself).
    #[arg(long, env = "KUBE9_POD_UID_BASE",
          default_value_t = crate::containers::isolation::DEFAULT_POD_UID_BASE,
          value_parser = clap::value_parser!(u32)
              .range(1..=i64::from(u32::MAX - crate::containers::isolation::POD_UID_SLOTS - 1)))]
    pub pod_uid_base: u32,

    /// A container's log is rotated before it grows past this size: bytes, or with a suffix
    /// (`512Ki`, `10Mi`, `1G`); at least 1Ki. Engine containers get it as their json-file log
    /// driver's `max-size`.
    #[arg(long, env = "KUBE9_CONTAINER_LOG_MAX_SIZE", default_value = "10Mi",
          value_parser = parse_log_size)]
    pub container_log_max_size: u64,

    /// How many log files a container keeps, the current one included (2: the current file
    /// and one rotated `.1`). Engine containers get it as their log driver's `max-file`.
    #[arg(long, env = "KUBE9_CONTAINER_LOG_MAX_FILES",
          default_value_t = LogLimits::DEFAULT_MAX_FILES,
          value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub container_log_max_files: u32,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `--simulate-memory`: bytes, with or without a suffix.
fn parse_memory(text: &str) -> Result<i64, String> {
    kube9_proto::quantity::parse_memory(text).map_err(|e| e.to_string())
}

/// The smallest `--container-log-max-size`: below it, the agent would do little but rotate.
const MIN_LOG_SIZE: u64 = 1024;

/// `--container-log-max-size`: a size in bytes, with or without a suffix.
fn parse_log_size(text: &str) -> Result<u64, String> {
    let bytes = kube9_proto::quantity::parse_memory(text).map_err(|e| {
        format!("a log size is bytes (1048576) or a size with a suffix (512Ki, 10Mi): {e}")
    })?;
    match u64::try_from(bytes) {
        Ok(bytes) if bytes >= MIN_LOG_SIZE => Ok(bytes),
        _ => Err(format!("a log size must be at least 1Ki, not {text}")),
    }
}

/// Subcommands (all hidden: they are for the agent's own use).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The built-in stand-in for a container that has no command.
    #[command(hide = true)]
    Standin {
        /// Image the container names (printed, never pulled).
        #[arg(long)]
        image: String,
        /// The container's args (printed).
        #[arg(last = true)]
        args: Vec<String>,
    },
}

/// Everything the agent needs to run, resolved from the command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// kube9d URI, always with a scheme.
    pub server: String,
    /// Node name.
    pub name: String,
    /// CPU capacity in millicores.
    pub cpu_millis: i64,
    /// Cluster id sent in Register; kube9d refuses a mismatch.
    pub cluster_id: String,
    /// Heartbeat interval until the server says otherwise.
    pub heartbeat_interval: Duration,
    /// Fence time until the server says otherwise (zero: never fence).
    pub fence: Duration,
    /// Pod directories and logs live under `<state_dir>/pods`.
    pub state_dir: PathBuf,
    /// Join token sent as `authorization: Bearer` on every call (Debug hides its secret).
    pub token: Option<Token>,
    /// How kube9d is verified.
    pub tls: Tls,
    /// Instance id given by kube9d, if any.
    pub instance_id: Option<String>,
    /// How pods run.
    pub pod_runtime: PodRuntime,
    /// The engine network pods join.
    pub pod_network: Option<String>,
    /// How often size-limited disk emptyDirs are measured (see [`crate::containers::eviction`]).
    pub eviction_interval: Duration,
    /// First uid (and gid) of process pods when the agent is root.
    pub pod_uid_base: u32,
    /// How big container logs may grow.
    pub log_limits: LogLimits,
    /// Program run (as `<program> standin --image IMAGE -- ARGS`) for containers without a
    /// command: normally the agent's own binary.
    pub standin_program: PathBuf,
}

impl Cli {
    /// Resolves defaults and checks the values; fails on a missing or unusable name.
    pub fn config(&self) -> Result<Config, Error> {
        // Simulated nodes are named by the prefix and a number, which is a path component too.
        let name = match (&self.name, self.simulate) {
            (Some(name), _) => name.clone(),
            (None, Some(_)) => self.simulate_prefix.clone(),
            (None, None) => return Err(Error::MissingName),
        };
        if !is_path_component(&name) {
            return Err(Error::InvalidName(name));
        }
        let server = kube9_proto::client::tls::server_url(&self.server, !self.insecure);
        let tls = self.tls(&server)?;
        let token = self.token()?;
        if let Err(source) = tonic::transport::Endpoint::from_shared(server.clone()) {
            return Err(Error::InvalidServer {
                address: server,
                source,
            });
        }
        let state_dir = self
            .state_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/var/lib/kube9-node").join(&name));
        Ok(Config {
            server,
            name,
            cpu_millis: self.cpu_millis,
            cluster_id: self.cluster_id.clone(),
            heartbeat_interval: Duration::from_millis(self.heartbeat_interval_ms),
            fence: Duration::from_millis(self.fence_ms),
            state_dir,
            token,
            tls,
            instance_id: self.instance_id.clone().filter(|id| !id.is_empty()),
            pod_runtime: self.pod_runtime,
            pod_network: self.pod_network.clone().filter(|n| !n.is_empty()),
            eviction_interval: Duration::from_millis(self.eviction_interval_ms),
            pod_uid_base: self.pod_uid_base,
            log_limits: LogLimits {
                max_size: self.container_log_max_size,
                max_files: self.container_log_max_files,
            },
            standin_program: standin_program()?,
        })
    }
}

impl Cli {
    /// The join token: `--token` or the file `--token-file`, checked for form. The errors
    /// name the flag, never the token.
    fn token(&self) -> Result<Option<Token>, Error> {
        match (&self.token, &self.token_file) {
            (Some(_), Some(_)) => Err(Error::Security(
                "give the join token once: --token or --token-file, not both".into(),
            )),
            (Some(Secret(text)), None) => Token::parse(text).map(Some).map_err(|e| {
                Error::Security(format!(
                    "--token (KUBE9_TOKEN): the join token is malformed: {e}"
                ))
            }),
            (None, Some(file)) => {
                let text = std::fs::read_to_string(file).map_err(|e| {
                    Error::Security(format!(
                        "failed to read --token-file {}: {e}",
                        file.display()
                    ))
                })?;
                Token::parse(&text).map(Some).map_err(|e| {
                    Error::Security(format!(
                        "--token-file {} holds a malformed join token: {e}",
                        file.display()
                    ))
                })
            }
            (None, None) => Ok(None),
        }
    }

    /// How kube9d at `server` is verified: refuses settings that cannot work.
    fn tls(&self, server: &str) -> Result<Tls, Error> {
        use kube9_proto::client::tls::{ca_hash, parse_pin};
        let https = server.starts_with("https://");
        if self.insecure {
            if https {
                return Err(Error::Security(format!(
                    "--insecure talks plain text, but --server {server} is https: use http:// or drop --insecure"
                )));
            }
            return Ok(Tls::Insecure);
        }
        if !https {
            return Err(Error::Security(format!(
                "--server {server} is plain text: kube9d serves TLS by default; plain text needs --insecure"
            )));
        }
        let pin = match &self.ca_cert_hash {
            Some(p) => {
                Some(parse_pin(p).map_err(|e| Error::Security(format!("--ca-cert-hash: {e}")))?)
            }
            None => None,
        };
        match (&self.ca_file, pin) {
            (Some(file), pin) => {
                let pem = std::fs::read(file).map_err(|e| {
                    Error::Security(format!("failed to read --ca-file {}: {e}", file.display()))
                })?;
                let hash = ca_hash(&pem).map_err(|e| {
                    Error::Security(format!("--ca-file {}: {e}", file.display()))
                })?;
                if pin.as_ref().is_some_and(|p| *p != hash) {
                    return Err(Error::Security(format!(
                        "--ca-file {} has hash {hash}, not the --ca-cert-hash given",
                        file.display()
                    )));
                }
                Ok(Tls::Ca(pem))
            }
            (None, Some(pin)) => Ok(Tls::Pin(pin)),
            (None, None) => Err(Error::Security(
                "kube9d serves TLS: give --ca-cert-hash (kube9ctl token join-command prints the whole line) or --ca-file".into(),
            )),
        }
    }
}

/// A command-line value that is a secret (`--token`): taken as given, never shown by Debug.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// How the agent verifies kube9d.
#[derive(Clone, PartialEq, Eq)]
pub enum Tls {
    /// Plain text (`--insecure`).
    Insecure,
    /// Against this CA (PEM).
    Ca(Vec<u8>),
    /// Against the CA kube9d presents whose hash is this (`sha256:<hex>`).
    Pin(String),
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tls::Insecure => f.write_str("Insecure"),
            Tls::Ca(_) => f.write_str("Ca(..)"),
            Tls::Pin(p) => write!(f, "Pin({p})"),
        }
    }
}

/// `--pod-runtime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PodRuntime {
    Auto,
    Docker,
    Process,
}

/// `/proc/self/exe`: in the forked child it names the agent's own binary even if the file was
/// replaced or deleted since the agent started. `current_exe` where /proc is missing.
fn standin_program() -> Result<PathBuf, Error> {
    let proc_exe = PathBuf::from("/proc/self/exe");
    if proc_exe.exists() {
        return Ok(proc_exe);
    }
    std::env::current_exe().map_err(Error::CurrentExe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kube9-node").chain(args.iter().copied()))
    }

    const PIN: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    fn security_error(args: &[&str]) -> String {
        match parse(args).unwrap().config() {
            Err(Error::Security(m)) => m,
            other => panic!("expected a security error for {args:?}, got {other:?}"),
        }
    }

    #[test]
    fn tls_is_the_default_and_plain_text_must_be_asked_for() {
        let cli = parse(&[
            "--name",
            "n1",
            "--server",
            "10.0.0.1:7209",
            "--ca-cert-hash",
            PIN,
        ])
        .unwrap();
        let config = cli.config().unwrap();
        assert_eq!(config.server, "https://10.0.0.1:7209");
        assert_eq!(config.tls, Tls::Pin(PIN.into()));
        let cli = parse(&["--name", "n1", "--server", "10.0.0.1:7209", "--insecure"]).unwrap();
        let config = cli.config().unwrap();
        assert_eq!(
            (config.server.as_str(), config.tls),
            ("http://10.0.0.1:7209", Tls::Insecure)
        );
        assert!(
            security_error(&["--name", "n", "--server", "http://h:1"]).contains("needs --insecure")
        );
        assert!(
            security_error(&["--name", "n", "--server", "https://h:1", "--insecure"])
                .contains("drop --insecure")
        );
        assert!(security_error(&["--name", "n"]).contains("--ca-cert-hash"));
        assert!(
            security_error(&["--name", "n", "--ca-cert-hash", "sha256:12"])
                .contains("--ca-cert-hash")
        );
    }

    #[test]
    fn tokens_are_checked_and_never_echoed() {
        let token = kube9_proto::client::Token::generate().to_string();
        let cli = parse(&["--name", "n", "--insecure", "--token", &token]).unwrap();
        assert!(
            !format!("{cli:?}").contains(&token),
            "Debug shows the token"
        );
        assert_eq!(cli.config().unwrap().token.unwrap().to_string(), token);
        let bad = "abcdef.not-a-secret-value";
        let m = security_error(&["--name", "n", "--insecure", "--token", bad]);
        assert!(
            m.contains("malformed") && !m.contains("not-a-secret"),
            "{m}"
        );
        let file = std::env::temp_dir().join(format!("kube9-node-token-{}", std::process::id()));
        std::fs::write(&file, format!("{token}\n")).unwrap();
        let f = file.to_str().unwrap();
        let cli = parse(&["--name", "n", "--insecure", "--token-file", f]).unwrap();
        assert_eq!(cli.config().unwrap().token.unwrap().to_string(), token);
        assert!(security_error(&[
            "--name",
            "n",
            "--insecure",
            "--token-file",
            f,
            "--token",
            &token
        ])
        .contains("not both"));
        std::fs::remove_file(&file).unwrap();
        assert!(
            security_error(&["--name", "n", "--insecure", "--token-file", f])
                .contains("--token-file")
        );
    }

    #[test]
    fn a_ca_file_must_match_the_pin_when_both_are_given() {
        use kube9_proto::client::tls::{ca_hash, pem_certificate};
        let dir = std::env::temp_dir().join(format!("kube9-node-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ca.crt");
        // A certificate's hash is over its DER bytes: any DER will do here.
        let pem = pem_certificate(&[0x30, 0x03, 0x02, 0x01, 0x01]);
        std::fs::write(&file, &pem).unwrap();
        let f = file.to_str().unwrap();
        let hash = ca_hash(pem.as_bytes()).unwrap();
        let config = parse(&["--name", "n", "--ca-file", f, "--ca-cert-hash", &hash])
            .unwrap()
            .config()
            .unwrap();
        assert_eq!(config.tls, Tls::Ca(pem.clone().into_bytes()));
        let config = parse(&["--name", "n", "--ca-file", f])
            .unwrap()
            .config()
            .unwrap();
        assert_eq!(config.tls, Tls::Ca(pem.into_bytes()));
        let m = security_error(&["--name", "n", "--ca-file", f, "--ca-cert-hash", PIN]);
        assert!(m.contains(&hash) && m.contains("--ca-cert-hash"), "{m}");
        std::fs::write(&file, "not a certificate").unwrap();
        assert!(security_error(&["--name", "n", "--ca-file", f]).contains("--ca-file"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            security_error(&["--name", "n", "--ca-file", f]).contains("failed to read --ca-file")
        );
    }

    #[test]
    fn defaults_fill_in_everything_but_the_name() {
        let cli = parse(&["--name", "n1", "--server", "localhost:9", "--insecure"]).unwrap();
        let config = cli.config().unwrap();
        assert_eq!(config.server, "http://localhost:9");
        assert_eq!(config.cpu_millis, 4000);
        assert_eq!(config.heartbeat_interval, Duration::from_millis(1000));
        assert_eq!(config.fence, Duration::from_secs(60));
        assert_eq!(config.state_dir, PathBuf::from("/var/lib/kube9-node/n1"));
        assert_eq!(config.cluster_id, "kube9");
        assert_eq!(config.eviction_interval, Duration::from_secs(5));
        assert_eq!(config.pod_uid_base, 200_000);
        let cli = parse(&["--name", "n1", "--insecure", "--pod-uid-base", "300000"]).unwrap();
        assert_eq!(cli.config().unwrap().pod_uid_base, 300_000);
        assert!(parse(&["--name", "n1", "--pod-uid-base", "0"]).is_err());
        let cli = parse(&["--name", "n1", "--insecure", "--cluster-id", "other"]).unwrap();
        assert_eq!(cli.config().unwrap().cluster_id, "other");
        assert_eq!(
            config.log_limits,
            LogLimits {
                max_size: 10 * 1024 * 1024,
                max_files: 2
            }
        );
    }

    #[test]
    fn container_log_limits_take_sizes_with_suffixes_and_refuse_nonsense() {
        let limits = |args: &[&str]| {
            let mut all = vec!["--name", "n1", "--insecure"];
            all.extend(args);
            parse(&all).map(|cli| cli.config().unwrap().log_limits)
        };
        let got = limits(&[
            "--container-log-max-size",
            "512Ki",
            "--container-log-max-files",
            "5",
        ])
        .unwrap();
        assert_eq!((got.max_size, got.max_files), (512 * 1024, 5));
        let got = limits(&["--container-log-max-size", "4096"]).unwrap();
        assert_eq!(got.max_size, 4096);
        assert_eq!(
            limits(&["--container-log-max-size", "1M"])
                .unwrap()
                .max_size,
            1_000_000
        );
        for bad in ["0", "100", "-1Mi", "10 MB", "lots"] {
            assert!(
                limits(&["--container-log-max-size", bad]).is_err(),
                "{bad} was taken"
            );
        }
        assert!(limits(&["--container-log-max-files", "1"]).is_err());
    }

    #[test]
    fn the_name_is_required_for_the_agent_but_not_for_the_standin() {
        assert!(parse(&[]).is_err());
        let cli = parse(&["standin", "--image", "nginx", "--", "-g", "x"]).unwrap();
        match cli.command {
            Some(Command::Standin { image, args }) => {
                assert_eq!(image, "nginx");
                assert_eq!(args, ["-g", "x"]);
            }
            None => panic!("expected the standin subcommand"),
        }
    }

    #[test]
    fn simulate_needs_no_name_and_takes_capacity_and_prefix() {
        let cli = parse(&[
            "--simulate",
            "20",
            "--simulate-prefix",
            "s-",
            "--cpu-millis",
            "8000",
            "--simulate-memory",
            "1Gi",
            "--insecure",
        ])
        .unwrap();
        assert!(cli.config().is_ok());
        assert_eq!(
            (
                cli.simulate,
                cli.simulate_prefix.as_str(),
                cli.cpu_millis,
                cli.simulate_memory
            ),
            (Some(20), "s-", 8000, 1 << 30)
        );
        assert_eq!(cli.simulate_nodes_per_connection, 200);
        assert!(parse(&["--simulate", "0"]).is_err());
        assert_eq!(parse(&["--name", "n1"]).unwrap().simulate, None);
    }

    #[test]
    fn a_name_with_a_slash_is_rejected() {
        let cli = parse(&["--name", "a/b"]).unwrap();
        assert!(matches!(cli.config(), Err(Error::InvalidName(_))));
    }
}
