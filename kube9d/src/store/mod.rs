//! Durable state: one [`Store`] handle in front of the storage engine (sled today).
//!
//! Nothing outside this module knows about sled. The control plane keeps its working state in
//! memory and sends every change here as a [`Batch`] of [`Op`]s, in the order it made them. One
//! writer thread applies batches and makes them durable with *group commit*: it drains every
//! batch that is waiting, applies them as one atomic sled batch, fsyncs once, then acknowledges
//! all of them. Many concurrent `apply` calls therefore share one fsync, and an acknowledged
//! write has reached the disk.
//!
//! Keys live in one sled tree with a prefix per kind (`n/<node>`, `p/<pod>`, `e/<id>`,
//! `m/<key>`), so a batch that touches several kinds is still atomic. Values are the protobuf
//! encodings of the wire types.

use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::thread;

use kube9_proto::pb;
use prost::Message;
use tokio::sync::oneshot;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to open the store at {path}: {source}")]
    Open { path: String, source: sled::Error },
    #[error("failed to write the store: {0}")]
    Write(#[from] sled::Error),
    #[error("failed to decode stored {kind} {key}: {source}")]
    Decode {
        kind: &'static str,
        key: String,
        source: prost::DecodeError,
    },
    #[error("the store writer has stopped")]
    Closed,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One change to durable state.
#[derive(Debug, Clone)]
pub enum Op {
    PutNode(pb::Node),
    DeleteNode(String),
    PutPod(pb::Pod),
    DeletePod(String),
    PutEvent(pb::Event),
    DeleteEvent(u64),
    PutMeta(String, String),
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
}

struct Request {
    batch: Batch,
    ack: Option<oneshot::Sender<Result<()>>>,
}

/// Cheap-to-clone handle to the durable store.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    tx: std_mpsc::Sender<Request>,
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
    /// Opens (or creates) the store in `dir` and starts its writer thread.
    pub fn open(dir: &Path) -> Result<Self> {
        let db = sled::Config::new()
            .path(dir.join("store"))
            // sled's own background flush is a safety net; durability comes from group commit.
            .flush_every_ms(Some(1000))
            .open()
            .map_err(|source| Error::Open {
                path: dir.display().to_string(),
                source,
            })?;
        let (tx, rx) = std_mpsc::channel::<Request>();
        let writer_db = db.clone();
        thread::Builder::new()
            .name("kube9-store-writer".into())
            .spawn(move || writer_loop(writer_db, rx))
            .expect("failed to spawn the store writer thread");
        Ok(Store { db, tx })
    }

    /// Reads everything back.
    pub fn load(&self) -> Result<Snapshot> {
        let mut snap = Snapshot::default();
        for item in self.db.scan_prefix(b"n/") {
            let (k, v) = item?;
            snap.nodes.push(decode("node", &k, &v)?);
        }
        for item in self.db.scan_prefix(b"p/") {
            let (k, v) = item?;
            snap.pods.push(decode("pod", &k, &v)?);
        }
        for item in self.db.scan_prefix(b"e/") {
            let (k, v) = item?;
            snap.events.push(decode("event", &k, &v)?);
        }
        for item in self.db.scan_prefix(b"m/") {
            let (k, v) = item?;
            let key = String::from_utf8_lossy(&k[2..]).into_owned();
            snap.meta
                .push((key, String::from_utf8_lossy(&v).into_owned()));
        }
        Ok(snap)
    }

    /// Queues a batch; the returned [`Commit`] resolves once it is durable. Batches become
    /// durable in the order they were submitted.
    pub fn submit(&self, batch: Batch) -> Commit {
        if batch.is_empty() {
            return Commit::done();
        }
        let (ack, rx) = oneshot::channel();
        if self
            .tx
            .send(Request {
                batch,
                ack: Some(ack),
            })
            .is_err()
        {
            return Commit::done_with_error();
        }
        Commit(Some(rx))
    }

    /// Queues a batch without waiting for it (status updates nobody is waiting on).
    pub fn submit_detached(&self, batch: Batch) {
        if !batch.is_empty() {
            let _ = self.tx.send(Request { batch, ack: None });
        }
    }

    /// Waits until everything submitted so far is durable.
    pub async fn flush(&self) -> Result<()> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Request {
                batch: Batch::default(),
                ack: Some(ack),
            })
            .map_err(|_| Error::Closed)?;
        rx.await.unwrap_or(Err(Error::Closed))
    }
}

impl Commit {
    fn done_with_error() -> Self {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(Err(Error::Closed));
        Commit(Some(rx))
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

fn writer_loop(db: sled::Db, rx: std_mpsc::Receiver<Request>) {
    // Block for the first request, then take whatever else is already queued: one fsync for all.
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while let Ok(more) = rx.try_recv() {
            group.push(more);
            if group.len() >= 4096 {
                break;
            }
        }
        let mut batch = sled::Batch::default();
        for req in &group {
            for op in &req.batch.ops {
                match op {
                    Op::PutNode(n) => batch.insert(key("n/", &n.name), n.encode_to_vec()),
                    Op::DeleteNode(name) => batch.remove(key("n/", name)),
                    Op::PutPod(p) => batch.insert(key("p/", &p.name), p.encode_to_vec()),
                    Op::DeletePod(name) => batch.remove(key("p/", name)),
                    Op::PutEvent(e) => batch.insert(event_key(e.id), e.encode_to_vec()),
                    Op::DeleteEvent(id) => batch.remove(event_key(*id)),
                    Op::PutMeta(k, v) => batch.insert(key("m/", k), v.as_bytes()),
                }
            }
        }
        let result = db.apply_batch(batch).and_then(|_| db.flush().map(|_| ()));
        if let Err(e) = &result {
            tracing::error!(error = %e, "store write failed");
        }
        for req in group {
            if let Some(ack) = req.ack {
                let _ = ack.send(result.clone().map_err(Error::Write));
            }
        }
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
