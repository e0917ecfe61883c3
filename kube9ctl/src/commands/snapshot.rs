//! `kube9ctl snapshot save FILE`, as `etcdctl snapshot save`: the running kube9d streams a
//! consistent copy of its store (it holds the store's lock, so the copy must come through it);
//! kube9ctl checks what arrived against the file's own SHA-256 and the server's summary, and only
//! then writes FILE, mode 0600, never over an existing file. The bytes are never printed.
//! `kube9d snapshot restore FILE --data-dir DIR` turns the file back into a store, offline.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{bail, Context as _};
use kube9_proto::client::token::{hex, sha256};
use kube9_proto::pb;

use crate::cli::SnapshotCommand;
use crate::commands::Context;

/// The SHA-256 a snapshot file ends with.
const DIGEST_LEN: usize = 32;

pub async fn run(ctx: &Context, command: SnapshotCommand) -> anyhow::Result<()> {
    match command {
        SnapshotCommand::Save { file } => save(ctx, &file).await,
    }
}

async fn save(ctx: &Context, file: &Path) -> anyhow::Result<()> {
    if file.exists() {
        bail!(refused(file));
    }
    let mut c = ctx.connect().await?;
    let response = c.client.snapshot(pb::SnapshotRequest {}).await;
    let mut stream = c.check(response)?;
    let mut bytes = Vec::new();
    let mut summary = None;
    while let Some(chunk) = stream.message().await.transpose() {
        let chunk = chunk.map_err(|status| c.error(status))?;
        bytes.extend_from_slice(&chunk.data);
        summary = chunk.summary.or(summary);
    }
    let summary = verify(&bytes, summary)?;
    write_private(file, &bytes)?;
    print!("{}", saved(file, &summary));
    Ok(())
}

/// Checks the bytes that arrived against the summary and the checksum they end with.
fn verify(
    bytes: &[u8],
    summary: Option<pb::SnapshotSummary>,
) -> anyhow::Result<pb::SnapshotSummary> {
    let Some(summary) = summary else {
        bail!(
            "the snapshot stream ended early ({} bytes received): nothing was saved",
            bytes.len()
        );
    };
    if bytes.len() as u64 != summary.size_bytes || bytes.len() < DIGEST_LEN {
        bail!(
            "received {} of the snapshot's {} bytes: nothing was saved",
            bytes.len(),
            summary.size_bytes
        );
    }
    let (content, digest) = bytes.split_at(bytes.len() - DIGEST_LEN);
    if hex(digest) != summary.sha256 || hex(&sha256(content)) != summary.sha256 {
        bail!("the snapshot that arrived does not match its checksum: nothing was saved");
    }
    Ok(summary)
}

/// Creates `file` (0600, refused if it exists) with `bytes`, synced to disk; removes it again
/// when that fails half-way.
fn write_private(file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(refused(file)),
        Err(e) => return Err(e).with_context(|| format!("failed to create {}", file.display())),
    };
    let written = out.write_all(bytes).and_then(|()| out.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(file);
        return Err(e).with_context(|| format!("failed to write {}", file.display()));
    }
    Ok(())
}

fn refused(file: &Path) -> String {
    format!(
        "{} already exists: choose another file or remove it first (nothing was saved)",
        file.display()
    )
}

/// What `save` prints: where, how much, and what restoring needs.
fn saved(file: &Path, s: &pb::SnapshotSummary) -> String {
    let path = file.display();
    let mut out = format!(
        "Snapshot saved at {path} ({} objects, {} bytes, sha256 {}).\n",
        s.records, s.size_bytes, s.sha256
    );
    if s.secrets > 0 {
        out.push_str(&format!(
            "Its {} Secret(s) are sealed with this cluster's secret key file (kube9d's \
             --secret-key-file, by default <data-dir>/secret.key), which is not in the snapshot: \
             keep a copy of it, restoring needs it.\n",
            s.secrets
        ));
    }
    out.push_str(&format!(
        "Restore with: kube9d snapshot restore {path} --data-dir DIR\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file shaped like a snapshot: content, then its SHA-256.
    fn file(content: &[u8]) -> (Vec<u8>, pb::SnapshotSummary) {
        let digest = sha256(content);
        let mut bytes = content.to_vec();
        bytes.extend_from_slice(&digest);
        let summary = pb::SnapshotSummary {
            records: 3,
            secrets: 1,
            size_bytes: bytes.len() as u64,
            sha256: hex(&digest),
            format_version: 1,
        };
        (bytes, summary)
    }

    #[test]
    fn only_a_whole_file_matching_its_checksum_is_saved() {
        let (bytes, summary) = file(b"kube9-snapshot 1\nrecords");
        assert!(verify(&bytes, Some(summary.clone())).is_ok());
        let e = verify(&bytes, None).unwrap_err().to_string();
        assert!(
            e.contains("ended early") && e.contains("nothing was saved"),
            "{e}"
        );
        let e = verify(&bytes[..10], Some(summary.clone()))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("received 10 of the snapshot's"), "{e}");
        let mut altered = bytes.clone();
        altered[3] ^= 1;
        let e = verify(&altered, Some(summary)).unwrap_err().to_string();
        assert!(e.contains("does not match its checksum"), "{e}");
    }

    #[test]
    fn the_file_is_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("kube9ctl-snapshot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("snap.db");
        let _ = std::fs::remove_file(&path);
        write_private(&path, b"one").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let e = write_private(&path, b"two").unwrap_err().to_string();
        assert!(e.contains("already exists"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_summary_says_where_how_much_and_what_restoring_needs() {
        let (_, summary) = file(b"x");
        let text = saved(Path::new("/b/snap.db"), &summary);
        assert!(
            text.starts_with("Snapshot saved at /b/snap.db (3 objects, 33 bytes, sha256 "),
            "{text}"
        );
        assert!(text.contains("Its 1 Secret(s) are sealed"), "{text}");
        assert!(
            text.contains("kube9d snapshot restore /b/snap.db --data-dir DIR"),
            "{text}"
        );
    }
}
