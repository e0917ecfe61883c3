//! Cordon, drain, labels and annotations, and kube9d's version: `CordonNode`, `DrainNode`,
//! `SetMetadata`, `Version`.
//!
//! Drain is done here, server-side, rather than by kube9ctl deleting pods one by one: only
//! kube9d can hold a pod's place until its node's agent confirms the old copy stopped and
//! then place it elsewhere under the same name (see `state::drain`); a client that deleted
//! and re-created pods would lose their history and could race the old copy.

use kube9_proto::pb;
use tonic::{Request, Response, Status};

use super::ClusterApi;
use crate::state::Error;

impl ClusterApi {
    pub(super) async fn do_cordon_node(
        &self,
        request: Request<pb::CordonNodeRequest>,
    ) -> Result<Response<pb::Node>, Status> {
        let r = request.into_inner();
        let (res, commit) = self
            .control
            .mutate(|c| c.set_unschedulable(&r.name, r.unschedulable));
        let node = res?;
        commit.wait().await.map_err(Error::from)?;
        Ok(Response::new(node))
    }

    pub(super) async fn do_drain_node(
        &self,
        request: Request<pb::DrainNodeRequest>,
    ) -> Result<Response<pb::DrainNodeResponse>, Status> {
        let r = request.into_inner();
        let (res, commit) = self.control.mutate(|c| {
            // Each pod's own grace period, or kube9d's default.
            let pods = c.drain(&r.name, 0)?;
            Ok::<_, Error>(pb::DrainNodeResponse {
                node: Some(c.nodes[&r.name].view()),
                pods,
            })
        });
        let response = res?;
        commit.wait().await.map_err(Error::from)?;
        Ok(Response::new(response))
    }

    pub(super) async fn do_set_metadata(
        &self,
        request: Request<pb::SetMetadataRequest>,
    ) -> Result<Response<pb::SetMetadataResponse>, Status> {
        let r = request.into_inner();
        let (res, commit) = self.control.mutate(|c| c.set_metadata(&r));
        let response = res?;
        commit.wait().await.map_err(Error::from)?;
        Ok(Response::new(response))
    }

    pub(super) fn do_version(&self) -> pb::VersionResponse {
        pb::VersionResponse {
            version: format!("v{}", env!("CARGO_PKG_VERSION")),
            git_commit: option_env!("KUBE9_GIT_COMMIT").unwrap_or("").to_string(),
            platform: format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}
