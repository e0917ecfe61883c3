//! `kube9ctl config view|get-contexts|current-context|use-context|set-context`: the client
//! config file, as kubectl's `config` works on a kubeconfig. Only the file changes.

use kube9_proto::client::config::{Context as Ctx, NamedContext};
use kube9_proto::client::ClientConfig;

use crate::cli::{ConfigCommand, Format};
use crate::commands::Context;
use crate::output::{emit, listing::encode, table};

pub fn run(ctx: &Context, command: ConfigCommand) -> anyhow::Result<()> {
    let path = &ctx.conn.config_path;
    let load = || -> anyhow::Result<ClientConfig> {
        ctx.conn.load()?.ok_or_else(|| {
            anyhow::anyhow!(
                "no client config at {}: kube9d writes one when it first starts (or set KUBE9_CONFIG, or --config)",
                path.display()
            )
        })
    };
    match command {
        ConfigCommand::View { raw } => {
            let mut config = ctx.conn.load()?.unwrap_or_else(ClientConfig::empty);
            if !raw {
                redact(&mut config);
            }
            let format = match ctx.format() {
                Format::Json => Format::Json,
                _ => Format::Yaml,
            };
            emit(&encode(&config, format)?)
        }
        ConfigCommand::GetContexts => {
            let config = load()?;
            emit(&contexts_table(&config))
        }
        ConfigCommand::CurrentContext => {
            let config = load()?;
            if config.current_context.is_empty() {
                anyhow::bail!("current-context is not set");
            }
            emit(&format!("{}\n", config.current_context))
        }
        ConfigCommand::UseContext { name } => {
            let mut config = load()?;
            if !config.contexts.iter().any(|c| c.name == name) {
                anyhow::bail!(
                    "no context exists with the name: {name:?} in the client config {} (kube9ctl config get-contexts lists them)",
                    path.display()
                );
            }
            config.current_context = name.clone();
            config.save(path)?;
            emit(&format!("Switched to context \"{name}\".\n"))
        }
        ConfigCommand::SetContext {
            name,
            current: _,
            namespace,
            cluster,
            user,
        } => {
            let mut config = ctx.conn.load()?.unwrap_or_else(ClientConfig::empty);
            // clap lets through a name or --current, never both.
            let name = match name {
                Some(n) => n,
                None if !config.current_context.is_empty() => config.current_context.clone(),
                None => anyhow::bail!(
                    "the client config {} names no current context: name the context to set",
                    path.display()
                ),
            };
            if let Some(ns) = &namespace {
                if !ns.is_empty() {
                    kube9_proto::validate::validate_name("namespace", ns)
                        .map_err(|e| anyhow::anyhow!("invalid --namespace: {e}"))?;
                }
            }
            let verb = set_context(&mut config, &name, namespace, cluster, user);
            config.save(path)?;
            emit(&format!("Context \"{name}\" {verb}.\n"))
        }
    }
}

/// Hides what `view` would otherwise print to a screen: tokens and CA data, as kubectl does.
fn redact(config: &mut ClientConfig) {
    for u in &mut config.users {
        if u.user.token.is_some() {
            u.user.token = Some("REDACTED".into());
        }
    }
    for c in &mut config.clusters {
        if c.cluster.certificate_authority_data.is_some() {
            c.cluster.certificate_authority_data = Some("DATA+OMITTED".into());
        }
    }
}

fn contexts_table(config: &ClientConfig) -> String {
    let rows = config
        .contexts
        .iter()
        .map(|c| {
            vec![
                if c.name == config.current_context {
                    "*"
                } else {
                    ""
                }
                .to_string(),
                c.name.clone(),
                c.context.cluster.clone(),
                c.context.user.clone(),
                c.context.namespace.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table::render(
        &["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"],
        rows,
    )
}

/// Creates or changes the context `name`; "created" or "modified".
fn set_context(
    config: &mut ClientConfig,
    name: &str,
    namespace: Option<String>,
    cluster: Option<String>,
    user: Option<String>,
) -> &'static str {
    let (entry, verb) = match config.contexts.iter().position(|c| c.name == name) {
        Some(i) => (&mut config.contexts[i], "modified"),
        None => {
            config.contexts.push(NamedContext {
                name: name.into(),
                context: Ctx::default(),
            });
            (config.contexts.last_mut().expect("just pushed"), "created")
        }
    };
    if let Some(ns) = namespace {
        entry.context.namespace = Some(ns).filter(|n| !n.is_empty());
    }
    if let Some(c) = cluster {
        entry.context.cluster = c;
    }
    if let Some(u) = user {
        entry.context.user = u;
    }
    verb
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ClientConfig {
        let mut c = ClientConfig::empty();
        c.upsert("a", "https://h:1", Some(b"CA"), "abcdef.secret");
        c.upsert("b", "https://h:2", None, "t2");
        c
    }

    #[test]
    fn view_hides_tokens_and_ca_data() {
        let mut c = config();
        redact(&mut c);
        let text = encode(&c, Format::Yaml).unwrap();
        assert!(
            text.contains("REDACTED") && text.contains("DATA+OMITTED"),
            "{text}"
        );
        assert!(!text.contains("abcdef.secret"), "{text}");
    }

    #[test]
    fn contexts_list_marks_the_current_one() {
        let text = contexts_table(&config());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("CURRENT"), "{text}");
        assert!(
            lines[1].starts_with("*") && lines[1].contains("a-admin"),
            "{text}"
        );
        assert!(!lines[2].starts_with("*"), "{text}");
    }

    #[test]
    fn set_context_creates_or_modifies() {
        let mut c = config();
        assert_eq!(
            set_context(&mut c, "a", Some("team".into()), None, None),
            "modified"
        );
        assert_eq!(
            c.resolve(Some("a")).unwrap().namespace.as_deref(),
            Some("team")
        );
        assert_eq!(
            set_context(
                &mut c,
                "lab",
                None,
                Some("b".into()),
                Some("b-admin".into())
            ),
            "created"
        );
        assert_eq!(c.resolve(Some("lab")).unwrap().server, "https://h:2");
        set_context(&mut c, "a", Some(String::new()), None, None);
        assert_eq!(c.resolve(Some("a")).unwrap().namespace, None);
    }
}
