//! Node operations of `ClusterService` that call the runtime: create, delete (drain, then
//! remove), fault injection, recovery and force cleanup. Each is a thin call into
//! [`crate::nodeops`], run to completion in its own task (see `to_completion` in `cluster.rs`).

use kube9_proto::fault::Fault;
use kube9_proto::pb;
use tonic::{Request, Response, Status};

use super::ClusterApi;
use crate::state::Error;

impl ClusterApi {
    pub(super) async fn do_create_node(
        &self,
        request: Request<pb::CreateNodeRequest>,
    ) -> Result<Response<pb::Node>, Status> {
        let r = request.into_inner();
        let spec = pb::NodeSpec {
            name: r.name,
            cpu_millis: r.cpu_millis,
            labels: r.labels,
            memory_bytes: r.memory_bytes,
        };
        let mut nodes = self.ops.create_nodes(vec![spec]).await?;
        Ok(Response::new(nodes.remove(0)))
    }

    pub(super) async fn do_delete_node(
        &self,
        request: Request<pb::DeleteNodeRequest>,
    ) -> Result<Response<pb::Node>, Status> {
        let name = request.into_inner().name;
        Ok(Response::new(self.ops.delete_node(&name).await?))
    }

    pub(super) async fn do_simulate_node_failure(
        &self,
        request: Request<pb::SimulateNodeFailureRequest>,
    ) -> Result<Response<pb::Node>, Status> {
        let r = request.into_inner();
        // An unknown node is reported before a bad mode, as for every other node call.
        self.ops.node_view(&r.name)?;
        let fault = Fault::from_wire(r.mode, &r.component).map_err(Error::Invalid)?;
        Ok(Response::new(self.ops.inject(&r.name, fault).await?))
    }

    pub(super) async fn do_recover_node(
        &self,
        request: Request<pb::RecoverNodeRequest>,
    ) -> Result<Response<pb::Node>, Status> {
        let name = request.into_inner().name;
        Ok(Response::new(self.ops.recover(&name).await?))
    }

    pub(super) async fn do_force_cleanup_node(
        &self,
        request: Request<pb::ForceCleanupNodeRequest>,
    ) -> Result<Response<pb::Node>, Status> {
        let name = request.into_inner().name;
        Ok(Response::new(self.ops.force_cleanup(&name).await?))
    }
}
