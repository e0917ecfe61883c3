//! `kube9ctl apply -f FILE|DIR|- [--dry-run[=client|server]] [-o json|yaml|name]`: validate
//! locally, then one `Apply` RPC (none for a client dry run). `-o json|yaml` prints the applied
//! objects as kube9d stores them (as sent, for a dry run).
//!
//! Pods, config maps and secrets that name no namespace go to `-n`'s (or the default); one that
//! names another namespace than an explicit `-n` is refused, as kubectl does, and nothing is
//! applied.

use crate::cli::{ApplyArgs, DryRun, Format, Kind};
use crate::commands::{Context, Namespace};
use crate::output::emit;
use crate::output::listing::{document, AnyObject};
use crate::output::objects::{
    ConfigMapObject, NamespaceObject, NodeObject, PodObject, SecretObject,
};
use anyhow::Context as _;
use kube9_proto::manifest::{apply_request, parse_manifests_with_warnings, Object};
use kube9_proto::pb;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

pub async fn run(ctx: &Context, args: ApplyArgs) -> anyhow::Result<()> {
    let Manifests {
        mut objects,
        warnings,
    } = read_manifests(&args.files)?;
    resolve_namespaces(&mut objects, &ctx.namespace)?;
    // Like kubectl's warn mode: accepted, but the user learns what will be ignored.
    for warning in &warnings {
        eprintln!("Warning: {warning}");
    }
    if objects.is_empty() {
        anyhow::bail!("no objects passed to apply");
    }
    let request = apply_request(objects, args.dry_run == DryRun::Server);
    crate::client::check_request_size("the manifest", &request)?;
    let format = ctx.format();
    if args.dry_run == DryRun::Client {
        // Validated above, as parsed; nothing is sent.
        if matches!(format, Format::Json | Format::Yaml) {
            return emit(&document(request_documents(&request), format, true)?);
        }
        let mut out = String::new();
        for result in request_results(&request) {
            out.push_str(&result_line(&result, format, true));
            out.push('\n');
        }
        return emit(&out);
    }
    let mut cluster = ctx.connect().await?;
    let response = cluster.client.apply(request.clone()).await;
    let response = cluster.check(response)?;
    if matches!(format, Format::Json | Format::Yaml) {
        let documents = if request.dry_run {
            request_documents(&request)
        } else {
            applied_documents(&mut cluster, &response.results).await?
        };
        return emit(&document(documents, format, true)?);
    }
    let mut out = String::new();
    for result in &response.results {
        let line = match args.dry_run {
            DryRun::Server if format != Format::Name => format!(
                "{}/{} {} (server dry run)",
                result.kind.to_ascii_lowercase(),
                result.name,
                result.action
            ),
            _ => result_line(result, format, false),
        };
        out.push_str(&line);
        out.push('\n');
    }
    emit(&out)?;
    if args.wait && args.dry_run == DryRun::None {
        let pods = (response.results.iter())
            .filter(|r| r.kind == "Pod")
            .map(|r| (r.namespace.clone(), r.name.clone()))
            .collect();
        super::wait::applied_pods(&mut cluster, pods, args.timeout).await?;
    }
    Ok(())
}

/// What applying `request` would do, as far as the client knows (`--dry-run=client`).
fn request_results(request: &pb::ApplyRequest) -> Vec<pb::ApplyResult> {
    let result = |kind: &str, namespace: &str, name: &str| pb::ApplyResult {
        kind: kind.into(),
        name: name.into(),
        action: "created".into(),
        namespace: namespace.into(),
    };
    (request.nodes.iter().map(|n| result("Node", "", &n.name)))
        .chain(
            request
                .namespaces
                .iter()
                .map(|n| result("Namespace", "", &n.name)),
        )
        .chain(
            request
                .config_maps
                .iter()
                .map(|c| result("ConfigMap", &c.namespace, &c.name)),
        )
        .chain(
            request
                .secrets
                .iter()
                .map(|s| result("Secret", &s.namespace, &s.name)),
        )
        .chain(
            request
                .pods
                .iter()
                .map(|p| result("Pod", &p.namespace, &p.name)),
        )
        .collect()
}

/// The request's objects as documents (dry runs: nothing was stored to read back).
fn request_documents(request: &pb::ApplyRequest) -> Vec<AnyObject> {
    let nodes = request.nodes.iter().map(|n| {
        AnyObject::Node(NodeObject::new(&pb::Node {
            name: n.name.clone(),
            labels: n.labels.clone(),
            cpu_capacity_millis: n.cpu_millis,
            memory_capacity_bytes: n.memory_bytes,
            ..Default::default()
        }))
    });
    nodes
        .chain(
            request
                .namespaces
                .iter()
                .map(|n| AnyObject::Namespace(NamespaceObject::new(n))),
        )
        .chain(
            request
                .config_maps
                .iter()
                .map(|c| AnyObject::ConfigMap(ConfigMapObject::new(c))),
        )
        .chain(
            request
                .secrets
                .iter()
                .map(|s| AnyObject::Secret(SecretObject::new(s))),
        )
        .chain(
            request
                .pods
                .iter()
                .map(|p| AnyObject::Pod(PodObject::new(p))),
        )
        .collect()
}

/// The applied objects as kube9d stores them now.
async fn applied_documents(
    cluster: &mut crate::client::Client,
    results: &[pb::ApplyResult],
) -> anyhow::Result<Vec<AnyObject>> {
    let mut out = Vec::new();
    for r in results {
        let key = pb::ObjectKey {
            namespace: r.namespace.clone(),
            name: r.name.clone(),
        };
        let document = match r.kind.as_str() {
            "Node" => {
                let request = pb::GetNodeRequest {
                    name: r.name.clone(),
                };
                let node = cluster.client.get_node(request).await;
                AnyObject::Node(NodeObject::new(&cluster.check(node)?))
            }
            "Namespace" => {
                let ns = cluster.client.get_namespace(key).await;
                AnyObject::Namespace(NamespaceObject::new(&cluster.check(ns)?))
            }
            "ConfigMap" => {
                let cm = cluster.client.get_config_map(key).await;
                AnyObject::ConfigMap(ConfigMapObject::new(&cluster.check(cm)?))
            }
            "Secret" => {
                let secret = cluster.client.get_secret(key).await;
                AnyObject::Secret(SecretObject::new(&cluster.check(secret)?))
            }
            _ => {
                let request = pb::GetPodRequest {
                    name: r.name.clone(),
                    namespace: r.namespace.clone(),
                };
                let pod = cluster.client.get_pod(request).await;
                AnyObject::Pod(PodObject::new(&cluster.check(pod)?))
            }
        };
        out.push(document);
    }
    Ok(out)
}

/// `pod/web created`, `node/n4 unchanged`, `configmap/game-demo configured`,
/// `pod/web created (dry run)`; `pod/web` with `-o name`.
pub fn result_line(result: &kube9_proto::pb::ApplyResult, format: Format, dry_run: bool) -> String {
    let object = format!("{}/{}", result.kind.to_ascii_lowercase(), result.name);
    match (format, dry_run) {
        (Format::Name, _) => object,
        (_, false) => format!("{object} {}", result.action),
        (_, true) => format!("{object} {} (dry run)", result.action),
    }
}

/// The kind, namespace (as the manifest gives it; always empty for nodes and namespaces) and
/// name of a manifest's object.
pub fn identity(object: &Object) -> (Kind, &str, &str) {
    match object {
        Object::Pod(pod) => (Kind::Pod, &pod.namespace, &pod.name),
        Object::Node(node) => (Kind::Node, "", &node.name),
        Object::Namespace(ns) => (Kind::Namespace, "", &ns.name),
        Object::ConfigMap(cm) => (Kind::ConfigMap, &cm.namespace, &cm.name),
        Object::Secret(s) => (Kind::Secret, &s.namespace, &s.name),
    }
}

/// The namespace field of a namespaced object; `None` for nodes and namespaces.
fn namespace_mut(object: &mut Object) -> Option<&mut String> {
    match object {
        Object::Pod(pod) => Some(&mut pod.namespace),
        Object::ConfigMap(cm) => Some(&mut cm.namespace),
        Object::Secret(s) => Some(&mut s.namespace),
        Object::Node(_) | Object::Namespace(_) => None,
    }
}

/// Puts every namespaced object in a namespace: its own, else `namespace`'s. With an explicit
/// `-n`, an object naming another namespace is an error (kubectl's), and no object is changed.
pub fn resolve_namespaces(objects: &mut [Object], namespace: &Namespace) -> anyhow::Result<()> {
    for object in objects.iter() {
        let (_, own, _) = identity(object);
        object_namespace(own, namespace)?;
    }
    for object in objects.iter_mut() {
        if let Some(own) = namespace_mut(object) {
            *own = object_namespace(own, namespace)?;
        }
    }
    Ok(())
}

/// The namespace of an object whose manifest says `own` (empty: none), under `namespace`.
pub fn object_namespace(own: &str, namespace: &Namespace) -> anyhow::Result<String> {
    if own.is_empty() {
        return Ok(namespace.name.clone());
    }
    if namespace.explicit && own != namespace.name {
        anyhow::bail!(
            "the namespace from the provided object {own:?} does not match the namespace {:?}. \
             You must pass '--namespace={own}' to perform this operation.",
            namespace.name
        );
    }
    Ok(own.to_string())
}

/// The objects of one or more manifests, and what they hold that will be ignored.
#[derive(Debug, Default)]
pub struct Manifests {
    /// Every object, validated, in file and document order.
    pub objects: Vec<Object>,
    /// One line per ignored field: `pod.yaml: document 1 (pod "web"): unknown field
    /// "spec.containers[0].terminationMessagePath" ignored`.
    pub warnings: Vec<String>,
}

/// Reads and validates every object of every file (`-` is stdin, a directory means its
/// `.yaml`, `.yml` and `.json` files), refusing an object defined in two files.
pub fn read_manifests(paths: &[String]) -> anyhow::Result<Manifests> {
    let mut objects = Vec::new();
    let mut warnings = Vec::new();
    let mut seen: HashMap<(&'static str, String, String), String> = HashMap::new();
    for (source, text) in read_sources(paths)? {
        let (parsed, ignored) =
            parse_manifests_with_warnings(&text).with_context(|| source.clone())?;
        warnings.extend(ignored.iter().map(|w| format!("{source}: {w}")));
        for object in parsed {
            let (_, namespace, name) = identity(&object);
            let key = (object.kind(), namespace.to_string(), name.to_string());
            if let Some(first) = seen.get(&key) {
                anyhow::bail!(
                    "{source}: {} {:?} is also defined in {first}",
                    object.kind().to_ascii_lowercase(),
                    object.name()
                );
            }
            seen.insert(key, source.clone());
            objects.push(object);
        }
    }
    Ok(Manifests { objects, warnings })
}

/// `(name, text)` of each input.
fn read_sources(paths: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut sources = Vec::new();
    for path in paths {
        if path == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the manifest from stdin")?;
            sources.push(("<stdin>".to_string(), text));
        } else if Path::new(path).is_dir() {
            let mut files: Vec<_> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read directory {path}"))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && p.extension()
                            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
                })
                .collect();
            files.sort();
            for file in files {
                let name = file.display().to_string();
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {name}"))?;
                sources.push((name, text));
            }
        } else {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
            sources.push((path.clone(), text));
        }
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube9_proto::pb::ApplyResult;

    fn result(kind: &str, name: &str, action: &str) -> ApplyResult {
        ApplyResult {
            kind: kind.into(),
            name: name.into(),
            action: action.into(),
            namespace: String::new(),
        }
    }

    #[test]
    fn results_print_kind_slash_name_and_action() {
        assert_eq!(
            result_line(&result("Pod", "web", "created"), Format::Table, false),
            "pod/web created"
        );
        assert_eq!(
            result_line(&result("Node", "n4", "unchanged"), Format::Table, false),
            "node/n4 unchanged"
        );
        assert_eq!(
            result_line(&result("Pod", "web", "created"), Format::Name, false),
            "pod/web"
        );
        assert_eq!(
            result_line(&result("Pod", "web", "created"), Format::Table, true),
            "pod/web created (dry run)"
        );
        assert_eq!(
            result_line(
                &result("ConfigMap", "game-demo", "created"),
                Format::Table,
                false
            ),
            "configmap/game-demo created"
        );
        assert_eq!(
            result_line(
                &result("ConfigMap", "game-demo", "configured"),
                Format::Table,
                false
            ),
            "configmap/game-demo configured"
        );
        assert_eq!(
            result_line(&result("Secret", "db", "created"), Format::Name, false),
            "secret/db"
        );
        assert_eq!(
            result_line(
                &result("Namespace", "prod", "created"),
                Format::Table,
                false
            ),
            "namespace/prod created"
        );
    }

    fn ns(name: &str, explicit: bool) -> Namespace {
        Namespace {
            name: name.into(),
            explicit,
        }
    }

    #[test]
    fn objects_without_a_namespace_get_the_commands() {
        assert_eq!(
            object_namespace("", &ns("default", false)).unwrap(),
            "default"
        );
        assert_eq!(object_namespace("", &ns("prod", true)).unwrap(), "prod");
        assert_eq!(object_namespace("a", &ns("a", true)).unwrap(), "a");
        // The environment's namespace is a default, not an order: the manifest's wins.
        assert_eq!(object_namespace("a", &ns("dev", false)).unwrap(), "a");
    }

    #[test]
    fn a_manifest_namespace_other_than_an_explicit_one_is_refused_and_nothing_changes() {
        assert_eq!(
            object_namespace("a", &ns("b", true))
                .unwrap_err()
                .to_string(),
            "the namespace from the provided object \"a\" does not match the namespace \"b\". \
             You must pass '--namespace=a' to perform this operation."
        );
        let pod = |name: &str, namespace: &str| {
            Object::Pod(kube9_proto::pb::Pod {
                name: name.into(),
                namespace: namespace.into(),
                ..Default::default()
            })
        };
        let node = Object::Node(kube9_proto::pb::NodeSpec {
            name: "n1".into(),
            ..Default::default()
        });
        let mut objects = vec![pod("web", ""), node.clone(), pod("db", "a")];
        let before = objects.clone();
        let err = resolve_namespaces(&mut objects, &ns("b", true)).unwrap_err();
        assert!(err.to_string().contains("--namespace=a"), "{err}");
        assert_eq!(objects, before);
        resolve_namespaces(&mut objects, &ns("a", true)).unwrap();
        let identities: Vec<_> = objects.iter().map(identity).collect();
        assert_eq!(
            identities,
            [
                (Kind::Pod, "a", "web"),
                (Kind::Node, "", "n1"),
                (Kind::Pod, "a", "db")
            ]
        );
    }

    #[test]
    fn the_examples_parse_and_the_bad_ones_do_not() {
        let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
        for good in ["pod.yaml", "pods.yaml", "nodes.yaml"] {
            let manifests = read_manifests(&[format!("{examples}/{good}")]).unwrap();
            assert!(!manifests.objects.is_empty(), "{good}");
            assert_eq!(manifests.warnings, Vec::<String>::new(), "{good}");
        }
        let bad = format!("{examples}/bad");
        let mut files: Vec<_> = std::fs::read_dir(&bad)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(files.len() >= 4);
        for file in files {
            let err = read_manifests(&[file.display().to_string()]).unwrap_err();
            let text = format!("{err:#}");
            assert!(text.starts_with(&file.display().to_string()), "{text}");
        }
    }

    #[test]
    fn ignored_fields_become_warnings_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("kube9ctl-apply-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("web.yaml");
        std::fs::write(
            &file,
            "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: default}\nspec:\n  containers:\n  - name: c\n    image: x\n    terminationMessagePath: /dev/log\n",
        )
        .unwrap();
        let path = file.display().to_string();
        let manifests = read_manifests(std::slice::from_ref(&path)).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(manifests.objects.len(), 1);
        assert_eq!(
            manifests.warnings,
            [format!(
                "{path}: document 1 (pod \"web\"): unknown field \"spec.containers[0].terminationMessagePath\" ignored"
            )]
        );
    }

    #[test]
    fn an_object_in_two_files_is_refused() {
        let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
        let pod = format!("{examples}/pod.yaml");
        let err = read_manifests(&[pod.clone(), pod]).unwrap_err();
        assert!(err.to_string().contains("is also defined in"), "{err}");
    }

    #[test]
    fn manifests_of_every_kind_take_the_commands_namespace_unless_they_name_one() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n\
                    apiVersion: v1\nkind: ConfigMap\nmetadata: {name: game}\ndata: {lives: '3'}\n---\n\
                    apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: a}\n\
                    stringData: {password: s3cr3t}\n";
        let mut objects = kube9_proto::manifest::parse_manifests(text).unwrap();
        resolve_namespaces(&mut objects, &ns("a", true)).unwrap();
        let identities: Vec<_> = objects.iter().map(identity).collect();
        assert_eq!(
            identities,
            [
                (Kind::Namespace, "", "a"),
                (Kind::ConfigMap, "a", "game"),
                (Kind::Secret, "a", "db")
            ]
        );
        let mut objects = kube9_proto::manifest::parse_manifests(text).unwrap();
        resolve_namespaces(&mut objects, &ns("default", false)).unwrap();
        assert_eq!(identity(&objects[1]), (Kind::ConfigMap, "default", "game"));
        assert_eq!(identity(&objects[2]), (Kind::Secret, "a", "db"));
        let mut objects = kube9_proto::manifest::parse_manifests(text).unwrap();
        let err = resolve_namespaces(&mut objects, &ns("b", true)).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("the namespace from the provided object \"a\""));
        assert!(!err.to_string().contains("s3cr3t"));
    }

    #[test]
    fn one_name_in_two_namespaces_is_two_objects() {
        let dir = std::env::temp_dir().join(format!("kube9ctl-apply-ns-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, namespace: &str| {
            let path = dir.join(name);
            std::fs::write(
                &path,
                format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: game, namespace: {namespace}}}\n"
                ),
            )
            .unwrap();
            path.display().to_string()
        };
        let (a, b, again) = (
            file("a.yaml", "a"),
            file("b.yaml", "b"),
            file("c.yaml", "a"),
        );
        let two = read_manifests(&[a.clone(), b]);
        let twice = read_manifests(&[a, again]);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(two.unwrap().objects.len(), 2);
        let err = twice.unwrap_err();
        assert!(err.to_string().contains("is also defined in"), "{err}");
    }
}
