//! `kube9ctl version [--client]`: this client's version and kube9d's (`Version` RPC, which a
//! viewer may call), as kubectl prints them.

use crate::cli::VersionArgs;
use kube9_proto::pb;
use serde::Serialize;

use crate::cli::Format;
use crate::commands::Context;
use crate::output::{emit, listing::encode};

/// This client's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VersionInfo {
    client_version: ClientVersion,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_version: Option<ServerVersion>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClientVersion {
    git_version: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerVersion {
    git_version: String,
    git_commit: String,
    platform: String,
}

pub async fn run(ctx: &Context, args: VersionArgs) -> anyhow::Result<()> {
    let client_version = ClientVersion {
        git_version: format!("v{VERSION}"),
    };
    // As kubectl: the client's version is printed even when the server cannot be asked.
    let server = if args.client {
        None
    } else {
        Some(server_version(ctx).await)
    };
    let (server_version, error) = match server {
        Some(Ok(v)) => (Some(v), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let text = match ctx.format() {
        format @ (Format::Json | Format::Yaml) => encode(
            &VersionInfo {
                client_version,
                server_version,
            },
            format,
        )?,
        _ => {
            let mut s = format!("Client Version: {}\n", client_version.git_version);
            if let Some(server) = &server_version {
                s.push_str(&format!("Server Version: {}\n", server.git_version));
            }
            s
        }
    };
    emit(&text)?;
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn server_version(ctx: &Context) -> anyhow::Result<ServerVersion> {
    let mut cluster = ctx.connect().await?;
    let response = cluster.client.version(pb::VersionRequest {}).await;
    let v = cluster.check(response)?;
    Ok(ServerVersion {
        git_version: v.version,
        git_commit: v.git_commit,
        platform: v.platform,
    })
}
