//! Dialing kube9d: TLS verified against the cluster CA (from `--ca-file`, or fetched once and
//! pinned by `--ca-cert-hash`), the join token on every call.

use std::sync::Arc;
use std::time::Duration;

use kube9_proto::client::tls::{discover_ca, endpoint, TlsError};
use kube9_proto::client::{AuthChannel, Bearer};
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
    /// The CA could not be fetched, or kube9d presented none with the pinned hash.
    #[error("failed to fetch kube9d's CA")]
    Ca(#[source] TlsError),
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
            bearer: Bearer::new(config.token.as_deref()),
            pinned: Arc::default(),
        }
    }

    /// A connected AgentService client that sends the join token.
    pub async fn connect(&self) -> Result<AgentServiceClient<AuthChannel>, DialError> {
        let ca = self.ca().await?;
        let channel = endpoint(&self.server, ca.as_deref())
            .map_err(DialError::Ca)?
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
