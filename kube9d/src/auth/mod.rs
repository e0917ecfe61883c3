//! Who may call what: bearer tokens (`<id>.<secret>`, roles node, viewer and admin), checked
//! in one layer in front of every service ([`layer`]) by the rules in [`policy`]; the cluster
//! CA and serving certificate ([`pki`]); the join token and client config kube9d writes at
//! start ([`bootstrap`]).
//!
//! Tokens live in the store as the SHA-256 of their secret, never the secret. A change is
//! visible only once it is durable: a token works (or stops working) after its write landed.

pub mod bootstrap;
mod layer;
pub mod pki;
pub mod policy;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kube9_proto::client::token::{self, Role, Token};
use kube9_proto::pb;
use parking_lot::{Mutex, RwLock};
use tonic::Status;

pub use layer::AuthLayer;
pub use policy::Access;

use crate::state::now_ms;
use crate::store::{Batch, Op, Store};

/// The longest a token may live when it expires at all.
const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// The longest description a token may carry.
const MAX_DESCRIPTION: usize = 256;

/// Who made a call: put in the request's extensions by the layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub token_id: String,
    pub role: Role,
}

impl Caller {
    /// Whether this caller may read Secret data.
    pub fn reads_secrets(caller: Option<&Caller>) -> bool {
        caller.is_some_and(|c| c.role == Role::Admin)
    }
}

/// The token registry and the limits on what callers hold open. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    tokens: RwLock<HashMap<String, Record>>,
    /// Calls refused for want of a valid token, since start.
    refused: AtomicU64,
    /// Open streams per token id.
    streams: Mutex<HashMap<String, usize>>,
    max_streams: usize,
    insecure: bool,
    /// `sha256:<hex>` of the CA (empty when insecure).
    ca_hash: String,
}

struct Record {
    stored: pb::StoredToken,
    last_used_ms: AtomicI64,
}

impl Record {
    fn info(&self) -> pb::TokenInfo {
        let mut info = self.stored.info.clone().unwrap_or_default();
        info.last_used_ms = self.last_used_ms.load(Ordering::Relaxed);
        info
    }

    fn role(&self) -> Option<Role> {
        self.stored.info.as_ref()?.role.parse().ok()
    }

    fn expired(&self, now: i64) -> bool {
        self.stored
            .info
            .as_ref()
            .is_some_and(|i| i.expires_ms > 0 && i.expires_ms <= now)
    }
}

/// Why a call's credentials were not accepted. Logged in full; the caller is told less.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Malformed,
    Unknown(String),
    WrongSecret(String),
    Expired(String),
}

impl Refusal {
    /// What the caller is told: never which of unknown, revoked or wrong it was.
    pub fn status(&self) -> Status {
        match self {
            Refusal::Missing => Status::unauthenticated(
                "no credentials: kube9d needs `authorization: Bearer <token>` (kube9ctl sends the token of its client config, KUBE9_TOKEN or --token)",
            ),
            Refusal::Malformed => Status::unauthenticated(format!(
                "the token is malformed: {}",
                token::MalformedToken
            )),
            Refusal::Unknown(_) | Refusal::WrongSecret(_) | Refusal::Expired(_) => {
                Status::unauthenticated(
                    "the token was not accepted: it is unknown, revoked, expired or wrong",
                )
            }
        }
    }

    pub fn log_reason(&self) -> String {
        match self {
            Refusal::Missing => "no token".into(),
            Refusal::Malformed => "malformed token".into(),
            Refusal::Unknown(id) => format!("unknown token id {id}"),
            Refusal::WrongSecret(id) => format!("wrong secret for token {id}"),
            Refusal::Expired(id) => format!("token {id} expired"),
        }
    }
}

/// Settings of [`Auth::load`].
pub struct AuthSettings {
    pub max_streams_per_client: usize,
    pub insecure: bool,
    pub ca_hash: String,
}

impl Auth {
    /// The tokens in `store`.
    pub fn load(store: Store, settings: AuthSettings) -> anyhow::Result<Auth> {
        let tokens = store
            .load_tokens()?
            .into_iter()
            .filter_map(|stored| {
                let id = stored.info.as_ref()?.id.clone();
                Some((
                    id,
                    Record {
                        stored,
                        last_used_ms: AtomicI64::new(0),
                    },
                ))
            })
            .collect();
        Ok(Auth {
            inner: Arc::new(Inner {
                store,
                tokens: RwLock::new(tokens),
                refused: AtomicU64::new(0),
                streams: Mutex::new(HashMap::new()),
                max_streams: settings.max_streams_per_client.max(1),
                insecure: settings.insecure,
                ca_hash: settings.ca_hash,
            }),
        })
    }

    pub fn insecure(&self) -> bool {
        self.inner.insecure
    }

    /// `sha256:<hex>` of the cluster CA; empty when kube9d serves plain text.
    pub fn ca_hash(&self) -> &str {
        &self.inner.ca_hash
    }

    /// Calls refused for want of a valid token since kube9d started.
    pub fn refused(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    /// The caller behind an `authorization` header value.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Caller, Refusal> {
        let header = header.ok_or(Refusal::Missing)?;
        let token = token::from_bearer(header).map_err(|_| Refusal::Malformed)?;
        let tokens = self.inner.tokens.read();
        let record = tokens
            .get(&token.id)
            .ok_or_else(|| Refusal::Unknown(token.id.clone()))?;
        if !token.matches(&record.stored.secret_sha256) {
            return Err(Refusal::WrongSecret(token.id));
        }
        let now = now_ms();
        if record.expired(now) {
            return Err(Refusal::Expired(token.id));
        }
        let role = record
            .role()
            .ok_or_else(|| Refusal::Unknown(token.id.clone()))?;
        record.last_used_ms.store(now, Ordering::Relaxed);
        Ok(Caller {
            token_id: token.id,
            role,
        })
    }

    /// Decides a call to `path`: `Ok(None)` for open services, the caller when its token
    /// allows the call, the status to answer otherwise (logged and counted).
    pub fn check(
        &self,
        path: &str,
        header: Option<&str>,
        peer: Option<SocketAddr>,
    ) -> Result<Option<Caller>, Status> {
        let access = policy::access(path);
        if access == Access::Open {
            return Ok(None);
        }
        let peer = peer.map_or_else(|| "unknown".to_string(), |p| p.to_string());
        let caller = self.authenticate(header).map_err(|refusal| {
            let refused = self.inner.refused.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(%peer, call = %path, reason = %refusal.log_reason(), refused, "refused a call without a valid token");
            refusal.status()
        })?;
        policy::authorize(access, &caller, path).inspect_err(|status| {
            tracing::warn!(%peer, call = %path, token = %caller.token_id, role = %caller.role, "refused: {}", status.message());
        })?;
        Ok(Some(caller))
    }

    /// Makes a token; it works once it is durable. The secret is returned here and kept
    /// nowhere.
    pub async fn create(
        &self,
        role: Role,
        ttl: Option<Duration>,
        description: &str,
    ) -> Result<(Token, pb::TokenInfo), Status> {
        if let Some(ttl) = ttl {
            if ttl.is_zero() || ttl > MAX_TTL {
                return Err(Status::invalid_argument(
                    "a token's ttl is between 1 second and 10 years (0: never expires)",
                ));
            }
        }
        if description.chars().count() > MAX_DESCRIPTION
            || description.chars().any(char::is_control)
        {
            return Err(Status::invalid_argument(format!(
                "a token's description is at most {MAX_DESCRIPTION} characters, on one line"
            )));
        }
        let token = loop {
            let t = Token::generate();
            if !self.inner.tokens.read().contains_key(&t.id) {
                break t;
            }
        };
        let now = now_ms();
        let info = pb::TokenInfo {
            id: token.id.clone(),
            role: role.to_string(),
            created_ms: now,
            expires_ms: ttl.map_or(0, |t| now + t.as_millis() as i64),
            description: description.to_string(),
            last_used_ms: 0,
        };
        let stored = pb::StoredToken {
            info: Some(info.clone()),
            secret_sha256: token.secret_hash().to_vec(),
        };
        let mut batch = Batch::default();
        batch.push(Op::PutToken(stored.clone()));
        self.inner
            .store
            .submit(batch)
            .wait()
            .await
            .map_err(|e| Status::unavailable(format!("the token was not saved: {e}")))?;
        self.inner.tokens.write().insert(
            token.id.clone(),
            Record {
                stored,
                last_used_ms: AtomicI64::new(0),
            },
        );
        tracing::info!(id = %token.id, %role, "token created");
        Ok((token, info))
    }

    /// Every token, without secrets, by id.
    pub fn list(&self) -> Vec<pb::TokenInfo> {
        let mut list: Vec<_> = self
            .inner
            .tokens
            .read()
            .values()
            .map(Record::info)
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    /// The token `id`, if it exists and has not expired.
    pub fn get(&self, id: &str) -> Option<pb::TokenInfo> {
        let tokens = self.inner.tokens.read();
        tokens
            .get(id)
            .filter(|r| !r.expired(now_ms()))
            .map(Record::info)
    }

    /// Revokes the token `id` once its removal is durable. Streams it holds open stay open;
    /// new calls with it are refused.
    pub async fn delete(&self, id: &str) -> Result<pb::TokenInfo, Status> {
        let info = self
            .inner
            .tokens
            .read()
            .get(id)
            .map(Record::info)
            .ok_or_else(|| Status::not_found(format!("token \"{id}\" not found")))?;
        let mut batch = Batch::default();
        batch.push(Op::DeleteToken(id.to_string()));
        self.inner
            .store
            .submit(batch)
            .wait()
            .await
            .map_err(|e| Status::unavailable(format!("the token was not deleted: {e}")))?;
        self.inner.tokens.write().remove(id);
        tracing::info!(%id, "token deleted");
        Ok(info)
    }

    /// A place for one more open stream of `caller`, released when the permit drops.
    pub fn open_stream(&self, caller: Option<&Caller>) -> Result<StreamPermit, Status> {
        let id = caller.map_or_else(String::new, |c| c.token_id.clone());
        let mut streams = self.inner.streams.lock();
        let open = streams.entry(id.clone()).or_default();
        if *open >= self.inner.max_streams {
            return Err(Status::resource_exhausted(format!(
                "token {id} already holds {} open streams (logs -f, exec, watches), the most kube9d allows one client (--max-streams-per-client); close some first",
                self.inner.max_streams
            )));
        }
        *open += 1;
        Ok(StreamPermit {
            auth: self.clone(),
            id,
        })
    }
}

/// One open stream counted against its token; dropping it frees the place.
pub struct StreamPermit {
    auth: Auth,
    id: String,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut streams = self.auth.inner.streams.lock();
        if let Some(n) = streams.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                streams.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(tag: &str, max_streams: usize) -> (Auth, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("kube9-auth-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).unwrap();
        let settings = AuthSettings {
            max_streams_per_client: max_streams,
            insecure: false,
            ca_hash: String::new(),
        };
        (Auth::load(store, settings).unwrap(), dir)
    }

    #[tokio::test]
    async fn tokens_work_until_revoked_and_survive_a_restart_as_hashes() {
        let (a, dir) = auth("life", 4);
        let (token, info) = a.create(Role::Viewer, None, "ci").await.unwrap();
        assert_eq!(info.role, "viewer");
        let caller = a.authenticate(Some(&token.bearer())).unwrap();
        assert_eq!(caller.role, Role::Viewer);
        let wrong = Token {
            id: token.id.clone(),
            secret: Token::generate().secret,
        };
        assert_eq!(
            a.authenticate(Some(&wrong.bearer())),
            Err(Refusal::WrongSecret(token.id.clone()))
        );
        assert_eq!(a.authenticate(None), Err(Refusal::Missing));
        assert_eq!(a.authenticate(Some("Bearer nope")), Err(Refusal::Malformed));
        // The store holds the hash, not the secret.
        let stored = a.inner.store.load_tokens().unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].secret_sha256, token.secret_hash().to_vec());
        a.inner.store.flush().await.unwrap();
        a.delete(&token.id).await.unwrap();
        assert_eq!(
            a.authenticate(Some(&token.bearer())),
            Err(Refusal::Unknown(token.id.clone()))
        );
        assert_eq!(
            a.delete(&token.id).await.unwrap_err().code(),
            tonic::Code::NotFound
        );
        drop(a);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn expired_tokens_are_refused_and_bad_requests_store_nothing() {
        let (a, dir) = auth("ttl", 4);
        let (token, _) = a
            .create(Role::Admin, Some(Duration::from_millis(1)), "")
            .await
            .unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(
            a.authenticate(Some(&token.bearer())),
            Err(Refusal::Expired(token.id.clone()))
        );
        let before = a.list().len();
        assert!(a
            .create(Role::Node, Some(Duration::ZERO), "")
            .await
            .is_err());
        assert!(a.create(Role::Node, None, "two\nlines").await.is_err());
        assert_eq!(a.list().len(), before);
        drop(a);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn streams_are_capped_per_token() {
        let (a, dir) = auth("streams", 2);
        let c = Caller {
            token_id: "abcdef".into(),
            role: Role::Viewer,
        };
        let other = Caller {
            token_id: "zzzzzz".into(),
            role: Role::Viewer,
        };
        let p1 = a.open_stream(Some(&c)).unwrap();
        let _p2 = a.open_stream(Some(&c)).unwrap();
        let e = a.open_stream(Some(&c)).err().unwrap();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert!(a.open_stream(Some(&other)).is_ok(), "per token");
        drop(p1);
        assert!(
            a.open_stream(Some(&c)).is_ok(),
            "a closed stream frees its place"
        );
        drop(a);
        let _ = std::fs::remove_dir_all(dir);
    }
}
