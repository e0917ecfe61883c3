//! One file per subcommand; [`run`] dispatches a parsed command line to it.

pub mod apply;
pub mod config;
pub mod create;
pub mod delete;
pub mod describe;
pub mod exec;
pub mod get;
pub mod logs;
pub mod node;
pub mod snapshot;
pub mod token;
pub mod version;

use std::path::PathBuf;

use anyhow::Context as _;
use kube9_proto::client::ClientConfig;

use crate::cli::{Cli, Command, Format};
use crate::client::{Client, Target};

/// The environment variable naming the namespace when `-n` does not.
pub const NAMESPACE_ENV: &str = "KUBE9_NAMESPACE";

/// What every command needs besides its own arguments.
#[derive(Debug, Clone)]
pub struct Context {
    pub conn: Connection,
    pub output: Option<Format>,
    pub namespace: Namespace,
}

/// Where kube9d is and how to prove who we are: the client config's context, with the
/// command line's and environment's overrides.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// `--server` / `KUBE9_SERVER`.
    pub server: Option<String>,
    /// `--token` / `KUBE9_TOKEN`.
    pub token: Option<String>,
    /// `--kubeconfig`, else `$KUBE9_CONFIG`, else `~/.kube9/config`.
    pub config_path: PathBuf,
    /// `--context` / `KUBE9_CONTEXT`.
    pub context: Option<String>,
    /// `--certificate-authority`.
    pub ca_file: Option<PathBuf>,
}

impl Connection {
    /// The client config file, if there is one.
    pub fn load(&self) -> anyhow::Result<Option<ClientConfig>> {
        Ok(ClientConfig::load(&self.config_path)?)
    }

    /// What to dial, with what.
    pub fn target(&self) -> anyhow::Result<Target> {
        let path = self.config_path.display();
        let resolved = match self.load()? {
            Some(config) => Some(
                config
                    .resolve(self.context.as_deref())
                    .map_err(|e| anyhow::anyhow!("the client config {path}: {e}"))?,
            ),
            None if self.context.is_some() || self.server.is_none() => anyhow::bail!(
                "no client config at {path}: kube9d writes one when it first starts (or set KUBE9_CONFIG, or give --server and --token)"
            ),
            None => None,
        };
        let url = match (&self.server, &resolved) {
            (Some(server), _) => kube9_proto::client::tls::server_url(server, true),
            (None, Some(r)) => r.server.clone(),
            (None, None) => unreachable!("refused above"),
        };
        let (ca_pem, ca_source) = match (&self.ca_file, &resolved) {
            (Some(file), _) => (
                Some(std::fs::read(file).with_context(|| {
                    format!("failed to read --certificate-authority {}", file.display())
                })?),
                format!("--certificate-authority {}", file.display()),
            ),
            (None, Some(r)) => (r.ca_pem.clone(), format!("the client config {path}")),
            (None, None) => (None, String::new()),
        };
        let token = self
            .token
            .clone()
            .filter(|t| !t.is_empty())
            .or_else(|| resolved.as_ref().and_then(|r| r.token.clone()));
        Ok(Target {
            url,
            ca_pem,
            ca_source,
            token,
        })
    }

    /// The current context's namespace, when the config names one (errors surface later,
    /// when connecting).
    fn namespace(&self) -> Option<String> {
        let config = self.load().ok()??;
        config.resolve(self.context.as_deref()).ok()?.namespace
    }
}

impl Context {
    /// Dials kube9d.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        Client::connect(&self.conn.target()?).await
    }

    /// The `-o` format, `table` when not given.
    pub fn format(&self) -> Format {
        self.output.unwrap_or(Format::Table)
    }

    /// The namespace commands work in: `-n`'s, else `$KUBE9_NAMESPACE`, else `default`.
    pub fn ns(&self) -> &str {
        &self.namespace.name
    }
}

/// The namespace of a command line, and whether `-n` named it.
///
/// As with kubectl's `--namespace` against the kubeconfig context's namespace, only `-n` is
/// *explicit*: a manifest naming another namespace is then refused, while the
/// `$KUBE9_NAMESPACE` default merely fills in objects that name none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub name: String,
    pub explicit: bool,
}

impl Namespace {
    /// From `-n`, `$KUBE9_NAMESPACE` and the context's namespace (an empty value counts as
    /// not given).
    pub fn resolve(flag: Option<String>, env: Option<String>, context: Option<String>) -> Self {
        let flag = flag.filter(|n| !n.is_empty());
        let explicit = flag.is_some();
        let name = flag
            .or(env.filter(|n| !n.is_empty()))
            .or(context.filter(|n| !n.is_empty()))
            .unwrap_or_else(|| kube9_proto::namespace::DEFAULT.to_string());
        Namespace { name, explicit }
    }
}

impl Default for Namespace {
    fn default() -> Self {
        Namespace::resolve(None, None, None)
    }
}

/// Runs one command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let conn = Connection {
        server: cli.server.filter(|s| !s.is_empty()),
        token: cli.token,
        config_path: cli
            .kubeconfig
            .unwrap_or_else(kube9_proto::client::config::default_path),
        context: cli.context.filter(|c| !c.is_empty()),
        ca_file: cli.certificate_authority,
    };
    let context_ns = conn.namespace();
    let ctx = Context {
        conn,
        output: cli.output,
        namespace: Namespace::resolve(cli.namespace, std::env::var(NAMESPACE_ENV).ok(), context_ns),
    };
    match cli.command {
        Command::Apply(args) => apply::run(&ctx, args).await,
        Command::Create(args) => create::run(&ctx, args).await,
        Command::Get(args) => get::run(&ctx, args).await,
        Command::Describe(args) => describe::run(&ctx, args).await,
        Command::Delete(args) => delete::run(&ctx, args).await,
        Command::Logs(args) => logs::run(&ctx, args).await,
        Command::Exec(args) => exec::run(&ctx, args).await,
        Command::Node(args) => node::run(&ctx, args).await,
        Command::Token(args) => token::run(&ctx, args).await,
        Command::Config(args) => config::run(&ctx, args),
        Command::Snapshot(args) => snapshot::run(&ctx, args).await,
        Command::Version => version::run(&ctx),
    }
}

/// The name given either as `KIND/NAME` or as a separate argument, not both.
pub fn object_name(inline: Option<&str>, separate: Option<&str>) -> anyhow::Result<Option<String>> {
    match (inline, separate) {
        (Some(a), Some(b)) => anyhow::bail!(
            "there is no need to give the name twice: {a:?} and {b:?} (use KIND NAME or KIND/NAME)"
        ),
        (a, b) => Ok(a.or(b).map(str::to_string)),
    }
}

/// The annotation naming the container `logs` and `exec` use when none is given.
pub const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";

/// The container `logs`/`exec` mean: `given`, or, in a pod with more than one container, its
/// default one (as kubectl picks it, saying so on stderr); empty lets kube9d pick the only one.
pub async fn container_for(
    client: &mut Client,
    namespace: &str,
    pod: &str,
    given: Option<String>,
) -> anyhow::Result<String> {
    if let Some(given) = given.filter(|c| !c.is_empty()) {
        return Ok(given);
    }
    let request = kube9_proto::pb::GetPodRequest {
        name: pod.into(),
        namespace: namespace.into(),
    };
    let response = client.client.get_pod(request).await;
    let pod = client.check(response)?;
    let (chosen, notice) = default_container(&pod);
    if let Some(notice) = notice {
        eprintln!("{notice}");
    }
    Ok(chosen)
}

/// kubectl's choice of a pod's default container: the one its
/// `kubectl.kubernetes.io/default-container` annotation names, else the first; with the
/// notice kubectl prints when the pod has more than one.
pub fn default_container(pod: &kube9_proto::pb::Pod) -> (String, Option<String>) {
    if pod.containers.len() <= 1 {
        return (String::new(), None);
    }
    let annotated = pod
        .annotations
        .get(DEFAULT_CONTAINER_ANNOTATION)
        .filter(|name| pod.containers.iter().any(|c| &c.name == *name));
    let chosen = annotated
        .cloned()
        .unwrap_or_else(|| pod.containers[0].name.clone());
    if annotated.is_some() {
        return (chosen, None);
    }
    let all: Vec<String> = (pod.containers.iter().map(|c| c.name.clone()))
        .chain(
            pod.init_containers
                .iter()
                .map(|c| format!("{} (init)", c.name)),
        )
        .collect();
    let notice = format!(
        "Defaulted container \"{chosen}\" out of: {}",
        all.join(", ")
    );
    (chosen, Some(notice))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube9_proto::pb;

    fn pod(names: &[&str]) -> pb::Pod {
        pb::Pod {
            containers: names
                .iter()
                .map(|n| pb::Container {
                    name: n.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_namespace_is_the_flags_else_the_environments_else_the_contexts_else_default() {
        let ns = |flag: Option<&str>, env: Option<&str>, ctx: Option<&str>| {
            let ns = Namespace::resolve(
                flag.map(Into::into),
                env.map(Into::into),
                ctx.map(Into::into),
            );
            (ns.name, ns.explicit)
        };
        assert_eq!(ns(None, None, None), ("default".into(), false));
        assert_eq!(ns(None, Some("dev"), Some("team")), ("dev".into(), false));
        assert_eq!(ns(Some("prod"), Some("dev"), None), ("prod".into(), true));
        assert_eq!(ns(None, None, Some("team")), ("team".into(), false));
        assert_eq!(ns(Some(""), Some(""), Some("")), ("default".into(), false));
    }

    fn conn(dir: &std::path::Path) -> Connection {
        Connection {
            config_path: dir.join("config"),
            ..Default::default()
        }
    }

    #[test]
    fn the_target_is_the_contexts_with_the_overrides() {
        let dir = std::env::temp_dir().join(format!("kube9ctl-conn-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let e = conn(&dir).target().unwrap_err().to_string();
        assert!(
            e.contains("no client config at") && e.contains("KUBE9_CONFIG"),
            "{e}"
        );
        let mut config = ClientConfig::empty();
        config.upsert("a", "https://127.0.0.1:1", Some(b"CA"), "tok-a");
        config.upsert("b", "https://127.0.0.1:2", None, "tok-b");
        config.save(&dir.join("config")).unwrap();
        let t = conn(&dir).target().unwrap();
        assert_eq!(
            (t.url.as_str(), t.token.as_deref()),
            ("https://127.0.0.1:1", Some("tok-a"))
        );
        assert_eq!(t.ca_pem.as_deref(), Some(&b"CA"[..]));
        let t = Connection {
            context: Some("b".into()),
            ..conn(&dir)
        }
        .target()
        .unwrap();
        assert_eq!(t.url, "https://127.0.0.1:2");
        let t = Connection {
            server: Some("10.0.0.9:9".into()),
            token: Some("mine".into()),
            ..conn(&dir)
        }
        .target()
        .unwrap();
        assert_eq!(
            (t.url.as_str(), t.token.as_deref()),
            ("https://10.0.0.9:9", Some("mine"))
        );
        assert_eq!(
            t.ca_pem.as_deref(),
            Some(&b"CA"[..]),
            "the context's CA still vouches"
        );
        let e = Connection {
            context: Some("nope".into()),
            ..conn(&dir)
        }
        .target()
        .unwrap_err()
        .to_string();
        assert!(e.contains("no context \"nope\""), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_default_container_is_the_annotated_one_else_the_first_with_a_notice() {
        assert_eq!(default_container(&pod(&["app"])), (String::new(), None));
        let mut two = pod(&["app", "sidecar"]);
        two.init_containers = vec![pb::Container {
            name: "setup".into(),
            ..Default::default()
        }];
        assert_eq!(
            default_container(&two),
            (
                "app".into(),
                Some("Defaulted container \"app\" out of: app, sidecar, setup (init)".into())
            )
        );
        two.annotations
            .insert(DEFAULT_CONTAINER_ANNOTATION.into(), "sidecar".into());
        assert_eq!(default_container(&two), ("sidecar".into(), None));
        two.annotations
            .insert(DEFAULT_CONTAINER_ANNOTATION.into(), "nope".into());
        assert_eq!(default_container(&two).0, "app");
    }
}
