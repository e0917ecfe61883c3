//! The node image the Docker runtime starts node containers from: `FROM scratch` with a static
//! busybox (pod commands run through `/bin/sh`) and the static `kube9-node` agent as entrypoint
//! (see `images/node/Dockerfile`).
//!
//! kube9d builds the image itself, from an in-memory build context, the first time it needs
//! it. The agent binary changes during development while the tag stays `kube9-node:<version>`,
//! so the image carries a hash of its inputs ([`LABEL_CONTENT_HASH`]) and is rebuilt when the
//! binaries on disk no longer match it.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};
use std::path::Path;
use std::time::Instant;

use bollard::query_parameters::BuildImageOptionsBuilder;
use bollard::{body_full, Docker};
use futures::StreamExt;
use tracing::{debug, info};

use super::config::DockerConfig;
use super::errors::is_not_found;
use crate::runtime::{Error, Result};

/// The Dockerfile of the node image, embedded so kube9d needs no source tree at run time.
pub const DOCKERFILE: &str = include_str!("../../../../images/node/Dockerfile");

/// Image label holding the hash of the build context the image was built from.
pub const LABEL_CONTENT_HASH: &str = "io.kube9.content-hash";

/// Makes sure `cfg.image_tag` exists and was built from the binaries `cfg` points at; builds
/// it otherwise.
pub async fn ensure_image(docker: &Docker, cfg: &DockerConfig) -> Result<()> {
    let context = BuildContext::load(&cfg.node_binary, &cfg.busybox)?;
    let tag = cfg.image_tag.as_str();
    let mut previous = None;
    match docker.inspect_image(tag).await {
        Ok(image) => {
            previous = image.id.clone();
            let built_from = image
                .config
                .and_then(|c| c.labels)
                .and_then(|mut labels| labels.remove(LABEL_CONTENT_HASH));
            if built_from.as_deref() == Some(context.content_hash()) {
                debug!(image = %tag, "node image is up to date");
                return Ok(());
            }
            info!(image = %tag, "node binary changed; rebuilding the node image");
        }
        Err(e) if is_not_found(&e) => info!(image = %tag, "building the node image"),
        Err(e) => return Err(e.into()),
    }
    build(docker, tag, &context).await?;
    if let Some(old) = previous {
        // The tag moved to the new build; drop the old one so rebuilds do not pile up. Docker
        // refuses while a container still uses it, which is fine: it goes with that container.
        let opts = bollard::query_parameters::RemoveImageOptionsBuilder::new()
            .noprune(false)
            .build();
        if docker.remove_image(&old, Some(opts), None).await.is_ok() {
            debug!(image = %old, "removed the previous node image");
        }
    }
    Ok(())
}

async fn build(docker: &Docker, tag: &str, context: &BuildContext) -> Result<()> {
    let started = Instant::now();
    let labels = HashMap::from([(LABEL_CONTENT_HASH, context.content_hash())]);
    let options = BuildImageOptionsBuilder::new()
        .t(tag)
        .labels(&labels)
        .rm(true)
        .forcerm(true)
        .build();
    let tar = context.to_tar()?;
    let mut output = docker.build_image(options, None, Some(body_full(tar.into())));
    while let Some(item) = output.next().await {
        let item = item.map_err(|e| match e {
            bollard::errors::Error::DockerStreamError { error } => Error::Image(error),
            other => Error::Docker(other),
        })?;
        if let Some(detail) = item.error_detail {
            let message = detail
                .message
                .unwrap_or_else(|| "unknown build error".into());
            return Err(Error::Image(message));
        }
        if let Some(line) = item.stream.as_deref().map(str::trim_end) {
            if !line.is_empty() {
                debug!(image = %tag, "build: {line}");
            }
        }
    }
    info!(image = %tag, elapsed_ms = started.elapsed().as_millis() as u64, "built the node image");
    Ok(())
}

/// The files of the node image's build context, read and checked.
#[derive(Debug)]
pub struct BuildContext {
    node_binary: Vec<u8>,
    busybox: Vec<u8>,
    hash: String,
}

impl BuildContext {
    /// Reads both binaries and checks that they can run in a `FROM scratch` image.
    pub fn load(node_binary: &Path, busybox: &Path) -> Result<Self> {
        let node = read_input(node_binary, "kube9-node", NODE_BINARY_HINT)?;
        check_static(&node, node_binary, NODE_STATIC_HINT)?;
        let bb = read_input(busybox, "busybox", BUSYBOX_HINT)?;
        check_static(&bb, busybox, BUSYBOX_HINT)?;
        let mut hasher = DefaultHasher::new();
        for part in [DOCKERFILE.as_bytes(), &node, &bb] {
            hasher.write_usize(part.len());
            hasher.write(part);
        }
        Ok(Self {
            node_binary: node,
            busybox: bb,
            hash: format!("{:016x}", hasher.finish()),
        })
    }

    /// Hash of the Dockerfile and both binaries.
    pub fn content_hash(&self) -> &str {
        &self.hash
    }

    /// The build context as an uncompressed tar archive.
    pub fn to_tar(&self) -> Result<Vec<u8>> {
        let mut tar = tar::Builder::new(Vec::new());
        let files: [(&str, &[u8], u32); 3] = [
            ("Dockerfile", DOCKERFILE.as_bytes(), 0o644),
            ("busybox", &self.busybox, 0o755),
            ("kube9-node", &self.node_binary, 0o755),
        ];
        for (name, data, mode) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(mode);
            header.set_cksum();
            tar.append_data(&mut header, name, data)?;
        }
        Ok(tar.into_inner()?)
    }
}

const NODE_BINARY_HINT: &str = "build it with `cargo build --release -p kube9-node` (the \
     workspace builds static binaries) or set --node-binary/KUBE9_NODE_BINARY";
const NODE_STATIC_HINT: &str = "the node image is FROM scratch, so the agent must be static: \
     build it in this workspace (its .cargo/config.toml sets +crt-static) with `cargo build \
     --release -p kube9-node`, or set --node-binary/KUBE9_NODE_BINARY to a static build";
const BUSYBOX_HINT: &str = "install Debian's busybox-static (apt-get install -y \
     busybox-static) or set --busybox/KUBE9_BUSYBOX";

fn read_input(path: &Path, what: &str, hint: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::Image(format!("{what} not found at {}: {hint}", path.display()))
        }
        _ => Error::Image(format!("failed to read {what} at {}: {e}", path.display())),
    })
}

fn check_static(bytes: &[u8], path: &Path, hint: &str) -> Result<()> {
    match elf_interpreter(bytes) {
        Ok(None) => Ok(()),
        Ok(Some(interp)) => Err(Error::Image(format!(
            "{} is dynamically linked (it needs {interp}): {hint}",
            path.display()
        ))),
        Err(why) => Err(Error::Image(format!("{} {why}: {hint}", path.display()))),
    }
}

/// The program interpreter (`PT_INTERP`) of a little-endian ELF64 executable, if any; static
/// and static-pie executables have none.
fn elf_interpreter(bytes: &[u8]) -> Result<Option<String>, &'static str> {
    const PT_INTERP: u32 = 3;
    if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err("is not an ELF executable");
    }
    if bytes.get(4..6) != Some([2u8, 1].as_slice()) {
        return Err("is not a 64-bit little-endian ELF executable");
    }
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |at: usize| {
        let b: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
        Some(u64::from_le_bytes(b))
    };
    let truncated = "is a truncated ELF file";
    let phoff = u64_at(0x20).ok_or(truncated)? as usize;
    let phentsize = u16_at(0x36).ok_or(truncated)? as usize;
    let phnum = u16_at(0x38).ok_or(truncated)? as usize;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(ph).ok_or(truncated)? != PT_INTERP {
            continue;
        }
        let offset = u64_at(ph + 0x08).ok_or(truncated)? as usize;
        let size = u64_at(ph + 0x20).ok_or(truncated)? as usize;
        let raw = bytes.get(offset..offset + size).ok_or(truncated)?;
        let name = String::from_utf8_lossy(raw)
            .trim_end_matches('\0')
            .to_string();
        return Ok(Some(name));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_node_binary_says_how_to_build_it() {
        let err = BuildContext::load(Path::new("/nonexistent/kube9-node"), Path::new("/bin/sh"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("kube9-node not found at /nonexistent/kube9-node"),
            "{err}"
        );
        assert!(err.contains("cargo build --release -p kube9-node"), "{err}");
    }

    #[test]
    fn a_dynamic_binary_is_refused() {
        let err = check_static(
            &std::fs::read("/bin/sh").unwrap(),
            Path::new("/bin/sh"),
            "hint",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("dynamically linked"), "{err}");
        assert!(err.contains("ld-linux"), "{err}");
    }

    #[test]
    fn a_script_is_not_an_elf_executable() {
        let err = check_static(b"#!/bin/sh\n", Path::new("x"), "hint").unwrap_err();
        assert!(err.to_string().contains("not an ELF executable"), "{err}");
    }

    #[test]
    fn the_test_binary_itself_is_static() {
        // The workspace builds everything with +crt-static, test executables included.
        let exe = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&exe).unwrap();
        assert_eq!(elf_interpreter(&bytes), Ok(None), "{}", exe.display());
    }

    #[test]
    fn a_missing_busybox_says_which_package_to_install() {
        let exe = std::env::current_exe().unwrap();
        let err = BuildContext::load(&exe, Path::new("/nonexistent/busybox"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("busybox not found at /nonexistent/busybox"),
            "{err}"
        );
        assert!(err.contains("busybox-static"), "{err}");
    }

    #[test]
    fn the_build_context_holds_the_dockerfile_and_both_binaries() {
        let exe = std::env::current_exe().unwrap();
        let ctx = BuildContext::load(&exe, &exe).unwrap();
        let tar = ctx.to_tar().unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["Dockerfile", "busybox", "kube9-node"]);
        assert_eq!(ctx.content_hash().len(), 16);
    }
}
