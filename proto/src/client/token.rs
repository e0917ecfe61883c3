//! Bearer tokens: `<id>.<secret>`, as kubeadm writes its bootstrap tokens, with 256 random bits
//! of secret. The id is public (listed, used to revoke); kube9d stores only the secret's
//! SHA-256, so its store holds nothing a caller could present.

use std::fmt;
use std::str::FromStr;

use rand::Rng;

/// Characters of a token id.
const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// Length of a token id.
pub const ID_LEN: usize = 6;
/// Length of a token secret: 32 random bytes in hex.
pub const SECRET_LEN: usize = 64;

/// What a token lets its bearer do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Joins a node: the agent stream, nothing else.
    Node,
    /// Reads: get, describe, logs, watch, events. No Secret data, no exec.
    Viewer,
    /// Everything.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Node, Role::Viewer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Node => "node",
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?} (known: node, viewer, admin)"))
    }
}

/// A token as its bearer holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub id: String,
    pub secret: String,
}

/// Why a string is not a token. Never echoes the input: it may be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a token is <id>.<secret>: {ID_LEN} lowercase letters or digits, a dot, {SECRET_LEN} hex digits")]
pub struct MalformedToken;

impl Token {
    /// A new token: a random id and 256 random bits of secret.
    pub fn generate() -> Token {
        let mut rng = rand::rng();
        let id = (0..ID_LEN)
            .map(|_| char::from(ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())]))
            .collect();
        let bytes: [u8; 32] = rng.random();
        Token {
            id,
            secret: hex(&bytes),
        }
    }

    /// Parses `<id>.<secret>` (surrounding whitespace, as in a token file, is ignored).
    pub fn parse(text: &str) -> Result<Token, MalformedToken> {
        let (id, secret) = text.trim().split_once('.').ok_or(MalformedToken)?;
        let id_ok = id.len() == ID_LEN && id.bytes().all(|b| ID_ALPHABET.contains(&b));
        let secret_ok = secret.len() == SECRET_LEN && secret.bytes().all(|b| b.is_ascii_hexdigit());
        if !id_ok || !secret_ok {
            return Err(MalformedToken);
        }
        Ok(Token {
            id: id.to_string(),
            secret: secret.to_ascii_lowercase(),
        })
    }

    /// SHA-256 of the secret: what kube9d stores and compares.
    pub fn secret_hash(&self) -> [u8; 32] {
        sha256(self.secret.as_bytes())
    }

    /// Whether this token's secret hashes to `hash`, compared in constant time.
    pub fn matches(&self, hash: &[u8]) -> bool {
        let mine = self.secret_hash();
        hash.len() == mine.len()
            && mine.iter().zip(hash).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    /// The `authorization` header value.
    pub fn bearer(&self) -> String {
        format!("Bearer {self}")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.id, self.secret)
    }
}

/// Debug output never shows the secret.
impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}.…)", self.id)
    }
}

/// The token in an `authorization: Bearer …` header value.
pub fn from_bearer(header: &str) -> Result<Token, MalformedToken> {
    let rest = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or(MalformedToken)?;
    Token::parse(rest)
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_back_and_differ() {
        let a = Token::generate();
        let b = Token::generate();
        assert_ne!(a.secret, b.secret);
        assert_eq!(Token::parse(&a.to_string()).unwrap(), a);
        assert_eq!(Token::parse(&format!("  {a}\n")).unwrap(), a);
        assert_eq!(a.secret.len(), SECRET_LEN);
    }

    #[test]
    fn malformed_tokens_are_refused_without_echo() {
        for bad in [
            "",
            "abc",
            "abcdef.",
            "ABCDEF.00",
            "abcdef.xyz",
            "abcdefg.00",
        ] {
            assert!(Token::parse(bad).is_err(), "{bad:?}");
        }
        let msg = MalformedToken.to_string();
        assert!(!msg.contains("abcdef"), "{msg}");
    }

    #[test]
    fn matching_compares_the_secret_hash() {
        let t = Token::generate();
        assert!(t.matches(&t.secret_hash()));
        assert!(!Token::generate().matches(&t.secret_hash()));
        assert!(!t.matches(&[0u8; 3]));
    }

    #[test]
    fn bearer_round_trip_and_debug_hides_the_secret() {
        let t = Token::generate();
        assert_eq!(from_bearer(&t.bearer()).unwrap(), t);
        assert!(from_bearer(&t.to_string()).is_err());
        assert!(!format!("{t:?}").contains(&t.secret));
    }

    #[test]
    fn roles_parse() {
        assert_eq!("viewer".parse::<Role>().unwrap(), Role::Viewer);
        assert!("root"
            .parse::<Role>()
            .unwrap_err()
            .contains("node, viewer, admin"));
    }
}
