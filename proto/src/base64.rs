//! Standard base64 (RFC 4648, with padding), as Kubernetes reads and writes a Secret's `data`
//! and a ConfigMap's `binaryData`: one codec for the manifest reader, kube9ctl's output and
//! the tests that look for encoded secrets.
//!
//! Like Go's `encoding/base64` (which Kubernetes uses), line breaks are skipped, so a value
//! wrapped by `base64` and written as a YAML block scalar reads; padding is required. The
//! decoder never says where or what the bad input is: it may be a secret.
//!
//! This module is a leaf: it imports nothing.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `bytes` in standard base64, padded with `=`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The bytes `text` encodes, or `None` when it is not standard padded base64.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !matches!(b, b'\r' | b'\n'))
        .collect();
    let quads = digits.chunks_exact(4);
    if !quads.remainder().is_empty() {
        return None;
    }
    let count = quads.len();
    let mut out = Vec::with_capacity(count * 3);
    for (i, quad) in quads.enumerate() {
        let last = i + 1 == count;
        let padding = quad.iter().rev().take_while(|&&b| b == b'=').count();
        if padding > 2 || (padding > 0 && !last) {
            return None;
        }
        let mut n: u32 = 0;
        for &b in &quad[..4 - padding] {
            n = n << 6 | u32::from(value(b)?);
        }
        n <<= 6 * padding as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - padding]);
    }
    Some(out)
}

fn value(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};

    #[test]
    fn encodes_what_it_decodes() {
        assert_eq!(encode(b"hello"), "aGVsbG8=");
        assert_eq!(encode(b"hi"), "aGk=");
        assert_eq!(encode(b""), "");
        for data in [&b"f"[..], b"fo", b"foo", b"\xff\xfe\x00\x89"] {
            assert_eq!(decode(&encode(data)).unwrap(), data);
        }
    }

    #[test]
    fn decodes_standard_padded_base64() {
        assert_eq!(decode("").unwrap(), b"");
        assert_eq!(decode("Zg==").unwrap(), b"f");
        assert_eq!(decode("Zm8=").unwrap(), b"fo");
        assert_eq!(decode("Zm9v").unwrap(), b"foo");
        assert_eq!(decode("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(decode("//4AiQ==").unwrap(), [0xff, 0xfe, 0x00, 0x89]);
        assert_eq!(decode("YWRt\naW4=\n").unwrap(), b"admin");
        assert_eq!(decode("MWYyZDFlMmU2N2Rm").unwrap(), b"1f2d1e2e67df");
    }

    #[test]
    fn refuses_anything_else() {
        for bad in [
            "Zg",
            "Zg=",
            "Z===",
            "Zg==Zg==",
            "Zm9v YmFy",
            "Zm9v_-==",
            "admin",
            "YWRtaW4",
            "====",
        ] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
