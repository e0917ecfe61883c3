//! Liveness, readiness and startup probes, as the kubelet runs them, for any runtime: the
//! runtime says where the container listens (`host`) and how to run a command in it
//! ([`Exec`]); [`watch`] runs a container's probes for as long as the container runs and
//! reports what changes ([`ProbeEvent`]).
//!
//! Kubernetes' semantics: the startup probe runs first and holds the others back until it
//! succeeds (failing `failureThreshold` times kills the container); readiness decides whether
//! the container counts as ready; a liveness probe failing `failureThreshold` times in a row
//! kills the container, which is then restarted as its pod's restart policy says.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kube9_proto::pb::{self, probe::Handler};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Runs a command in the container: its exit code, or why it could not run.
/// The prober bounds it with the probe's timeout.
pub trait Exec: Send + Sync {
    fn exec(&self, command: Vec<String>) -> BoxFuture<'static, Result<i32, String>>;
}

/// What a container's probes found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeEvent {
    /// The startup probe passed (or there is none): the other probes run now.
    Started,
    /// The container became ready (true) or not ready (false).
    Ready(bool),
    /// The liveness or startup probe failed often enough: the container must be killed.
    Kill(String),
}

/// A probe's timing with Kubernetes' defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Timing {
    pub fn of(p: &pb::Probe) -> Self {
        let or = |v: u32, default: u32| if v == 0 { default } else { v };
        Timing {
            initial_delay: Duration::from_secs(p.initial_delay_seconds.into()),
            period: Duration::from_secs(or(p.period_seconds, 10).into()),
            timeout: Duration::from_secs(or(p.timeout_seconds, 1).into()),
            success_threshold: or(p.success_threshold, 1),
            failure_threshold: or(p.failure_threshold, 3),
        }
    }
}

/// One probe attempt: `Ok` on success, the reason on failure.
pub async fn check(probe: &pb::Probe, host: &str, exec: &dyn Exec) -> Result<(), String> {
    let timeout = Timing::of(probe).timeout;
    match &probe.handler {
        Some(Handler::Exec(e)) => {
            match tokio::time::timeout(timeout, exec.exec(e.command.clone())).await {
                Ok(Ok(0)) => Ok(()),
                Ok(Ok(code)) => Err(format!("command {:?} exited with {code}", e.command)),
                Ok(Err(why)) => Err(why),
                Err(_) => Err(format!(
                    "command {:?} timed out after {timeout:?}",
                    e.command
                )),
            }
        }
        Some(Handler::HttpGet(get)) => {
            let host = if get.host.is_empty() { host } else { &get.host };
            let https = get.scheme == "HTTPS";
            tokio::time::timeout(timeout, http_get(host, get.port, &get.path, https))
                .await
                .unwrap_or_else(|_| Err(format!("GET {}: timed out after {timeout:?}", get.path)))
        }
        Some(Handler::TcpSocket(tcp)) => {
            let host = if tcp.host.is_empty() { host } else { &tcp.host };
            match tokio::time::timeout(timeout, TcpStream::connect((host, tcp.port as u16))).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("dial {host}:{}: {e}", tcp.port)),
                Err(_) => Err(format!("dial {host}:{}: timed out", tcp.port)),
            }
        }
        None => Ok(()),
    }
}

/// `GET path` over HTTP/1.1, or over TLS with `https` (the certificate is not verified, as
/// the kubelet does not): 200-399 is a success, as for the kubelet.
async fn http_get(host: &str, port: i32, path: &str, https: bool) -> Result<(), String> {
    let path = if path.is_empty() { "/" } else { path };
    let target = format!(
        "{}://{host}:{port}{path}",
        if https { "https" } else { "http" }
    );
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube9-probe\r\nConnection: close\r\n\r\n"
    );
    let failed = |e: std::io::Error| format!("GET {target}: {e}");
    let tcp = TcpStream::connect((host, port as u16))
        .await
        .map_err(failed)?;
    let status = if https {
        let tls = kube9_proto::client::tls::connect_unverified(tcp, host)
            .await
            .map_err(|e| format!("GET {target}: TLS handshake failed: {e}"))?;
        status_code(tls, &request).await
    } else {
        status_code(tcp, &request).await
    };
    match status.map_err(failed)? {
        Some(code) if (200..400).contains(&code) => Ok(()),
        Some(code) => Err(format!("GET {target}: HTTP {code}")),
        None => Err(format!("GET {target}: not an HTTP response")),
    }
}

/// Sends `request` on `stream` and reads the status code of the answer (`None`: not HTTP).
async fn status_code(
    mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    request: &str,
) -> std::io::Result<Option<u16>> {
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    Ok(line.split_whitespace().nth(1).and_then(|c| c.parse().ok()))
}

/// Runs `container`'s probes until the receiver of `events` goes away (the container ended),
/// reporting each change. A container without probes is started and ready at once.
pub async fn watch(
    container: pb::Container,
    host: String,
    exec: Arc<dyn Exec>,
    events: mpsc::UnboundedSender<ProbeEvent>,
) {
    if let Some(startup) = &container.startup_probe {
        match until_threshold(startup, &host, exec.as_ref(), true).await {
            Ok(()) => {}
            Err(why) => {
                let _ = events.send(ProbeEvent::Kill(format!("startup probe failed: {why}")));
                return;
            }
        }
    }
    let _ = events.send(ProbeEvent::Started);
    let readiness = async {
        let Some(probe) = &container.readiness_probe else {
            let _ = events.send(ProbeEvent::Ready(true));
            return;
        };
        let timing = Timing::of(probe);
        tokio::time::sleep(timing.initial_delay).await;
        let (mut ready, mut successes, mut failures) = (false, 0, 0);
        loop {
            match check(probe, &host, exec.as_ref()).await {
                Ok(()) => (successes, failures) = (successes + 1, 0),
                Err(_) => (successes, failures) = (0, failures + 1),
            }
            let now = if successes >= timing.success_threshold {
                true
            } else if failures >= timing.failure_threshold {
                false
            } else {
                ready
            };
            if now != ready || (successes == 1 && now && !ready) {
                ready = now;
                if events.send(ProbeEvent::Ready(ready)).is_err() {
                    return;
                }
            }
            tokio::time::sleep(timing.period).await;
        }
    };
    let liveness = async {
        let Some(probe) = &container.liveness_probe else {
            return futures::future::pending::<()>().await;
        };
        if let Err(why) = until_threshold(probe, &host, exec.as_ref(), false).await {
            let _ = events.send(ProbeEvent::Kill(format!("liveness probe failed: {why}")));
        }
    };
    tokio::select! {
        _ = async { tokio::join!(readiness, liveness) } => {}
        _ = events.closed() => {}
    }
}

/// Probes every period after the initial delay. `until_success`: returns `Ok` once the probe
/// succeeded `successThreshold` times (startup); otherwise runs until it fails
/// `failureThreshold` times in a row (liveness). The error is the last failure.
async fn until_threshold(
    probe: &pb::Probe,
    host: &str,
    exec: &dyn Exec,
    until_success: bool,
) -> Result<(), String> {
    let timing = Timing::of(probe);
    tokio::time::sleep(timing.initial_delay).await;
    let (mut successes, mut failures) = (0, 0);
    loop {
        match check(probe, host, exec).await {
            Ok(()) => {
                (successes, failures) = (successes + 1, 0);
                if until_success && successes >= timing.success_threshold {
                    return Ok(());
                }
            }
            Err(why) => {
                (successes, failures) = (0, failures + 1);
                if failures >= timing.failure_threshold {
                    return Err(why);
                }
            }
        }
        tokio::time::sleep(timing.period).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI32, Ordering};

    /// An exec whose commands exit with whatever the test set.
    struct Scripted(AtomicI32);

    impl Exec for Scripted {
        fn exec(&self, _: Vec<String>) -> BoxFuture<'static, Result<i32, String>> {
            let code = self.0.load(Ordering::SeqCst);
            Box::pin(async move { Ok(code) })
        }
    }

    fn exec_probe(period: u32, failures: u32) -> pb::Probe {
        pb::Probe {
            handler: Some(Handler::Exec(pb::ExecAction {
                command: vec!["check".into()],
            })),
            period_seconds: period,
            failure_threshold: failures,
            ..Default::default()
        }
    }

    #[test]
    fn timing_defaults_are_kubernetes() {
        let t = Timing::of(&pb::Probe::default());
        assert_eq!(
            (
                t.period,
                t.timeout,
                t.success_threshold,
                t.failure_threshold
            ),
            (Duration::from_secs(10), Duration::from_secs(1), 1, 3)
        );
    }

    /// Answers one HTTP request on `s`: 200 for `GET /ok`, 503 for anything else.
    async fn answer_ok_only(mut s: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin) {
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).await.unwrap_or(0);
        let status = if buf[..n].starts_with(b"GET /ok ") {
            "200 OK"
        } else {
            "503 Unavailable"
        };
        let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
        let _ = s.write_all(answer.as_bytes()).await;
        let _ = s.shutdown().await;
    }

    #[tokio::test]
    async fn http_and_tcp_probes_hit_a_real_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port() as i32;
        tokio::spawn(async move {
            loop {
                let (s, _) = listener.accept().await.unwrap();
                answer_ok_only(s).await;
            }
        });
        let exec = Scripted(AtomicI32::new(0));
        let get = |path: &str| pb::Probe {
            handler: Some(Handler::HttpGet(pb::HttpGetAction {
                path: path.into(),
                port,
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(check(&get("/ok"), "127.0.0.1", &exec).await, Ok(()));
        let err = check(&get("/bad"), "127.0.0.1", &exec).await.unwrap_err();
        assert!(err.contains("HTTP 503"), "{err}");
        let tcp = |port| pb::Probe {
            handler: Some(Handler::TcpSocket(pb::TcpSocketAction {
                port,
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(check(&tcp(port), "127.0.0.1", &exec).await, Ok(()));
        // A port nobody listens on (the listener's port + 1 may be taken; 1 never is ours).
        assert!(check(&tcp(1), "127.0.0.1", &exec).await.is_err());
    }

    /// `scheme: HTTPS` speaks TLS to a server whose certificate nobody vouches for (the
    /// kubelet does not verify a probe's certificate); the status decides, as over HTTP.
    #[tokio::test]
    async fn https_probes_speak_tls_without_verifying_the_certificate() {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(signing_key.serialize_der());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key.into())
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port() as i32;
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let Ok(s) = acceptor.accept(tcp).await else {
                    continue; // A plain-text GET.
                };
                answer_ok_only(s).await;
            }
        });
        let exec = Scripted(AtomicI32::new(0));
        let get = |path: &str, scheme: &str| pb::Probe {
            handler: Some(Handler::HttpGet(pb::HttpGetAction {
                path: path.into(),
                port,
                scheme: scheme.into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(
            check(&get("/ok", "HTTPS"), "127.0.0.1", &exec).await,
            Ok(())
        );
        let err = (check(&get("/bad", "HTTPS"), "127.0.0.1", &exec).await).unwrap_err();
        assert!(
            err.contains("https://127.0.0.1") && err.contains("HTTP 503"),
            "{err}"
        );
        // Plain HTTP to a TLS port is no answer.
        assert!(check(&get("/ok", "HTTP"), "127.0.0.1", &exec)
            .await
            .is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_liveness_probe_asks_for_a_kill_after_its_threshold() {
        let exec = Arc::new(Scripted(AtomicI32::new(0)));
        let container = pb::Container {
            liveness_probe: Some(exec_probe(1, 2)),
            ..Default::default()
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(watch(container, "127.0.0.1".into(), exec.clone(), tx));
        assert_eq!(rx.recv().await, Some(ProbeEvent::Started));
        assert_eq!(rx.recv().await, Some(ProbeEvent::Ready(true)));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(rx.try_recv().is_err(), "a passing probe kills nothing");
        exec.0.store(1, Ordering::SeqCst);
        let kill = rx.recv().await.unwrap();
        assert!(
            matches!(&kill, ProbeEvent::Kill(why) if why.starts_with("liveness probe failed")),
            "{kill:?}"
        );
        drop(rx);
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_flips_with_the_probe_and_startup_holds_it_back() {
        let exec = Arc::new(Scripted(AtomicI32::new(1)));
        let container = pb::Container {
            startup_probe: Some(exec_probe(1, 100)),
            readiness_probe: Some(exec_probe(1, 1)),
            ..Default::default()
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(watch(container, "127.0.0.1".into(), exec.clone(), tx));
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(
            rx.try_recv().is_err(),
            "nothing before the startup probe passes"
        );
        exec.0.store(0, Ordering::SeqCst);
        assert_eq!(rx.recv().await, Some(ProbeEvent::Started));
        assert_eq!(rx.recv().await, Some(ProbeEvent::Ready(true)));
        exec.0.store(1, Ordering::SeqCst);
        assert_eq!(rx.recv().await, Some(ProbeEvent::Ready(false)));
        exec.0.store(0, Ordering::SeqCst);
        assert_eq!(rx.recv().await, Some(ProbeEvent::Ready(true)));
    }
}
