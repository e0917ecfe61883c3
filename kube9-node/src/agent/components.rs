//! The component health the agent reports in every heartbeat.
//!
//! kubelet and container-runtime are critical (a failed critical component fails the node);
//! everything else is informational. `SetComponentHealth` from kube9d (fault injection) changes
//! one entry, adding it if unknown, and the change sticks until set again.

use kube9_proto::pb;

/// Components whose failure fails the node.
pub const CRITICAL: [&str; 2] = ["kubelet", "container-runtime"];

/// The components of this node, in a stable order.
#[derive(Debug, Clone)]
pub struct Components {
    list: Vec<pb::Component>,
}

impl Default for Components {
    fn default() -> Self {
        let names = ["kubelet", "container-runtime", "kube-proxy", "network"];
        Components {
            list: names.into_iter().map(healthy).collect(),
        }
    }
}

fn healthy(name: &str) -> pb::Component {
    pb::Component {
        name: name.to_string(),
        healthy: true,
        message: String::new(),
        critical: CRITICAL.contains(&name),
    }
}

impl Components {
    /// Sets the health of `name`, adding the component if it is unknown. Returns true when
    /// anything changed.
    pub fn set(&mut self, name: &str, healthy_now: bool, message: &str) -> bool {
        let index = match self.list.iter().position(|c| c.name == name) {
            Some(index) => index,
            None => {
                self.list.push(healthy(name));
                self.list.len() - 1
            }
        };
        let component = &mut self.list[index];
        let changed = component.healthy != healthy_now || component.message != message;
        component.healthy = healthy_now;
        component.message = message.to_string();
        changed
    }

    /// What goes into a heartbeat.
    pub fn snapshot(&self) -> Vec<pb::Component> {
        self.list.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_component_starts_healthy_and_only_two_are_critical() {
        let components = Components::default().snapshot();
        let names: Vec<_> = components.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["kubelet", "container-runtime", "kube-proxy", "network"]
        );
        assert!(components.iter().all(|c| c.healthy));
        let critical: Vec<_> = components
            .iter()
            .filter(|c| c.critical)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(critical, CRITICAL);
    }

    #[test]
    fn setting_health_sticks_and_unknown_components_are_added_non_critical() {
        let mut components = Components::default();
        assert!(components.set("kubelet", false, "injected"));
        assert!(!components.set("kubelet", false, "injected"));
        assert!(components.set("dns", false, "down"));
        let snapshot = components.snapshot();
        let kubelet = snapshot.iter().find(|c| c.name == "kubelet").unwrap();
        assert!(!kubelet.healthy && kubelet.critical && kubelet.message == "injected");
        let dns = snapshot.iter().find(|c| c.name == "dns").unwrap();
        assert!(!dns.healthy && !dns.critical);
    }
}
