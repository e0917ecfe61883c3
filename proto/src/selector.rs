//! Label selectors, as in `kubectl get pods -l 'app=web,tier notin (db,cache),!canary'`.
//!
//! Grammar: requirements separated by commas (commas inside parentheses separate values),
//! each one of `key=value`, `key==value`, `key!=value`, `key in (v1,v2)`, `key notin (v1,v2)`,
//! `key` (the label exists) or `!key` (it does not). As in Kubernetes, `key!=value` and
//! `key notin (...)` also match objects without the label, and the empty selector matches
//! everything.

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
    /// A key or value that is not a valid label key or value, or a malformed set.
    #[error("invalid label selector {selector:?}: {message}")]
    Invalid { selector: String, message: String },
    /// Operators Kubernetes has for other objects only (`<`, `>`), or `a=b=c`.
    #[error(
        "invalid label selector {selector:?}: unsupported requirement {requirement:?} \
         (supported: key=value, key==value, key!=value, key in (a,b), key notin (a,b), key, !key)"
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
    /// `key in (a,b)`: the label is present with one of these values.
    In(String, Vec<String>),
    /// `key notin (a,b)`: the label is absent or has none of these values.
    NotIn(String, Vec<String>),
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
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
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
            Requirement::In(k, vs) => write!(f, "{k} in ({})", vs.join(",")),
            Requirement::NotIn(k, vs) => write!(f, "{k} notin ({})", vs.join(",")),
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
    /// The canonical form: `app=web,tier!=db,env in (a,b)`.
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

/// Parses `app=web,tier!=db,env in (a,b),canary,!legacy`. Blank input is the empty selector.
pub fn parse(s: &str) -> Result<Selector, SelectorError> {
    if s.trim().is_empty() {
        return Ok(Selector::everything());
    }
    let requirements = split_requirements(s)?
        .into_iter()
        .map(|part| parse_requirement(s, part.trim()))
        .collect::<Result<_, _>>()?;
    Ok(Selector { requirements })
}

/// Splits at the commas outside parentheses; refuses unbalanced or nested parentheses.
fn split_requirements(s: &str) -> Result<Vec<&str>, SelectorError> {
    let invalid = |message: &str| SelectorError::Invalid {
        selector: s.into(),
        message: message.into(),
    };
    let mut parts = Vec::new();
    let (mut open, mut start) = (false, 0);
    for (i, ch) in s.char_indices() {
        match ch {
            '(' if open => return Err(invalid("nested parentheses")),
            '(' => open = true,
            ')' if !open => return Err(invalid("')' without a matching '('")),
            ')' => open = false,
            ',' if !open => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if open {
        return Err(invalid("'(' without a matching ')'"));
    }
    parts.push(&s[start..]);
    Ok(parts)
}

fn parse_requirement(selector: &str, part: &str) -> Result<Requirement, SelectorError> {
    let unsupported = || SelectorError::Unsupported {
        selector: selector.into(),
        requirement: part.into(),
    };
    let invalid = |message: String| SelectorError::Invalid {
        selector: selector.into(),
        message,
    };
    if part.is_empty() {
        return Err(SelectorError::EmptyRequirement {
            selector: selector.into(),
        });
    }
    if part.contains(['<', '>']) {
        return Err(unsupported());
    }
    let requirement = if let Some(open) = part.find('(') {
        parse_set(part, open).map_err(invalid)?
    } else if let Some((k, v)) = part.split_once("!=") {
        Requirement::NotEquals(k.trim().into(), v.trim().into())
    } else if let Some((k, v)) = part.split_once("==") {
        Requirement::Equals(k.trim().into(), v.trim().into())
    } else if let Some((k, v)) = part.split_once('=') {
        Requirement::Equals(k.trim().into(), v.trim().into())
    } else if let Some(k) = part.strip_prefix('!') {
        Requirement::NotExists(k.trim().into())
    } else {
        let words: Vec<&str> = part.split_whitespace().collect();
        match words.as_slice() {
            [key, op, ..] if matches!(*op, "in" | "notin") => {
                return Err(invalid(format!(
                    "the values of {key:?} {op} must be in parentheses: {key} {op} (a,b)"
                )))
            }
            [key] => Requirement::Exists(key.to_string()),
            _ => {
                return Err(invalid(format!(
                    "{part:?} is not a requirement (expected key=value, key!=value, \
                     key in (a,b), key notin (a,b), key or !key)"
                )))
            }
        }
    };
    let (key, values): (&String, Vec<&String>) = match &requirement {
        Requirement::Equals(k, v) | Requirement::NotEquals(k, v) => (k, vec![v]),
        Requirement::In(k, vs) | Requirement::NotIn(k, vs) => (k, vs.iter().collect()),
        Requirement::Exists(k) | Requirement::NotExists(k) => (k, vec![]),
    };
    if key.is_empty() {
        return Err(invalid(format!("missing label key in {part:?}")));
    }
    if values.iter().any(|v| v.contains('=')) || key.contains(['!', '=']) {
        return Err(unsupported());
    }
    check_label_key(key).map_err(invalid)?;
    for value in values {
        check_label_value(value).map_err(invalid)?;
    }
    Ok(requirement)
}

/// `key in (a,b)` or `key notin (a,b)`, with `(` at byte `open`.
fn parse_set(part: &str, open: usize) -> Result<Requirement, String> {
    let Some(inner) = part[open + 1..].strip_suffix(')') else {
        return Err(format!("nothing may follow the closing ')' in {part:?}"));
    };
    let words: Vec<&str> = part[..open].split_whitespace().collect();
    let (key, op) = match words.as_slice() {
        [key, op] if matches!(*op, "in" | "notin") => (key.to_string(), *op),
        _ => {
            return Err(format!(
                "{part:?}: a set of values needs the form key in (a,b) or key notin (a,b)"
            ))
        }
    };
    if inner.trim().is_empty() {
        return Err(format!("{part:?}: the set of values for {op:?} is empty"));
    }
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    if let Some(v) = values.iter().find(|v| v.contains(char::is_whitespace)) {
        return Err(format!("{part:?}: value {v:?} contains a space"));
    }
    Ok(if op == "in" {
        Requirement::In(key, values)
    } else {
        Requirement::NotIn(key, values)
    })
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
            parse("app<3"),
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

    #[test]
    fn set_based_requirements_parse_and_match() {
        let s = parse("env in (prod, staging),tier notin (db),app,!legacy").unwrap();
        assert_eq!(
            s.requirements(),
            &[
                Requirement::In("env".into(), vec!["prod".into(), "staging".into()]),
                Requirement::NotIn("tier".into(), vec!["db".into()]),
                Requirement::Exists("app".into()),
                Requirement::NotExists("legacy".into()),
            ]
        );
        assert_eq!(
            s.to_string(),
            "env in (prod,staging),tier notin (db),app,!legacy"
        );
        // The canonical form parses back to the same selector (it is what goes on the wire).
        assert_eq!(parse(&s.to_string()).unwrap(), s);
        let prod = labels(&[("env", "prod"), ("app", "web")]);
        let dev = labels(&[("env", "dev"), ("app", "web")]);
        let db = labels(&[("env", "prod"), ("app", "x"), ("tier", "db")]);
        assert!(s.matches(&prod));
        assert!(!s.matches(&dev));
        assert!(!s.matches(&db));
        // notin matches objects without the label; in does not.
        let notin = parse("tier notin (db,cache)").unwrap();
        assert!(notin.matches(&labels(&[])) && notin.matches(&labels(&[("tier", "web")])));
        assert!(!notin.matches(&labels(&[("tier", "cache")])));
        let r#in = parse("tier in (db)").unwrap();
        assert!(!r#in.matches(&labels(&[])));
        // Spacing is free around everything, and an empty value may be in the set.
        let loose = parse("  env   in(prod ,  dev ) , x in (a,)").unwrap();
        assert_eq!(loose.to_string(), "env in (prod,dev),x in (a,)");
        assert!(loose.matches(&labels(&[("env", "dev"), ("x", "")])));
    }

    #[test]
    fn malformed_sets_are_refused_precisely() {
        let err = |s: &str| parse(s).unwrap_err().to_string();
        assert_eq!(
            err("env in (a,b"),
            "invalid label selector \"env in (a,b\": '(' without a matching ')'"
        );
        assert_eq!(
            err("env in a,b)"),
            "invalid label selector \"env in a,b)\": ')' without a matching '('"
        );
        assert!(err("env in ((a))").contains("nested parentheses"));
        assert!(err("env in ()").contains("the set of values for \"in\" is empty"));
        assert!(err("env in (a) x").contains("nothing may follow"));
        assert!(err("env within (a)").contains("key in (a,b) or key notin (a,b)"));
        assert!(err("(a)").contains("key in (a,b) or key notin (a,b)"));
        assert!(err("env in prod").contains("must be in parentheses"));
        assert!(err("env notin prod").contains("must be in parentheses"));
        assert!(err("env prod").contains("is not a requirement"));
        assert!(err("env in (a b)").contains("contains a space"));
        assert!(err("env in (-bad)").starts_with("invalid label selector"));
        assert!(matches!(
            parse("env in (a=b)"),
            Err(SelectorError::Unsupported { .. })
        ));
        assert!(err("a$b in (x)").starts_with("invalid label selector"));
        assert_eq!(
            err("env in (a),"),
            "invalid label selector \"env in (a),\": empty requirement"
        );
        assert!(err("!env=x").contains("unsupported requirement"));
    }
}
