//! Dialing kube9d and reading its answers.
//!
//! Every RPC result goes through [`Client::check`] (stream items through [`Client::error`]),
//! which turns a transport failure into a [`ConnectError`] (a wrong scheme, an untrusted
//! certificate, nobody listening) and a status the server sent into a [`ServerError`].

use crate::error::{ConnectError, ServerError};
use kube9_proto::client::tls::{self, TlsError};
use kube9_proto::client::{AuthChannel, Bearer};
use kube9_proto::pb::cluster_service_client::ClusterServiceClient;
use std::error::Error as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tonic::transport::Endpoint;

/// How long dialing may take before kube9d counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest request kube9d accepts: gRPC's default message limit.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// The largest reply kube9ctl reads (a list of many pods can pass gRPC's 4 MiB default).
const MAX_REPLY_BYTES: usize = 256 * 1024 * 1024;

/// What to dial and with what: resolved from the client config and the overrides.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// `https://host:port` (or `http://` for a kube9d started with --insecure).
    pub url: String,
    /// The CA kube9d's certificate must chain to.
    pub ca_pem: Option<Vec<u8>>,
    /// Where the CA came from, for messages.
    pub ca_source: String,
    pub token: Option<String>,
}

/// A connected ClusterService client and the URL it dialed.
pub struct Client {
    pub client: ClusterServiceClient<AuthChannel>,
    pub url: String,
    /// Where the CA came from, for a certificate error met after dialing.
    ca_source: String,
    /// Set once kube9d has answered on this connection: a transport failure after that is a
    /// lost connection, not a wrong scheme.
    answered: AtomicBool,
}

impl Client {
    /// Dials `target`.
    pub async fn connect(target: &Target) -> anyhow::Result<Self> {
        let url = target.url.clone();
        if target.ca_pem.is_none() && speaks_plain_http2(&url).await {
            // No CA to dial with: say what the server is rather than what is missing.
            let address = url.trim_start_matches("https://");
            anyhow::bail!(
                "kube9d at {url} does not speak TLS (started with --insecure?): use http://{address}"
            );
        }
        let endpoint = endpoint(target)?.connect_timeout(CONNECT_TIMEOUT);
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| ConnectError::new(&url, root_cause(&e), &target.ca_source, false))?;
        let client =
            ClusterServiceClient::with_interceptor(channel, Bearer::new(target.token.as_deref()))
                .max_decoding_message_size(MAX_REPLY_BYTES);
        Ok(Client {
            client,
            url,
            ca_source: target.ca_source.clone(),
            answered: AtomicBool::new(false),
        })
    }

    /// The answer of one RPC, or the error to print.
    pub fn check<T>(&self, result: Result<tonic::Response<T>, tonic::Status>) -> anyhow::Result<T> {
        match result {
            Ok(response) => {
                self.answered.store(true, Ordering::Relaxed);
                Ok(response.into_inner())
            }
            Err(status) => Err(self.error(status)),
        }
    }

    /// The error to print for `status`, from a call or a stream of this client.
    pub fn error(&self, status: tonic::Status) -> anyhow::Error {
        let answered = self.answered.load(Ordering::Relaxed);
        if !is_transport(&status) {
            self.answered.store(true, Ordering::Relaxed);
        }
        status_error(&self.url, &self.ca_source, answered, status)
    }
}

/// Whether an `https://` URL's port answers plain-text HTTP/2 (a kube9d started with
/// --insecure): its reply to the client preface starts with a SETTINGS frame (type 4), which
/// no TLS server sends.
async fn speaks_plain_http2(url: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(address) = url.strip_prefix("https://") else {
        return false;
    };
    let address = address.trim_end_matches('/').to_string();
    let probe = async move {
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
        stream
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .ok()?;
        let mut head = [0u8; 9];
        stream.read_exact(&mut head).await.ok()?;
        Some(head[3] == 0x04)
    };
    (tokio::time::timeout(CONNECT_TIMEOUT, probe).await)
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// The endpoint for `target`, or why there is none in words.
fn endpoint(target: &Target) -> anyhow::Result<Endpoint> {
    let url = &target.url;
    tls::endpoint(url, target.ca_pem.as_deref()).map_err(|e| match e {
        TlsError::NoCa(_) => anyhow::anyhow!(
            "kube9d at {url} is dialed over TLS but there is no CA to verify it with: the context's cluster has no certificate-authority-data (give --certificate-authority, or http:// for a kube9d started with --insecure)"
        ),
        e => anyhow::anyhow!("{e}"),
    })
}

/// Whether kube9ctl's own transport made `status` (the connection failed or broke) rather
/// than kube9d: tonic gives those a source error, and statuses read off the wire none.
fn is_transport(status: &tonic::Status) -> bool {
    status.source().is_some()
}

/// Turns a status into the error kube9ctl prints: a transport failure says what went wrong
/// with the connection to `url` (`answered`: kube9d had answered on it before), the rest are
/// the server's words (Unauthenticated and PermissionDenied are sentences kube9d wrote for a
/// person).
pub fn status_error(
    url: &str,
    ca_source: &str,
    answered: bool,
    status: tonic::Status,
) -> anyhow::Error {
    if is_transport(&status) {
        return ConnectError::new(url, root_cause(&status), ca_source, answered).into();
    }
    server_error(status)
}

/// A status kube9d sent, as `Error from server (Code): message`.
fn server_error(status: tonic::Status) -> anyhow::Error {
    let message = match status.message() {
        m if m.contains("message length too large") => format!(
            "the request is larger than the {} MiB kube9d accepts in one call ({m}): split the manifest into smaller files and apply them one by one",
            MAX_REQUEST_BYTES >> 20
        ),
        m => m.to_string(),
    };
    ServerError {
        code: status.code(),
        message,
    }
    .into()
}

/// Refuses, before anything is sent, a request over [`MAX_REQUEST_BYTES`], with what to do.
pub fn check_request_size(what: &str, request: &impl prost::Message) -> anyhow::Result<()> {
    let size = request.encoded_len();
    if size > MAX_REQUEST_BYTES {
        anyhow::bail!(
            "{what} is {:.1} MiB; kube9d accepts at most {} MiB in one call: split it into smaller files and apply them one by one (nothing was applied)",
            size as f64 / (1024.0 * 1024.0),
            MAX_REQUEST_BYTES >> 20
        );
    }
    Ok(())
}

/// The innermost message of an error chain: `Connection refused (os error 111)` rather than
/// `transport error`.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    let text = cause.to_string();
    if text.is_empty() {
        err.to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A status as tonic makes it from a transport failure: with the failure as its source.
    fn transport(cause: &str) -> tonic::Status {
        tonic::Status::from_error(Box::new(std::io::Error::other(cause.to_string())))
    }

    #[test]
    fn transport_failures_are_named_server_statuses_pass_through() {
        let text = status_error(
            "http://h:1",
            "",
            false,
            transport("frame with invalid size"),
        )
        .to_string();
        assert!(text.contains("serves TLS: use https://h:1"), "{text}");
        let text = status_error("http://h:1", "", true, transport("connection closed")).to_string();
        assert!(text.starts_with("lost the connection"), "{text}");
        // A status kube9d wrote has no source, whatever its code or words.
        for status in [
            tonic::Status::not_found("pod \"x\" not found"),
            tonic::Status::internal("h2 protocol error: http2 error"),
        ] {
            let text = status_error("http://x:1", "", false, status.clone()).to_string();
            assert!(text.starts_with("Error from server ("), "{text}");
        }
        let text = status_error(
            "https://x:1",
            "",
            false,
            tonic::Status::unauthenticated(
                "the token was not accepted: it is unknown, revoked, expired or wrong",
            ),
        )
        .to_string();
        assert_eq!(
            text,
            "Error from server (Unauthenticated): the token was not accepted: it is unknown, revoked, expired or wrong"
        );
        let text = status_error(
            "https://x:1",
            "",
            false,
            tonic::Status::permission_denied(
                "DeletePod needs the admin role; this token is a viewer",
            ),
        )
        .to_string();
        assert!(
            text.starts_with("Error from server (PermissionDenied): DeletePod needs"),
            "{text}"
        );
    }

    /// A server on a free local port that answers every connection with `reply` and closes it.
    async fn fake_server(reply: &'static [u8]) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).await;
                let _ = conn.write_all(reply).await;
                let _ = conn.shutdown().await;
            }
        });
        port
    }

    async fn list_pods(target: &Target) -> String {
        let result = match Client::connect(target).await {
            Ok(mut c) => {
                let response = c
                    .client
                    .list_pods(kube9_proto::pb::ListPodsRequest::default())
                    .await;
                c.check(response).map(drop)
            }
            Err(e) => Err(e),
        };
        crate::error::render(&result.unwrap_err()).unwrap()
    }

    /// A CA that parses (the pipeline must get as far as the handshake).
    const SOME_CA: &[u8] = b"-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n";

    #[tokio::test]
    async fn https_to_a_plain_text_server_says_use_http() {
        // What a plain-text HTTP/2 server sends first: a SETTINGS frame, no TLS record.
        let port = fake_server(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00").await;
        let text = list_pods(&Target {
            url: format!("https://127.0.0.1:{port}"),
            ca_pem: Some(SOME_CA.to_vec()),
            ca_source: "the client config /c".into(),
            token: None,
        })
        .await;
        assert!(
            text.starts_with(&format!(
                "error: kube9d at https://127.0.0.1:{port} does not speak TLS (started with --insecure?): use http://127.0.0.1:{port} ("
            )),
            "{text}"
        );
    }

    #[tokio::test]
    async fn http_to_a_tls_server_says_use_https() {
        // What a TLS server answers to an HTTP/2 preface: a fatal alert record.
        let port = fake_server(b"\x15\x03\x03\x00\x02\x02\x32").await;
        let text = list_pods(&Target {
            url: format!("http://127.0.0.1:{port}"),
            ..Default::default()
        })
        .await;
        assert!(
            text.starts_with(&format!(
                "error: kube9d at http://127.0.0.1:{port} serves TLS: use https://127.0.0.1:{port} (or no scheme) ("
            )),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_says_how_to_fix_it() {
        // Port 1 on localhost: nothing listens there.
        let target = Target {
            url: "https://127.0.0.1:1".into(),
            ca_pem: Some(SOME_CA.to_vec()),
            ..Default::default()
        };
        let err = Client::connect(&target).await.err().unwrap();
        let text = crate::error::render(&err).unwrap();
        assert!(
            text.starts_with("error: cannot reach kube9d at https://127.0.0.1:1: "),
            "{text}"
        );
        assert!(
            text.ends_with("(is kube9d running? set --server or KUBE9_SERVER)"),
            "{text}"
        );
        let plain = Target {
            url: "https://127.0.0.1:1".into(),
            ..Default::default()
        };
        let text = Client::connect(&plain).await.err().unwrap().to_string();
        assert!(text.contains("no CA to verify it with"), "{text}");
        // Without a CA, a plain-text kube9d is recognised as such.
        let port = fake_server(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00").await;
        let plain = Target {
            url: format!("https://127.0.0.1:{port}"),
            ..Default::default()
        };
        let text = Client::connect(&plain).await.err().unwrap().to_string();
        assert!(
            text.contains("does not speak TLS")
                && text.contains(&format!("http://127.0.0.1:{port}")),
            "{text}"
        );
    }
}
