//! `Snapshot`: a consistent copy of the whole store, streamed to `kube9ctl snapshot save`.
//! Admin only, as every call `auth/policy.rs` does not name a read: it holds every object,
//! the token hashes and the Secrets (sealed). The store's writer thread reads the records
//! between two commits ([`crate::store::Store::export`]); the file is then sent in chunks.

use std::pin::Pin;

use futures::Stream;
use kube9_proto::pb;
use tonic::Status;

use super::ClusterApi;
use crate::auth::Caller;
use crate::state::Error;
use crate::store::snapshot_file::{Encoded, VERSION};

/// Bytes per message: well under the 4 MiB gRPC clients accept by default.
const CHUNK_BYTES: usize = 256 * 1024;

pub type SnapshotStream = Pin<Box<dyn Stream<Item = Result<pb::SnapshotChunk, Status>> + Send>>;

impl ClusterApi {
    /// The store as a snapshot file, in chunks; the last one carries the summary.
    pub(super) async fn do_snapshot(
        &self,
        caller: Option<&Caller>,
    ) -> Result<Vec<pb::SnapshotChunk>, Error> {
        let file = self.control.store().export().await?;
        tracing::info!(
            records = file.records,
            bytes = file.bytes.len(),
            token = caller.map_or("", |c| c.token_id.as_str()),
            "snapshot taken"
        );
        Ok(chunks(file))
    }
}

fn chunks(file: Encoded) -> Vec<pb::SnapshotChunk> {
    let summary = pb::SnapshotSummary {
        records: file.records,
        secrets: file.secrets,
        size_bytes: file.bytes.len() as u64,
        sha256: file.sha256,
        format_version: VERSION,
    };
    let mut chunks: Vec<pb::SnapshotChunk> = (file.bytes.chunks(CHUNK_BYTES))
        .map(|data| pb::SnapshotChunk {
            data: data.to_vec(),
            summary: None,
        })
        .collect();
    // A snapshot file is never empty: it has at least its header and checksum.
    if let Some(last) = chunks.last_mut() {
        last.summary = Some(summary);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::snapshot_file::encode;

    #[test]
    fn the_chunks_make_the_file_and_only_the_last_says_what_it_holds() {
        let value = vec![7u8; CHUNK_BYTES + 10];
        let file = encode([(&b"cm/default/big"[..], &value[..])]);
        let whole = file.bytes.clone();
        let chunks = chunks(file);
        assert_eq!(chunks.len(), 2);
        assert!(chunks[0].summary.is_none());
        let summary = chunks[1].summary.as_ref().unwrap();
        assert_eq!((summary.records, summary.secrets), (1, 0));
        assert_eq!(summary.size_bytes, whole.len() as u64);
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.data.clone()).collect();
        assert_eq!(joined, whole);
    }
}
