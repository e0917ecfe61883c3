//! One file per subcommand; [`run`] dispatches a parsed command line to it.

pub mod apply;
pub mod bulk_delete;
pub mod config;
pub mod create;
pub mod dashboard;
pub mod delete;
pub mod describe;
pub mod drain;
pub mod exec;
pub mod get;
pub mod label;
pub mod logs;
pub mod node;
pub mod resources;
pub mod select;
pub mod snapshot;
pub mod token;
pub mod top;
pub mod version;
pub mod wait;
pub mod watch;

use std::path::PathBuf;

use anyhow::Context as _;
use kube9_proto::client::ClientConfig;

use crate::cli::{Cli, Command, Format, Output};
use crate::client::{Client, Target};
use kube9_proto::client::config::Resolved;

/// The environment variable naming the namespace when `-n` does not.
pub const NAMESPACE_ENV: &str = "KUBE9_NAMESPACE";
/// The environment variable standing in for `--server`.
pub const SERVER_ENV: &str = "KUBE9_SERVER";
/// The environment variable standing in for `--token`.
pub const TOKEN_ENV: &str = "KUBE9_TOKEN";
/// The environment variable standing in for `--context`.
pub const CONTEXT_ENV: &str = "KUBE9_CONTEXT";

/// What every command needs besides its own arguments.
#[derive(Debug, Clone)]
pub struct Context {
    pub conn: Connection,
    pub output: Option<Output>,
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
    /// `--config`, else `$KUBE9_CONFIG`, else `~/.kube9/config`.
    pub config_path: PathBuf,
    /// `--context` / `KUBE9_CONTEXT`.
    pub context: Option<String>,
    /// `--certificate-authority`.
    pub ca_file: Option<PathBuf>,
}

/// Looks up an environment variable (injected, so tests need not touch the process's).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process's environment, as [`Env`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A flag's value, else its variable's; an empty value counts as not given either way.
fn flag_or_env(flag: Option<&String>, env: Env, name: &str) -> Option<String> {
    flag.filter(|v| !v.is_empty())
        .cloned()
        .or_else(|| env(name).filter(|v| !v.is_empty()))
}

impl Connection {
    /// The connection settings of a command line: each flag, else its environment variable.
    pub fn from_cli(cli: &Cli, env: Env) -> Connection {
        let config_path = match cli.config.as_ref().filter(|p| !p.as_os_str().is_empty()) {
            Some(path) => path.clone(),
            None => env(kube9_proto::client::config::ENV)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(kube9_proto::client::config::default_path),
        };
        Connection {
            server: flag_or_env(cli.server.as_ref(), env, SERVER_ENV),
            token: flag_or_env(cli.token.as_ref(), env, TOKEN_ENV),
            config_path,
            context: flag_or_env(cli.context.as_ref(), env, CONTEXT_ENV),
            ca_file: cli.certificate_authority.clone(),
        }
    }

    /// The client config file, if there is one.
    pub fn load(&self) -> anyhow::Result<Option<ClientConfig>> {
        Ok(ClientConfig::load(&self.config_path)?)
    }

    /// What to dial, with what: the context's server, CA and token, each overridden by its
    /// flag.
    pub fn target(&self) -> anyhow::Result<Target> {
        let resolved = self.resolved()?;
        let url = self.url(resolved.as_ref())?;
        let (ca_pem, ca_source) = if url.starts_with("https://") {
            self.ca(resolved.as_ref())?
        } else {
            (None, String::new())
        };
        let token = self
            .token
            .clone()
            .or_else(|| resolved.and_then(|r| r.token))
            .filter(|t| !t.trim().is_empty());
        Ok(Target {
            url,
            ca_pem,
            ca_source,
            token,
        })
    }

    /// The context to dial: `--context`'s or the current one; `None` when `--server` stands
    /// alone (no file, or a file with no current context).
    fn resolved(&self) -> anyhow::Result<Option<Resolved>> {
        let path = self.config_path.display();
        let standalone = self.server.is_some() && self.context.is_none();
        let Some(config) = self.load()? else {
            if standalone {
                return Ok(None);
            }
            anyhow::bail!(
                "no client config at {path}: kube9d writes one when it first starts (or set KUBE9_CONFIG, or --server with --token)"
            );
        };
        if standalone && config.current_context.is_empty() {
            return Ok(None);
        }
        config
            .resolve(self.context.as_deref())
            .map(Some)
            .map_err(|e| {
                let hint = "kube9ctl config get-contexts lists its contexts";
                anyhow::anyhow!("the client config {path}: {e} ({hint})")
            })
    }

    /// The URL to dial: `--server`'s, else the context's; no scheme means https.
    fn url(&self, resolved: Option<&Resolved>) -> anyhow::Result<String> {
        match (&self.server, resolved) {
            (Some(server), _) => dial_url(server, "--server"),
            (None, Some(r)) if r.server.trim().is_empty() => anyhow::bail!(
                "the client config {}: context {:?} names a cluster with no server (give --server)",
                self.config_path.display(),
                r.context
            ),
            (None, Some(r)) => dial_url(
                &r.server,
                &format!("the client config {}", self.config_path.display()),
            ),
            (None, None) => anyhow::bail!("no server: give --server or a client config"),
        }
    }

    /// The CA that must have signed kube9d's certificate, and where it came from:
    /// `--certificate-authority`'s, else the context's.
    fn ca(&self, resolved: Option<&Resolved>) -> anyhow::Result<(Option<Vec<u8>>, String)> {
        let (pem, source) = match (&self.ca_file, resolved) {
            (Some(file), _) => {
                let source = format!("--certificate-authority {}", file.display());
                let pem = std::fs::read(file).with_context(|| format!("cannot read {source}"))?;
                (pem, source)
            }
            (None, Some(r)) => match &r.ca_pem {
                Some(pem) => (
                    pem.clone(),
                    format!("the client config {}", self.config_path.display()),
                ),
                None => return Ok((None, String::new())),
            },
            (None, None) => return Ok((None, String::new())),
        };
        // tonic would take a file with no certificate and fail every handshake later, blaming
        // kube9d's certificate: say what is wrong with the file instead.
        kube9_proto::client::tls::ca_hash(&pem).map_err(|_| {
            anyhow::anyhow!("{source} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        })?;
        Ok((Some(pem), source))
    }

    /// The current context's namespace, when the config names one (errors surface later,
    /// when connecting).
    fn namespace(&self) -> Option<String> {
        let config = self.load().ok()??;
        config.resolve(self.context.as_deref()).ok()?.namespace
    }
}

/// The URL for a server as written (`host:port`, `host`, or a URL): no scheme means https, as
/// kube9d serves TLS unless started with --insecure; `http://` is plain text. `what` names
/// where the server came from, for the error.
pub fn dial_url(server: &str, what: &str) -> anyhow::Result<String> {
    let server = server.trim();
    if let Some((scheme, rest)) = server.split_once("://") {
        if !matches!(scheme, "https" | "http") {
            anyhow::bail!(
                "invalid server {server:?} in {what}: the scheme {scheme:?} is neither https:// (or none) nor http:// (a kube9d started with --insecure)"
            );
        }
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() {
            anyhow::bail!("invalid server {server:?} in {what}: it names no host");
        }
        // A URL's default port (80, 443) is never kube9d's: say so rather than dial it.
        let has_port = authority.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty()
                && !host.ends_with('[')
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
        });
        if !has_port {
            anyhow::bail!(
                "invalid server {server:?} in {what}: a URL must name the port (kube9d listens on {} unless told otherwise), e.g. {scheme}://{authority}:{}",
                kube9_proto::DEFAULT_PORT,
                kube9_proto::DEFAULT_PORT
            );
        }
    }
    Ok(kube9_proto::client::tls::server_url(server, true))
}

impl Context {
    /// Dials kube9d.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        Client::connect(&self.conn.target()?).await
    }

    /// The `-o` format, `table` when not given (or a template, which only `get` reads: see
    /// [`run`]).
    pub fn format(&self) -> Format {
        self.output
            .as_ref()
            .and_then(Output::format)
            .unwrap_or(Format::Table)
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
    let env: Env = &process_env;
    let conn = Connection::from_cli(&cli, env);
    let context_ns = conn.namespace();
    let ctx = Context {
        conn,
        output: cli.output,
        namespace: Namespace::resolve(cli.namespace, env(NAMESPACE_ENV), context_ns),
    };
    if let Some(output) = ctx.output.as_ref().filter(|o| o.format().is_none()) {
        if !matches!(cli.command, Command::Get(_)) {
            anyhow::bail!(
                "-o {}: templates and custom columns are printed by `get` only",
                output_name(output)
            );
        }
    }
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
        Command::Version(args) => version::run(&ctx, args).await,
        Command::Cordon(args) => drain::cordon(&ctx, args, true).await,
        Command::Uncordon(args) => drain::cordon(&ctx, args, false).await,
        Command::Drain(args) => drain::drain(&ctx, args).await,
        Command::Label(args) => label::run(&ctx, args, false).await,
        Command::Annotate(args) => label::run(&ctx, args, true).await,
        Command::ApiResources => resources::api_resources(&ctx),
        Command::Completion(args) => resources::completion(args),
        Command::Top(args) => top::run(&ctx, args).await,
        Command::Wait(args) => wait::run(&ctx, args).await,
        Command::Dashboard(args) => dashboard::run(&ctx, args).await,
    }
}

/// `-o`'s format name, for messages.
fn output_name(output: &Output) -> &'static str {
    match output {
        Output::Format(_) => "format",
        Output::JsonPath(_) => "jsonpath",
        Output::JsonPathAsJson(_) => "jsonpath-as-json",
        Output::CustomColumns(_) => "custom-columns",
        Output::CustomColumnsFile(_) => "custom-columns-file",
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

    /// A fresh directory for one test's client config.
    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kube9ctl-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn conn(dir: &std::path::Path) -> Connection {
        Connection {
            config_path: dir.join("config"),
            ..Default::default()
        }
    }

    /// Something shaped like a CA certificate (only its PEM framing is checked before dialing).
    fn ca_pem() -> Vec<u8> {
        kube9_proto::client::tls::pem_certificate(&[0x30, 0x03, 0x02, 0x01, 0x01]).into_bytes()
    }

    /// Two contexts: `a` (current, with a CA) and `b`, written to `dir/config`.
    fn two_contexts(dir: &std::path::Path) {
        let mut config = ClientConfig::empty();
        config.upsert("a", "https://127.0.0.1:1", Some(&ca_pem()), "tok-a");
        config.upsert("b", "https://127.0.0.1:2", None, "tok-b");
        config.contexts[0].context.namespace = Some("team-a".into());
        config.save(&dir.join("config")).unwrap();
    }

    fn cli(args: &[&str]) -> Cli {
        use clap::Parser;
        Cli::try_parse_from(std::iter::once("kube9ctl").chain(args.iter().copied())).unwrap()
    }

    /// An environment holding only `vars`.
    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn a_flag_beats_its_environment_variable() {
        let env = env_of(&[
            ("KUBE9_SERVER", "env-host:1"),
            ("KUBE9_TOKEN", "env-token"),
            ("KUBE9_CONTEXT", "env-ctx"),
            ("KUBE9_CONFIG", "/env/config"),
        ]);
        let from_env = Connection::from_cli(&cli(&["version"]), &env);
        assert_eq!(from_env.server.as_deref(), Some("env-host:1"));
        assert_eq!(from_env.token.as_deref(), Some("env-token"));
        assert_eq!(from_env.context.as_deref(), Some("env-ctx"));
        assert_eq!(from_env.config_path, PathBuf::from("/env/config"));
        let flags = cli(&[
            "version",
            "--server",
            "flag-host:2",
            "--token",
            "flag-token",
            "--context",
            "flag-ctx",
            "--config",
            "/flag/config",
            "--certificate-authority",
            "/flag/ca.crt",
        ]);
        let from_flags = Connection::from_cli(&flags, &env);
        assert_eq!(from_flags.server.as_deref(), Some("flag-host:2"));
        assert_eq!(from_flags.token.as_deref(), Some("flag-token"));
        assert_eq!(from_flags.context.as_deref(), Some("flag-ctx"));
        assert_eq!(from_flags.config_path, PathBuf::from("/flag/config"));
        assert_eq!(from_flags.ca_file, Some(PathBuf::from("/flag/ca.crt")));
        // kubectl's spelling of the file flag works too.
        let kubeconfig = Connection::from_cli(&cli(&["version", "--kubeconfig", "/k"]), &env);
        assert_eq!(kubeconfig.config_path, PathBuf::from("/k"));
        // Empty values count as not given.
        let empty = env_of(&[("KUBE9_SERVER", ""), ("KUBE9_TOKEN", "")]);
        let none = Connection::from_cli(&cli(&["version", "--server", ""]), &empty);
        assert_eq!((none.server, none.token), (None, None));
    }

    #[test]
    fn the_target_is_the_contexts_with_the_overrides() {
        let dir = scratch("target");
        let e = conn(&dir).target().unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "no client config at {}: kube9d writes one when it first starts (or set KUBE9_CONFIG, or --server with --token)",
                dir.join("config").display()
            )
        );
        two_contexts(&dir);
        let t = conn(&dir).target().unwrap();
        assert_eq!(
            (t.url.as_str(), t.token.as_deref()),
            ("https://127.0.0.1:1", Some("tok-a"))
        );
        assert_eq!(t.ca_pem, Some(ca_pem()));
        assert_eq!(
            t.ca_source,
            format!("the client config {}", dir.join("config").display())
        );
        let t = Connection {
            context: Some("b".into()),
            ..conn(&dir)
        }
        .target()
        .unwrap();
        assert_eq!(
            (t.url.as_str(), t.token.as_deref()),
            ("https://127.0.0.1:2", Some("tok-b"))
        );
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
        assert_eq!(t.ca_pem, Some(ca_pem()), "the context's CA still vouches");
        let e = Connection {
            context: Some("nope".into()),
            ..conn(&dir)
        }
        .target()
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("no context \"nope\"") && e.contains("get-contexts"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_certificate_authority_flag_replaces_the_contexts_ca() {
        let dir = scratch("ca");
        two_contexts(&dir);
        let file = dir.join("other-ca.crt");
        let other = kube9_proto::client::tls::pem_certificate(&[0x30, 0x00]);
        std::fs::write(&file, &other).unwrap();
        let t = Connection {
            ca_file: Some(file.clone()),
            ..conn(&dir)
        }
        .target()
        .unwrap();
        assert_eq!(t.ca_pem.as_deref(), Some(other.as_bytes()));
        assert_eq!(
            t.ca_source,
            format!("--certificate-authority {}", file.display())
        );
        std::fs::write(&file, "not a certificate").unwrap();
        let e = Connection {
            ca_file: Some(file.clone()),
            ..conn(&dir)
        }
        .target()
        .unwrap_err()
        .to_string();
        assert!(
            e.ends_with("holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
            "{e}"
        );
        let e = Connection {
            ca_file: Some(dir.join("missing.crt")),
            ..conn(&dir)
        }
        .target()
        .unwrap_err();
        assert!(
            format!("{e:#}").starts_with("cannot read --certificate-authority"),
            "{e:#}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_server_alone_needs_no_client_config() {
        let dir = scratch("alone");
        let t = Connection {
            server: Some("http://10.0.0.1:7209".into()),
            token: Some("t".into()),
            ..conn(&dir)
        }
        .target()
        .unwrap();
        assert_eq!(
            (t.url.as_str(), t.token.as_deref(), t.ca_pem),
            ("http://10.0.0.1:7209", Some("t"), None)
        );
        // A named context still needs the file that holds it.
        let e = Connection {
            server: Some("h:1".into()),
            context: Some("a".into()),
            ..conn(&dir)
        }
        .target()
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("no client config at"), "{e}");
        // A file with no current context (only `config set-context` has written it).
        let mut config = ClientConfig::empty();
        config
            .contexts
            .push(kube9_proto::client::config::NamedContext {
                name: "x".into(),
                ..Default::default()
            });
        config.save(&dir.join("config")).unwrap();
        let t = Connection {
            server: Some("h:1".into()),
            ..conn(&dir)
        }
        .target()
        .unwrap();
        assert_eq!(t.url, "https://h:1");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_broken_client_config_is_an_error_naming_it() {
        let dir = scratch("broken");
        std::fs::write(dir.join("config"), "contexts: [oops").unwrap();
        let e = conn(&dir).target().unwrap_err().to_string();
        assert!(
            e.contains(&dir.join("config").display().to_string()) && e.contains("not valid"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn servers_without_a_scheme_are_https() {
        assert_eq!(
            dial_url("10.0.0.1:7300", "x").unwrap(),
            "https://10.0.0.1:7300"
        );
        assert_eq!(dial_url("kube9d", "x").unwrap(), "https://kube9d:7209");
        assert_eq!(dial_url("https://h:1/", "x").unwrap(), "https://h:1");
        assert_eq!(dial_url("http://h:1", "x").unwrap(), "http://h:1");
        let e = dial_url("ftp://h:1", "--server").unwrap_err().to_string();
        assert!(e.contains("\"ftp\"") && e.contains("--server"), "{e}");
        assert!(dial_url("https://", "x").is_err());
        let e = dial_url("http://127.0.0.1", "--server")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("must name the port") && e.contains("http://127.0.0.1:7209"),
            "{e}"
        );
        assert_eq!(dial_url("https://[::1]:7", "x").unwrap(), "https://[::1]:7");
        assert!(dial_url("https://[::1]", "x").is_err());
        // The context's server, written by hand without a scheme, is https too.
        let dir = scratch("scheme");
        let mut config = ClientConfig::empty();
        config.upsert("a", "127.0.0.1:5", Some(&ca_pem()), "t");
        config.save(&dir.join("config")).unwrap();
        assert_eq!(conn(&dir).target().unwrap().url, "https://127.0.0.1:5");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn plain_text_needs_no_ca() {
        let dir = scratch("plain");
        let mut config = ClientConfig::empty();
        config.upsert("a", "http://127.0.0.1:5", None, "t");
        config.save(&dir.join("config")).unwrap();
        let t = conn(&dir).target().unwrap();
        assert_eq!((t.url.as_str(), t.ca_pem), ("http://127.0.0.1:5", None));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_contexts_namespace_is_the_default_one() {
        let dir = scratch("ns");
        two_contexts(&dir);
        assert_eq!(conn(&dir).namespace().as_deref(), Some("team-a"));
        let b = Connection {
            context: Some("b".into()),
            ..conn(&dir)
        };
        assert_eq!(b.namespace(), None);
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
