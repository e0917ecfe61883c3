//! Test support: a scripted fake kube9d (AgentService only) on an ephemeral port, over plain
//! text or TLS with a CA made per run ([`TestPki`]), and the real `kube9-node` binary as a
//! child process that is killed if a test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube9_proto::pb::agent_service_server::{AgentService, AgentServiceServer};
use kube9_proto::pb::{agent_message, control_message, AgentMessage, ControlMessage};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_stream::StreamExt;
use tonic::transport::{Identity, ServerTlsConfig};
use tonic::{Code, Request, Response, Status, Streaming};

/// How long any single expectation may take.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// One attached agent stream, seen from the server.
pub struct Conn {
    /// The `authorization` metadata the agent attached with.
    pub authorization: Option<String>,
    from_agent: Streaming<AgentMessage>,
    to_agent: mpsc::Sender<Result<ControlMessage, Status>>,
}

impl Conn {
    /// The next message from the agent.
    pub async fn next(&mut self) -> agent_message::Msg {
        let message = tokio::time::timeout(DEADLINE, self.from_agent.next())
            .await
            .expect("no message from the agent in time")
            .expect("agent closed the stream")
            .expect("agent stream failed");
        message.msg.expect("empty agent message")
    }

    /// The next message for which `pick` returns something, skipping the others.
    pub async fn next_matching<T>(
        &mut self,
        mut pick: impl FnMut(agent_message::Msg) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if let Some(found) = pick(self.next().await) {
                return found;
            }
        }
        panic!("no matching message within {DEADLINE:?}");
    }

    /// Whether any heartbeat arrives within `window`.
    pub async fn heartbeat_within(&mut self, window: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + window;
        loop {
            match tokio::time::timeout_at(deadline, self.from_agent.next()).await {
                Err(_) => return false,
                Ok(Some(Ok(AgentMessage {
                    msg: Some(agent_message::Msg::Heartbeat(_)),
                }))) => return true,
                Ok(Some(Ok(_))) => continue,
                Ok(other) => panic!("agent stream ended: {other:?}"),
            }
        }
    }

    /// Sends a command to the agent.
    pub async fn send(&self, msg: control_message::Msg) {
        self.to_agent
            .send(Ok(ControlMessage { msg: Some(msg) }))
            .await
            .expect("agent stream gone");
    }

    /// Ends the stream from the server side.
    pub fn hang_up(self) {}
}

/// The fake kube9d.
pub struct FakeServer {
    pub addr: std::net::SocketAddr,
    conns: mpsc::UnboundedReceiver<Conn>,
    attempts: Arc<AtomicUsize>,
    reject: Arc<Mutex<Option<Code>>>,
    authorizations: Arc<Mutex<Vec<Option<String>>>>,
}

struct FakeService {
    conns: mpsc::UnboundedSender<Conn>,
    reject: Arc<Mutex<Option<Code>>>,
    attempts: Arc<AtomicUsize>,
    authorizations: Arc<Mutex<Vec<Option<String>>>>,
}

#[tonic::async_trait]
impl AgentService for FakeService {
    type AttachStream = ReceiverStream<Result<ControlMessage, Status>>;

    async fn attach(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::AttachStream>, Status> {
        let authorization = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        // Recorded before the count: a test that saw the count sees the header.
        self.authorizations
            .lock()
            .unwrap()
            .push(authorization.clone());
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if let Some(code) = *self.reject.lock().unwrap() {
            return Err(Status::new(code, "refused by the fake kube9d"));
        }
        let (to_agent, rx) = mpsc::channel(64);
        let _ = self.conns.send(Conn {
            authorization,
            from_agent: request.into_inner(),
            to_agent,
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

impl FakeServer {
    /// Starts a fake speaking plain text that accepts every stream (or refuses each with
    /// `reject`).
    pub async fn start(reject: Option<Code>) -> FakeServer {
        FakeServer::serve(reject, None).await
    }

    /// Starts a fake speaking TLS with `pki`'s server certificate.
    pub async fn start_tls(reject: Option<Code>, pki: &TestPki) -> FakeServer {
        FakeServer::serve(reject, Some(pki)).await
    }

    async fn serve(reject: Option<Code>, pki: Option<&TestPki>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, conns) = mpsc::unbounded_channel();
        let attempts = Arc::new(AtomicUsize::new(0));
        let reject = Arc::new(Mutex::new(reject));
        let authorizations = Arc::default();
        let service = FakeService {
            conns: tx,
            reject: reject.clone(),
            attempts: attempts.clone(),
            authorizations: Arc::clone(&authorizations),
        };
        let mut builder = tonic::transport::Server::builder();
        if let Some(pki) = pki {
            let identity = Identity::from_pem(&pki.server_chain_pem, &pki.server_key_pem);
            builder = builder
                .tls_config(ServerTlsConfig::new().identity(identity))
                .unwrap();
        }
        tokio::spawn(
            builder
                .add_service(AgentServiceServer::new(service))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        FakeServer {
            addr,
            conns,
            attempts,
            reject,
            authorizations,
        }
    }

    /// `https://` and the address: what an agent dials a TLS fake with.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// From now on, accepts every stream.
    pub fn accept_all(&self) {
        *self.reject.lock().unwrap() = None;
    }

    /// The next attached stream.
    pub async fn accept(&mut self) -> Conn {
        tokio::time::timeout(DEADLINE, self.conns.recv())
            .await
            .expect("agent did not attach in time")
            .expect("server stopped")
    }

    /// How many attach calls were made.
    pub fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }

    /// The `authorization` metadata of every attach call so far, refused ones included.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.authorizations.lock().unwrap().clone()
    }
}

/// A cluster CA and a server certificate it signed for `127.0.0.1` and `localhost`, made per
/// run as kube9d makes its own.
pub struct TestPki {
    pub ca_pem: String,
    /// `sha256:<hex>` of the CA certificate: what `--ca-cert-hash` takes.
    pub ca_hash: String,
    /// The server certificate, then the CA (kube9d serves the chain: the pin finds the CA in
    /// it).
    pub server_chain_pem: String,
    pub server_key_pem: String,
}

impl TestPki {
    pub fn new() -> TestPki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kube9-node test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "kube9d");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = params.signed_by(&server_key, &issuer).unwrap();
        let ca_pem = ca.pem();
        TestPki {
            ca_hash: kube9_proto::client::tls::ca_hash(ca_pem.as_bytes()).unwrap(),
            server_chain_pem: format!("{}{ca_pem}", server.pem()),
            server_key_pem: server_key.serialize_pem(),
            ca_pem,
        }
    }

    /// Writes the CA to `<dir>/ca.crt` (for `--ca-file`); returns the path.
    pub fn ca_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.crt");
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }
}

/// A fresh temporary directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("kube9-node-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The join token every test agent presents (the fake kube9d does not check it).
pub fn test_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| kube9_proto::client::Token::generate().to_string())
}

/// The real agent binary, killed on drop; its stderr goes to `<dir>/agent.stderr` and is
/// printed when a test fails.
pub struct AgentProcess {
    pub child: Child,
    pub dir: PathBuf,
}

impl AgentProcess {
    /// Starts `kube9-node` against a fake kube9d speaking plain text at `server` (so with
    /// `--insecure` and [`test_token`]), with state under `dir`.
    pub fn start(server: &str, name: &str, dir: &Path, extra: &[&str]) -> AgentProcess {
        let security = ["--insecure", "--token", test_token()];
        AgentProcess::spawn(server, name, dir, &[&security[..], extra].concat())
    }

    /// Starts `kube9-node` with `args` as its only credentials and TLS settings.
    pub fn spawn(server: &str, name: &str, dir: &Path, args: &[&str]) -> AgentProcess {
        let stderr = std::fs::File::create(dir.join("agent.stderr")).unwrap();
        Self::spawn_with_stderr(server, name, dir, args, stderr.into())
    }

    /// [`AgentProcess::start`], the agent's log going to `stderr` (e.g. `/dev/full`) rather
    /// than to `<dir>/agent.stderr`.
    pub fn start_with_stderr(
        server: &str,
        name: &str,
        dir: &Path,
        extra: &[&str],
        stderr: Stdio,
    ) -> AgentProcess {
        let security = ["--insecure", "--token", test_token()];
        Self::spawn_with_stderr(server, name, dir, &[&security[..], extra].concat(), stderr)
    }

    fn spawn_with_stderr(
        server: &str,
        name: &str,
        dir: &Path,
        args: &[&str],
        stderr: Stdio,
    ) -> AgentProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_kube9-node"))
            .args([
                "--server",
                server,
                "--name",
                name,
                "--cluster-id",
                "test-cluster",
            ])
            .arg("--state-dir")
            .arg(dir.join("state"))
            .args(args)
            .env_remove("KUBE9_SERVER")
            .env_remove("KUBE9_TOKEN")
            .env_remove("KUBE9_TOKEN_FILE")
            .env_remove("KUBE9_CA_FILE")
            .env_remove("KUBE9_CA_CERT_HASH")
            .env_remove("KUBE9_INSECURE")
            .env_remove("KUBE9_NODE_NAME")
            .env_remove("KUBE9_STATE_DIR")
            // Processes unless `extra` says `--pod-runtime docker` (a flag beats the variable).
            .env("KUBE9_POD_RUNTIME", "process")
            .env("RUST_LOG", "debug,h2=info,hyper=info,tower=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        AgentProcess {
            child,
            dir: dir.to_path_buf(),
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).unwrap();
    }

    /// Whether the agent's log so far contains `text`.
    pub fn logged(&self, text: &str) -> bool {
        self.log().contains(text)
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.stderr")).unwrap_or_default()
    }

    /// How many lines of the agent's log so far contain every one of `texts`.
    pub fn log_lines_with(&self, texts: &[&str]) -> usize {
        self.log()
            .lines()
            .filter(|line| texts.iter().all(|t| line.contains(t)))
            .count()
    }

    /// Waits for the exit code, within `within`.
    pub async fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("agent did not exit within {within:?}");
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.join("agent.stderr")).unwrap_or_default();
            eprintln!("---- agent stderr ----\n{log}\n----");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a (non-zombie) process with this pid exists.
pub fn process_exists(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}

/// Polls `check` until it holds, within the deadline.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
