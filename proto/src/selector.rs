//! Equality-based label selectors, as in `kubectl get pods -l app=web,tier!=db`.
//!
//! Grammar: requirements separated by commas, each one of `key=value`, `key==value`,
//! `key!=value`, `key` (the label exists) or `!key` (it does not). As in Kubernetes, `key!=value`
//! also matches objects without the label, and the empty selector matches everything.

use crate::validate::{check_label_key, check_label_value};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// Why a selector string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// `a=1,,b=2` or a trailing comma.
    #[error("invalid label selector {selector:?}: empty requirement")]
    EmptyRequirement { selector: String },
    /// A key or value that is not a valid label key or value.
    #[error("invalid label selector {selector:?}: {message}")]
    Invalid { selector: String, message: String },
    /// Set-based syntax (`in`, `notin`, parentheses) or other operators.
    #[error(
        "invalid label selector {selector:?}: unsupported requirement {requirement:?} \
         (supported: key=value, key==value, key!=value, key, !key)"
    )]
    Unsupported {
        selector: String,
        requirement: String,
    },
}

/// One condition on an object's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` or `key==value`.
    Equals(String, String),
    /// `key!=value`: the label is absent or has another value.
    NotEquals(String, String),
    /// `key`: the label is present.
    Exists(String),
    /// `!key`: the label is absent.
    NotExists(String),
}

impl Requirement {
    /// Whether `labels` satisfy this requirement.
    pub fn matches(&self, labels: &HashMap<String, String>) -> bool {
        match self {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::Equals(k, v) => write!(f, "{k}={v}"),
            Requirement::NotEquals(k, v) => write!(f, "{k}!={v}"),
            Requirement::Exists(k) => write!(f, "{k}"),
            Requirement::NotExists(k) => write!(f, "!{k}"),
        }
    }
}

/// A conjunction of requirements; all must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// The selector that matches every object.
    pub fn everything() -> Self {
        Selector::default()
    }

    /// Whether this selector has no requirements (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, in the order written.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &HashMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl fmt::Display for Selector {
    /// The canonical form: `app=web,tier!=db`.
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

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// Parses `app=web,tier!=db,env,!canary`. Blank input is the empty selector.
pub fn parse(s: &str) -> Result<Selector, SelectorError> {
    if s.trim().is_empty() {
        return Ok(Selector::everything());
    }
    let requirements = s
        .split(',')
        .map(|part| parse_requirement(s, part.trim()))
        .collect::<Result<_, _>>()?;
    Ok(Selector { requirements })
}

fn parse_requirement(selector: &str, part: &str) -> Result<Requirement, SelectorError> {
    let unsupported = || SelectorError::Unsupported {
        selector: selector.into(),
        requirement: part.into(),
    };
    if part.is_empty() {
        return Err(SelectorError::EmptyRequirement {
            selector: selector.into(),
        });
    }
    if part.contains(['(', ')', '<', '>']) {
        return Err(unsupported());
    }
    let requirement = if let Some((k, v)) = part.split_once("!=") {
        Requirement::NotEquals(k.trim().into(), v.trim().into())
    } else if let Some((k, v)) = part.split_once("==") {
        Requirement::Equals(k.trim().into(), v.trim().into())
    } else if let Some((k, v)) = part.split_once('=') {
        Requirement::Equals(k.trim().into(), v.trim().into())
    } else if let Some(k) = part.strip_prefix('!') {
        Requirement::NotExists(k.trim().into())
    } else {
        Requirement::Exists(part.into())
    };
    let (key, value) = match &requirement {
        Requirement::Equals(k, v) | Requirement::NotEquals(k, v) => (k, Some(v)),
        Requirement::Exists(k) | Requirement::NotExists(k) => (k, None),
    };
    let invalid = |message| SelectorError::Invalid {
        selector: selector.into(),
        message,
    };
    if key.is_empty() {
        return Err(invalid(format!("missing label key in {part:?}")));
    }
    if value.is_some_and(|v| v.contains('=')) || key.contains('!') {
        return Err(unsupported());
    }
    check_label_key(key).map_err(invalid)?;
    if let Some(value) = value {
        check_label_value(value).map_err(invalid)?;
    }
    Ok(requirement)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_every_operator() {
        let s = parse("app=web, tier==front,env!=prod,canary,!legacy").unwrap();
        assert_eq!(
            s.requirements(),
            &[
                Requirement::Equals("app".into(), "web".into()),
                Requirement::Equals("tier".into(), "front".into()),
                Requirement::NotEquals("env".into(), "prod".into()),
                Requirement::Exists("canary".into()),
                Requirement::NotExists("legacy".into()),
            ]
        );
        assert_eq!(s.to_string(), "app=web,tier=front,env!=prod,canary,!legacy");
    }

    #[test]
    fn empty_selector_matches_everything() {
        for s in ["", "  "] {
            let s = parse(s).unwrap();
            assert!(s.is_empty());
            assert!(s.matches(&labels(&[])));
            assert!(s.matches(&labels(&[("app", "web")])));
        }
    }

    #[test]
    fn matching_follows_kubernetes_semantics() {
        let web = labels(&[("app", "web"), ("tier", "front")]);
        let db = labels(&[("app", "db")]);
        let bare = labels(&[]);
        let s = parse("app=web").unwrap();
        assert!(s.matches(&web) && !s.matches(&db) && !s.matches(&bare));
        let s = parse("tier!=front").unwrap();
        assert!(!s.matches(&web) && s.matches(&db) && s.matches(&bare));
        let s = parse("tier").unwrap();
        assert!(s.matches(&web) && !s.matches(&db));
        let s = parse("!tier").unwrap();
        assert!(!s.matches(&web) && s.matches(&db));
        let s = parse("app=web,tier=back").unwrap();
        assert!(!s.matches(&web));
        let s = parse("app=").unwrap();
        assert!(!s.matches(&web) && s.matches(&labels(&[("app", "")])));
    }

    #[test]
    fn bad_selectors_are_refused_with_a_reason() {
        assert_eq!(
            parse("app=web,").unwrap_err().to_string(),
            "invalid label selector \"app=web,\": empty requirement"
        );
        assert!(matches!(
            parse("app in (web)"),
            Err(SelectorError::Unsupported { .. })
        ));
        assert!(matches!(
            parse("app=a=b"),
            Err(SelectorError::Unsupported { .. })
        ));
        assert!(matches!(parse("=web"), Err(SelectorError::Invalid { .. })));
        assert!(matches!(
            parse("app=has space"),
            Err(SelectorError::Invalid { .. })
        ));
        assert!(parse("app = web")
            .unwrap()
            .matches(&labels(&[("app", "web")])));
        assert!(matches!(parse("a$b=c"), Err(SelectorError::Invalid { .. })));
        assert!(matches!(
            parse("app=-x"),
            Err(SelectorError::Invalid { .. })
        ));
        assert!("app=web".parse::<Selector>().is_ok());
    }
}
