//! Dialing kube9d and reading its answers.
//!
//! Every RPC result goes through [`Client::check`], which turns a transport failure into a
//! [`ConnectError`] (with the hint to start kube9d or set `--server`) and a status the server
//! sent into a [`ServerError`].

use crate::error::{ConnectError, ServerError};
use kube9_proto::pb::cluster_service_client::ClusterServiceClient;
use kube9_proto::DEFAULT_PORT;
use std::error::Error as _;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// How long dialing may take before kube9d counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest request kube9d accepts: gRPC's default message limit.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// The largest reply kube9ctl reads (a list of many pods can pass gRPC's 4 MiB default).
const MAX_REPLY_BYTES: usize = 256 * 1024 * 1024;

/// A connected ClusterService client and the URL it dialed.
pub struct Client {
    pub client: ClusterServiceClient<Channel>,
    pub url: String,
}

impl Client {
    /// Dials `server` (`http://host:port`, `host:port` or `host`).
    pub async fn connect(server: &str) -> anyhow::Result<Self> {
        let url = server_url(server);
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| anyhow::anyhow!("invalid --server {server:?}: {e}"))?
            .connect_timeout(CONNECT_TIMEOUT);
        let channel = endpoint.connect().await.map_err(|e| ConnectError {
            url: url.clone(),
            cause: root_cause(&e),
        })?;
        Ok(Client {
            client: ClusterServiceClient::new(channel).max_decoding_message_size(MAX_REPLY_BYTES),
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
    if status.code() == tonic::Code::Unavailable && status.source().is_some() {
        return ConnectError {
            url: url.to_string(),
            cause: root_cause(&status),
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

/// `http://127.0.0.1:7209` from `127.0.0.1:7209`, `127.0.0.1` or a full URL.
pub fn server_url(server: &str) -> String {
    let server = server.trim().trim_end_matches('/');
    if server.contains("://") {
        return server.to_string();
    }
    let has_port = server.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
    });
    if has_port {
        format!("http://{server}")
    } else {
        format!("http://{server}:{DEFAULT_PORT}")
    }
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
    fn server_urls_accept_host_port_and_full_urls() {
        assert_eq!(server_url("http://127.0.0.1:7209"), "http://127.0.0.1:7209");
        assert_eq!(
            server_url("https://kube9.example:443/"),
            "https://kube9.example:443"
        );
        assert_eq!(server_url("10.0.0.5:9000"), "http://10.0.0.5:9000");
        assert_eq!(server_url("localhost"), "http://localhost:7209");
        assert_eq!(server_url("[::1]:7209"), "http://[::1]:7209");
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
        let err = Client::connect("127.0.0.1:1").await.err().unwrap();
        let text = crate::error::render(&err).unwrap();
        assert!(
            text.starts_with("error: cannot reach kube9d at http://127.0.0.1:1: "),
            "{text}"
        );
        assert!(
            text.ends_with("(is kube9d running? set --server or KUBE9_SERVER)"),
            "{text}"
        );
    }
}
