//! Which role each call needs: one table for every service, so a new RPC is admin-only until
//! it is named here as a read.

use kube9_proto::client::Role;
use tonic::Status;

use super::Caller;

/// What a call needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// gRPC health and reflection: anyone.
    Open,
    /// The agent stream: a node (join) token.
    Node,
    /// Reads: a viewer or admin token.
    Read,
    /// Everything else: an admin token.
    Admin,
}

/// `ClusterService` calls a viewer may make: get, describe, logs, watch, events. `Exec` is
/// not among them, nor anything that changes state or shows tokens.
const READS: &[&str] = &[
    "ListNodes",
    "GetNode",
    "NodeHealth",
    "ListPods",
    "GetPod",
    "PodHealth",
    "GetLogs",
    "StreamLogs",
    "ListNamespaces",
    "GetNamespace",
    "ListConfigMaps",
    "GetConfigMap",
    "ListSecrets",
    "GetSecret",
    "ListEvents",
    "Watch",
    "Version",
    "Top",
];

/// The access a call to `path` (`/package.Service/Method`) needs.
pub fn access(path: &str) -> Access {
    if path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.") {
        return Access::Open;
    }
    if path == "/kube9.v1.AgentService/Attach" {
        return Access::Node;
    }
    match path.strip_prefix("/kube9.v1.ClusterService/") {
        Some(method) if READS.contains(&method) => Access::Read,
        _ => Access::Admin,
    }
}

/// Whether `caller` may make a call needing `access`.
pub fn authorize(access: Access, caller: &Caller, path: &str) -> Result<(), Status> {
    let method = path.rsplit('/').next().unwrap_or(path);
    let allowed = match access {
        Access::Open => true,
        Access::Node => caller.role == Role::Node,
        Access::Read => matches!(caller.role, Role::Viewer | Role::Admin),
        Access::Admin => caller.role == Role::Admin,
    };
    if allowed {
        return Ok(());
    }
    let id = &caller.token_id;
    Err(Status::permission_denied(match (caller.role, access) {
        (Role::Node, _) => format!("token {id} is a node token: it joins nodes and may not call {method}"),
        (_, Access::Node) => format!("token {id} ({}) may not attach as a node: agents need a node token (kube9ctl token create --role node)", caller.role),
        (role, _) => format!("token {id} ({role}) may not call {method}: it needs the admin role"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role) -> Caller {
        Caller {
            token_id: "abcdef".into(),
            role,
        }
    }

    #[test]
    fn the_table() {
        assert_eq!(access("/grpc.health.v1.Health/Check"), Access::Open);
        assert_eq!(
            access("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            Access::Open
        );
        assert_eq!(access("/kube9.v1.AgentService/Attach"), Access::Node);
        assert_eq!(access("/kube9.v1.ClusterService/GetPod"), Access::Read);
        for write in [
            "Apply",
            "DeletePod",
            "Exec",
            "SimulateNodeFailure",
            "ListTokens",
            "Unknown",
        ] {
            assert_eq!(
                access(&format!("/kube9.v1.ClusterService/{write}")),
                Access::Admin,
                "{write}"
            );
        }
        assert_eq!(access("/other.Service/Get"), Access::Admin);
    }

    #[test]
    fn roles() {
        let p = "/kube9.v1.ClusterService/Apply";
        assert!(authorize(Access::Admin, &caller(Role::Admin), p).is_ok());
        let e = authorize(Access::Admin, &caller(Role::Viewer), p).unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(
            e.message()
                .contains("may not call Apply: it needs the admin role"),
            "{}",
            e.message()
        );
        assert!(authorize(Access::Read, &caller(Role::Viewer), p).is_ok());
        assert!(authorize(Access::Read, &caller(Role::Node), p).is_err());
        assert!(authorize(Access::Node, &caller(Role::Node), p).is_ok());
        assert!(authorize(Access::Node, &caller(Role::Admin), p).is_err());
    }
}
