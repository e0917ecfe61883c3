//! One file per subcommand; [`run`] dispatches a parsed command line to it.

pub mod apply;
pub mod create;
pub mod delete;
pub mod describe;
pub mod exec;
pub mod get;
pub mod logs;
pub mod node;
pub mod version;

use crate::cli::{Cli, Command, Format};
use crate::client::Client;

/// The environment variable naming the namespace when `-n` does not.
pub const NAMESPACE_ENV: &str = "KUBE9_NAMESPACE";

/// What every command needs besides its own arguments.
#[derive(Debug, Clone)]
pub struct Context {
    pub server: String,
    pub output: Option<Format>,
    pub namespace: Namespace,
}

impl Context {
    /// Dials kube9d.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        Client::connect(&self.server).await
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
    /// From `-n` and `$KUBE9_NAMESPACE` (an empty value counts as not given).
    pub fn resolve(flag: Option<String>, env: Option<String>) -> Self {
        let flag = flag.filter(|n| !n.is_empty());
        let explicit = flag.is_some();
        let name = flag
            .or(env.filter(|n| !n.is_empty()))
            .unwrap_or_else(|| kube9_proto::namespace::DEFAULT.to_string());
        Namespace { name, explicit }
    }
}

impl Default for Namespace {
    fn default() -> Self {
        Namespace::resolve(None, None)
    }
}

/// Runs one command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Context {
        server: cli.server,
        output: cli.output,
        namespace: Namespace::resolve(cli.namespace, std::env::var(NAMESPACE_ENV).ok()),
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
    fn the_namespace_is_the_flags_else_the_environments_else_default() {
        let ns = |flag: Option<&str>, env: Option<&str>| {
            let ns = Namespace::resolve(flag.map(Into::into), env.map(Into::into));
            (ns.name, ns.explicit)
        };
        assert_eq!(ns(None, None), ("default".into(), false));
        assert_eq!(ns(None, Some("dev")), ("dev".into(), false));
        assert_eq!(ns(Some("prod"), Some("dev")), ("prod".into(), true));
        assert_eq!(ns(Some(""), Some("")), ("default".into(), false));
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
