//! Dialing kube9d: TLS verified against the cluster's CA, the bearer token on every call, and
//! the CA pin a hand-joined agent starts from (`sha256:<hex>` of the CA certificate, as
//! kubeadm's `--discovery-token-ca-cert-hash`).

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use super::token::{hex, sha256};

/// A channel that sends the bearer token with every call.
pub type AuthChannel = InterceptedService<Channel, Bearer>;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("no certificate in the CA data")]
    NoCertificate,
    #[error("a CA hash is sha256:<64 hex digits>")]
    BadPin,
    #[error("cannot reach {addr} to fetch its CA: {message}")]
    Unreachable { addr: String, message: String },
    #[error("kube9d at {addr} presented no certificate matching the CA hash {pin}: refusing it (is the hash from this cluster?)")]
    PinMismatch { addr: String, pin: String },
    #[error("{0} is https but there is no CA to verify it with")]
    NoCa(String),
    #[error("invalid server address {0:?}: {1}")]
    BadUrl(String, String),
}

/// The `sha256:<hex>` hash of the first certificate in `pem`.
pub fn ca_hash(pem: &[u8]) -> Result<String, TlsError> {
    let der = CertificateDer::pem_slice_iter(pem)
        .next()
        .and_then(Result::ok)
        .ok_or(TlsError::NoCertificate)?;
    Ok(format!("sha256:{}", hex(&sha256(der.as_ref()))))
}

/// Checks the form of a CA hash; returns it lowercased.
pub fn parse_pin(pin: &str) -> Result<String, TlsError> {
    let hex = pin.trim().strip_prefix("sha256:").ok_or(TlsError::BadPin)?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(TlsError::BadPin);
    }
    Ok(format!("sha256:{}", hex.to_ascii_lowercase()))
}

/// `https://host:port` from `host:port`, `host` (port 7209) or a full URL, which is kept.
/// `tls: false` makes `http://` the default scheme.
pub fn server_url(server: &str, tls: bool) -> String {
    let server = server.trim().trim_end_matches('/');
    if server.contains("://") {
        return server.to_string();
    }
    let scheme = if tls { "https" } else { "http" };
    let has_port = server.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
    });
    if has_port {
        format!("{scheme}://{server}")
    } else {
        format!("{scheme}://{server}:{}", crate::DEFAULT_PORT)
    }
}

/// `(host, port)` of a URL made by [`server_url`].
fn host_port(url: &str) -> Result<(String, u16), TlsError> {
    let uri: tonic::codegen::http::Uri =
        url.parse()
            .map_err(|e: tonic::codegen::http::uri::InvalidUri| {
                TlsError::BadUrl(url.into(), e.to_string())
            })?;
    let host = uri
        .host()
        .ok_or_else(|| TlsError::BadUrl(url.into(), "no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(crate::DEFAULT_PORT);
    Ok((host, port))
}

/// An endpoint for `url`: TLS verified against `ca_pem` for `https://`, plain text for
/// `http://`.
pub fn endpoint(url: &str, ca_pem: Option<&[u8]>) -> Result<Endpoint, TlsError> {
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| TlsError::BadUrl(url.into(), e.to_string()))?;
    if !url.starts_with("https://") {
        return Ok(endpoint);
    }
    let ca = ca_pem.ok_or_else(|| TlsError::NoCa(url.into()))?;
    endpoint
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))
        .map_err(|e| TlsError::BadUrl(url.into(), e.to_string()))
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    /// `None`: send no credentials.
    pub fn new(token: Option<&str>) -> Bearer {
        Bearer(token.and_then(|t| {
            let mut v = MetadataValue::try_from(format!("Bearer {}", t.trim())).ok()?;
            v.set_sensitive(true);
            Some(v)
        }))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// Fetches kube9d's CA from its TLS handshake and accepts it only if its hash is `pin`. The
/// handshake itself proves nothing here; the caller then dials with this CA, which verifies
/// the server as usual.
pub async fn discover_ca(url: &str, pin: &str, timeout: Duration) -> Result<Vec<u8>, TlsError> {
    let pin = parse_pin(pin)?;
    let (host, port) = host_port(url)?;
    let addr = format!("{host}:{port}");
    let unreachable = |message: String| TlsError::Unreachable {
        addr: addr.clone(),
        message,
    };
    let connect = async {
        let tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        connect_unverified(tcp, &host)
            .await
            .map_err(|e| unreachable(format!("TLS handshake failed: {e}")))
    };
    let tls = tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| unreachable(format!("no answer in {timeout:?}")))??;
    let chain = tls.get_ref().1.peer_certificates().unwrap_or_default();
    let ca = chain
        .iter()
        .find(|der| format!("sha256:{}", hex(&sha256(der.as_ref()))) == pin)
        .ok_or_else(|| TlsError::PinMismatch {
            addr: addr.clone(),
            pin: pin.clone(),
        })?;
    Ok(pem_certificate(ca.as_ref()).into_bytes())
}

/// TLS over `tcp` to `host` (a name or an address; only sent as SNI) accepting any server
/// certificate: the handshake's signatures are still checked, so the peer holds the key of
/// the certificate it sent. For kube9d's CA discovery (the pin decides afterwards) and for
/// HTTPS probes, whose certificate the kubelet does not verify either.
pub async fn connect_unverified(
    tcp: tokio::net::TcpStream,
    host: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string())
        .unwrap_or_else(|_| ServerName::try_from("kube9d".to_string()).expect("a valid name"));
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// One certificate as PEM.
pub fn pem_certificate(der: &[u8]) -> String {
    let b64 = crate::base64::encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Accepts any certificate chain but still checks the handshake signatures, so the peer holds
/// the key of the certificate it sent (see [`connect_unverified`]).
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_default_to_tls_and_the_port() {
        assert_eq!(server_url("10.0.0.1:7300", true), "https://10.0.0.1:7300");
        assert_eq!(server_url("kube9d", true), "https://kube9d:7209");
        assert_eq!(server_url("10.0.0.1:7300", false), "http://10.0.0.1:7300");
        assert_eq!(server_url("http://h:1/", true), "http://h:1");
        assert_eq!(host_port("https://[::1]:9").unwrap(), ("::1".into(), 9));
    }

    #[test]
    fn pins_are_checked() {
        assert!(parse_pin("sha256:abc").is_err());
        assert!(parse_pin(&format!("md5:{}", "0".repeat(64))).is_err());
        let p = parse_pin(&format!("sha256:{}", "A".repeat(64))).unwrap();
        assert_eq!(p, format!("sha256:{}", "a".repeat(64)));
    }

    #[test]
    fn https_needs_a_ca() {
        assert!(matches!(
            endpoint("https://h:1", None),
            Err(TlsError::NoCa(_))
        ));
        assert!(endpoint("http://h:1", None).is_ok());
    }

    #[test]
    fn pem_round_trip_and_hash() {
        let der = vec![0x30u8, 0x03, 0x02, 0x01, 0x01];
        let pem = pem_certificate(&der);
        let back = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert_eq!(back.as_ref(), &der[..]);
        assert_eq!(
            ca_hash(pem.as_bytes()).unwrap(),
            format!("sha256:{}", hex(&sha256(&der)))
        );
        assert!(matches!(ca_hash(b"nothing"), Err(TlsError::NoCertificate)));
    }
}
