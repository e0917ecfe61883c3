//! `kube9ctl version`.

use crate::cli::Format;
use crate::commands::Context;
use crate::output::{emit, listing::encode};
use serde::Serialize;

/// This client's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VersionInfo {
    client_version: ClientVersion,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClientVersion {
    git_version: String,
}

pub fn run(ctx: &Context) -> anyhow::Result<()> {
    let version = format!("v{VERSION}");
    match ctx.format() {
        format @ (Format::Json | Format::Yaml) => {
            let info = VersionInfo {
                client_version: ClientVersion {
                    git_version: version,
                },
            };
            emit(&encode(&info, format)?)
        }
        _ => emit(&format!("Client Version: {version}\n")),
    }
}
