//! The cluster CA and kube9d's serving certificate, made at first start in `<data-dir>/tls/`:
//!
//! | file         | what                                                      |
//! |--------------|-----------------------------------------------------------|
//! | `ca.crt`     | the cluster CA (ECDSA P-256, 10 years): clients trust it  |
//! | `ca.key`     | its key (0600): signs the serving certificate             |
//! | `server.crt` | kube9d's certificate, then the CA's (the chain it sends)  |
//! | `server.key` | its key (0600)                                            |
//! | `server.json`| the names it carries and when it ends                     |
//!
//! The serving certificate names every address kube9d serves (the listen address, or every
//! address of this host when it listens on all of them, the Docker network's gateway, and
//! `--tls-san`). It is made again, by the same CA, when a wanted name is missing or it ends
//! within 30 days; the CA never changes, so clients and pinned agents keep working.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

const CA_DAYS: i64 = 3650;
const SERVER_DAYS: i64 = 365;
const RENEW_DAYS: i64 = 30;

/// What kube9d serves TLS with, and what it tells clients to trust.
#[derive(Clone)]
pub struct Pki {
    pub ca_pem: String,
    /// `sha256:<hex>` of the CA certificate.
    pub ca_hash: String,
    /// The serving certificate followed by the CA's.
    pub chain_pem: String,
    pub key_pem: String,
    pub ca_file: PathBuf,
}

#[derive(Serialize, Deserialize, Default)]
struct ServerMeta {
    names: BTreeSet<String>,
    not_after_unix: i64,
}

impl Pki {
    /// Loads the CA (making it at first start) and a serving certificate for `names`.
    pub fn load_or_create(data_dir: &Path, names: &BTreeSet<String>) -> anyhow::Result<Pki> {
        let dir = data_dir.join("tls");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        let (ca_pem, ca_key_pem) = load_or_create_ca(&dir)?;
        let (cert_pem, key_pem) = load_or_issue_server(&dir, &ca_pem, &ca_key_pem, names)?;
        let ca_hash = kube9_proto::client::tls::ca_hash(ca_pem.as_bytes())
            .context("the stored CA certificate is unreadable")?;
        Ok(Pki {
            chain_pem: format!("{cert_pem}{ca_pem}"),
            ca_pem,
            ca_hash,
            key_pem,
            ca_file: dir.join("ca.crt"),
        })
    }
}

fn load_or_create_ca(dir: &Path) -> anyhow::Result<(String, String)> {
    let (cert, key) = (dir.join("ca.crt"), dir.join("ca.key"));
    if cert.exists() && key.exists() {
        return Ok((read(&cert)?, read(&key)?));
    }
    let key_pair = KeyPair::generate().context("failed to make the CA key")?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "kube9 cluster CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(CA_DAYS);
    let ca = params
        .self_signed(&key_pair)
        .context("failed to make the CA")?;
    // The key first: a CA certificate without its key would be useless on the next start.
    write_private(&key, &key_pair.serialize_pem())?;
    write_private(&cert, &ca.pem())?;
    tracing::info!(ca = %cert.display(), "made the cluster CA");
    Ok((ca.pem(), key_pair.serialize_pem()))
}

fn load_or_issue_server(
    dir: &Path,
    ca_pem: &str,
    ca_key_pem: &str,
    names: &BTreeSet<String>,
) -> anyhow::Result<(String, String)> {
    let (cert, key, meta_file) = (
        dir.join("server.crt"),
        dir.join("server.key"),
        dir.join("server.json"),
    );
    let meta: ServerMeta = std::fs::read(&meta_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let now = OffsetDateTime::now_utc();
    let fresh = meta.not_after_unix > (now + Duration::days(RENEW_DAYS)).unix_timestamp();
    if fresh && names.is_subset(&meta.names) && cert.exists() && key.exists() {
        return Ok((read(&cert)?, read(&key)?));
    }
    // Keep the names it had: an address that went away for now may come back.
    let all: BTreeSet<String> = names.union(&meta.names).cloned().collect();
    let ca_key = KeyPair::from_pem(ca_key_pem).context("the stored CA key is unreadable")?;
    let issuer = Issuer::from_ca_cert_pem(ca_pem, ca_key).context("the stored CA is unreadable")?;
    let key_pair = KeyPair::generate().context("failed to make the server key")?;
    let mut params = CertificateParams::new(all.iter().cloned().collect::<Vec<_>>())
        .context("a server certificate name is invalid (see --tls-san)")?;
    params.distinguished_name.push(DnType::CommonName, "kube9d");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(SERVER_DAYS);
    let issued = params
        .signed_by(&key_pair, &issuer)
        .context("failed to sign the server certificate")?;
    write_private(&key, &key_pair.serialize_pem())?;
    write_private(&cert, &issued.pem())?;
    let meta = ServerMeta {
        names: all.clone(),
        not_after_unix: params.not_after.unix_timestamp(),
    };
    write_private(&meta_file, &serde_json::to_string_pretty(&meta)?)?;
    tracing::info!(names = ?all, "issued the server certificate");
    Ok((issued.pem(), key_pair.serialize_pem()))
}

/// The names kube9d's certificate must carry when it listens on `listen`: `localhost`,
/// `kube9d`, this host's name, loopback, the listen address (every address of this host when
/// it is unspecified), `extra` (the Docker gateway) and `sans` (`--tls-san`).
pub fn serving_names(listen: IpAddr, extra: &[String], sans: &[String]) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = ["localhost", "kube9d", "127.0.0.1", "::1"]
        .into_iter()
        .map(String::from)
        .collect();
    if let Ok(host) = nix::unistd::gethostname() {
        if let Some(h) = host.to_str().filter(|h| !h.is_empty()) {
            names.insert(h.to_string());
        }
    }
    if listen.is_unspecified() {
        names.extend(host_addresses().into_iter().map(|ip| ip.to_string()));
    } else {
        names.insert(listen.to_string());
    }
    names.extend(extra.iter().cloned());
    names.extend(
        sans.iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
    );
    names
}

/// Every address of this host's interfaces.
fn host_addresses() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|ifa| {
            let a = ifa.address?;
            if let Some(v4) = a.as_sockaddr_in() {
                return Some(IpAddr::V4(v4.ip()));
            }
            a.as_sockaddr_in6()
                .filter(|v6| v6.scope_id() == 0)
                .map(|v6| IpAddr::V6(v6.ip()))
        })
        .collect()
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))
}

/// Writes `text` to `path` with mode 0600, whole or not at all.
pub(crate) fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("failed to write {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("failed to write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kube9-pki-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn the_ca_stays_and_the_server_certificate_grows_its_names() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp("grow");
        let a: BTreeSet<String> = ["127.0.0.1".to_string()].into();
        let first = Pki::load_or_create(&dir, &a).unwrap();
        let again = Pki::load_or_create(&dir, &a).unwrap();
        assert_eq!(
            first.chain_pem, again.chain_pem,
            "nothing new: nothing made"
        );
        let b: BTreeSet<String> = ["127.0.0.1".to_string(), "10.9.8.7".to_string()].into();
        let grown = Pki::load_or_create(&dir, &b).unwrap();
        assert_ne!(
            grown.chain_pem, first.chain_pem,
            "a new name: a new certificate"
        );
        assert_eq!(grown.ca_pem, first.ca_pem, "by the same CA");
        assert_eq!(grown.ca_hash, first.ca_hash);
        assert!(
            grown.chain_pem.ends_with(&grown.ca_pem),
            "the chain carries the CA"
        );
        for f in ["ca.key", "server.key"] {
            let mode = std::fs::metadata(dir.join("tls").join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_cover_loopback_the_listen_address_and_sans() {
        let n = serving_names(
            "10.1.2.3".parse().unwrap(),
            &["172.18.0.1".into()],
            &["k9.example".into()],
        );
        for want in [
            "localhost",
            "127.0.0.1",
            "10.1.2.3",
            "172.18.0.1",
            "k9.example",
        ] {
            assert!(n.contains(want), "{want} in {n:?}");
        }
        let all = serving_names("0.0.0.0".parse().unwrap(), &[], &[]);
        assert!(all.contains("127.0.0.1"));
    }
}
