//! Field selectors, as in `kubectl get pods --field-selector status.phase=Running,spec.nodeName!=n1`.
//!
//! Grammar: requirements separated by commas, each `field=value`, `field==value` or
//! `field!=value`. Which fields a kind supports is the kind's business ([`POD_FIELDS`] for
//! pods); an unknown one is refused with Kubernetes' words, `field label not supported: FIELD`.
//! The empty selector matches everything.

use crate::pb;
use std::fmt;

/// The fields pods can be selected by.
pub const POD_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "status.phase",
];

/// The fields every other kind can be selected by (kube9ctl filters them itself).
pub const NAME_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// Why a field selector was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid field selector {selector:?}: {message}")]
pub struct FieldSelectorError {
    pub selector: String,
    pub message: String,
}

/// One condition on a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    /// `!=` rather than `=`/`==`.
    pub negated: bool,
    pub value: String,
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = if self.negated { "!=" } else { "=" };
        write!(f, "{}{op}{}", self.field, self.value)
    }
}

/// A conjunction of field requirements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Whether this selector has no requirements (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// Whether every requirement holds, `value` giving each field's value.
    pub fn matches(&self, value: impl Fn(&str) -> String) -> bool {
        self.requirements
            .iter()
            .all(|r| (value(&r.field) == r.value) != r.negated)
    }

    /// Whether `pod` satisfies every requirement (the fields are in [`POD_FIELDS`]).
    pub fn matches_pod(&self, pod: &pb::Pod) -> bool {
        self.matches(|field| pod_field(pod, field))
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// A pod's value of one of [`POD_FIELDS`] (empty for any other).
pub fn pod_field(pod: &pb::Pod, field: &str) -> String {
    match field {
        "metadata.name" => pod.name.clone(),
        "metadata.namespace" => pod.ns().to_string(),
        "spec.nodeName" => pod.node.clone(),
        "status.phase" => pod.phase().label().to_string(),
        _ => String::new(),
    }
}

/// Parses `status.phase=Running,spec.nodeName!=n1`, allowing only `fields`.
pub fn parse(s: &str, fields: &[&str]) -> Result<FieldSelector, FieldSelectorError> {
    let invalid = |message: String| FieldSelectorError {
        selector: s.into(),
        message,
    };
    if s.trim().is_empty() {
        return Ok(FieldSelector::default());
    }
    let mut requirements = Vec::new();
    for part in s.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(invalid("empty requirement".into()));
        }
        let (field, negated, value) = if let Some((f, v)) = part.split_once("!=") {
            (f, true, v)
        } else if let Some((f, v)) = part.split_once("==") {
            (f, false, v)
        } else if let Some((f, v)) = part.split_once('=') {
            (f, false, v)
        } else {
            return Err(invalid(format!(
                "{part:?} is not a requirement (expected field=value, field==value or field!=value)"
            )));
        };
        let (field, value) = (field.trim(), value.trim());
        if field.is_empty() {
            return Err(invalid(format!("missing field name in {part:?}")));
        }
        if value.contains(['=', '!']) {
            return Err(invalid(format!(
                "{part:?} has more than one operator (expected field=value, field==value or field!=value)"
            )));
        }
        if !fields.contains(&field) {
            return Err(invalid(format!(
                "field label not supported: {field} (supported: {})",
                fields.join(", ")
            )));
        }
        requirements.push(FieldRequirement {
            field: field.to_string(),
            negated,
            value: value.to_string(),
        });
    }
    Ok(FieldSelector { requirements })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: &str, phase: pb::PodPhase) -> pb::Pod {
        let mut p = pb::Pod {
            name: name.into(),
            namespace: "prod".into(),
            node: node.into(),
            ..Default::default()
        };
        p.set_phase(phase);
        p
    }

    #[test]
    fn pod_fields_parse_and_match() {
        let s = parse(
            "status.phase=Running, spec.nodeName!=n2,metadata.namespace==prod",
            POD_FIELDS,
        )
        .unwrap();
        assert_eq!(
            s.to_string(),
            "status.phase=Running,spec.nodeName!=n2,metadata.namespace=prod"
        );
        assert_eq!(parse(&s.to_string(), POD_FIELDS).unwrap(), s);
        assert!(s.matches_pod(&pod("a", "n1", pb::PodPhase::Running)));
        assert!(!s.matches_pod(&pod("a", "n2", pb::PodPhase::Running)));
        assert!(!s.matches_pod(&pod("a", "n1", pb::PodPhase::Pending)));
        let unbound = parse("spec.nodeName=", POD_FIELDS).unwrap();
        assert!(unbound.matches_pod(&pod("a", "", pb::PodPhase::Pending)));
        assert!(!unbound.matches_pod(&pod("a", "n1", pb::PodPhase::Running)));
        let name = parse("metadata.name=a", POD_FIELDS).unwrap();
        assert!(name.matches_pod(&pod("a", "", pb::PodPhase::Pending)));
        assert!(!name.matches_pod(&pod("b", "", pb::PodPhase::Pending)));
        assert!(parse(" ", POD_FIELDS).unwrap().is_empty());
    }

    #[test]
    fn bad_field_selectors_are_refused_with_kubernetes_words() {
        let err = |s: &str| parse(s, POD_FIELDS).unwrap_err().to_string();
        assert_eq!(
            err("spec.foo=bar"),
            "invalid field selector \"spec.foo=bar\": field label not supported: spec.foo \
             (supported: metadata.name, metadata.namespace, spec.nodeName, status.phase)"
        );
        assert!(parse("spec.nodeName=n1", NAME_FIELDS)
            .unwrap_err()
            .to_string()
            .contains("field label not supported: spec.nodeName"));
        assert!(err("status.phase=Running,").contains("empty requirement"));
        assert!(err("status.phase").contains("is not a requirement"));
        assert!(err("=Running").contains("missing field name"));
        assert!(err("status.phase=a=b").contains("more than one operator"));
        assert!(err("status.phase in (Running)").contains("is not a requirement"));
    }
}
