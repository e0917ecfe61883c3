//! What a Docker engine error means: the few answers the runtime treats differently from a
//! plain failure (missing object, container not running, subnet taken, capability refused).

use bollard::errors::Error as DockerError;

/// The HTTP status of an engine response error.
pub(super) fn status_of(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// 404: no such container, network or image.
pub(crate) fn is_not_found(e: &DockerError) -> bool {
    status_of(e) == Some(404)
}

/// 409 from kill: the container already stopped.
pub(super) fn is_not_running(e: &DockerError) -> bool {
    status_of(e) == Some(409)
}

/// "Pool overlaps with other one on this address space": the subnet is taken.
pub(super) fn is_pool_overlap(e: &DockerError) -> bool {
    matches!(e, DockerError::DockerResponseServerError { message, .. }
        if message.to_ascii_lowercase().contains("pool overlaps"))
}

/// Whether the engine refused the container because of `cap_add: SYS_ADMIN` itself. Only
/// messages that name the capability count: any other "permission denied" is a real error,
/// not a reason to drop the capability for every later node.
pub(super) fn looks_like_capability_refusal(e: &DockerError) -> bool {
    let DockerError::DockerResponseServerError { message, .. } = e else {
        return false;
    };
    let message = message.to_ascii_lowercase();
    ["sys_admin", "capabilit", "apply caps"]
        .iter()
        .any(|word| message.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_messages_about_the_capability_drop_sys_admin() {
        let refusal = |message: &str| {
            looks_like_capability_refusal(&DockerError::DockerResponseServerError {
                status_code: 500,
                message: message.into(),
            })
        };
        assert!(refusal("unknown capability: \"CAP_SYS_ADMIN\""));
        assert!(refusal(
            "OCI runtime create failed: unable to apply caps: operation not permitted"
        ));
        assert!(refusal("capabilities are not allowed here"));
        assert!(!refusal("open /var/lib/docker/x: permission denied"));
        assert!(!refusal("failed to create shim task: escape from cap"));
        assert!(!refusal("Cannot start container: port already allocated"));
    }
}
