//! Which runtime a node lives in, as a type: the word stored in `RuntimeHandle.kind` is read
//! and written only here.

use std::fmt;

use kube9_proto::pb::RuntimeHandle;

/// Where a node's agent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuntimeKind {
    /// A Docker container kube9d created.
    Docker,
    /// A local process kube9d started.
    Process,
    /// An agent that joined by itself: kube9d cannot restart or remove it.
    External,
}

impl RuntimeKind {
    /// The word stored in `RuntimeHandle.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::Docker => "docker",
            RuntimeKind::Process => "process",
            RuntimeKind::External => "external",
        }
    }

    /// The kind a stored handle names, if it names one.
    pub fn of(handle: &RuntimeHandle) -> Option<Self> {
        match handle.kind.as_str() {
            "docker" => Some(RuntimeKind::Docker),
            "process" => Some(RuntimeKind::Process),
            "external" => Some(RuntimeKind::External),
            _ => None,
        }
    }

    /// What an instance of this kind is called in messages.
    pub fn noun(self) -> &'static str {
        match self {
            RuntimeKind::Docker => "container",
            RuntimeKind::Process => "process",
            RuntimeKind::External => "agent",
        }
    }

    /// Whether `handle` is of this kind.
    pub fn matches(self, handle: &RuntimeHandle) -> bool {
        handle.kind == self.as_str()
    }

    /// Whether a runtime of this kind can act on `handle`: same kind and an instance to act on.
    /// Handles of another kind (from a run with another runtime, or external nodes) are never
    /// restarted, killed or removed through it.
    pub fn owns(self, handle: &RuntimeHandle) -> bool {
        self != RuntimeKind::External && self.matches(handle) && !handle.id.is_empty()
    }

    /// A handle of this kind with no instance yet.
    pub fn empty_handle(self) -> RuntimeHandle {
        RuntimeHandle {
            kind: self.as_str().to_string(),
            ..Default::default()
        }
    }
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtime_owns_only_its_own_started_instances() {
        let docker = RuntimeHandle {
            kind: "docker".into(),
            id: "abc".into(),
            ..Default::default()
        };
        assert!(RuntimeKind::Docker.owns(&docker));
        assert!(!RuntimeKind::Process.owns(&docker));
        assert!(!RuntimeKind::Docker.owns(&RuntimeKind::Docker.empty_handle()));
        assert!(RuntimeKind::Docker.matches(&RuntimeKind::Docker.empty_handle()));
        let external = RuntimeHandle {
            kind: "external".into(),
            id: "x".into(),
            ..Default::default()
        };
        assert!(!RuntimeKind::External.owns(&external));
    }

    #[test]
    fn kinds_round_trip_through_the_stored_word() {
        for kind in [
            RuntimeKind::Docker,
            RuntimeKind::Process,
            RuntimeKind::External,
        ] {
            assert_eq!(RuntimeKind::of(&kind.empty_handle()), Some(kind));
        }
        assert_eq!(RuntimeKind::of(&RuntimeHandle::default()), None);
    }
}
