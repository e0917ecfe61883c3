//! Engine errors into [`Error`]: the answers the runtime treats differently (missing object,
//! already stopped) and the engine's own message for people.

use bollard::errors::Error as DockerError;

use crate::cri::Error;

/// The HTTP status of an engine response error.
pub(super) fn status_of(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// 404: no such container, image or volume.
pub(super) fn is_not_found(e: &DockerError) -> bool {
    status_of(e) == Some(404)
}

/// What the engine said, without bollard's "Docker responded with status code" preamble.
pub(super) fn engine_message(e: &DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError { message, .. } => message.clone(),
        DockerError::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// An engine failure while doing `action`.
pub(super) fn engine(action: impl Into<String>) -> impl FnOnce(DockerError) -> Error {
    let action = action.into();
    move |e| Error::Engine {
        action,
        source: Box::new(e),
    }
}

/// Like [`engine`], but a 404 is [`Error::NotFound`] for `kind` `id`.
pub(super) fn on(
    kind: &'static str,
    id: &str,
    action: impl Into<String>,
) -> impl FnOnce(DockerError) -> Error {
    let id = id.to_string();
    let action = action.into();
    move |e| {
        if is_not_found(&e) {
            Error::NotFound { kind, id }
        } else {
            engine(action)(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status_code: u16, message: &str) -> DockerError {
        DockerError::DockerResponseServerError {
            status_code,
            message: message.into(),
        }
    }

    #[test]
    fn a_404_is_not_found_and_anything_else_keeps_the_engines_words() {
        let missing = on("container", "abc", "start container abc")(server(404, "No such"));
        assert_eq!(missing.to_string(), "failed to find container abc");
        let failed = on("container", "abc", "start container abc")(server(500, "boom"));
        assert!(matches!(failed, Error::Engine { .. }));
        assert!(
            failed
                .to_string()
                .starts_with("failed to start container abc: ")
                && failed.to_string().ends_with("boom"),
            "{failed}"
        );
        assert_eq!(engine_message(&server(500, "boom")), "boom");
    }
}
