//! Dialing kube9d: TLS verified against the cluster CA (from `--ca-file`, or fetched once and
//! pinned by `--ca-cert-hash`), the join token on every call.

use std::sync::Arc;
use std::time::Duration;

use kube9_proto::client::tls::{discover_ca, endpoint, TlsError};
use kube9_proto::client::{AuthChannel, Bearer, Token};
use kube9_proto::pb::agent_service_client::AgentServiceClient;
use parking_lot::Mutex;
use tracing::{info, warn};

use crate::config::{Config, Tls};

/// How long connecting (and fetching the CA) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Errors of dialing.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The TCP or TLS connection failed.
    #[error("failed to connect")]
    Connect(#[source] tonic::transport::Error),
    /// The server address or CA cannot make an endpoint (checked at start: not expected).
    #[error("failed to set up the connection")]
    Endpoint(#[source] TlsError),
    /// The CA could not be fetched, or kube9d presented none with the pinned hash.
    #[error("failed to fetch kube9d's CA")]
    Ca(#[source] TlsError),
}

impl DialError {
    /// Whether kube9d presented no CA with the pinned hash: the wrong hash, or not kube9d.
    pub fn is_pin_mismatch(&self) -> bool {
        matches!(self, DialError::Ca(TlsError::PinMismatch { .. }))
    }
}

/// What the agent dials with; cheap to clone.
#[derive(Clone)]
pub struct Dialer {
    server: String,
    tls: Tls,
    bearer: Bearer,
    /// The CA fetched for a pin, kept once it matched.
    pinned: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Dialer {
    pub fn new(config: &Config) -> Dialer {
        match &config.tls {
            Tls::Insecure => warn!(server = %config.server,
                "--insecure: the agent stream (join token, pod specs, Secret values sent to pods) crosses the network unencrypted"),
            Tls::Pin(pin) => info!(%pin, "kube9d's CA is pinned by hash"),
            Tls::Ca(_) => {}
        }
        if config.token.is_none() {
            warn!("no join token (--token or --token-file): kube9d will refuse this agent");
        }
        Dialer {
            server: config.server.clone(),
            tls: config.tls.clone(),
            bearer: Bearer::new(config.token.as_ref().map(Token::to_string).as_deref()),
            pinned: Arc::default(),
        }
    }

    /// A connected AgentService client that sends the join token.
    pub async fn connect(&self) -> Result<AgentServiceClient<AuthChannel>, DialError> {
        let ca = self.ca().await?;
        let channel = endpoint(&self.server, ca.as_deref())
            .map_err(DialError::Endpoint)?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .keep_alive_while_idle(true)
            .connect()
            .await
            .map_err(DialError::Connect)?;
        Ok(AgentServiceClient::with_interceptor(
            channel,
            self.bearer.clone(),
        ))
    }

    async fn ca(&self) -> Result<Option<Vec<u8>>, DialError> {
        match &self.tls {
            Tls::Insecure => Ok(None),
            Tls::Ca(pem) => Ok(Some(pem.clone())),
            Tls::Pin(pin) => {
                if let Some(pem) = self.pinned.lock().clone() {
                    return Ok(Some(pem));
                }
                let pem = discover_ca(&self.server, pin, CONNECT_TIMEOUT)
                    .await
                    .map_err(DialError::Ca)?;
                info!(%pin, "fetched kube9d's CA: it matches the pinned hash");
                *self.pinned.lock() = Some(pem.clone());
                Ok(Some(pem))
            }
        }
    }
}

/// What to change when dialing `server` failed with `chain` (an error and its causes), for
/// the failures a setting explains: TLS against a plain-text kube9d or the reverse, a
/// certificate the CA did not sign, a certificate that does not name the host.
pub fn hint(server: &str, chain: &str) -> Option<&'static str> {
    if chain.contains("InvalidContentType") || chain.contains("corrupt message") {
        Some("kube9d does not speak TLS (started with --insecure?): give the agent --insecure and an http:// --server")
    } else if chain.contains("UnknownIssuer") || chain.contains("BadSignature") {
        Some("kube9d's certificate is not signed by the --ca-file CA: is it this cluster's (<data-dir>/tls/ca.crt)? --ca-cert-hash fetches the right one")
    } else if chain.contains("NotValidForName") || chain.contains("not valid for name") {
        Some("kube9d's certificate does not name the --server host: dial an address it serves, or start kube9d with --tls-san for it")
    } else if server.starts_with("http://") && plain_text_refused(chain) {
        Some("kube9d did not answer in plain text: it serves TLS unless started with --insecure (drop --insecure, give --ca-cert-hash or --ca-file)")
    } else {
        None
    }
}

/// Whether `chain` is what a TLS port answers to plain text: the connection was made, then
/// dropped or answered with garbage (a port nobody listens on refuses; a lost host times out).
fn plain_text_refused(chain: &str) -> bool {
    !chain.contains("refused")
        && !chain.contains("timed out")
        && [
            "frame",
            "reset",
            "h2 protocol",
            "connection closed",
            "broken pipe",
        ]
        .iter()
        .any(|m| chain.contains(m))
}

#[cfg(test)]
mod tests {
    use super::hint;

    #[test]
    fn tls_failures_name_the_setting_to_change() {
        let tls = "https://h:1";
        let hint_for = |server, chain| hint(server, chain).unwrap_or_default();
        let corrupt = "transport error: received corrupt message of type InvalidContentType";
        assert!(hint_for(tls, corrupt).contains("--insecure"));
        let bad_ca = "transport error: invalid peer certificate: UnknownIssuer";
        assert!(hint_for(tls, bad_ca).contains("--ca-file"));
        let name = "invalid peer certificate: certificate not valid for name \"h\"";
        assert!(hint_for(tls, name).contains("--tls-san"));
        let reset = "transport error: connection reset by peer";
        assert!(hint_for("http://h:1", reset).contains("drop --insecure"));
        assert_eq!(hint(tls, reset), None);
        let refused = "transport error: Connection refused (os error 111)";
        assert_eq!(hint("http://h:1", refused), None);
    }
}
