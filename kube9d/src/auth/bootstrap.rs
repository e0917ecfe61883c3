//! What kube9d sets up for its first users at start: the join token its own nodes use (in
//! `<data-dir>/join-token`, mode 0600, as k3s keeps its node token) and its context in the
//! client config (server, CA, an admin token), which kube9ctl reads.

use std::path::{Path, PathBuf};

use anyhow::Context;
use kube9_proto::client::{ClientConfig, Role, Token};

use super::{pki::write_private, Auth};

/// Description of the join token kube9d makes for its own nodes.
const JOIN_DESCRIPTION: &str = "kube9d's join token (nodes it starts; <data-dir>/join-token)";

/// The join token file in `data_dir`.
pub fn join_token_file(data_dir: &Path) -> PathBuf {
    data_dir.join("join-token")
}

/// The join token kube9d's own nodes present: the one in `<data-dir>/join-token` while it is
/// valid, else a new one written there.
pub async fn join_token(auth: &Auth, data_dir: &Path) -> anyhow::Result<Token> {
    let file = join_token_file(data_dir);
    if let Ok(text) = std::fs::read_to_string(&file) {
        if let Ok(token) = Token::parse(&text) {
            if auth.authenticate(Some(&token.bearer())).map(|c| c.role) == Ok(Role::Node) {
                return Ok(token);
            }
            tracing::warn!(file = %file.display(), "the join token there was revoked or expired: making a new one");
        }
    }
    let (token, _) = auth
        .create(Role::Node, None, JOIN_DESCRIPTION)
        .await
        .map_err(|s| anyhow::anyhow!("failed to make the join token: {}", s.message()))?;
    write_private(&file, &format!("{token}\n"))?;
    tracing::info!(file = %file.display(), id = %token.id, "made the join token");
    Ok(token)
}

/// Adds or updates kube9d's context `name` in the client config at `path`: `server_url`,
/// the CA, and the admin token already there while it is valid, else a new one. Other
/// contexts stay.
pub async fn write_client_config(
    auth: &Auth,
    path: &Path,
    name: &str,
    server_url: &str,
    ca_pem: Option<&str>,
) -> anyhow::Result<()> {
    let mut config = ClientConfig::load(path)?.unwrap_or_else(ClientConfig::empty);
    let current = config
        .resolve(Some(name))
        .ok()
        .and_then(|r| r.token)
        .and_then(|t| Token::parse(&t).ok())
        .filter(|t| auth.authenticate(Some(&t.bearer())).map(|c| c.role) == Ok(Role::Admin));
    let token = match current {
        Some(t) => t,
        None => {
            let description = format!("kube9d's admin token (client config {})", path.display());
            let description: String = description.chars().take(256).collect();
            auth.create(Role::Admin, None, &description)
                .await
                .map_err(|s| anyhow::anyhow!("failed to make the admin token: {}", s.message()))?
                .0
        }
    };
    config.upsert(
        name,
        server_url,
        ca_pem.map(str::as_bytes),
        &token.to_string(),
    );
    config
        .save(path)
        .with_context(|| format!("kube9ctl will not find kube9d through {}", path.display()))?;
    tracing::info!(config = %path.display(), context = %name, server = %server_url, "wrote the client config");
    Ok(())
}
