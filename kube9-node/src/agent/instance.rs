//! The instance id: random per agent process, sent in every Register.
//!
//! kube9d lets a reconnect of the same process replace its old stream, but refuses a second
//! process that claims a node while the first is attached (two agents would run its pods
//! twice). The id only has to differ between processes, so pid, start time and a few random
//! bytes are plenty; no random number generator crate is needed.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh id: `<pid>-<start time ns>-<64 random bits>`, in hex. Call once per process.
pub fn generate() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{:x}-{:x}-{:016x}",
        std::process::id(),
        nanos as u64,
        random_u64()
    )
}

/// Eight bytes of /dev/urandom; where that cannot be read, std's randomly keyed hasher (its
/// keys come from the OS once per process, then advance per call).
fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    let urandom = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    match urandom {
        Ok(()) => u64::from_ne_bytes(bytes),
        Err(_) => {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u128(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            hasher.finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_start_with_the_pid_and_differ_between_calls() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        let parts: Vec<_> = a.split('-').collect();
        assert_eq!(parts.len(), 3, "{a}");
        assert_eq!(
            u32::from_str_radix(parts[0], 16).unwrap(),
            std::process::id()
        );
        assert!(parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit())));
        assert_eq!(parts[2].len(), 16);
    }
}
