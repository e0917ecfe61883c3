//! The command-line grammar. Parsing only: every command's behaviour lives in `commands/`.

use crate::output::custom_columns::{self, Column};
use crate::output::jsonpath::Template;
use clap::{Args, Parser, Subcommand, ValueEnum};
use kube9_proto::fault::Fault;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// kube9ctl controls a Kube-9 cluster.
#[derive(Debug, Parser)]
#[command(name = "kube9ctl", version, about, propagate_version = true)]
pub struct Cli {
    /// Address of kube9d, instead of the context's: host:port (TLS), https://host:port, or
    /// http://host:port for a kube9d started with --insecure; a bare host means port 7209,
    /// a URL must name its port [env: KUBE9_SERVER].
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,

    /// Bearer token (`<id>.<secret>`), instead of the context's [env: KUBE9_TOKEN].
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,

    /// The client config file (kubeconfig's shape; kube9d writes its context there)
    /// [env: KUBE9_CONFIG] [default: ~/.kube9/config].
    #[arg(long, global = true, value_name = "PATH", visible_alias = "kubeconfig")]
    pub config: Option<std::path::PathBuf>,

    /// The context of the client config to use, instead of its current one
    /// [env: KUBE9_CONTEXT].
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,

    /// A CA file (PEM) to verify kube9d with, instead of the context's.
    #[arg(long, global = true, value_name = "FILE")]
    pub certificate_authority: Option<std::path::PathBuf>,

    /// Output format, where the command prints objects: table, wide, json, yaml, name; for
    /// `get` also jsonpath=TEMPLATE, jsonpath-as-json=TEMPLATE, custom-columns=SPEC and
    /// custom-columns-file=FILE (kubectl's syntax).
    #[arg(short = 'o', long, global = true, value_parser = parse_output, value_name = "FORMAT")]
    pub output: Option<Output>,

    /// The namespace of pods, config maps, secrets and events (default: $KUBE9_NAMESPACE, else
    /// the context's namespace, else "default"). Nodes and namespaces are cluster-wide and
    /// ignore it.
    #[arg(short = 'n', long, global = true, value_name = "NS")]
    pub namespace: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

/// How objects are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Plain columns (the default).
    Table,
    /// Columns plus more detail.
    Wide,
    /// Kubernetes-shaped JSON.
    Json,
    /// Kubernetes-shaped YAML.
    Yaml,
    /// `kind/name` only.
    Name,
}

/// What `-o` asks for: a format, or a template applied to the objects' JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Format(Format),
    /// `jsonpath=TEMPLATE`.
    JsonPath(Template),
    /// `jsonpath-as-json=TEMPLATE`: each action's results as a JSON array.
    JsonPathAsJson(Template),
    /// `custom-columns=HEADER:PATH,...`.
    CustomColumns(Vec<Column>),
    /// `custom-columns-file=FILE`: headers on the first line, paths on the second.
    CustomColumnsFile(std::path::PathBuf),
}

impl Output {
    /// The plain format, if `-o` named one.
    pub fn format(&self) -> Option<Format> {
        match self {
            Output::Format(f) => Some(*f),
            _ => None,
        }
    }
}

/// `-o`'s value, as kubectl spells it (`-o jsonpath='{...}'`, `-o=custom-columns=A:.a`).
pub fn parse_output(s: &str) -> Result<Output, String> {
    if let Ok(format) = <Format as ValueEnum>::from_str(s, false) {
        return Ok(Output::Format(format));
    }
    let (name, value) = s.split_once('=').unwrap_or((s, ""));
    let needs_value = |what: &str| {
        if value.is_empty() {
            Err(format!("{what} format specified but no {what} given"))
        } else {
            Ok(())
        }
    };
    match name {
        "jsonpath" | "jsonpath-as-json" => {
            needs_value("template")?;
            let template = Template::parse(value)
                .map_err(|e| format!("error parsing jsonpath {value}: {e}"))?;
            Ok(if name == "jsonpath" {
                Output::JsonPath(template)
            } else {
                Output::JsonPathAsJson(template)
            })
        }
        "custom-columns" => {
            needs_value("custom-columns")?;
            Ok(Output::CustomColumns(custom_columns::parse_spec(value)?))
        }
        "custom-columns-file" => {
            needs_value("file")?;
            Ok(Output::CustomColumnsFile(value.into()))
        }
        _ => Err(format!(
            "unknown output format {s:?} (allowed: table, wide, json, yaml, name, \
             jsonpath=TEMPLATE, jsonpath-as-json=TEMPLATE, custom-columns=SPEC, \
             custom-columns-file=FILE)"
        )),
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create objects from a manifest (file, directory or - for stdin).
    Apply(ApplyArgs),
    /// Create one object from flags.
    #[command(subcommand)]
    Create(CreateCommand),
    /// List objects, or show one.
    Get(GetArgs),
    /// Show one object in detail, with its events.
    Describe(DescribeArgs),
    /// Delete objects by name or by manifest, and wait until they are gone.
    Delete(DeleteArgs),
    /// Print a container's logs.
    Logs(LogsArgs),
    /// Run a command in a container: kube9ctl exec POD [-c CONTAINER] -- COMMAND [ARGS...]
    Exec(ExecArgs),
    /// Inject failures into nodes, recover and clean them up, check their health.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Manage bearer tokens: join tokens for nodes, viewer and admin tokens for people.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Show or change the client config's contexts.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Save a consistent copy of kube9d's store (admin); restore it offline with `kube9d
    /// snapshot restore FILE --data-dir DIR`.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Print the client and server versions.
    Version(VersionArgs),
    /// Mark a node unschedulable: no new pods are placed on it (its pods stay).
    Cordon(CordonArgs),
    /// Mark a node schedulable again.
    Uncordon(CordonArgs),
    /// Cordon a node and move every pod on it elsewhere (each stops there first).
    Drain(DrainArgs),
    /// Set (KEY=VALUE) or remove (KEY-) labels of an object.
    Label(MetadataArgs),
    /// Set (KEY=VALUE) or remove (KEY-) annotations of a pod.
    Annotate(MetadataArgs),
    /// List the kinds kube9d serves.
    ApiResources,
    /// Print a shell completion script: bash, zsh or fish.
    Completion(CompletionArgs),
    /// Show CPU and memory in use: top nodes|pods.
    #[command(subcommand)]
    Top(TopCommand),
    /// Wait until objects meet a condition: --for=condition=Ready, --for=delete,
    /// --for=jsonpath='{.status.phase}'=Running.
    Wait(WaitArgs),
    /// Print a sign-in link for kube9d's web dashboard (it makes a token for it).
    Dashboard(DashboardArgs),
}

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// The dashboard's address (kube9d's --dashboard-listen).
    #[arg(long, default_value = "http://127.0.0.1:7210/", value_name = "URL")]
    pub url: String,
    /// admin (every action) or viewer (reads only: no buttons that change anything).
    #[arg(long, default_value = "admin", value_parser = parse_role)]
    pub role: kube9_proto::client::Role,
    /// How long the link's token works.
    #[arg(long, default_value = "12h", value_parser = parse_ttl, value_name = "DURATION")]
    pub ttl: Duration,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// List tokens: ids, roles, age, expiry, last use (never secrets).
    #[command(visible_alias = "ls")]
    List,
    /// Create a token and print it alone (it is shown this once).
    Create(TokenCreateArgs),
    /// Revoke tokens, by id or whole token.
    #[command(visible_alias = "rm")]
    Delete {
        /// Token ids, or whole `<id>.<secret>` tokens (only the id is sent).
        #[arg(required = true, value_name = "ID|TOKEN")]
        ids: Vec<String>,
    },
    /// Create a node token and print the kube9-node command line that joins with it.
    JoinCommand(TokenLifetime),
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// node (joins a node), viewer (reads, no Secret data, no exec) or admin (everything).
    #[arg(long, default_value = "node", value_parser = parse_role)]
    pub role: kube9_proto::client::Role,
    #[command(flatten)]
    pub lifetime: TokenLifetime,
    /// Print the kube9-node command line that joins with the token (node tokens), instead of
    /// the token alone.
    #[arg(long)]
    pub print_join_command: bool,
}

#[derive(Debug, Args)]
pub struct TokenLifetime {
    /// How long the token works: 24h, 30m, 1h30m; 0 never expires.
    #[arg(long, default_value = "0", value_parser = parse_ttl, value_name = "DURATION")]
    pub ttl: Duration,
    /// What the token is for, shown by `token list`.
    #[arg(long, default_value = "", value_name = "TEXT")]
    pub description: String,
}

fn parse_role(s: &str) -> Result<kube9_proto::client::Role, String> {
    s.parse()
}

/// A token's `--ttl`: a duration (`24h`, `30m`, `1h30m`), `0` for a token that never
/// expires. kube9d counts whole seconds, so a fraction of one is refused rather than rounded
/// into a token that lives longer or shorter than asked.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let ttl = parse_duration(s)?;
    if ttl.subsec_nanos() != 0 {
        return Err("a token lives whole seconds (e.g. 30s, 24h; 0 never expires)".into());
    }
    Ok(ttl)
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Write every object of the running kube9d's store, at one point in time, to FILE (mode
    /// 0600; an existing FILE is refused). Secrets stay sealed with the cluster's key, which
    /// is not in the file.
    Save {
        /// The file to write.
        file: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the client config (tokens and CA data hidden unless --raw).
    View {
        /// Show tokens and CA data as they are.
        #[arg(long)]
        raw: bool,
    },
    /// List the contexts.
    GetContexts,
    /// Print the current context's name.
    CurrentContext,
    /// Make a context the current one.
    UseContext { name: String },
    /// Create or change a context (its namespace, cluster or user).
    SetContext {
        /// The context to create or change.
        #[arg(required_unless_present = "current", conflicts_with = "current")]
        name: Option<String>,
        /// Change the current context.
        #[arg(long)]
        current: bool,
        /// The namespace commands use in this context when -n names none ("" unsets it).
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// The cluster entry of the client config this context dials.
        #[arg(long)]
        cluster: Option<String>,
        /// The user entry of the client config whose token this context presents.
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Manifest file, directory of manifests, or - for stdin. May be repeated.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<String>,
    /// client: validate here and print, send nothing; server (also a bare --dry-run): kube9d
    /// validates and admits every object, stores nothing; none: apply.
    #[arg(
        long,
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        default_value = "none",
        default_missing_value = "server",
        value_name = "STRATEGY"
    )]
    pub dry_run: DryRun,
    /// Then wait until the applied pods are Ready (or have completed).
    #[arg(long)]
    pub wait: bool,
    /// With --wait: how long to wait: 60s, 5m (0: no limit).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// `--dry-run`'s strategy, as kubectl's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DryRun {
    None,
    Client,
    Server,
}

#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// Create a node.
    #[command(visible_alias = "no")]
    Node(CreateNodeArgs),
    /// Create a namespace.
    #[command(visible_alias = "ns")]
    Namespace(CreateNamespaceArgs),
    /// Create a config map in the -n namespace from literals, files and directories.
    #[command(name = "configmap", visible_alias = "cm")]
    ConfigMap(CreateConfigMapArgs),
    /// Create a secret in the -n namespace.
    #[command(subcommand)]
    Secret(CreateSecretCommand),
}

#[derive(Debug, Args)]
pub struct CreateNamespaceArgs {
    /// Namespace name (lowercase letters, digits and '-').
    pub name: String,
    /// Validate on the server, store nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The data of a config map or secret, as `kubectl create configmap|secret generic` takes it.
#[derive(Debug, Args)]
pub struct DataSources {
    /// A key and its value, KEY=VALUE. May be repeated.
    #[arg(long = "from-literal", value_name = "KEY=VALUE")]
    pub literals: Vec<String>,
    /// A file (its key is its base name, or KEY), or a directory (each regular file in it,
    /// keyed by its name). May be repeated.
    #[arg(long = "from-file", value_name = "[KEY=]PATH")]
    pub files: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CreateConfigMapArgs {
    /// Config map name.
    pub name: String,
    #[command(flatten)]
    pub sources: DataSources,
    /// Validate on the server, store nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum CreateSecretCommand {
    /// Create a secret from literals, files and directories (kubectl's `create secret generic`).
    Generic(CreateSecretArgs),
}

#[derive(Debug, Args)]
pub struct CreateSecretArgs {
    /// Secret name.
    pub name: String,
    #[command(flatten)]
    pub sources: DataSources,
    /// The secret's type (default: Opaque).
    #[arg(long = "type", value_name = "TYPE")]
    pub secret_type: Option<String>,
    /// Validate on the server, store nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct CreateNodeArgs {
    /// Node name (lowercase letters, digits and '-').
    pub name: String,
    /// CPU capacity: 4, 0.5, 2500m.
    #[arg(long)]
    pub cpu: String,
    /// Memory capacity: 4Gi, 512Mi (default: memory is not tracked on the node).
    #[arg(long)]
    pub memory: Option<String>,
    /// A label, key=value. May be repeated.
    #[arg(short = 'l', long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// What to get: KIND [NAME...] (nodes (no), pods (po), namespaces (ns), configmaps (cm),
    /// secrets, events (ev)), several kinds as KIND,KIND, `all` (the namespace's pods), or
    /// KIND/NAME... (as `get -o name` prints them).
    #[arg(
        required = true,
        value_name = "KIND[,KIND...] [NAME...] | KIND/NAME..."
    )]
    pub resources: Vec<String>,
    /// List the objects of every namespace, with a NAMESPACE column (-n is ignored).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Label selector: app=web,tier!=db,env in (a,b),tier notin (db),env,!canary.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field selector: status.phase=Running,spec.nodeName!=n1 (pods: metadata.name,
    /// metadata.namespace, spec.nodeName, status.phase; other kinds: metadata.name,
    /// metadata.namespace).
    #[arg(long, value_name = "SELECTOR")]
    pub field_selector: Option<String>,
    /// List pods in pages of this many (0: in one answer).
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub chunk_size: u32,
    /// Pods: only those bound to this node.
    #[arg(long)]
    pub node: Option<String>,
    /// Events: only those about this object (node/n1, pod/web).
    #[arg(long = "for")]
    pub for_object: Option<String>,
    /// Tables and custom columns: leave out the header line.
    #[arg(long)]
    pub no_headers: bool,
    /// Tables: a last LABELS column with every label.
    #[arg(long)]
    pub show_labels: bool,
    /// Tables: a column with this label's value (repeatable, or comma-separated).
    #[arg(
        short = 'L',
        long = "label-columns",
        value_name = "KEY",
        value_delimiter = ','
    )]
    pub label_columns: Vec<String>,
    /// Sort the objects by this field (a JSONPath: .metadata.name, .spec.nodeName,
    /// .metadata.creationTimestamp, ...).
    #[arg(long, value_name = "JSONPATH", value_parser = parse_sort_by)]
    pub sort_by: Option<Template>,
    /// -w/--watch, --watch-only, --output-watch-events.
    #[command(flatten)]
    pub watch: WatchFlags,
}

/// `--sort-by`'s path, in kubectl's relaxed forms (`.a.b`, `a.b`, `{.a.b}`).
fn parse_sort_by(s: &str) -> Result<Template, String> {
    Template::relaxed(s).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// node (no), pod (po), namespace (ns), configmap (cm) or secret; or KIND/NAME.
    pub resource: ResourceKind,
    /// The object's name.
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// What to delete: KIND NAME... (pod (po), configmap (cm), secret, namespace (ns), node
    /// (no); several kinds as KIND,KIND), or KIND/NAME... (as `get -o name` prints them).
    #[arg(
        required_unless_present = "file",
        conflicts_with = "file",
        value_name = "KIND[,KIND...] NAME... | KIND/NAME..."
    )]
    pub resources: Vec<String>,
    /// Delete the objects of this manifest (or - for stdin).
    #[arg(short = 'f', long = "filename")]
    pub file: Option<String>,
    /// Wait until each object is gone (--wait=false returns at once).
    #[arg(long, default_value_t = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub wait: bool,
    /// How long to wait per object (for pods, per request: all of them): 60s, 2m, 500ms
    /// (0: no limit).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Succeed when the object does not exist.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Pods: seconds between SIGTERM and SIGKILL (default: the server's).
    #[arg(long)]
    pub grace_period: Option<u32>,
    /// Delete the objects of KIND matching this label selector (app=web, env in (a,b), ...).
    #[arg(short = 'l', long, conflicts_with = "file")]
    pub selector: Option<String>,
    /// Delete the objects of KIND matching this field selector (status.phase=Failed, ...).
    #[arg(long, value_name = "SELECTOR", conflicts_with = "file")]
    pub field_selector: Option<String>,
    /// Delete every object of KIND (in the namespace, for namespaced kinds).
    #[arg(long, conflicts_with = "file")]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The pod: NAME or pod/NAME (or -l).
    #[arg(value_parser = parse_pod, required_unless_present = "selector")]
    pub pod: Option<String>,
    /// The logs of every pod matching this label selector, one pod after another.
    #[arg(short = 'l', long, conflicts_with = "pod")]
    pub selector: Option<String>,
    /// Begin each line with [pod/NAME/CONTAINER].
    #[arg(long)]
    pub prefix: bool,
    /// The container (optional when the pod has one).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Only the last N lines (-1: all; with -l the default is 10, as kubectl's).
    #[arg(long, allow_negative_numbers = true)]
    pub tail: Option<i64>,
    /// Keep printing what the container writes, until interrupted (with -l: every matching
    /// pod at once, whole lines interleaved).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// With -l and -f: how many pods may be followed at once.
    #[arg(long, default_value_t = 5)]
    pub max_log_requests: usize,
    /// The logs of the container's previous run (after a restart).
    #[arg(short = 'p', long)]
    pub previous: bool,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The pod: NAME or pod/NAME.
    #[arg(value_parser = parse_pod)]
    pub pod: String,
    /// The container (optional when the pod has one).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Inject a failure into a node.
    Fail {
        /// The node.
        name: String,
        /// heartbeat, crash, component=<name> or partition.
        #[arg(long)]
        mode: Fault,
    },
    /// Lift an injected failure and let the node come back.
    Recover {
        /// The node.
        name: String,
    },
    /// Force-remove a node's container or process and reschedule its pods.
    Cleanup {
        /// The node.
        name: String,
    },
    /// Deregister a node as its agent would: it becomes PermanentlyFailed.
    Deregister {
        /// The node.
        name: String,
        /// Why (shown in the node's reason).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Health of every node.
    Health,
}

/// The kinds `get`, `describe` and `delete` take, with kubectl's aliases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceKind {
    pub kind: Kind,
    /// Set when written as `KIND/NAME`.
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Node,
    Pod,
    Event,
    Namespace,
    ConfigMap,
    Secret,
}

impl Kind {
    /// Lowercase singular, as in `pod/web` and `pod "web" deleted`.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Node => "node",
            Kind::Pod => "pod",
            Kind::Event => "event",
            Kind::Namespace => "namespace",
            Kind::ConfigMap => "configmap",
            Kind::Secret => "secret",
        }
    }

    /// The kind as the wire and manifests spell it: `Pod`, `ConfigMap`, ...
    pub fn wire(self) -> &'static str {
        match self {
            Kind::Node => "Node",
            Kind::Pod => "Pod",
            Kind::Event => "Event",
            Kind::Namespace => "Namespace",
            Kind::ConfigMap => "ConfigMap",
            Kind::Secret => "Secret",
        }
    }

    /// Whether objects of this kind live in a namespace (nodes and namespaces do not).
    pub fn is_namespaced(self) -> bool {
        !matches!(self, Kind::Node | Kind::Namespace)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.noun())
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "node" | "nodes" | "no" => Ok(Kind::Node),
            "pod" | "pods" | "po" => Ok(Kind::Pod),
            "event" | "events" | "ev" => Ok(Kind::Event),
            "namespace" | "namespaces" | "ns" => Ok(Kind::Namespace),
            "configmap" | "configmaps" | "cm" => Ok(Kind::ConfigMap),
            "secret" | "secrets" => Ok(Kind::Secret),
            _ => Err(format!(
                "the server doesn't have a resource type {s:?} (known: nodes, pods, namespaces, \
                 configmaps, secrets, events)"
            )),
        }
    }
}

impl FromStr for ResourceKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((kind, name)) if !name.is_empty() => Ok(ResourceKind {
                kind: kind.parse()?,
                name: Some(name.to_string()),
            }),
            Some(_) => Err(format!("missing name in {s:?} (use KIND/NAME)")),
            None => Ok(ResourceKind {
                kind: s.parse()?,
                name: None,
            }),
        }
    }
}

/// What `get` and `delete` were asked for, from their arguments as kubectl reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// `pods`, `po,no`, `all`, each followed by names or none.
    Kinds {
        kinds: Vec<Kind>,
        names: Vec<String>,
        /// Several kinds were asked for (a comma or `all`): tables print `kind/name`.
        several: bool,
    },
    /// `pod/a node/b`.
    Objects(Vec<(Kind, String)>),
}

/// The kinds `get all` lists: kubectl's `all` is the namespace's workloads, and in Kube-9
/// those are pods (config maps and secrets are not in kubectl's `all` either).
pub const ALL: &[Kind] = &[Kind::Pod];

/// Reads `KIND[,KIND...] [NAME...]` or `KIND/NAME...`.
pub fn parse_selection(args: &[String]) -> Result<Selection, String> {
    let Some(first) = args.first() else {
        return Err("give a kind (pods, nodes, ...), KIND,KIND, all, or KIND/NAME".into());
    };
    if first.contains('/') {
        let mut objects = Vec::with_capacity(args.len());
        for arg in args {
            let Some((kind, name)) = arg.split_once('/') else {
                return Err(format!(
                    "there is no need to specify a resource type as a separate argument when \
                     passing arguments in resource/name form (e.g. 'kube9ctl get \
                     resource/<resource_name>' instead of 'kube9ctl get resource \
                     resource/<resource_name>'), and {arg:?} is not in resource/name form"
                ));
            };
            if kind.contains(',') || name.is_empty() || name.contains('/') {
                return Err(format!(
                    "arguments in resource/name form must have a single resource and name: {arg:?}"
                ));
            }
            objects.push((kind.parse()?, name.to_string()));
        }
        return Ok(Selection::Objects(objects));
    }
    let names = args[1..].to_vec();
    if names.iter().any(|n| n.contains('/')) {
        return Err(
            "there is no need to specify a resource type as a separate argument when \
                    passing arguments in resource/name form (e.g. 'kube9ctl get \
                    resource/<resource_name>' instead of 'kube9ctl get resource \
                    resource/<resource_name>')"
                .into(),
        );
    }
    let mut kinds = Vec::new();
    let words: Vec<&str> = first.split(',').collect();
    for word in &words {
        let expanded = if word.eq_ignore_ascii_case("all") {
            ALL.to_vec()
        } else {
            vec![word.parse::<Kind>()?]
        };
        for kind in expanded {
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
    }
    let several = words.len() > 1 || words.iter().any(|w| w.eq_ignore_ascii_case("all"));
    Ok(Selection::Kinds {
        kinds,
        names,
        several,
    })
}

/// A pod given as NAME or pod/NAME (`logs`, `exec`).
pub fn parse_pod(s: &str) -> Result<String, String> {
    let Some((kind, name)) = s.split_once('/') else {
        return Ok(s.to_string());
    };
    if name.is_empty() {
        return Err(format!("missing name in {s:?} (use pod/NAME)"));
    }
    match kind.parse::<Kind>()? {
        Kind::Pod => Ok(name.to_string()),
        other => Err(format!("only pods have containers, not a {other} ({s:?})")),
    }
}

/// `60s`, `2m`, `1h`, `500ms`, `1h30m` (Go's form, as kubectl and kubeadm take it), or plain
/// seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let invalid = || format!("invalid duration {s:?}: expected e.g. 60s, 2m, 1h30m, 500ms");
    if s.is_empty() {
        return Err(invalid());
    }
    if let Ok(seconds) = s.parse::<f64>() {
        return seconds_to_duration(s, seconds);
    }
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let (number, after) = split_at_first(rest, |c| !c.is_ascii_digit() && c != '.');
        let (unit, after) = split_at_first(after, |c| c.is_ascii_digit() || c == '.');
        let value: f64 = number.parse().map_err(|_| invalid())?;
        total += value * unit_seconds(s, unit)?;
        rest = after;
    }
    seconds_to_duration(s, total)
}

/// `text` split before the first character matching `at` (all of it when none does).
fn split_at_first(text: &str, at: impl Fn(char) -> bool) -> (&str, &str) {
    text.split_at(text.find(at).unwrap_or(text.len()))
}

/// Seconds in one `unit` of a duration.
fn unit_seconds(whole: &str, unit: &str) -> Result<f64, String> {
    match unit {
        "ms" => Ok(0.001),
        "s" => Ok(1.0),
        "m" => Ok(60.0),
        "h" => Ok(3600.0),
        "" => Err(format!(
            "invalid duration {whole:?}: every number needs a unit (ms, s, m, h)"
        )),
        _ => Err(format!(
            "invalid duration {whole:?}: unknown unit {unit:?} (ms, s, m, h)"
        )),
    }
}

fn seconds_to_duration(whole: &str, seconds: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("invalid duration {whole:?}: {e}"))
}

/// `key=value`, for `--label`.
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("invalid label {s:?}: expected key=value")),
    }
}

// Arguments of the commands added for daily work; their logic is in `commands`.

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print the client version only (no call to kube9d).
    #[arg(long)]
    pub client: bool,
}

#[derive(Debug, Args)]
pub struct CordonArgs {
    /// The node.
    pub node: String,
}

#[derive(Debug, Args)]
pub struct DrainArgs {
    /// The node.
    pub node: String,
    /// How long to wait for every pod to run elsewhere (or wait Pending for room); 0 waits
    /// for ever. On timeout kube9ctl exits non-zero; the node stays cordoned.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// Accepted for kubectl's habits: Kube-9 has no DaemonSets, so there are none to ignore.
    #[arg(long)]
    pub ignore_daemonsets: bool,
}

#[derive(Debug, Args)]
pub struct MetadataArgs {
    /// KIND/NAME (or KIND NAME) then KEY=VALUE to set and KEY- to remove: pods, nodes,
    /// namespaces, configmaps, secrets.
    #[arg(required = true, num_args = 1.., value_name = "KIND/NAME KEY=VALUE|KEY-")]
    pub args: Vec<String>,
    /// Allow changing the value of a key that already has one.
    #[arg(long)]
    pub overwrite: bool,
}

/// The shells `completion` writes for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// bash, zsh or fish. E.g. `source <(kube9ctl completion bash)`.
    pub shell: Shell,
}

#[derive(Debug, Subcommand)]
pub enum TopCommand {
    /// Usage of each node: the sum of what its pods use.
    #[command(visible_aliases = ["node", "no"])]
    Nodes,
    /// Usage of each running pod of the namespace.
    #[command(visible_aliases = ["pod", "po"])]
    Pods {
        /// Every namespace, with a NAMESPACE column.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
    },
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// What to wait on: KIND/NAME... (pod/web node/n1), or KIND [NAME...] (with -l: every
    /// object of the kind that matches).
    #[arg(required = true, value_name = "KIND/NAME... | KIND [NAME...]")]
    pub resources: Vec<String>,
    /// The condition: condition=Ready (condition=NAME[=VALUE]), delete, or
    /// jsonpath='{.status.phase}'=Running (jsonpath=PATH alone: until the field exists).
    #[arg(long = "for", value_name = "CONDITION", value_parser = parse_condition)]
    pub condition: Condition,
    /// Label selector: wait on every object of the kind that matches.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Wait on objects of every namespace (with -l).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// How long to wait: 30s, 5m, 1h (0: check once).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// `get`'s watch flags.
#[derive(Debug, Clone, Default, Args)]
pub struct WatchFlags {
    /// After listing, watch for changes and print each changed object (pods, nodes, events).
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Watch for changes without printing the list first.
    #[arg(long)]
    pub watch_only: bool,
    /// -o json/yaml under --watch: print each change as {"type": ADDED|MODIFIED|DELETED,
    /// "object": ...}.
    #[arg(long)]
    pub output_watch_events: bool,
}

/// What `--for` waits for.
#[derive(Debug, Clone)]
pub enum Condition {
    /// `condition=NAME[=VALUE]`: `status.conditions[type=NAME].status` is VALUE (default True).
    Condition { name: String, value: String },
    /// `delete`: the object is gone.
    Delete,
    /// `jsonpath=PATH[=VALUE]`: the field has that value (or, without one, exists).
    JsonPath {
        path: Template,
        value: Option<String>,
    },
}

pub fn parse_condition(s: &str) -> Result<Condition, String> {
    if s.eq_ignore_ascii_case("delete") {
        return Ok(Condition::Delete);
    }
    if let Some(rest) = s.strip_prefix("condition=") {
        let (name, value) = rest.split_once('=').unwrap_or((rest, "True"));
        if name.is_empty() {
            return Err("--for=condition= needs a condition name, e.g. condition=Ready".into());
        }
        return Ok(Condition::Condition {
            name: name.to_string(),
            value: value.to_string(),
        });
    }
    if let Some(rest) = s.strip_prefix("jsonpath=") {
        // `{.status.phase}=Running`, or kubectl's relaxed `.status.phase=Running`.
        let (path, value) = if rest.starts_with('{') {
            match rest.find('}') {
                Some(end) => {
                    let (path, after) = rest.split_at(end + 1);
                    match after.strip_prefix('=') {
                        Some(value) => (path, Some(value)),
                        None if after.is_empty() => (path, None),
                        None => return Err(format!("--for: unexpected {after:?} after {path}")),
                    }
                }
                None => return Err(format!("--for: unclosed {{ in {rest:?}")),
            }
        } else {
            match rest.rsplit_once('=') {
                Some((path, value)) => (path, Some(value)),
                None => (rest, None),
            }
        };
        let path = Template::relaxed(path).map_err(|e| format!("--for: {e}"))?;
        let value = value.map(|v| v.trim_matches(|c| c == '\'' || c == '"').to_string());
        return Ok(Condition::JsonPath { path, value });
    }
    Err(format!(
        "--for: unrecognized condition {s:?} (condition=NAME[=VALUE], delete or jsonpath=PATH[=VALUE])"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("kube9ctl").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn fails(args: &[&str]) -> String {
        Cli::try_parse_from(std::iter::once("kube9ctl").chain(args.iter().copied()))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = parse(&["get", "pods", "-o", "wide", "--server", "10.0.0.1:7209"]);
        assert_eq!(cli.output, Some(Output::Format(Format::Wide)));
        assert_eq!(cli.server.as_deref(), Some("10.0.0.1:7209"));
        let cli = parse(&["-o", "json", "get", "no"]);
        assert_eq!(cli.output, Some(Output::Format(Format::Json)));
        assert!(fails(&["get", "pods", "-o", "xml"]).contains("invalid value 'xml'"));
    }

    #[test]
    fn output_takes_templates_and_custom_columns_as_kubectl_spells_them() {
        for args in [
            &["get", "pods", "-o", "jsonpath={.items[*].metadata.name}"][..],
            &["get", "pods", "-o=jsonpath={.items[*].metadata.name}"],
            &["get", "pods", "--output=jsonpath={.items[*].metadata.name}"],
        ] {
            let Some(Output::JsonPath(t)) = parse(args).output else {
                panic!("{args:?}")
            };
            assert_eq!(t.source(), "{.items[*].metadata.name}");
        }
        let Some(Output::JsonPathAsJson(_)) =
            parse(&["get", "pods", "-o", "jsonpath-as-json={.items}"]).output
        else {
            panic!()
        };
        let Some(Output::CustomColumns(columns)) = parse(&[
            "get",
            "pods",
            "-o",
            "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName",
        ])
        .output
        else {
            panic!()
        };
        let headers: Vec<&str> = columns.iter().map(|c| c.header.as_str()).collect();
        assert_eq!(headers, ["NAME", "NODE"]);
        assert_eq!(
            parse(&["get", "pods", "-o", "custom-columns-file=cols.txt"]).output,
            Some(Output::CustomColumnsFile("cols.txt".into()))
        );
        let e = fails(&["get", "pods", "-o", "jsonpath={.items[*]"]);
        assert!(
            e.contains("error parsing jsonpath") && e.contains("unclosed action"),
            "{e}"
        );
        assert!(fails(&["get", "pods", "-o", "jsonpath"]).contains("no template given"));
        assert!(fails(&["get", "pods", "-o", "jsonpath="]).contains("no template given"));
        let e = fails(&["get", "pods", "-o", "custom-columns=NAME"]);
        assert!(e.contains("expected <header>:<json-path-expr>"), "{e}");
        assert!(fails(&["get", "pods", "-o", "go-template={{.x}}"]).contains("unknown output"));
    }

    #[test]
    fn get_takes_table_flags() {
        let Command::Get(get) = parse(&[
            "get",
            "pods",
            "--no-headers",
            "--show-labels",
            "-L",
            "app,tier",
            "--label-columns",
            "env",
            "--sort-by",
            ".spec.nodeName",
        ])
        .command
        else {
            panic!()
        };
        assert!(get.no_headers && get.show_labels);
        assert_eq!(get.label_columns, ["app", "tier", "env"]);
        assert_eq!(get.sort_by.unwrap().source(), "{.spec.nodeName}");
        let Command::Get(get) = parse(&["get", "pods", "--sort-by={.metadata.name}"]).command
        else {
            panic!()
        };
        assert_eq!(get.sort_by.unwrap().source(), "{.metadata.name}");
        assert!(fails(&["get", "pods", "--sort-by", "{.a"]).contains("--sort-by"));
    }

    fn selection(args: &[&str]) -> Result<Selection, String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        parse_selection(&args)
    }

    fn kinds(kinds: &[Kind], names: &[&str], several: bool) -> Selection {
        Selection::Kinds {
            kinds: kinds.to_vec(),
            names: names.iter().map(|n| n.to_string()).collect(),
            several,
        }
    }

    #[test]
    fn selections_are_kinds_and_names_or_kind_slash_names() {
        assert_eq!(
            selection(&["po", "web"]),
            Ok(kinds(&[Kind::Pod], &["web"], false))
        );
        assert_eq!(
            selection(&["po,no"]),
            Ok(kinds(&[Kind::Pod, Kind::Node], &[], true))
        );
        assert_eq!(
            selection(&["pods,configmaps,pods"]),
            Ok(kinds(&[Kind::Pod, Kind::ConfigMap], &[], true))
        );
        assert_eq!(selection(&["all"]), Ok(kinds(ALL, &[], true)));
        assert_eq!(
            selection(&["all,no"]),
            Ok(kinds(&[Kind::Pod, Kind::Node], &[], true))
        );
        assert_eq!(
            selection(&["pod/a", "no/n1", "pods/b"]),
            Ok(Selection::Objects(vec![
                (Kind::Pod, "a".into()),
                (Kind::Node, "n1".into()),
                (Kind::Pod, "b".into())
            ]))
        );
        let e = selection(&["pod", "pod/a"]).unwrap_err();
        assert!(
            e.contains("there is no need to specify a resource type as a separate argument"),
            "{e}"
        );
        assert!(selection(&["pod/a", "b"]).is_err());
        assert!(selection(&["pod/"])
            .unwrap_err()
            .contains("single resource and name"));
        assert!(selection(&["po,no/a"])
            .unwrap_err()
            .contains("single resource and name"));
        assert!(selection(&["deployments"])
            .unwrap_err()
            .contains("doesn't have a resource type"));
        assert!(selection(&["svc/x"])
            .unwrap_err()
            .contains("doesn't have a resource type"));
    }

    #[test]
    fn get_takes_aliases_names_and_filters() {
        let Command::Get(get) = parse(&["get", "po", "web"]).command else {
            panic!()
        };
        assert_eq!(get.resources, ["po", "web"]);
        let Command::Get(get) = parse(&["get", "pods", "a", "b"]).command else {
            panic!()
        };
        assert_eq!(get.resources, ["pods", "a", "b"]);
        let Command::Get(get) = parse(&["get", "pods", "-l", "app=web", "--node", "n1"]).command
        else {
            panic!()
        };
        assert_eq!(get.selector.as_deref(), Some("app=web"));
        assert_eq!(get.node.as_deref(), Some("n1"));
        for (word, kind) in [
            ("nodes", Kind::Node),
            ("no", Kind::Node),
            ("ev", Kind::Event),
            ("events", Kind::Event),
        ] {
            let Command::Get(get) = parse(&["get", word]).command else {
                panic!()
            };
            assert_eq!(
                parse_selection(&get.resources),
                Ok(kinds(&[kind], &[], false))
            );
        }
        let Command::Get(get) = parse(&["get", "node/n1"]).command else {
            panic!()
        };
        assert_eq!(
            parse_selection(&get.resources),
            Ok(Selection::Objects(vec![(Kind::Node, "n1".into())]))
        );
        assert!(fails(&["get"]).contains("required"));
    }

    #[test]
    fn namespaces_and_the_new_kinds_parse() {
        let cli = parse(&["get", "pods", "-n", "prod"]);
        assert_eq!(cli.namespace.as_deref(), Some("prod"));
        let cli = parse(&["--namespace", "prod", "logs", "web"]);
        assert_eq!(cli.namespace.as_deref(), Some("prod"));
        let Command::Get(get) = parse(&["get", "pods", "-A"]).command else {
            panic!()
        };
        assert!(get.all_namespaces);
        let Command::Get(get) = parse(&["get", "events", "--all-namespaces"]).command else {
            panic!()
        };
        assert!(get.all_namespaces && get.resources == ["events"]);
        for (word, kind) in [
            ("namespaces", Kind::Namespace),
            ("namespace", Kind::Namespace),
            ("ns", Kind::Namespace),
            ("configmaps", Kind::ConfigMap),
            ("configmap", Kind::ConfigMap),
            ("cm", Kind::ConfigMap),
            ("secrets", Kind::Secret),
            ("secret", Kind::Secret),
        ] {
            let Command::Get(get) = parse(&["get", word]).command else {
                panic!()
            };
            assert_eq!(
                parse_selection(&get.resources),
                Ok(kinds(&[kind], &[], false)),
                "{word}"
            );
        }
        let Command::Describe(d) = parse(&["describe", "cm/game-demo"]).command else {
            panic!()
        };
        assert_eq!(d.resource.kind, Kind::ConfigMap);
        assert_eq!(d.resource.name.as_deref(), Some("game-demo"));
        assert!(Kind::Pod.is_namespaced() && Kind::Secret.is_namespaced());
        assert!(!Kind::Node.is_namespaced() && !Kind::Namespace.is_namespaced());
        assert_eq!(Kind::ConfigMap.noun(), "configmap");
    }

    #[test]
    fn create_takes_namespaces_config_maps_and_generic_secrets() {
        let Command::Create(CreateCommand::Namespace(ns)) =
            parse(&["create", "namespace", "prod"]).command
        else {
            panic!()
        };
        assert_eq!(ns.name, "prod");
        let Command::Create(CreateCommand::Namespace(_)) = parse(&["create", "ns", "x"]).command
        else {
            panic!()
        };
        let Command::Create(CreateCommand::ConfigMap(cm)) = parse(&[
            "create",
            "configmap",
            "game",
            "--from-literal=lives=3",
            "--from-literal",
            "mode=easy",
            "--from-file=app=conf/app.properties",
            "-n",
            "prod",
        ])
        .command
        else {
            panic!()
        };
        assert_eq!(cm.name, "game");
        assert_eq!(cm.sources.literals, ["lives=3", "mode=easy"]);
        assert_eq!(cm.sources.files, ["app=conf/app.properties"]);
        let Command::Create(CreateCommand::ConfigMap(_)) = parse(&["create", "cm", "x"]).command
        else {
            panic!()
        };
        let Command::Create(CreateCommand::Secret(CreateSecretCommand::Generic(s))) = parse(&[
            "create",
            "secret",
            "generic",
            "db",
            "--from-literal=password=x",
            "--type=kubernetes.io/basic-auth",
        ])
        .command
        else {
            panic!()
        };
        assert_eq!(s.name, "db");
        assert_eq!(s.secret_type.as_deref(), Some("kubernetes.io/basic-auth"));
        assert!(fails(&["create", "secret", "db"]).contains("unrecognized subcommand"));
    }

    #[test]
    fn snapshot_save_takes_a_file() {
        let Command::Snapshot(SnapshotCommand::Save { file }) =
            parse(&["snapshot", "save", "backup.db"]).command
        else {
            panic!()
        };
        assert_eq!(file, std::path::Path::new("backup.db"));
        assert!(fails(&["snapshot", "save"]).contains("<FILE>"));
    }

    #[test]
    fn apply_needs_a_file() {
        let Command::Apply(apply) = parse(&["apply", "-f", "-", "--dry-run"]).command else {
            panic!()
        };
        assert_eq!(apply.files, ["-"]);
        assert_eq!(apply.dry_run, DryRun::Server);
        let Command::Apply(apply) = parse(&["apply", "-f", "-", "--dry-run=client"]).command else {
            panic!()
        };
        assert_eq!(apply.dry_run, DryRun::Client);
        assert!(fails(&["apply"]).contains("--filename"));
    }

    #[test]
    fn create_node_takes_cpu_and_labels() {
        let Command::Create(CreateCommand::Node(node)) = parse(&[
            "create", "node", "n4", "--cpu", "2", "--label", "zone=a", "-l", "disk=ssd",
        ])
        .command
        else {
            panic!()
        };
        assert_eq!(node.name, "n4");
        assert_eq!(node.cpu, "2");
        assert_eq!(
            node.labels,
            [("zone".into(), "a".into()), ("disk".into(), "ssd".into())]
        );
        assert!(
            fails(&["create", "node", "n4", "--cpu", "1", "--label", "oops"]).contains("key=value")
        );
    }

    #[test]
    fn delete_waits_by_default() {
        let Command::Delete(d) = parse(&["delete", "pod", "a", "b"]).command else {
            panic!()
        };
        assert_eq!(d.resources, ["pod", "a", "b"]);
        assert!(d.wait);
        assert_eq!(d.timeout, Duration::from_secs(60));
        let Command::Delete(d) = parse(&[
            "delete",
            "node",
            "n1",
            "--wait=false",
            "--timeout",
            "5s",
            "--ignore-not-found",
        ])
        .command
        else {
            panic!()
        };
        assert!(!d.wait && d.ignore_not_found);
        assert_eq!(d.timeout, Duration::from_secs(5));
        let Command::Delete(d) = parse(&["delete", "-f", "pods.yaml"]).command else {
            panic!()
        };
        assert_eq!(d.file.as_deref(), Some("pods.yaml"));
        assert!(fails(&["delete"]).contains("required"));
    }

    #[test]
    fn logs_takes_container_and_tail() {
        let Command::Logs(l) = parse(&["logs", "web", "-c", "nginx", "--tail", "20"]).command
        else {
            panic!()
        };
        assert_eq!(
            (l.pod.as_deref(), l.container.as_deref(), l.tail),
            (Some("web"), Some("nginx"), Some(20))
        );
        let Command::Logs(l) = parse(&["logs", "pod/web"]).command else {
            panic!()
        };
        assert_eq!(l.pod.as_deref(), Some("web"));
        let Command::Logs(l) = parse(&["logs", "-l", "app=web", "--prefix"]).command else {
            panic!()
        };
        assert_eq!(
            (l.pod, l.selector.as_deref(), l.prefix),
            (None, Some("app=web"), true)
        );
        assert!(fails(&["logs"]).contains("required"));
        let Command::Exec(e) = parse(&["exec", "po/web", "--", "ls"]).command else {
            panic!()
        };
        assert_eq!(e.pod, "web");
        assert!(fails(&["logs", "node/n1"]).contains("only pods"));
        assert!(fails(&["logs", "pod/"]).contains("missing name"));
    }

    #[test]
    fn failure_modes_parse() {
        assert_eq!("heartbeat".parse(), Ok(Fault::Heartbeat));
        assert_eq!("crash".parse(), Ok(Fault::Crash));
        assert_eq!("partition".parse(), Ok(Fault::Partition));
        assert_eq!(
            "component=kubelet".parse(),
            Ok(Fault::Component("kubelet".into()))
        );
        assert!("component=".parse::<Fault>().is_err());
        assert!("explode"
            .parse::<Fault>()
            .unwrap_err()
            .contains("unknown failure mode"));
        assert_eq!(
            Fault::Component("kube-proxy".into()).to_wire(),
            (
                kube9_proto::pb::FailureMode::Component,
                "kube-proxy".to_string()
            )
        );
        let Command::Node(NodeCommand::Fail { name, mode }) =
            parse(&["node", "fail", "n1", "--mode", "component=kubelet"]).command
        else {
            panic!()
        };
        assert_eq!(
            (name.as_str(), mode.to_string().as_str()),
            ("n1", "component=kubelet")
        );
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
    }

    #[test]
    fn the_server_comes_from_the_flag_or_the_environment_or_the_config() {
        // The variables are read by `Connection::from_cli`, not clap: the flags alone here.
        assert_eq!(parse(&["version"]).server, None);
        let cli = parse(&["get", "pods", "--context", "lab", "--kubeconfig", "/tmp/c"]);
        assert_eq!(cli.context.as_deref(), Some("lab"));
        assert_eq!(cli.config.as_deref(), Some(std::path::Path::new("/tmp/c")));
        let cli = parse(&["--config", "/tmp/d", "config", "view"]);
        assert_eq!(cli.config.as_deref(), Some(std::path::Path::new("/tmp/d")));
    }

    #[test]
    fn token_create_defaults_to_a_node_token_that_never_expires() {
        let Command::Token(TokenCommand::Create(t)) = parse(&["token", "create"]).command else {
            panic!()
        };
        assert_eq!(t.role, kube9_proto::client::Role::Node);
        assert_eq!(t.lifetime.ttl, Duration::ZERO);
        assert_eq!(t.lifetime.description, "");
        assert!(!t.print_join_command);
        let Command::Token(TokenCommand::Create(t)) = parse(&[
            "token",
            "create",
            "--role",
            "viewer",
            "--ttl",
            "24h",
            "--description",
            "ci reader",
            "--print-join-command",
        ])
        .command
        else {
            panic!()
        };
        assert_eq!(t.role, kube9_proto::client::Role::Viewer);
        assert_eq!(t.lifetime.ttl, Duration::from_secs(86_400));
        assert_eq!(t.lifetime.description, "ci reader");
        assert!(t.print_join_command);
        assert!(fails(&["token", "create", "--role", "root"]).contains("node, viewer, admin"));
        assert!(fails(&["token", "create", "--ttl", "soon"]).contains("invalid duration"));
    }

    #[test]
    fn token_delete_and_join_command_parse() {
        let Command::Token(TokenCommand::Delete { ids }) =
            parse(&["token", "delete", "abcdef", "ghijkl.00"]).command
        else {
            panic!()
        };
        assert_eq!(ids, ["abcdef", "ghijkl.00"]);
        assert!(fails(&["token", "delete"]).contains("required"));
        let Command::Token(TokenCommand::JoinCommand(l)) =
            parse(&["token", "join-command", "--ttl", "30m"]).command
        else {
            panic!()
        };
        assert_eq!(l.ttl, Duration::from_secs(1800));
        let Command::Token(TokenCommand::List) = parse(&["token", "list", "-o", "yaml"]).command
        else {
            panic!()
        };
    }

    #[test]
    fn ttls_are_whole_durations_and_zero_is_never() {
        assert_eq!(parse_ttl("0"), Ok(Duration::ZERO));
        assert_eq!(parse_ttl("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_ttl("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_ttl("24h0m0s"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_ttl("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert!(parse_ttl("1500ms").unwrap_err().contains("whole seconds"));
        assert!(parse_ttl("-1h").is_err());
        assert!(parse_ttl("7d").unwrap_err().contains("unknown unit \"d\""));
        assert!(parse_ttl("1h30").unwrap_err().contains("needs a unit"));
        assert!(parse_ttl("").is_err());
        assert!(parse_ttl("h").is_err());
    }

    #[test]
    fn config_commands_parse() {
        let Command::Config(ConfigCommand::View { raw }) =
            parse(&["config", "view", "--raw"]).command
        else {
            panic!()
        };
        assert!(raw);
        let Command::Config(ConfigCommand::UseContext { name }) =
            parse(&["config", "use-context", "lab"]).command
        else {
            panic!()
        };
        assert_eq!(name, "lab");
        let Command::Config(ConfigCommand::SetContext {
            name,
            current,
            namespace,
            ..
        }) = parse(&["config", "set-context", "--current", "--namespace", "team"]).command
        else {
            panic!()
        };
        assert_eq!(
            (name, current, namespace.as_deref()),
            (None, true, Some("team"))
        );
        let Command::Config(ConfigCommand::SetContext { namespace, .. }) =
            parse(&["config", "set-context", "--current", "-n", "team"]).command
        else {
            panic!()
        };
        assert_eq!(namespace.as_deref(), Some("team"));
        let Command::Config(ConfigCommand::SetContext {
            name,
            cluster,
            user,
            ..
        }) = parse(&[
            "config",
            "set-context",
            "lab",
            "--cluster",
            "c",
            "--user",
            "u",
        ])
        .command
        else {
            panic!()
        };
        assert_eq!(
            (name.as_deref(), cluster.as_deref(), user.as_deref()),
            (Some("lab"), Some("c"), Some("u"))
        );
        assert!(
            fails(&["config", "set-context", "lab", "--current"]).contains("cannot be used with")
        );
        assert!(fails(&["config", "set-context", "--namespace", "x"]).contains("required"));
    }
}
