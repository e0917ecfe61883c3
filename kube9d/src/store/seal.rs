//! Secrets at rest: each stored Secret is sealed with ChaCha20-Poly1305 from RustCrypto's
//! maintained `chacha20poly1305` crate. It is an authenticated cipher (a changed byte makes
//! opening fail instead of yielding garbage) and, unlike AES-GCM, runs in constant time in
//! software on any CPU, so it needs no AES-NI for speed or for side-channel safety.
//!
//! A sealed value is `version (1 byte) || nonce (12 bytes, random per write) || ciphertext`,
//! with the store key it is written under (`s/<namespace>/<name>`) as associated data: a
//! value copied to another secret's key does not open.
//!
//! The key is 32 random bytes in a file of its own: by default `<data-dir>/secret.key`,
//! `--secret-key-file` names another. At first start it is created with mode 0600 (written to
//! a temporary file, fsynced, then linked into place, so a crash never leaves a short key). A
//! key file others can read has its mode fixed to 0600, with a warning. Keep a copy of it
//! with the backups of the data directory: without it the stored Secrets cannot be read.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

/// Format of a sealed value.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("secret key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("secret key file {path} must hold exactly {KEY_LEN} bytes (it holds {len})")]
    KeyLength { path: String, len: usize },
    #[error(
        "it does not decrypt with the key in {key_file}: that key file does not match the one \
         the store was written with (or the stored value was altered)"
    )]
    WrongKey { key_file: String },
    #[error("unknown format (version {version}, {len} bytes)")]
    Format { version: u8, len: usize },
}

/// The cipher for Secrets, with its key. Deliberately not `Debug`.
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
    /// For error messages.
    key_file: Arc<str>,
}

impl Sealer {
    /// Reads the key from `path`, creating it (mode 0600, random) when it does not exist.
    pub fn from_key_file(path: &Path) -> Result<Self, SealError> {
        let err = |source| SealError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        if !path.exists() {
            generate(path).map_err(err)?;
            tracing::info!(path = %path.display(), "generated the key that encrypts Secrets at rest");
        }
        let mode = fs::metadata(path).map_err(err)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", mode & 0o777),
                "the secret key file was readable by others; setting its mode to 0600"
            );
            fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(err)?;
        }
        let bytes = fs::read(path).map_err(err)?;
        if bytes.len() != KEY_LEN {
            return Err(SealError::KeyLength {
                path: path.display().to_string(),
                len: bytes.len(),
            });
        }
        Ok(Sealer {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)),
            key_file: path.display().to_string().into(),
        })
    }

    /// Seals `plain` for store key `aad`.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, Payload { msg: plain, aad })
            .expect("ChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a value sealed for store key `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
            return Err(SealError::Format {
                version: sealed.first().copied().unwrap_or(0),
                len: sealed.len(),
            });
        }
        let nonce = Nonce::from_slice(&sealed[1..1 + NONCE_LEN]);
        let payload = Payload {
            msg: &sealed[1 + NONCE_LEN..],
            aad,
        };
        (self.cipher.decrypt(nonce, payload)).map_err(|_| SealError::WrongKey {
            key_file: self.key_file.to_string(),
        })
    }
}

/// Writes a new random key to `path`, which must not exist: into a temporary file beside it
/// (mode 0600, fsynced), then hard-linked into place, which fails rather than replace a key
/// someone else wrote meanwhile.
fn generate(path: &Path) -> std::io::Result<()> {
    let key = ChaCha20Poly1305::generate_key(&mut OsRng);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // OpenOptions' mode is masked by the umask, which is what we want; make sure anyway.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(&key)?;
        file.sync_all()?;
        fs::hard_link(&tmp, path)
    })();
    let _ = fs::remove_file(&tmp);
    match written {
        // Another process made it first: use theirs.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
        Ok(()) => {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            fs::File::open(parent)?.sync_all()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "kube9-seal-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_sealed_value_opens_only_under_its_key_and_with_its_key_file() {
        let d = dir();
        let path = d.join("secret.key");
        let sealer = Sealer::from_key_file(&path).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read(&path).unwrap().len(), KEY_LEN);
        assert_eq!(
            fs::read_dir(&d).unwrap().count(),
            1,
            "no temporary file left"
        );
        let sealed = sealer.seal(b"s/default/db", b"hunter2");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_ne!(
            sealed,
            sealer.seal(b"s/default/db", b"hunter2"),
            "fresh nonce"
        );
        assert_eq!(sealer.open(b"s/default/db", &sealed).unwrap(), b"hunter2");
        assert!(
            sealer.open(b"s/default/other", &sealed).is_err(),
            "moved to another key"
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sealer.open(b"s/default/db", &tampered).is_err());
        assert!(matches!(
            sealer.open(b"s/default/db", &[9, 1, 2]),
            Err(SealError::Format { .. })
        ));
        // The same file gives the same key; another file does not open it.
        let again = Sealer::from_key_file(&path).unwrap();
        assert!(again.open(b"s/default/db", &sealed).is_ok());
        let other = Sealer::from_key_file(&d.join("other.key")).unwrap();
        let err = other
            .open(b"s/default/db", &sealed)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("other.key") && err.contains("does not match") && !err.contains("hunter2"),
            "{err}"
        );
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_key_file_others_can_read_gets_mode_0600() {
        let d = dir();
        let path = d.join("secret.key");
        Sealer::from_key_file(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        Sealer::from_key_file(&path).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_key_file_of_the_wrong_length_is_refused() {
        let d = dir();
        let path = d.join("secret.key");
        fs::write(&path, b"short").unwrap();
        let err = Sealer::from_key_file(&path).err().unwrap().to_string();
        assert!(err.contains("32 bytes") && err.contains("holds 5"), "{err}");
        let _ = fs::remove_dir_all(&d);
    }
}
