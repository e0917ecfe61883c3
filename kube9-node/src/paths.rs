//! Names that become directory names (nodes, namespaces, pods, containers). A leaf: it imports
//! nothing of the agent.

/// True when `name` can be used as one path component (no `/`, not `.` or `..`).
pub(crate) fn is_path_component(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}
