//! Injected node faults (`kube9ctl node fail --mode …`): one type for the CLI's flag, the wire
//! request and the `Node.injected_fault` record, so no side matches on strings.

use std::fmt;
use std::str::FromStr;

use crate::pb;

/// A fault injected into a node to exercise failure handling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The agent stops sending heartbeats.
    Heartbeat,
    /// The node's container or process is killed.
    Crash,
    /// One of the agent's components reports itself unhealthy.
    Component(String),
    /// The node is cut off the control plane's network.
    Partition,
}

impl Fault {
    /// The wire mode and component name of a `SimulateNodeFailureRequest`.
    pub fn to_wire(&self) -> (pb::FailureMode, String) {
        match self {
            Fault::Heartbeat => (pb::FailureMode::Heartbeat, String::new()),
            Fault::Crash => (pb::FailureMode::Crash, String::new()),
            Fault::Component(name) => (pb::FailureMode::Component, name.clone()),
            Fault::Partition => (pb::FailureMode::Partition, String::new()),
        }
    }

    /// The fault a `SimulateNodeFailureRequest` asks for.
    pub fn from_wire(mode: i32, component: &str) -> Result<Self, String> {
        match pb::FailureMode::try_from(mode).unwrap_or(pb::FailureMode::Unspecified) {
            pb::FailureMode::Heartbeat => Ok(Fault::Heartbeat),
            pb::FailureMode::Crash => Ok(Fault::Crash),
            pb::FailureMode::Partition => Ok(Fault::Partition),
            pb::FailureMode::Component if component.trim().is_empty() => {
                Err(COMPONENT_NEEDS_NAME.into())
            }
            pb::FailureMode::Component => Ok(Fault::Component(component.trim().to_string())),
            pb::FailureMode::Unspecified => Err(UNKNOWN_MODE.into()),
        }
    }

    /// The fault recorded on a node (`Node.injected_fault`), if any.
    pub fn recorded(node: &pb::Node) -> Option<Self> {
        node.injected_fault.parse().ok()
    }
}

const COMPONENT_NEEDS_NAME: &str = "mode component needs a component name (component=kubelet)";
const UNKNOWN_MODE: &str = "unknown failure mode (heartbeat, crash, component=<name>, partition)";

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Heartbeat => f.write_str("heartbeat"),
            Fault::Crash => f.write_str("crash"),
            Fault::Component(name) => write!(f, "component={name}"),
            Fault::Partition => f.write_str("partition"),
        }
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "heartbeat" => Ok(Fault::Heartbeat),
            "crash" => Ok(Fault::Crash),
            "partition" => Ok(Fault::Partition),
            _ => match s.strip_prefix("component=") {
                Some(name) if !name.trim().is_empty() => {
                    Ok(Fault::Component(name.trim().to_string()))
                }
                Some(_) => Err("component= needs a component name, e.g. component=kubelet".into()),
                None => Err(format!(
                    "unknown failure mode {s:?} (supported: heartbeat, crash, component=<name>, partition)"
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_print_and_cross_the_wire_unchanged() {
        for text in ["heartbeat", "crash", "partition", "component=kubelet"] {
            let fault: Fault = text.parse().unwrap();
            assert_eq!(fault.to_string(), text);
            let (mode, component) = fault.to_wire();
            assert_eq!(Fault::from_wire(mode as i32, &component), Ok(fault));
        }
    }

    #[test]
    fn bad_faults_say_what_is_supported() {
        assert!("component=".parse::<Fault>().is_err());
        assert!("explode"
            .parse::<Fault>()
            .unwrap_err()
            .contains("unknown failure mode"));
        assert!(Fault::from_wire(pb::FailureMode::Component as i32, "")
            .unwrap_err()
            .contains("needs a component name"));
        assert!(Fault::from_wire(0, "")
            .unwrap_err()
            .contains("unknown failure mode"));
    }

    #[test]
    fn a_node_without_a_fault_records_none() {
        assert_eq!(Fault::recorded(&pb::Node::default()), None);
        let node = pb::Node {
            injected_fault: "partition".into(),
            ..Default::default()
        };
        assert_eq!(Fault::recorded(&node), Some(Fault::Partition));
    }
}
