//! The snapshot file: every key and value of the store at one point, as `kube9ctl snapshot
//! save` writes it and `kube9d snapshot restore` reads it.
//!
//! Format, version 1 (integers big-endian):
//!
//! ```text
//! kube9-snapshot 1\n                      magic and version, one ASCII line
//! { u32 key length | key | u32 value length | value }*   the records, in key order
//! u32 0                                   end of records (no key is empty)
//! u64 number of records
//! SHA-256 of every byte above (32 bytes)
//! ```
//!
//! Keys and values are the store's own ([`super`] lists the prefixes): protobuf values,
//! Secrets still sealed with the cluster's key (which is not in the file), events, token
//! hashes and meta such as the cluster id. The store's commit counter ([`super::watermark`])
//! is left out. A file whose checksum, count or framing does not hold is refused whole, so a
//! truncated or altered file never becomes a store.

use kube9_proto::client::token::{hex, sha256};

/// The first line of every snapshot file, without its version.
const MAGIC: &[u8] = b"kube9-snapshot ";
/// The version this kube9d writes and reads.
pub const VERSION: u32 = 1;
const DIGEST_LEN: usize = 32;
/// End marker and record count.
const TRAILER_LEN: usize = 4 + 8;
/// The prefixes a version 1 file may hold: the store's kinds (see [`super`]).
const PREFIXES: &[&[u8]] = &[b"n/", b"p/", b"e/", b"m/", b"ns/", b"cm/", b"s/", b"t/"];

/// One key and its value.
pub type Record = (Vec<u8>, Vec<u8>);

/// An encoded snapshot and what it holds.
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub records: u64,
    /// Sealed Secrets among the records: restoring them needs the cluster's key.
    pub secrets: u64,
    /// Hex SHA-256, as the file ends with it.
    pub sha256: String,
}

/// Why a file is not a snapshot this kube9d can restore. Nothing is written for any of them.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("it is empty")]
    Empty,
    #[error("it is not a Kube-9 snapshot (it does not start with \"kube9-snapshot\")")]
    NotASnapshot,
    #[error("it is a version {0} snapshot; this kube9d reads version {VERSION}")]
    Version(String),
    #[error("it is damaged or incomplete: its checksum does not match its contents ({0} bytes)")]
    Checksum(usize),
    #[error("it is damaged: {0}")]
    Framing(String),
}

/// Encodes `records` (in the order given: the store's, by key).
pub fn encode<'a>(records: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Encoded {
    let mut bytes = header();
    let (mut count, mut secrets) = (0u64, 0u64);
    for (key, value) in records {
        put_chunk(&mut bytes, key);
        put_chunk(&mut bytes, value);
        count += 1;
        secrets += u64::from(key.starts_with(b"s/"));
    }
    bytes.extend_from_slice(&0u32.to_be_bytes());
    bytes.extend_from_slice(&count.to_be_bytes());
    let digest = sha256(&bytes);
    bytes.extend_from_slice(&digest);
    Encoded {
        bytes,
        records: count,
        secrets,
        sha256: hex(&digest),
    }
}

/// The records of a snapshot file, once its magic, version, checksum, framing, count and
/// prefixes all hold.
pub fn decode(file: &[u8]) -> Result<Vec<Record>, FormatError> {
    if file.is_empty() {
        return Err(FormatError::Empty);
    }
    let header_len = file.len() - check_header(file)?.len();
    let (content, digest) = split_digest(file)?;
    if sha256(content) != digest {
        return Err(FormatError::Checksum(file.len()));
    }
    parse_records(&content[header_len..])
}

fn header() -> Vec<u8> {
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(format!("{VERSION}\n").as_bytes());
    bytes
}

fn put_chunk(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("a store key or value is under 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// What follows the magic line, once it names this version.
fn check_header(file: &[u8]) -> Result<&[u8], FormatError> {
    let rest = file.strip_prefix(MAGIC).ok_or(FormatError::NotASnapshot)?;
    let end = (rest.iter().take(16).position(|b| *b == b'\n'))
        .ok_or_else(|| FormatError::Framing("its first line does not end".into()))?;
    let version = String::from_utf8_lossy(&rest[..end]).into_owned();
    if version != VERSION.to_string() {
        return Err(FormatError::Version(version));
    }
    Ok(&rest[end + 1..])
}

/// The file without its digest, and the digest.
fn split_digest(file: &[u8]) -> Result<(&[u8], [u8; DIGEST_LEN]), FormatError> {
    let min = header().len() + TRAILER_LEN + DIGEST_LEN;
    if file.len() < min {
        return Err(FormatError::Checksum(file.len()));
    }
    let (content, digest) = file.split_at(file.len() - DIGEST_LEN);
    Ok((content, digest.try_into().expect("split at DIGEST_LEN")))
}

fn parse_records(mut rest: &[u8]) -> Result<Vec<Record>, FormatError> {
    let mut records = Vec::new();
    loop {
        let key = take_chunk(&mut rest, "key")?;
        if key.is_empty() {
            break;
        }
        if !PREFIXES.iter().any(|p| key.starts_with(p)) {
            return Err(FormatError::Framing(format!(
                "key {:?} is of no kind this kube9d stores",
                String::from_utf8_lossy(key)
            )));
        }
        let value = take_chunk(&mut rest, "value")?;
        records.push((key.to_vec(), value.to_vec()));
    }
    let count = take(&mut rest, 8, "record count")?;
    let count = u64::from_be_bytes(count.try_into().expect("8 bytes"));
    if count != records.len() as u64 || !rest.is_empty() {
        return Err(FormatError::Framing(format!(
            "it says {count} records and holds {}",
            records.len()
        )));
    }
    Ok(records)
}

/// A length-prefixed chunk (the end marker's length is 0: an empty chunk).
fn take_chunk<'a>(rest: &mut &'a [u8], what: &str) -> Result<&'a [u8], FormatError> {
    let len = take(rest, 4, what)?;
    let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
    take(rest, len, what)
}

fn take<'a>(rest: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], FormatError> {
    if rest.len() < n {
        return Err(FormatError::Framing(format!("a {what} runs past the end")));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Record> {
        vec![
            (b"cm/default/game".to_vec(), b"\x0a\x04game".to_vec()),
            (b"m/cluster_id".to_vec(), b"kube9".to_vec()),
            (b"s/prod/db".to_vec(), vec![1; 40]),
            (b"t/abcdef".to_vec(), vec![]),
        ]
    }

    fn encoded() -> Encoded {
        let records = sample();
        encode(records.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
    }

    #[test]
    fn records_round_trip_with_their_counts() {
        let e = encoded();
        assert_eq!((e.records, e.secrets), (4, 1));
        assert!(e.bytes.starts_with(b"kube9-snapshot 1\n"));
        assert_eq!(e.sha256.len(), 64);
        assert_eq!(decode(&e.bytes).unwrap(), sample());
        let empty = encode(std::iter::empty());
        assert_eq!(decode(&empty.bytes).unwrap(), vec![]);
    }

    #[test]
    fn a_truncated_file_is_refused() {
        let bytes = encoded().bytes;
        for len in [0, 10, 17, bytes.len() / 2, bytes.len() - 1] {
            let err = decode(&bytes[..len]).unwrap_err();
            assert!(
                matches!(
                    err,
                    FormatError::Checksum(_) | FormatError::NotASnapshot | FormatError::Empty
                ),
                "{len}: {err}"
            );
        }
    }

    #[test]
    fn any_changed_byte_is_refused() {
        let bytes = encoded().bytes;
        for at in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[at] ^= 0x20;
            assert!(decode(&altered).is_err(), "byte {at} changed unnoticed");
        }
    }

    #[test]
    fn other_files_and_versions_say_what_they_are() {
        assert_eq!(
            decode(b"apiVersion: v1\nkind: Pod\n").unwrap_err(),
            FormatError::NotASnapshot
        );
        let mut v2 = encoded().bytes;
        v2[15] = b'2';
        assert_eq!(
            decode(&v2).unwrap_err().to_string(),
            "it is a version 2 snapshot; this kube9d reads version 1"
        );
    }

    #[test]
    fn a_well_summed_file_with_bad_framing_is_refused() {
        // Right checksum over a record of an unknown kind, and over a wrong count.
        let odd = encode([(&b"zz/x"[..], &b"v"[..])]);
        let err = decode(&odd.bytes).unwrap_err().to_string();
        assert!(err.contains("\"zz/x\" is of no kind"), "{err}");
        let mut bytes = header();
        bytes.extend_from_slice(&0u32.to_be_bytes());
        bytes.extend_from_slice(&3u64.to_be_bytes());
        let digest = sha256(&bytes);
        bytes.extend_from_slice(&digest);
        let err = decode(&bytes).unwrap_err().to_string();
        assert!(err.contains("says 3 records and holds 0"), "{err}");
    }
}
