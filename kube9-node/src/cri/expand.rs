//! Kubernetes' `$(VAR)` expansion in a container's `command`, `args` and `env` values.
//!
//! The rules are those of Kubernetes' `third_party/forked/golang/expansion`:
//! - `$(NAME)` becomes the value of `NAME` when it is known, and stays as written otherwise;
//! - `$$` becomes `$`, so `$$(NAME)` is the literal text `$(NAME)`;
//! - any other `$` (a lone one, `$NAME`, an unclosed `$(`) is kept as it is.
//!
//! An env value sees only the variables defined before it in the list (later ones are not
//! known yet); `command` and `args` see the whole list. The image's own `ENV` is never
//! consulted: the kubelet does not know it either.

use std::collections::HashMap;

/// Expands every `$(NAME)` in `input` with `lookup` (see the module docs).
pub fn expand<'a>(input: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if after.is_empty() {
            // A trailing `$` is kept.
            out.push('$');
            rest = after;
        } else if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(reference) = after.strip_prefix('(') {
            match reference.find(')') {
                Some(close) => {
                    let name = &reference[..close];
                    match lookup(name) {
                        Some(value) => out.push_str(value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &reference[close + 1..];
                }
                None => {
                    // Unclosed: keep `$(` and go on after it.
                    out.push_str("$(");
                    rest = reference;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Expands a container's env values in order: each sees the ones defined before it. A name
/// defined twice keeps both entries (the engine lets the later one win, as Kubernetes does)
/// and later references see the later value.
pub fn expand_env(env: &[(String, String)]) -> Vec<(String, String)> {
    let mut known: HashMap<&str, String> = HashMap::new();
    let mut out = Vec::with_capacity(env.len());
    for (name, value) in env {
        let expanded = expand(value, |n| known.get(n).map(String::as_str));
        known.insert(name, expanded.clone());
        out.push((name.clone(), expanded));
    }
    out
}

/// Expands `command` or `args` against the (already expanded) env.
pub fn expand_all(words: &[String], env: &[(String, String)]) -> Vec<String> {
    let known: HashMap<&str, &str> = env
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    words
        .iter()
        .map(|word| expand(word, |n| known.get(n).copied()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&'static str, &'static str)]) -> impl Fn(&str) -> Option<&'static str> {
        let vars: HashMap<&str, &str> = vars.iter().copied().collect();
        move |name| vars.get(name).copied()
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_known_reference_is_replaced_by_its_value() {
        let lookup = with(&[("GREETING", "hello"), ("WHO", "world")]);
        assert_eq!(expand("$(GREETING), $(WHO)!", &lookup), "hello, world!");
        assert_eq!(expand("$(GREETING)$(WHO)", &lookup), "helloworld");
    }

    #[test]
    fn an_unknown_reference_is_left_as_written() {
        assert_eq!(expand("x$(NOPE)y", with(&[])), "x$(NOPE)y");
        assert_eq!(expand("$()", with(&[])), "$()");
    }

    #[test]
    fn a_doubled_dollar_escapes_the_reference() {
        let lookup = with(&[("VAR", "value")]);
        assert_eq!(expand("$$(VAR)", &lookup), "$(VAR)");
        assert_eq!(expand("$$$(VAR)", &lookup), "$value");
        assert_eq!(expand("$$$$", &lookup), "$$");
    }

    #[test]
    fn other_dollars_are_kept() {
        let lookup = with(&[("HOME", "/root")]);
        assert_eq!(expand("$HOME", &lookup), "$HOME");
        assert_eq!(expand("cost: 5$", &lookup), "cost: 5$");
        assert_eq!(expand("$(HOME", &lookup), "$(HOME");
        assert_eq!(expand("$($(HOME)", &lookup), "$($(HOME)");
        assert_eq!(expand("a $ b", &lookup), "a $ b");
    }

    #[test]
    fn unicode_around_references_survives() {
        let lookup = with(&[("X", "é")]);
        assert_eq!(expand("ü$(X)ß", &lookup), "üéß");
    }

    #[test]
    fn an_env_value_sees_only_the_variables_defined_before_it() {
        let out = expand_env(&env(&[
            ("A", "a"),
            ("B", "$(A)-b"),
            ("C", "$(D)"),
            ("D", "d"),
        ]));
        assert_eq!(
            out,
            env(&[("A", "a"), ("B", "a-b"), ("C", "$(D)"), ("D", "d")])
        );
    }

    #[test]
    fn a_redefined_variable_is_seen_with_its_latest_value() {
        let out = expand_env(&env(&[("A", "1"), ("A", "2"), ("B", "$(A)")]));
        assert_eq!(out[2], ("B".to_string(), "2".to_string()));
    }

    #[test]
    fn command_and_args_see_the_whole_expanded_env() {
        let env = expand_env(&env(&[("NAME", "kube9"), ("GREETING", "hi $(NAME)")]));
        let words = vec![
            "echo".to_string(),
            "$(GREETING)".to_string(),
            "$$(NAME)".to_string(),
            "$(MISSING)".to_string(),
        ];
        assert_eq!(
            expand_all(&words, &env),
            ["echo", "hi kube9", "$(NAME)", "$(MISSING)"]
        );
    }
}
