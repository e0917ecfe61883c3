//! Dialing kube9d and reading its answers.
//!
//! Every RPC result goes through [`Client::check`], which turns a transport failure into a
//! [`ConnectError`] (with the hint to start kube9d or set `--server`) and a status the server
//! sent into a [`ServerError`].

use crate::error::{ConnectError, ServerError};
use kube9_proto::client::{AuthChannel, Bearer};
use kube9_proto::pb::cluster_service_client::ClusterServiceClient;
use std::error::Error as _;
use std::time::Duration;

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
}

impl Client {
    /// Dials `target`.
    pub async fn connect(target: &Target) -> anyhow::Result<Self> {
        let url = target.url.clone();
        let endpoint = kube9_proto::client::tls::endpoint(&url, target.ca_pem.as_deref())
            .map_err(|e| match e {
                kube9_proto::client::tls::TlsError::NoCa(_) => anyhow::anyhow!(
                    "kube9d at {url} serves TLS but there is no CA to verify it with: the client config's cluster has no certificate-authority-data (or give --certificate-authority)"
                ),
                e => anyhow::anyhow!("{e}"),
            })?
            .connect_timeout(CONNECT_TIMEOUT);
        let channel = endpoint.connect().await.map_err(|e| ConnectError {
            url: url.clone(),
            cause: root_cause(&e),
            ca_source: target.ca_source.clone(),
        })?;
        Ok(Client {
            client: ClusterServiceClient::with_interceptor(
                channel,
                Bearer::new(target.token.as_deref()),
            )
            .max_decoding_message_size(MAX_REPLY_BYTES),
            url,
        })
    }

    /// The answer of one RPC, or the error to print.
    pub fn check<T>(&self, result: Result<tonic::Response<T>, tonic::Status>) -> anyhow::Result<T> {
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| status_error(&self.url, status))
    }
}

/// Turns a status into the error kube9ctl prints: statuses raised by the client's own transport
/// (the connection dropped) say kube9d is unreachable, the rest are the server's words.
pub fn status_error(url: &str, status: tonic::Status) -> anyhow::Error {
    // Plain text to a TLS port: the server's TLS alert reads as a broken HTTP/2 connection.
    let broken_h2 = url.starts_with("http://")
        && matches!(
            status.code(),
            tonic::Code::Internal | tonic::Code::Unknown | tonic::Code::Unavailable
        )
        && ["h2 protocol error", "transport error"]
            .iter()
            .any(|m| status.message().contains(m));
    if broken_h2 || (status.code() == tonic::Code::Unavailable && status.source().is_some()) {
        return ConnectError {
            url: url.to_string(),
            cause: root_cause(&status),
            ca_source: String::new(),
        }
        .into();
    }
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

    #[test]
    fn plain_text_to_a_tls_port_says_to_use_https() {
        let err = status_error(
            "http://h:1",
            tonic::Status::internal("h2 protocol error: http2 error"),
        );
        let text = err.to_string();
        assert!(
            text.contains("serves TLS") && text.contains("https://"),
            "{text}"
        );
    }

    #[test]
    fn statuses_from_the_server_keep_code_and_message() {
        let err = status_error(
            "http://x:1",
            tonic::Status::not_found("pod \"x\" not found"),
        );
        assert_eq!(
            err.to_string(),
            "Error from server (NotFound): pod \"x\" not found"
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_says_how_to_fix_it() {
        // Port 1 on localhost: nothing listens there.
        let target = Target {
            url: "https://127.0.0.1:1".into(),
            ca_pem: Some(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".to_vec()),
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
    }
}
