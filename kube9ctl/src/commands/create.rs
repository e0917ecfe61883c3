//! `kube9ctl create node NAME --cpu QTY [--label k=v]...`,
//! `kube9ctl create namespace NAME`,
//! `kube9ctl create configmap NAME [--from-literal=K=V]... [--from-file=[K=]PATH]...` and
//! `kube9ctl create secret generic NAME [--from-literal=K=V]... [--from-file=[K=]PATH]...
//! [--type=T]`, as kubectl has them.
//!
//! Namespaces, config maps and secrets are sent in an `Apply` (config maps and secrets in the
//! `-n` namespace); like `kubectl create`, an object that already exists is an error rather than
//! an update. A secret's values are never printed: not in errors, not with `-o`.

use crate::cli::{
    CreateCommand, CreateConfigMapArgs, CreateNamespaceArgs, CreateNodeArgs, CreateSecretArgs,
    CreateSecretCommand, DataSources, Format, Kind,
};
use crate::client::Client;
use crate::commands::apply::result_line;
use crate::commands::get::fetch_one;
use crate::commands::node::print_node;
use crate::commands::Context;
use crate::error::{self, ServerError};
use crate::output::emit;
use crate::output::listing::{encode, Objects};
use crate::output::objects::{ConfigMapObject, NamespaceObject};
use anyhow::Context as _;
use kube9_proto::pb;
use kube9_proto::quantity::{parse_cpu, parse_memory};
use kube9_proto::validate::{
    validate_config_map, validate_name, validate_node_spec, validate_secret, ValidationError,
};
use std::path::Path;

pub async fn run(ctx: &Context, command: CreateCommand) -> anyhow::Result<()> {
    match command {
        CreateCommand::Node(args) => create_node(ctx, args).await,
        CreateCommand::Namespace(args) => create_namespace(ctx, args).await,
        CreateCommand::ConfigMap(args) => create_config_map(ctx, args).await,
        CreateCommand::Secret(CreateSecretCommand::Generic(args)) => create_secret(ctx, args).await,
    }
}

async fn create_node(ctx: &Context, args: CreateNodeArgs) -> anyhow::Result<()> {
    let spec = node_spec(args)?;
    let mut cluster = ctx.connect().await?;
    let request = pb::CreateNodeRequest {
        name: spec.name.clone(),
        cpu_millis: spec.cpu_millis,
        labels: spec.labels,
        memory_bytes: spec.memory_bytes,
    };
    let response = cluster.client.create_node(request).await;
    let node = cluster.check(response)?;
    print_node(ctx, &node, "created")
}

/// The node the flags describe, validated as kube9d will.
pub fn node_spec(args: CreateNodeArgs) -> anyhow::Result<pb::NodeSpec> {
    let cpu_millis = parse_cpu(&args.cpu).context("--cpu")?;
    let memory_bytes = match &args.memory {
        Some(memory) => parse_memory(memory).context("--memory")?,
        None => 0,
    };
    let spec = pb::NodeSpec {
        name: args.name,
        cpu_millis,
        labels: args.labels.into_iter().collect(),
        memory_bytes,
    };
    validate_node_spec(&spec).map_err(|e| {
        // Point at the flag rather than the manifest field.
        let flag = match e.field.as_str() {
            "metadata.name" => "NAME".to_string(),
            "spec.capacity.cpu" => "--cpu".to_string(),
            other if other.starts_with("metadata.labels") => "--label".to_string(),
            other => other.to_string(),
        };
        anyhow::anyhow!("{flag}: {}", e.message)
    })?;
    Ok(spec)
}

async fn create_namespace(ctx: &Context, args: CreateNamespaceArgs) -> anyhow::Result<()> {
    validate_name("namespace", &args.name).map_err(|e| anyhow::anyhow!("NAME: {}", e.message))?;
    let namespace = pb::Namespace {
        name: args.name,
        ..Default::default()
    };
    let mut cluster = ctx.connect().await?;
    refuse_existing(&mut cluster, Kind::Namespace, "", &namespace.name).await?;
    let request = pb::ApplyRequest {
        namespaces: vec![namespace.clone()],
        dry_run: args.dry_run,
        ..Default::default()
    };
    let results = apply(&mut cluster, request).await?;
    let text = match ctx.format() {
        Format::Json | Format::Yaml => {
            let namespace = if args.dry_run {
                namespace
            } else {
                match fetch_one(&mut cluster, Kind::Namespace, "", &namespace.name, None).await? {
                    Objects::Namespaces(mut v) if !v.is_empty() => v.remove(0),
                    _ => namespace,
                }
            };
            encode(&NamespaceObject::new(&namespace), ctx.format())?
        }
        format => result_lines(&results, format, args.dry_run),
    };
    emit(&text)
}

async fn create_config_map(ctx: &Context, args: CreateConfigMapArgs) -> anyhow::Result<()> {
    let config_map = config_map(&args.name, ctx.ns(), &args.sources)?;
    let mut cluster = ctx.connect().await?;
    refuse_existing(&mut cluster, Kind::ConfigMap, ctx.ns(), &config_map.name).await?;
    let request = pb::ApplyRequest {
        config_maps: vec![config_map.clone()],
        dry_run: args.dry_run,
        ..Default::default()
    };
    let results = apply(&mut cluster, request).await?;
    let text = match ctx.format() {
        Format::Json | Format::Yaml => {
            let config_map = if args.dry_run {
                config_map
            } else {
                let name = &config_map.name;
                match fetch_one(&mut cluster, Kind::ConfigMap, ctx.ns(), name, None).await? {
                    Objects::ConfigMaps(mut v) if !v.is_empty() => v.remove(0),
                    _ => config_map,
                }
            };
            encode(&ConfigMapObject::new(&config_map), ctx.format())?
        }
        format => result_lines(&results, format, args.dry_run),
    };
    emit(&text)
}

async fn create_secret(ctx: &Context, args: CreateSecretArgs) -> anyhow::Result<()> {
    if matches!(ctx.format(), Format::Json | Format::Yaml) {
        anyhow::bail!(
            "create secret does not print the secret as JSON or YAML: that would show its \
             values (use -o name, or `kube9ctl get secret {} -o yaml` to see them)",
            args.name
        );
    }
    let secret = secret(
        &args.name,
        ctx.ns(),
        args.secret_type.as_deref(),
        &args.sources,
    )?;
    let mut cluster = ctx.connect().await?;
    refuse_existing(&mut cluster, Kind::Secret, ctx.ns(), &secret.name).await?;
    let request = pb::ApplyRequest {
        secrets: vec![secret],
        dry_run: args.dry_run,
        ..Default::default()
    };
    let results = apply(&mut cluster, request).await?;
    emit(&result_lines(&results, ctx.format(), args.dry_run))
}

/// `kubectl create` fails on an object that exists (an apply would update it):
/// `Error from server (AlreadyExists): configmaps "x" already exists`.
async fn refuse_existing(
    cluster: &mut Client,
    kind: Kind,
    namespace: &str,
    name: &str,
) -> anyhow::Result<()> {
    match fetch_one(cluster, kind, namespace, name, None).await {
        Ok(_) => Err(ServerError {
            code: tonic::Code::AlreadyExists,
            message: format!("{}s {name:?} already exists", kind.noun()),
        }
        .into()),
        Err(e) if error::is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn apply(
    cluster: &mut Client,
    request: pb::ApplyRequest,
) -> anyhow::Result<Vec<pb::ApplyResult>> {
    crate::client::check_request_size("the object", &request)?;
    let response = cluster.client.apply(request).await;
    Ok(cluster.check(response)?.results)
}

/// `configmap/NAME created` lines, as `apply` prints them.
fn result_lines(results: &[pb::ApplyResult], format: Format, dry_run: bool) -> String {
    results
        .iter()
        .map(|r| format!("{}\n", result_line(r, format, dry_run)))
        .collect()
}

/// The config map the flags describe: literals and UTF-8 files in `data`, other files in
/// `binaryData`.
pub fn config_map(
    name: &str,
    namespace: &str,
    sources: &DataSources,
) -> anyhow::Result<pb::ConfigMap> {
    let mut config_map = pb::ConfigMap {
        name: name.into(),
        namespace: namespace.into(),
        ..Default::default()
    };
    for (key, value) in read_sources(sources, "ConfigMap")? {
        for (field, taken) in [
            ("Data", config_map.data.contains_key(&key)),
            ("BinaryData", config_map.binary_data.contains_key(&key)),
        ] {
            if taken {
                // kubectl's words.
                anyhow::bail!(
                    "cannot add key {key:?}, another key by that name already exists in \
                     {field} for ConfigMap {name:?}"
                );
            }
        }
        match String::from_utf8(value) {
            Ok(text) => _ = config_map.data.insert(key, text),
            Err(bytes) => _ = config_map.binary_data.insert(key, bytes.into_bytes()),
        }
    }
    validate_config_map(&config_map).map_err(flag_error)?;
    Ok(config_map)
}

/// The secret the flags describe (type `Opaque` unless given).
pub fn secret(
    name: &str,
    namespace: &str,
    secret_type: Option<&str>,
    sources: &DataSources,
) -> anyhow::Result<pb::Secret> {
    let mut secret = pb::Secret {
        name: name.into(),
        namespace: namespace.into(),
        r#type: secret_type
            .filter(|t| !t.is_empty())
            .unwrap_or("Opaque")
            .into(),
        ..Default::default()
    };
    for (key, value) in read_sources(sources, "Secret")? {
        if secret.data.contains_key(&key) {
            // kubectl's words.
            anyhow::bail!("cannot add key {key}, another key by that name already exists");
        }
        secret.data.insert(key, value);
    }
    // Its messages name keys, never values.
    validate_secret(&secret).map_err(flag_error)?;
    Ok(secret)
}

/// A check kube9d would fail, pointing at the flag rather than the manifest field.
fn flag_error(e: ValidationError) -> anyhow::Error {
    match e.field.as_str() {
        "metadata.name" => anyhow::anyhow!("NAME: {}", e.message),
        "metadata.namespace" => anyhow::anyhow!("-n/--namespace: {}", e.message),
        field => anyhow::anyhow!("{field}: {}", e.message),
    }
}

/// Every `(key, value)` of `--from-file` and then `--from-literal` (kubectl's order), keys
/// checked; duplicates are left to the caller. `kind` (ConfigMap, Secret) is for messages.
///
/// No error quotes a literal: its value may be a secret.
pub fn read_sources(sources: &DataSources, kind: &str) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut entries = Vec::new();
    for source in &sources.files {
        let (key, path) = parse_file_source(source)?;
        let metadata = std::fs::metadata(&path).with_context(|| format!("error reading {path}"))?;
        if metadata.is_dir() {
            if key.is_some() {
                anyhow::bail!("cannot give a key name for a directory path");
            }
            let mut files: Vec<_> = std::fs::read_dir(&path)
                .with_context(|| format!("error listing files in {path}"))?
                .filter_map(Result::ok)
                .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
                .map(|entry| entry.path())
                .collect();
            files.sort();
            for file in files {
                let key = file_key(&file);
                let value = std::fs::read(&file)
                    .with_context(|| format!("error reading {}", file.display()))?;
                entries.push((check_key(key, kind)?, value));
            }
        } else {
            let key = key.unwrap_or_else(|| file_key(Path::new(&path)));
            let value = std::fs::read(&path).with_context(|| format!("error reading {path}"))?;
            entries.push((check_key(key, kind)?, value));
        }
    }
    for (i, literal) in sources.literals.iter().enumerate() {
        let (key, value) = parse_literal_source(literal)
            .with_context(|| format!("--from-literal #{} (its value is not shown)", i + 1))?;
        entries.push((check_key(key, kind)?, value.into_bytes()));
    }
    Ok(entries)
}

/// `KEY=VALUE` (the value may hold `=`). The error never quotes the source: it may be a secret.
pub fn parse_literal_source(source: &str) -> anyhow::Result<(String, String)> {
    match source.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.into(), value.into())),
        _ => anyhow::bail!("invalid literal source, expected key=value"),
    }
}

/// `PATH` (the key is its base name) or `KEY=PATH`, with kubectl's errors.
pub fn parse_file_source(source: &str) -> anyhow::Result<(Option<String>, String)> {
    match source.matches('=').count() {
        0 => Ok((None, source.into())),
        1 if source.starts_with('=') => {
            anyhow::bail!("key name for file path {} missing", &source[1..])
        }
        1 if source.ends_with('=') => {
            anyhow::bail!(
                "file path for key name {} missing",
                &source[..source.len() - 1]
            )
        }
        1 => {
            let (key, path) = source.split_once('=').unwrap_or_default();
            Ok((Some(key.into()), path.into()))
        }
        _ => anyhow::bail!("key names or file paths cannot contain '='"),
    }
}

/// A file's key: its base name.
fn file_key(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Kubernetes' rule for config map and secret keys (`IsConfigMapKey`), with kubectl's message.
pub fn check_key(key: String, kind: &str) -> anyhow::Result<String> {
    let mut problems = Vec::new();
    if key.len() > 253 {
        problems.push("must be no more than 253 characters".to_string());
    }
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        problems.push(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. \
             'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is \
             '[-._a-zA-Z0-9]+')"
                .to_string(),
        );
    }
    match key.as_str() {
        "." => problems.push("must not be '.'".into()),
        ".." => problems.push("must not be '..'".into()),
        k if k.starts_with("..") => problems.push("must not start with '..'".into()),
        _ => {}
    }
    if problems.is_empty() {
        Ok(key)
    } else {
        anyhow::bail!(
            "{key:?} is not a valid key name for a {kind}: {}",
            problems.join(";")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn args(name: &str, cpu: &str, labels: &[(&str, &str)]) -> CreateNodeArgs {
        CreateNodeArgs {
            name: name.into(),
            cpu: cpu.into(),
            memory: None,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn flags_become_a_validated_node_spec() {
        let spec = node_spec(args("n4", "1.5", &[("zone", "a")])).unwrap();
        assert_eq!(spec.cpu_millis, 1500);
        assert_eq!(spec.labels["zone"], "a");
        assert_eq!(
            format!("{:#}", node_spec(args("n4", "-1", &[])).unwrap_err()),
            "--cpu: invalid CPU quantity \"-1\": must not be negative"
        );
        assert!(node_spec(args("N4", "1", &[]))
            .unwrap_err()
            .to_string()
            .starts_with("NAME: invalid node name"));
        assert!(node_spec(args("n4", "0", &[]))
            .unwrap_err()
            .to_string()
            .starts_with("--cpu: must be between"));
        assert!(node_spec(args("n4", "1", &[("bad key", "x")]))
            .unwrap_err()
            .to_string()
            .starts_with("--label: invalid label key \"bad key\""));
    }

    /// A directory of its own under the system's temporary directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("kube9ctl-create-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn file(&self, name: &str, content: &[u8]) -> String {
            let path = self.0.join(name);
            std::fs::write(&path, content).unwrap();
            path.display().to_string()
        }

        fn path(&self) -> String {
            self.0.display().to_string()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn sources(literals: &[&str], files: &[&str]) -> DataSources {
        DataSources {
            literals: literals.iter().map(|s| s.to_string()).collect(),
            files: files.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The full text of an error, with its causes.
    fn error_text(err: anyhow::Error) -> String {
        format!("{err:#}")
    }

    #[test]
    fn literals_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_literal_source("url=http://x/?a=b").unwrap(),
            ("url".into(), "http://x/?a=b".into())
        );
        assert_eq!(
            parse_literal_source("empty=").unwrap(),
            ("empty".into(), "".into())
        );
        for bad in ["=hunter2", "hunter2"] {
            let text = error_text(parse_literal_source(bad).unwrap_err());
            assert_eq!(text, "invalid literal source, expected key=value");
        }
    }

    #[test]
    fn file_sources_take_an_optional_key_as_kubectl_does() {
        assert_eq!(
            parse_file_source("conf/app.properties").unwrap(),
            (None, "conf/app.properties".into())
        );
        assert_eq!(
            parse_file_source("app=conf/app.properties").unwrap(),
            (Some("app".into()), "conf/app.properties".into())
        );
        assert_eq!(
            error_text(parse_file_source("=conf/x").unwrap_err()),
            "key name for file path conf/x missing"
        );
        assert_eq!(
            error_text(parse_file_source("k=").unwrap_err()),
            "file path for key name k missing"
        );
        assert_eq!(
            error_text(parse_file_source("a=b=c").unwrap_err()),
            "key names or file paths cannot contain '='"
        );
    }

    #[test]
    fn keys_follow_kubernetes_rules() {
        assert_eq!(
            check_key("game.properties".into(), "ConfigMap").unwrap(),
            "game.properties"
        );
        assert_eq!(
            check_key("KEY_name-1".into(), "Secret").unwrap(),
            "KEY_name-1"
        );
        let text = error_text(check_key("a/b".into(), "ConfigMap").unwrap_err());
        assert!(
            text.starts_with("\"a/b\" is not a valid key name for a ConfigMap: a valid config key"),
            "{text}"
        );
        assert!(error_text(check_key("..".into(), "Secret").unwrap_err()).contains("'..'"));
        assert!(error_text(check_key("..x".into(), "Secret").unwrap_err())
            .contains("must not start with '..'"));
        assert!(check_key("x".repeat(254), "Secret").is_err());
    }

    #[test]
    fn config_maps_take_literals_files_and_directories() {
        let dir = TempDir::new("cm");
        let props = dir.file("game.properties", b"lives=3\n");
        let logo = dir.file("logo.bin", &[0xff, 0xfe, 0]);
        let sub = TempDir::new("cm-dir");
        sub.file("a.txt", b"A");
        sub.file("b.txt", b"B");
        std::fs::create_dir_all(sub.0.join("nested")).unwrap();
        sub.file("nested/ignored.txt", b"no");
        let cm = config_map(
            "game-demo",
            "prod",
            &sources(
                &["mode=easy", "url=a=b"],
                &[&props, &format!("picture={logo}"), &sub.path()],
            ),
        )
        .unwrap();
        assert_eq!(
            (cm.name.as_str(), cm.namespace.as_str()),
            ("game-demo", "prod")
        );
        let mut keys: Vec<&str> = cm.data.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["a.txt", "b.txt", "game.properties", "mode", "url"]);
        assert_eq!(cm.data["game.properties"], "lives=3\n");
        assert_eq!(cm.data["url"], "a=b");
        assert_eq!(cm.binary_data["picture"], [0xff, 0xfe, 0]);
        assert!(!cm.data.contains_key("ignored.txt"));
    }

    #[test]
    fn a_key_given_twice_is_refused_with_kubectls_words() {
        let dir = TempDir::new("dup");
        let file = dir.file("mode", b"hard");
        let err = config_map("c", "default", &sources(&["mode=easy"], &[&file])).unwrap_err();
        assert_eq!(
            error_text(err),
            "cannot add key \"mode\", another key by that name already exists in Data for \
             ConfigMap \"c\""
        );
        let binary = dir.file("bin", &[0xff]);
        let err = config_map(
            "c",
            "default",
            &sources(&[], &[&binary, &format!("bin={file}")]),
        )
        .unwrap_err();
        assert!(error_text(err).contains("in BinaryData for ConfigMap \"c\""));
        let err = secret(
            "s",
            "default",
            None,
            &sources(&["password=hunter2", "password=hunter3"], &[]),
        )
        .unwrap_err();
        let text = error_text(err);
        assert_eq!(
            text,
            "cannot add key password, another key by that name already exists"
        );
        assert!(!text.contains("hunter"), "{text}");
        let err = config_map(
            "c",
            "default",
            &sources(&[], &[&format!("k={}", dir.path())]),
        )
        .unwrap_err();
        assert_eq!(
            error_text(err),
            "cannot give a key name for a directory path"
        );
    }

    #[test]
    fn secrets_keep_bytes_default_to_opaque_and_never_quote_a_literal() {
        let dir = TempDir::new("secret");
        let key = dir.file("tls.key", &[0xff, 0x00, 0x01]);
        let s = secret(
            "db",
            "prod",
            None,
            &sources(&["password=s3cr3t=x"], &[&key]),
        )
        .unwrap();
        assert_eq!(s.r#type, "Opaque");
        assert_eq!(s.namespace, "prod");
        assert_eq!(s.data["password"], b"s3cr3t=x");
        assert_eq!(s.data["tls.key"], [0xff, 0x00, 0x01]);
        let typed = secret(
            "t",
            "default",
            Some("kubernetes.io/tls"),
            &sources(&["tls.crt=c", "tls.key=k"], &[]),
        )
        .unwrap();
        assert_eq!(typed.r#type, "kubernetes.io/tls");
        let custom = secret("t", "default", Some("example.com/x"), &sources(&[], &[])).unwrap();
        assert_eq!(custom.r#type, "example.com/x");
        for bad in ["s3cr3t-value", "=s3cr3t-value"] {
            let err = secret("db", "default", None, &sources(&["ok=1", bad], &[])).unwrap_err();
            let text = error_text(err);
            assert_eq!(
                text,
                "--from-literal #2 (its value is not shown): invalid literal source, expected \
                 key=value"
            );
            assert!(!text.contains("s3cr3t"), "{text}");
        }
        let err = secret("db", "default", None, &sources(&["bad key=s3cr3t"], &[])).unwrap_err();
        let text = error_text(err);
        assert!(
            text.starts_with("\"bad key\" is not a valid key name for a Secret"),
            "{text}"
        );
        assert!(!text.contains("s3cr3t"), "{text}");
        let missing = format!("{}/nope", dir.path());
        let text =
            error_text(secret("db", "default", None, &sources(&[], &[&missing])).unwrap_err());
        assert!(
            text.starts_with(&format!("error reading {missing}")),
            "{text}"
        );
    }

    #[test]
    fn what_kube9d_would_refuse_is_refused_before_sending() {
        let err = config_map("Game_Demo", "default", &sources(&[], &[])).unwrap_err();
        assert!(
            error_text(err).starts_with("NAME: invalid configmap name \"Game_Demo\""),
            "dotted lower-case names only"
        );
        assert!(config_map("game.demo", "default", &sources(&[], &[])).is_ok());
        let err = config_map("x", "Prod", &sources(&[], &[])).unwrap_err();
        assert!(error_text(err).starts_with("-n/--namespace: "));
        let err = secret(
            "tls",
            "default",
            Some("kubernetes.io/tls"),
            &sources(&["tls.crt=s3cr3t-cert"], &[]),
        )
        .unwrap_err();
        let text = error_text(err);
        assert!(
            text.starts_with("data: a secret of type kubernetes.io/tls needs"),
            "{text}"
        );
        assert!(!text.contains("s3cr3t"), "{text}");
        let big = "x".repeat(1 << 20);
        let err = secret(
            "big",
            "default",
            None,
            &sources(&[&format!("a={big}"), "b=1"], &[]),
        )
        .unwrap_err();
        let text = error_text(err);
        assert!(
            text.starts_with("data: "),
            "{}",
            &text[..80.min(text.len())]
        );
        assert!(!text.contains("xxxx"));
    }

    #[test]
    fn results_print_like_kubectl_create() {
        let result = pb::ApplyResult {
            kind: "ConfigMap".into(),
            name: "game-demo".into(),
            action: "created".into(),
            namespace: "default".into(),
        };
        assert_eq!(
            result_lines(std::slice::from_ref(&result), Format::Table, false),
            "configmap/game-demo created\n"
        );
        assert_eq!(
            result_lines(std::slice::from_ref(&result), Format::Name, false),
            "configmap/game-demo\n"
        );
        assert_eq!(
            result_lines(&[result], Format::Table, true),
            "configmap/game-demo created (dry run)\n"
        );
    }
}
