//! The client config file: where kube9d is, the CA that vouches for it and the token to
//! present, as named contexts, in kubeconfig's shape. kube9d writes its own context at first
//! start (`$KUBE9_CONFIG`, else `~/.kube9/config`, mode 0600); kube9ctl reads it.
//!
//! ```yaml
//! apiVersion: v1
//! kind: Config
//! current-context: kube9
//! clusters:
//! - name: kube9
//!   cluster:
//!     server: https://127.0.0.1:7209
//!     certificate-authority-data: LS0tLS1CRUdJTi...
//! users:
//! - name: kube9-admin
//!   user:
//!     token: abcdef.0123…
//! contexts:
//! - name: kube9
//!   context:
//!     cluster: kube9
//!     user: kube9-admin
//!     namespace: default
//! ```

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The variable naming the client config file.
pub const ENV: &str = "KUBE9_CONFIG";

/// `$KUBE9_CONFIG`, else `~/.kube9/config`.
pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os(ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));
    home.join(".kube9").join("config")
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ClientConfig {
    /// kubeconfig mixes cases: `apiVersion`, then kebab-case keys.
    #[serde(default = "api_version", rename = "apiVersion")]
    pub api_version: String,
    #[serde(default = "kind")]
    pub kind: String,
    #[serde(default)]
    pub current_context: String,
    #[serde(default)]
    pub clusters: Vec<NamedCluster>,
    #[serde(default)]
    pub users: Vec<NamedUser>,
    #[serde(default)]
    pub contexts: Vec<NamedContext>,
}

fn api_version() -> String {
    "v1".into()
}

fn kind() -> String {
    "Config".into()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedCluster {
    pub name: String,
    pub cluster: Cluster,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Cluster {
    /// `https://host:port` (`http://` for a kube9d started with `--insecure`).
    pub server: String,
    /// The CA's PEM, base64-encoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority_data: Option<String>,
    /// A file holding the CA's PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedUser {
    pub name: String,
    pub user: User,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedContext {
    pub name: String,
    pub context: Context,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    pub cluster: String,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// One context, resolved: what a client needs to dial.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    pub context: String,
    pub server: String,
    pub ca_pem: Option<Vec<u8>>,
    pub token: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the client config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the client config {path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot write the client config {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ClientConfig {
    /// The file at `path`; `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<ClientConfig>, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.into(),
                    source,
                })
            }
        };
        if text.trim().is_empty() {
            return Ok(Some(ClientConfig::empty()));
        }
        serde_yaml_ng::from_str(&text)
            .map(Some)
            .map_err(|e| ConfigError::Invalid {
                path: path.into(),
                message: e.to_string(),
            })
    }

    pub fn empty() -> ClientConfig {
        ClientConfig {
            api_version: api_version(),
            kind: kind(),
            ..Default::default()
        }
    }

    /// Writes the file with mode 0600 (its directory 0700 when it makes it), replacing it
    /// whole: a reader never sees half a file.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let err = |source| ConfigError::Write {
            path: path.into(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(err)?;
        }
        let text = serde_yaml_ng::to_string(self).expect("a config serializes");
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        file.write_all(text.as_bytes()).map_err(err)?;
        file.sync_all().map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }

    /// Adds or replaces the cluster, user and context named `name` (user `<name>-admin`),
    /// keeping every other entry; makes it current when no existing context is current.
    pub fn upsert(&mut self, name: &str, server: &str, ca_pem: Option<&[u8]>, token: &str) {
        let user = format!("{name}-admin");
        let cluster = Cluster {
            server: server.to_string(),
            certificate_authority_data: ca_pem.map(crate::base64::encode),
            certificate_authority: None,
        };
        upsert(
            &mut self.clusters,
            name,
            |c| c.name.as_str(),
            |c| c.cluster = cluster.clone(),
            || NamedCluster {
                name: name.into(),
                cluster: cluster.clone(),
            },
        );
        let u = User {
            token: Some(token.to_string()),
        };
        upsert(
            &mut self.users,
            &user,
            |c| c.name.as_str(),
            |c| c.user = u.clone(),
            || NamedUser {
                name: user.clone(),
                user: u.clone(),
            },
        );
        upsert(
            &mut self.contexts,
            name,
            |c| c.name.as_str(),
            |c| {
                c.context.cluster = name.into();
                c.context.user = user.clone();
            },
            || NamedContext {
                name: name.into(),
                context: Context {
                    cluster: name.into(),
                    user: user.clone(),
                    namespace: None,
                },
            },
        );
        if !self.contexts.iter().any(|c| c.name == self.current_context) {
            self.current_context = name.to_string();
        }
    }

    /// The context `name` (the current one when `None`), resolved.
    pub fn resolve(&self, name: Option<&str>) -> Result<Resolved, String> {
        let name = match name {
            Some(n) => n,
            None if self.current_context.is_empty() => {
                return Err("it names no current context".into())
            }
            None => &self.current_context,
        };
        let ctx = self
            .contexts
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| format!("it has no context {name:?}"))?;
        let cluster = self
            .clusters
            .iter()
            .find(|c| c.name == ctx.context.cluster)
            .ok_or_else(|| {
                format!(
                    "context {name:?} names cluster {:?}, which it does not define",
                    ctx.context.cluster
                )
            })?;
        let token = match ctx.context.user.as_str() {
            "" => None,
            user => self
                .users
                .iter()
                .find(|u| u.name == user)
                .ok_or_else(|| {
                    format!("context {name:?} names user {user:?}, which it does not define")
                })?
                .user
                .token
                .clone(),
        };
        let ca_pem = match (
            &cluster.cluster.certificate_authority_data,
            &cluster.cluster.certificate_authority,
        ) {
            (Some(data), _) => Some(crate::base64::decode(data).ok_or_else(|| {
                format!(
                    "cluster {:?} has certificate-authority-data that is not base64",
                    cluster.name
                )
            })?),
            (None, Some(file)) => Some(std::fs::read(file).map_err(|e| {
                format!(
                    "cluster {:?} names certificate-authority {}: {e}",
                    cluster.name,
                    file.display()
                )
            })?),
            (None, None) => None,
        };
        Ok(Resolved {
            context: name.to_string(),
            server: cluster.cluster.server.clone(),
            ca_pem,
            token,
            namespace: ctx.context.namespace.clone().filter(|n| !n.is_empty()),
        })
    }
}

fn upsert<T>(
    list: &mut Vec<T>,
    name: &str,
    name_of: impl Fn(&T) -> &str,
    update: impl FnOnce(&mut T),
    make: impl FnOnce() -> T,
) {
    match list.iter_mut().find(|e| name_of(e) == name) {
        Some(e) => update(e),
        None => list.push(make()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_keeps_other_contexts_and_the_current_one() {
        let mut c = ClientConfig::empty();
        c.upsert("a", "https://127.0.0.1:1", Some(b"CA-A"), "tok-a");
        assert_eq!(c.current_context, "a");
        c.upsert("b", "https://127.0.0.1:2", None, "tok-b");
        assert_eq!(c.current_context, "a", "an existing current context stays");
        c.upsert("a", "https://127.0.0.1:3", Some(b"CA-A2"), "tok-a2");
        assert_eq!(c.contexts.len(), 2);
        let a = c.resolve(None).unwrap();
        assert_eq!(a.server, "https://127.0.0.1:3");
        assert_eq!(a.ca_pem.as_deref(), Some(&b"CA-A2"[..]));
        assert_eq!(a.token.as_deref(), Some("tok-a2"));
        let b = c.resolve(Some("b")).unwrap();
        assert_eq!((b.server.as_str(), b.ca_pem), ("https://127.0.0.1:2", None));
        assert!(c
            .resolve(Some("nope"))
            .unwrap_err()
            .contains("no context \"nope\""));
    }

    #[test]
    fn saves_private_and_loads_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("kube9-cfg-{}", std::process::id()));
        let path = dir.join("sub").join("config");
        let mut c = ClientConfig::empty();
        c.upsert("k", "https://h:1", Some(b"pem"), "t");
        c.contexts[0].context.namespace = Some("team".into());
        c.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = ClientConfig::load(&path).unwrap().unwrap();
        assert_eq!(back, c);
        assert_eq!(
            back.resolve(None).unwrap().namespace.as_deref(),
            Some("team")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("current-context: k"), "{text}");
        assert!(text.starts_with("apiVersion: v1\nkind: Config\n"), "{text}");
        assert!(text.contains("certificate-authority-data"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(ClientConfig::load(&path).unwrap().is_none());
    }

    #[test]
    fn a_broken_file_is_an_error_naming_it() {
        let path = std::env::temp_dir().join(format!("kube9-cfg-bad-{}", std::process::id()));
        std::fs::write(&path, "clusters: [oops").unwrap();
        let e = ClientConfig::load(&path).unwrap_err().to_string();
        assert!(
            e.contains(&path.display().to_string()) && e.contains("not valid"),
            "{e}"
        );
        std::fs::remove_file(&path).unwrap();
    }
}
