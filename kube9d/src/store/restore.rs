//! `kube9d snapshot restore FILE --data-dir DIR`: a new store in `DIR/store` from a snapshot
//! file, offline.
//!
//! It never writes over a store: a `DIR` that holds one is refused (a kube9d running on `DIR`
//! holds one, so it is never restored under a running kube9d). The file is read and checked
//! whole ([`super::snapshot_file::decode`]) before anything is written, so a truncated or
//! altered file leaves `DIR` as it was. The store is written under `DIR/store.restoring`, made
//! durable, then renamed into place: a restore cut short leaves no half store where kube9d would
//! open it.
//!
//! The snapshot's Secrets are sealed with the key of the cluster it was taken from, which the
//! file does not hold. When a key is at hand (`--secret-key-file`, or `DIR/secret.key`) every
//! Secret must open with it, or nothing is written; when none is, the summary says which file to
//! copy where.

use std::path::{Path, PathBuf};

use super::seal::{SealError, Sealer};
use super::snapshot_file::{self, FormatError, Record};

/// What a restore wrote.
#[derive(Debug)]
pub struct Restored {
    pub records: u64,
    pub secrets: u64,
    /// The new store.
    pub store_dir: PathBuf,
    pub key: KeyCheck,
}

/// What is known of the key the restored Secrets need.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyCheck {
    /// The snapshot holds no Secrets.
    NoSecrets,
    /// Every Secret opens with this key file.
    Opens(PathBuf),
    /// No key file at this path (`DIR/secret.key`): kube9d would make a new key there that
    /// opens none of them.
    Missing(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(
        "{data_dir} already holds a store ({store_dir}): restore into a data directory without \
         one, or move {store_dir} aside first (nothing was written)"
    )]
    HasStore { data_dir: String, store_dir: String },
    #[error("failed to read the snapshot {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("the snapshot {file} cannot be restored: {reason} (nothing was written)")]
    Format { file: String, reason: FormatError },
    #[error("--secret-key-file {0} does not exist (nothing was written)")]
    NoKeyFile(String),
    #[error(
        "the Secrets in the snapshot do not open with the key in {key_file} (secret {secret} \
         does not): give --secret-key-file the secret.key of the cluster the snapshot was \
         taken from (nothing was written)"
    )]
    WrongKey { key_file: String, secret: String },
    #[error("{0} (nothing was written)")]
    Key(SealError),
    #[error("failed to write the store in {dir}: {cause}")]
    Write { dir: String, cause: String },
}

/// Restores the snapshot `file` into data directory `data_dir`, checking its Secrets against
/// `key_file` (default: `<data_dir>/secret.key`, when it exists).
pub fn restore(
    file: &Path,
    data_dir: &Path,
    key_file: Option<&Path>,
) -> Result<Restored, RestoreError> {
    let store_dir = data_dir.join("store");
    refuse_a_store(data_dir, &store_dir)?;
    let bytes = std::fs::read(file).map_err(|source| RestoreError::Read {
        file: file.display().to_string(),
        source,
    })?;
    let records = snapshot_file::decode(&bytes).map_err(|reason| RestoreError::Format {
        file: file.display().to_string(),
        reason,
    })?;
    let key = check_key(&records, data_dir, key_file)?;
    write_store(data_dir, &store_dir, &records).map_err(|cause| RestoreError::Write {
        dir: data_dir.display().to_string(),
        cause,
    })?;
    Ok(Restored {
        records: records.len() as u64,
        secrets: secrets(&records).count() as u64,
        store_dir,
        key,
    })
}

impl Restored {
    /// What to tell the person who restored into `data_dir`.
    pub fn summary(&self, data_dir: &Path) -> String {
        let dir = data_dir.display();
        let mut out = format!(
            "Restored {} objects into {}.\n",
            self.records,
            self.store_dir.display()
        );
        match &self.key {
            KeyCheck::NoSecrets => {}
            KeyCheck::Opens(key) => out.push_str(&format!(
                "Its {} Secret(s) open with {}: start kube9d with that key file.\n",
                self.secrets,
                key.display()
            )),
            KeyCheck::Missing(key) => out.push_str(&format!(
                "Its {} Secret(s) are sealed with the key of the cluster the snapshot was taken \
                 from: copy that cluster's secret.key to {} (or start kube9d with \
                 --secret-key-file) before starting kube9d, or they cannot be read.\n",
                self.secrets,
                key.display()
            )),
        }
        out.push_str(&format!("Start it with: kube9d --data-dir {dir}\n"));
        out
    }
}

fn secrets(records: &[Record]) -> impl Iterator<Item = &Record> {
    records.iter().filter(|(k, _)| k.starts_with(b"s/"))
}

/// Refuses a data directory whose `store/` holds anything.
fn refuse_a_store(data_dir: &Path, store_dir: &Path) -> Result<(), RestoreError> {
    let holds_something = std::fs::read_dir(store_dir).is_ok_and(|mut d| d.next().is_some());
    if holds_something {
        return Err(RestoreError::HasStore {
            data_dir: data_dir.display().to_string(),
            store_dir: store_dir.display().to_string(),
        });
    }
    Ok(())
}

/// Opens every sealed Secret of the snapshot with the key at hand, if one is.
fn check_key(
    records: &[Record],
    data_dir: &Path,
    key_file: Option<&Path>,
) -> Result<KeyCheck, RestoreError> {
    if let Some(given) = key_file.filter(|k| !k.exists()) {
        return Err(RestoreError::NoKeyFile(given.display().to_string()));
    }
    let path = key_file.map_or_else(|| data_dir.join("secret.key"), Path::to_path_buf);
    if secrets(records).next().is_none() {
        return Ok(KeyCheck::NoSecrets);
    }
    if !path.exists() {
        return Ok(KeyCheck::Missing(path));
    }
    // The file exists, so this reads it (it creates keys only where there is none).
    let sealer = Sealer::from_key_file(&path).map_err(RestoreError::Key)?;
    for (key, sealed) in secrets(records) {
        if sealer.open(key, sealed).is_err() {
            return Err(RestoreError::WrongKey {
                key_file: path.display().to_string(),
                secret: String::from_utf8_lossy(&key[2..]).into_owned(),
            });
        }
    }
    Ok(KeyCheck::Opens(path))
}

/// Writes `records` as a sled store under `<data_dir>/store.restoring`, fsyncs it, and renames
/// it to `store_dir`.
fn write_store(data_dir: &Path, store_dir: &Path, records: &[Record]) -> Result<(), String> {
    let staging = data_dir.join("store.restoring");
    // What an interrupted restore left; never a store kube9d opens.
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .map_err(|e| format!("failed to remove {}: {e}", staging.display()))?;
    }
    super::private_dir(data_dir).map_err(|e| e.to_string())?;
    super::private_dir(&staging).map_err(|e| e.to_string())?;
    {
        let db = sled::Config::new()
            .path(&staging)
            .open()
            .map_err(|e| e.to_string())?;
        let mut batch = sled::Batch::default();
        for (key, value) in records {
            batch.insert(key.as_slice(), value.as_slice());
        }
        db.apply_batch(batch).map_err(|e| e.to_string())?;
        db.flush().map_err(|e| e.to_string())?;
    }
    super::make_private(&staging).map_err(|e| e.to_string())?;
    if store_dir.exists() {
        // Empty (refused otherwise): rename cannot replace a directory on every system.
        std::fs::remove_dir(store_dir).map_err(|e| e.to_string())?;
    }
    std::fs::rename(&staging, store_dir).map_err(|e| e.to_string())?;
    std::fs::File::open(data_dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("failed to sync {}: {e}", data_dir.display()))
}

#[cfg(test)]
mod tests {
    use super::super::{Batch, Op, Store};
    use super::*;
    use kube9_proto::pb;

    fn tempdir(name: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "kube9-restore-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A store with a pod, a namespace, a config map and a secret, exported to `file`.
    async fn snapshot_of_a_store(dir: &Path, file: &Path) -> pb::Secret {
        let store = Store::open(dir).unwrap();
        let secret = pb::Secret {
            name: "db".into(),
            namespace: "prod".into(),
            data: [("password".to_string(), b"hunter2".to_vec())].into(),
            ..Default::default()
        };
        let mut b = Batch::default();
        b.push(Op::PutNamespace(pb::Namespace {
            name: "prod".into(),
            ..Default::default()
        }));
        b.push(Op::PutPod(pb::Pod {
            name: "web".into(),
            namespace: "prod".into(),
            ..Default::default()
        }));
        b.push(Op::PutConfigMap(pb::ConfigMap {
            name: "game".into(),
            namespace: "prod".into(),
            ..Default::default()
        }));
        b.push(Op::PutSecret(secret.clone()));
        b.push(Op::PutMeta("cluster_id".into(), "c1".into()));
        store.submit(b).wait().await.unwrap();
        let exported = store.export().await.unwrap();
        assert_eq!(
            (exported.records, exported.secrets),
            (5, 1),
            "no commit counter"
        );
        std::fs::write(file, &exported.bytes).unwrap();
        secret
    }

    #[tokio::test]
    async fn a_restored_store_loads_what_was_exported() {
        let (from, to) = (tempdir("from"), tempdir("to"));
        let file = from.join("snap.db");
        let secret = snapshot_of_a_store(&from, &file).await;
        std::fs::copy(from.join("secret.key"), to.join("secret.key")).unwrap();
        let restored = restore(&file, &to, None).unwrap();
        assert_eq!((restored.records, restored.secrets), (5, 1));
        assert_eq!(restored.key, KeyCheck::Opens(to.join("secret.key")));
        assert!(!to.join("store.restoring").exists());
        let snap = Store::open(&to).unwrap().load().unwrap();
        assert_eq!(snap.pods[0].key(), "prod/web");
        assert_eq!(snap.namespaces[0].name, "prod");
        assert_eq!(snap.config_maps[0].key(), "prod/game");
        assert_eq!(snap.secrets, vec![secret]);
        assert_eq!(snap.meta, vec![("cluster_id".into(), "c1".into())]);
        for d in [from, to] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[tokio::test]
    async fn a_data_directory_with_a_store_or_a_bad_file_or_key_is_refused_untouched() {
        let (from, to) = (tempdir("from"), tempdir("to"));
        let file = from.join("snap.db");
        snapshot_of_a_store(&from, &file).await;

        let err = restore(&file, &from, None).unwrap_err().to_string();
        assert!(err.contains("already holds a store"), "{err}");

        let bytes = std::fs::read(&file).unwrap();
        let cut = from.join("cut.db");
        std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
        let err = restore(&cut, &to, None).unwrap_err().to_string();
        assert!(
            err.contains("damaged or incomplete") && err.contains("nothing was written"),
            "{err}"
        );
        let mut altered = bytes.clone();
        altered[40] ^= 1;
        std::fs::write(&cut, &altered).unwrap();
        let err = restore(&cut, &to, None).unwrap_err().to_string();
        assert!(err.contains("checksum does not match"), "{err}");

        // Another cluster's key: refused, naming the secret, never its value.
        std::fs::write(to.join("secret.key"), [7u8; 32]).unwrap();
        let err = restore(&file, &to, None).unwrap_err().to_string();
        assert!(err.contains("secret prod/db does not"), "{err}");
        assert!(!err.contains("hunter2"));
        let missing = to.join("nope.key");
        let err = restore(&file, &to, Some(&missing)).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        assert!(!to.join("store").exists(), "nothing written");

        // No key at hand: restored, with what to copy where.
        std::fs::remove_file(to.join("secret.key")).unwrap();
        let restored = restore(&file, &to, None).unwrap();
        assert_eq!(restored.key, KeyCheck::Missing(to.join("secret.key")));
        let summary = restored.summary(&to);
        assert!(
            summary.contains("copy that cluster's secret.key to")
                && summary.contains("Restored 5 objects"),
            "{summary}"
        );
        assert!(!to.join("secret.key").exists(), "no key made");
        for d in [from, to] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}
