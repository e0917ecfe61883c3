//! Durable state: one [`Store`] handle in front of the storage engine (sled today).
//!
//! Nothing outside this module knows about sled. The control plane keeps its working state in
//! memory and sends every change here as a [`Batch`] of [`Op`]s, in the order it made them. One
//! writer thread applies batches and makes them durable with *group commit*: it drains every
//! batch that is waiting, applies them as one atomic sled batch, fsyncs once, then acknowledges
//! all of them. Many concurrent `apply` calls therefore share one fsync, and an acknowledged
//! write has reached the disk.
//!
//! Keys live in one sled tree with a prefix per kind, so a batch that touches several kinds is
//! still atomic:
//!
//! | prefix | key                          | value                          |
//! |--------|------------------------------|--------------------------------|
//! | `n/`   | `n/<node>`                   | `pb::Node`                     |
//! | `p/`   | `p/<namespace>/<pod>`        | `pb::Pod`                      |
//! | `e/`   | `e/<id, 8 bytes big-endian>` | `pb::Event`                    |
//! | `m/`   | `m/<key>`                    | UTF-8 text                     |
//! | `ns/`  | `ns/<namespace>`             | `pb::Namespace`                |
//! | `cm/`  | `cm/<namespace>/<name>`      | `pb::ConfigMap`                |
//! | `s/`   | `s/<namespace>/<name>`       | `pb::Secret`, sealed           |
//! | `t/`   | `t/<token id>`               | `pb::StoredToken` (a hash)     |
//! | `g/`   | `g/commit`                   | the commit counter, 8 bytes    |
//!
//! No prefix starts with another (`ns/` does not start with `n/`, nor `s/`), so a prefix scan
//! reads exactly one kind. Values are the protobuf encodings of the wire types.
//!
//! Secrets are encrypted at rest ([`seal`]): ChaCha20-Poly1305, a random nonce per write, the
//! store key as associated data, under a 32-byte key in its own file (`<data-dir>/secret.key`
//! unless [`Store::open_with_key`] names another; created 0600 at first start). No value of a
//! secret is on disk in the clear. [`Snapshot::secrets`] holds them opened.
//!
//! Files are private: [`Store::open`] makes the data directory 0700 and everything under
//! `<data-dir>/store` 0600 (directories 0700), fixing what an older release left readable;
//! kube9d runs with umask 077, so what sled creates later is private as well. The rest of the
//! data directory (agents' state under `nodes/`) keeps its modes.
//!
//! Damage: sled panics on some damaged files, reports others as corrupt, and silently cuts a
//! log whose checksum fails at the damage (opening a store damaged near its start *empty*).
//! [`Store::open`] catches the panics ([`guard`]), reads every key and value once, and compares
//! the commit counter ([`watermark`]) with the one recorded beside the store, so each of these
//! ends in one [`Error::Damaged`] saying what to do; kube9d exits with [`DAMAGED_EXIT_CODE`] (3).
//!
//! Only what is durable is read: the writer keeps a copy of every record as of its last
//! acknowledged commit ([`Store::load`], [`Store::export`] read that copy, never sled), updated
//! after each fsync and before any acknowledgement. A write that fails (a full disk, an I/O
//! error) is answered [`Error::ReadOnly`], and so is every later one: sled cannot be trusted
//! after an I/O error (it refuses every further call, and some of its reads spin), so the
//! writer lets go of it without touching it again, and kube9d serves what was durable, read
//! only, until it is restarted. Whoever made the refused change rolls it back
//! ([`Store::submit_then`] says which ones).
//!
//! Snapshots: [`Store::export`] encodes that copy, as of one commit (so no batch lands
//! half-way), into a snapshot file ([`snapshot_file`]); [`restore`] writes a new store from
//! one, offline.
//!
//! Upgrade: stores written before namespaces existed hold pods at `p/<pod>`, without a
//! namespace. [`Store::open`] moves each to `p/default/<pod>` with namespace `default`, in
//! one atomic, flushed batch, before anything else reads or writes the store; the next open
//! finds nothing left to move.

mod guard;
pub mod restore;
pub mod seal;
pub mod snapshot_file;
mod watermark;

use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread;

use kube9_proto::pb;
use parking_lot::RwLock;
use prost::Message;
use tokio::sync::oneshot;

/// kube9d's exit code when its store is damaged ([`Error::Damaged`]), so that scripts and
/// service managers can tell it apart: other errors exit with 1, and 2 is clap's, for a
/// command line it refuses.
pub const DAMAGED_EXIT_CODE: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to open the store at {path}: {source}")]
    Open { path: String, source: sled::Error },
    /// The store cannot be trusted: sled found it corrupt or panicked reading it, its log lost
    /// acknowledged commits, or a value does not decode.
    #[error(
        "the store in {data_dir} is damaged ({cause}): move {store_dir} aside and restore a \
         snapshot with `kube9d snapshot restore FILE --data-dir {data_dir}`, or move {data_dir} \
         aside to start an empty cluster"
    )]
    Damaged {
        data_dir: String,
        store_dir: String,
        cause: String,
    },
    #[error("failed to write the store: {0}")]
    Write(#[from] sled::Error),
    #[error("failed to read the store: {0}")]
    Read(sled::Error),
    #[error("failed to open {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("failed to decode stored {kind} {key}: {source}")]
    Decode {
        kind: &'static str,
        key: String,
        source: prost::DecodeError,
    },
    #[error("the store writer has stopped")]
    Closed,
    /// A write failed; nothing is written any more until kube9d restarts.
    #[error(
        "the store in {data_dir} could not be written ({cause}); nothing was changed, and \
         kube9d serves reads only until it is restarted: free space or fix the disk, then \
         restart kube9d"
    )]
    ReadOnly { data_dir: String, cause: String },
    /// The secret key file cannot be read or created.
    #[error(transparent)]
    Seal(#[from] seal::SealError),
    /// A stored Secret does not decrypt (never carries any of its values).
    #[error("failed to read stored secret {key}: {source}")]
    Secret {
        /// `namespace/name`.
        key: String,
        source: seal::SealError,
    },
    #[error("failed to make {path} private: {source}")]
    Permissions {
        path: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the store is damaged (kube9d exits with [`DAMAGED_EXIT_CODE`]).
    pub fn is_damaged(&self) -> bool {
        matches!(self, Error::Damaged { .. })
    }
}

/// The store of data directory `dir` is damaged, because of `cause`.
fn damaged(dir: &Path, cause: impl Into<String>) -> Error {
    Error::Damaged {
        data_dir: dir.display().to_string(),
        store_dir: dir.join("store").display().to_string(),
        cause: cause.into(),
    }
}

/// What a sled error says about a store it reads.
fn sled_cause(e: &sled::Error) -> String {
    match e {
        sled::Error::Corruption { .. } => "sled read corrupted data".to_string(),
        sled::Error::ReportableBug(what) => format!("sled found it inconsistent: {what}"),
        other => format!("sled could not read it: {other}"),
    }
}

/// One change to durable state.
#[derive(Debug, Clone)]
pub enum Op {
    PutNode(pb::Node),
    DeleteNode(String),
    /// Stored under the pod's key, `namespace/name` ([`pb::Pod::key`]).
    PutPod(pb::Pod),
    /// By key: `namespace/name`.
    DeletePod(String),
    PutEvent(pb::Event),
    DeleteEvent(u64),
    PutMeta(String, String),
    PutNamespace(pb::Namespace),
    /// By name.
    DeleteNamespace(String),
    /// Stored under its key, `namespace/name`.
    PutConfigMap(pb::ConfigMap),
    /// By key: `namespace/name`.
    DeleteConfigMap(String),
    /// Stored under its key, `namespace/name`, sealed with the store's key.
    PutSecret(pb::Secret),
    /// By key: `namespace/name`.
    DeleteSecret(String),
    /// A bearer token's record (its secret's hash, never the secret), by id.
    PutToken(pb::StoredToken),
    /// By id.
    DeleteToken(String),
}

/// Changes that become durable together.
#[derive(Debug, Default)]
pub struct Batch {
    pub ops: Vec<Op>,
}

impl Batch {
    pub fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Everything stored, as loaded at start-up.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub nodes: Vec<pb::Node>,
    pub pods: Vec<pb::Pod>,
    /// Oldest first.
    pub events: Vec<pb::Event>,
    pub meta: Vec<(String, String)>,
    pub namespaces: Vec<pb::Namespace>,
    pub config_maps: Vec<pb::ConfigMap>,
    /// Decrypted with the store's key.
    pub secrets: Vec<pb::Secret>,
}

/// Run by the writer thread once a batch is durable (`Ok`) or refused (`Err`), in the order
/// batches were submitted, before anything submitted later is acknowledged.
pub type Then = Box<dyn FnOnce(&Result<()>) + Send>;

/// A batch to make durable (an empty one: wait for those before it).
struct Request {
    batch: Batch,
    ack: Option<oneshot::Sender<Result<()>>>,
    then: Option<Then>,
}

/// Every record of the store (but the commit counter) as of the last acknowledged commit, by
/// key, as sled holds them (values cheap to clone).
type Records = BTreeMap<sled::IVec, sled::IVec>;

/// Cheap-to-clone handle to the durable store.
#[derive(Clone)]
pub struct Store {
    tx: std_mpsc::Sender<Request>,
    sealer: seal::Sealer,
    /// The data directory, for messages.
    dir: Arc<Path>,
    /// What is durable; written by the writer thread only.
    durable: Arc<RwLock<Records>>,
    /// Tests: the next write fails as a full disk would.
    #[cfg(test)]
    fail_next: Arc<std::sync::atomic::AtomicBool>,
}

/// Resolves when a submitted batch is durable.
pub struct Commit(Option<oneshot::Receiver<Result<()>>>);

impl Commit {
    /// A commit with nothing to wait for.
    pub fn done() -> Self {
        Commit(None)
    }

    pub async fn wait(self) -> Result<()> {
        match self.0 {
            None => Ok(()),
            Some(rx) => rx.await.unwrap_or(Err(Error::Closed)),
        }
    }
}

impl Store {
    /// Opens (or creates) the store in `<dir>/store` and starts its writer thread; Secrets are
    /// sealed with the key in `<dir>/secret.key` (created when missing).
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with_key(dir, &dir.join("secret.key"))
    }

    /// [`Store::open`] with the Secrets' key in `key_file` (created, mode 0600, when missing).
    /// Makes `dir` 0700 and the store's files private, and moves pods stored before
    /// namespaces existed into `default`.
    pub fn open_with_key(dir: &Path, key_file: &Path) -> Result<Self> {
        private_dir(dir)?;
        let store_dir = dir.join("store");
        private_dir(&store_dir)?;
        let db = open_db(dir, &store_dir)?;
        // After sled's open: it holds the lock (one process gets here), and what it created is
        // there to fix.
        make_private(&store_dir)?;
        let (mark, commits) = check_intact(dir, &store_dir, &db)?;
        let sealer = seal::Sealer::from_key_file(key_file)?;
        upgrade_legacy_pods(&db)?;
        let durable = Arc::new(RwLock::new(read_records(dir, &db)?));
        let (tx, rx) = std_mpsc::channel::<Request>();
        #[cfg(test)]
        let fail_next = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = Writer {
            db: Some(db),
            sealer: sealer.clone(),
            mark,
            commits,
            dir: dir.into(),
            durable: durable.clone(),
            broken: None,
            #[cfg(test)]
            fail_next: fail_next.clone(),
        };
        thread::Builder::new()
            .name("kube9-store-writer".into())
            .spawn(move || writer.run(rx))
            .expect("failed to spawn the store writer thread");
        Ok(Store {
            tx,
            sealer,
            dir: dir.into(),
            durable,
            #[cfg(test)]
            fail_next,
        })
    }

    /// Reads back everything durable.
    pub fn load(&self) -> Result<Snapshot> {
        let records = self.durable.read();
        let scan = |prefix: &'static [u8]| scan_prefix(&records, prefix);
        let mut snap = Snapshot::default();
        for (k, v) in scan(b"n/") {
            snap.nodes.push(self.decode("node", k, v)?);
        }
        for (k, v) in scan(b"p/") {
            snap.pods.push(self.decode("pod", k, v)?);
        }
        for (k, v) in scan(b"ns/") {
            snap.namespaces.push(self.decode("namespace", k, v)?);
        }
        for (k, v) in scan(b"cm/") {
            snap.config_maps.push(self.decode("config map", k, v)?);
        }
        for (k, v) in scan(b"s/") {
            let plain = self.sealer.open(k, v).map_err(|source| Error::Secret {
                key: String::from_utf8_lossy(&k[2..]).into_owned(),
                source,
            })?;
            snap.secrets.push(self.decode("secret", k, &plain)?);
        }
        for (k, v) in scan(b"e/") {
            snap.events.push(self.decode("event", k, v)?);
        }
        for (k, v) in scan(b"m/") {
            let key = String::from_utf8_lossy(&k[2..]).into_owned();
            snap.meta
                .push((key, String::from_utf8_lossy(v).into_owned()));
        }
        Ok(snap)
    }

    /// The bearer tokens' records.
    pub fn load_tokens(&self) -> Result<Vec<pb::StoredToken>> {
        let records = self.durable.read();
        (scan_prefix(&records, b"t/"))
            .map(|(k, v)| self.decode("token", k, v))
            .collect()
    }

    /// A stored value that does not decode means a damaged store, with what to do.
    fn decode<M: Message + Default>(
        &self,
        kind: &'static str,
        key: &[u8],
        value: &[u8],
    ) -> Result<M> {
        decode(kind, key, value).map_err(|e| damaged(&self.dir, e.to_string()))
    }

    /// Every record (but the commit counter) as of one commit, encoded as a snapshot file.
    /// Secrets stay sealed. Works when the store has become read only, too.
    pub async fn export(&self) -> Result<snapshot_file::Encoded> {
        let records = self.durable.read().clone();
        Ok(snapshot_file::encode(
            records.iter().map(|(k, v)| (&k[..], &v[..])),
        ))
    }

    /// Queues a batch; the returned [`Commit`] resolves once it is durable. Batches become
    /// durable in the order they were submitted.
    pub fn submit(&self, batch: Batch) -> Commit {
        if batch.is_empty() {
            return Commit::done();
        }
        self.request(batch, None)
    }

    /// [`Store::submit`], and `then` runs on the writer thread once the batch is durable or
    /// refused, in submission order, before any later batch is acknowledged: the place to
    /// publish what the batch made true, or to roll it back. Even an empty batch goes through
    /// the writer, so that `then` keeps its place in that order.
    pub fn submit_then(&self, batch: Batch, then: Then) -> Commit {
        self.request(batch, Some(then))
    }

    fn request(&self, batch: Batch, then: Option<Then>) -> Commit {
        let (ack, rx) = oneshot::channel();
        let req = Request {
            batch,
            ack: Some(ack),
            then,
        };
        if let Err(std_mpsc::SendError(req)) = self.tx.send(req) {
            if let Some(then) = req.then {
                then(&Err(Error::Closed));
            }
            return Commit::done_with_error();
        }
        Commit(Some(rx))
    }

    /// Queues a batch without waiting for it (status updates nobody is waiting on).
    pub fn submit_detached(&self, batch: Batch) {
        if !batch.is_empty() {
            let _ = self.tx.send(Request {
                batch,
                ack: None,
                then: None,
            });
        }
    }

    /// Waits until everything submitted so far is durable.
    pub async fn flush(&self) -> Result<()> {
        self.request(Batch::default(), None).wait().await
    }

    /// Tests: the next write fails as on a full disk, and the store becomes read only.
    #[cfg(test)]
    pub fn fail_next_write(&self) {
        self.fail_next
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The records of `records` whose keys start with `prefix`, in key order.
fn scan_prefix<'a>(
    records: &'a Records,
    prefix: &'static [u8],
) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    (records.range::<[u8], _>((
        std::ops::Bound::Included(prefix),
        std::ops::Bound::Unbounded,
    )))
    .take_while(move |(k, _)| k.starts_with(prefix))
    .map(|(k, v)| (&k[..], &v[..]))
}

/// Every record of `db` but the commit counter, read once at open; what sled cannot read
/// means a damaged store.
fn read_records(dir: &Path, db: &sled::Db) -> Result<Records> {
    let read = guard::catching(|| {
        (db.iter())
            .filter(|item| !matches!(item, Ok((k, _)) if k.starts_with(watermark::PREFIX)))
            .collect::<Result<Records, _>>()
    });
    match read {
        Ok(Ok(records)) => Ok(records),
        Ok(Err(e)) => Err(damaged(dir, sled_cause(&e))),
        Err(panic) => Err(damaged(dir, format!("sled gave up reading it: {panic}"))),
    }
}

impl Commit {
    fn done_with_error() -> Self {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(Err(Error::Closed));
        Commit(Some(rx))
    }
}

/// sled's open; its panics and corruption errors mean a damaged store.
fn open_db(dir: &Path, store_dir: &Path) -> Result<sled::Db> {
    let opened = guard::catching(|| {
        sled::Config::new()
            .path(store_dir)
            // sled's own background flush is a safety net; durability comes from group commit.
            .flush_every_ms(Some(1000))
            .open()
    });
    match opened {
        Ok(Ok(db)) => Ok(db),
        Err(panic) => Err(damaged(dir, format!("sled gave up opening it: {panic}"))),
        Ok(Err(e @ (sled::Error::Corruption { .. } | sled::Error::ReportableBug(_)))) => {
            Err(damaged(dir, sled_cause(&e)))
        }
        Ok(Err(source)) => Err(Error::Open {
            path: dir.display().to_string(),
            source,
        }),
    }
}

/// Reads every key and value once, so that a damaged page fails now, at start, with the advice,
/// rather than in some later read; then checks that the log kept every commit ([`watermark`]).
/// Returns the counter file and the last commit.
fn check_intact(
    dir: &Path,
    store_dir: &Path,
    db: &sled::Db,
) -> Result<(watermark::Watermark, u64)> {
    match guard::catching(|| db.iter().try_for_each(|item| item.map(drop))) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(damaged(dir, sled_cause(&e))),
        Err(panic) => return Err(damaged(dir, format!("sled gave up reading it: {panic}"))),
    }
    let stored = watermark::stored(db).map_err(|e| damaged(dir, sled_cause(&e)))?;
    let (mark, recorded) = watermark::Watermark::open(store_dir).map_err(|source| Error::File {
        path: store_dir.join(watermark::FILE).display().to_string(),
        source,
    })?;
    match watermark::check(stored, recorded) {
        Some(why) => Err(damaged(dir, why)),
        None => Ok((mark, stored)),
    }
}

fn decode<M: Message + Default>(kind: &'static str, key: &[u8], value: &[u8]) -> Result<M> {
    M::decode(value).map_err(|source| Error::Decode {
        kind,
        key: String::from_utf8_lossy(key).into_owned(),
        source,
    })
}

fn key(prefix: &str, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + name.len());
    k.extend_from_slice(prefix.as_bytes());
    k.extend_from_slice(name.as_bytes());
    k
}

fn event_key(id: u64) -> Vec<u8> {
    let mut k = b"e/".to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// Moves pods stored before namespaces existed (`p/<name>`, no namespace) to
/// `p/default/<name>`, in one atomic batch, made durable before the store is used.
fn upgrade_legacy_pods(db: &sled::Db) -> Result<()> {
    let mut batch = sled::Batch::default();
    let mut moved = 0;
    for item in db.scan_prefix(b"p/") {
        let (k, v) = item?;
        if k[2..].contains(&b'/') {
            continue;
        }
        let mut pod: pb::Pod = decode("pod", &k, &v)?;
        pod.namespace = kube9_proto::namespace::or_default(&pod.namespace).to_string();
        batch.remove(k);
        batch.insert(key("p/", &pod.key()), pod.encode_to_vec());
        moved += 1;
    }
    if moved > 0 {
        db.apply_batch(batch)?;
        db.flush()?;
        tracing::info!(
            pods = moved,
            "moved pods stored before namespaces existed into namespace default"
        );
    }
    Ok(())
}

/// Creates `path` (a directory) if needed, mode 0700, and sets it to 0700 if it exists.
fn private_dir(path: &Path) -> Result<()> {
    let err = |source| Error::Permissions {
        path: path.display().to_string(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(err)?;
    let mode = std::fs::metadata(path).map_err(err)?.permissions().mode();
    if mode & 0o777 != 0o700 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

/// Sets directory `path` and every directory under it to 0700, and takes the group and other
/// bits off every file under it (0600).
fn make_private(path: &Path) -> Result<()> {
    private_dir(path)?;
    let err = |source| Error::Permissions {
        path: path.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(path).map_err(err)? {
        let entry = entry.map_err(err)?;
        let kind = entry.file_type().map_err(err)?;
        if kind.is_dir() {
            make_private(&entry.path())?;
        } else if kind.is_file() {
            let mode = entry.metadata().map_err(err)?.permissions().mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))
                    .map_err(err)?;
            }
        }
    }
    Ok(())
}

/// How many times [`Writer::reclaim`] collects after a commit: up to 512 bags of garbage.
const RECLAIM_FLUSHES: usize = 64;

/// The one thread that writes the store.
struct Writer {
    /// `None` once a write failed: sled is left alone from then on.
    db: Option<sled::Db>,
    sealer: seal::Sealer,
    mark: watermark::Watermark,
    /// The last commit's counter.
    commits: u64,
    dir: Arc<Path>,
    durable: Arc<RwLock<Records>>,
    /// Why writes are refused, once one failed.
    broken: Option<String>,
    #[cfg(test)]
    fail_next: Arc<std::sync::atomic::AtomicBool>,
}

impl Writer {
    fn run(mut self, rx: std_mpsc::Receiver<Request>) {
        // Block for the first request, then take whatever else is already queued (up to 4096
        // batches): one fsync for all.
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            while group.len() < 4096 {
                match rx.try_recv() {
                    Ok(req) => group.push(req),
                    Err(_) => break,
                }
            }
            self.commit(group);
            Self::reclaim();
        }
    }

    /// Frees what sled has retired. sled hands every tree node it replaces to
    /// crossbeam-epoch, which frees retired memory only a few bags at a time as threads pin;
    /// under kube9d's write load it fell behind and never caught up: 150,000 pods on 5,000
    /// simulated nodes held 4.6 GB at rest, 1.4 GB with this (`scripts/bench --cases
    /// memory`). Each flush seals this thread's bag, advances the epoch when no thread is
    /// pinned in an older one and frees up to 8 expired bags: about 13 µs a commit when
    /// there is nothing to free.
    fn reclaim() {
        for _ in 0..RECLAIM_FLUSHES {
            crossbeam_epoch::pin().flush();
        }
    }

    /// Applies the group's batches as one sled batch with the next commit counter, fsyncs,
    /// records the counter, updates the durable copy, then tells every batch's submitter.
    fn commit(&mut self, group: Vec<Request>) {
        let staged: Vec<(sled::IVec, Option<sled::IVec>)> = (group.iter())
            .flat_map(|req| &req.batch.ops)
            .map(|op| stage(op, &self.sealer))
            .collect();
        let outcome = if staged.is_empty() && self.broken.is_none() {
            // Nothing to write: what came before is durable already.
            Ok(())
        } else {
            self.write(&staged)
        };
        if outcome.is_ok() && !staged.is_empty() {
            let mut durable = self.durable.write();
            for (k, v) in staged {
                match v {
                    Some(v) => durable.insert(k, v),
                    None => durable.remove(&k),
                };
            }
        }
        let result = || {
            outcome
                .as_ref()
                .map(|_| ())
                .map_err(|cause| Error::ReadOnly {
                    data_dir: self.dir.display().to_string(),
                    cause: cause.clone(),
                })
        };
        for req in group {
            if let Some(then) = req.then {
                then(&result());
            }
            if let Some(ack) = req.ack {
                let _ = ack.send(result());
            }
        }
    }

    /// Writes and fsyncs `staged` with the next commit counter. The first failure makes the
    /// store read only: sled is dropped without a flush (a flush or read of a sled that had an
    /// I/O error may spin) and every later write is refused with the same cause.
    fn write(&mut self, staged: &[(sled::IVec, Option<sled::IVec>)]) -> Result<(), String> {
        if let Some(cause) = &self.broken {
            return Err(cause.clone());
        }
        let db = self.db.as_ref().expect("present until a write fails");
        let mut batch = sled::Batch::default();
        for (k, v) in staged {
            match v {
                Some(v) => batch.insert(k.clone(), v.clone()),
                None => batch.remove(k.clone()),
            }
        }
        batch.insert(watermark::KEY, &watermark::encode(self.commits + 1)[..]);
        #[cfg(test)]
        let injected = self
            .fail_next
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        #[cfg(not(test))]
        let injected = false;
        let result = if injected {
            Err(sled::Error::Io(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "No space left on device (os error 28)",
            )))
        } else {
            db.apply_batch(batch).and_then(|_| db.flush().map(|_| ()))
        };
        match result {
            Ok(()) => {
                self.commits += 1;
                self.mark.record(self.commits);
                Ok(())
            }
            Err(e) => {
                let cause = match &e {
                    sled::Error::Io(io) => io.to_string(),
                    other => other.to_string(),
                };
                tracing::error!(
                    error = %cause,
                    data_dir = %self.dir.display(),
                    "store write failed; refusing every change until kube9d is restarted"
                );
                std::mem::forget(self.db.take());
                self.broken = Some(cause.clone());
                Err(cause)
            }
        }
    }
}

/// One op as a key and its new value (`None`: removed); Secrets are sealed on the way.
fn stage(op: &Op, sealer: &seal::Sealer) -> (sled::IVec, Option<sled::IVec>) {
    let put = |k: Vec<u8>, v: Vec<u8>| (k.into(), Some(v.into()));
    let del = |k: Vec<u8>| (k.into(), None);
    match op {
        Op::PutNode(n) => put(key("n/", &n.name), n.encode_to_vec()),
        Op::DeleteNode(name) => del(key("n/", name)),
        Op::PutPod(p) => put(key("p/", &p.key()), p.encode_to_vec()),
        Op::DeletePod(k) => del(key("p/", k)),
        Op::PutEvent(e) => put(event_key(e.id), e.encode_to_vec()),
        Op::DeleteEvent(id) => del(event_key(*id)),
        Op::PutMeta(k, v) => put(key("m/", k), v.as_bytes().to_vec()),
        Op::PutNamespace(n) => put(key("ns/", &n.name), n.encode_to_vec()),
        Op::DeleteNamespace(name) => del(key("ns/", name)),
        Op::PutConfigMap(c) => put(key("cm/", &c.key()), c.encode_to_vec()),
        Op::DeleteConfigMap(k) => del(key("cm/", k)),
        Op::PutSecret(s) => {
            let k = key("s/", &s.key());
            let sealed = sealer.seal(&k, &s.encode_to_vec());
            put(k, sealed)
        }
        Op::DeleteSecret(k) => del(key("s/", k)),
        Op::PutToken(t) => {
            let id = t.info.as_ref().map_or("", |i| i.id.as_str());
            put(key("t/", id), t.encode_to_vec())
        }
        Op::DeleteToken(id) => del(key("t/", id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> pb::Node {
        pb::Node {
            name: name.into(),
            cpu_capacity_millis: 4000,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn acknowledged_batches_survive_reopening() {
        let dir = tempdir();
        {
            let store = Store::open(&dir).unwrap();
            let mut b = Batch::default();
            b.push(Op::PutNode(node("n1")));
            b.push(Op::PutPod(pb::Pod {
                name: "p1".into(),
                ..Default::default()
            }));
            b.push(Op::PutEvent(pb::Event {
                id: 7,
                reason: "Scheduled".into(),
                ..Default::default()
            }));
            b.push(Op::PutMeta("cluster_id".into(), "c1".into()));
            store.submit(b).wait().await.unwrap();
            let mut b = Batch::default();
            b.push(Op::PutNode(node("n2")));
            b.push(Op::DeleteNode("n1".into()));
            store.submit(b).wait().await.unwrap();
        }
        let store = reopen(&dir);
        let snap = store.load().unwrap();
        assert_eq!(
            snap.nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>(),
            vec!["n2"]
        );
        assert_eq!(snap.pods.len(), 1);
        assert_eq!(snap.events[0].id, 7);
        assert_eq!(
            snap.meta,
            vec![("cluster_id".to_string(), "c1".to_string())]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn events_load_in_id_order() {
        let dir = tempdir();
        let store = Store::open(&dir).unwrap();
        let mut b = Batch::default();
        for id in [300u64, 2, 70000] {
            b.push(Op::PutEvent(pb::Event {
                id,
                ..Default::default()
            }));
        }
        store.submit(b).wait().await.unwrap();
        let ids: Vec<u64> = store.load().unwrap().events.iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![2, 300, 70000]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn secret(namespace: &str, name: &str, value: &str) -> pb::Secret {
        pb::Secret {
            name: name.into(),
            namespace: namespace.into(),
            data: [("password".to_string(), value.as_bytes().to_vec())].into(),
            ..Default::default()
        }
    }

    use kube9_proto::base64::encode as base64;

    /// What a grep for `value` in base64 could find: its encoding padded and unpadded, and,
    /// for a value inside longer base64 text, the characters that depend on it alone at each
    /// of the three offsets it can start at.
    fn base64_needles(value: &[u8]) -> Vec<String> {
        let padded = base64(value);
        let mut needles = vec![padded.trim_end_matches('=').to_string(), padded];
        for offset in 0..3 {
            let mut data = vec![0u8; offset];
            data.extend_from_slice(value);
            let text = base64(&data);
            let first = (offset * 8).div_ceil(6);
            let last = data.len() * 8 / 6;
            needles.push(text[first..last].to_string());
        }
        needles
    }

    fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = vec![];
        let mut todo = vec![dir.to_path_buf()];
        while let Some(path) = todo.pop() {
            if path.is_dir() {
                todo.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            }
            out.push(path);
        }
        out
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn base64_needles_match_what_an_encoder_writes() {
        assert_eq!(base64(b"hello"), "aGVsbG8=");
        assert_eq!(base64(b"hi"), "aGk=");
        // "hello" inside "xhello…": base64("xhello") = "eGhlbGxv"; "hello" alone decides
        // the characters from index 2 on.
        let needles = base64_needles(b"hello");
        assert!(needles.contains(&"aGVsbG8".to_string()));
        assert!(base64(b"xhello!").contains(&needles[3]), "{needles:?}");
        assert!(base64(b"xyhello!").contains(&needles[4]), "{needles:?}");
    }

    #[tokio::test]
    async fn no_file_of_the_data_directory_holds_a_secret_value() {
        let dir = tempdir();
        let value = "s3cr3t-VALUE-9f1c";
        {
            let store = Store::open(&dir).unwrap();
            let mut b = Batch::default();
            b.push(Op::PutSecret(secret("prod", "db", value)));
            store.submit(b).wait().await.unwrap();
            store.flush().await.unwrap();
        }
        let mut needles = vec![value.to_string()];
        needles.extend(base64_needles(value.as_bytes()));
        let mut read = 0;
        for path in files_under(&dir) {
            if path.is_dir() {
                continue;
            }
            read += 1;
            let bytes = std::fs::read(&path).unwrap();
            for needle in &needles {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{} holds {needle:?}",
                    path.display()
                );
            }
        }
        assert!(read >= 2, "the store and the key file were written");
        let snap = reopen(&dir).load().unwrap();
        assert_eq!(snap.secrets.len(), 1);
        assert_eq!(snap.secrets[0].key(), "prod/db");
        assert_eq!(snap.secrets[0].data["password"], value.as_bytes());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn the_store_and_its_key_are_private() {
        let dir = tempdir();
        let store = Store::open(&dir).unwrap();
        let mut b = Batch::default();
        b.push(Op::PutSecret(secret("prod", "db", "x")));
        b.push(Op::PutNode(node("n1")));
        store.submit(b).wait().await.unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("secret.key")), 0o600);
        let files = files_under(&dir.join("store"));
        assert!(files.len() > 1, "{files:?}");
        for path in files {
            let mode = mode(&path);
            if path.is_dir() {
                assert_eq!(mode, 0o700, "{}", path.display());
            } else {
                assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn opening_a_data_directory_an_older_release_made_makes_it_private() {
        let dir = tempdir();
        drop(Store::open(&dir).unwrap());
        // What an older release (umask 022, no key) left: readable directories and files, and
        // an agent's state that is none of the store's business.
        let agent = dir.join("nodes").join("n1");
        std::fs::create_dir_all(&agent).unwrap();
        std::fs::write(agent.join("agent.log"), "log").unwrap();
        let set = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        };
        set(&agent.join("agent.log"), 0o644);
        set(&dir, 0o755);
        std::fs::remove_file(dir.join("secret.key")).unwrap();
        for path in files_under(&dir.join("store")) {
            set(&path, if path.is_dir() { 0o755 } else { 0o644 });
        }
        let store = reopen(&dir);
        assert_eq!(mode(&dir), 0o700);
        for path in files_under(&dir.join("store")) {
            let mode = mode(&path);
            assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
        }
        assert_eq!(
            mode(&agent.join("agent.log")),
            0o644,
            "outside the store: untouched"
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_store_read_with_another_key_file_fails_naming_the_secret_only() {
        let dir = tempdir();
        let value = "s3cr3t-VALUE-9f1c";
        {
            let store = Store::open(&dir).unwrap();
            let mut b = Batch::default();
            b.push(Op::PutSecret(secret("prod", "db", value)));
            store.submit(b).wait().await.unwrap();
        }
        let other = dir.join("other.key");
        let store = loop {
            match Store::open_with_key(&dir, &other) {
                Ok(s) => break s,
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        };
        let err = store.load().unwrap_err().to_string();
        assert!(err.contains("prod/db"), "{err}");
        assert!(
            err.contains("other.key") && err.contains("does not match"),
            "{err}"
        );
        assert!(!err.contains(value) && !err.contains("password"), "{err}");
        drop(store);
        // The right key still reads it.
        assert_eq!(reopen(&dir).load().unwrap().secrets.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn each_kind_loads_only_its_own_keys() {
        let dir = tempdir();
        let store = Store::open(&dir).unwrap();
        let mut b = Batch::default();
        // Names that would collide if a prefix were a prefix of another: node "s", namespace
        // "p", a pod, config map and secret of the same name in namespace "ns".
        b.push(Op::PutNode(node("s")));
        b.push(Op::PutNamespace(pb::Namespace {
            name: "p".into(),
            ..Default::default()
        }));
        b.push(Op::PutNamespace(pb::Namespace {
            name: "ns".into(),
            ..Default::default()
        }));
        b.push(Op::PutPod(pb::Pod {
            name: "x".into(),
            namespace: "ns".into(),
            ..Default::default()
        }));
        b.push(Op::PutPod(pb::Pod {
            name: "x".into(),
            ..Default::default()
        }));
        b.push(Op::PutConfigMap(pb::ConfigMap {
            name: "x".into(),
            namespace: "ns".into(),
            data: [("k".to_string(), "v".to_string())].into(),
            ..Default::default()
        }));
        b.push(Op::PutSecret(secret("ns", "x", "v")));
        b.push(Op::PutSecret(secret("", "x", "w")));
        b.push(Op::PutMeta("s/x".into(), "m".into()));
        store.submit(b).wait().await.unwrap();
        let snap = store.load().unwrap();
        assert_eq!(snap.nodes.len(), 1);
        assert_eq!(snap.namespaces.len(), 2);
        let pods: Vec<_> = snap.pods.iter().map(|p| p.key()).collect();
        assert_eq!(pods, vec!["default/x", "ns/x"]);
        assert_eq!(snap.config_maps.len(), 1);
        assert_eq!(snap.config_maps[0].data["k"], "v");
        let secrets: Vec<_> = snap.secrets.iter().map(|s| s.key()).collect();
        assert_eq!(secrets, vec!["default/x", "ns/x"]);
        assert_eq!(snap.meta.len(), 1);

        let mut b = Batch::default();
        b.push(Op::DeletePod("ns/x".into()));
        b.push(Op::DeleteConfigMap("ns/x".into()));
        b.push(Op::DeleteSecret("ns/x".into()));
        b.push(Op::DeleteNamespace("ns".into()));
        store.submit(b).wait().await.unwrap();
        let snap = store.load().unwrap();
        assert_eq!(snap.pods.len(), 1);
        assert_eq!(snap.pods[0].key(), "default/x");
        assert!(snap.config_maps.is_empty());
        let secrets: Vec<_> = snap.secrets.iter().map(|s| s.key()).collect();
        assert_eq!(secrets, vec!["default/x"]);
        assert_eq!(snap.namespaces.len(), 1);
        assert_eq!(snap.namespaces[0].name, "p");
        assert_eq!(snap.nodes.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn pods_stored_before_namespaces_move_to_default_once() {
        let dir = tempdir();
        {
            // What the release before namespaces wrote: `p/<name>`, no namespace, next to a
            // node and an event.
            let db = sled::open(dir.join("store")).unwrap();
            for name in ["web", "db"] {
                let old = pb::Pod {
                    name: name.into(),
                    node: "n1".into(),
                    ..Default::default()
                };
                db.insert(key("p/", name), old.encode_to_vec()).unwrap();
            }
            db.insert(b"n/n1", node("n1").encode_to_vec()).unwrap();
            let event = pb::Event {
                id: 1,
                ..Default::default()
            };
            db.insert(event_key(1), event.encode_to_vec()).unwrap();
            db.flush().unwrap();
        }
        let store = reopen(&dir);
        assert!(
            !store.durable.read().contains_key(&b"p/web"[..]),
            "old key removed"
        );
        assert!(store.durable.read().contains_key(&b"p/default/web"[..]));
        let snap = store.load().unwrap();
        let pods: Vec<_> = snap.pods.iter().map(|p| p.key()).collect();
        assert_eq!(pods, vec!["default/db", "default/web"]);
        assert!(snap.pods.iter().all(|p| p.namespace == "default"));
        assert_eq!(snap.pods[0].node, "n1");
        assert_eq!((snap.nodes.len(), snap.events.len()), (1, 1));
        // The upgraded pod is written and deleted by its new key.
        let mut b = Batch::default();
        b.push(Op::DeletePod("default/db".into()));
        store.submit(b).wait().await.unwrap();
        drop(store);
        let store = reopen(&dir);
        let pods = store.load().unwrap().pods;
        assert_eq!(pods.len(), 1, "not duplicated: {pods:?}");
        assert_eq!(pods[0].key(), "default/web");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// [`Store::open`] once sled's lock of a dropped store is released: its result.
    fn open_when_free(dir: &Path) -> Result<Store> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Store::open(dir) {
                Err(Error::Open { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                result => return result,
            }
        }
    }

    /// Writes `len` pseudo-random bytes at `offset` of sled's log file.
    fn damage(dir: &Path, offset: u64, len: usize) {
        use std::os::unix::fs::FileExt;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("store").join("db"))
            .unwrap();
        file.write_all_at(&bytes, offset).unwrap();
    }

    #[tokio::test]
    async fn a_store_damaged_near_its_start_is_refused_not_opened_empty() {
        let dir = tempdir();
        {
            let store = Store::open(&dir).unwrap();
            for i in 0..20 {
                let mut b = Batch::default();
                b.push(Op::PutNode(node(&format!("n{i}"))));
                store.submit(b).wait().await.unwrap();
            }
        }
        // Undamaged, it opens with everything (and the counter file was written).
        let snap = open_when_free(&dir).unwrap().load().unwrap();
        assert_eq!(snap.nodes.len(), 20);
        assert!(dir.join("store").join(watermark::FILE).exists());
        damage(&dir, 100, 64);
        for _ in 0..2 {
            // sled alone would open it with the nodes gone; twice: the refusal sticks.
            let err = open_when_free(&dir)
                .err()
                .expect("a damaged store is refused");
            assert!(err.is_damaged(), "{err}");
            let text = err.to_string();
            let data_dir = dir.display();
            assert!(
                text.starts_with(&format!("the store in {data_dir} is damaged (")),
                "{text}"
            );
            assert!(
                text.contains(&format!(
                    "restore a snapshot with `kube9d snapshot restore FILE --data-dir {data_dir}`"
                )),
                "{text}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_store_without_a_counter_file_opens_as_before() {
        // What a release before the counter left: nothing to check against.
        let dir = tempdir();
        {
            let store = Store::open(&dir).unwrap();
            let mut b = Batch::default();
            b.push(Op::PutNode(node("n1")));
            store.submit(b).wait().await.unwrap();
        }
        std::fs::remove_file(dir.join("store").join(watermark::FILE)).unwrap();
        let store = open_when_free(&dir).unwrap();
        assert_eq!(store.load().unwrap().nodes.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_export_holds_whole_batches_only() {
        let dir = tempdir();
        let store = Store::open(&dir).unwrap();
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..50 {
                        // Two keys per batch: an export sees both or neither.
                        let mut b = Batch::default();
                        b.push(Op::PutNode(node(&format!("a-{w}-{i}"))));
                        b.push(Op::PutNamespace(pb::Namespace {
                            name: format!("b-{w}-{i}"),
                            ..Default::default()
                        }));
                        store.submit(b).wait().await.unwrap();
                    }
                })
            })
            .collect();
        let mut sizes = vec![];
        for _ in 0..20 {
            let exported = store.export().await.unwrap();
            let records = snapshot_file::decode(&exported.bytes).unwrap();
            let nodes = records.iter().filter(|(k, _)| k.starts_with(b"n/")).count();
            let spaces = records
                .iter()
                .filter(|(k, _)| k.starts_with(b"ns/"))
                .count();
            assert_eq!(nodes, spaces, "an export split a batch");
            assert!(records.iter().all(|(k, _)| !k.starts_with(b"g/")));
            assert_eq!(exported.records as usize, records.len());
            sizes.push(nodes);
        }
        for w in writers {
            w.await.unwrap();
        }
        assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{sizes:?}");
        let last = store.export().await.unwrap();
        assert_eq!(last.records, 400);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The writer thread of a dropped store releases sled's lock as it exits.
    fn reopen(dir: &Path) -> Store {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Store::open(dir) {
                Ok(s) => return s,
                Err(e) if std::time::Instant::now() > deadline => panic!("{e}"),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }

    fn tempdir() -> std::path::PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("kube9-store-test-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
