//! Images on the engine: pull policies applied, local builds from an in-memory context, and
//! the pause image the sandboxes run.
//!
//! The pause image is `FROM scratch` with the static `kube9-node` binary as `/pause`, entry
//! point `/pause pause` (see [`crate::pause`]; the agent also execs `/pause du` in sandboxes,
//! see [`crate::usage`]). It is built through the engine from the
//! running agent's own executable the first time a sandbox needs it, so a node needs no
//! registry. The legacy builder is used (what bollard asks for by default), which works
//! without BuildKit and without network.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use bollard::{body_full, Docker};
use futures::StreamExt;
use tokio::sync::Mutex;
use tracing::{debug, info};

use super::errors::{engine, engine_message, is_not_found};
use crate::cri::image::Reference;
use crate::cri::{Error, ImageRef, PullPolicy, Result};

/// Label on the pause image: the kube9-node version it was built by.
pub const LABEL_PAUSE_VERSION: &str = "io.kube9.pause.version";

/// Label on the pause image: the modes of its binary the agent uses ([`PAUSE_MODES`]).
pub const LABEL_PAUSE_MODES: &str = "io.kube9.pause.modes";

/// What the agent runs of the pause image's binary: `pause` as the sandbox's process, `du`
/// exec'd in it (see [`crate::usage`]). A pause image without this label value was built by
/// an agent that lacked one of them, and is built again. Extend it when adding a mode.
pub const PAUSE_MODES: &str = "pause du";

/// The binary in the pause image.
pub const PAUSE_PROGRAM: &str = "/pause";

/// The Dockerfile of the pause image.
const PAUSE_DOCKERFILE: &str = "FROM scratch\n\
     COPY kube9-node /pause\n\
     ENTRYPOINT [\"/pause\", \"pause\"]\n";

/// One pause image build at a time in this process, so concurrent sandboxes (or tests) do
/// not each build it.
static PAUSE_BUILD: Mutex<()> = Mutex::const_new(());

/// Applies `policy` to `image` (see [`crate::cri::ContainerRuntime::ensure_image`]).
pub(super) async fn ensure(docker: &Docker, image: &str, policy: PullPolicy) -> Result<ImageRef> {
    let present = image_info(docker, image).await?;
    let found = |(id, user): (String, String), pulled| ImageRef {
        name: image.to_string(),
        id,
        pulled,
        user,
    };
    match (policy, present) {
        (PullPolicy::Never | PullPolicy::IfNotPresent, Some(info)) => Ok(found(info, false)),
        (PullPolicy::Never, None) => Err(Error::ImageNeverPull {
            image: image.to_string(),
        }),
        (PullPolicy::IfNotPresent, None) | (PullPolicy::Always, _) => {
            pull(docker, image).await?;
            let info = image_info(docker, image)
                .await?
                .ok_or_else(|| Error::ImagePull {
                    image: image.to_string(),
                    message: "the engine reported success but does not have the image".into(),
                })?;
            Ok(found(info, true))
        }
    }
}

/// The engine's id of `image` and its `USER` (empty when it has none), or `None` when the
/// engine does not have it.
pub(super) async fn image_info(docker: &Docker, image: &str) -> Result<Option<(String, String)>> {
    match docker.inspect_image(image).await {
        Ok(found) => {
            let user = (found.config.as_ref())
                .and_then(|c| c.user.clone())
                .unwrap_or_default();
            Ok(Some((found.id.unwrap_or_else(|| image.to_string()), user)))
        }
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(engine(format!("inspect image {image}"))(e)),
    }
}

async fn pull(docker: &Docker, image: &str) -> Result<()> {
    let started = Instant::now();
    let reference = Reference::parse(image);
    let options = CreateImageOptionsBuilder::new()
        .from_image(&reference.repository)
        .tag(reference.pull_tag())
        .build();
    let mut progress = docker.create_image(Some(options), None, None);
    while let Some(item) = progress.next().await {
        item.map_err(|e| Error::ImagePull {
            image: image.to_string(),
            message: engine_message(&e),
        })?;
    }
    info!(
        image,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "pulled image"
    );
    Ok(())
}

/// A file of a build context.
#[derive(Debug, Clone, Copy)]
pub struct ContextFile<'a> {
    /// Path in the context.
    pub name: &'a str,
    /// Contents.
    pub data: &'a [u8],
    /// Unix mode (`0o755` for programs).
    pub mode: u32,
}

/// Builds `tag` from `dockerfile` and `files` (an in-memory context), labelling the image.
pub async fn build_image(
    docker: &Docker,
    tag: &str,
    dockerfile: &str,
    files: &[ContextFile<'_>],
    labels: &HashMap<String, String>,
) -> Result<()> {
    let failed = |message: String| Error::ImageBuild {
        image: tag.to_string(),
        message,
    };
    let started = Instant::now();
    let tar = context_tar(dockerfile, files)
        .map_err(|e| failed(format!("failed to write the build context: {e}")))?;
    let options = BuildImageOptionsBuilder::new()
        .t(tag)
        .labels(labels)
        .rm(true)
        .forcerm(true)
        .build();
    let mut output = docker.build_image(options, None, Some(body_full(tar.into())));
    while let Some(item) = output.next().await {
        let item = item.map_err(|e| failed(engine_message(&e)))?;
        if let Some(detail) = item.error_detail {
            return Err(failed(
                detail
                    .message
                    .unwrap_or_else(|| "unknown build error".into()),
            ));
        }
        if let Some(line) = item.stream.as_deref().map(str::trim_end) {
            if !line.is_empty() {
                debug!(image = %tag, "build: {line}");
            }
        }
    }
    info!(image = %tag, elapsed_ms = started.elapsed().as_millis() as u64, "built image");
    Ok(())
}

fn context_tar(dockerfile: &str, files: &[ContextFile<'_>]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let dockerfile = ContextFile {
        name: "Dockerfile",
        data: dockerfile.as_bytes(),
        mode: 0o644,
    };
    for file in std::iter::once(&dockerfile).chain(files) {
        let mut header = tar::Header::new_gnu();
        header.set_size(file.data.len() as u64);
        header.set_mode(file.mode);
        header.set_cksum();
        tar.append_data(&mut header, file.name, file.data)?;
    }
    tar.into_inner()
}

/// Makes sure the pause image `tag` exists with every mode the agent uses, building it from
/// `program` (a static `kube9-node`) if the engine lacks it or has one built without them.
pub(super) async fn ensure_pause(docker: &Docker, tag: &str, program: &Path) -> Result<()> {
    let _one_build = PAUSE_BUILD.lock().await;
    let modes = match docker.inspect_image(tag).await {
        Ok(found) => Some(
            (found.config.and_then(|c| c.labels))
                .and_then(|mut labels| labels.remove(LABEL_PAUSE_MODES))
                .unwrap_or_default(),
        ),
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(engine(format!("inspect image {tag}"))(e)),
    };
    match modes {
        Some(modes) if modes == PAUSE_MODES => return Ok(()),
        Some(modes) => {
            info!(image = %tag, program = %program.display(), modes = %modes, wanted = PAUSE_MODES,
                "building the pause image again: the one there lacks modes the agent uses")
        }
        None => info!(image = %tag, program = %program.display(), "building the pause image"),
    }
    let binary = tokio::fs::read(program)
        .await
        .map_err(|e| Error::ImageBuild {
            image: tag.to_string(),
            message: format!("failed to read {}: {e}", program.display()),
        })?;
    let labels = HashMap::from([
        (
            LABEL_PAUSE_VERSION.to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        (LABEL_PAUSE_MODES.to_string(), PAUSE_MODES.to_string()),
    ]);
    let files = [ContextFile {
        name: "kube9-node",
        data: &binary,
        mode: 0o755,
    }];
    build_image(docker, tag, PAUSE_DOCKERFILE, &files, &labels).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_context_holds_the_dockerfile_first() {
        let files = [ContextFile {
            name: "prog",
            data: b"\x7fELF",
            mode: 0o755,
        }];
        let tar = context_tar(PAUSE_DOCKERFILE, &files).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let entries: Vec<(String, u32)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let mode = e.header().mode().unwrap();
                (e.path().unwrap().display().to_string(), mode)
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("Dockerfile".to_string(), 0o644),
                ("prog".to_string(), 0o755)
            ]
        );
    }
}
