//! Everything kube9ctl prints about objects.
//!
//! - [`table`]: kubectl-like borderless tables.
//! - [`columns`]: the columns of nodes, pods, events and node health.
//! - [`custom_columns`]: `-o custom-columns=`.
//! - [`jsonpath`]: kubectl's JSONPath templates (`-o jsonpath=`, custom columns, `--sort-by`).
//! - [`listing`]: what `get` prints for a list or one object, in each format.
//! - [`objects`]: Kubernetes-shaped documents for `-o json` and `-o yaml`.
//! - [`time`]: ages (`5s`, `3m`) and RFC 3339 timestamps.

pub mod columns;
pub mod custom_columns;
pub mod jsonpath;
pub mod listing;
pub mod objects;
pub mod table;
pub mod time;

use anyhow::Context;
use serde::Serialize;
use std::io::{self, Write};

/// Kubernetes-shaped JSON (pretty, with a trailing newline).
pub fn to_json<T: Serialize>(value: &T) -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(value).context("failed to encode JSON")?;
    text.push('\n');
    Ok(text)
}

/// Kubernetes-shaped YAML.
pub fn to_yaml<T: Serialize>(value: &T) -> anyhow::Result<String> {
    serde_yaml_ng::to_string(value).context("failed to encode YAML")
}

/// Writes `text` to stdout. A closed pipe (`kube9ctl get pods | head -1`) is not an error.
pub fn emit(text: &str) -> anyhow::Result<()> {
    emit_bytes(text.as_bytes())
}

/// Writes raw bytes (logs) to stdout.
pub fn emit_bytes(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(e).context("failed to write to stdout")
        }
        _ => Ok(()),
    }
}

/// What kubectl says on stderr when a list is empty.
pub fn no_resources() {
    eprintln!("No resources found.");
}
